"""sim_robot_node: the MuJoCo arm behind the topics a ros2_control driver offers.

    publishes   joint_states (sensor_msgs/JointState)       arm joints + gripper (opening 0..1)
                <camera topic per hardware config> (Image)   rgb8, at each camera's rate_hz,
                                                             rendered only while subscribed
                ~/success (std_msgs/Bool)                    the task's success, every step
                object_pose (PoseStamped), goal_pos (PointStamped)  task state, base frame, as a
                                                             perception stack would publish it
                /clock (rosgraph_msgs/Clock)                 when real_time_factor is 0
                /diagnostics
    subscribes  commands (std_msgs/Float64MultiArray)        J arm targets + 1 gripper command,
                                                             as the forward position controller
    services    ~/reset (std_srvs/Trigger)                   new episode: the k-th reset draws its
                                                             scene (and randomization) with seed + k
    parameters  hardware_config ("sim_ur5e"), task ("push"), real_time_factor (1.0),
                publish_clock (false), step_rate_hz (100.0), seed (0), autostart (true),
                randomization ("")                           YAML file of sim.config.RandomizationConfig
                                                             fields (friction_scale: [0.8, 1.2], ...),
                                                             drawn anew at every reset; "" = none
                joint_state_latency_s (0.0)                  injected sensing latency, >= 0 (below)

Timing: every 1/step_rate_hz of sim time the latest command is applied and the physics
advances (sim.make_env's first-order hold over its substeps); at real_time_factor 1 a wall
timer paces this, at 0 it runs as fast as the CPU allows and publishes /clock.

A paced sim keeps to the wall clock as a real arm does: a late timer callback (a busy
CPU) runs every step that has come due since, up to MAX_CATCH_UP, each stamped with the
time it was due; a backlog beyond that is dropped and counted (diagnostics `dropped_steps`,
`real_time_factor` = sim time / wall time since activation):

    wall     |....|....|....|....|....|         due steps, step_dt / rtf apart
    timer    ^    ^              ^              the third callback is late:
    steps    s0   s1             s2 s3 s4       it runs s2, s3, s4 (stamps as due)

Sim-as-hardware for online RL: `randomization` varies the physics per episode, and
`joint_state_latency_s` = L delays what the node reports about the arm and the task
(joint_states, object_pose, goal_pos, camera images) as a slow driver or network would: each
message keeps the stamp of the moment it was measured and is published L later (sim time with
/clock, else ROS time), from a FIFO drained at the end of every timer callback. ~/success and
/clock are not delayed. Messages still queued at deactivate are dropped; a reset does not drop
them (the previous episode's last states still arrive, as from a real driver). Diagnostics
report `injected_latency_s` and `latency_queue` (messages in flight):

    stamp    t ──────────── L ───────────► t + L ≤ now: published (stamp t)

A lifecycle node: configure builds the env, activate starts stepping, deactivate holds
the sim still. With `autostart` it configures and activates itself.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from robot_rl import keys
from robot_rl.config.hardware import load_hardware_config
from robot_rl.config.loader import from_yaml
from ros_nodes import common

MAX_CATCH_UP = 10  # steps one late timer callback may run to catch up with the wall clock


class SimRobotNode(LifecycleNode):
    def __init__(self):
        super().__init__("sim_robot")
        self.declare_parameter("hardware_config", "sim_ur5e")
        self.declare_parameter("task", "push")
        self.declare_parameter("real_time_factor", 1.0)
        self.declare_parameter("publish_clock", False)
        self.declare_parameter("step_rate_hz", 100.0)
        self.declare_parameter("seed", 0)
        self.declare_parameter("randomization", "")
        self.declare_parameter("joint_state_latency_s", 0.0)
        self.declare_parameter("autostart", True)
        self.env = None
        self.latency_s = 0.0
        # Sensed messages in flight (joint_state_latency_s): (due time, publisher, message), due
        # times non-decreasing since stamps are.
        self._delayed: deque[tuple[float, object, object]] = deque()
        self._group = MutuallyExclusiveCallbackGroup()  # MjData is touched from one callback at a time
        self._timers = []
        if self.get_parameter("autostart").value:
            common.autostart(self)

    # -- lifecycle ---------------------------------------------------------------------------------
    @common.logged_transition
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        import sim
        from sim.config import RandomizationConfig
        from sim.rendering import CameraRenderer

        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.hw = load_hardware_config(p("hardware_config"))
        self.rtf = float(p("real_time_factor"))
        self.step_dt = 1.0 / float(p("step_rate_hz"))
        self.latency_s = float(p("joint_state_latency_s"))
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise ValueError(f"joint_state_latency_s must be a finite number >= 0, got {self.latency_s}")
        # ConfigError naming the file and the key for a missing file, unknown key or bad value.
        path = p("randomization")
        randomization = from_yaml(RandomizationConfig, path) if path else RandomizationConfig()
        if randomization.camera_pos_jitter or randomization.camera_rot_jitter:
            self.get_logger().warning(
                f"{path}: camera_pos_jitter / camera_rot_jitter move only the env's own "
                "cameras; this node renders the hardware config's cameras, which stay put"
            )
        self.env = sim.make_env(
            p("task"),
            hardware=self.hw.source,
            policy_rate_hz=float(p("step_rate_hz")),
            max_episode_steps=10**9,
            terminate_on_success=False,
            randomization=randomization,
        )
        self.obs, _ = self.env.reset(seed=int(p("seed")))
        self.resets = 0
        base = self.env.unwrapped
        self._renderers = {
            cam.name: CameraRenderer(base.model, cam.width, cam.height) for cam in self.hw.cameras
        }
        self.sim_time = 0.0
        self.steps = 0
        self.command = self._current_command()
        self.success = False
        self.pub_joints = self.create_lifecycle_publisher(JointState, "joint_states", common.SENSOR_PUB_QOS)
        self.pub_images = {
            cam.name: self.create_lifecycle_publisher(Image, cam.image_topic, common.SENSOR_PUB_QOS)
            for cam in self.hw.cameras
        }
        self.pub_success = self.create_lifecycle_publisher(Bool, "~/success", common.COMMAND_QOS)
        self.pub_object = self.create_lifecycle_publisher(PoseStamped, "object_pose", common.SENSOR_PUB_QOS)
        self.pub_goal = self.create_lifecycle_publisher(PointStamped, "goal_pos", common.SENSOR_PUB_QOS)
        self.pub_clock = None
        if p("publish_clock"):
            self.pub_clock = self.create_publisher(Clock, "/clock", common.SENSOR_PUB_QOS)
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.sub_commands = self.create_subscription(
            Float64MultiArray, "commands", self._on_command, common.COMMAND_QOS, callback_group=self._group
        )
        self.srv_reset = self.create_service(Trigger, "~/reset", self._on_reset, callback_group=self._group)
        self.bad_commands = 0
        self.dropped_steps = 0
        self._wall0 = self._period = None
        self._paced_steps = 0
        self._sim_time0 = 0.0
        self._delayed.clear()
        self.get_logger().info(
            f"{self.hw.name} task {p('task')}: {self.hw.num_joints} joints, cameras "
            f"{[c.name for c in self.hw.cameras]}, rtf {self.rtf:g}, randomization "
            f"{p('randomization') or 'none'}, sensing latency {self.latency_s:g} s"
        )
        return TransitionCallbackReturn.SUCCESS

    @common.logged_transition
    def on_activate(self, state: State) -> TransitionCallbackReturn:
        period = self.step_dt / self.rtf if self.rtf > 0 else 1e-4
        # Sim-time pacing: wall timers, since the sim itself is the clock.
        self._timers = [
            self.create_timer(period, self._tick, callback_group=self._group),
            self.create_timer(1.0, self._diagnose),
        ]
        self._next_frame = {cam.name: 0.0 for cam in self.hw.cameras}
        self._wall0 = common.now_sec(self)  # paced: step k since activation is due at wall0 + k period
        self._period = period
        self._paced_steps = 0
        self._sim_time0 = self.sim_time
        self.dropped_steps = 0
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        self._delayed.clear()  # in flight when the sim stopped: never delivered
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        if self.env is not None:
            for renderer in self._renderers.values():
                renderer.close()
            self.env.close()
            self.env = None

    # -- callbacks ---------------------------------------------------------------------------------
    def _current_command(self) -> np.ndarray:
        obs = self.obs
        return np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER_POS]).astype(np.float64)

    def _on_command(self, msg: Float64MultiArray) -> None:
        values = np.asarray(msg.data, dtype=np.float64)
        if values.shape != (self.hw.action_dim,) or not np.all(np.isfinite(values)):
            self.bad_commands += 1
            self.get_logger().error(
                f"commands: expected {self.hw.action_dim} finite values ({self.hw.num_joints} joints + gripper), "
                f"got {values.shape[0]}; ignored",
                throttle_duration_sec=1.0,
            )
            return
        self.command = values

    def _on_reset(self, request, response):
        self.resets += 1  # reset k draws its scene with seed + k (configure drew seed + 0)
        self.obs, _ = self.env.reset(seed=int(self.get_parameter("seed").value) + self.resets)
        self.command = self._current_command()
        self.success = False
        response.success, response.message = True, "episode reset"
        return response

    def _tick(self) -> None:
        """The timer: one step at real_time_factor 0, else every step due by the wall clock."""
        if self.pub_clock is not None:
            self._step(None)
        else:
            due = int((common.now_sec(self) - self._wall0) / self._period) + 1 - self._paced_steps
            if due > MAX_CATCH_UP:  # too far behind to catch up: drop the backlog
                self.dropped_steps += due - MAX_CATCH_UP
                self._paced_steps += due - MAX_CATCH_UP
                due = MAX_CATCH_UP
            for _ in range(due):
                self._step(self._wall0 + self._paced_steps * self._period)
                self._paced_steps += 1
        if self._delayed:
            self._release(self.sim_time if self.pub_clock is not None else common.now_sec(self))

    def _send(self, publisher, msg, measured: float) -> None:
        """Publish a sensed message now, or `latency_s` after `measured` (its stamp, seconds)."""
        if self.latency_s > 0:
            self._delayed.append((measured + self.latency_s, publisher, msg))
        else:
            publisher.publish(msg)

    def _release(self, now: float) -> None:
        """Publish the delayed messages that have come due by `now` (stamp timebase), oldest first."""
        delayed = self._delayed
        while delayed and delayed[0][0] <= now + 1e-9:
            _, publisher, msg = delayed.popleft()
            publisher.publish(msg)

    def _step(self, due_time: float | None) -> None:
        obs, _reward, _terminated, _truncated, info = self.env.step(self.command.astype(np.float32))
        self.obs = obs
        self.sim_time += self.step_dt
        self.steps += 1
        self.success = bool(info.get("is_success", False))
        measured = self.sim_time if due_time is None else due_time  # sim time with /clock, else as due
        stamp = common.to_stamp(measured)
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=stamp))
        joints = JointState(name=[*self.hw.joint_names, self.hw.gripper.name])
        joints.header.stamp = stamp
        joints.position = [*obs[keys.JOINT_POS].tolist(), float(obs[keys.GRIPPER_POS][0])]
        joints.velocity = [*obs[keys.JOINT_VEL].tolist(), 0.0]
        self._send(self.pub_joints, joints, measured)
        self.pub_success.publish(Bool(data=self.success))
        if keys.OBJECT_POSE in obs:
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, self.hw.model.base_body
            p, q = obs[keys.OBJECT_POSE][:3].tolist(), obs[keys.OBJECT_POSE][3:].tolist()
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = p
            (
                pose.pose.orientation.w,
                pose.pose.orientation.x,
                pose.pose.orientation.y,
                pose.pose.orientation.z,
            ) = q
            self._send(self.pub_object, pose, measured)
        goal = PointStamped()
        goal.header.stamp, goal.header.frame_id = stamp, self.hw.model.base_body
        goal.point.x, goal.point.y, goal.point.z = obs[keys.GOAL_POS].tolist()
        self._send(self.pub_goal, goal, measured)
        data = self.env.unwrapped.data
        for cam in self.hw.cameras:
            if self.sim_time + 1e-9 >= self._next_frame[cam.name]:
                self._next_frame[cam.name] = self.sim_time + 1.0 / cam.rate_hz
                if self.pub_images[cam.name].get_subscription_count() == 0:
                    continue  # nobody listens: no frame rendered
                pixels = self._renderers[cam.name].render(data, cam.name)
                image = common.array_to_image(pixels, stamp, cam.name)
                self._send(self.pub_images[cam.name], image, measured)

    def _real_time_factor(self) -> float:
        """Sim time / wall time since activation (the paced target is real_time_factor)."""
        wall = common.now_sec(self) - self._wall0 if self._wall0 is not None else 0.0
        return (self.sim_time - self._sim_time0) / wall if wall > 0 else float("nan")

    def _diagnose(self) -> None:
        level = common.OK if self.bad_commands == 0 and self.dropped_steps == 0 else common.WARN
        self.pub_diag.publish(
            common.diagnostics(
                self,
                level,
                "stepping",
                {
                    "sim_time_s": f"{self.sim_time:.2f}",
                    "steps": self.steps,
                    "bad_commands": self.bad_commands,
                    "dropped_steps": self.dropped_steps,
                    "real_time_factor": f"{self._real_time_factor():.3f}",
                    "injected_latency_s": f"{self.latency_s:g}",
                    "latency_queue": len(self._delayed),
                },
            )
        )


def main(args=None) -> int:
    return common.run(SimRobotNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
