"""Clock offset between the robot and the server, from ping exchanges (NTP style).

One ping:

    robot clock   t0 ──────────────────────────────────► t3
                     \\  request            reply     /
    server clock      t1 ───────────────────────── t2

    offset = ((t1 - t0) + (t2 - t3)) / 2        server_clock - robot_clock
    rtt    = (t3 - t0) - (t2 - t1)              network time, server work excluded

The error of one sample is at most rtt / 2, and most of the noise is queueing that
lengthens rtt, so the estimate is the offset of the sample with the smallest rtt among
the last `window` samples (the min-RTT filter). A server time s is on the robot clock at
s - offset.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ClockSample:
    offset: float
    rtt: float


class ClockOffsetEstimator:
    def __init__(self, window: int = 32):
        if window < 1:
            raise ValueError("window must be >= 1")
        self._samples: deque[ClockSample] = deque(maxlen=window)

    def add(self, t0: float, t1: float, t2: float, t3: float) -> ClockSample:
        if t3 < t0 or t2 < t1:
            raise ValueError(f"ping timestamps out of order: t0={t0} t1={t1} t2={t2} t3={t3}")
        sample = ClockSample(offset=((t1 - t0) + (t2 - t3)) / 2, rtt=max(0.0, (t3 - t0) - (t2 - t1)))
        self._samples.append(sample)
        return sample

    @property
    def ready(self) -> bool:
        return bool(self._samples)

    def best(self) -> ClockSample:
        if not self._samples:
            raise RuntimeError("no ping samples yet; call sync_clock() first")
        return min(self._samples, key=lambda s: s.rtt)

    @property
    def offset(self) -> float:
        """server_clock - robot_clock, seconds."""
        return self.best().offset

    @property
    def uncertainty(self) -> float:
        """Bound on the offset's error: half the best round trip."""
        return self.best().rtt / 2

    def to_robot(self, server_time: float) -> float:
        return server_time - self.offset

    def to_server(self, robot_time: float) -> float:
        return robot_time + self.offset
