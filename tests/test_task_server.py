"""The task server: its pure spec (protocols.task_server) and the actor against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors import EIP_CLIENT, System, boot
from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id
from protocols.task_server import TaskState

TASKS = 16


@pytest.fixture
def tsys() -> Iterator[System]:
    """A task server (task 5) and two scripted clients (tasks 6, 7)."""
    with boot(
        task_count=TASKS, modules=(EIP_CLIENT,) * 2, task_server=True, managed=TASKS, timeout=5.0
    ) as s:
        yield s


def spec_world(
    managed: int = TASKS,
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState]:
    """The spec's world after booting a task server (5) and clients 6, 7, and its init."""
    ks = kernel.boot_state(TASKS)
    rs = rmgr.boot_state(TASKS, trusted=frozenset({FIRST_USER_TASK}))
    ks, rs, _ = rmgr.start_modules(ks, rs, (1, 2, 3))
    ks, rs, tstate = ts.init(ks, rs, FIRST_USER_TASK, managed)
    return ks, rs, tstate


def test_init_learns_every_task_and_gives_it_back() -> None:
    ks, rs, tstate = spec_world()
    assert tuple(r.number for r in tstate.records) == tuple(range(8, TASKS))
    assert all(rs.owners[n] == rmgr.FREE for n in range(8, TASKS))
    assert all(ks.chief_of(n) == RMGR_TASK and not ks.is_active(n) for n in range(8, TASKS))


def test_managed_count_is_configurable() -> None:
    _, _, tstate = spec_world(managed=5)
    assert tuple(r.number for r in tstate.records) == (8, 9)


def test_allocate_chief_hands_the_chief_right_with_a_new_version() -> None:
    ks, rs, tstate = spec_world()
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6, 1), ts.AllocateChief())
    assert reply == ts.TsReply(error=ErrorCode.OK, task=task_id(8, 1))
    assert ks.chief_of(8) == 6 and rs.owners[8] == FIRST_USER_TASK
    assert tstate.record(8) == ts.TsRecord(
        number=8, id=task_id(8, 1), owner=6, state=TaskState.CHIEF
    )


def test_create_runs_the_task_and_refuses_it_while_running_with_eused() -> None:
    ks, rs, tstate = spec_world()
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6, 1), ts.Allocate())
    create = ts.Create(task=got.task, eip=EIP_CLIENT, pager=task_id(6, 1))
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6, 1), create)
    assert reply.error is ErrorCode.OK and ks.is_active(8) and ks.chief_of(8) == RMGR_TASK
    _, _, _, again = ts.step(ks, rs, tstate, task_id(6, 1), create)
    assert again.error is ErrorCode.EUSED


def test_kill_by_a_stranger_is_refused_and_by_the_owner_frees_with_free() -> None:
    ks, rs, tstate = spec_world()
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6, 1), ts.Allocate())
    create = ts.Create(task=got.task, eip=EIP_CLIENT, pager=task_id(6, 1))
    ks, rs, tstate, _ = ts.step(ks, rs, tstate, task_id(6, 1), create)
    kill = ts.Kill(task=got.task, options=ts.KillOption.FREE)
    same = ts.step(ks, rs, tstate, task_id(7, 1), kill)
    assert same == (ks, rs, tstate, ts.TsReply(error=ErrorCode.ENOTOWNER))
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6, 1), kill)
    assert reply.error is ErrorCode.OK and not ks.is_active(8)
    assert rs.owners[8] == rmgr.FREE and tstate.exit_events == 1
    assert tstate.record(8) == ts.TsRecord(number=8, id=got.task)


def test_free2_needs_the_chief_right_handed_back_first() -> None:
    ks, rs, tstate = spec_world()
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6, 1), ts.AllocateChief())
    refused = ts.step(ks, rs, tstate, task_id(6, 1), ts.Free2(task=got.task))
    assert refused == (ks, rs, tstate, ts.TsReply(error=ErrorCode.ENOTCHIEF))
    ks, _ = kernel.step(
        ks, task_id(6, 1), kernel.TaskNew(dest=got.task, mcp_or_new_chief=task_id(5))
    )
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6, 1), ts.Free2(task=got.task))
    assert reply.error is ErrorCode.OK and rs.owners[8] == rmgr.FREE
    assert ks.chief_of(8) == RMGR_TASK


def test_exit_reclaims_every_task_the_client_owned() -> None:
    ks, rs, tstate = spec_world()
    for request in (ts.AllocateChief(), ts.Allocate(), ts.AllocateChief()):
        ks, rs, tstate, _ = ts.step(ks, rs, tstate, task_id(6, 1), request)
    ks, _ = kernel.step(
        ks,
        task_id(6, 1),
        kernel.TaskNew(dest=task_id(8, 1), mcp_or_new_chief=1, eip=1, pager=task_id(6, 1)),
    )
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6, 1), ts.Exit())
    assert reply.error is ErrorCode.OK
    assert not ks.is_active(6) and not ks.is_active(8)
    assert tstate.owned_by(6) == ()
    assert all(rs.owners[n] == rmgr.FREE for n in (6, 8, 9, 10))


def _check_step(s: System, client: ThreadId, request: ts.TsRequest) -> ts.TsReply:
    """Send ``request`` from ``client`` to the actor; compare reply and states with the spec."""
    before = s.snapshot()
    assert before.task_server is not None
    assert s.task_server is not None
    want_ks, want_rs, want_ts, want = ts.step(
        before.kernel, before.rmgr, before.task_server, client, request
    )
    got = s.perform(client, s.task_server, request)
    after = s.snapshot()
    assert got == want
    assert (after.kernel, after.rmgr, after.task_server) == (want_ks, want_rs, want_ts)
    assert isinstance(got, ts.TsReply)
    return got


def test_actor_follows_the_spec_through_a_whole_life(tsys: System) -> None:
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, b, ts.Create(task=got.task, eip=EIP_CLIENT, pager=b))
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    _check_step(tsys, b, ts.Owner(task=got.task))
    chief = _check_step(tsys, b, ts.AllocateChief())
    _check_step(tsys, b, ts.Free2(task=chief.task))
    _check_step(tsys, b, ts.Kill(task=got.task))
    _check_step(tsys, a, ts.Kill(task=got.task, options=ts.KillOption.NOEV))
    _check_step(tsys, a, ts.Free(task=got.task))
    _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, b, ts.Exit())
    _check_step(tsys, a, ts.KillRecursive(task=chief.task))
    _check_step(tsys, a, ts.Exit())
