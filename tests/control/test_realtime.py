"""realtime: SCHED_FIFO and affinity reach the loop thread only; refusals are logged, not raised;
process settings (switch interval, gc.freeze) take effect; the loop config checks its fields."""

import gc
import logging
import os
import sys
import threading
import time

import numpy as np
import pytest

from robot_rl.config.hardware import load_hardware_config
from robot_rl.config.loader import ConfigError, from_dict
from robot_rl.control import realtime
from robot_rl.control.config import ControlConfig, LoopConfig
from robot_rl.control.loop import ControlLoop, JointState
from sim.robot import home_pose

HOME = np.append(home_pose(load_hardware_config("sim_ur5e")), 1.0)  # gripper open
linux_only = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling API")


def _fifo_allowed() -> bool:
    """Whether this process may use SCHED_FIFO (root / CAP_SYS_NICE / rtprio), probed in a thread."""
    out = {}

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            out["ok"] = True
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            out["ok"] = False

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return out["ok"]


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(result=fn(), policy=os.sched_getscheduler(0)))
    t.start()
    t.join()
    return out


@linux_only
def test_fifo_applies_to_the_calling_thread_only():
    if not _fifo_allowed():
        pytest.skip("this process may not use SCHED_FIFO")
    out = _in_thread(lambda: realtime.tune_thread(10))
    assert out["result"].fifo_priority == 10 and out["result"].problems == ()
    assert out["policy"] == os.SCHED_FIFO
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the main thread is untouched


@linux_only
def test_refused_priority_is_logged_and_reported_not_raised(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)  # fault injection: no CAP_SYS_NICE
    with caplog.at_level(logging.WARNING, logger="robot_rl.control.realtime"):
        out = _in_thread(lambda: realtime.tune_thread(50))
    status = out["result"]
    assert status.fifo_priority == 0
    assert len(status.problems) == 1 and "SCHED_FIFO 50 refused" in status.problems[0]
    assert "CAP_SYS_NICE" in caplog.text and "sleep-then-spin" in caplog.text


@linux_only
def test_affinity_pins_the_calling_thread_and_a_missing_core_is_reported():
    cores = sorted(os.sched_getaffinity(0))
    out = _in_thread(lambda: realtime.tune_thread(0, (cores[-1],)))
    assert out["result"].cpus == (cores[-1],) and out["result"].problems == ()
    assert sorted(os.sched_getaffinity(0)) == cores  # the main thread keeps every core
    bad = _in_thread(lambda: realtime.tune_thread(0, (4096,)))["result"]
    assert "CPU affinity [4096] refused" in bad.problems[0]
    assert bad.cpus == tuple(cores)


def test_tune_process_sets_the_switch_interval_and_freezes_the_gc():
    before = sys.getswitchinterval()
    try:
        alive = [[] for _ in range(10)]  # alive at start-up: frozen with the rest
        status = realtime.tune_process(switch_interval_s=0.0007, freeze_gc=True, lock_memory=False)
        assert sys.getswitchinterval() == pytest.approx(0.0007)
        assert status.gc_frozen > 1000 and gc.get_freeze_count() > 1000
        assert not any(o is alive for o in gc.get_objects())  # no collection walks it any more
        assert not status.memory_locked
    finally:
        gc.unfreeze()
        sys.setswitchinterval(before)


def test_loop_config_checks_its_scheduling_fields():
    cfg = from_dict(ControlConfig, {"loop": {"realtime_priority": 80, "cpus": [1]}}, "control.yaml")
    assert cfg.loop.realtime_priority == 80 and cfg.loop.cpus == (1,)
    with pytest.raises(ValueError, match="realtime_priority must be in"):
        LoopConfig(realtime_priority=120)
    with pytest.raises(ValueError, match="loop.cpus must be core numbers"):
        LoopConfig(cpus=(-1,))
    with pytest.raises(ConfigError, match="control.yaml: loop.cpus"):
        from_dict(ControlConfig, {"loop": {"cpus": 1}}, "control.yaml")


@linux_only
def test_the_loop_thread_runs_fifo_and_keeps_running_without_it(hw, monkeypatch):
    state = JointState(HOME, time.monotonic())

    def run(config):
        loop = ControlLoop(
            hw, lambda: state._replace(stamp=time.monotonic()), lambda c: None, config, use_workspace=False
        )
        with loop:  # until it has ticked a few times: no rate is asserted (the machine is shared)
            deadline = time.monotonic() + 10.0
            while loop.ticks <= 10 and time.monotonic() < deadline:
                time.sleep(0.02)
        return loop

    if _fifo_allowed():
        loop = run(ControlConfig(loop=LoopConfig(realtime_priority=20)))
        assert loop.realtime and loop.stats().realtime and loop.thread_status.fifo_priority == 20
    monkeypatch.setattr(os, "sched_setscheduler", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no")))
    loop = run(ControlConfig(loop=LoopConfig(realtime_priority=20)))
    assert not loop.realtime and loop.thread_status.problems
    assert loop.stats().ticks > 10  # the fallback keeps the loop going


@linux_only
def test_nice_applies_to_the_calling_thread_and_the_threads_it_starts():
    before = os.getpriority(os.PRIO_PROCESS, 0)

    def owner():
        status = realtime.tune_process(switch_interval_s=None, freeze_gc=False, nice=before + 5)
        child = _in_thread(lambda: os.getpriority(os.PRIO_PROCESS, 0))
        return status, child["result"]

    status, child_nice = _in_thread(owner)["result"]
    assert status.nice == before + 5 and status.problems == ()
    assert child_nice == before + 5  # inherited by a thread started afterwards
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # this thread untouched


@linux_only
def test_refused_nice_is_logged_and_reported(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "setpriority", refuse)
    with caplog.at_level(logging.WARNING, logger="robot_rl.control.realtime"):
        status = realtime.tune_process(switch_interval_s=None, freeze_gc=False, nice=-10)
    assert "nice -10 refused" in status.problems[0] and "CAP_SYS_NICE" in caplog.text
