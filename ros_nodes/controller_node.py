"""controller_node: chunks in, one safety-filtered command per control period out.

    subscribes  joint_states (JointState, sensor QoS)            measured arm (+ gripper)
                action_chunk, teleop_chunk (JointTrajectory, reliable)   header.stamp = time of
                                                                 the first point; equally spaced
    publishes   commands: std_msgs/Float64MultiArray (ros2_control forward position controller)
                or trajectory_msgs/JointTrajectory (joint trajectory controller), as the
                hardware config's controller.kind says; the gripper's own topic when it has one
                /diagnostics: mode, missed deadlines, what the filter changed
    services    estop (std_srvs/SetBool): true latches the e-stop, false resets it

Every control period (robot_rl.control): the watchdog picks RUN or a hold, the chunk
executor gives the target at now, the safety filter shapes it, the command goes out:

    chunks ──► ChunkExecutor.submit ──► sample(now) ──► SafetyFilter.step ──► commands
                                  Watchdog.check(now, joint-state stamp) ──► hold? filter.hold

Policy and teleop chunks meet in one executor: a chunk stamped earlier than the newest one
is stale, so a person's chunks (stamped now) take over from a policy's (stamped when their
observation was taken) while the person is active.

A lifecycle node: activate starts the control timer, deactivate stops commanding.
"""

from __future__ import annotations

import threading

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_rl.config.hardware import load_hardware_config
from robot_rl.control.config import ExecutorConfig
from robot_rl.control.executor import Chunk, ChunkExecutor, Submit
from robot_rl.control.safety import SafetyFilter
from robot_rl.control.watchdog import Mode, Watchdog
from ros_nodes import common


