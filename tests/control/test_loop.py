"""ControlLoop: >= 100,000 hypothesis-generated chunks (random, NaN, inf, huge, wrong length,
out of order, duplicate, expired, late) through the whole pipeline never make a command
leave the limits; the thread keeps its rate; submissions from other threads are safe."""

import threading
import time

import numpy as np
from control_limits import assert_within_limits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rl.config.hardware import load_hardware_config
from robot_rl.control.executor import Chunk, Submit
from robot_rl.control.loop import ControlLoop, JointState
from robot_rl.control.safety import Reason
from robot_rl.control.watchdog import Mode
from sim.robot import home_pose

HOME = np.append(home_pose(load_hardware_config("sim_ur5e")), 1.0)  # gripper open
CHUNKS_PER_EXAMPLE = 100
EXAMPLES = 1000  # 100,000 chunks in all

# Hypothesis picks the kind of trouble and the timing; a seed fills in the numbers (t0 offset
# in [-0.3, 0.2] s, dt, 1-20 steps, deviation size): fewer draws keep 100,000 chunks affordable.
chunk_spec = st.tuples(
    st.sampled_from(
        [
            "near",
            "near",
            "near",
            "far",
            "huge",
            "nan",
            "inf",
            "short",
            "wide",
            "stale",
            "duplicate",
            "expired",
        ]
    ),
    st.sampled_from([0, 0, 0, 1, 1, 3]),  # control periods before the next chunk (0: a burst)
    st.integers(0, 2**32 - 1),
)


class FakeArm:
    """Fake hardware: tracks the command perfectly; its clock is the test's."""

    def __init__(self, start):
        self.position = start.copy()
        self.now = 0.0
        self.sent = []

    def read(self):
        return JointState(self.position, self.now)

    def send(self, command):
        self.sent.append(command)
        self.position = command


def _chunk(spec, now, last_t0, arm, n):
    kind, _, seed = spec
    rng = np.random.default_rng(seed)
    lead, dt = rng.uniform(-0.3, 0.2), rng.choice([0.02, 0.05, 0.1])
    length, size = int(rng.integers(1, 21)), rng.uniform(0.0, 3.0)
    t0 = max(now + lead, last_t0 + 1e-3)  # in order unless the kind says otherwise
    base = arm.position + np.cumsum(rng.normal(0.0, 0.02 * size, (length, n + 1)), axis=0)
    if kind == "far":
        base = base + rng.normal(0.0, size, n + 1)
    elif kind == "huge":
        base = base * 10.0 ** rng.uniform(2, 300)
    elif kind == "nan":
        base[rng.integers(length), rng.integers(n + 1)] = np.nan
    elif kind == "inf":
        base[rng.integers(length), rng.integers(n + 1)] = -np.inf
    elif kind == "short":
        base = base[:, : rng.integers(0, n + 1)]
    elif kind == "wide":
        base = np.hstack([base, base[:, :2]])
    elif kind == "stale":
        t0 = last_t0 - dt * rng.integers(1, 5)
    elif kind == "duplicate":
        t0 = last_t0
    elif kind == "expired":
        t0 = now - 1.0 - length * dt
    return Chunk(t0, dt, base)


def test_hundred_thousand_chunks_never_leave_the_limits(hw):
    totals = {"chunks": 0, "ticks": 0}
    seen = Reason(0)
    results = {r: 0 for r in Submit} | {"malformed": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(chunk_spec, min_size=CHUNKS_PER_EXAMPLE, max_size=CHUNKS_PER_EXAMPLE))
    def run(specs):
        nonlocal seen
        arm = FakeArm(HOME)
        now = [0.0]
        loop = ControlLoop(hw, arm.read, arm.send, use_workspace=False, clock=lambda: now[0])
        last_t0 = 0.0
        for spec in specs:
            try:
                result = loop.submit(_chunk(spec, now[0], last_t0, arm, hw.num_joints))
                results[result] += 1
                if result is Submit.ACCEPTED:
                    last_t0 = loop.executor._newest_t0
            except ValueError:
                results["malformed"] += 1
            totals["chunks"] += 1
            for _ in range(spec[1]):
                now[0] += hw.control_period_s
                arm.now = now[0]
                out = loop.tick(now[0])
                seen |= out.reasons
                totals["ticks"] += 1
        if arm.sent:
            assert_within_limits(arm.sent, hw, HOME)

    run()
    assert totals["chunks"] >= 100_000, totals
    # The generator really produced every kind of trouble, and the filter really acted.
    assert all(count > 0 for count in results.values()), results
    for reason in (Reason.JERK_LIMIT, Reason.MEASURED_STEP, Reason.POSITION_LIMIT):
        assert reason in seen, seen


