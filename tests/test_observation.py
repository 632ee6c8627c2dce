import numpy as np
import pytest

from robot_rl import keys
from robot_rl.config.hardware import load_hardware_config
from robot_rl.observation import ObservationAssembler, StalenessLimits


@pytest.fixture
def hw():
    return load_hardware_config("sim_ur5e")


def _feed(asm, hw, t, img_t=None):
    names = [*reversed(hw.joint_names), hw.gripper.name]
    asm.on_joint_state(t, names, [6, 5, 4, 3, 2, 1, 0.5], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    for cam in hw.cameras:
        asm.on_image(
            cam.name, t if img_t is None else img_t, np.full((cam.height, cam.width, 3), 7, np.uint8)
        )


def test_assembles_in_config_order_stamped_by_joint_state(hw):
    asm = ObservationAssembler(hw, StalenessLimits(0.1, 0.2))
    assert asm.assemble(0.0) is None and "no joint state" in asm.why_not
    _feed(asm, hw, t=10.0, img_t=9.95)
    obs = asm.assemble(10.02)
    assert obs is not None and obs.stamp == 10.0
    np.testing.assert_allclose(obs.values[keys.JOINT_POS], [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(obs.values[keys.JOINT_VEL], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rtol=1e-6)
    assert obs.values[keys.GRIPPER_POS].tolist() == [0.5]
    assert obs.values[keys.image_key("front")].shape == (96, 96, 3)


def test_stale_parts_send_nothing(hw):
    asm = ObservationAssembler(hw, StalenessLimits(0.1, 0.2))
    _feed(asm, hw, t=10.0, img_t=9.7)
    assert asm.assemble(10.01) is None and "camera front image is 310 ms old" in asm.why_not
    _feed(asm, hw, t=10.0)
    assert asm.assemble(10.15) is None and "joint state is 150 ms old" in asm.why_not
    assert asm.assemble(10.05) is not None and asm.why_not == ""


def test_bad_inputs_named(hw):
    asm = ObservationAssembler(hw, StalenessLimits())
    with pytest.raises(ValueError, match="lacks joint 'shoulder_pan_joint'"):
        asm.on_joint_state(0.0, ["elbow_joint"], [0.0])
    with pytest.raises(ValueError, match=r"camera front: expected \(96, 96, 3\) uint8"):
        asm.on_image("front", 0.0, np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(KeyError, match="no camera 'side'"):
        ObservationAssembler(hw, StalenessLimits(), cameras=["side"])
    no_cams = ObservationAssembler(hw, StalenessLimits(), cameras=[])
    no_cams.on_joint_state(1.0, list(hw.joint_names), np.zeros(6))
    assert no_cams.assemble(1.0) is None and "gripper" in no_cams.why_not
    no_cams.on_gripper(0.3)
    assert no_cams.assemble(1.0).values[keys.GRIPPER_POS].tolist() == pytest.approx([0.3])


def test_task_state_keys_required_and_fresh(hw):
    asm = ObservationAssembler(hw, StalenessLimits(0.1, 0.2), cameras=[], state_keys=[keys.OBJECT_POSE])
    asm.on_joint_state(5.0, [*hw.joint_names, hw.gripper.name], np.zeros(7))
    assert asm.assemble(5.0) is None and asm.why_not == "no object_pose yet"
    asm.on_state(keys.OBJECT_POSE, 4.8, np.arange(7))
    assert asm.assemble(5.0) is None and "object_pose is 200 ms old" in asm.why_not
    asm.on_state(keys.OBJECT_POSE, 5.0, np.arange(7))
    np.testing.assert_array_equal(asm.assemble(5.0).values[keys.OBJECT_POSE], np.arange(7))
