"""Shared fixtures: tiny random models of every supported architecture (float64, eager attention)."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from kentropy.core.environment import OFFLINE

from .session_tasks import SharedTask, in_background
from .slurm_cluster import SlurmRuns, idle_nodes, run_through_slurm
from .warm_servers import SERVER, offline_environ

ROOT = Path(__file__).resolve().parents[1]
#: How much lower than the end-to-end DAG's the tests' CPU priority is (``_e2e_started``).
TESTS_NICENESS = 10

VOCAB = 97


def tiny_model(arch: str, seed: int = 0, dtype=torch.float64):
    import transformers as tf

    common = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
    )
    configs = {
        "olmo": lambda: tf.OlmoConfig(**common, pad_token_id=0, bos_token_id=None, eos_token_id=1),
        "olmo2": lambda: tf.Olmo2Config(**common, pad_token_id=0, bos_token_id=None, eos_token_id=1),
        "llama": lambda: tf.LlamaConfig(**common, num_key_value_heads=2, pad_token_id=0),
        "gpt_neox": lambda: tf.GPTNeoXConfig(**common, pad_token_id=0),
    }
    torch.manual_seed(seed)
    config = configs[arch]()
    config._attn_implementation = "eager"
    model = tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager").to(dtype).eval()
    # Random init leaves some weights at exactly 0/1 (norms); perturb so every path matters.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def save_word_tokenizer(folder: Path) -> None:
    """A word-level tokenizer over ``tiny_model``'s vocabulary (words ``w0``…``w96``; 0 pads, 1 ends, 2 is
    unknown), saved as a Hub checkpoint ships one."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(VOCAB)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="w2"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="w0", eos_token="w1", unk_token="w2").save_pretrained(
        folder
    )


ARCHS = ["olmo", "olmo2", "llama", "gpt_neox"]


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param


def random_sequences(n: int, seed: int, min_len: int = 3, max_len: int = 17) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    return [torch.randint(2, VOCAB, (int(n),), generator=g).tolist() for n in lengths]


def pretraining(lr: float, weight_decay: float, seq_len: int, alpha_f: float = 0.1, warmup_fraction: float = 0.1):
    """The tests' small pretraining (32 wide, d_ff 48, 2 layers, 2 heads, batch 4, 10 steps, seed 0, SwiGLU)."""
    from kentropy.core.plan import Pretraining

    recipe = {"tokenizer_vocab_size": 300, "hidden_size": 32, "intermediate_size": 48, "num_layers": 2,
              "num_heads": 2, "seq_len": seq_len, "batch_size": 4, "lr": lr, "weight_decay": weight_decay,
              "warmup_fraction": warmup_fraction, "alpha_f": alpha_f, "total_steps": 10,
              "activation": "swiglu"}  # fmt: skip
    return Pretraining.from_recipe(recipe, seed=0)


def tiny_olmo(root: Path, n_fictional: int, noise: float = 0.0):
    """(world, tokenizer, model): a BPE tokenizer trained on a small generated world (saved in
    ``root/tok``) and a randomly initialised tiny OLMo on it, weights perturbed by ``noise``."""
    from transformers import AutoTokenizer

    from kentropy.sources.world import build_world, pretraining_corpus
    from kentropy.training.pretrain import init_model, train_tokenizer

    world = build_world(0, 20, n_fictional)
    train_tokenizer(pretraining_corpus(world, 200, 1), 300, root / "tok")
    tokenizer = AutoTokenizer.from_pretrained(root / "tok")
    model = init_model(pretraining(lr=1e-3, weight_decay=0.1, seq_len=64), tokenizer).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return world, tokenizer, model


