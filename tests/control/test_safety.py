"""SafetyFilter: hypothesis streams of hostile targets never produce a command outside the
limits; each rule reports its reason; feasible targets pass through untouched."""

import numpy as np
import pytest
from control_limits import assert_within_limits
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl.config.hardware import load_hardware_config
from robot_rl.control.kinematics import ArmKinematics
from robot_rl.control.safety import Reason, SafetyFilter
from sim.robot import home_pose

HOME = np.append(home_pose(load_hardware_config("sim_ur5e")), 1.0)  # gripper open

# One stream segment: what kind of target, how long it lasts, how big.
segment = st.tuples(
    st.sampled_from(["jump", "huge", "nan", "inf", "short", "long", "hold", "drift", "limit"]),
    st.integers(1, 40),
    st.floats(0.0, 10.0),
    st.integers(0, 2**31 - 1),
)


def _targets(kind, length, size, seed, last, n):
    rng = np.random.default_rng(seed)
    for _ in range(length):
        if kind == "jump":
            yield last + rng.normal(0.0, size, n + 1)
        elif kind == "huge":
            yield rng.choice([-1.0, 1.0], n + 1) * 10.0 ** rng.uniform(3, 300)
        elif kind == "nan":
            t = last.copy()
            t[rng.integers(n + 1)] = np.nan
            yield t
        elif kind == "inf":
            t = last.copy()
            t[rng.integers(n + 1)] = rng.choice([np.inf, -np.inf])
            yield t
        elif kind == "short":
            yield last[: rng.integers(0, n + 1)]
        elif kind == "long":
            yield np.append(last, rng.normal(size=rng.integers(1, 4)))
        elif kind == "hold":
            yield None
        elif kind == "drift":
            last = last + rng.normal(0.0, 0.01 * size, n + 1)
            yield last
        else:  # "limit": push toward a joint limit with a random sign per joint
            yield np.append(rng.choice([-7.0, 7.0], n), rng.choice([-1.0, 2.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(segment, min_size=1, max_size=25))
def test_no_command_leaves_the_limits(hw, segments):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    sent = []
    last = HOME.copy()
    for kind, length, size, seed in segments:
        for target in _targets(kind, length, size, seed, last, hw.num_joints):
            command, reasons = filt.step(target)
            sent.append(command)
            if kind in ("nan", "inf", "short", "long", "hold"):
                assert reasons & (Reason.NON_FINITE | Reason.WRONG_LENGTH | Reason.HOLD)
            if (
                target is not None
                and np.shape(target) == (hw.num_joints + 1,)
                and np.all(np.isfinite(target))
            ):
                last = np.asarray(target, dtype=float)
    assert_within_limits(sent, hw, HOME)


def test_feasible_targets_pass_untouched(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    x = np.arange(1, 1500) * hw.control_period_s / 2.0
    # A 2 s quintic move of 0.2 rad, at rest at both ends: well inside every limit.
    ramp = 0.2 * np.minimum(x, 1.0) ** 3 * (10 - 15 * np.minimum(x, 1.0) + 6 * np.minimum(x, 1.0) ** 2)
    for k, dq in enumerate(ramp):
        target = HOME + np.append(np.full(hw.num_joints, dq), 0.0)
        command, reasons = filt.step(target, measured=filt.command)
        if k > 0:
            assert not reasons, (k, reasons)
            np.testing.assert_allclose(command, target, atol=1e-12)


def test_reasons_for_each_rule(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    start = filt.command
    cmd, why = filt.step(np.full(hw.num_joints + 1, np.nan))
    assert why == Reason.NON_FINITE and np.array_equal(cmd, start)
    cmd, why = filt.step(HOME[:3])
    assert why == Reason.WRONG_LENGTH and np.array_equal(cmd, start)
    _, why = filt.step(None)
    assert why == Reason.HOLD
    far = HOME.copy()
    far[0] = 100.0
    _, why = filt.step(far)
    assert Reason.POSITION_LIMIT in why and Reason.JERK_LIMIT in why
    _, why = filt.step(far, measured=HOME)
    assert Reason.MEASURED_STEP in why
    _, why = filt.step(HOME + np.append(np.zeros(hw.num_joints), 5.0))
    assert Reason.GRIPPER in why
    _, why = filt.step(HOME, measured=HOME + np.append(np.full(hw.num_joints, 1.0), 0.0))
    assert Reason.MEASURED_DEVIATION in why
    _, why = filt.step(HOME, measured=np.full(2, 0.0))
    assert Reason.BAD_MEASUREMENT in why


def test_braking_envelope_stops_at_the_margined_limit(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    beyond = HOME.copy()
    beyond[2] = 50.0  # the elbow's limit is pi - margin
    sent, seen = [], Reason(0)
    for _ in range(1500):
        command, why = filt.step(beyond)
        sent.append(command)
        seen |= why
    assert Reason.BRAKING in seen
    assert_within_limits(sent, hw, HOME)
    upper = hw.position_upper[2] - hw.safety.position_margin
    assert upper - 1e-3 < sent[-1][2] <= upper  # it got there, and stopped there
    assert filt.stopped


def test_workspace_box_with_the_arm_model(hw):
    kin = ArmKinematics(hw)
    filt = SafetyFilter(hw)  # default: FK of the arm's MJCF
    filt.reset(HOME)
    home_tcp = kin.fk(HOME[: hw.num_joints])[0]
    assert np.all(home_tcp > hw.safety.workspace_min) and np.all(home_tcp < hw.safety.workspace_max)
    # Shoulder lift straight down points the arm into the table (z < 0): refused.
    below = HOME.copy()
    below[1] = 1.2
    assert kin.fk(below[: hw.num_joints])[0][2] < hw.safety.workspace_min[2]
    _, why = filt.step(below)
    assert Reason.WORKSPACE in why
    for _ in range(400):
        command, _ = filt.step(below)
    np.testing.assert_allclose(command, HOME, atol=1e-9)  # it kept the last target inside the box


def test_refuses_limits_that_cannot_stop_in_time(tmp_path):
    text = load_hardware_config("sim_ur5e").source and open(load_hardware_config("sim_ur5e").source).read()
    path = tmp_path / "slow.yaml"
    path.write_text(text.replace("stopping_time_s: 0.5", "stopping_time_s: 0.1"))
    with pytest.raises(ValueError, match="stopping_time_s"):
        SafetyFilter(load_hardware_config(path), use_workspace=False)


def test_start_outside_the_limits_never_jumps_back(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    start = HOME.copy()
    start[2] = hw.position_upper[2] - 0.001  # inside the hard limit, outside the margin
    filt.reset(start)
    sent = []
    for _ in range(300):
        command, why = filt.step(start)
        sent.append(command)
    assert Reason.OUTSIDE_LIMITS in why
    assert_within_limits(sent, hw, start)
    assert sent[-1][2] <= start[2]


def test_catches_up_with_a_moving_target_then_follows_it_exactly(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    dt = hw.control_period_s
    sent, target = [], None
    for k in range(1, 1500):
        t = k * dt
        # Starts 0.15 rad away and already moving at up to 1.5 rad/s: infeasible at first.
        wave = 0.15 * np.cos(np.arange(hw.num_joints) * 0.7) + 0.5 * np.sin(
            3.0 * t + np.arange(hw.num_joints)
        )
        target = HOME + np.append(wave - 0.5 * np.sin(np.arange(hw.num_joints)), 0.0)
        command, reasons = filt.step(target)
        sent.append(command)
        if k < 5:
            assert Reason.JERK_LIMIT in reasons
    assert_within_limits(sent, hw, HOME)
    # Caught up without overshooting into a limit cycle: the last second passes untouched.
    last = []
    for k in range(1500, 2000):
        t = k * dt
        wave = 0.15 * np.cos(np.arange(hw.num_joints) * 0.7) + 0.5 * np.sin(
            3.0 * t + np.arange(hw.num_joints)
        )
        target = HOME + np.append(wave - 0.5 * np.sin(np.arange(hw.num_joints)), 0.0)
        command, reasons = filt.step(target)
        last.append(reasons)
        np.testing.assert_allclose(command, target, atol=1e-9)
    assert not any(last)


def test_a_non_positive_target_interval_is_refused(hw):
    filt = SafetyFilter(hw, use_workspace=False)
    filt.reset(HOME)
    filt.step(HOME)
    with pytest.raises(ValueError, match="target_dt"):
        filt.step(HOME, target_dt=0.0)
