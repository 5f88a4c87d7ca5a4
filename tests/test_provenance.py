"""Results know the code that made them: per-script code digests, table metadata, local-checkpoint fingerprints."""

import json
import os
import re
import shutil

import pandas as pd
import pyarrow.parquet as pq

from kentropy.core import provenance
from kentropy.core.io import write_table
from kentropy.core.provenance import (
    PACKAGE,
    code_digest,
    imported_modules,
    local_checkpoint_fingerprint,
    modules_used,
    package_modules,
)

from .conftest import ROOT

SCRIPTS = ROOT / "workflow/scripts"


def _copy_package(tmp_path):
    package = tmp_path / "kentropy"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "data"))
    return package


def test_a_library_change_changes_the_digest_of_exactly_the_scripts_that_run_it(tmp_path):
    package = _copy_package(tmp_path)
    entropy, figure = SCRIPTS / "measure_entropy.py", SCRIPTS / "figure.py"
    measuring = "measurement.entropy_pass"
    assert measuring in modules_used(entropy, package) and measuring not in modules_used(figure, package)
    # training runs kentropy.pipeline.continual_job as a program: found through the launch command's "-m
    # kentropy.pipeline.continual_job", and the trainer through it
    used = modules_used(SCRIPTS / "continual_train.py", package)
    assert {"pipeline.continual_job", "training.continual"} <= set(used)
    before = {s: code_digest(s, package) for s in (entropy, figure)}

    source = package / "measurement" / "entropy_pass.py"
    text = source.read_text()
    # A docstring, a comment and reformatting change no behaviour: nothing reruns.
    first_def = text.index("\ndef ")
    source.write_text(text[:first_def] + "\n# a comment\n\n" + text[first_def:].replace('"""', '"""Reworded. ', 1))
    assert {s: code_digest(s, package) for s in (entropy, figure)} == before
    # A change in code reruns the entropy jobs only.
    source.write_text(text + "\n\ndef _added():\n    return 1\n")
    assert code_digest(entropy, package) != before[entropy] and code_digest(figure, package) == before[figure]


def test_every_rule_with_a_script_tracks_its_code():
    rules = "".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    blocks = re.split(r"(?m)^rule ", rules)[1:]
    scripted = [b.split(":")[0] for b in blocks if "    script:" in b]
    untracked = [b.split(":")[0] for b in blocks if "    script:" in b and "code=code(" not in b]
    assert len(scripted) >= 20 and untracked == []


def test_tables_record_the_library_version_and_code(tmp_path):
    write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.parquet")
    meta = pq.read_schema(tmp_path / "t.parquet").metadata
    assert meta[b"kentropy_version"] == b"0.1.0" and len(meta[b"kentropy_code"]) == 16
    assert pd.read_parquet(tmp_path / "t.parquet").a.tolist() == [1, 2]


def test_a_local_checkpoint_changed_in_place_changes_its_fingerprint(tmp_path):
    folder, cache = tmp_path / "step10", tmp_path / "cache.json"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"a" * 64)
    (folder / "README.md").write_text("not part of the fingerprint")
    first = local_checkpoint_fingerprint(folder, cache)
    assert sorted(first) == ["config.json", "model.safetensors"] and first["model.safetensors"].startswith("64:")
    assert local_checkpoint_fingerprint(folder, cache) == first  # from the cache
    stat = weights.stat()
    weights.write_bytes(b"b" * 64)  # same size, other bytes
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert local_checkpoint_fingerprint(folder, cache)["model.safetensors"] != first["model.safetensors"]


def test_an_edit_in_a_subpackage_changes_the_digest_of_the_jobs_that_run_it(tmp_path):
    """kentropy.measurement.meters is a subpackage, reached through ``from .meters import …`` and its own relative
    imports: editing one of its modules reruns the entropy jobs (a changed code param), not the training."""
    package = _copy_package(tmp_path)
    entropy, train = SCRIPTS / "measure_entropy.py", SCRIPTS / "continual_train.py"
    meters = "measurement.meters"
    assert {meters, f"{meters}.registry", f"{meters}.sparsity", f"{meters}.kernels"} <= set(
        modules_used(entropy, package)
    )
    assert not any(m.startswith(meters) for m in modules_used(train, package))
    before = {s: code_digest(s, package) for s in (entropy, train)}
    source = package / "measurement" / "meters" / "sparsity.py"
    source.write_text(source.read_text() + "\n\ndef _added():\n    return 1\n")
    assert code_digest(entropy, package) != before[entropy] and code_digest(train, package) == before[train]


