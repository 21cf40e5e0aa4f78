"""RMGR's what-ifs for ``merged`` and for reclaim: AllocateChief, Free2, FreeClient.

None has a source (``protocols.rmgr_whatifs``)."""

from __future__ import annotations

from actors import System
from protocols import rmgr
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.kernel import TaskNew

RMGR = task_id(RMGR_TASK)


def _step(s: System, client: ThreadId, request: rmgr.RmgrRequest) -> rmgr.RmgrReply:
    """Send ``request`` to RMGR; the actor must agree with the spec, reply and books."""
    before = s.snapshot()
    want_ks, want_rs, want = rmgr.step(before.kernel, before.rmgr, client, request)
    got = s.perform(client, RMGR, request)
    assert got == want
    assert (s.kernel_state(), s.rmgr_state()) == (want_ks, want_rs)
    assert isinstance(got, rmgr.RmgrReply)
    return got


def test_allocate_chief_bumps_the_version_and_free2_needs_the_right_back(system: System) -> None:
    a, b, _ = system.modules
    got = _step(system, a, rmgr.AllocateChief())
    assert got.error is ErrorCode.OK and got.task == task_id(8, 1)
    assert system.kernel_state().chief_of(8) == a.task and 8 in system.rmgr_state().handed
    assert _step(system, b, rmgr.Free2(task=got.task)).error is ErrorCode.ENOTOWNER
    assert _step(system, a, rmgr.Free2(task=got.task)).error is ErrorCode.ENOTCHIEF
    system.syscall(a, TaskNew(dest=got.task.next_version(), mcp_or_new_chief=RMGR))
    freed = _step(system, a, rmgr.Free2(task=got.task.next_version()))
    assert freed == rmgr.RmgrReply(error=ErrorCode.OK, task=task_id(8, 2))
    assert _step(system, b, rmgr.AllocateChief()).task == task_id(8, 3)


def test_free_client_deletes_the_client_and_frees_its_clan(system: System) -> None:
    a, b, _ = system.modules
    got = _step(system, a, rmgr.AllocateChief())
    system.syscall(a, TaskNew(dest=got.task, mcp_or_new_chief=255, eip=0, pager=a))
    assert _step(system, b, rmgr.FreeClient(owner=a.task)).error is ErrorCode.ENOTOWNER
    reply = _step(system, a, rmgr.FreeClient(owner=a.task))
    assert reply == rmgr.RmgrReply(error=ErrorCode.OK, count=2)
    ks, rs = system.kernel_state(), system.rmgr_state()
    assert not ks.is_active(a.task) and not ks.is_active(got.task.task)
    assert rs.owners[a.task] == rmgr.FREE and rs.owners[got.task.task] == rmgr.FREE


def test_requests_on_the_callers_own_number_are_refused(system: System) -> None:
    """The what-if refuses Free2 on the caller's own number; the source calls refuse the
    others because RMGR, not the client, holds a boot module (task.c@e91a37df:36-61)."""
    a, _, _ = system.modules
    assert _step(system, a, rmgr.Free2(task=a)).error is ErrorCode.EINVAL
    assert _step(system, a, rmgr.GetTask(number=a.task)).error is ErrorCode.EUSED
    assert _step(system, a, rmgr.FreeTask(number=a.task)).error is ErrorCode.ENOTOWNER
    request = rmgr.RmgrTaskNew(dest=a, pager=a, mcp_or_chief=1)
    assert _step(system, a, request).error is ErrorCode.EUSED
    assert system.kernel_state().is_active(a.task)