def test_thread_keeps_rate_and_takes_chunks_from_other_threads(hw):
    arm = FakeArm(HOME)
    arm_lock = threading.Lock()

    def read():
        with arm_lock:
            return JointState(arm.position, time.monotonic())

    def send(command):
        with arm_lock:
            arm.send(command)

    loop = ControlLoop(hw, read, send, use_workspace=False)
    submitted = []

    def policy():
        for _ in range(8):
            now = time.monotonic()
            times = now + 0.02 + 0.1 * np.arange(10)
            pos = HOME + np.append(
                0.05 * np.sin(times[:, None] * 2.0 + np.arange(6)), np.zeros((10, 1)), axis=1
            )
            submitted.append(loop.submit(Chunk(times[0], 0.1, pos)))
            time.sleep(0.05)

    began = time.monotonic()
    with loop:
        workers = [threading.Thread(target=policy) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert loop.mode is Mode.RUN
        loop.estop("test")
        time.sleep(0.3)
        assert loop.mode is Mode.ESTOP
    elapsed = time.monotonic() - began
    stats = loop.stats()
    assert Submit.ACCEPTED in submitted
    # Every period is accounted for: it either ticked or was counted as missed (no timing is
    # asserted here; bench/control_loop.py measures it).
    slots = elapsed / hw.control_period_s
    assert 0.8 * slots <= stats.ticks + stats.missed <= slots + 2, (stats, slots)
    assert stats.ticks > 10
    assert loop.error is None
    diag = loop.diagnostics()
    assert diag["mode"] == "estop" and diag["estop_reason"] == "test" and int(diag["chunks_accepted"]) > 0
    with arm_lock:
        assert_within_limits(arm.sent, hw, HOME)


def test_unknown_then_stale_joint_states_hold(hw):
    arm = FakeArm(HOME)
    state = {"stamp": None}
    loop = ControlLoop(
        hw,
        lambda: None if state["stamp"] is None else JointState(arm.position, state["stamp"]),
        arm.send,
        use_workspace=False,
        clock=lambda: arm.now,
    )
    assert loop.tick(0.0) is None and not arm.sent  # never command an arm of unknown position
    dt = hw.control_period_s
    times = 0.0 + 0.1 * np.arange(20)
    moving = HOME + np.append(np.full(hw.num_joints, 1.0), 0.0) * np.minimum(times, 1.0)[:, None] ** 3
    loop.submit(Chunk(0.0, 0.1, moving))
    for k in range(1, 500):
        arm.now = k * dt
        state["stamp"] = arm.now if k < 300 else 299 * dt  # the driver stops reporting at k = 300
        result = loop.tick(arm.now)
    assert loop.mode is Mode.HOLD_STALE_STATE
    assert Reason.HOLD in result.reasons
    assert loop.filter.stopped
    assert_within_limits(arm.sent, hw, HOME)


def test_a_failing_driver_latches_the_estop(hw):
    arm = FakeArm(HOME)
    calls = {"n": 0}

    def send(command):
        calls["n"] += 1
        if calls["n"] == 20:
            raise OSError("driver gone")
        arm.send(command)

    loop = ControlLoop(hw, lambda: JointState(arm.position, time.monotonic()), send, use_workspace=False)
    with loop:
        deadline = time.monotonic() + 10.0
        while calls["n"] < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert isinstance(loop.error, OSError)
    assert loop.mode is Mode.ESTOP and "driver gone" in loop.watchdog.estop_reason


def test_stop_says_when_the_thread_would_not_end(hw):
    """A driver call that hangs keeps the thread alive past stop()'s wait: stop() says so (the
    controller node then leaves its publishers alone), and once the call returns it ends."""
    arm = FakeArm(HOME)
    entered, release = threading.Event(), threading.Event()

    def send(command):
        if len(arm.sent) >= 10:
            entered.set()
            release.wait()
        arm.send(command)

    loop = ControlLoop(hw, lambda: JointState(arm.position, time.monotonic()), send, use_workspace=False)
    loop.start()
    assert entered.wait(10.0)
    assert loop.stop(timeout=0.2) is False
    release.set()
    assert loop.stop(timeout=10.0) is True
    assert loop.stop() is True  # stopped already


def test_missed_slots_do_not_read_as_a_faster_target(hw):
    """A loop that misses slots tells the filter how long it has been since the last target,
    so the reference velocity is the target's own, not the distance of two periods over one
    (bench/ros_semantics.py --missed-ticks 0.3 measured what that costs a push policy); and
    every command sent is still within the limits one period after the last."""
    dt = hw.control_period_s
    rng = np.random.default_rng(0)
    arm = FakeArm(HOME)
    loop = ControlLoop(hw, arm.read, arm.send, use_workspace=False, clock=lambda: arm.now)
    loop.tick(0.0)
    speed = np.append(np.full(hw.num_joints, 0.2), 0.0)  # rad/s, a ramp the filter can follow
    loop.submit(Chunk(0.0, 0.1, HOME + speed * 0.1 * np.arange(30)[:, None]))
    misses = 0
    for k in range(1, 1400):
        arm.now = k * dt
        if k > 100 and rng.random() < 0.2:
            misses += 1
            continue
        loop.tick(arm.now)
        if k > 100:  # up to speed
            np.testing.assert_allclose(loop.filter.reference_velocity, speed[:-1], atol=1e-6)
    assert misses > 200
    assert_within_limits(arm.sent, hw, HOME)
