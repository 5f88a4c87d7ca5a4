"""The real resolution and download code, offline, against a hand-built local Hub cache."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from kentropy.sources.hub import step_revisions
from tests.conftest import save_word_tokenizer, tiny_model
from tests.hub_cache import add_revision, folder_files
from tests.warm_servers import SERVER, offline_environ

REPO = "allenai/OLMo-1B-hf"
BRANCHES = {117850: "step117850-tokens494B", 369000: "step369000-tokens1547B", 738020: "step738020-tokens3095B"}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("hf_cache")
    for step, branch in BRANCHES.items():
        model_dir = tmp_path_factory.mktemp(f"m{step}")
        tiny_model("olmo", seed=step).float().save_pretrained(model_dir)
        add_revision(cache, REPO, branch, folder_files(model_dir))
    add_revision(cache, REPO, "main", folder_files(model_dir))
    return cache


def offline(code: str) -> subprocess.CompletedProcess:
    """Run the program ``code`` in an interpreter of its own with the Hub switched off (huggingface_hub reads it at
    import): a fork of the session's offline warm server, which imported it so."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "program.py").write_text(code)
        command = [*SERVER.command(), str(Path(folder) / "program.py")]
        return subprocess.run(command, env=offline_environ(), capture_output=True, text=True, timeout=300)


def fetch(step: int, out: Path, cache: Path, repo: str = REPO) -> subprocess.CompletedProcess:
    """``fetch_checkpoint`` of ``step`` into ``out`` from ``cache``, offline, in a fresh interpreter."""
    return offline(
        f"from kentropy.sources.hub import fetch_checkpoint; fetch_checkpoint({repo!r}, {step}, {str(out)!r}, "
        f"cache_dir={str(cache)!r})"
    )


def test_step_revisions_parses_real_branch_names():
    names = ["main", "step117850-tokens494B", "step143000", "step1000-tokens4B-extra", "stage1-step10"]
    assert step_revisions(names) == {117850: "step117850-tokens494B", 143000: "step143000"}


def test_fetch_resolves_branch_and_writes_loadable_checkpoint(hub_cache, tmp_path):
    out = tmp_path / "step369000"
    proc = fetch(369000, out, hub_cache)
    assert proc.returncode == 0, proc.stderr
    source = json.loads((out / "source.json").read_text())
    assert source["revision"] == "step369000-tokens1547B"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    expected = tiny_model("olmo", seed=369000).float()
    for (name, p), (_, q) in zip(model.named_parameters(), expected.named_parameters()):
        assert (p == q).all(), name


def test_missing_step_lists_nearest_available(hub_cache, tmp_path):
    proc = fetch(400000, tmp_path / "x", hub_cache)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "no checkpoint for step 400000" in last and "369000 (step369000-tokens1547B)" in last
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_unknown_repo_offline_is_a_clear_error(hub_cache, tmp_path):
    proc = offline(
        "from kentropy.sources.hub import resolve_revision; "
        f"resolve_revision('allenai/OLMo-7B', 1000, {str(hub_cache)!r})"
    )
    assert "allenai/OLMo-7B: no branch matching" in proc.stderr and "offline" in proc.stderr


