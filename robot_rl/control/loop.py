"""ControlLoop: the fixed-rate thread that turns chunks into safe commands.

    loop = ControlLoop(hw, read_state=driver.latest, send=driver.command)
    loop.start()                      # its own thread at hw.control_rate_hz, no ROS executor
    loop.submit(Chunk(t0, dt, pos))   # from any thread (policy node, inference client)
    loop.estop(); loop.reset_estop()  # from any thread
    loop.stats()                      # lateness, period error, compute time, missed deadlines
    loop.stop()

Each period (one `tick`):

    read_state() ─► watchdog ─► RUN:  executor.sample(now) ─► SafetyFilter.step ─► send()
                           └──► hold: SafetyFilter.hold (brake) ─────────────────┘

Scheduling, for low jitter without a real-time kernel: the loop thread asks for SCHED_FIFO
at loop.realtime_priority (default 50, the ros2_control convention; robot_rl/control/realtime.py
says what it needs and what happens without it: a WARNING and normal scheduling) and, if
loop.cpus is set, pins itself there. It sleeps until `spin_margin` before the deadline, then
spins on the monotonic clock until the deadline. The margin adapts to the sleep overshoot this
machine shows (the 99th percentile of the last 250 wake-ups, times 1.2, plus 50 us, within
[loop.spin_margin_s, loop.max_spin_margin_s]), so the thread spins as little as it can. At
normal priority, an overshoot beyond the largest margin allowed means the CPU is
oversubscribed and spinning only gets the thread demoted: the loop then just sleeps (margin 0)
until the overshoot falls again; a SCHED_FIFO thread is never demoted and keeps the largest
margin. Measured (bench/control_loop.py, one busy process): SCHED_FIFO took the period error
p99 from 8320 us to 131 us with the machine at load 8; rclpy timers give ms there.

    deadline k-1          deadline k            deadline k+1
        |<---- period ----->|<---- period ----->|
        |  tick | sleep  |spin| tick | sleep |spin|
                         ^ deadline - margin

A tick that ends after the next deadline makes the loop skip the slots it missed (it never
runs a burst of late ticks) and counts them in `missed`. Lateness = start - deadline. Each
tick samples the chunk at its own start time and tells the filter how long it has been since
the last sample, so that a late tick or a missed slot does not read to the filter as a target
moving twice as fast: the filter then catches up along its limits, and every command sent is
still within them one period after the last. (bench/ros_semantics.py --missed-ticks 0.3,
seeds 1-100, a push policy: 75% success against 92% in plain sim without this, 86% and 89%
against 89% and 91% in two runs with it.)

Python note: a thread waking from sleep needs the GIL, and the GIL knows no priorities: a
normal-priority thread that holds it (an rclpy executor callback, a policy thread) and is
preempted by another process delays the loop until it runs again. Keep other threads' Python
short, and let the process owner call robot_rl.control.realtime.tune_process (switch interval
0.5 ms, gc.freeze, mlockall) after start-up, as ros_nodes/controller_node.py and
bench/control_loop.py do; the loop itself changes only its own thread's scheduling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from robot_rl.config.hardware import HardwareConfig
from robot_rl.control.config import ControlConfig
from robot_rl.control.executor import Chunk, ChunkExecutor, Submit
from robot_rl.control.realtime import ThreadStatus, tune_thread
from robot_rl.control.safety import FilterResult, ForwardKinematics, Reason, SafetyFilter
from robot_rl.control.watchdog import Mode, Watchdog

_ADAPT_EVERY = 250
_P99_INDEX = int(np.ceil(0.99 * (_ADAPT_EVERY - 1)))


class JointState(NamedTuple):
    position: np.ndarray  # (J + 1,) arm joints + gripper, measured
    stamp: float  # when it was measured, on the loop's monotonic clock


@dataclass(frozen=True)
class LoopStats:
    ticks: int
    missed: int  # deadlines skipped because a tick (or a wake-up) ran past the next one
    lateness_p50_s: float  # tick start - deadline
    lateness_p99_s: float
    lateness_max_s: float
    period_error_p50_s: float  # |start_k - start_k-1 - period|
    period_error_p99_s: float
    period_error_max_s: float
    compute_p99_s: float  # read_state + filter + send
    compute_max_s: float
    spin_margin_s: float
    realtime: bool  # SCHED_FIFO granted


class ControlLoop:
    def __init__(
        self,
        hw: HardwareConfig,
        read_state: Callable[[], JointState | None],
        send: Callable[[np.ndarray], None],
        config: ControlConfig | None = None,
        fk: ForwardKinematics | None = None,
        use_workspace: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.hw = hw
        self.config = config or ControlConfig()
        self.period = hw.control_period_s
        self.read_state = read_state
        self.send = send
        self.clock = clock
        self.filter = SafetyFilter(hw, fk=fk, use_workspace=use_workspace)
        self.executor = ChunkExecutor(hw.action_dim, self.config.executor)
        self.watchdog = Watchdog(hw.safety)
        self.last_result: FilterResult | None = None
        self.reason_counts: dict[Reason, int] = {}
        self.error: BaseException | None = None  # last exception raised by read_state / send
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        cap = self.config.loop.stats_capacity
        self._starts = np.zeros(cap)
        self._lateness = np.zeros(cap)
        self._compute = np.zeros(cap)
        self._ticks = 0
        self._missed = 0
        self._last_tick: float | None = None  # when `tick` last sampled the chunk
        self._margin = self.config.loop.spin_margin_s
        self._oversleep = np.zeros(_ADAPT_EVERY)
        self.realtime = False
        self.thread_status: ThreadStatus | None = None  # what the OS granted the loop thread

    # -- from any thread --------------------------------------------------------------------

    def submit(self, chunk: Chunk) -> Submit:
        """Hand over a chunk (thread-safe). Raises ValueError for a malformed chunk."""
        with self._lock:
            now = self.clock()
            result = self.executor.submit(chunk, now)
            if result is Submit.ACCEPTED:
                self.watchdog.chunk_received(now)
        return result

    def estop(self, reason: str = "e-stop") -> None:
        self.watchdog.estop(reason)

    def reset_estop(self) -> None:
        self.watchdog.reset_estop()

    @property
    def mode(self) -> Mode:
        return self.watchdog.mode

    # -- one period -------------------------------------------------------------------------

    def tick(self, now: float) -> FilterResult | None:
        """Read, decide, filter, send. Returns what was sent (None: nothing known yet).
        Tests call this directly with their own clock; the thread calls it on deadlines."""
        state = self.read_state()
        stamp = None if state is None else state.stamp
        last, self._last_tick = self._last_tick, now
        # Since the last sample: one period on time, more after a missed slot (bounded, so that a
        # stall or a clock jump cannot make a jump in the targets look slow).
        elapsed = self.period if last is None else min(max(now - last, 0.5 * self.period), 10 * self.period)
        with self._lock:
            mode = self.watchdog.check(now, stamp)
            fresh = state is not None and mode is not Mode.HOLD_STALE_STATE
            if not self.filter.ready:
                if not fresh:
                    return None  # never command an arm whose position we do not know
                self.filter.reset(state.position)
                self.executor.hold(self.filter.command)
            measured = state.position if fresh else None
            if mode.holding:
                result = self.filter.hold(measured)
                self.executor.hold(result.command)
            else:
                result = self.filter.step(self.executor.sample(now), measured, target_dt=elapsed)
        self.send(result.command)
        self.last_result = result
        if result.reasons:
            self.reason_counts[result.reasons] = self.reason_counts.get(result.reasons, 0) + 1
        return result

    # -- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("control loop already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="robot_rl-control", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """End the thread, waiting up to `timeout` s. False if it still runs: then it may still
        call `send`, and whatever `send` publishes on must not be torn down."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        return True

    def __enter__(self) -> ControlLoop:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        cfg = self.config.loop
        self.thread_status = tune_thread(cfg.realtime_priority, cfg.cpus)  # this thread only
        self.realtime = self.thread_status.fifo_priority > 0
        clock, period = self.clock, self.period
        cap = len(self._starts)
        deadline = clock() + period
        while not self._stop.is_set():
            wake_at = deadline - self._margin
            delay = wake_at - clock()
            if delay > 0:
                time.sleep(delay)
            self._oversleep[self._ticks % _ADAPT_EVERY] = clock() - wake_at
            while clock() < deadline:
                pass
            start = clock()
            try:
                self.tick(start)
            except Exception as exc:  # a failing driver callback must not kill the loop silently
                self.error = exc
                self.watchdog.estop(f"control loop: {type(exc).__name__}: {exc}")
            end = clock()
            i = self._ticks % cap
            self._starts[i] = start
            self._lateness[i] = start - deadline
            self._compute[i] = end - start
            self._ticks += 1
            if self.config.loop.adaptive_spin and self._ticks % _ADAPT_EVERY == 0:
                self._adapt_margin()
            deadline += period
            if end > deadline:
                skipped = int((end - deadline) // period) + 1
                self._missed += skipped
                deadline += skipped * period

    def _adapt_margin(self) -> None:
        cfg = self.config.loop
        # The 99th percentile by partition: np.quantile's first call imports numpy.ma, which
        # took milliseconds (with the GIL) inside the loop thread at tick 250.
        p99 = float(np.partition(self._oversleep, _P99_INDEX)[_P99_INDEX])
        wanted = 1.2 * p99 + 50e-6
        if wanted > cfg.max_spin_margin_s and not self.realtime:
            # Sleeps overshoot by more than we may spin: the CPU is oversubscribed, and a thread
            # that spins there is demoted by the scheduler. Sleep only until it recovers.
            # (A SCHED_FIFO thread is never demoted: it keeps the largest margin allowed.)
            self._margin = 0.0
        else:
            self._margin = min(max(wanted, cfg.spin_margin_s), cfg.max_spin_margin_s)

    def diagnostics(self) -> dict[str, str]:
        """Key/value status for /diagnostics (the controller node publishes it as is)."""
        last = self.last_result
        out = {
            "mode": self.watchdog.mode.value,
            "estop_reason": self.watchdog.estop_reason,
            "last_reasons": "" if last is None or not last.reasons else str(last.reasons.name),
            "error": "" if self.error is None else repr(self.error),
        }
        out |= {f"chunks_{result.value}": str(n) for result, n in self.executor.counts.items()}
        if self._ticks >= 2:
            s = self.stats()
            out |= {
                "ticks": str(s.ticks),
                "missed_deadlines": str(s.missed),
                "lateness_p99_us": f"{s.lateness_p99_s * 1e6:.1f}",
                "period_error_p99_us": f"{s.period_error_p99_s * 1e6:.1f}",
                "compute_p99_us": f"{s.compute_p99_s * 1e6:.1f}",
            }
        return out

    @property
    def ticks(self) -> int:
        """Periods the thread has run so far."""
        return self._ticks

    def stats(self) -> LoopStats:
        n = min(self._ticks, len(self._starts))
        if n < 2:
            raise RuntimeError("control loop has not run long enough for statistics")
        order = np.arange(self._ticks - n, self._ticks) % len(self._starts)
        starts, late, comp = self._starts[order], self._lateness[order], self._compute[order]
        period_err = np.abs(np.diff(starts) - self.period)
        q = lambda x, p: float(np.quantile(x, p))
        return LoopStats(
            ticks=self._ticks,
            missed=self._missed,
            lateness_p50_s=q(late, 0.5),
            lateness_p99_s=q(late, 0.99),
            lateness_max_s=float(late.max()),
            period_error_p50_s=q(period_err, 0.5),
            period_error_p99_s=q(period_err, 0.99),
            period_error_max_s=float(period_err.max()),
            compute_p99_s=q(comp, 0.99),
            compute_max_s=float(comp.max()),
            spin_margin_s=self._margin,
            realtime=self.realtime,
        )
