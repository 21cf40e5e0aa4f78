"""Scale: every task number RMGR can hand out runs as a live thread actor.

The system boots with 2043 boot modules (tasks 5..2047), each module makes one IPC to
the next, and shutdown leaves no actor and no actor thread alive.
"""

from __future__ import annotations

import threading

import pykka
import pytest

from actors.system import BootConfig
from protocols.ids import FIRST_USER_TASK, TASK_COUNT
from protocols.rmgr import FREE
from protocols.trace import IpcCall, IpcReply
from scenarios.bench.core import EIP_BENCH_PEER, Ping, Pong, bench_system

pytestmark = pytest.mark.scale


@pytest.mark.timeout(60)
def test_all_task_numbers_boot_answer_one_ipc_each_and_shut_down_cleanly() -> None:
    modules = TASK_COUNT - FIRST_USER_TASK
    threads_before = set(threading.enumerate())
    config = BootConfig(task_count=TASK_COUNT, modules=(EIP_BENCH_PEER,) * modules, timeout=30.0)
    with bench_system(config) as system:
        kernel = system.kernel_state()
        assert all(e.active for e in kernel.tasks[FIRST_USER_TASK:])
        assert FREE not in system.rmgr_state().owners  # nothing left for RMGR to hand out
        refs = system.runtime.all_started()
        assert len(refs) == modules + 2  # and sigma0, RMGR
        started = set(threading.enumerate()) - threads_before
        assert len(started) >= modules + 3  # every thread actor and the kernel run

        mark = system.trace.mark()
        ids = system.modules
        for i, tid in enumerate(ids):
            dest = ids[(i + 1) % modules]
            assert system.perform(tid, dest, Ping()) == Pong(task=dest.task)
        events = system.trace.since(mark)
        assert sum(type(e) is IpcCall for e in events) == modules
        assert sum(type(e) is IpcReply for e in events) == modules

    assert not any(ref.is_alive() for ref in refs)
    live = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    assert not live & {ref.actor_urn for ref in refs}
    for thread in started:
        thread.join(timeout=10)
    assert not [t.name for t in started if t.is_alive()]
