"""Typed settings of the controller (robot_rl/control); the limits come from the hardware config.

cfg = load_control_config("control.yaml")      # or ControlConfig() for the defaults

executor:
  blend: crossfade          # crossfade | ensemble | none
  blend_window_s: 0.1       # seam cross-fade length
  ensemble_new_weight: 0.5  # ensemble: weight of the newest chunk on overlapping steps
loop:
  spin_margin_s: 0.0003     # sleep until this long before the deadline, then spin
  max_spin_margin_s: 0.0005 # the adaptive margin never grows past this
  adaptive_spin: true       # widen / narrow the margin from the measured sleep overshoot
  realtime_priority: 50     # >0: SCHED_FIFO at this priority for the loop thread (needs CAP_SYS_NICE
                            #     or rtprio in limits.conf; refused: a WARNING, normal scheduling)
  cpus: []                  # pin the loop thread to these cores ([]: any core)
  stats_capacity: 1048576   # period samples kept for the statistics (ring buffer)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from robot_rl.config.loader import from_yaml


@dataclass(frozen=True)
class ExecutorConfig:
    blend: Literal["crossfade", "ensemble", "none"] = "crossfade"
    blend_window_s: float = 0.1
    ensemble_new_weight: float = 0.5

    def __post_init__(self):
        if not self.blend_window_s > 0:
            raise ValueError("executor.blend_window_s must be positive")
        if not 0 < self.ensemble_new_weight <= 1:
            raise ValueError("executor.ensemble_new_weight must be in (0, 1]")


@dataclass(frozen=True)
class LoopConfig:
    spin_margin_s: float = 0.0003
    max_spin_margin_s: float = 0.0005
    adaptive_spin: bool = True
    realtime_priority: int = 50  # the ros2_control convention (controller_manager's thread_priority)
    cpus: tuple[int, ...] = ()
    stats_capacity: int = 1 << 20

    def __post_init__(self):
        if not 0 <= self.spin_margin_s <= self.max_spin_margin_s:
            raise ValueError("loop.spin_margin_s must be in [0, loop.max_spin_margin_s]")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError("loop.realtime_priority must be in [0, 99]")
        if any(c < 0 for c in self.cpus):
            raise ValueError(f"loop.cpus must be core numbers >= 0, got {list(self.cpus)}")
        if self.stats_capacity < 16:
            raise ValueError("loop.stats_capacity must be at least 16")


@dataclass(frozen=True)
class ControlConfig:
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)


def load_control_config(path: str | Path) -> ControlConfig:
    return from_yaml(ControlConfig, path)
