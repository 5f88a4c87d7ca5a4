"""The test DAG submitted to a real two-node Slurm cluster with the project's profile (``.ci/run`` starts one on
the one machine, ``.ci/slurm.sh``): its training job across both nodes, one task each (gloo).

Without a reachable Slurm controller the tests are skipped: they need ``.ci/slurm.sh start`` (root, Debian).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from kentropy.cli.train import program
from kentropy.pipeline.continual_job import TrainingJob

from .slurm_cluster import COMPARED, MEASURED, TRAIN_LOG, TRAINED, idle_nodes, sbatch_until_ended
from .test_continual import RUN

pytestmark = pytest.mark.skipif(idle_nodes() < 2, reason="no two idle Slurm nodes here (.ci/slurm.sh start makes them)")


def submitted_jobs(output: str) -> dict[str, str]:
    """{Slurm job id: its log} of every job Snakemake submitted."""
    return dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", output))


def test_test_dag_runs_through_slurm_training_across_two_nodes_and_matches_the_local_run(slurm_dag, e2e):
    """The test DAG through the Slurm profile, its training job an MPI-style job on two nodes whose script
    starts one task per node with srun; the tasks meet in one gloo group and train what one process trains
    locally."""
    tmp_path, output = slurm_dag.work, slurm_dag.output
    submitted = submitted_jobs(output)
    rules = {re.search(r"slurm_logs/rule_(\w+)/", log)[1] for log in submitted.values()}
    assert {"pretrain_tiny", "measure_entropy", "continual_train"} <= rules
    # Two tasks, one on each node, in one process group of two; the saved model records the world size.
    train_log = (tmp_path / TRAIN_LOG).read_text()
    assert train_log.startswith("srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --kill-on-bad-exit=1 ")
    assert {"rank 0 of 2 on n1", "rank 1 of 2 on n2"} <= set(re.findall(r"rank \d of \d on n\d", train_log))
    assert json.loads((tmp_path / TRAINED).parent.joinpath("model/continual.json").read_text())["world_size"] == 2
    assert "fetch_checkpoint" not in rules and "fictional_knowledge" not in rules  # localrules stay local
    for jobid, log in submitted.items():
        assert Path(log).name == f"{jobid}.log" and Path(log).is_file()
    # The scheduler knows the jobs: squeue lists finished jobs for MinJobAge seconds.
    listed = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i %T"], capture_output=True, text=True, check=True)
    states = dict(line.split() for line in listed.stdout.splitlines())
    assert all(states.get(j) == "COMPLETED" for j in submitted)

    slurm, local = pd.read_parquet(tmp_path / MEASURED), pd.read_parquet(e2e / MEASURED)
    pd.testing.assert_frame_equal(slurm, local, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / TRAINED), pd.read_parquet(e2e / TRAINED), check_exact=False, rtol=1e-5
    )
    two, one = (
        load_file(root / TRAINED.replace("loss.parquet", "model/model.safetensors")) for root in (tmp_path, e2e)
    )
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6)


def test_a_task_lost_mid_run_fails_the_job_naming_it_and_the_retry_resumes_byte_for_byte(slurm_dag):
    """Rank 1 (on n2) killed after the first resumable checkpoint (tests/slurm_cluster.py): srun stops rank 0, the
    job fails naming the task and its node, the profile's retry resumes from the checkpoint, and the model is the
    uninterrupted run's, byte for byte."""
    runs = slurm_dag
    assert runs.killed is not None, "the run ended before a task could be killed after its first checkpoint"
    assert runs.rerun_returncode == 0, runs.rerun_output[-4000:]
    logs = [Path(p).read_text() for p in submitted_jobs(runs.rerun_output).values() if "rule_continual_train" in p]
    assert len(logs) == 2  # the failed attempt and its retry
    assert "continual_train failed (exit " in logs[0] and ": n2: task 1: Killed" in logs[0]
    assert (
        "resumed from results/e2e/continual/tiny/step10/original/baseline/work at step 5"
        in (runs.work / TRAIN_LOG).read_text()
    )
    run = (runs.work / TRAINED).parent
    assert {name: (run / name).read_bytes() for name in COMPARED} == runs.uninterrupted


def test_a_process_in_an_allocation_of_several_tasks_without_a_rank_is_refused(tmp_path):
    """``kentropy train`` started once in a two-task allocation (not by srun) would train the whole batch alone
    and write over the other task's outputs: it stops first, saying what to do."""
    job = TrainingJob(model="ckpt", stream="tokens.npy", run=RUN, out=str(tmp_path / "model"), loss="loss.parquet",
                      work_dir=str(tmp_path / "work"), retention=None, evaluation=None)  # fmt: skip
    log = tmp_path / "refused.log"
    command = shlex.join([*program(), "--job", job.to_json()])
    options = ["--nodes=2", "--ntasks=2", "--partition=ci", "--time=2", f"--output={log}"]
    state, exit_code = sbatch_until_ended(options, command, timeout=300)
    assert (state, exit_code) == ("FAILED", "1:0") and not (tmp_path / "model").exists()
    assert "runs in a Slurm allocation of 2 tasks but is not one task of a multi-task step" in log.read_text()
