"""Every ``snakemake`` command in the README and the pages it moved its reference to runs as written: planned
(``-n``) offline from a checkout-like folder, with the Slurm profile installed where ``--profile slurm`` finds
it (tests/readme_plans.py; planned in the background of the session, read here)."""

from __future__ import annotations

import pytest

from .readme_plans import readme_commands


def test_the_readme_names_the_commands_users_run():
    commands = readme_commands()
    assert ".venv/bin/snakemake" in commands  # the quick start
    assert "snakemake all --profile slurm --configfile config/olmo-1b.yaml" in commands
    assert len(commands) >= 8


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_plans_offline(readme_plans, command):
    argv, proc = readme_plans(command)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    if "--report" in argv:  # parsed and planned; a report needs the finished run (tested in test_dag_outputs)
        assert "marked for report but does not exist" in out, out[-3000:]
    else:
        assert proc.returncode == 0, out[-3000:]
