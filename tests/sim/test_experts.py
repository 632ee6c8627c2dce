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
