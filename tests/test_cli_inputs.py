"""``kentropy`` with bad input: bounds refused by the parser before anything loads, one-line errors that name the
argument or file (the traceback behind --debug), outputs that never replace what kentropy did not write, and
no checkpoint written with a non-finite weight (issue 33's catalogue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kentropy.cli.commands import main
from kentropy.core.io import MARKER

from .conftest import save_word_tokenizer, tiny_model

KENTROPY = str(Path(sys.executable).parent / "kentropy")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "tiny"
    tiny_model("olmo").float().save_pretrained(folder)
    save_word_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    rng = np.random.default_rng(0)
    path.write_text("\n".join(" ".join(f"w{i}" for i in rng.integers(3, 97, 20)) for _ in range(8)) + "\n")
    return path


@pytest.fixture(scope="module")
def coef(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("coef") / "coef.npy"
    np.save(path, np.random.default_rng(0).uniform(0.1, 1.0, (3, 48)))
    return path


def refused(argv: list[str], capsys) -> str:
    """The one-line error of a command that must stop: the parser's (exit 2) or run_command's (exit 1)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    code = stop.value.code
    message = capsys.readouterr().err.strip().splitlines()[-1] if code == 2 else code
    assert code != 0 and isinstance(message, str) and "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "argument --batch-size: 0 is not >= 1"),
        (["--batch-size", "-4"], "argument --batch-size: -4 is not >= 1"),
        (["--max-length", "0"], "argument --max-length: 0 is not >= 1"),
        (["--count", "0"], "argument --count: 0 is not >= 1"),
        (["--corpus", "no_such.txt"], "argument --corpus: no file no_such.txt"),
    ],
)
def test_entropy_bounds_are_the_parsers(args, message, checkpoint, corpus, tmp_path, capsys):
    argv = ["entropy", "--model", str(checkpoint), "--corpus", str(corpus), "--out", str(tmp_path / "e.parquet")]
    assert message in refused(argv + args, capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--p", "150", "--q", "2"], "argument --p: 150 is not a percentage in (0, 100]"),
        (["--p", "0", "--q", "2"], "argument --p: 0 is not a percentage in (0, 100]"),
        (["--p", "50", "--q", "nan"], "argument --q: nan is not a finite number > 0"),
        (["--p", "50", "--q", "-3"], "argument --q: -3 is not a finite number > 0"),
        (["--p", "50", "--q", "inf"], "argument --q: inf is not a finite number > 0"),
    ],
)
def test_resuscitate_bounds_are_the_parsers(args, message, checkpoint, coef, tmp_path, capsys):
    argv = ["resuscitate", "--model", str(checkpoint), "--coef", str(coef), "--out", str(tmp_path / "r"), *args]
    assert message in refused(argv, capsys)
    assert not (tmp_path / "r").exists()


def test_a_missing_local_folder_is_said_as_such(corpus, tmp_path, capsys):
    for model in (str(tmp_path / "nowhere"), "./nowhere", "resources/tiny/step1"):
        argv = ["entropy", "--model", model, "--corpus", str(corpus), "--out", str(tmp_path / "e.parquet")]
        assert refused(argv, capsys) == f"kentropy entropy: error: --model {model}: no such folder"


def test_an_unwritable_out_stops_before_the_model_is_read(corpus, tmp_path, capsys):
    (tmp_path / "a file").write_text("")
    out = tmp_path / "a file" / "e.parquet"
    argv = ["entropy", "--model", str(tmp_path / "nowhere"), "--corpus", str(corpus), "--out", str(out)]
    assert refused(argv, capsys) == (
        f"kentropy entropy: error: {out}: cannot write it ({tmp_path / 'a file'} is not a writable folder)"
    )


def test_a_library_error_is_one_line_and_its_traceback_is_behind_debug(checkpoint, tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 w5 w6\n".encode("latin-1"))
    argv = ["entropy", "--model", str(checkpoint), "--corpus", str(latin), "--out", str(tmp_path / "e.parquet")]
    message = refused(argv, capsys)
    assert message.startswith(f"kentropy entropy: error: entropy corpus file is not UTF-8 text: {latin}")
    with pytest.raises(SystemExit):
        main([*argv, "--debug"])
    assert "Traceback" in capsys.readouterr().err


def test_the_console_script_prints_one_line_and_exits_1(checkpoint, tmp_path):
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("my thesis")
    done = subprocess.run(
        [KENTROPY, "entropy", "--model", str(checkpoint), "--corpus", str(thesis), "--out", str(thesis)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "exists and is not an output kentropy wrote; refusing to overwrite it" in done.stderr
    assert thesis.read_text() == "my thesis"


def test_resuscitate_never_replaces_a_folder_it_did_not_write(checkpoint, coef, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("my thesis")
    argv = ["resuscitate", "--model", str(checkpoint), "--coef", str(coef), "--p", "50", "--q", "2", "--out", str(out)]
    assert "exists and is not a previous checkpoint written here" in refused(argv, capsys)
    assert (out / "thesis.tex").read_text() == "my thesis"
    fresh = tmp_path / "fresh"
    main([*argv[:-1], str(fresh)])
    assert json.loads((fresh / MARKER).read_text()) == {"kind": "checkpoint"}
    main([*argv[:-1], str(fresh)])  # a previous output of the same kind: replaced
    main([*argv, "--force"])
    assert not (out / "thesis.tex").exists() and (out / "resuscitation.json").is_file()


def test_no_nan_checkpoint_is_ever_written(checkpoint, coef, tmp_path, capsys):
    bad_coef = tmp_path / "nan.npy"
    values = np.load(coef)
    values[0, 3] = np.nan
    np.save(bad_coef, values)
    argv = ["resuscitate", "--model", str(checkpoint), "--p", "50", "--q", "2"]
    message = refused([*argv, "--coef", str(bad_coef), "--out", str(tmp_path / "a")], capsys)
    assert "the coefficients must be a layers x d_ff array of finite" in message and "1 non-finite" in message
    # A user's folder that already holds a NaN: refused when the copy would be written, naming the tensor.
    from transformers import AutoModelForCausalLM

    poisoned = tmp_path / "poisoned"
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    with torch.no_grad():
        model.model.layers[1].self_attn.q_proj.weight[0, 0] = float("nan")
    model.save_pretrained(poisoned)
    save_word_tokenizer(poisoned)
    message = refused([*argv, "--model", str(poisoned), "--coef", str(coef), "--out", str(tmp_path / "b")], capsys)
    assert "weight model.layers.1.self_attn.q_proj.weight (model.safetensors) holds 1 non-finite value" in message
    assert not (tmp_path / "b").exists() and not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_downstream_refuses_a_task_its_source_does_not_have(checkpoint, tmp_path, capsys):
    data = tmp_path / "benchmarks"
    data.mkdir()
    (data / "tasks.json").write_text(json.dumps({"tasks": {"world_qa": "acc"}}))
    argv = ["downstream", "--model", str(checkpoint), "--source", "generated", "--data-dir", str(data)]
    message = refused([*argv, "--tasks", "no_such_task", "--out", str(tmp_path / "d.parquet")], capsys)
    assert message == f"kentropy downstream: error: --tasks: 'no_such_task' is not a task of {data} (it has world_qa)"
    assert "argument --batch-size: '0' is not an integer >= 1, auto or auto:N" in refused(
        [*argv, "--batch-size", "0", "--out", str(tmp_path / "d.parquet")], capsys
    )
