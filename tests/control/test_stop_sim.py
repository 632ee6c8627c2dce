"""Against the simulated UR5e (MuJoCo at 500 Hz): when the chunk source dies mid-motion, or
the e-stop is pressed, the commanded velocity reaches zero within safety.stopping_time_s
without leaving the limits, and the simulated arm (measured velocity) comes to rest too."""

import mujoco
import numpy as np
import pytest
from control_limits import assert_within_limits

from robot_rl.control.executor import Chunk
from robot_rl.control.loop import ControlLoop, JointState
from robot_rl.control.watchdog import Mode
from sim.robot import load_arm_model


class SimArm:
    """The arm-only MuJoCo model driven through its position actuators, one step per period."""

    def __init__(self, hw):
        self.model = load_arm_model(hw)
        assert abs(self.model.opt.timestep - hw.control_period_s) < 1e-12
        self.data = mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(self.model, self.data, self.model.key("home").id)
        mujoco.mj_forward(self.model, self.data)
        self.qadr = [self.model.joint(n).qposadr[0] for n in hw.joint_names]
        self.dadr = [self.model.joint(n).dofadr[0] for n in hw.joint_names]
        self.act = [self.model.actuator(n).id for n in (*hw.joint_names, hw.gripper.name)]
        self.gripper = float(self.data.ctrl[self.act[-1]])
        self.sent, self.measured_velocity, self.times = [], [], []

    def read(self):
        return JointState(np.append(self.data.qpos[self.qadr], self.gripper), self.data.time)

    def send(self, command):
        self.data.ctrl[self.act] = command
        self.gripper = float(command[-1])
        self.sent.append(command.copy())

    def step(self):
        mujoco.mj_step(self.model, self.data)
        self.measured_velocity.append(self.data.qvel[self.dadr].copy())
        self.times.append(self.data.time)


# The hold begins at a fast phase of the motion: the e-stop at once, the dead source's hold
# chunk_timeout_s after its last chunk.
@pytest.mark.parametrize("stop_by, stop_at", [("source_dies", 1.65), ("estop", 1.2)])
def test_stops_within_stopping_time_mid_motion(hw, stop_by, stop_at):
    arm = SimArm(hw)
    start = arm.read().position
    loop = ControlLoop(hw, arm.read, arm.send, clock=lambda: arm.data.time)
    home = start[: hw.num_joints]
    last_chunk = 0.0
    hold_from = None
    while arm.data.time < 3.5:
        now = arm.data.time
        if now < stop_at and now >= last_chunk + 0.1 - 1e-9:
            # The policy: a 1.6 s chunk every 0.1 s, reaching the robot 20 ms after it was stamped.
            times = now + 0.02 + 0.1 * np.arange(16)
            wave = 0.5 * np.sin(3.0 * times)[:, None] * np.array([1.0, 0.4, -0.4, 0.5, 0.5, 1.0])
            loop.submit(Chunk(times[0], 0.1, np.hstack([home + wave, np.ones((16, 1))])))
            last_chunk = now
        if stop_by == "estop" and hold_from is None and now >= stop_at:
            loop.estop("test")
        loop.tick(now)
        if hold_from is None and loop.mode is not Mode.RUN and now > 0.5:
            hold_from = len(arm.sent) - 1
        arm.step()
    expected = Mode.ESTOP if stop_by == "estop" else Mode.HOLD_NO_CHUNK
    assert loop.mode is expected
    sent = np.array(arm.sent)
    assert_within_limits(sent, hw, start)
    dt = hw.control_period_s
    commanded_velocity = np.diff(sent[:, : hw.num_joints], axis=0) / dt
    # Mid-motion: the arm was moving fast when the hold began.
    assert np.abs(commanded_velocity[hold_from - 1]).max() > 0.5
    within = hold_from + int(np.ceil(hw.safety.stopping_time_s / dt))
    assert np.all(commanded_velocity[within:] == 0.0), "command still moving after stopping_time_s"
    stopped_at = hold_from + np.flatnonzero(np.abs(commanded_velocity[hold_from:]).max(axis=1) == 0)[0]
    # The simulated arm follows: measured speed falls with the command and settles to rest.
    measured = np.abs(np.array(arm.measured_velocity))
    assert measured[hold_from].max() > 0.5
    # The sim's position servos lag the command (time constant ~0.1 s): allow 0.4 s to settle.
    settle = int(0.4 / dt)
    assert measured[stopped_at + settle :].max() < 0.02, measured[stopped_at + settle :].max()
    print(
        f"{stop_by}: commanded speed {np.abs(commanded_velocity[hold_from - 1]).max():.2f} rad/s -> 0 in "
        f"{(stopped_at - hold_from) * dt:.3f} s (limit {hw.safety.stopping_time_s} s); measured < 0.02 rad/s "
        f"{settle * dt:.1f} s after the command"
    )
