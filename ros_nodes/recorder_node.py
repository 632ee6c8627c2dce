"""recorder_node: observations and commands into the episode store, one episode per start/stop.

    subscribes  joint_states (JointState, sensor QoS), camera topics of the hardware config
                (Image, sensor QoS), commands (Float64MultiArray or JointTrajectory, as the
                hardware config's controller kind says; reliable)
    services    ~/start, ~/stop, ~/discard (std_srvs/Trigger), ~/success (std_srvs/SetBool)
    publishes   /diagnostics

Every 1/rate_hz while recording, the latest observation (robot_rl.observation, with its
staleness limits) and the latest command become one step. A tick whose observation is stale,
or no newer than the last step's, is skipped rather than filled in or recorded twice. Steps
stream to disk through EpisodeStore's writer; an episode exists once stop commits it, so a
SIGKILL of this node loses only the episode in progress.

    start ──tick──tick──tick── ... ──stop (commit, success flag if set)
                                   └─discard (nothing kept)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_rl import keys
from robot_rl.data.store import EpisodeMeta, EpisodeStore
from robot_rl.observation import ObservationAssembler, StalenessLimits
from ros_nodes import common


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        self.hw = common.hardware_from_parameter(self)
        p = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
        store_path = Path(p("store", "demos.zarr"))
        rate_hz = float(p("rate_hz", 10.0))
        self.task = p("task", "")
        self.operator = p("operator", "")
        self.source = p("source", "teleop")
        cameras = [c.name for c in self.hw.cameras] if p("record_images", True) else []
        limits = StalenessLimits(p("joint_state_max_age_s", 0.1), p("image_max_age_s", 0.3))
        self.assembler = ObservationAssembler(self.hw, limits, cameras)
        self.kin = None
        if p("record_ee_pose", True):
            from robot_rl.control.kinematics import ArmKinematics

            self.kin = ArmKinematics(self.hw)
        if (store_path / "zarr.json").exists():
            self.store = EpisodeStore.open(store_path, mode="a")
        else:
            self.store = EpisodeStore.create(store_path, step_dt=1.0 / rate_hz)
        self.writer = None
        self.success: bool | None = None
        self.command: np.ndarray | None = None
        self.skipped = 0
        self.bad_inputs = 0
        self.last_stamp = -np.inf  # of the newest recorded step: an observation is recorded once

        self.create_subscription(JointState, "joint_states", self._on_joint_state, common.SENSOR_QOS)
        for cam in self.hw.cameras:
            if cam.name in cameras:
                self.create_subscription(
                    Image,
                    cam.image_topic,
                    lambda msg, name=cam.name: self._on_image(name, msg),
                    common.SENSOR_QOS,
                )
        if self.hw.controller.kind == "forward_position":
            self.create_subscription(
                Float64MultiArray, "commands", self._on_forward_command, common.COMMAND_QOS
            )
        else:
            self.create_subscription(
                JointTrajectory, "commands", self._on_trajectory_command, common.COMMAND_QOS
            )
        writer_group = MutuallyExclusiveCallbackGroup()  # the writer is used from one callback at a time
        self.create_service(Trigger, "~/start", self._on_start, callback_group=writer_group)
        self.create_service(Trigger, "~/stop", self._on_stop, callback_group=writer_group)
        self.create_service(Trigger, "~/discard", self._on_discard, callback_group=writer_group)
        self.create_service(SetBool, "~/success", self._on_success, callback_group=writer_group)
        self.create_timer(1.0 / rate_hz, self._tick, callback_group=writer_group)
        self.pub_diag = self.create_publisher(common.DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._diagnose)
        self.get_logger().info(f"recording into {store_path} ({len(self.store)} episodes) at {rate_hz:g} Hz")

    # -- inputs ------------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.assembler.on_joint_state(
                common.to_sec(msg.header.stamp), msg.name, msg.position, msg.velocity
            )
        except ValueError as exc:
            self._bad(str(exc))

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            self.assembler.on_image(camera, common.to_sec(msg.header.stamp), common.image_to_array(msg))
        except ValueError as exc:
            self._bad(f"camera {camera}: {exc}")

    def _on_forward_command(self, msg: Float64MultiArray) -> None:
        self._set_command(np.asarray(msg.data, dtype=np.float32))

    def _on_trajectory_command(self, msg: JointTrajectory) -> None:
        if msg.points:
            q = np.asarray(msg.points[0].positions, dtype=np.float32)
            grip = self.command[-1:] if self.command is not None else np.ones(1, np.float32)
            self._set_command(np.concatenate([q, grip]))

    def _set_command(self, command: np.ndarray) -> None:
        if command.shape != (self.hw.action_dim,):
            self._bad(f"commands: expected {self.hw.action_dim} values, got {command.shape[0]}")
            return
        self.command = command

    def _bad(self, message: str) -> None:
        self.bad_inputs += 1
        self.get_logger().error(message, throttle_duration_sec=1.0)

    # -- recording ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.writer is None:
            return
        obs = self.assembler.assemble(common.now_sec(self))
        # No new observation since the last step (the sim or driver ran behind this timer):
        # recording it again would duplicate a frame, so the tick is skipped.
        if obs is None or self.command is None or obs.stamp <= self.last_stamp:
            self.skipped += 1
            return
        self.last_stamp = obs.stamp
        step = dict(obs.values)
        if self.kin is not None:
            step[keys.EE_POS], step[keys.EE_QUAT] = (
                v.astype(np.float32) for v in self.kin.fk(obs.values[keys.JOINT_POS])
            )
        step[keys.ACTION] = self.command
        step[keys.TIMESTAMP] = np.float64(obs.stamp)
        step[keys.INTERVENTION] = np.bool_(self.source in ("teleop", "intervention"))
        self.writer.append_step(step)

    def _on_start(self, request, response):
        if self.writer is not None:
            response.success, response.message = False, f"already recording episode {len(self.store)}"
            return response
        meta = EpisodeMeta(task=self.task, source=self.source, robot=self.hw.name, operator=self.operator)
        self.writer = self.store.begin_episode(meta)
        self.success = None
        self.skipped = 0
        self.last_stamp = -np.inf
        response.success, response.message = True, f"recording episode {len(self.store)}"
        return response

    def _on_stop(self, request, response):
        if self.writer is None:
            response.success, response.message = False, "not recording"
            return response
        writer, self.writer = self.writer, None
        if writer.num_steps == 0:
            writer.discard()
            response.success = False
            response.message = (
                f"no steps recorded ({self.assembler.why_not or 'no command yet'}); nothing saved"
            )
            return response
        steps = writer.num_steps
        index = writer.end(success=self.success)
        response.success, response.message = True, f"saved episode {index}: {steps} steps"
        return response

    def _on_discard(self, request, response):
        if self.writer is None:
            response.success, response.message = False, "not recording"
            return response
        writer, self.writer = self.writer, None
        steps = writer.num_steps
        writer.discard()
        response.success, response.message = True, f"discarded {steps} steps"
        return response

    def _on_success(self, request, response):
        if self.writer is None:
            response.success, response.message = (
                False,
                "not recording: the flag applies to the episode in progress",
            )
            return response
        self.success = bool(request.data)
        response.success, response.message = True, f"episode {len(self.store)} success={self.success}"
        return response

    def _diagnose(self) -> None:
        level = common.OK if self.bad_inputs == 0 else common.WARN
        values = {
            "recording": self.writer is not None,
            "episodes": len(self.store),
            "steps_in_episode": self.writer.num_steps if self.writer else 0,
            "skipped_ticks": self.skipped,
            "why_not": self.assembler.why_not,
            "bad_inputs": self.bad_inputs,
        }
        self.pub_diag.publish(common.diagnostics(self, level, "recording" if self.writer else "idle", values))

    def close(self) -> None:
        """Ctrl-C while recording keeps what was recorded: the episode is committed, success unknown."""
        if self.writer is not None and self.writer.num_steps:
            self.writer.end(success=self.success)
        elif self.writer is not None:
            self.writer.discard()
        self.writer = None


def main(args=None) -> int:
    return common.run(RecorderNode, threads=2, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
