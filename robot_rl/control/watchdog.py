"""Watchdog: decides each control period whether the arm may follow chunks or must hold.

    time since the last accepted chunk  > safety.chunk_timeout_s      -> HOLD_NO_CHUNK
    age of the newest joint state       > safety.joint_state_timeout_s -> HOLD_STALE_STATE
    e-stop pressed (latches)                                           -> ESTOP until reset()

    chunks    ─■────■────■────■─────────────────────────────────■────■──
    mode      RUN ─────────────────┬ HOLD_NO_CHUNK ─────────────┬ RUN ───
                                   └ last chunk + timeout       └ fresh chunk
    command   follows chunks ──────┴ brakes within the jerk,    ┴ blends from the hold
                                     acceleration and velocity limits to
                                     zero velocity within safety.stopping_time_s

A hold is carried out by the safety filter's braking law (never a jump). The e-stop is a
controlled stop (IEC 60204-1 category 2: brake, then hold position) and stays latched
until an explicit `reset_estop()`; fresh chunks do not clear it. Hardware e-stops that cut
power are the robot's business, not this code's. Times are seconds on the loop's
monotonic clock; joint-state stamps must be on the same clock.
"""

from __future__ import annotations

import enum
import threading

from robot_rl.config.hardware import SafetyConfig


class Mode(enum.Enum):
    RUN = "run"
    HOLD_NO_CHUNK = "hold_no_chunk"  # no chunk yet, or none within chunk_timeout_s
    HOLD_STALE_STATE = "hold_stale_state"  # joint states missing or older than joint_state_timeout_s
    ESTOP = "estop"  # latched until reset_estop()

    @property
    def holding(self) -> bool:
        return self is not Mode.RUN


class Watchdog:
    def __init__(self, safety: SafetyConfig):
        self.chunk_timeout_s = safety.chunk_timeout_s
        self.joint_state_timeout_s = safety.joint_state_timeout_s
        self._last_chunk = None
        self._estop = threading.Event()
        self.estop_reason = ""
        self.mode = Mode.HOLD_NO_CHUNK
        self.transitions = 0  # times the mode changed, for diagnostics

    def chunk_received(self, now: float) -> None:
        self._last_chunk = now

    def estop(self, reason: str = "e-stop") -> None:
        """Latch the e-stop (thread-safe; any thread may call it)."""
        if not self._estop.is_set():
            self.estop_reason = reason
        self._estop.set()

    def reset_estop(self) -> None:
        self.estop_reason = ""
        self._estop.clear()

    @property
    def estopped(self) -> bool:
        return self._estop.is_set()

    def check(self, now: float, joint_state_stamp: float | None) -> Mode:
        if self._estop.is_set():
            mode = Mode.ESTOP
        elif joint_state_stamp is None or now - joint_state_stamp > self.joint_state_timeout_s:
            mode = Mode.HOLD_STALE_STATE
        elif self._last_chunk is None or now - self._last_chunk > self.chunk_timeout_s:
            mode = Mode.HOLD_NO_CHUNK
        else:
            mode = Mode.RUN
        if mode is not self.mode:
            self.transitions += 1
            self.mode = mode
        return mode
