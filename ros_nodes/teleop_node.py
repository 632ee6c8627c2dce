"""teleop_node: a person drives the arm. Twist + Joy (mode twist) or a leader arm (mode leader).

    subscribes  joint_states (JointState, sensor QoS)      the follower's measured position
                twist (geometry_msgs/Twist, reliable)        tool velocity, base frame (SpaceMouse,
                                                             teleop_twist_keyboard, ...)
                joy (sensor_msgs/Joy)                        gripper: close / open buttons
                leader_joint_states (JointState, sensor QoS) mode leader: the arm to mirror
    publishes   chunk (trajectory_msgs/JointTrajectory, reliable) to the controller, which puts
                it through the same safety filter as a policy's chunks; /diagnostics

Every 1/rate_hz a short chunk is sent: `chunk_points` points 1/rate_hz apart, joint names
= hardware-config joints then the gripper, header.stamp = now = the time of point 0.
In twist mode the points continue the current tool velocity (robot_rl.teleop.twist), so
the controller has something to interpolate until the next chunk; a stale Twist holds.

With `only_when_active` (the graph sets it when a policy runs too: interventions) chunks go
out only while the person is at the device, a Twist or Joy message younger than
twist_timeout_s; otherwise the policy's chunks drive the arm. The controller prefers the
newest-stamped chunk, so the person takes over at once and hands back when they let go.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_rl.teleop.leader import LeaderConfig, LeaderMirror
from robot_rl.teleop.twist import JoyGripper, JoyGripperConfig, TwistTeleop, TwistTeleopConfig
from ros_nodes import common


class TeleopNode(Node):
    def __init__(self):
        super().__init__("teleop")
        self.hw = common.hardware_from_parameter(self)
        p = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
        self.mode = p("mode", "twist")
        if self.mode not in ("twist", "leader"):
            raise ValueError(f"parameter mode must be 'twist' or 'leader', got {self.mode!r}")
        # One chunk per period; the controller blends each one in over its window.
        self.dt = 1.0 / float(p("rate_hz", 20.0))
        # 6 points at 20 Hz span 0.25 s: longer than the controller's blend window (0.1 s) plus
        # delivery delay, so the controller never has to extrapolate past the end of a teleop chunk.
        self.points = int(p("chunk_points", 6))
        if self.points < 1:
            raise ValueError("parameter chunk_points must be >= 1")
        self.twist = TwistTeleop(
            self.hw,
            TwistTeleopConfig(
                linear_scale=p("linear_scale", 1.0),
                angular_scale=p("angular_scale", 1.0),
                max_linear_speed=p("max_linear_speed", 0.25),
                max_angular_speed=p("max_angular_speed", 1.0),
                twist_timeout_s=p("twist_timeout_s", 0.25),
            ),
        )
        self.only_when_active = bool(p("only_when_active", False))
        if self.only_when_active and self.mode != "twist":
            raise ValueError("parameter only_when_active needs mode twist (a leader arm has no 'let go')")
        self.last_input = -float("inf")  # when the person last touched the twist / joy device
        self.joy = JoyGripper(JoyGripperConfig(p("gripper_close_button", 0), p("gripper_open_button", 1)))
        leader_names = list(p("leader_joint_names", [""]))
        self.leader = LeaderMirror(
            self.hw,
            LeaderConfig(
                joint_map=dict(zip(self.hw.joint_names, leader_names)) if any(leader_names) else {},
                gripper_joint=p("leader_gripper_joint", ""),
                gripper_closed=p("leader_gripper_closed", 0.0),
                gripper_open=p("leader_gripper_open", 1.0),
            ),
        )
        self.measured: np.ndarray | None = None
        self.leader_target: np.ndarray | None = None
        self.sent = 0
        self.bad_inputs = 0
        self.create_subscription(JointState, "joint_states", self._on_joint_state, common.SENSOR_QOS)
        if self.mode == "twist":
            self.create_subscription(Twist, "twist", self._on_twist, common.COMMAND_QOS)
            self.create_subscription(Joy, "joy", self._on_joy, common.SENSOR_QOS)
        else:
            self.create_subscription(JointState, "leader_joint_states", self._on_leader, common.SENSOR_QOS)
        self.pub_chunk = self.create_publisher(JointTrajectory, "chunk", common.COMMAND_QOS)
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.dt, self._tick)
        self.create_timer(1.0, self._diagnose)

    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in self.hw.joint_names):
            self.measured = np.array([msg.position[index[n]] for n in self.hw.joint_names])
        else:
            self._bad(f"joint_states lacks a joint of {self.hw.name}")

    def _on_twist(self, msg: Twist) -> None:
        self.last_input = common.now_sec(self)
        lin, ang = msg.linear, msg.angular
        try:
            self.twist.set_twist([lin.x, lin.y, lin.z], [ang.x, ang.y, ang.z], common.now_sec(self))
        except ValueError as exc:
            self._bad(f"twist: {exc}")

    def _on_joy(self, msg: Joy) -> None:
        if any(msg.buttons):
            self.last_input = common.now_sec(self)
        self.joy.on_buttons(msg.buttons)

    def _on_leader(self, msg: JointState) -> None:
        try:
            self.leader_target, gripper = self.leader.targets(msg.name, msg.position)
        except ValueError as exc:
            self._bad(f"leader_joint_states: {exc}")
            return
        if gripper is not None:
            self.joy.command = gripper

    def _bad(self, message: str) -> None:
        self.bad_inputs += 1
        self.get_logger().error(message, throttle_duration_sec=1.0)

    def _tick(self) -> None:
        if self.measured is None:
            return
        now = common.now_sec(self)
        if self.only_when_active and now - self.last_input > self.twist.config.twist_timeout_s:
            return  # nobody at the device: the policy drives
        if self.mode == "twist":
            q0 = self.twist.step(self.measured, now, self.dt)
            qdot = self.twist.joint_velocity(q0, now)
            path = [q0 + k * self.dt * qdot for k in range(self.points)]  # continue it until the next chunk
        else:
            if self.leader_target is None:
                return
            path = [self.leader_target] * self.points
        msg = JointTrajectory(joint_names=[*self.hw.joint_names, self.hw.gripper.name])
        msg.header.stamp = common.to_stamp(now)
        for k, q in enumerate(path):
            t = k * self.dt
            point = JointTrajectoryPoint(positions=[*map(float, q), self.joy.command])
            point.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            msg.points.append(point)
        self.pub_chunk.publish(msg)
        self.sent += 1

    def _diagnose(self) -> None:
        level = common.OK if self.measured is not None and self.bad_inputs == 0 else common.WARN
        values = {"mode": self.mode, "chunks_sent": self.sent, "bad_inputs": self.bad_inputs}
        self.pub_diag.publish(
            common.diagnostics(
                self, level, "waiting for joint_states" if self.measured is None else "ok", values
            )
        )


def main(args=None) -> int:
    return common.run(TeleopNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
