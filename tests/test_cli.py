"""``kentropy``: each subcommand on the default run's checkpoints gives the DAG's numbers; the base install
(no extras) measures entropy; every imported package is declared."""

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
import torch

from kentropy.core.layout import Layout

from .conftest import ROOT, save_word_tokenizer, snakemake, tiny_model
from .warm_servers import SERVER, offline_environ

L = Layout("e2e")
STEP, VARIANT = 30, "original"


def kentropy(work: Path, *args: str) -> subprocess.CompletedProcess:
    """``kentropy ARGS`` offline in ``work``: the console script's module run by the session's warm server
    (``tests/test_cli_inputs.py`` runs the console script pip installed)."""
    command = [*SERVER.command(), "-m", "kentropy.cli.commands", *args]
    proc = subprocess.run(command, cwd=work, env=offline_environ(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_kentropy_entropy_equals_the_dags_table(e2e, tmp_path):
    out = tmp_path / "entropy.parquet"
    kentropy(
        e2e,
        "entropy",
        "--model",
        L.pretrained_checkpoint("tiny", STEP),
        "--step",
        str(STEP),
        "--corpus",
        L.entropy_corpus("generated"),
        "--max-length",
        "32",
        "--batch-size",
        "8",
        "--out",
        str(out),
    )
    dag = pd.read_parquet(e2e / L.table("entropy.parquet"))
    dag = dag[(dag.trajectory == 0) & (dag.step == STEP) & (dag.variant == VARIANT)]
    cli = pd.read_parquet(out)
    assert list(cli.columns) == ["model", "revision", "step", "metric", "layer", "value", "n_tokens", "corpus"]
    assert (cli.step == STEP).all() and cli.revision.isna().all()
    keys = ["metric", "layer", "n_tokens", "corpus"]
    pd.testing.assert_frame_equal(
        cli[[*keys, "value"]].reset_index(drop=True), dag[[*keys, "value"]].reset_index(drop=True)
    )


def test_kentropy_probes_equal_the_dags_scores_before_training(e2e, tmp_path):
    out = tmp_path / "probes.parquet"
    kentropy(
        e2e,
        "probes",
        "--model",
        L.pretrained_checkpoint("tiny", STEP),
        "--paraphrase",
        L.knowledge("paraphrase"),
        "--once",
        L.knowledge("once"),
        "--batch-size",
        "32",
        "--max-length",
        "32",
        "--out",
        str(out),
    )
    dag = pd.read_parquet(e2e / L.evaluation("tiny", STEP, VARIANT, "before", "probes"))
    cli = pd.read_parquet(out)
    for score in ("per_token", "released"):
        assert list(cli[score]) == list(dag[score]), score


def test_kentropy_downstream_equals_the_dags_benchmarks_with_the_same_config_hash(e2e, tmp_path):
    out, samples = tmp_path / "downstream.parquet", tmp_path / "samples.jsonl"
    proc = kentropy(
        e2e,
        "downstream",
        "--model",
        L.pretrained_checkpoint("tiny", STEP),
        "--source",
        "generated",
        "--data-dir",
        L.benchmarks(),
        "--batch-size",
        "32",
        "--log-samples",
        str(samples),
        "--out",
        str(out),
    )
    dag = pd.read_parquet(e2e / L.evaluation("tiny", STEP, VARIANT, "before", "downstream")).set_index("task")
    cli = pd.read_parquet(out).set_index("task")
    columns = ["split", "metric", "value", "n", "lm_eval_version", "task_version", "task_config_sha256"]
    pd.testing.assert_frame_equal(cli[columns], dag[columns])
    assert "task_config_sha256" in proc.stderr  # the command prints which definitions produced the scores
    assert len(samples.read_text().splitlines()) == cli.n.sum()


def test_kentropy_resuscitate_writes_the_dags_resuscitated_weights(e2e, tmp_path):
    from safetensors.torch import load_file

    variant = "resus-p50-q2"
    out = tmp_path / variant
    kentropy(
        e2e,
        "resuscitate",
        "--model",
        L.pretrained_checkpoint("tiny", STEP),
        "--coef",
        L.entropy("tiny", STEP, VARIANT, ".coef.npy"),
        "--p",
        "50",
        "--q",
        "2",
        "--out",
        str(out),
    )
    mine = load_file(out / "model.safetensors")
    dag = load_file(e2e / L.resuscitated_checkpoint("tiny", STEP, variant) / "model.safetensors")
    assert mine.keys() == dag.keys() and all((mine[k] == dag[k]).all() for k in mine)


def test_kentropy_train_reproduces_the_rules_run_bit_for_bit(e2e, tmp_path):
    """The training rule's run from a shell: the same settings from the same config, the same inputs from its
    layout, the same code; every output equal to the DAG's, byte for byte where it is a table or a weight."""
    from safetensors.torch import load_file

    out, run = tmp_path / "run", ("tiny", 10, "original", "baseline")
    config = str(ROOT / "tests/config/e2e.yaml")
    stream = e2e / L.stream("tiny", "baseline", "tokens.npy")  # temporary: the DAG deleted it after training
    try:
        built = snakemake(e2e, L.stream("tiny", "baseline", "tokens.npy"), "--configfile", config)
        assert built.returncode == 0, built.stderr[-3000:]
        args = ["--config", config, "--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", str(out)]
        kentropy(e2e, "train", *args)
    finally:
        stream.unlink(missing_ok=True)  # the DAG's folder as the other tests expect it
    for name in ("loss.parquet", "retention.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(e2e / L.training(*run, name)))
    for kind in ("probes", "downstream"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / f"{kind}.parquet"), pd.read_parquet(e2e / L.evaluation(*run, kind))
        )
    ours, rules = (
        load_file(out / "model/model.safetensors"),
        load_file(e2e / L.training(*run, "model") / "model.safetensors"),
    )
    assert ours.keys() == rules.keys() and all(torch.equal(ours[k], rules[k]) for k in ours)
    assert not (out / "work").exists()  # removed once the run is done


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
