"""The `kentropy` command (its subcommands in ``commands``, the shared argument types and error handling in
``arguments``)."""

from .commands import main

__all__ = ["main"]
