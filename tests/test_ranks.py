"""A training process's place in its process group: from a launcher, from Slurm's task variables, or alone."""

import pytest

from kentropy.training.ranks import PORT_BASE, TORCH_VARIABLES, RankError, first_host, process_group_environment


def never() -> int:
    raise AssertionError("a process with a rank asks for no free port")


@pytest.mark.parametrize(
    "nodelist, host",
    [("n1", "n1"), ("n1,n2", "n1"), ("gpu[003-004,9],cpu1", "gpu003"), ("node[7]", "node7"), ("a[2-3]-ib", "a2-ib")],
)
def test_first_host_of_a_slurm_node_list(nodelist, host):
    assert first_host(nodelist) == host


def test_srun_tasks_take_their_rank_from_slurm():
    """Task 5 of 8 on the second of two 4-GPU nodes: rank 5, local rank 1, the first node's address, the job's
    port."""
    env = {"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8",
           "SLURM_STEP_NODELIST": "gpu[12-13]", "SLURM_JOB_ID": "123456"}  # fmt: skip
    assert process_group_environment(env, never) == {
        "RANK": "5",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "8",
        "MASTER_ADDR": "gpu12",
        "MASTER_PORT": str(PORT_BASE + 123456 % 20000),
    }


def test_a_launcher_s_variables_win_and_must_be_complete():
    full = dict(zip(TORCH_VARIABLES, ["1", "1", "2", "host", "29500"]))
    assert process_group_environment({**full, "SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "3"}, never) == full
    with pytest.raises(RankError, match="RANK is set but WORLD_SIZE, MASTER_ADDR, MASTER_PORT not"):
        process_group_environment({"RANK": "0", "LOCAL_RANK": "0"}, never)


def test_a_lone_process_is_rank_zero_of_one_on_a_free_port():
    for env in ({}, {"SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}):
        assert process_group_environment(env, lambda: 40123) == {
            "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "40123"
        }  # fmt: skip


def test_a_process_among_several_slurm_tasks_without_a_rank_refuses_to_start():
    """The batch step of an allocation of 8 tasks, running training itself: it would train the whole batch alone."""
    with pytest.raises(RankError, match=r"allocation of 8 tasks .* start it with `srun` .* or set RANK, LOCAL_RANK"):
        process_group_environment({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}, never)
