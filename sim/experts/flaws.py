"""Demonstration quality: the same scripted expert with noise, hesitations and sloppy targets.

    expert  no flaws: the reference demonstrations
    medium  small joint noise, occasional hesitation, 3-6 cm of error in where it grasps/pushes (35%)
    poor    larger noise, frequent hesitation, a 4-8 cm miss of grasp/push/alignment target (70%)

Everything is drawn from the expert's own seeded generator, so a (task, quality, seed) triple
always yields the same behaviour against the same env seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flaws:
    joint_noise_std: float  # rad, Gaussian, added to every arm joint target
    hesitate_prob: float  # per step: repeat the previous action for 1-4 steps
    miss_prob: float  # per episode: the grasp / push / alignment target is off by ...
    miss_distance: tuple[float, float]  # ... a distance drawn from this range (m), random direction


QUALITIES = {
    "expert": Flaws(joint_noise_std=0.0, hesitate_prob=0.0, miss_prob=0.0, miss_distance=(0.0, 0.0)),
    "medium": Flaws(joint_noise_std=0.01, hesitate_prob=0.08, miss_prob=0.35, miss_distance=(0.03, 0.06)),
    "poor": Flaws(joint_noise_std=0.025, hesitate_prob=0.2, miss_prob=0.7, miss_distance=(0.04, 0.08)),
}


class FlawInjector:
    def __init__(self, flaws: Flaws, rng: np.random.Generator):
        self.flaws, self.rng = flaws, rng
        self.reset()

    def reset(self) -> None:
        f, rng = self.flaws, self.rng
        self._hold = 0
        self._last: np.ndarray | None = None
        self.offset = np.zeros(3)
        if f.miss_prob > 0 and rng.random() < f.miss_prob:
            angle = rng.uniform(0, 2 * np.pi)
            self.offset[:2] = rng.uniform(*f.miss_distance) * np.array([np.cos(angle), np.sin(angle)])

    def apply(self, action: np.ndarray) -> np.ndarray:
        f, rng = self.flaws, self.rng
        if self._hold > 0 and self._last is not None:
            self._hold -= 1
            return self._last
        if f.hesitate_prob > 0 and self._last is not None and rng.random() < f.hesitate_prob:
            self._hold = int(rng.integers(0, 4))
            return self._last
        if f.joint_noise_std > 0:
            action = action.copy()
            action[:-1] += rng.normal(0.0, f.joint_noise_std, action.shape[0] - 1).astype(np.float32)
        self._last = action
        return action
