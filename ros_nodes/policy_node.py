"""policy_node: observations -> inference server -> timestamped action chunks for the controller.

    subscribes  joint_states (JointState), camera topics, object_pose (PoseStamped), goal_pos
                (PointStamped): all sensor QoS; only what the served policy's obs_spec names
    publishes   action_chunk (trajectory_msgs/JointTrajectory, reliable): header.stamp = the
                observation's stamp = the time of the first point (the previous command),
                then the policy's Ta actions, points action_dt_s apart; joint names =
                hardware-config joints then the gripper.  /diagnostics
    services    ~/enable (std_srvs/SetBool): start or stop sending chunks

Actor mode (parameter `learner` = the endpoint of `robot-rl learn`): the node acts for an
online learner. The served policy is the learner's explorer (robot_rl/policies/explorer.py),
and the node records each episode (robot_rl/training/robot_loop.py's EpisodeBuilder: one step
per chunk request: observation, the learner's action = the reply's latent, or the action
executed; reward; intervention) and sends it to the learner when it ends. Then it resets:

    subscribes  task_success (std_msgs/Bool)          reward "task": 1 and the episode ends
                teleop_chunk (JointTrajectory)        a person's chunk: the step is an
                                                      intervention (and its action theirs)
    asks        the server's reward classifier        reward "classifier": P(success) of each new
                (parameter reward_classifier)         frame of its camera > reward_threshold: 1
                                                      and the episode ends
    services    ~/label (std_srvs/SetBool)            reward "operator": success / failure ends it
                ~/next_episode (std_srvs/Trigger)     reset "operator": the scene is ready
    calls       controller_change_state, sim_reset    reset "sim": controller deactivate, sim
                                                      reset (seed + k), controller activate

    run ── success / label / episode_steps ──► send episode ──► [reset_position] ──►
           reset: sim | operator ──► run (a fresh history, a chunk at once)

Every action_dt_s (the policy's step, 0.1 s for the sim tasks) the latest observation is
assembled (robot_rl.observation: a stale part sends nothing and breaks the history) and
appended to the history; a fresh history (after enable or a gap) is filled with copies of
its first observation, as robot_rl.training.evaluation starts an episode. A chunk is
requested when `action_horizon` steps of the last one have been executed (0: the policy's
own Ta, as the server describes it), so the robot runs the policy as a plain-sim
evaluation (`robot-rl eval [--action-horizon]`) does. The request runs in the node's loop
thread (woken by the tick timer), not in an executor callback, so sensor callbacks and
services keep flowing while the node waits for the GPU.

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
import time
from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PointStamped, PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
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
        self.fatal: Exception | None = None  # what stopped the loop thread, raised by common.run
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
        self._camera_subs: dict[str, object] = {}  # made once the policy asks for the camera
        self.create_subscription(PoseStamped, "object_pose", self._on_object_pose, common.SENSOR_QOS)
        self.create_subscription(PointStamped, "goal_pos", self._on_goal, common.SENSOR_QOS)
        self.pub_chunk = self.create_publisher(JointTrajectory, "action_chunk", common.COMMAND_QOS)
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.learner = p("learner", "")  # actor mode: the endpoint of `robot-rl learn`
        if self.learner:
            self._init_actor(p)
        # The loop (inference requests, a reset's service calls) runs in a thread of its own that
        # the tick timer wakes, so the executor stays single-threaded and never waits on the
        # server: rclpy's MultiThreadedExecutor spent ~40% of a core here on its own bookkeeping.
        self._wake = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="policy_loop", daemon=True)
        self._loop_thread.start()
        self.create_timer(self.action_dt, self._wake.set)
        self.create_timer(1.0, self._diagnose)

    # -- actor mode ----------------------------------------------------------------------------------
    def _init_actor(self, p) -> None:
        from lifecycle_msgs.srv import ChangeState

        self.reward_source = p("reward", "task")  # task | operator | classifier
        self.reward_classifier = p("reward_classifier", "reward")  # its name on the server
        self.reward_threshold = float(p("reward_threshold", 0.5))  # P(success) above it: success
        self.last_success_p = float("nan")
        self.reset_mode = p("reset", "sim")  # sim | operator
        self.episode_steps = int(p("episode_steps", 120))  # policy steps before a truncation
        position = p("reset_position", "")  # "q1,...,qJ,gripper": a slow move there first; "": none
        try:
            self.reset_position = [float(x) for x in position.split(",") if x.strip()]
        except ValueError as exc:
            raise ValueError(
                f"parameter reset_position must be comma-separated numbers, got {position!r}"
            ) from exc
        if self.reset_position and len(self.reset_position) != len(self.hw.joint_names) + 1:
            raise ValueError(
                f"parameter reset_position needs {len(self.hw.joint_names)} joints + the gripper, "
                f"got {len(self.reset_position)} values"
            )
        self.reset_duration_s = float(p("reset_duration_s", 3.0))
        self.intervention_hold_s = float(p("intervention_hold_s", 0.3))
        if self.reward_source not in ("task", "operator", "classifier"):
            raise ValueError(f"parameter reward must be task|operator|classifier, got {self.reward_source!r}")
        if self.reset_mode not in ("sim", "operator"):
            raise ValueError(f"parameter reset must be sim|operator, got {self.reset_mode!r}")
        if not 0.0 < self.reward_threshold < 1.0:
            raise ValueError(f"parameter reward_threshold must be in (0, 1), got {self.reward_threshold}")
        if self.episode_steps < 1:
            raise ValueError(f"parameter episode_steps must be >= 1, got {self.episode_steps}")
        self.learner_key = p("learner_key", "")
        self.learner_timeout_s = float(
            p("learner_timeout_s", 2.0)
        )  # an episode not taken by then is lost  # the learner's NAME.key (public), with client_key
        self.actor = None  # the ActorClient, made when the first episode is sent
        self.moved = False  # the reset motion of this reset is done
        self.episode = None  # the EpisodeBuilder, once the policy is known
        self.phase = "reset"
        self.episode_ticks = 0
        self.success_seen = False
        self.label: bool | None = None
        self.confirmed = False
        self.teleop: tuple[float, JointTrajectory] | None = None  # (arrival, chunk)
        self.counts.update({"episodes": 0, "sent": 0, "send_errors": 0, "interventions": 0})
        self.create_subscription(Bool, "task_success", self._on_success, 10)
        self.create_subscription(JointTrajectory, "teleop_chunk", self._on_teleop, 10)
        self.create_service(SetBool, "~/label", self._on_label)
        self.create_service(Trigger, "~/next_episode", self._on_next_episode)
        self.controller_state = self.create_client(ChangeState, "controller_change_state")
        self.sim_reset = self.create_client(Trigger, "sim_reset")

    def _on_success(self, msg: Bool) -> None:
        self.success_seen = self.success_seen or bool(msg.data)

    def _on_teleop(self, msg: JointTrajectory) -> None:
        self.teleop = (time.monotonic(), msg)

    def _on_label(self, request, response):
        self.label = bool(request.data)
        response.success, response.message = True, "success" if request.data else "failure"
        return response

    def _on_next_episode(self, request, response):
        self.confirmed = True
        response.success, response.message = True, "next episode"
        return response

    def _person_action(self) -> np.ndarray | None:
        """The person's current command (their latest chunk's point for now), if they are active."""
        if self.teleop is None or time.monotonic() - self.teleop[0] > self.intervention_hold_s:
            return None
        try:
            chunk = common.chunk_from_msg(self.teleop[1], [*self.hw.joint_names, self.hw.gripper.name])
        except ValueError:
            return None
        k = round((common.now_sec(self) + self.action_dt - chunk.t0) / chunk.dt)
        return chunk.positions[min(max(k, 0), len(chunk.positions) - 1)].astype(np.float32)

    def _actor_tick(self) -> bool:
        """Reward and interventions for the open step; True when the episode just ended."""
        if not len(self.episode):  # no step taken yet: nothing to reward, nothing to end
            self.success_seen = False  # success is judged after an action, never before the first
            return False
        person = self._person_action()
        if person is not None:
            self.episode.mark_intervention(None if self.spec.get("latent_dim") else person)
            self.counts["interventions"] += 1
        if self.reward_source == "classifier":
            success = self._classifier_success()
        else:
            success = self.success_seen if self.reward_source == "task" else bool(self.label)
        if success:
            self.episode.add_reward(1.0)
        self.episode_ticks += 1
        over = success or self.label is not None or self.episode_ticks >= self.episode_steps
        if over:
            self._send_episode(terminal=success or self.label is not None, success=success)
            self.phase = "reset"
        return over

    def _classifier_success(self) -> bool:
        """The served reward classifier's verdict on the newest frame (an error: no success)."""
        key = self.classifier_key
        _, values = self.history[-1]
        try:
            reply = self.client.infer(self.reward_classifier, {key: values[key][None]})
        except Exception as exc:
            self._error(f"reward classifier: {exc}")
            return False
        self.last_success_p = float(np.asarray(reply.actions).reshape(-1)[0])
        return self.last_success_p > self.reward_threshold

    def _send_episode(self, terminal: bool, success: bool) -> None:
        from robot_rl.training.actor_link import ActorClient

        episode, stats = self.episode.finish(terminal, success, env_steps=self.episode_ticks)
        self.counts["episodes"] += 1
        try:
            if self.actor is None:
                self.actor = ActorClient(
                    self.learner, self.client_key, self.learner_key, timeout_s=self.learner_timeout_s
                )
            self.actor.send_transitions(episode, stats)
            self.counts["sent"] += 1
        except Exception as exc:  # the learner is down or refused it: this episode is lost
            self.counts["send_errors"] += 1
            self._error(f"learner: {exc}")
            if self.actor is not None:
                self.actor.close()
                self.actor = None
        self.get_logger().info(
            f"episode {self.counts['episodes']}: {'success' if success else 'no success'}, "
            f"{int(stats['length'])} steps, {int(stats['interventions'])} intervened"
        )

    def _call(self, client, request, what: str, timeout_s: float = 10.0):
        """A service call from the loop thread (the reply arrives on the executor's thread)."""
        deadline = time.monotonic() + timeout_s
        while not client.wait_for_service(timeout_sec=0.2):
            if self._closing or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: service {client.srv_name} not available")
        future = client.call_async(request)
        while not future.done():
            if self._closing or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: no answer within {timeout_s:g} s")
            time.sleep(0.005)
        if not future.result().success:
            raise RuntimeError(f"{what}: refused")

    def _reset(self) -> bool:
        """One tick of the reset; True when the next episode may start."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        if self.reset_position and not self.moved:
            obs = self.assembler.assemble(common.now_sec(self))
            if obs is None:
                return False
            # A slow chunk to the reset position, through the controller's safety filter.
            start = np.append(obs.values[keys.JOINT_POS], obs.values[keys.GRIPPER_POS])
            n = max(2, int(self.reset_duration_s / self.action_dt) + 1)
            points = np.linspace(start, np.asarray(self.reset_position), n)
            for k in range(n - 1):  # the rest of the path every step: the watchdog sees fresh chunks
                self.pub_chunk.publish(self._chunk_msg(points[k:], common.now_sec(self)))
                time.sleep(self.action_dt)
            self.moved = True
        if self.reset_mode == "operator":
            if not self.confirmed:
                return False
        else:
            change = lambda t: ChangeState.Request(transition=Transition(id=t))  # noqa: E731
            try:
                self._call(
                    self.controller_state, change(Transition.TRANSITION_DEACTIVATE), "controller deactivate"
                )
                self._call(self.sim_reset, Trigger.Request(), "sim reset")
                self._call(
                    self.controller_state, change(Transition.TRANSITION_ACTIVATE), "controller activate"
                )
            except RuntimeError as exc:
                self._error(f"reset: {exc}")
                return False
            time.sleep(0.3)  # the old episode's success messages drain
        self.confirmed = self.moved = False
        self.success_seen, self.label = False, None
        self.episode_ticks = 0
        self.episode.clear()
        self._restart()
        self.phase = "run"
        return True

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
        if self.learner and self.reward_source == "classifier":
            camera = self._classifier_camera(policies)
            self.classifier_key = keys.image_key(camera)
            cameras += [] if camera in cameras else [camera]
        for name in cameras:  # only these: a sim renders a camera only while someone listens
            if name not in self._camera_subs:
                self._camera_subs[name] = self.create_subscription(
                    Image,
                    self.hw.camera(name).image_topic,
                    lambda m, name=name: self._on_image(name, m),
                    common.SENSOR_QOS,
                )
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
        if self.learner:
            if not self.spec.get("latent_dim") and self.steps != 1:
                raise ValueError(
                    f"actor mode: policy {self.policy} reports no latent, so the learner's action is "
                    f"the one executed: it must run one step per chunk (Ta 1), not {self.steps}"
                )
            from robot_rl.training.robot_loop import EpisodeBuilder

            self.episode = EpisodeBuilder([k for k in wanted if not keys.is_image_key(k)])
        self._restart()
        self.get_logger().info(
            f"serving {self.policy} v{self.spec['version']} at {self.server}: obs {sorted(wanted)}, "
            f"To={self.spec['obs_horizon']}, Ta={ta}, executing {self.steps} steps per chunk"
        )
        return True

    def _classifier_camera(self, policies: dict) -> str:
        """The camera whose frames the served reward classifier judges; ValueError naming what is off."""
        name = self.reward_classifier
        if name not in policies:
            raise ValueError(
                f"reward 'classifier': server {self.server} serves {sorted(policies)}, not the classifier "
                f"{name!r} (robot-rl serve --policy {name}=<classifier dir>)"
            )
        spec = policies[name]
        images = [k for k in spec["obs_spec"] if keys.is_image_key(k)]
        if len(images) != 1 or len(spec["obs_spec"]) != 1 or int(spec["action_dim"]) != 1:
            raise ValueError(
                f"reward 'classifier': {name!r} takes {sorted(spec['obs_spec'])} and gives "
                f"{spec['action_dim']} values; a reward classifier takes one camera frame and gives P(success)"
            )
        for cam in self.hw.cameras:
            if keys.image_key(cam.name) == images[0]:
                shape = tuple(spec["obs_spec"][images[0]][0])
                if shape != (cam.height, cam.width, 3):
                    raise ValueError(
                        f"reward classifier {name!r} wants {shape} frames of camera {cam.name}, "
                        f"{self.hw.name} gives ({cam.height}, {cam.width}, 3)"
                    )
                return cam.name
        raise ValueError(
            f"reward classifier {name!r} judges {images[0]!r}, a camera {self.hw.name} does not have "
            f"(cameras: {[c.name for c in self.hw.cameras]})"
        )

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
    def _loop(self) -> None:
        """The loop thread: one step per tick (a tick that comes while a step runs wakes the next)."""
        while not self._closing:
            if not self._wake.wait(timeout=0.5):
                continue
            self._wake.clear()
            with self._client_lock:
                if self._closing or not self.context.ok():
                    return  # closing, or Ctrl-C has shut ROS down: no step on a dead context
                try:
                    self._step()
                except Exception as exc:  # a wrong parameter for the served policy, or a bug: the
                    # node stops (common.run raises it after the executor returns), as a callback's
                    # exception would, so bringup / launch see a failed node, not a silent one
                    if self._closing or not self.context.ok():
                        return  # Ctrl-C shut ROS down under a step in progress: that is the stop
                    self.get_logger().fatal(f"{type(exc).__name__}: {exc}")
                    self.fatal = exc
                    self.context.try_shutdown()
                    return

    def _step(self) -> None:
        if not self.enabled:
            return
        if self.spec is None and not self._connect():
            return
        if self.learner and self.phase == "reset" and not self._reset():
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
        if self.learner and self._actor_tick():
            return  # the episode ended: no chunk; the controller's watchdog holds the arm
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
        if self.learner:  # the next step of the episode: the learner's action for this observation
            self.episode.open_step(values, chunk.latent if chunk.latent is not None else actions[0])

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
            **({"success_p": f"{self.last_success_p:.3f}"} if self.learner else {}),
            "last_error": self.last_error,
        }
        self.pub_diag.publish(common.diagnostics(self, level, message, values))

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        # Wait for a request in flight (bounded by its deadline) before closing the socket.
        if self._client_lock.acquire(timeout=self.timeout_s + 5.0):
            try:
                if self.client is not None:
                    self.client.close()
                    self.client = None
                if self.learner and self.actor is not None:
                    self.actor.close()
                    self.actor = None
            finally:
                self._client_lock.release()
        else:
            self.get_logger().warning("close: a request is still in flight; leaving the socket to exit")


def main(args=None) -> int:
    return common.run(PolicyNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
