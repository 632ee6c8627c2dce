"""Watchdog modes: chunk timeout, stale joint states, latched e-stop."""

from robot_rl.control.watchdog import Mode, Watchdog


def test_modes_and_latching_estop(hw):
    s = hw.safety
    dog = Watchdog(s)
    assert dog.check(0.0, 0.0) is Mode.HOLD_NO_CHUNK  # nothing received yet
    dog.chunk_received(1.0)
    assert dog.check(1.0, 1.0) is Mode.RUN
    assert dog.check(1.0 + s.chunk_timeout_s * 0.99, 1.0 + s.chunk_timeout_s * 0.99) is Mode.RUN
    assert dog.check(1.0 + s.chunk_timeout_s * 1.01, 1.5) is Mode.HOLD_NO_CHUNK
    dog.chunk_received(2.0)
    assert dog.check(2.0, 2.0 - s.joint_state_timeout_s * 1.1) is Mode.HOLD_STALE_STATE
    assert dog.check(2.0, None) is Mode.HOLD_STALE_STATE
    assert dog.check(2.0, 2.0) is Mode.RUN
    dog.estop("operator")
    assert dog.estop_reason == "operator"
    dog.chunk_received(2.1)  # fresh chunks do not clear it
    assert dog.check(2.1, 2.1) is Mode.ESTOP
    assert dog.check(9.0, 9.0) is Mode.ESTOP
    dog.reset_estop()
    assert dog.check(2.2, 2.2) is Mode.RUN
    assert dog.transitions == 6
    assert Mode.ESTOP.holding and not Mode.RUN.holding
