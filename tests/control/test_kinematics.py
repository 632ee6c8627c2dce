"""ArmKinematics against the UR5e DH model, finite differences and its own IK."""

import numpy as np
import pytest

from robot_rl.config.hardware import load_hardware_config
from robot_rl.control.kinematics import ArmKinematics
from sim.robot import home_pose

# UR5e DH parameters (Universal Robots' published values).
D = [0.1625, 0, 0, 0.1333, 0.0997, 0.0996]
A = [0, -0.425, -0.3922, 0, 0, 0]
ALPHA = [np.pi / 2, 0, 0, np.pi / 2, -np.pi / 2, 0]
TCP_OFFSET = 0.125  # m from the flange along the tool axis (the MJCF's tcp site)


def dh_flange(q):
    T = np.eye(4)
    for i in range(6):
        ct, st, ca, sa = np.cos(q[i]), np.sin(q[i]), np.cos(ALPHA[i]), np.sin(ALPHA[i])
        T = T @ np.array(
            [
                [ct, -st * ca, st * sa, A[i] * ct],
                [st, ct * ca, -ct * sa, A[i] * st],
                [0, sa, ca, D[i]],
                [0, 0, 0, 1],
            ]
        )
    return T


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics(load_hardware_config("sim_ur5e"))


def quat_to_mat(q):
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_fk_matches_the_ur5e_dh_model(kin):
    rng = np.random.default_rng(0)
    for q in [np.zeros(6), *rng.uniform(-np.pi, np.pi, (20, 6))]:
        T = dh_flange(q)
        pos, quat = kin.fk(q)
        np.testing.assert_allclose(pos, T[:3, 3] + TCP_OFFSET * T[:3, 2], atol=1e-4)
        R = quat_to_mat(quat)
        np.testing.assert_allclose(R[:, 2], T[:3, 2], atol=1e-4)  # tool axis = DH z6
        assert np.linalg.norm(quat) == pytest.approx(1.0)


def test_jacobian_matches_finite_differences(kin):
    q = np.array([2.8, -1.7, 1.9, -1.8, -1.5, 0.3])
    J = kin.jacobian(q)
    assert J.shape == (6, 6)
    eps = 1e-6
    for j in range(6):
        dq = np.zeros(6)
        dq[j] = eps
        (p1, q1), (p0, q0) = kin.fk(q + dq), kin.fk(q - dq)
        np.testing.assert_allclose((p1 - p0) / (2 * eps), J[:3, j], atol=1e-5)
        # angular: rotation vector of q1 * q0^-1 over 2 eps
        dR = quat_to_mat(q1) @ quat_to_mat(q0).T
        omega = np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0], dR[1, 0] - dR[0, 1]]) / 2 / (2 * eps)
        np.testing.assert_allclose(omega, J[3:, j], atol=1e-5)


def test_ik_reaches_pose_targets_within_limits(kin):
    home = home_pose(load_hardware_config("sim_ur5e"))
    rng = np.random.default_rng(1)
    for _ in range(10):
        q_true = home + rng.uniform(-0.4, 0.4, 6)
        pos, quat = kin.fk(q_true)
        q = kin.ik(home, pos, quat)
        p2, q2 = kin.fk(q)
        np.testing.assert_allclose(p2, pos, atol=1e-4)
        assert abs(abs(np.dot(q2, quat)) - 1) < 1e-6
        assert np.all(q >= kin.lower) and np.all(q <= kin.upper)


def test_ik_step_is_bounded_and_position_only_works(kin):
    q0 = home_pose(load_hardware_config("sim_ur5e"))
    q1 = kin.ik_step(q0, [0.2, 0.3, 0.6], max_step=0.05)
    assert np.max(np.abs(q1 - q0)) <= 0.05 + 1e-12
    q = kin.ik(q0, [0.5, 0.1, 0.2])
    np.testing.assert_allclose(kin.fk(q)[0], [0.5, 0.1, 0.2], atol=1e-4)


def test_bad_input_is_named(kin):
    with pytest.raises(ValueError, match="shape"):
        kin.fk(np.zeros(5))
