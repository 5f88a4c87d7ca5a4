"""Every ``snakemake`` command in the README and the pages it moved its reference to runs as written: planned
(``-n``) offline from a checkout-like folder, with the Slurm profile installed where ``--profile slurm`` finds
it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

SNAKEMAKE = re.compile(r"(?:\.venv/bin/)?snakemake(?=\s|$)")
#: The README and the reference pages it links (docs/design.md and docs/benchmarks.md record commands as run).
PAGES = ["README.md", *(f"docs/{p}.md" for p in ("configs", "experiments", "outputs", "results", "cluster", "testing"))]


def readme_commands() -> list[str]:
    """The ``snakemake`` commands of the README: in bash blocks (each ``&&`` part; comments dropped) and in
    inline code spans."""
    text = "\n".join((ROOT / page).read_text() for page in PAGES)
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            commands += [part.split("#")[0].strip() for part in line.split("&&")]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    commands += [part.strip() for span in spans for part in span.split("&&")]
    return sorted({c for c in commands if SNAKEMAKE.match(c)})


def test_the_readme_names_the_commands_users_run():
    commands = readme_commands()
    assert ".venv/bin/snakemake" in commands  # the quick start
    assert "snakemake all --profile slurm --configfile config/olmo-1b.yaml" in commands
    assert len(commands) >= 8


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_plans_offline(tmp_path, command):
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        (tmp_path / name).symlink_to(ROOT / name)
    xdg = tmp_path / "xdg"
    shutil.copytree(ROOT / "profiles/slurm", xdg / "snakemake/slurm")  # as the README installs it
    argv = shlex.split(SNAKEMAKE.sub("", command, count=1))
    if "--report" not in argv:
        argv.append("-n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    if "--report" in argv:  # parsed and planned; a report needs the finished run (tested in test_workflow)
        assert "marked for report but does not exist" in out, out[-3000:]
    else:
        assert proc.returncode == 0, out[-3000:]
