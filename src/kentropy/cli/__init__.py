"""The `kentropy` command: its subcommands in ``commands`` (the program's entry point), the shared argument
types and error handling in ``arguments``. Nothing is imported here, so that ``python -m kentropy.cli.train``
(what every process of a training job runs) loads only what training needs."""