def chunk_from_msg(msg: JointTrajectory, names: list[str]) -> Chunk:
    """A JointTrajectory (joint names in any order, equally spaced points) -> Chunk. ValueError if not."""
    index = {n: i for i, n in enumerate(msg.joint_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"chunk lacks joint {missing[0]!r} (has {list(msg.joint_names)})")
    if not msg.points:
        raise ValueError("chunk has no points")
    order = [index[n] for n in names]
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    positions = np.array([[p.positions[i] for i in order] for p in msg.points], dtype=np.float64)
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    if len(times) > 1 and not np.allclose(np.diff(times), dt, atol=1e-6):
        raise ValueError("chunk points must be equally spaced in time")
    return Chunk(t0=common.to_sec(msg.header.stamp) + float(times[0]), dt=dt, positions=positions)


class ControllerNode(LifecycleNode):
    def __init__(self):
        super().__init__("controller")
        self.declare_parameter("hardware_config", "sim_ur5e")
        self.declare_parameter("rate_hz", 0.0)  # 0: the hardware config's control_rate_hz
        self.declare_parameter("blend", "crossfade")
        self.declare_parameter("blend_window_s", 0.1)
        self.declare_parameter("autostart", True)
        self._lock = threading.Lock()  # executor, watchdog and measured state: subscribers vs the loop
        self._timer = None
        if self.get_parameter("autostart").value:
            common.autostart(self)

    @common.logged_transition
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.hw = load_hardware_config(p("hardware_config"))
        self.period = 1.0 / (p("rate_hz") or self.hw.control_rate_hz)
        self.names = [*self.hw.joint_names, self.hw.gripper.name]
        self.chunks = ChunkExecutor(
            self.hw.action_dim, ExecutorConfig(blend=p("blend"), blend_window_s=p("blend_window_s"))
        )
        self.filter = SafetyFilter(self.hw)
        self.watchdog = Watchdog(self.hw.safety)
        self.measured: np.ndarray | None = None  # (J + 1,)
        self.measured_stamp: float | None = None
        self.last_tick: float | None = None
        self.stats = {"ticks": 0, "missed_deadlines": 0, "bad_chunks": 0, "filtered": 0}
        self.last_reasons = ""
        kind = self.hw.controller.kind
        msg_type = Float64MultiArray if kind == "forward_position" else JointTrajectory
        self.pub_cmd = self.create_lifecycle_publisher(msg_type, "commands", common.COMMAND_QOS)
        self.pub_gripper = None
        if self.hw.gripper.command_topic:
            self.pub_gripper = self.create_lifecycle_publisher(
                Float64MultiArray, self.hw.gripper.command_topic, common.COMMAND_QOS
            )
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, common.SENSOR_QOS)
        for topic in ("action_chunk", "teleop_chunk"):
            self.create_subscription(
                JointTrajectory, topic, lambda m, t=topic: self._on_chunk(t, m), common.COMMAND_QOS
            )
        self.create_service(SetBool, "estop", self._on_estop)
        self._loop_group = MutuallyExclusiveCallbackGroup()
        self.create_timer(1.0, self._diagnose)
        return TransitionCallbackReturn.SUCCESS

    @common.logged_transition
    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._timer = self.create_timer(self.period, self._control_step, callback_group=self._loop_group)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    # -- inputs ------------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.hw.joint_names):
            self.get_logger().error(
                f"joint_states lacks a joint of {self.hw.name}", throttle_duration_sec=1.0
            )
            return
        arm = [msg.position[index[n]] for n in self.hw.joint_names]
        with self._lock:
            grip = msg.position[index[self.hw.gripper.name]] if self.hw.gripper.name in index else None
            if grip is None:
                grip = self.measured[-1] if self.measured is not None else 1.0
            self.measured = np.array([*arm, grip], dtype=np.float64)
            self.measured_stamp = common.to_sec(msg.header.stamp)

    def _on_chunk(self, topic: str, msg: JointTrajectory) -> None:
        now = common.now_sec(self)
        try:
            chunk = chunk_from_msg(msg, self.names)
            with self._lock:
                result = self.chunks.submit(chunk, now)
                if result is Submit.ACCEPTED:
                    self.watchdog.chunk_received(now)
        except ValueError as exc:
            self.stats["bad_chunks"] += 1
            self.get_logger().error(f"{topic}: {exc}", throttle_duration_sec=1.0)

    def _on_estop(self, request, response):
        if request.data:
            self.watchdog.estop("estop service")
            response.message = "e-stop latched: the arm brakes to a hold"
        else:
            self.watchdog.reset_estop()
            response.message = "e-stop reset"
        response.success = True
        return response

    # -- one control period ------------------------------------------------------------------------
    def _control_step(self) -> None:
        now = common.now_sec(self)
        if self.last_tick is not None and now - self.last_tick > 1.5 * self.period:
            self.stats["missed_deadlines"] += 1
        self.last_tick = now
        with self._lock:
            measured = self.measured
            if measured is None:
                return  # nothing to command until the arm has been seen
            if not self.filter.ready:
                self.filter.reset(measured)
                self.chunks.hold(measured)
            previous = self.watchdog.mode
            mode = self.watchdog.check(now, self.measured_stamp)
            if mode.holding:
                if not previous.holding:
                    self.chunks.hold(self.filter.command)  # the next chunk blends in from here
                result = self.filter.hold(measured)
            else:
                result = self.filter.step(self.chunks.sample(now), measured)
        self.stats["ticks"] += 1
        if result.reasons:
            self.stats["filtered"] += 1
            self.last_reasons = str(result.reasons)
        self._publish(result.command)

    def _publish(self, command: np.ndarray) -> None:
        n = self.hw.num_joints
        if self.hw.controller.kind == "forward_position":
            data = command if self.pub_gripper is None else command[:n]
            self.pub_cmd.publish(Float64MultiArray(data=data.tolist()))
        else:
            msg = JointTrajectory(joint_names=list(self.hw.joint_names))
            point = JointTrajectoryPoint(positions=command[:n].tolist())
            point.time_from_start.nanosec = int(2 * self.period * 1e9)
            msg.points.append(point)
            self.pub_cmd.publish(msg)
        if self.pub_gripper is not None:
            self.pub_gripper.publish(Float64MultiArray(data=[float(command[n])]))

    def _diagnose(self) -> None:
        mode = self.watchdog.mode
        level = {Mode.RUN: common.OK, Mode.HOLD_NO_CHUNK: common.OK}.get(mode, common.ERROR)
        values = {
            "mode": mode.value,
            **self.stats,
            "last_filter_reasons": self.last_reasons,
            **{f"chunks_{k.value}": v for k, v in self.chunks.counts.items()},
        }
        if self.watchdog.estopped:
            values["estop_reason"] = self.watchdog.estop_reason
        self.pub_diag.publish(common.diagnostics(self, level, mode.value, values))


def main(args=None) -> int:
    return common.run(ControllerNode, threads=3, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
