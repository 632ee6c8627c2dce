"""The arm model and every task scene: limits from the hardware config, clean stepping, tracking."""

import mujoco
import numpy as np
import pytest

from robot_rl.config.hardware import load_hardware_config
from sim.config import TASKS
from sim.robot import home_pose, load_arm_model, load_scene_model


@pytest.fixture(scope="module")
def hw():
    return load_hardware_config("sim_ur5e")


def test_arm_model_takes_limits_and_names_from_the_hardware_config(hw):
    model = load_arm_model(hw)
    for jc in hw.joints:
        joint, act = model.joint(jc.name), model.actuator(jc.name)
        assert joint.limited[0] == 1
        np.testing.assert_allclose(joint.range, jc.position_limits)
        np.testing.assert_allclose(act.ctrlrange, jc.position_limits)
        np.testing.assert_allclose(act.forcerange, [-jc.effort_limit, jc.effort_limit])
    assert model.actuator(hw.gripper.name).id == hw.num_joints
    assert model.body(hw.model.base_body).id > 0
    assert model.site(hw.model.tcp_site).id >= 0
    assert model.key("home").id == 0
    np.testing.assert_allclose(model.joint("left_finger_joint").range, [0, hw.gripper.max_opening / 2])


def test_home_keyframe_is_a_pregrasp_pose_above_the_table(hw):
    model = load_arm_model(hw)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    tcp = data.site_xpos[model.site("tcp").id]
    assert 0.3 < tcp[0] < 0.6 and abs(tcp[1]) < 0.1 and 0.15 < tcp[2] < 0.35
    approach = data.site_xmat[model.site("tcp").id].reshape(3, 3)[:, 2]
    assert approach[2] < -0.99  # pointing down


def test_home_pose_is_where_every_episode_starts(hw):
    import sim

    q = home_pose(hw)
    assert q.shape == (hw.num_joints,)
    assert np.all(q > hw.position_lower) and np.all(q < hw.position_upper)
    obs, _ = sim.make_env("push").reset(seed=3)
    np.testing.assert_allclose(obs["joint_pos"], q, atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_scene_steps_five_seconds_without_warnings(task, hw):
    model = load_scene_model(task, hw)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    if task != "reach":  # the keyframe leaves free bodies at the origin: put the object on the table
        joint = model.joint("object_joint")
        data.qpos[joint.qposadr[0] : joint.qposadr[0] + 3] = [0.45, -0.05, 0.06]
    for _ in range(int(5.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    assert data.warning.number.sum() == 0, [w.number for w in data.warning]
    assert np.all(np.isfinite(data.qpos))
    assert model.camera("front").id >= 0 and model.camera("wrist").id >= 0


def test_position_step_response_does_not_overshoot(hw):
    """A 0.3 rad step on each joint, commanded at 500 Hz: settles without overshooting > 2%."""
    model = load_scene_model("reach", hw)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    q0 = data.qpos[:6].copy()
    data.ctrl[:6] = q0 + 0.3
    trace = []
    for _ in range(750):
        mujoco.mj_step(model, data)
        trace.append(data.qpos[:6] - q0)
    trace = np.array(trace)
    assert np.all(trace.max(axis=0) < 0.3 * 1.02)
    np.testing.assert_allclose(trace[-1], 0.3, atol=0.01)
    assert np.all(trace[250] > 0.27)  # within 10% after 0.5 s


@pytest.mark.parametrize("task", ["push", "lift", "insertion"])
def test_object_dropped_off_the_table_lands_on_the_floor(task, hw):
    """The floor collides with objects only (the robot cannot reach it): a dropped object rests on it."""
    model = load_scene_model(task, hw)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    adr = model.joint("object_joint").qposadr[0]
    data.qpos[adr : adr + 3] = [1.0, 0.0, 0.1]  # beyond the table's far edge (x = 0.8)
    for _ in range(int(1.5 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    floor_z = model.geom("floor").pos[2]
    half_height = model.geom("object").size[2]
    assert data.qpos[adr + 2] == pytest.approx(floor_z + half_height, abs=0.01)
