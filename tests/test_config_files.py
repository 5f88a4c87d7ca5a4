"""Config files that must not hang or lie (issue 33): duplicate keys, alias bombs, names with a trailing newline,
counts that would exhaust memory, path and template fields that would be evaluated, a corpus that is not UTF-8.
Each stops ``python -m kentropy.pipeline.config_check`` and the DAG build with the same one line, within seconds."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time

import pytest
import yaml

from kentropy.core.config import ConfigError, load_config_file, validate_config
from kentropy.core.layout import PatternError, fill_pattern, step_path
from kentropy.pipeline import config_check
from kentropy.sources.facts_file import FactsError, check_facts

from .conftest import ROOT, snakemake

E2E = (ROOT / "tests/config/e2e.yaml").read_text()
SCHEMA = ROOT / "config/schema.yaml"
BOMB = """_anchors:
  a: &a [x, x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
"""


def written(tmp_path, text: str, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def check(path, program: bool = False) -> subprocess.CompletedProcess:
    """``python -m kentropy.pipeline.config_check path``: run as a program, or its ``main`` called here."""
    command = [sys.executable, "-m", "kentropy.pipeline.config_check", str(path)]
    if program:
        return subprocess.run(command, capture_output=True, text=True, timeout=60)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
        config_check.main([str(path)])
    return subprocess.CompletedProcess(command, exit.value.code, out.getvalue(), err.getvalue())


def variant(change) -> str:
    config = yaml.safe_load(E2E)
    change(config)
    return yaml.safe_dump(config)


def test_a_duplicate_key_names_both_lines(tmp_path):
    text = E2E.replace("  seq_len: 32\n  batch_size: 8\n", "  seq_len: 32\n  batch_size: 8\n  batch_size: 9\n", 1)
    path = written(tmp_path, text)
    line = text.splitlines().index("  batch_size: 9") + 1
    message = f"{path}:{line}: duplicate key 'batch_size' (first at line {line - 1}); YAML keeps one"
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value) == message
    done = check(path, program=True)
    assert done.returncode == 1 and done.stderr == message + "\n"
    # YAML's merge key may still be overridden: that is what it is for.
    assert load_config_file(written(tmp_path, "a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n", "merge.yaml"))["b"] == {"x": 2}


def test_an_alias_bomb_stops_at_once(tmp_path):
    path = written(tmp_path, BOMB + E2E.replace("\nseed: 0", "\nseed: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]", 1))
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"the YAML expands to 12,345,888 values through its aliases"):
        load_config_file(path)
    assert time.monotonic() - start < 5  # a bound, not a speed claim: unbounded, it builds ten million values
    done = check(path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and len(done.stderr) < 300
    # A few shared values are fine.
    assert load_config_file(written(tmp_path, "a: &a [1, 2]\nb: *a\n", "small.yaml"))["b"] == [1, 2]


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c["models"].__setitem__("tiny\n", c["models"].pop("tiny")), "models"),
        (lambda c: c["continual"]["runs"].__setitem__("general\n", c["continual"]["runs"].pop("general")), "runs"),
        (lambda c: c.__setitem__("experiment", "e2e\n"), "experiment"),
    ],
)
def test_a_name_with_a_trailing_newline_is_not_a_name(change, key):
    config = yaml.safe_load(variant(change))
    with pytest.raises(ConfigError, match=r"is not a name: it becomes a folder"):
        validate_config(config, SCHEMA)


def test_counts_that_would_exhaust_memory_stop_validation():
    config = yaml.safe_load(variant(lambda c: c["continual"]["runs"]["general"].__setitem__("epochs", 10**10)))
    with pytest.raises(ConfigError, match=r"^config: continual.runs.general: epochs 10000000000 x steps_per_epoch"):
        validate_config(config, SCHEMA)
    config = yaml.safe_load(variant(lambda c: c["pretrain"].__setitem__("total_steps", 10**12)))
    with pytest.raises(ConfigError, match=r"^config: pretrain.total_steps: 1000000000000 x batch_size"):
        validate_config(config, SCHEMA)
    config = yaml.safe_load(variant(lambda c: c["world"].__setitem__("n_documents", 10**10)))
    with pytest.raises(ConfigError, match=r"^config: world.n_documents: 10000000000 is greater than the maximum"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("/ck/step{foo}", "field {foo} is not {step}"),
        ("/ck/{step.__class__.__name__}", "field {step.__class__.__name__} is not {step}"),
        ("/ck/{step!r}", "field {step!r} is not {step}"),
        ("/ck/{step[0]}", "field {step[0]} is not {step}"),
        ("/ck/{step", "is not a pattern"),
    ],
)
def test_a_path_takes_only_the_step_field_and_nothing_is_evaluated(pattern, message, tmp_path):
    with pytest.raises(PatternError, match=re_escape(message)):
        step_path(pattern, 10)
    config = yaml.safe_load(E2E)
    config["models"]["mine"] = {"source": "local", "path": pattern, "steps": [10]}
    with pytest.raises(ConfigError, match=r"^config: models.mine.path: " + re_escape(repr(pattern))):
        validate_config(config, SCHEMA)


def test_documented_path_and_template_fields_fill():
    assert step_path("/ck/step{step}", 10) == "/ck/step10"
    assert step_path("/ck/{step:07d}/{{raw}}", 10) == "/ck/0000010/{raw}"
    assert fill_pattern("Where was {subject} born?", subject="Ada") == "Where was Ada born?"


def test_a_facts_template_with_another_field_is_refused():
    import pandas as pd

    facts = pd.DataFrame({"subject": ["Ada"], "relation": ["born"], "object": ["Paris"],
                          "templates": [["{subject} ({subject.__class__}) was born in"]]})  # fmt: skip
    with pytest.raises(FactsError, match=r"column templates: .* field \{subject.__class__\} is not \{subject\}"):
        check_facts(facts)


def test_a_text_corpus_that_is_not_utf8_stops_the_dag_build(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"one line\ncaf\xe9 two\n")

    def text_corpus(c):
        c["entropy"]["corpus"] = {"name": "mine", "source": "text", "path": str(corpus)}

    path = written(tmp_path, variant(text_corpus))
    message = f"config: entropy.corpus.path: {corpus} is not UTF-8 text (byte 0xe9 at offset 12, line 2)"
    assert check(path).stderr.startswith(f"{path}: {message}")
    done = snakemake(tmp_path, "-n", "--configfile", str(path), timeout=120)
    assert done.returncode == 1 and message in done.stdout + done.stderr


def test_the_dag_build_gives_the_config_checkers_lines(tmp_path):
    dup = E2E.replace("  seq_len: 32\n  batch_size: 8\n", "  seq_len: 32\n  batch_size: 8\n  batch_size: 9\n", 1)
    bomb = BOMB + E2E.replace("\nseed: 0", "\nseed: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]", 1)
    newline = variant(lambda c: c["models"].__setitem__("tiny\n", c["models"].pop("tiny")))
    for name, text in (("dup.yaml", dup), ("bomb.yaml", bomb), ("newline.yaml", newline)):
        path = written(tmp_path, text, name)
        expected = check(path).stderr.strip()
        start = time.monotonic()
        done = snakemake(tmp_path, "-n", "--configfile", str(path), timeout=120)
        assert done.returncode == 1 and time.monotonic() - start < 60
        error = expected.removeprefix(f"{path}: ") if expected.startswith(f"{path}: config:") else expected
        assert error in (done.stdout + done.stderr).splitlines(), (name, done.stdout[-2000:])


def re_escape(text: str) -> str:
    import re

    return re.escape(text)