def _snakemake_call(workdir: Path, args: tuple[str, ...]) -> tuple[list[str], dict]:
    """The command line (through the session's warm server: tests/warm_servers.py) and environment (offline) that
    run the workflow in ``workdir``."""
    snakemake = [*SERVER.command(), "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "2"]
    return [*snakemake, "--directory", str(workdir), *args], offline_environ()


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir``, offline."""
    command, env = _snakemake_call(workdir, args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from Snakemake's "Job stats" block."""
    stats = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def _uses(item, *fixtures: str) -> bool:
    """Whether a collected test uses one of ``fixtures``."""
    return not set(fixtures).isdisjoint(getattr(item, "fixturenames", ()))


def _reads_e2e(item) -> bool:
    """Whether a collected test reads the end-to-end DAG (the ``e2e`` fixture) or the Slurm run's."""
    return _uses(item, "e2e", "e2e_alone", "slurm_dag")


#: Test files whose every test reads the finished test DAG, sharing no module fixture: pytest-xdist hands their tests
#: out one at a time (``pytest_xdist_make_scheduler``), so both workers read the DAG until the session's end.
DAG_READER_FILES = ("tests/test_cli_dag.py", "tests/test_dag_outputs.py", "tests/test_dag_reruns.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (a file's tests on one worker, so its module fixtures are built once), except that each
    test of ``DAG_READER_FILES`` is a unit of its own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class DagReadersOneByOne(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.split("::", 1)[0] in DAG_READER_FILES else super()._split_scope(nodeid)

    return DagReadersOneByOne(config, log)


def pytest_configure(config):
    idle_nodes()  # counted once, before pytest-xdist starts its workers (they inherit the count)


def pytest_collection_modifyitems(items):
    """The tests that read the end-to-end DAG run last (otherwise in collection order), so every other test
    runs while the DAG is being built in the background (``_e2e_started``)."""
    items.sort(key=_reads_e2e)


def copy_checkout(dest: Path) -> Path:
    """The checkout's files (tracked, and untracked ones git does not ignore) copied to ``dest``, with this
    interpreter's virtual environment linked in as ``dest/.venv``: a checkout somewhere else, as a user has it."""
    import shutil

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return dest


@pytest.fixture(scope="session", autouse=True)
def _warm_server():
    """The session's warm server (tests/warm_servers.py): started by its first user, stopped at the end."""
    yield SERVER
    SERVER.stop()


def _run_e2e_dag(task: SharedTask) -> None:
    """The whole DAG of tests/config/e2e.yaml (published as ``dag``: its working directory, return code and the
    end of its log), run as a user would run it from a checkout whose path holds a space and a non-ASCII
    letter: that checkout's Snakefile and library, its folder as the working directory. The interpreter is this
    one (``test_script_rules_run_with_an_interpreter_path_holding_a_space`` runs one from such a path)."""
    work = copy_checkout(task.folder / "my checkout ü")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(work / "Snakefile"), "--cores", "2"]
    command += ["--configfile", str(work / "tests/config/e2e.yaml")]
    env = offline_environ(PYTHONPATH=str(work / "src"))
    with open(task.folder / "e2e.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
        while proc.poll() is None:
            if task.stop.wait(0.2):  # the session ended before the DAG did
                proc.terminate()
                proc.wait()
                return
    task.publish("dag", (work, proc.returncode, (task.folder / "e2e.log").read_text()[-4000:]))


@pytest.fixture(scope="session", autouse=True)
def _e2e_started(request, tmp_path_factory):
    """The e2e DAG (``_run_e2e_dag``), started in the background with the session's first test when any collected
    test reads it: it runs beside the unit tests, instead of before the first test that needs it."""
    with in_background(tmp_path_factory, "e2e", _run_e2e_dag, any(map(_reads_e2e, request.session.items))) as task:
        if task is not None:
            # The DAG is the suite's longest chain (its readers wait for it): the tests, and what they start from
            # here on, yield the cores to it. On Linux a thread's nice value is its own: the DAG's thread keeps its.
            os.nice(TESTS_NICENESS)
        yield task


def _plan_readme_commands(task: SharedTask) -> None:
    """The README's commands planned one after another (tests/readme_plans.py), each plan published under its
    index in ``distinct_arguments()``."""
    from .readme_plans import distinct_arguments, plan

    for i, argv in enumerate(distinct_arguments()):
        if task.stop.is_set():
            return
        (task.folder / str(i)).mkdir()
        task.publish(str(i), plan(argv, task.folder / str(i)))


@pytest.fixture(scope="session", autouse=True)
def _readme_plans_started(request, tmp_path_factory, _warm_server):
    """The README's plans, in the background from the session's start when a collected test reads them."""
    needed = any(_uses(item, "readme_plans") for item in request.session.items)
    with in_background(tmp_path_factory, "readme", _plan_readme_commands, needed) as task:
        yield task


@pytest.fixture(scope="session")
def readme_plans(_readme_plans_started):
    """``plan(command)``: the README command's Snakemake arguments and finished process."""
    from .readme_plans import arguments, distinct_arguments

    index = {argv: str(i) for i, argv in enumerate(distinct_arguments())}
    return lambda command: (arguments(command), _readme_plans_started.result(index[arguments(command)], timeout=900))


def _run_slurm(task: SharedTask) -> None:
    """``run_through_slurm`` (tests/slurm_cluster.py), published as ``runs``."""
    runs = SlurmRuns(task.folder / "work")
    runs.work.mkdir()
    run_through_slurm(runs, _snakemake_call, ROOT)
    task.publish("runs", runs)


@pytest.fixture(scope="session", autouse=True)
def _slurm_started(request, tmp_path_factory, _warm_server):
    """Part of the test DAG through Slurm, then its training job killed and resumed (tests/slurm_cluster.py),
    started with the session's first test when a collected test reads it and two Slurm nodes were idle when the
    session started: the first trajectory's first pretraining segment, its entropy job, the stream and the
    training job, placed on both nodes."""
    needed = idle_nodes() >= 2 and any(_uses(item, "slurm_dag") for item in request.session.items)
    with in_background(tmp_path_factory, "slurm", _run_slurm, needed) as task:
        yield task


@pytest.fixture(scope="session")
def slurm_dag(_slurm_started) -> SlurmRuns:
    """Both Slurm runs, finished."""
    runs = _slurm_started.result("runs", timeout=1800)
    assert runs.returncode == 0, runs.output[-4000:]
    return runs


def _finished_e2e(task: SharedTask, exclusive: bool) -> Iterator[Path]:
    """The finished test DAG's working directory, held under a lock all pytest-xdist workers see: shared by the
    tests that read, copy or plan in it, exclusive for one that runs jobs in it."""
    work, returncode, log = task.result("dag", timeout=900)
    assert returncode == 0, log
    with open(str(task.folder) + ".in-use", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)  # released when the file closes
        yield work


@pytest.fixture
def e2e(_e2e_started) -> Iterator[Path]:
    """The finished test DAG (its working directory), run locally once per session, for a test that reads it,
    copies it or plans in it (a dry run): several such tests at a time, none beside an ``e2e_alone`` test."""
    yield from _finished_e2e(_e2e_started, exclusive=False)


@pytest.fixture
def e2e_alone(_e2e_started) -> Iterator[Path]:
    """The finished test DAG for a test that runs jobs in it (they rewrite its files): held by that test alone."""
    yield from _finished_e2e(_e2e_started, exclusive=True)


@pytest.fixture(scope="session")
def warm_python(_warm_server) -> list[str]:
    """An interpreter command, offline, whose program runs in a child forked by the session's warm server
    (tests/warm_servers.py): for tests that start many short processes whose start-up is not what they test. A
    command with an import-time variable the server was not started with runs cold, as in the workflow."""
    return ["env", *(f"{name}={value}" for name, value in OFFLINE.items()), *_warm_server.command()]
