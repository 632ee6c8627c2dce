"""Scripted experts solve each task on a few seeds; flawed qualities differ from the expert.

The 100-episode success table comes from `robot-rl sim experts --episodes 100` (README).
"""

import numpy as np
import pytest

import sim
from robot_rl import keys
from sim.experts import make_expert
from sim.rollout import rollout_episode


@pytest.mark.parametrize("task", ["reach", "push", "lift", "insertion"])
def test_expert_succeeds(task):
    env = sim.make_env(task)
    for seed in (100, 101):
        steps, success = rollout_episode(env, make_expert(task, "expert", seed=seed), seed)
        assert success, f"{task} expert failed on seed {seed}"
        assert steps[keys.ACTION].dtype == np.float32
        assert steps[keys.ACTION].shape[1] == env.hw.action_dim
        assert steps[keys.TERMINAL][-1] and not steps[keys.TERMINAL][:-1].any()


def test_poor_quality_perturbs_actions_reproducibly():
    env = sim.make_env("lift")
    a, _ = rollout_episode(env, make_expert("lift", "poor", seed=4), 4)
    b, _ = rollout_episode(env, make_expert("lift", "poor", seed=4), 4)
    c, _ = rollout_episode(env, make_expert("lift", "expert", seed=4), 4)
    np.testing.assert_array_equal(a[keys.ACTION], b[keys.ACTION])
    n = min(len(a[keys.ACTION]), len(c[keys.ACTION]))
    assert not np.allclose(a[keys.ACTION][:n], c[keys.ACTION][:n])


def test_unknown_task_or_quality_is_named():
    with pytest.raises(ValueError, match="stack"):
        make_expert("stack")
    with pytest.raises(ValueError, match="sloppy"):
        make_expert("push", quality="sloppy")


def test_execution_noise_moves_the_arm_off_the_expert_path_but_records_the_experts_action():
    """DART collection: the arm executes noisy targets; the recorded action is what the expert
    asked for from the state it was in (so it recovers), reproducibly for a seed."""
    env = sim.make_env("push")
    clean, _ = rollout_episode(env, make_expert("push", "expert", seed=7), 7)

    class Recording:
        def __init__(self):
            self.inner, self.asked = make_expert("push", "expert", seed=7), []

        def reset(self):
            self.inner.reset()

        def act(self, obs):
            self.asked.append(self.inner.act(obs))
            return self.asked[-1]

    expert = Recording()
    noisy, success = rollout_episode(env, expert, 7, execution_noise=0.03)
    again, _ = rollout_episode(env, make_expert("push", "expert", seed=7), 7, execution_noise=0.03)
    assert success
    np.testing.assert_array_equal(noisy[keys.ACTION], np.stack(expert.asked).astype(np.float32))
    np.testing.assert_array_equal(noisy[keys.ACTION], again[keys.ACTION])
    # The executed targets were not the recorded ones: the joints the arm reached differ.
    n = min(len(clean[keys.JOINT_POS]), len(noisy[keys.JOINT_POS]))
    assert np.abs(noisy[keys.JOINT_POS][1:n] - clean[keys.JOINT_POS][1:n]).max() > 0.01
    # The arm tracked the noisy targets: it lands further from the recorded ones than in the clean run.
    reached = noisy[keys.JOINT_POS][1:, :6]
    asked = noisy[keys.ACTION][:-1, :6]
    assert (
        np.abs(reached - asked).mean()
        > np.abs(clean[keys.JOINT_POS][1:, :6] - clean[keys.ACTION][:-1, :6]).mean()
    )


@pytest.mark.parametrize("task", ["push", "lift"])
def test_steps_after_success_show_the_task_finished(task):
    """Past the threshold the expert keeps going (push: the cube on toward the goal's centre,
    then held; lift: the cube on up), for exactly the asked number of steps, terminal on the
    last one."""
    stopped, _ = rollout_episode(sim.make_env(task), make_expert(task, "expert", seed=0), 0)
    env = sim.make_env(task, terminate_on_success=False)
    steps, success = rollout_episode(env, make_expert(task, "expert", seed=0), 0, steps_after_success=10)
    assert success
    assert len(steps[keys.ACTION]) == len(stopped[keys.ACTION]) + 10
    assert steps[keys.TERMINAL][-1] and not steps[keys.TERMINAL][:-1].any()
    first, last = stopped[keys.OBJECT_POSE][-1], steps[keys.OBJECT_POSE][-1]
    if task == "push":
        goal = steps[keys.GOAL_POS][-1]
        assert np.linalg.norm(last[:2] - goal[:2]) < np.linalg.norm(first[:2] - goal[:2]) - 0.01
    else:
        assert last[2] > first[2] + 0.03


def test_steps_after_success_need_an_env_that_does_not_end_on_success():
    env = sim.make_env("push")
    with pytest.raises(ValueError, match="terminate_on_success=False"):
        rollout_episode(env, make_expert("push", "expert", seed=0), 0, steps_after_success=5)
    with pytest.raises(ValueError, match="steps_after_success"):
        rollout_episode(env, make_expert("push", "expert", seed=0), 0, steps_after_success=-1)
