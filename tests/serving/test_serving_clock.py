"""Clock offset from pings: the min-RTT sample wins, asymmetric queueing is filtered out."""

import numpy as np
import pytest

from robot_rl.serving.clock import ClockOffsetEstimator


def simulate_ping(est, robot_t0, true_offset, up_delay, down_delay, server_work=1e-4):
    t1 = robot_t0 + up_delay + true_offset
    t2 = t1 + server_work
    t3 = t2 - true_offset + down_delay
    return est.add(robot_t0, t1, t2, t3)


def test_symmetric_delay_gives_exact_offset():
    est = ClockOffsetEstimator()
    s = simulate_ping(est, 100.0, true_offset=42.5, up_delay=3e-4, down_delay=3e-4)
    assert s.offset == pytest.approx(42.5, abs=1e-9)
    assert s.rtt == pytest.approx(6e-4, abs=1e-9)
    assert est.to_robot(est.to_server(7.0)) == pytest.approx(7.0)


def test_min_rtt_filter_rejects_queueing_noise():
    rng = np.random.default_rng(0)
    est = ClockOffsetEstimator(window=32)
    true_offset = -1234.567
    for i in range(32):
        base = 2e-4
        # Queueing adds delay on one leg only: each such sample is biased by half of it.
        extra_up, extra_down = rng.exponential(5e-3), rng.exponential(5e-3) * (rng.random() < 0.5)
        simulate_ping(est, 10.0 + i, true_offset, base + extra_up, base + extra_down)
    simulate_ping(est, 50.0, true_offset, 2e-4, 2.1e-4)  # one clean exchange
    assert abs(est.offset - true_offset) <= est.uncertainty
    assert abs(est.offset - true_offset) < 1e-5


def test_window_forgets_old_samples_and_checks_order():
    est = ClockOffsetEstimator(window=2)
    simulate_ping(est, 0.0, 5.0, 1e-5, 1e-5)  # best, but falls out of the window
    simulate_ping(est, 1.0, 6.0, 1e-3, 1e-3)
    simulate_ping(est, 2.0, 6.0, 2e-3, 2e-3)
    assert est.offset == pytest.approx(6.0)
    with pytest.raises(ValueError):
        est.add(5.0, 1.0, 1.1, 4.0)
    with pytest.raises(RuntimeError):
        _ = ClockOffsetEstimator().offset
