"""Counterexamples the ownership machine found while it was built, as plain tests.

Each replays the shrunk sequence through both the actors and the spec (via the machine's
own helpers) and checks that replies agree and the invariants hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.l4linux import LinuxShutdown
from protocols import invariants, ownership, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, task_id
from protocols.l4linux import Strategy
from scenarios.check.ownership_machine import OwnershipMachine, machine_for

RMGR = task_id(RMGR_TASK)


@pytest.fixture(params=[Strategy.CLASSIC, Strategy.CHIEF])
def machine(request: pytest.FixtureRequest) -> Iterator[OwnershipMachine]:
    """A booted ownership machine (actors + spec) for the strategies that found these."""
    m = machine_for(request.param)()
    try:
        yield m
    finally:
        m.teardown()


def test_a_client_cannot_delete_itself_through_rmgr_task_new(machine: OwnershipMachine) -> None:
    # Found: RmgrTaskNew(dest=<client>, pager=nil) killed the client, whose tasks leaked.
    machine.call(machine.client, RMGR, rmgr.AllocateChief())
    got = machine.call(machine.client, RMGR, rmgr.RmgrTaskNew(dest=machine.client, pager=NIL_ID))
    assert got == rmgr.RmgrReply(error=ErrorCode.EINVAL)
    invariants.check_all(machine.snap)


def test_a_client_cannot_restart_itself_through_rmgr(machine: OwnershipMachine) -> None:
    # Found: RmgrTaskNew(dest=<client>, pager=<client>) replaced the client by an idle task.
    request = rmgr.RmgrTaskNew(dest=machine.client, mcp_or_chief=255, pager=machine.client)
    before = machine.snap
    got = machine.call(machine.client, RMGR, request)
    assert isinstance(got, rmgr.RmgrReply) and got.error is not ErrorCode.OK, got
    assert machine.snap == before, "a refused task_new changes nothing"
    machine.call(machine.client, RMGR, rmgr.GetTask(number=15))
    invariants.check_all(machine.snap)


def test_a_client_cannot_free_itself_at_rmgr(machine: OwnershipMachine) -> None:
    # The same hole through free_task and free_task_all (which now skips the owner itself).
    machine.call(machine.client, RMGR, rmgr.GetTask(number=15))
    got = machine.call(machine.client, RMGR, rmgr.FreeTask(number=machine.client.task))
    assert isinstance(got, rmgr.RmgrReply) and got.error is not ErrorCode.OK, got
    machine.call(machine.client, RMGR, rmgr.FreeTaskAll(owner=machine.client.task))
    assert machine.snap.kernel.is_active(machine.client.task)
    invariants.check_all(machine.snap)


def test_a_task_started_under_a_dead_servers_id_is_not_observed_as_that_server(
    machine: OwnershipMachine,
) -> None:
    # Found: after L4Linux 6 exited, the client started an idle task as t6.0v1 (RMGR
    # task_new on the freed number); the observer took it for the server.
    server = machine.model.linux[0].me
    machine.model, _ = ownership.shutdown_linux(machine.model, server)
    machine.system.ref(machine.snap.kernel.tasks[server].id).ask(LinuxShutdown(), timeout=20)
    machine.snap = machine.system.snapshot()
    request = rmgr.RmgrTaskNew(
        dest=task_id(server, 1), mcp_or_chief=255, eip=0, pager=machine.client
    )
    got = machine.call(machine.client, RMGR, request)
    assert got == rmgr.RmgrReply(error=ErrorCode.OK, task=task_id(server, 1))
    assert [lx.me for lx in machine.snap.linux] == [machine.model.linux[0].me]
    invariants.check_all(machine.snap)


def test_with_a_task_server_a_client_cannot_leave_through_rmgr(
    machine: OwnershipMachine,
) -> None:
    # Found: Allocate at the task server, then FreeClient(self) at RMGR: the client died
    # and the task server's record stayed owned by a dead task.
    machine.call(machine.client, machine.system.task_server or RMGR, ts.Allocate())
    got = machine.call(machine.client, RMGR, rmgr.FreeClient(owner=machine.client.task))
    assert got == rmgr.RmgrReply(error=ErrorCode.ENOTOWNER)
    invariants.check_all(machine.snap)
