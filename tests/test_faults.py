"""Fault injection by hand: crashed and slow servers give typed errors in time; cleanup.

The Hypothesis fault machine (``test_fault_machine``) drives these at random; here each
fault is one plain scenario, including the ones the machine leaves out (a dead RMGR).
"""

from __future__ import annotations

import threading
import time

import pykka
import pytest

from actors import EIP_CLIENT, BootConfig, System, boot
from actors.client import Perform
from actors.faults import CrashNext, ExitEvent, SlowNext, crash_now
from protocols import rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, task_id
from protocols.ipc import IpcError
from protocols.l4linux import Strategy
from tests.fault_machine import FAULT_IMAGES, lost_tasks, restart_task_server


def faulty_system(strategy: Strategy = Strategy.CLASSIC) -> System:
    config = BootConfig(
        task_count=16, modules=(EIP_CLIENT,), linux=1, strategy=strategy, timeout=2.0, trace=False
    )
    system = System(config)
    system.runtime.images.update(FAULT_IMAGES)
    return system.start()


def test_callers_of_a_dead_rmgr_get_typed_errors_at_once() -> None:
    with boot(task_count=12, modules=(EIP_CLIENT,), timeout=2.0) as system:
        (client,) = system.modules
        crash_now(system.ref(task_id(RMGR_TASK)), 2.0)
        start = time.monotonic()
        got = system.perform(client, task_id(RMGR_TASK), rmgr.GetTask(number=9))
        assert isinstance(got, IpcError) and got.code is ErrorCode.ENOT_EXISTENT
        assert time.monotonic() - start < 1.0


def test_a_server_that_crashes_mid_request_answers_eaborted_then_enot_existent() -> None:
    with faulty_system() as system:
        (client,) = system.modules
        assert system.task_server is not None
        # allocate is local in simple_ts; allocate2 calls RMGR, then the kernel.
        system.ref(system.task_server).ask(CrashNext(after_calls=2), timeout=2)
        got = system.perform(client, system.task_server, ts.AllocateChief())
        assert isinstance(got, IpcError) and got.code is ErrorCode.EABORTED
        again = system.perform(client, system.task_server, ts.Allocate())
        assert isinstance(again, IpcError) and again.code is ErrorCode.ENOT_EXISTENT
        # RMGR had handed it a task when it died: the restart takes it back.
        restart_task_server(system)
        assert lost_tasks(system.snapshot()) == ()
        got = system.perform(client, system.task_server, ts.Allocate())
        assert isinstance(got, ts.TsReply) and got.error is ErrorCode.OK


def test_a_slow_server_times_its_caller_out_and_still_finishes() -> None:
    with faulty_system() as system:
        (client,) = system.modules
        assert system.task_server is not None
        release = threading.Event()
        server = system.ref(system.task_server)
        server.ask(SlowNext(release=release, limit=2.0), timeout=2)
        start = time.monotonic()
        got = system.ref(client).ask(
            Perform(dest=system.task_server, message=ts.Allocate(), timeout=0.05), timeout=5
        )
        waited = time.monotonic() - start
        release.set()
        assert isinstance(got, IpcError) and got.code is ErrorCode.ETIMEOUT
        assert waited < 1.0
        # The timed-out request was not cancelled: the client owns the task it asked for.
        assert len(system.snapshot().tasks_of(client.task)) == 1


@pytest.mark.parametrize("strategy", list(Strategy))
def test_an_exit_event_reclaims_everything_a_dead_l4linux_held(strategy: Strategy) -> None:
    with faulty_system(strategy) as system:
        (server,) = system.linux
        assert system.snapshot().tasks_of(server.task)
        crash_now(system.ref(server), 2.0)
        cleaner = system.task_server or task_id(RMGR_TASK)
        reply = system.ref(cleaner).ask(ExitEvent(task=server), timeout=10)
        assert reply.error is ErrorCode.OK
        snap = system.snapshot()
        assert snap.tasks_of(server.task) == () and lost_tasks(snap) == ()
        assert not snap.kernel.is_active(server.task)


def test_exit_events_cannot_be_forged_by_ipc() -> None:
    with faulty_system() as system:
        (client,) = system.modules
        assert system.task_server is not None
        before = system.snapshot()
        got = system.perform(client, system.task_server, ExitEvent(task=system.linux[0]))
        assert isinstance(got, IpcError) and got.code is ErrorCode.EUNKNOWN_MESSAGE
        assert system.snapshot() == before


def test_a_failing_body_still_stops_every_actor() -> None:
    with pytest.raises(RuntimeError), boot(task_count=12, modules=(EIP_CLIENT,)):
        raise RuntimeError("the test body fails")
    assert pykka.ActorRegistry.get_all() == []


def test_every_test_has_a_timeout(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) > 0
