"""``kentropy``: its commands, arguments and messages (tests/test_cli_dag.py: each gives the test DAG's numbers);
the base install (no extras) measures entropy; every imported package is declared."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pandas as pd
import pytest
import tomllib

from .conftest import ROOT, save_word_tokenizer, tiny_model
from .warm_servers import SERVER, offline_environ


def kentropy(work: Path, *args: str) -> subprocess.CompletedProcess:
    """``kentropy ARGS`` offline in ``work``: the console script's module run by the session's warm server
    (``tests/test_cli_inputs.py`` runs the console script pip installed)."""
    command = [*SERVER.command(), "-m", "kentropy.cli.commands", *args]
    proc = subprocess.run(command, cwd=work, env=offline_environ(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "tiny", "--step", "10", "--out", "o"], "give --run-name (or the whole job as --job)"),
        (["--model", "nope", "--step", "10", "--run-name", "baseline", "--out", "o"], "--model nope: not a trajectory"),
        (["--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", "o", "--set", "continual.seq_len=x"],
         "continual.seq_len"),
        (["--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", "o", "--set", "seed.x=1"],
         "seed is not a mapping: cannot set seed.x"),
        (["--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", "o"], "build it with `snakemake"),
        (["--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", "."], "holds what kentropy train does"),
    ],
)  # fmt: skip
def test_kentropy_train_names_what_is_wrong_before_training(tmp_path, monkeypatch, args, message):
    from kentropy.cli.commands import main

    monkeypatch.chdir(tmp_path)  # no checkpoint here: the last cases stop at a missing input or a user's file
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as stop:
        main(["train", "--config", str(ROOT / "tests/config/e2e.yaml"), *args])
    assert message in str(stop.value.code)  # sys.exit's message: printed, exit status 1


def test_kentropy_manifests_lists_the_shipped_step_lists(tmp_path):
    proc = kentropy(tmp_path, "manifests", "list")
    assert "OLMo-1B: " in proc.stdout and "allenai/OLMo-1B-hf" in proc.stdout


def _base_closure() -> set[str]:
    """Distributions the base install pulls in: kentropy's dependencies without extras, recursively."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo, seen = [Requirement(d) for d in project["dependencies"]], set()
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in requires(name) or []]
        except PackageNotFoundError:  # an optional platform dependency not installed here
            continue
    return seen


def _base_site(folder: Path) -> Path:
    """A site folder holding only the base install's distributions (links to this environment's files)."""
    from importlib.metadata import distribution

    folder.mkdir()
    for name in _base_closure():
        dist = distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if not f.parts[0].startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists() and top != "__pycache__":
                (folder / top).symlink_to(source)
    return folder


def test_the_base_install_measures_entropy_without_any_extra(tmp_path):
    """``kentropy entropy`` where only the base install's distributions are importable (no site-packages: a
    folder of links to exactly those), as after ``pip install kentropy`` without extras."""
    model = tmp_path / "model"
    tiny_model("llama").float().save_pretrained(model)
    save_word_tokenizer(model)
    (tmp_path / "corpus.txt").write_text("w5 w6 w7 w8\nw9 w10 w11\nw12 w13 w14 w15 w16\n")
    site = _base_site(tmp_path / "site")
    assert not any((site / name).exists() for name in ("snakemake", "deepspeed", "lm_eval", "seaborn"))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT / 'src'}"}
    code = "import sys; from kentropy.cli.commands import main; main(sys.argv[1:])"
    args = [
        "entropy",
        "--model",
        str(model),
        "--corpus",
        str(tmp_path / "corpus.txt"),
        "--max-length",
        "16",
        "--out",
        str(tmp_path / "e.parquet"),
    ]
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_parquet(tmp_path / "e.parquet")
    assert (table.n_tokens > 0).all() and table.value.notna().all()


def _imported_packages() -> set[str]:
    """Top-level packages imported anywhere in the library, the workflow's scripts and the benchmarks."""
    names = set()
    for folder in ("src", "workflow", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    local = {path.stem for folder in ("bench", "workflow/scripts") for path in (ROOT / folder).glob("*.py")}
    return names - set(sys.stdlib_module_names) - local - {"kentropy", "snakemake", "tests"}


def test_every_imported_package_is_declared():
    """Each third-party import belongs to a distribution pyproject.toml names (base or an extra)."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *(d for deps in project["optional-dependencies"].values() for d in deps)]
    declared = {re.split(r"[\[<>=!~ ]", d)[0].lower().replace("_", "-") for d in declared}
    owners = packages_distributions()
    for package in sorted(_imported_packages()):
        dists = {d.lower().replace("_", "-") for d in owners.get(package, [])}
        assert dists & declared, f"{package} (from {sorted(dists) or 'no installed distribution'}) is not declared"


@pytest.mark.parametrize("module", ["kentropy.cli.downstream", "kentropy.sources.manifests", "kentropy.cli.train"])
def test_python_m_keeps_working(module, warm_python):
    proc = subprocess.run([*warm_python, "-m", module, "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "usage:" in proc.stdout
