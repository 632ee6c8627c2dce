"""controller_node: chunks in, one safety-filtered command per control period out.

    subscribes  joint_states (JointState, sensor QoS)            measured arm (+ gripper)
                action_chunk, teleop_chunk (JointTrajectory, reliable)   header.stamp = time of
                                                                 the first point; equally spaced
    publishes   commands: std_msgs/Float64MultiArray (ros2_control forward position controller)
                or trajectory_msgs/JointTrajectory (joint trajectory controller), as the
                hardware config's controller.kind says; the gripper's own topic when it has one
                /diagnostics: mode, missed deadlines, what the filter changed, and latency
                from an observation's stamp (= its chunk's stamp) to the first command
                computed after that chunk was accepted (p50 / p99 over the last 1000 chunks);
                all of them since the last activation
    services    estop (std_srvs/SetBool): true latches the e-stop, false resets it

The work is robot_rl.control.ControlLoop's, in its own fixed-rate thread (not a ROS timer):
each period the watchdog picks RUN or a hold, the chunk executor gives the target at now,
the safety filter shapes it, and the loop calls back here to publish the command:

    chunks ──► ControlLoop.submit ──► executor.sample(now) ──► SafetyFilter.step ──► commands
                          Watchdog.check(now, joint-state stamp) ──► hold? filter.hold

Policy and teleop chunks meet in one executor: a chunk stamped earlier than the newest one
is stale, so a person's chunks (stamped now) take over from a policy's (stamped when their
observation was taken) while the person is active.

Scheduling (parameters realtime_priority, default 50, and loop_cpu, default -1 = any core): the
loop thread asks for SCHED_FIFO like ros2_control's controller_manager; without CAP_SYS_NICE or
rtprio in limits.conf it logs one WARNING and runs at normal priority (robot_rl/control/realtime.py).
/diagnostics reports sched_fifo_priority (0: not granted). `main` runs the whole process at
nice -10 (rclpy's threads share the GIL with the loop), switch interval 0.5 ms.

A lifecycle node: activate starts a fresh control loop (its safety filter synced to the
first position measured after activation: nothing is commanded before one arrives),
deactivate stops commanding; deactivate, move the arm (sim reset), activate is how an
evaluation starts a new episode.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque

import numpy as np
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_rl.config.hardware import load_hardware_config
from robot_rl.control import realtime
from robot_rl.control.config import ControlConfig, ExecutorConfig, LoopConfig
from robot_rl.control.executor import Submit
from robot_rl.control.loop import ControlLoop
from robot_rl.control.loop import JointState as LoopJointState
from robot_rl.control.watchdog import Mode
from ros_nodes import common

# How long close() waits for the loop thread: it checks for a stop once a period (2 ms).
LOOP_STOP_TIMEOUT_S = 2.0


class ControllerNode(LifecycleNode):
    def __init__(self):
        super().__init__("controller")
        self.fatal: Exception | None = None  # raised by common.run: the loop thread would not stop
        self.declare_parameter("hardware_config", "sim_ur5e")
        # Defaults are robot_rl.control's own (robot_rl/control/config.py), never copied here.
        executor, loop = ExecutorConfig(), LoopConfig()
        self.declare_parameter("blend", executor.blend)
        self.declare_parameter("blend_window_s", executor.blend_window_s)
        self.declare_parameter("spin_margin_s", loop.spin_margin_s)
        self.declare_parameter("max_spin_margin_s", loop.max_spin_margin_s)
        # SCHED_FIFO for the loop thread (0: normal scheduling) and a core to pin it to (-1: any).
        self.declare_parameter("realtime_priority", loop.realtime_priority)
        self.declare_parameter("loop_cpu", -1)
        # The watchdog's "no fresh chunk for this long -> hold"; 0: the hardware config's
        # safety.chunk_timeout_s. A policy asked for a chunk every Ta steps needs more than
        # Ta x its step plus its inference latency, or the arm brakes between chunks.
        self.declare_parameter("chunk_timeout_s", 0.0)
        self.declare_parameter("autostart", True)
        self.loop: ControlLoop | None = None
        self._state: LoopJointState | None = None  # replaced whole by the subscriber: no lock needed
        self._active_since = float("inf")  # joint states stamped earlier are not the arm's position now
        if self.get_parameter("autostart").value:
            common.autostart(self)

    @common.logged_transition
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.hw = load_hardware_config(p("hardware_config"))
        if p("chunk_timeout_s") < 0:
            raise ValueError(f"parameter chunk_timeout_s must be >= 0, got {p('chunk_timeout_s')}")
        if p("chunk_timeout_s") > 0:
            safety = dataclasses.replace(self.hw.safety, chunk_timeout_s=float(p("chunk_timeout_s")))
            self.hw = dataclasses.replace(self.hw, safety=safety)
        self.names = [*self.hw.joint_names, self.hw.gripper.name]
        config = ControlConfig(
            executor=ExecutorConfig(blend=p("blend"), blend_window_s=p("blend_window_s")),
            loop=LoopConfig(
                spin_margin_s=p("spin_margin_s"),
                max_spin_margin_s=p("max_spin_margin_s"),
                realtime_priority=p("realtime_priority"),
                cpus=() if p("loop_cpu") < 0 else (p("loop_cpu"),),
            ),
        )
        self.control_config = config
        self.bad_chunks = 0
        # Observation stamp (= chunk stamp) -> first command that reflects it, last 1000 chunks.
        self._pending_stamps: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=1000)
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
        self.create_timer(1.0, self._diagnose)
        return TransitionCallbackReturn.SUCCESS

    @common.logged_transition
    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """A fresh loop: its safety filter starts from the arm's measured position, wherever the arm
        went while the controller was inactive (moved by hand, or a sim reset)."""
        result = super().on_activate(state)
        # The loop's clock is the node's (ROS time): chunk and joint-state stamps are on it. Without
        # sim time, ROS time is the system clock: read it directly (0.5 us where the node's clock
        # costs ~13 us and a Python object per call, in a loop that spins on it).
        sim_time = self.get_parameter("use_sim_time").value
        clock = (lambda: common.now_sec(self)) if sim_time else time.time
        loop = ControlLoop(self.hw, self._read_state, self._publish, self.control_config, clock=clock)
        # The filter starts from a joint state measured after this moment: one from before (the arm
        # before a sim reset, before it was moved by hand) would have it command the old position.
        self._active_since = clock()
        self._pending_stamps.clear()
        # Start-up objects out of the GC's reach: no full collection walks rclpy's heap mid-tick.
        realtime.tune_process(switch_interval_s=None, freeze_gc=True)
        self._realtime_reported = False
        self._latencies.clear()  # like the loop's own statistics, the latencies start afresh
        loop.start()  # its own thread, paced on its own, not by the ROS executor
        self.loop = loop
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return super().on_deactivate(state)

    def close(self) -> bool:
        """Stop the loop thread. False if it would not stop: it may still publish, so the node
        must not be destroyed under it (common.run then leaves it, and the process fails)."""
        loop, self.loop = self.loop, None
        if loop is None or loop.stop(timeout=LOOP_STOP_TIMEOUT_S):
            return True
        self.fatal = RuntimeError(f"the control loop thread did not stop within {LOOP_STOP_TIMEOUT_S:g} s")
        self.get_logger().error(str(self.fatal))
        return False

    # -- inputs ------------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.hw.joint_names):
            self.get_logger().error(
                f"joint_states lacks a joint of {self.hw.name}", throttle_duration_sec=1.0
            )
            return
        arm = [msg.position[index[n]] for n in self.hw.joint_names]
        if self.hw.gripper.name in index:
            grip = msg.position[index[self.hw.gripper.name]]
        else:  # the gripper's own driver may not report in this JointState
            grip = self._state.position[-1] if self._state is not None else 1.0
        self._state = LoopJointState(
            np.array([*arm, grip], dtype=np.float64), common.to_sec(msg.header.stamp)
        )

    def _read_state(self) -> LoopJointState | None:
        state = self._state
        return state if state is not None and state.stamp >= self._active_since else None

    def _on_chunk(self, topic: str, msg: JointTrajectory) -> None:
        loop = self.loop
        if loop is None:
            return  # inactive: chunks are not executed
        try:
            if loop.submit(common.chunk_from_msg(msg, self.names)) is Submit.ACCEPTED:
                self._pending_stamps.append(common.to_sec(msg.header.stamp))
        except ValueError as exc:
            self.bad_chunks += 1
            self.get_logger().error(f"{topic}: {exc}", throttle_duration_sec=1.0)

    def _on_estop(self, request, response):
        if self.loop is None:
            response.success, response.message = False, "controller inactive: it sends no commands"
            return response
        if request.data:
            self.loop.estop("estop service")
            response.message = "e-stop latched: the arm brakes to a hold"
        else:
            self.loop.reset_estop()
            response.message = "e-stop reset"
        response.success = True
        return response

    # -- output (called by the control loop's thread) ----------------------------------------------
    def _publish(self, command: np.ndarray) -> None:
        if self._pending_stamps:  # the first command computed since these chunks were accepted
            now = common.now_sec(self)
            while self._pending_stamps:
                self._latencies.append(now - self._pending_stamps.popleft())
        n = self.hw.num_joints
        if self.hw.controller.kind == "forward_position":
            data = command if self.pub_gripper is None else command[:n]
            self.pub_cmd.publish(Float64MultiArray(data=data.tolist()))
        else:
            msg = JointTrajectory(joint_names=list(self.hw.joint_names))
            point = JointTrajectoryPoint(positions=command[:n].tolist())
            point.time_from_start.nanosec = int(2 * self.hw.control_period_s * 1e9)
            msg.points.append(point)
            self.pub_cmd.publish(msg)
        if self.pub_gripper is not None:
            self.pub_gripper.publish(Float64MultiArray(data=[float(command[n])]))

    def _diagnose(self) -> None:
        if self.loop is None:
            self.pub_diag.publish(common.diagnostics(self, common.OK, "inactive", {"mode": "inactive"}))
            return
        mode = self.loop.mode
        level = common.OK if mode in (Mode.RUN, Mode.HOLD_NO_CHUNK) else common.ERROR
        values: dict[str, object] = {"mode": mode.value, "bad_chunks": self.bad_chunks}
        granted = self.loop.thread_status
        if granted is not None:
            values["sched_fifo_priority"] = granted.fifo_priority
            if granted.problems and not self._realtime_reported:
                self._realtime_reported = True
                self.get_logger().warning(
                    "control loop runs without its scheduling settings (sleep-then-spin at normal "
                    f"priority): {'; '.join(granted.problems)}"
                )
        values.update({f"chunks_{k.value}": v for k, v in self.loop.executor.counts.items()})
        try:
            stats = self.loop.stats()
            values.update(
                ticks=stats.ticks,
                missed_deadlines=stats.missed,
                lateness_p99_ms=f"{stats.lateness_p99_s * 1e3:.3f}",
                compute_p99_ms=f"{stats.compute_p99_s * 1e3:.3f}",
            )
        except RuntimeError:
            values.update(ticks=0, missed_deadlines=0)
        if self._latencies:
            lat = np.array(self._latencies)
            values.update(
                obs_to_command_p50_ms=f"{np.quantile(lat, 0.5) * 1e3:.2f}",
                obs_to_command_p99_ms=f"{np.quantile(lat, 0.99) * 1e3:.2f}",
                obs_to_command_samples=len(lat),
            )
        if self.loop.last_result is not None and self.loop.last_result.reasons:
            values["last_filter_reasons"] = str(self.loop.last_result.reasons)
        if self.loop.watchdog.estopped:
            values["estop_reason"] = self.loop.watchdog.estop_reason
        if self.loop.error is not None:
            level, values["loop_error"] = common.ERROR, repr(self.loop.error)
        self.pub_diag.publish(common.diagnostics(self, level, mode.value, values))


def main(args=None) -> int:
    # The control loop's thread must get the GIL back quickly from the executor's threads, and
    # those threads (nice -10, inherited by every thread started from here) are preempted less
    # often while they hold it. bench/control_loop.py --process-nice -10 / 0, 12 s of this node
    # at load average 9-11.5, three pairs: period error p99 3.2-5.4 ms against 6.8-12.7 ms,
    # missed slots 400-667 against 1054-2561.
    realtime.tune_process(switch_interval_s=0.0005, freeze_gc=False, nice=-10)
    return common.run(ControllerNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
