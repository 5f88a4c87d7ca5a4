"""``kentropy``: each subcommand on the test DAG's checkpoints gives the DAG's numbers (the DAG run once per session in
the background, ``conftest._run_e2e_dag``)."""

from __future__ import annotations

import pandas as pd
import torch

from kentropy.core.layout import Layout

from .conftest import ROOT, snakemake
from .test_cli import kentropy

L = Layout("e2e")
STEP, VARIANT = 30, "original"


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


def test_kentropy_train_reproduces_the_rules_run_bit_for_bit(e2e_alone, tmp_path):
    """The training rule's run from a shell: the same settings from the same config, the same inputs from its
    layout, the same code; every output equal to the DAG's, byte for byte where it is a table or a weight."""
    from safetensors.torch import load_file

    out, run = tmp_path / "run", ("tiny", 10, "original", "baseline")
    config = str(ROOT / "tests/config/e2e.yaml")
    stream = e2e_alone / L.stream("tiny", "baseline", "tokens.npy")  # temporary: the DAG deleted it after training
    try:
        built = snakemake(e2e_alone, L.stream("tiny", "baseline", "tokens.npy"), "--configfile", config)
        assert built.returncode == 0, built.stderr[-3000:]
        args = ["--config", config, "--model", "tiny", "--step", "10", "--run-name", "baseline", "--out", str(out)]
        kentropy(e2e_alone, "train", *args)
    finally:
        stream.unlink(missing_ok=True)  # the DAG's folder as the other tests expect it
    for name in ("loss.parquet", "retention.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(e2e_alone / L.training(*run, name)))
    for kind in ("probes", "downstream"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / f"{kind}.parquet"), pd.read_parquet(e2e_alone / L.evaluation(*run, kind))
        )
    ours, rules = (
        load_file(out / "model/model.safetensors"),
        load_file(e2e_alone / L.training(*run, "model") / "model.safetensors"),
    )
    assert ours.keys() == rules.keys() and all(torch.equal(ours[k], rules[k]) for k in ours)
    assert not (out / "work").exists()  # removed once the run is done
