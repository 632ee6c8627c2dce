"""What the OS and the interpreter can do for a control thread's timing, and what they refuse.

Two levels, because they belong to different owners:

    thread  (ControlLoop applies it in its own thread, from LoopConfig)
      SCHED_FIFO at loop.realtime_priority   the kernel runs the loop the moment its sleep ends,
                                             ahead of every normal (SCHED_OTHER) task: a busy
                                             process on the same core no longer delays it
      affinity to loop.cpus                  the loop stays on the listed cores (isolcpus-style
                                             deployment: keep other work off those cores)
    process (the program that owns the process calls tune_process, from its main thread)
      nice (default -10 in controller_node)  the threads that share the GIL with the loop (rclpy
                                             executor, DDS, chunk producers) are preempted less
                                             often while they hold it; Linux keeps nice per
                                             thread and new threads inherit it, so call this
                                             before any other thread starts
      sys.setswitchinterval                  how long another Python thread may keep the GIL
                                             once the loop thread asks for it (default 5 ms)
      gc.freeze()                            objects alive at start-up leave the collector's
                                             generations: a full collection no longer walks
                                             them (rclpy + numpy + torch: 100k+ objects, ms)
      mlockall(MCL_CURRENT | MCL_FUTURE)     no page fault (disk, swap) inside a tick

On Linux, sched_setscheduler(0, ...) and sched_setaffinity(0, ...) called in a thread apply to
that thread only (0 is the calling thread's id), which is what ControlLoop relies on.

Capabilities: SCHED_FIFO and a negative nice need CAP_SYS_NICE, mlockall CAP_IPC_LOCK, or, for
a normal user, limits.conf entries (the ros2_control convention, e.g. for a group `realtime`):

    @realtime  -  rtprio   99
    @realtime  -  nice     -10
    @realtime  -  memlock  unlimited

Without them nothing fails: each refused setting is logged once (a WARNING naming the setting,
the error and the fix) and reported in the returned status, and the loop keeps its
sleep-then-spin scheduling at normal priority (bench/control_loop.py, one busy process:
period error p99 569 us on an idle machine, 22-30 ms at load average 10, where SCHED_FIFO
gave 69-78 us). A non-preemptible kernel (`Dynamic Preempt: none` in dmesg) also
bounds what SCHED_FIFO can do: the loop waits for whatever task holds its core in the kernel;
PREEMPT_RT (or preempt=full) removes that wait.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

_MCL_CURRENT, _MCL_FUTURE = 1, 2
_CAPABILITY_HINT = "needs CAP_SYS_NICE, root, or 'rtprio' in /etc/security/limits.conf"


@dataclass(frozen=True)
class ThreadStatus:
    fifo_priority: int  # 0: normal scheduling (not asked for, or refused)
    cpus: tuple[int, ...]  # the cores the thread may run on after the call
    problems: tuple[str, ...]  # what was asked for and refused, one line each


@dataclass(frozen=True)
class ProcessStatus:
    switch_interval_s: float
    gc_frozen: int  # objects moved out of the collector's generations
    memory_locked: bool
    nice: int  # the calling thread's, after the call
    problems: tuple[str, ...]


def tune_thread(priority: int, cpus: tuple[int, ...] = ()) -> ThreadStatus:
    """Give the CALLING thread SCHED_FIFO at `priority` (0: leave it alone) and pin it to `cpus`
    (empty: leave it alone). Refusals are logged and reported, never raised."""
    problems = []
    granted = 0
    if priority > 0:
        if not hasattr(os, "sched_setscheduler"):
            problems.append(f"SCHED_FIFO {priority}: not available on {sys.platform}")
        else:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
                granted = priority
            except OSError as exc:
                problems.append(f"SCHED_FIFO {priority} refused ({exc}); {_CAPABILITY_HINT}")
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except (OSError, ValueError) as exc:
            problems.append(f"CPU affinity {list(cpus)} refused ({exc}); cores online: {_online()}")
    for line in problems:
        log.warning("control loop: %s; falling back to sleep-then-spin at normal priority", line)
    current = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
    return ThreadStatus(fifo_priority=granted, cpus=current, problems=tuple(problems))


def tune_process(
    switch_interval_s: float | None = 0.0005,
    freeze_gc: bool = True,
    lock_memory: bool = False,
    nice: int | None = None,
) -> ProcessStatus:
    """Process-wide settings for a process that runs a control loop. None / False leaves a
    setting as it is. `nice` applies to the calling thread and the threads it starts later
    (call it first, from the main thread); `freeze_gc` is best after start-up (imports done,
    nodes created), so a second call with only freeze_gc=True is fine."""
    problems = []
    if nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except (OSError, AttributeError) as exc:
            problems.append(f"nice {nice} refused ({exc}); {_CAPABILITY_HINT.replace('rtprio', 'nice')}")
    if switch_interval_s is not None:
        sys.setswitchinterval(switch_interval_s)
    frozen = 0
    if freeze_gc:
        gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
    locked = False
    if lock_memory:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
            locked = True
        else:
            err = ctypes.get_errno()
            problems.append(
                f"mlockall refused ({os.strerror(err)}); needs CAP_IPC_LOCK or 'memlock unlimited' in "
                "/etc/security/limits.conf"
            )
    for line in problems:
        log.warning("control process: %s", line)
    current_nice = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    return ProcessStatus(sys.getswitchinterval(), frozen, locked, current_nice, tuple(problems))


def _online() -> str:
    return str(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "unknown"
