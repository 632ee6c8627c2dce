"""policy_node: observations -> inference server -> timestamped action chunks for the controller.

    subscribes  joint_states (JointState), camera topics, object_pose (PoseStamped), goal_pos
                (PointStamped): all sensor QoS; only what the served policy's obs_spec names
    publishes   action_chunk (trajectory_msgs/JointTrajectory, reliable): header.stamp = the
                observation's stamp = the time of the first point (the previous command),
                then the policy's Ta actions, points action_dt_s apart; joint names =
                hardware-config joints then the gripper.  /diagnostics
    services    ~/enable (std_srvs/SetBool): start or stop sending chunks

Every action_dt_s (the policy's step, 0.1 s for the sim tasks) the latest observation is
assembled (robot_rl.observation: a stale part sends nothing and breaks the history) and
appended to the history; a fresh history (after enable or a gap) is filled with copies of
its first observation, as robot_rl.training.evaluation starts an episode. A chunk is
requested when `action_horizon` steps of the last one have been executed (0: the policy's
own Ta, as the server describes it), so the robot runs the policy as a plain-sim
evaluation (`robot-rl eval [--action-horizon]`) does. The request runs in its own
callback group, so sensor callbacks keep flowing while the node waits for the GPU.

The chunk follows the sim env's timing (sim/envs/arm_env.py): the action a(t) predicted from
the observation o(t) is the target reached one step later, the command ramping there from
the previous one. So the published chunk starts at the observation's stamp with that
previous command (the last point of the previous chunk, or the observed joint positions
after a break) and puts a(t + k) at t + (k + 1) dt:

    obs      |o(t-1)|o(t)|  -> server ->  a(t) .. a(t+Ta-1)
    chunk    point 0 = previous command @ t,  point k+1 = a(t+k) @ t + (k+1) dt   (stamp = t)
    next     o(t+n) -> the next chunk, its point 0 = a(t+n-1) @ t + n dt   (n = action_horizon)

The controller takes a chunk over from its arrival (inference latency later than t),
cross-fading from where the previous chunk left off; no step of a(t) .. is skipped unless
the latency exceeds one step.

The server's policy description (obs_spec, obs_horizon, action_horizon) is read with a
status request when the node starts and again after an error.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_rl import keys
from robot_rl.observation import ObservationAssembler, StalenessLimits
from ros_nodes import common

STATE_KEYS = (keys.OBJECT_POSE, keys.GOAL_POS)


class PolicyNode(Node):
    def __init__(self):
        super().__init__("policy")
        self.hw = common.hardware_from_parameter(self)
        p = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
        self.server = p("server", "tcp://127.0.0.1:5555")
        self.policy = p("policy", "")
        if not self.policy:
            raise ValueError("parameter policy must name a policy served by the inference server")
        self.action_dt = float(p("action_dt_s", 0.1))
        self.action_horizon = int(p("action_horizon", 0))  # steps run from each chunk; 0: the policy's Ta
        if self.action_horizon < 0:
            raise ValueError(f"parameter action_horizon must be >= 0, got {self.action_horizon}")
        self.timeout_s = float(p("timeout_s", 0.5))
        self.enabled = bool(p("enabled", True))
        self.limits = StalenessLimits(p("joint_state_max_age_s", 0.1), p("image_max_age_s", 0.2))
        self.client_key = p("client_key", "")  # NAME.key_secret; CURVE, required beyond loopback
        self.server_key = p("server_key", "")  # the server's NAME.key (public)
        self.client = None
        # The client's socket is used by the tick (an executor thread) and closed by close() (the
        # main thread): closing a ZeroMQ socket while another thread is inside recv aborts libzmq.
        self._client_lock = threading.Lock()
        self._closing = False
        self.spec: dict | None = None
        self.assembler: ObservationAssembler | None = None
        self.history: deque = deque()
        self.steps = 0  # steps to execute from each chunk (action_horizon, or the policy's Ta)
        self.due = 0  # ticks until the next chunk is requested
        self.last_command: np.ndarray | None = None  # the last point of the last chunk sent
        self.kin = None
        self.counts = {"chunks": 0, "stale": 0, "errors": 0, "bad_inputs": 0}
        self.last_error = ""
        self.last_latency_s = float("nan")

        self.create_subscription(JointState, "joint_states", self._on_joint_state, common.SENSOR_QOS)
        for cam in self.hw.cameras:
            self.create_subscription(
                Image, cam.image_topic, lambda m, name=cam.name: self._on_image(name, m), common.SENSOR_QOS
            )
        self.create_subscription(PoseStamped, "object_pose", self._on_object_pose, common.SENSOR_QOS)
        self.create_subscription(PointStamped, "goal_pos", self._on_goal, common.SENSOR_QOS)
        self.pub_chunk = self.create_publisher(JointTrajectory, "action_chunk", common.COMMAND_QOS)
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._infer_group = MutuallyExclusiveCallbackGroup()
        self.create_timer(self.action_dt, self._tick, callback_group=self._infer_group)
        self.create_timer(1.0, self._diagnose)

    # -- server ------------------------------------------------------------------------------------
    def _connect(self) -> bool:
        from robot_rl.serving.client import InferenceClient, ZmqTransport
        from robot_rl.serving.curve import load_keypair

        try:
            if self.client is None:
                key = load_keypair(self.client_key) if self.client_key else None
                server = load_keypair(self.server_key, need_secret=False).public if self.server_key else None
                # The robot clock is ROS time, so chunk stamps and observation stamps agree.
                self.client = InferenceClient(
                    ZmqTransport(self.server, client_key=key, server_public=server),
                    timeout_s=self.timeout_s,
                    clock=lambda: common.now_sec(self),
                )
            policies = self.client.status()["policies"]
            if self.policy not in policies:
                raise ValueError(f"server {self.server} serves {sorted(policies)}, not {self.policy!r}")
        except Exception as exc:  # no server yet, wrong policy: say so and retry next tick
            self._error(f"inference server: {exc}")
            return False
        self.spec = policies[self.policy]
        wanted = self.spec["obs_spec"]
        cameras = [c.name for c in self.hw.cameras if keys.image_key(c.name) in wanted]
        state = [k for k in STATE_KEYS if k in wanted]
        self.assembler = ObservationAssembler(self.hw, self.limits, cameras, state_keys=state)
        if keys.EE_POS in wanted or keys.EE_QUAT in wanted:
            from robot_rl.control.kinematics import ArmKinematics

            self.kin = ArmKinematics(self.hw)
        self.history = deque(maxlen=int(self.spec["obs_horizon"]))
        ta = int(self.spec["action_horizon"])
        if self.action_horizon > ta:
            raise ValueError(
                f"parameter action_horizon {self.action_horizon} exceeds policy {self.policy}'s "
                f"chunk of {ta} actions"
            )
        self.steps = self.action_horizon or ta
        self._restart()
        self.get_logger().info(
            f"serving {self.policy} v{self.spec['version']} at {self.server}: obs {sorted(wanted)}, "
            f"To={self.spec['obs_horizon']}, Ta={ta}, executing {self.steps} steps per chunk"
        )
        return True

    # -- inputs ------------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        if self.assembler is not None:
            try:
                self.assembler.on_joint_state(
                    common.to_sec(msg.header.stamp), msg.name, msg.position, msg.velocity
                )
            except ValueError as exc:
                self._bad(str(exc))

    def _on_image(self, camera: str, msg: Image) -> None:
        if self.assembler is not None and camera in self.assembler.cameras:
            try:
                self.assembler.on_image(camera, common.to_sec(msg.header.stamp), common.image_to_array(msg))
            except ValueError as exc:
                self._bad(f"camera {camera}: {exc}")

    def _on_object_pose(self, msg: PoseStamped) -> None:
        if self.assembler is not None:
            p, q = msg.pose.position, msg.pose.orientation
            self.assembler.on_state(
                keys.OBJECT_POSE, common.to_sec(msg.header.stamp), [p.x, p.y, p.z, q.w, q.x, q.y, q.z]
            )

    def _on_goal(self, msg: PointStamped) -> None:
        if self.assembler is not None:
            p = msg.point
            self.assembler.on_state(keys.GOAL_POS, common.to_sec(msg.header.stamp), [p.x, p.y, p.z])

    def _restart(self) -> None:
        """A break (enable, disable, a stale observation): a fresh history, a chunk at once."""
        self.history.clear()
        self.due = 0
        self.last_command = None

    def _on_enable(self, request, response):
        self.enabled = bool(request.data)
        self._restart()
        response.success, response.message = True, "enabled" if self.enabled else "disabled"
        return response

    def _bad(self, message: str) -> None:
        self.counts["bad_inputs"] += 1
        self.get_logger().error(message, throttle_duration_sec=1.0)

    def _error(self, message: str) -> None:
        self.counts["errors"] += 1
        self.last_error = message
        self.get_logger().warning(message, throttle_duration_sec=2.0)

    # -- the loop ----------------------------------------------------------------------------------
    def _tick(self) -> None:
        with self._client_lock:
            if not self._closing:
                self._step()

    def _step(self) -> None:
        if not self.enabled:
            return
        if self.spec is None and not self._connect():
            return
        now = common.now_sec(self)
        obs = self.assembler.assemble(now)
        if obs is None:
            self.counts["stale"] += 1
            self._restart()  # a gap: the next window must be contiguous again
            return
        values = dict(obs.values)
        if self.kin is not None:
            pos, quat = self.kin.fk(values[keys.JOINT_POS])
            values[keys.EE_POS], values[keys.EE_QUAT] = pos.astype(np.float32), quat.astype(np.float32)
        while len(self.history) < self.history.maxlen - 1:  # a fresh history: the first obs repeated
            self.history.append((obs.stamp, values))
        self.history.append((obs.stamp, values))
        self.due -= 1
        if self.due > 0:  # the last chunk is still being executed
            return
        window = {
            k: np.stack([v[k] for _, v in self.history]).astype(dt, copy=False)
            for k, (_, dt) in self.spec["obs_spec"].items()
        }
        try:
            chunk = self.client.infer(self.policy, window, stamp=obs.stamp)
        except Exception as exc:  # deadline, server error: no chunk this tick, the watchdog holds
            self._error(f"infer: {exc}")
            if getattr(exc, "code", "") == "unknown_policy":
                self.spec = None  # the server restarted without it: describe again
            return
        self.last_latency_s = common.now_sec(self) - obs.stamp
        actions = np.asarray(chunk.actions, dtype=np.float64)
        start = self.last_command
        if start is None:  # after a break the command is where the arm is
            start = np.append(values[keys.JOINT_POS], values[keys.GRIPPER_POS]).astype(np.float64)
        # The whole chunk goes out (its tail keeps the arm moving if the next one is late), and
        # the next is asked for after `steps` of it, whose last action is then the command.
        self.pub_chunk.publish(self._chunk_msg(np.vstack([start, actions]), chunk.start_time))
        self.last_command = actions[self.steps - 1]
        self.due = self.steps
        self.counts["chunks"] += 1

    def _chunk_msg(self, points: np.ndarray, start_time: float) -> JointTrajectory:
        msg = JointTrajectory(joint_names=[*self.hw.joint_names, self.hw.gripper.name])
        msg.header.stamp = common.to_stamp(start_time)
        for k, position in enumerate(points):
            t = k * self.action_dt
            point = JointTrajectoryPoint(positions=position.tolist())
            point.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            msg.points.append(point)
        return msg

    def _diagnose(self) -> None:
        if self.spec is None:
            level, message = common.ERROR, self.last_error or "connecting to the inference server"
        elif not self.enabled:
            level, message = common.OK, "disabled"
        elif self.assembler is not None and self.assembler.why_not:
            level, message = common.WARN, self.assembler.why_not
        else:
            level, message = common.OK, "running"
        values = {
            **self.counts,
            "latency_ms": f"{self.last_latency_s * 1e3:.1f}",
            "last_error": self.last_error,
        }
        self.pub_diag.publish(common.diagnostics(self, level, message, values))

    def close(self) -> None:
        self._closing = True
        # Wait for a request in flight (bounded by its deadline) before closing the socket.
        if self._client_lock.acquire(timeout=self.timeout_s + 5.0):
            try:
                if self.client is not None:
                    self.client.close()
                    self.client = None
            finally:
                self._client_lock.release()
        else:
            self.get_logger().warning("close: a request is still in flight; leaving the socket to exit")


def main(args=None) -> int:
    return common.run(PolicyNode, threads=2, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
