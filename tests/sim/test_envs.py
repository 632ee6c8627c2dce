"""The gymnasium environments: API conformance, spaces, rewards, timing, randomization, errors."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from robot_rl import keys
from robot_rl.config.loader import ConfigError
from sim.config import TASKS


@pytest.mark.parametrize("task", TASKS)
def test_env_passes_gymnasium_checker(task):
    env = sim.make_env(task)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert info == {"is_success": False}
    expected = {keys.JOINT_POS, keys.JOINT_VEL, keys.GRIPPER_POS, keys.EE_POS, keys.EE_QUAT, keys.GOAL_POS}
    if task != "reach":
        expected.add(keys.OBJECT_POSE)
    assert set(obs) == expected
    assert all(v.dtype == np.float32 for v in obs.values())
    env.close()


def test_cameras_give_uint8_images_and_pass_the_checker():
    env = sim.make_env("push", cameras=("front", "wrist"), image_size=32)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    for cam in ("front", "wrist"):
        image = obs[keys.image_key(cam)]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert image.std() > 5  # a scene, not a blank frame
    env.close()


def test_seeded_resets_repeat_and_differ():
    env = sim.make_env("lift")
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    np.testing.assert_array_equal(a[keys.OBJECT_POSE], b[keys.OBJECT_POSE])
    assert not np.allclose(a[keys.OBJECT_POSE][:2], c[keys.OBJECT_POSE][:2])


def test_targets_are_clipped_and_rate_limited():
    env = sim.make_env("reach")
    obs, _ = env.reset(seed=0)
    hw = env.hw
    action = np.append(obs[keys.JOINT_POS], 1.0).astype(np.float32)
    action[2] = 100.0  # far beyond the elbow's limit
    env.step(action)
    max_move = hw.velocity_limit[2] / env.config.policy_rate_hz
    assert env.data.act[2] == pytest.approx(obs[keys.JOINT_POS][2] + max_move, abs=1e-5)
    for _ in range(20):
        env.step(action)
    assert env.data.act[2] == pytest.approx(hw.position_upper[2])


def test_in_actuator_ramp_equals_a_500hz_position_command_stream():
    """The env's actuators integrate their targets (one mj_step call per policy step); the motion
    matches position servos given prev + (k+1)/50 * (new - prev) before each substep."""
    from sim.experts import make_expert
    from sim.robot import load_scene_model

    env = sim.make_env("lift")
    servo = load_scene_model("lift", env.hw)
    data = mujoco.MjData(servo)
    expert = make_expert("lift", "expert", seed=3)
    obs, _ = env.reset(seed=3)
    data.qpos[:], data.qvel[:], data.ctrl[:] = env.data.qpos, env.data.qvel, env.data.act
    prev = data.ctrl.copy()
    for _ in range(25):  # down to the cube and closing on it: contacts included
        obs, *_ = env.step(expert.act(obs))
        new = env.data.act.copy()
        assert np.all(env.data.ctrl == 0)  # between steps the targets hold
        for k in range(1, env.config.substeps + 1):
            data.ctrl[:] = prev + k / env.config.substeps * (new - prev)
            mujoco.mj_step(servo, data)
        prev = new
        np.testing.assert_allclose(env.data.qpos, data.qpos, atol=1e-9)
    assert obs[keys.GRIPPER_POS][0] < 0.9  # the gripper moved: the ramp covered it too


def test_action_moves_the_arm_smoothly_to_the_target():
    env = sim.make_env("reach")
    obs, _ = env.reset(seed=0)
    target = obs[keys.JOINT_POS] + np.array([0.2, -0.1, 0.1, 0.1, -0.1, 0.2], dtype=np.float32)
    for _ in range(10):
        obs, *_ = env.step(np.append(target, 0.0).astype(np.float32))
    np.testing.assert_allclose(obs[keys.JOINT_POS], target, atol=0.01)
    assert obs[keys.GRIPPER_POS][0] < 0.05  # closed


def test_reach_succeeds_at_the_goal_and_sparse_reward_is_success():
    env = sim.make_env("reach", reward="sparse")
    obs, _ = env.reset(seed=0)
    q = env.unwrapped.data.qpos[:6].copy()
    from robot_rl.control.kinematics import ArmKinematics

    goal_q = ArmKinematics(env.hw).ik(q, obs[keys.GOAL_POS])
    rewards = []
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(np.append(goal_q, 1).astype(np.float32))
        rewards.append(reward)
        if terminated:
            break
    assert terminated and info["is_success"]
    assert set(rewards) <= {0.0, 1.0} and rewards[-1] == 1.0


def test_truncates_at_max_episode_steps():
    env = sim.make_env("reach", max_episode_steps=3)
    obs, _ = env.reset(seed=0)
    hold = np.append(obs[keys.JOINT_POS], 1.0).astype(np.float32)
    flags = [env.step(hold)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_bad_config_and_actions_are_named():
    with pytest.raises(ConfigError, match="camera_zoom"):
        sim.make_env("push", camera_zoom=2)
    with pytest.raises(ConfigError, match="policy_rate_hz"):
        sim.make_env("push", policy_rate_hz=7.0)
    with pytest.raises(ConfigError, match="task"):
        sim.make_env("stack")
    with pytest.raises(ConfigError, match="randomization.friction_scale"):
        sim.make_env("push", randomization={"friction_scale": [1.2, 0.8]})
    env = sim.make_env("reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(7, np.nan, dtype=np.float32))


def test_domain_randomization_changes_the_model_per_reset():
    rand = {
        "friction_scale": [0.5, 1.5],
        "object_mass_scale": [0.5, 2.0],
        "actuator_gain_scale": [0.8, 1.2],
        "joint_damping_scale": [0.5, 2.0],
        "camera_pos_jitter": 0.02,
    }
    env = sim.make_env("push", randomization=rand, cameras=("front",), image_size=16)
    plain = sim.make_env("push")
    env.reset(seed=0)
    first = (env.model.body_mass.copy(), env.model.actuator_gainprm[:6, 0].copy(), env.model.cam_pos.copy())
    env.reset(seed=1)
    assert not np.allclose(first[0], env.model.body_mass)
    assert not np.allclose(first[1], env.model.actuator_gainprm[:6, 0])
    assert not np.allclose(first[2], env.model.cam_pos)
    # biasprm follows gainprm so the actuator is still a pure position servo
    np.testing.assert_allclose(env.model.actuator_biasprm[:6, 1], -env.model.actuator_gainprm[:6, 0])
    plain.reset(seed=1)
    np.testing.assert_array_equal(plain.model.geom_friction, plain._nominal["geom_friction"])


def test_action_latency_delays_the_command():
    env = sim.make_env("reach", randomization={"action_latency_steps": 2})
    obs, _ = env.reset(seed=0)
    start = env.data.act[0]
    action = np.append(obs[keys.JOINT_POS], 1.0).astype(np.float32)
    action[0] += 0.1
    env.step(action)
    env.step(action)
    assert env.data.act[0] == pytest.approx(start)
    env.step(action)
    assert env.data.act[0] == pytest.approx(start + 0.1, abs=1e-5)


def test_observation_noise_perturbs_state_but_not_the_task():
    env = sim.make_env("reach", randomization={"obs_noise_std": 0.01})
    a, _ = env.reset(seed=0)
    b, _ = env.reset(seed=1)
    assert not np.allclose(a[keys.JOINT_POS], b[keys.JOINT_POS])


def test_registered_gym_ids():
    sim.register_envs()
    sim.register_envs()  # idempotent
    env = gym.make("robot_rl/Insertion-v0", reward="sparse")
    obs, _ = env.reset(seed=0)
    assert keys.OBJECT_POSE in obs
    env.close()


def test_vector_env_steps_copies_with_their_own_seeds():
    # asynchronous=False keeps this test fast; the worker-process path is the same factory.
    venv = sim.make_vector_env("reach", 2, asynchronous=False, max_episode_steps=2)
    try:
        obs, _ = venv.reset(seed=[0, 1])
        assert obs[keys.JOINT_POS].shape == (2, 6)
        assert not np.allclose(obs[keys.GOAL_POS][0], obs[keys.GOAL_POS][1])
        hold = np.concatenate([obs[keys.JOINT_POS], np.ones((2, 1), np.float32)], axis=1)
        venv.step(hold)
        _, _, terminated, truncated, info = venv.step(hold)
        assert truncated.all() and not terminated.any()
        assert "is_success" in info
    finally:
        venv.close()