def test_fetch_converts_hf_olmo_layout(tmp_path):
    from safetensors.torch import save_file

    from tests.test_olmo_layout import CFG, random_hf_olmo_state

    cache, src = tmp_path / "cache", tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(CFG))
    save_file(random_hf_olmo_state(CFG), src / "model.safetensors")
    add_revision(cache, "allenai/OLMo-7B", "step1000-tokens4B", folder_files(src))
    out = tmp_path / "step1000"
    proc = offline(
        "from kentropy.sources.hub import fetch_checkpoint; "
        f"fetch_checkpoint('allenai/OLMo-7B', 1000, {str(out)!r}, cache_dir={str(cache)!r}, layout='hf_olmo')"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["model_type"] == "olmo"


def test_identical_weights_under_two_steps_are_recorded_and_flagged(tmp_path):
    """Two branches serving byte-identical weights (as reported for OLMo-2-1124-7B and some Pythia sizes):
    the fetch job records each weight file's sha256 (hashed from its bytes and checked against the cache's
    LFS blob name), and the check names the later step as a duplicate of the earlier one."""
    import hashlib

    from kentropy.sources.manifests import identical_weights

    cache, model_dir = tmp_path / "cache", tmp_path / "m"
    tiny_model("olmo", seed=1).float().save_pretrained(model_dir)
    files = folder_files(model_dir)
    repo = "allenai/OLMo-2-1124-7B"
    add_revision(cache, repo, "stage1-step1000-tokens5B", files)
    add_revision(cache, repo, "stage1-step2000-tokens9B", files)  # the same bytes
    other = tmp_path / "o"
    tiny_model("olmo", seed=2).float().save_pretrained(other)
    add_revision(cache, repo, "stage1-step3000-tokens13B", folder_files(other))
    sources = {}
    for step in (1000, 2000, 3000):
        out = tmp_path / f"step{step}"
        proc = offline(
            f"from kentropy.sources.hub import fetch_checkpoint; fetch_checkpoint({repo!r}, {step}, {str(out)!r}, "
            f"cache_dir={str(cache)!r}, pattern=r'^stage1-step(\\d+)-tokens\\d+B$')"
        )
        assert proc.returncode == 0, proc.stderr
        sources[step] = json.loads((out / "source.json").read_text())
    want = hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert sources[1000]["weights_sha256"] == {"model.safetensors": want}
    assert identical_weights(sources) == {2000: 1000}


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupted_cached_blob_is_refused_and_nothing_is_linked(tmp_path, damage):
    """One byte of a cached weight blob flipped (or the blob cut short, as an interrupted download leaves it):
    the fetch stops with one line naming the file and both hashes, and writes nothing into resources/."""
    import hashlib

    cache, model_dir = tmp_path / "cache", tmp_path / "m"
    tiny_model("olmo", seed=3).float().save_pretrained(model_dir)
    add_revision(cache, REPO, "step117850-tokens494B", folder_files(model_dir))
    good = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    blob = next((cache / f"models--{REPO.replace('/', '--')}" / "blobs").glob(good))
    data = bytearray(blob.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2 :]
    blob.write_bytes(bytes(data))
    out = tmp_path / "resources" / "step117850"
    proc = fetch(117850, out, cache)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    bad = hashlib.sha256(bytes(data)).hexdigest()
    assert f"model.safetensors: sha256 of the downloaded bytes {bad} differs from {good}" in last, last
    assert "the HF cache's record" in last
    assert not out.parent.exists() or not any(out.parent.iterdir())  # not even a temporary folder


def test_a_fetched_checkpoint_changed_later_is_refused_by_its_reader(hub_cache, tmp_path):
    """The fetch records every file's sha256 beside the checkpoint (kentropy.core.integrity); a reader checks them."""
    from kentropy.core.integrity import CHECKSUMS, CheckpointError
    from kentropy.sources.architectures import load_causal_lm

    out = tmp_path / "step738020"
    proc = fetch(738020, out, hub_cache)
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((out / CHECKSUMS).read_text())
    assert (
        recorded["model.safetensors"]
        == json.loads((out / "source.json").read_text())["weights_sha256"]["model.safetensors"]
    )
    load_causal_lm(str(out))
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").unlink()  # a hard link into the cache: replace it, do not write through it
    (out / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 0.5}))
    with pytest.raises(CheckpointError, match=r"config.json: sha256 \w+ differs from \w+ recorded"):
        load_causal_lm(str(out))


def test_a_manifest_refreshes_from_the_branch_list(hub_cache, tmp_path):
    """The refresh command's listing and parsing, offline from the cache (online it lists the Hub)."""
    out = tmp_path / "OLMo-1B.csv"
    code = (
        "from kentropy.sources.manifests import refresh; "
        f"refresh('OLMo-1B', {REPO!r}, __import__('pathlib').Path({str(out)!r}), cache_dir={str(hub_cache)!r})"
    )
    proc = offline(code)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "step,tokens\n117850,494298726400\n369000,1547698176000\n738020,3095480238080\n"


