"""Counterexamples the ownership machine found while it was built, as plain tests.

Each replays the shrunk sequence through both the actors and the spec (via the machine's
own helpers) and checks that replies agree and the invariants hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protocols import invariants, rmgr
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, task_id
from protocols.l4linux import Strategy
from tests.ownership_machine import OwnershipMachine, machine_for

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
    machine._call(machine.client, RMGR, rmgr.AllocateChief())
    got = machine._call(machine.client, RMGR, rmgr.RmgrTaskNew(dest=machine.client, pager=NIL_ID))
    assert got == rmgr.RmgrReply(error=ErrorCode.EINVAL)
    invariants.check_all(machine.snap)


def test_a_client_cannot_restart_itself_through_rmgr(machine: OwnershipMachine) -> None:
    # Found: RmgrTaskNew(dest=<client>, pager=<client>) replaced the client by an idle task.
    request = rmgr.RmgrTaskNew(dest=machine.client, mcp_or_chief=255, pager=machine.client)
    assert machine._call(machine.client, RMGR, request) == rmgr.RmgrReply(error=ErrorCode.EINVAL)
    machine._call(machine.client, RMGR, rmgr.GetTask(number=15))
    invariants.check_all(machine.snap)


def test_a_client_cannot_free_itself_at_rmgr(machine: OwnershipMachine) -> None:
    # The same hole through free_task and free_task_all (which now skips the owner itself).
    machine._call(machine.client, RMGR, rmgr.GetTask(number=15))
    got = machine._call(machine.client, RMGR, rmgr.FreeTask(number=machine.client.task))
    assert got == rmgr.RmgrReply(error=ErrorCode.EINVAL)
    machine._call(machine.client, RMGR, rmgr.FreeTaskAll(owner=machine.client.task))
    assert machine.snap.kernel.is_active(machine.client.task)
    invariants.check_all(machine.snap)
