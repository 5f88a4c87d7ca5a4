"""The typed plan: built once from each shipped config, every part round-tripping through its one
serialisation, derived numbers as properties."""

from __future__ import annotations

import dataclasses

import pytest

from kentropy.core.config import load_config
from kentropy.core.plan import Plan, Run, Spec

from .conftest import ROOT

CONFIGS = ["config.yaml", "miniature.yaml", "olmo-1b.yaml", "olmo-7b.yaml", "olmo2-1b.yaml", "pythia-1.4b.yaml"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_part_of_every_plan_round_trips(name):
    plan = Plan.from_config(load_config(ROOT / "config" / name))
    parts = [*plan.runs.values(), plan.evaluation, plan.entropy, plan.speed]
    parts += [plan.resuscitation] if plan.resuscitation else []
    for part in parts:
        assert isinstance(part, Spec) and type(part).from_json(part.to_json()) == part
        assert type(part).from_dict(part.to_dict()) == part
    assert set(plan.trained) | set(plan.resuscitation_trained) == set(plan.runs)


def test_the_default_plan():
    plan = Plan.from_config(load_config(ROOT / "config/config.yaml"))
    assert plan.trained == ("baseline", "general")  # one continual seed per trajectory
    assert list(plan.trajectories) == ["tiny", "tiny-traj1", "tiny-traj2"]
    assert [(t.model, t.seed, t.primary) for t in plan.trajectories.values()] == [
        ("tiny", 0, True), ("tiny", 1, False), ("tiny", 2, False)
    ]  # fmt: skip
    assert plan.run_on("tiny", "baseline").seed == 0  # the primary trajectory trains as a one-trajectory config
    nested = {plan.run_on(t, "baseline").seed for t in plan.trajectories}
    assert len(nested) == 3  # no two trajectories share a continual stream
    assert plan.resuscitation_trained == ("baseline",)
    assert plan.resuscitation.variants == ["resus-p30-q1", "resus-p50-q1", "resus-p50-q2"]
    assert plan.resuscitation.figure14 == (50, 2) and plan.resuscitation.figure15_steps == (429, 1706)
    assert [r.seed for r in plan.baseline_runs()] == [0]
    run = dataclasses.replace(plan.runs["baseline"], name="baseline-seed1", seed=1)
    assert (run.run, run.seed, run.total_steps, run.accumulation(1)) == ("baseline", 1, 80, 1)
    assert run.stream.inject_interval == 8  # plan.inject_interval: the first epoch split into n_injections
    assert run.retention_steps == (15, 23, 31, 39, 47, 55, 63, 71, 79, 80)
    # The speed settings are a part of their own, never a param: nothing else holds a batch size of a job.
    assert plan.speed.threads == 1 and plan.speed.entropy_batch_size == 32 and plan.speed.compile is False
    assert "batch_size" not in plan.entropy.to_dict() and "threads" not in plan.evaluation.to_json()
    assert plan.evaluation.released.to_dict() == {"batch_size": 16, "world_size": 4}  # the schema's defaults


def test_a_run_refuses_a_batch_its_processes_cannot_split():
    run = Plan.from_config(load_config(ROOT / "config/config.yaml")).runs["baseline"]
    with pytest.raises(ValueError, match="batch_size 16 is not a multiple of micro_batch_size 16 x 3 processes"):
        run.accumulation(3)
    smaller = dataclasses.replace(run.parallelism, micro_batch_size=4)
    assert dataclasses.replace(run, parallelism=smaller).accumulation(2) == 2
    assert Run.from_json(run.to_json()).tokens == run.tokens == 80 * 16 * 128
