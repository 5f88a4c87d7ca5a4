# The warm start of local script jobs (kentropy.pipeline.warm): one fork server per Snakemake run, and the script
# command that asks it for a job. Included by the Snakefile, and alone by tests/test_warm.py.
from snakemake.logging import logger
from snakemake.script import PythonScript

_run_script = PythonScript._execute_cmd
WARM = {"server": None}  # this Snakemake run's warm server (kentropy.pipeline.warm.Server), from start_warm_server


def _script_command(self, cmd, **kwargs):
    """Snakemake starts a Python script with the command ``{py_exec} {fname:q}``, the interpreter unquoted, so
    an interpreter path with a space (a checkout at ``~/my project/.venv``) breaks every script job
    (snakemake/snakemake#2645, open). Quote it; once Snakemake quotes it itself, the command differs and this
    passes it through. With this run's warm server running, a compute job outside any conda or container
    environment and outside the localrules (downloads: they go online) asks it for the run (``python -m
    kentropy.pipeline.warm --socket PATH script``): the same interpreter and script. Private Snakemake API
    (``_execute_cmd``, ``_localrules``): tests/test_warm.py fails when either changes."""
    if cmd == "{py_exec} {fname:q}":
        server = WARM["server"]
        warm = server is not None and self.rulename not in workflow._localrules
        warm = warm and self.conda_env is None and self.container_img is None
        cmd = server.command() if warm else "{py_exec:q} {fname:q}"
    return _run_script(self, cmd, **kwargs)


PythonScript._execute_cmd = _script_command


def start_warm_server(enabled, env, log, preload=None):
    """Start this run's server (``env``: the variables every compute job sets before its imports; output to
    ``log``), unless disabled, a dry run, a cluster executor (its jobs start on other machines), a
    subordinate Snakemake, or a machine with a GPU (a process that has initialised CUDA cannot fork)."""
    from kentropy.pipeline.warm import Server, gpu_present

    if not (enabled and workflow.local_exec and workflow.is_main_process) or workflow.dryrun:
        return
    if gpu_present():
        logger.info("warm start: off (a GPU is present; jobs start cold)")
        return
    WARM["server"] = Server(env, log, preload=preload)


def stop_warm_server():
    """Stop this run's server: it stops any job still running and removes its socket."""
    if WARM["server"] is not None:
        WARM["server"].stop()
        WARM["server"] = None
