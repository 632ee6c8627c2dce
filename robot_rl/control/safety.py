"""The safety filter: every command to the arm passes here, whoever produced it.

    filt = SafetyFilter(hw)                 # limits from the hardware config, FK from its MJCF
    filt.reset(measured)                    # (J + 1,) arm joints + gripper, at rest
    sent, why = filt.step(target, measured) # every control period; target None = hold
    if why: log(why)                        # Reason flags: what the filter changed and why

Like lerobot's `send_action`, `step` returns the command actually sent. Policy chunks,
teleop and intervention commands all go through the same filter. Per step, in order:

    target ──► malformed? (wrong length, NaN, inf) ──────────────────► hold (brake)
       │
       ├─► clamp to joint limits minus position_margin              POSITION_LIMIT
       ├─► clamp to measured ± max_step_from_measured               MEASURED_STEP
       ├─► tool centre point (FK) outside the workspace box?
       │     keep the last target that was inside                   WORKSPACE
       ├─► jerk / acceleration / velocity shaping                   JERK / ACCELERATION / VELOCITY_LIMIT
       └─► braking envelope: can the joint still stop inside the
             limits? otherwise move less, or brake                  BRAKING

Guarantee (tests/control check it over >= 100,000 random chunks): every command is inside
the margined position limits and the finite-difference velocity, acceleration and jerk of
consecutive commands are within the hardware limits, whatever the targets were. A hold
decelerates along the same jerk-limited braking law (robot_rl/control/jerk_limits.py) and
reaches zero velocity within `worst_stopping_time`, which the constructor checks against
safety.stopping_time_s.

The workspace box is enforced on targets: a target whose tool centre point leaves the box is
replaced by the last one inside. The commanded path between two inside targets is not
checked point by point (the box is not convex in joint space); the arm-side margins of the
box should allow for that. The gripper command is clamped to [0, 1] and rate limited.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from robot_rl.config.hardware import HardwareConfig
from robot_rl.control import jerk_limits as jl

# q (J,) -> tool centre point position (3,) in the base frame.
ForwardKinematics = Callable[[np.ndarray], np.ndarray]

# Fractions of the move toward the shaped target tried before falling back on braking.
_CANDIDATES = np.array([1.0, 0.5, 0.25])[:, None]


class Reason(enum.Flag):
    """Why the filter changed a command (empty: sent as asked)."""

    WRONG_LENGTH = enum.auto()  # target had the wrong number of entries -> hold
    NON_FINITE = enum.auto()  # NaN or inf in the target -> hold
    BAD_MEASUREMENT = enum.auto()  # measured position malformed -> hold
    HOLD = enum.auto()  # the caller asked for a hold (watchdog, e-stop)
    POSITION_LIMIT = enum.auto()
    MEASURED_STEP = enum.auto()  # target too far from the measured position
    MEASURED_DEVIATION = enum.auto()  # the command itself drifted too far from measured -> brake
    WORKSPACE = enum.auto()
    VELOCITY_LIMIT = enum.auto()
    ACCELERATION_LIMIT = enum.auto()
    JERK_LIMIT = enum.auto()
    BRAKING = enum.auto()  # the braking envelope near a position limit shortened the move
    OUTSIDE_LIMITS = enum.auto()  # started outside the margined limits; allowed back in only
    GRIPPER = enum.auto()  # gripper command clamped to [0, 1] or rate limited


# Inside a step the reasons are plain int bits: `|` on an enum.Flag costs microseconds (a Python
# method and a member lookup), on an int nanoseconds. One Reason is built per step, cached.
_WRONG_LENGTH = Reason.WRONG_LENGTH.value
_NON_FINITE = Reason.NON_FINITE.value
_BAD_MEASUREMENT = Reason.BAD_MEASUREMENT.value
_HOLD = Reason.HOLD.value
_POSITION_LIMIT = Reason.POSITION_LIMIT.value
_MEASURED_STEP = Reason.MEASURED_STEP.value
_MEASURED_DEVIATION = Reason.MEASURED_DEVIATION.value
_WORKSPACE = Reason.WORKSPACE.value
_VELOCITY_LIMIT = Reason.VELOCITY_LIMIT.value
_ACCELERATION_LIMIT = Reason.ACCELERATION_LIMIT.value
_JERK_LIMIT = Reason.JERK_LIMIT.value
_BRAKING = Reason.BRAKING.value
_OUTSIDE_LIMITS = Reason.OUTSIDE_LIMITS.value
_GRIPPER = Reason.GRIPPER.value


@functools.cache
def _as_reason(bits: int) -> Reason:
    return Reason(bits)


class FilterResult(NamedTuple):
    command: np.ndarray  # (J + 1,) what is sent: arm joint positions then gripper
    reasons: Reason


class SafetyFilter:
    def __init__(self, hw: HardwareConfig, fk: ForwardKinematics | None = None, use_workspace: bool = True):
        """`fk` defaults to ArmKinematics(hw) (the arm's MJCF); pass use_workspace=False to skip
        the workspace box (no FK at all), e.g. for an arm without a model."""
        self.hw = hw
        self.dt = hw.control_period_s
        self.num_joints = hw.num_joints
        self.vmax = hw.velocity_limit.copy()
        self.amax = hw.acceleration_limit.copy()
        self.jmax = hw.jerk_limit.copy()
        margin = hw.safety.position_margin
        self.lower = hw.position_lower + margin
        self.upper = hw.position_upper - margin
        self.max_step = hw.safety.max_step_from_measured
        self.box_min = np.array(hw.safety.workspace_min, dtype=np.float64)
        self.box_max = np.array(hw.safety.workspace_max, dtype=np.float64)
        self.gripper_step = hw.gripper.velocity_limit * self.dt
        stop = jl.worst_stopping_time(self.vmax, self.amax, self.jmax)
        worst = int(np.argmax(stop))
        if stop[worst] > hw.safety.stopping_time_s:
            raise ValueError(
                f"{hw.source or hw.name}: joint {hw.joint_names[worst]} needs {stop[worst]:.3f} s to stop from "
                f"full speed with its acceleration and jerk limits, more than "
                f"safety.stopping_time_s = {hw.safety.stopping_time_s}"
            )
        if use_workspace and fk is None:
            from robot_rl.control.kinematics import ArmKinematics

            kin = ArmKinematics(hw)
            fk = lambda q: kin.fk(q)[0]
        self.fk = fk if use_workspace else None
        rows = 2 * len(_CANDIDATES)
        self._amax2 = np.broadcast_to(self.amax, (rows, self.num_joints))
        self._jmax2 = np.broadcast_to(self.jmax, (rows, self.num_joints))
        self._cols = np.arange(self.num_joints)
        self._zeros = np.zeros(self.num_joints)
        self._zeros.flags.writeable = False
        # The longest stopping distance any reachable state has (stop_distance grows with |v|, a).
        self._max_stop = jl.stop_distance(self.vmax, self.amax, self.amax, self.jmax, self.dt)
        self._ready = False

    # -- state ---------------------------------------------------------------------------

    def reset(self, position: np.ndarray) -> None:
        """Start from a measured position (J + 1,), at rest. A joint outside the margined limits
        widens its own limit to where it is, so that the filter never jumps it back."""
        position = np.asarray(position, dtype=np.float64)
        if position.shape != (self.num_joints + 1,) or not np.isfinite(position).all():
            raise ValueError(
                f"reset needs a finite position of shape ({self.num_joints + 1},) (arm joints + gripper), "
                f"got shape {position.shape}"
            )
        self.p = position[: self.num_joints].copy()
        self.v = np.zeros(self.num_joints)
        self.a = np.zeros(self.num_joints)
        self.gripper = float(np.clip(position[-1], 0.0, 1.0))
        self.lo = np.minimum(self.lower, self.p)
        self.hi = np.maximum(self.upper, self.p)
        self._far_lo, self._far_hi = self.lo + self._max_stop, self.hi - self._max_stop
        self._outside = bool((self.p < self.lower).any() or (self.p > self.upper).any())
        self._last_target = None
        self._last_vref = self._zeros
        self._last_safe = self.p.copy()
        self._ready = True

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def command(self) -> np.ndarray:
        """The last command sent (J + 1,)."""
        return self._command()

    def _command(self) -> np.ndarray:
        out = np.empty(self.num_joints + 1)  # a new array each time: the caller may keep it
        out[: self.num_joints] = self.p
        out[self.num_joints] = self.gripper
        return out

    @property
    def reference_velocity(self) -> np.ndarray:
        """The feed-forward velocity the filter tracked at the last accepted target (J,):
        (target - previous target) / target_dt within the velocity limits; zero on the first
        target after a reset or a hold."""
        return self._last_vref.copy()

    @property
    def stopped(self) -> bool:
        return not self.v.any() and not self.a.any()

    # -- one control period ---------------------------------------------------------------

    def step(
        self, target: np.ndarray | None, measured: np.ndarray | None = None, target_dt: float | None = None
    ) -> FilterResult:
        """The command for the next period. `target` (J + 1,) or None to hold (brake to rest);
        `measured` (J + 1,) or (J,) enables the distance-from-measured rule; `target_dt` is the
        time since the previous target was sampled (default one period; ControlLoop passes more
        after a missed slot). It only sets the reference velocity the filter tracks: the command
        still moves one period, within the limits, and catches up with the target after."""
        if not self._ready:
            raise RuntimeError("SafetyFilter.step before reset(measured position)")
        reasons = 0
        n = self.num_joints
        arm = None
        if target is None:
            reasons |= _HOLD
        else:
            target = np.asarray(target, dtype=np.float64)
            if target.shape != (n + 1,):
                reasons |= _WRONG_LENGTH
            elif not np.isfinite(target).all():
                reasons |= _NON_FINITE
            else:
                arm = target[:n]
        meas = None
        if measured is not None:
            measured = np.asarray(measured, dtype=np.float64)
            if measured.shape not in ((n,), (n + 1,)) or not np.isfinite(measured).all():
                reasons |= _BAD_MEASUREMENT
                arm = None
            else:
                meas = measured[:n]
                if (np.abs(self.p - meas) > self.max_step).any():
                    reasons |= _MEASURED_DEVIATION
                    arm = None
        if self._outside:
            reasons |= _OUTSIDE_LIMITS
        if arm is None:
            a_next = self._brake()
            self._last_target = None
        else:
            # The reference velocity comes from the targets as asked, before any clamping
            # (clamping to the measured position would feed the arm's lag back into it).
            # (Unknown on the first target after a reset or a hold: taken as zero.)
            # Per target_dt: a target sampled two periods after the last moved twice as far.
            if self._last_target is None:
                v_ref = a_ref = self._zeros
            else:
                tdt = self.dt if target_dt is None else target_dt
                if not tdt > 0:
                    raise ValueError(f"target_dt must be a positive number of seconds, got {target_dt}")
                v_ref = np.minimum(np.maximum((arm - self._last_target) / tdt, -self.vmax), self.vmax)
                a_ref = np.minimum(np.maximum((v_ref - self._last_vref) / tdt, -self.amax), self.amax)
            self._last_target, self._last_vref = arm, v_ref
            arm, why = self._shape_target(arm, meas)
            if why:
                reasons |= why
            a_next, why = self._track(arm, v_ref, a_ref)
            if why:
                reasons |= why
        self.p, self.v, self.a = jl.step(self.p, self.v, a_next, self.dt)
        if self._outside:
            self._outside = bool((self.p < self.lower).any() or (self.p > self.upper).any())
        if arm is not None:
            reasons |= self._step_gripper(float(target[n]))
        return FilterResult(self._command(), _as_reason(reasons))

    def hold(self, measured: np.ndarray | None = None) -> FilterResult:
        return self.step(None, measured)

    # -- pieces ------------------------------------------------------------------------------

    def _shape_target(self, arm: np.ndarray, meas: np.ndarray | None) -> tuple[np.ndarray, int]:
        reasons = 0
        clamped = np.minimum(np.maximum(arm, self.lo), self.hi)
        if (clamped != arm).any():
            reasons |= _POSITION_LIMIT
        if meas is not None:
            near = np.minimum(np.maximum(clamped, meas - self.max_step), meas + self.max_step)
            if (near != clamped).any():
                reasons |= _MEASURED_STEP
                clamped = np.minimum(np.maximum(near, self.lo), self.hi)
        if self.fk is not None:
            tcp = np.asarray(self.fk(clamped))
            if (tcp >= self.box_min).all() and (tcp <= self.box_max).all():
                self._last_safe = clamped
            else:
                reasons |= _WORKSPACE
                clamped = self._last_safe
        return clamped, reasons

    def _brake(self) -> np.ndarray:
        lo, hi = jl.accel_bounds(self.v, self.a, self.vmax, self.amax, self.jmax, self.dt)
        return np.minimum(np.maximum(jl.brake_accel(self.v, self.a, self.amax, self.jmax, self.dt), lo), hi)

    def _track(self, arm: np.ndarray, v_ref: np.ndarray, a_ref: np.ndarray) -> tuple[np.ndarray, int]:
        """Next acceleration toward target `arm`: exact when feasible, shaped when not."""
        dt = self.dt
        reasons = 0
        lo, hi = jl.accel_bounds(self.v, self.a, self.vmax, self.amax, self.jmax, dt)
        want = ((arm - self.p) / dt - self.v) / dt  # lands exactly on the target next period
        out = (want < lo) | (want > hi)
        if out.any():
            jump = np.abs(want - self.a) > self.jmax * dt
            if jump.any():
                reasons |= _JERK_LIMIT
            if (np.abs(want) > self.amax).any():
                reasons |= _ACCELERATION_LIMIT
            if np.any(out & ~jump & (np.abs(want) <= self.amax)):
                reasons |= _VELOCITY_LIMIT
            # Infeasible: approach the target along a velocity profile the limits can follow
            # (sqrt law at half the deceleration limit far away, linear near it), reached by the
            # jerk-limited braking law applied to the velocity error, with the target's own
            # acceleration fed forward so that a smooth target is soon followed exactly again.
            # Tracking error: the last command against where the target was then (the target
            # minus this period's reference motion).
            err = arm - v_ref * dt - self.p
            approach = np.minimum(np.sqrt(0.5 * self.amax * np.abs(err)), np.abs(err) / 0.02)
            v_goal = np.minimum(np.maximum(v_ref + np.sign(err) * approach, -self.vmax), self.vmax)
            # (The braking law's dead-beat step makes v' = v_goal; the feed-forward is inside it.)
            slip = self.v + a_ref * dt - v_goal
            shaped = a_ref + jl.brake_accel(slip, self.a - a_ref, self.amax, self.jmax, dt)
            want = np.where(out, shaped, want)
        move = np.minimum(np.maximum(want, lo), hi)
        # Far from every limit (more than the longest possible stopping distance) the full move
        # passes the braking envelope whatever the velocity: skip the check.
        p_move = self.p + (self.v + move * dt) * dt
        if (p_move - self._far_lo >= 0.0).all() and (self._far_hi - p_move >= 0.0).all():
            return move, reasons
        brake = np.minimum(np.maximum(jl.brake_accel(self.v, self.a, self.amax, self.jmax, dt), lo), hi)
        # Braking envelope: try the full move, then shorter ones, else brake. Rows of `cand`
        # are the candidates; the upward and downward checks run as one stacked array.
        cand = brake + _CANDIDATES * (move - brake)
        v_c = self.v + cand * dt
        p_c = self.p + v_c * dt
        k = len(_CANDIDATES)
        reach = jl.stop_distance(
            np.concatenate((v_c, -v_c)), np.concatenate((cand, -cand)), self._amax2, self._jmax2, dt
        )
        ok = (p_c + reach[:k] <= self.hi) & (p_c - reach[k:] >= self.lo)
        first = np.argmax(ok, axis=0)
        a_next = np.where(ok.any(axis=0), cand[first, self._cols], brake)
        if not ok[0].all():
            reasons |= _BRAKING
        return a_next, reasons

    def _step_gripper(self, g: float) -> int:
        reasons = 0
        want = min(max(g, 0.0), 1.0)
        if want != g:
            reasons |= _GRIPPER
        moved = min(max(want, self.gripper - self.gripper_step), self.gripper + self.gripper_step)
        if moved != want:
            reasons |= _GRIPPER
        self.gripper = moved
        return reasons