def _import_graph():
    """{module: the kentropy modules it imports}, leaving out a submodule's own packages (importing
    ``meters.registry`` runs ``meters/__init__``, which is no dependency of the registry's code)."""
    modules = package_modules(PACKAGE)
    graph = {}
    for name, path in modules.items():
        imported = imported_modules(path, name, modules)
        graph[name] = {m for m in imported if m != name and not name.startswith(f"{m}.")}
    return graph


def test_the_library_has_no_import_cycle():
    from graphlib import CycleError, TopologicalSorter

    graph = _import_graph()
    assert {"core.plan", "measurement.meters.sparsity", "core.hashing"} <= set(graph)
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_no_library_module_imports_another_modules_private_name():
    import ast

    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("kentropy")):
                private += [f"{path.relative_to(PACKAGE)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []


#: The stages from the bottom up (docs/design.md, "Layout"): a module imports only modules of its own stage and
#: of the stages below it.
STAGES = ("core", "sources", "evaluation", "measurement", "training", "analysis", "report", "pipeline", "cli")


def test_imports_run_one_way_from_the_stages_down_to_the_core():
    graph = _import_graph()
    assert {name.split(".")[0] for name in graph if name != "__init__"} == set(STAGES)
    rank = {stage: i for i, stage in enumerate(STAGES)}
    upward = sorted(
        f"{name} -> {m}"
        for name, imported in graph.items()
        if name != "__init__"
        for m in imported
        if rank[m.split(".")[0]] > rank[name.split(".")[0]]
    )
    assert upward == []


def test_the_trainer_never_imports_the_benchmark_harness():
    """Train, then evaluate, is the training job's composition (kentropy.pipeline.continual_job): everything the
    trainer imports, followed transitively (imports inside functions too), leaves lm-eval and the command line
    out."""
    graph, reached, todo = _import_graph(), set(), ["training.continual"]
    while todo:
        name = todo.pop()
        reached.add(name)
        todo += [m for m in graph[name] if m not in reached]
    assert "evaluation.benchmarks" not in reached and "evaluation.model_state" not in reached
    assert not any(m.split(".")[0] in ("cli", "pipeline") for m in reached)


def test_the_design_maps_every_module_of_the_tree():
    """docs/design.md's module map lists each module under its stage's folder, in the tree's order of stages."""
    text = (PACKAGE.parents[1] / "docs" / "design.md").read_text()
    tree = text[text.index("src/kentropy/ ") : text.index("profiles/default/")]
    stage, listed = None, set()
    for line in tree.splitlines()[1:]:
        name = line.split("#")[0].strip()
        if line.startswith("  ") and not line.startswith("    ") and name.endswith("/"):
            stage = name.rstrip("/")
        elif line.startswith("    ") and not line.startswith("     ") and name:
            listed.add(f"{stage}/{name}")
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.glob("*/*.py") if p.name != "__init__.py"}
    modules |= {f"{p.parent.relative_to(PACKAGE)}/" for p in PACKAGE.glob("*/*/__init__.py")}
    assert listed == modules


def test_what_a_module_gives_is_cached_by_content_and_a_bad_entry_is_recomputed(tmp_path, monkeypatch):
    """The second digest of the same code parses nothing (a fresh process reads the cache); an entry that is not
    a whole digest is computed again and rewritten; with no writable cache the digest is the same."""

    def fresh_process():  # what this process already knows, forgotten
        monkeypatch.setattr(provenance, "_KNOWN", {})

    package = _copy_package(tmp_path)
    entropy = SCRIPTS / "measure_entropy.py"
    monkeypatch.setattr(provenance, "CODE_CACHE", tmp_path / "cache")
    fresh_process()
    first = code_digest(entropy, package)
    digests = sorted((tmp_path / "cache/digests").iterdir())
    contents = {package_modules(package)[name].read_bytes() for name in modules_used(entropy, package)}
    assert len(digests) == len(contents) and first == code_digest(entropy, package)  # one entry per content
    assert (tmp_path / "cache/imports").is_dir()
    parsed = []
    monkeypatch.setattr(provenance, "_normalised_source", lambda source: parsed.append(source) or "")
    monkeypatch.setattr(provenance, "_parsed_imports", lambda source: parsed.append(source) or [])
    fresh_process()
    assert code_digest(entropy, package) == first and parsed == []
    digests[0].write_text('"' + "0" * 63 + '"')  # not a digest
    fresh_process()
    assert code_digest(entropy, package) != first and len(parsed) == 1  # computed again (by the stub here)
    monkeypatch.undo()
    monkeypatch.setattr(provenance, "CODE_CACHE", tmp_path / "cache")
    digests[0].write_text("not JSON\n")
    fresh_process()
    assert code_digest(entropy, package) == first and len(json.loads(digests[0].read_text())) == 64
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(provenance, "CODE_CACHE", tmp_path / "a-file" / "cache")  # cannot be created
    fresh_process()
    assert code_digest(entropy, package) == first