@pytest.fixture(scope="module")
def reuploaded(tmp_path_factory) -> tuple[Path, str, str]:
    """A cache where branch step369000 was re-uploaded: the old commit's snapshot stays, the ref names the new."""
    cache = tmp_path_factory.mktemp("hf_cache_reupload")
    commits = []
    for seed in (1, 2):
        model_dir = tmp_path_factory.mktemp(f"upload{seed}")
        tiny_model("olmo", seed=seed).float().save_pretrained(model_dir)
        save_word_tokenizer(model_dir)
        commits.append(add_revision(cache, REPO, BRANCHES[369000], folder_files(model_dir)))
    return cache, *commits


def _weights_equal(folder: Path, seed: int) -> bool:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    expected = tiny_model("olmo", seed=seed).float()
    return all((p == q).all() for p, q in zip(model.parameters(), expected.parameters()))


def test_a_step_pinned_to_a_commit_is_fetched_from_that_commit_by_the_dag(reuploaded, tmp_path):
    """models.<m>.revisions through the fetch_checkpoint rule, offline: the pinned step gets the first upload and
    records the pin in source.json; changing the pin is a param change of that step's job alone."""
    import yaml

    from tests.conftest import snakemake

    cache, old, new = reuploaded
    config = yaml.safe_load((Path(__file__).parents[1] / "config/olmo-1b.yaml").read_text())
    config["hf_cache"] = str(cache)
    config["models"]["olmo-1b"]["revisions"] = {369000: old}
    (tmp_path / "pinned.yaml").write_text(yaml.safe_dump(config))
    target = "resources/checkpoints/olmo-1b/step369000"
    proc = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(tmp_path / "pinned.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    source = json.loads((tmp_path / target / "source.json").read_text())
    assert (source["commit"], source["revision"], source["pinned"]) == (old, old, True)
    assert _weights_equal(tmp_path / target, seed=1)
    # Unpinned, the branch's current commit (the re-upload); a commit the cache lacks is named.
    assert fetch(369000, tmp_path / "unpinned", cache).returncode == 0
    assert json.loads((tmp_path / "unpinned/source.json").read_text())["commit"] == new
    assert _weights_equal(tmp_path / "unpinned", seed=2)
    proc = offline(
        "from kentropy.sources.hub import fetch_checkpoint; "
        f"fetch_checkpoint({REPO!r}, 369000, {str(tmp_path / 'x')!r}, "
        f"cache_dir={str(cache)!r}, revision={'0' * 40!r})"
    )
    assert f"{REPO}@{'0' * 40}: cannot be read" in proc.stderr and not (tmp_path / "x").exists()


def test_the_cli_reads_a_hub_repo_at_a_step_or_revision_offline(reuploaded, tmp_path):
    """``kentropy entropy --model REPO --step N`` and ``REPO@commit`` read the same cache the DAG fetches from."""
    cache, old, new = reuploaded
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(f"w{(7 * i + j) % 95 + 2}" for j in range(2 * i + 3)) + "\n" for i in range(12)))
    kentropy = [*SERVER.command(), "-m", "kentropy.cli.commands", "entropy", "--corpus", str(corpus),
                "--max-length", "32"]  # fmt: skip
    env = offline_environ()
    for model, extra, out in (
        (f"{REPO}@{old}", ["--hf-cache", str(cache)], "pinned.parquet"),
        (REPO, ["--step", "369000", "--hf-cache", str(cache)], "step.parquet"),
    ):
        proc = subprocess.run([*kentropy, "--model", model, *extra, "--out", str(tmp_path / out)], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    import pandas as pd

    pinned, step = pd.read_parquet(tmp_path / "pinned.parquet"), pd.read_parquet(tmp_path / "step.parquet")
    assert (pinned.revision == old).all() and pinned.step.isna().all() and (pinned.model == REPO).all()
    assert (step.revision == BRANCHES[369000]).all() and (step.step == 369000).all()
    assert (pinned.n_tokens == step.n_tokens).all() and pinned.n_tokens.iloc[0] > 12 * 3
    differs = pinned.value != step.value  # the first upload's weights, not the branch's current ones
    assert differs[pinned.metric != "dormant_fraction"].all()  # (no dormant vector in either: both 0)
