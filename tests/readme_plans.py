"""The ``snakemake`` commands of the README and the pages it moved its reference to, and their plans: each run
as written (``-n``) offline from a checkout-like folder, with the Slurm profile installed where ``--profile
slurm`` finds it. ``conftest`` plans them in a background thread from the session's start (each is a Snakemake
process that mostly builds a DAG), and ``tests/test_readme.py`` reads the results."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

from .warm_servers import SERVER, offline_environ

ROOT = Path(__file__).resolve().parents[1]
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


def arguments(command: str) -> tuple[str, ...]:
    """Snakemake's arguments for ``command`` as planned: a dry run, ``-n`` last wherever the command has it (so
    ``snakemake all`` and ``snakemake all -n`` are one plan), unless it makes a report."""
    argv = shlex.split(SNAKEMAKE.sub("", command, count=1))
    return tuple(argv) if "--report" in argv else (*(a for a in argv if a not in ("-n", "--dry-run")), "-n")


def distinct_arguments() -> list[tuple[str, ...]]:
    """The README commands' ``arguments``, each once."""
    return list(dict.fromkeys(map(arguments, readme_commands())))


def plan(argv: tuple[str, ...], folder: Path) -> subprocess.CompletedProcess:
    """Snakemake run with ``argv`` in ``folder`` (the checkout's files linked in)."""
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        (folder / name).symlink_to(ROOT / name)
    xdg = folder / "xdg"
    shutil.copytree(ROOT / "profiles/slurm", xdg / "snakemake/slurm")  # as the README installs it
    env = offline_environ(XDG_CONFIG_HOME=str(xdg))
    return subprocess.run([*SERVER.command(), "-m", "snakemake", *argv], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
