"""The warm start's hooks into Snakemake (workflow/rules/warm.smk): one kentropy.pipeline.warm server per
Snakemake run, and the script command that asks it for a job. Snakemake's private API is used in three places,
``PythonScript._execute_cmd``, ``workflow._localrules`` and the DAG's jobs to run (``_script_jobs``):
tests/test_warm.py fails when any changes."""

from __future__ import annotations

from snakemake.logging import logger
from snakemake.script import PythonScript

_run_script = PythonScript._execute_cmd
#: Script jobs a run must have for its server to pay: the server's imports cost what about two cold jobs' do, and
#: the run's first job waits for them (docs/design.md, "Warm start").
MIN_JOBS = 2


class WarmStart:
    """This run's warm server (none until ``start``), and what decides that a script job asks it."""

    current: WarmStart | None = None  #: the run whose jobs the patched script command serves

    def __init__(self, workflow):
        self.workflow = workflow
        self.server = None
        self.offline_localrules: frozenset[str] = frozenset()  #: localrules that download nothing in this run
        WarmStart.current = self
        PythonScript._execute_cmd = _script_command

    def start(self, enabled: bool, env: dict, log: str, offline_localrules=(), preload=None) -> None:
        """Start the server (``env``: the variables every compute job sets before its imports; output to
        ``log``; ``offline_localrules``: the localrules that download nothing under this config, served too),
        unless disabled, a dry run, a cluster executor (its jobs start on other machines), a subordinate
        Snakemake, a run of fewer than ``MIN_JOBS`` script jobs, or a machine with a GPU (a process that has
        initialised CUDA cannot fork)."""
        from .warm import Server, gpu_present

        workflow = self.workflow
        self.offline_localrules = frozenset(offline_localrules)
        if not (enabled and workflow.local_exec and workflow.is_main_process) or workflow.dryrun:
            return
        if gpu_present():
            logger.info("warm start: off (a GPU is present; jobs start cold)")
            return
        jobs = self._script_jobs()
        if jobs < MIN_JOBS:
            logger.info(f"warm start: off ({jobs} script job(s) to run, fewer than {MIN_JOBS}: they start cold)")
            return
        self.server = Server(env, log, preload=preload)

    def _script_jobs(self) -> int:
        """Jobs of this run that ``warm`` would send to a server (``MIN_JOBS`` when a checkpoint can add more)."""
        dag = self.workflow.dag
        if any(dag.checkpoint_jobs):
            return MIN_JOBS
        return sum(job.rule.script is not None and self._serves(job.rule.name) for job in dag.needrun_jobs())

    def _serves(self, rule: str) -> bool:
        """Whether the server may run ``rule``'s jobs: not a localrule that downloads (the server is offline)."""
        return rule not in self.workflow._localrules or rule in self.offline_localrules

    def stop(self) -> None:
        """Stop the server: it stops any job still running and removes its socket."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def warm(self, script: PythonScript) -> bool:
        """Whether ``script``'s job asks the server: one is running, and the job is outside any conda or
        container environment and not a download (a localrule that goes online)."""
        return (
            self.server is not None
            and self._serves(script.rulename)
            and script.conda_env is None
            and script.container_img is None
        )


def _script_command(self, cmd, **kwargs):
    """Snakemake starts a Python script with the command ``{py_exec} {fname:q}``, the interpreter unquoted, so
    an interpreter path with a space (a checkout at ``~/my project/.venv``) breaks every script job
    (snakemake/snakemake#2645, open). Quote it; once Snakemake quotes it itself, the command differs and this
    passes it through. A job that ``WarmStart.warm`` admits asks this run's server for the run (``python -m
    kentropy.pipeline.warm --socket PATH script``): the same interpreter and script."""
    if cmd == "{py_exec} {fname:q}":
        run = WarmStart.current
        cmd = run.server.command() if run is not None and run.warm(self) else "{py_exec:q} {fname:q}"
    return _run_script(self, cmd, **kwargs)
