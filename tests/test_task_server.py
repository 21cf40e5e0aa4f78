"""The task server (simple_ts 2007-12): each behaviour of its sources, spec and actor.

Every test names the lines of ``osfree-project/l4env
l4/pkg/simple_ts/server/src/main.c@e91a37df`` it checks (``main.c:N`` below).  Tests that
send requests to the actor compare each reply and the three tables with the spec
(``_check_step``), so each runs against both.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator

import attrs
import pytest

from actors import EIP_CLIENT, System, boot
from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id
from protocols.task_server import TaskState

TASKS = 16
MANAGED = tuple(range(ts.TASK_FIRST, TASKS))


@pytest.fixture
def tsys() -> Iterator[System]:
    """A task server (task 5) and two scripted clients (tasks 6, 7); it manages 10..15."""
    with boot(
        task_count=TASKS, modules=(EIP_CLIENT,) * 2, task_server=True, managed=TASKS, timeout=5.0
    ) as s:
        yield s


def spec_world(
    managed: int = TASKS, task_count: int = TASKS
) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState]:
    """The spec's world after booting a task server (5) and clients 6, 7, and its init."""
    ks = kernel.boot_state(task_count)
    rs = rmgr.boot_state(task_count, trusted=frozenset({FIRST_USER_TASK}))
    ks, rs, _ = rmgr.start_modules(ks, rs, (1, 2, 3))
    ks, rs, tstate = ts.init(ks, rs, FIRST_USER_TASK, managed)
    return ks, rs, tstate


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


def _tables(s: System) -> tuple[kernel.KernelState, rmgr.RmgrState]:
    snap = s.snapshot()
    return snap.kernel, snap.rmgr


# -- init (main.c:151-189) ---------------------------------------------------------------


def test_init_keeps_every_task_at_rmgr_and_gives_the_chief_right_back(tsys: System) -> None:
    """main.c:171-187: get_task, l4_task_new(tid, RMGR), no free.  The server's version in
    that call reaches no table: Fiasco keeps no version for a number without a task
    (protocols.kernel), so each number keeps the version it had."""
    for ks, rs, tstate in (spec_world(), _as_triple(tsys)):
        assert tuple(r.number for r in tstate.records) == MANAGED
        assert all(r.state is TaskState.FREE and not r.terminating for r in tstate.records)
        assert all(r.id == task_id(r.number) for r in tstate.records)
        for n in MANAGED:
            assert rs.owners[n] == FIRST_USER_TASK
            assert ks.chief_of(n) == RMGR_TASK and not ks.is_active(n)
            assert ks.tasks[n].version == 0
        # Numbers below TASK_FIRST (main.c:37) stay free at RMGR.
        assert all(rs.owners[n] == rmgr.FREE for n in range(8, ts.TASK_FIRST))


def _as_triple(s: System) -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState]:
    snap = s.snapshot()
    assert snap.task_server is not None
    return snap.kernel, snap.rmgr, snap.task_server


def test_a_number_rmgr_refuses_is_reserved_and_terminating() -> None:
    """main.c:171-179: a refused number is marked used and terminating for good."""
    ks = kernel.boot_state(TASKS)
    rs = rmgr.boot_state(TASKS, trusted=frozenset({FIRST_USER_TASK}))
    ks, rs, _ = rmgr.start_modules(ks, rs, (1, 2, 3))
    ks, rs, _ = rmgr.step(ks, rs, task_id(7), rmgr.GetTask(number=11))
    ks, rs, tstate = ts.init(ks, rs, FIRST_USER_TASK, TASKS)
    rec = tstate.record(11)
    assert rec is not None and rec.state is TaskState.RESERVED and rec.terminating
    assert rs.owners[11] == 7
    ks, rs, tstate, reply = ts.step(ks, rs, tstate, task_id(6), ts.Allocate(taskno=11))
    assert reply.error is ErrorCode.ENOTASK


def test_managed_count_is_configurable_and_bounded() -> None:
    """main.c:35-36,98-99,115-120: ``-t`` numbers from 10, at most TASK_CNT_MAX - 10."""
    _, _, tstate = spec_world(managed=3)
    assert tuple(r.number for r in tstate.records) == (10, 11, 12)
    assert len(ts.managed_numbers(4000, 5000)) == ts.TASK_CNT_MAX - ts.TASK_FIRST


# -- allocate / allocate2 (main.c:192-226, 386-437) ----------------------------------------


def test_allocate_is_local_and_bumps_version_low(tsys: System) -> None:
    """main.c:214-225,386-400: no RMGR or kernel call; version_low + 1."""
    a, _ = tsys.modules
    before = _tables(tsys)
    got = _check_step(tsys, a, ts.Allocate())
    assert got.task == task_id(10, 1)
    assert _tables(tsys) == before
    again = _check_step(tsys, a, ts.Allocate(taskno=10))
    assert again.error is ErrorCode.ENOTASK
    assert _check_step(tsys, a, ts.Allocate(taskno=12)).task == task_id(12, 1)
    assert _check_step(tsys, a, ts.Allocate(taskno=3)).error is ErrorCode.ENOTASK


def test_version_low_wraps_at_1024() -> None:
    """main.c:208,224: only the 10-bit version_low is incremented."""
    assert ts.next_id(task_id(10, 1023)) == task_id(10, 0)
    assert ts.next_id(task_id(10, 1024 + 1023)) == task_id(10, 1024)
    assert ts.next_id(task_id(10, 5)) == task_id(10, 6)


def test_no_free_number_is_enotask() -> None:
    """main.c:217-218,395-396: -L4_ENOTASK."""
    ks, rs, tstate = spec_world(managed=1)
    ks, rs, tstate, _ = ts.step(ks, rs, tstate, task_id(6), ts.Allocate())
    *_, reply = ts.step(ks, rs, tstate, task_id(6), ts.Allocate())
    assert reply.error is ErrorCode.ENOTASK


def test_allocate2_makes_the_client_chief(tsys: System) -> None:
    """main.c:417-436: get_task, then l4_task_new(id, client)."""
    a, _ = tsys.modules
    got = _check_step(tsys, a, ts.AllocateChief())
    ks, rs = _tables(tsys)
    assert ks.chief_of(10) == a.task and not ks.is_active(10)
    # The kernel keeps no version for an inactive number: only the number is checked.
    assert ks.tasks[10].id.task == got.task.task and rs.owners[10] == FIRST_USER_TASK


def test_allocate2_refused_by_rmgr_keeps_the_number_used(tsys: System) -> None:
    """main.c:417-424: task_alloc first; a failed get_task leaves the number owned."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.AllocateChief())
    _check_step(tsys, a, ts.Free(task=got.task))  # a stays chief (free is local)
    refused = _check_step(tsys, b, ts.AllocateChief())
    assert refused.error is ErrorCode.ENOTASK
    rec = _as_triple(tsys)[2].record(10)
    assert rec is not None and rec.used and rec.owner == b.task


# -- create (main.c:505-567) ---------------------------------------------------------------


def test_create_checks_owner_and_whole_id_then_rmgr_creates(tsys: System) -> None:
    """main.c:521-544: owner and exact id (-L4_EINVAL); RMGR's task_new; no running check."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    create = ts.Create(task=got.task, eip=EIP_CLIENT, pager=a)
    assert _check_step(tsys, b, create).error is ErrorCode.EINVAL
    stale = ts.Create(task=got.task.with_version(7), eip=EIP_CLIENT, pager=a)
    assert _check_step(tsys, a, stale).error is ErrorCode.EINVAL
    assert _check_step(tsys, a, create).error is ErrorCode.OK
    ks, _ = _tables(tsys)
    assert ks.is_active(10) and ks.chief_of(10) == RMGR_TASK
    assert _check_step(tsys, a, create).error is ErrorCode.OK  # RMGR re-creates it


def test_create_of_a_terminating_task_is_eused() -> None:
    """main.c:533-538: -L4_EUSED while the terminating bit is set."""
    ks, rs, tstate = spec_world()
    tstate = attrs.evolve(tstate, events=True)
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6), ts.AllocateChief())
    # kill sets the bit, then get_task fails (the client is chief): the bit stays.
    ks, rs, tstate, killed = ts.step(ks, rs, tstate, task_id(6), ts.Kill(task=got.task))
    assert killed.error is ErrorCode.EUNKNOWN
    rec = tstate.record(10)
    assert rec is not None and rec.terminating
    *_, reply = ts.step(ks, rs, tstate, task_id(6), ts.Create(task=got.task, pager=task_id(6)))
    assert reply.error is ErrorCode.EUSED


# -- free / free2 (main.c:228-245, 447-470) -------------------------------------------------


def test_free_acts_on_the_number_and_leaves_a_running_task_running(tsys: System) -> None:
    """main.c:228-245,451: by number, any version; the kernel and RMGR untouched."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    assert _check_step(tsys, b, ts.Free(task=got.task)).error is ErrorCode.ENOTOWNER
    assert _check_step(tsys, a, ts.Free(task=got.task.with_version(99))).error is ErrorCode.OK
    ks, _ = _tables(tsys)
    assert ks.is_active(10)
    assert _check_step(tsys, a, ts.Free(task=got.task)).error is ErrorCode.ENOTOWNER
    assert _check_step(tsys, a, ts.Free(task=task_id(9))).error is ErrorCode.ENOTFOUND


def test_free2_hands_the_chief_right_to_rmgr_before_the_owner_check(tsys: System) -> None:
    """main.c:462-470: l4_task_new(id, RMGR) first, result ignored, then task_free."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.AllocateChief())
    tsys.syscall(a, kernel.TaskNew(dest=got.task, mcp_or_new_chief=tsys.task_server))
    refused = _check_step(tsys, b, ts.Free2(task=got.task))
    assert refused.error is ErrorCode.ENOTOWNER
    ks, _ = _tables(tsys)
    assert ks.chief_of(10) == RMGR_TASK
    assert _check_step(tsys, a, ts.Free2(task=got.task)).error is ErrorCode.OK


# -- kill (main.c:297-357, 578-594) ---------------------------------------------------------


def test_kill_deletes_through_rmgr_with_the_passed_version(tsys: System) -> None:
    """main.c:332-338: get_task, then l4_task_new(passed id, RMGR); the number stays owned.
    The passed version acts on the current incarnation and reaches no table (the kernel
    keeps the deleted incarnation's version)."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    assert _check_step(tsys, b, ts.Kill(task=got.task)).error is ErrorCode.ENOTOWNER
    assert _check_step(tsys, a, ts.Kill(task=got.task.with_version(5))).error is ErrorCode.OK
    ks, _ = _tables(tsys)
    assert not ks.is_active(10) and ks.chief_of(10) == RMGR_TASK
    assert ks.tasks[10].version == got.task.version
    rec = _as_triple(tsys)[2].record(10)
    assert rec is not None and rec.used and rec.owner == a.task
    killed = _check_step(tsys, a, ts.Kill(task=got.task, options=ts.KillOption.FREE))
    assert killed.error is ErrorCode.OK
    assert _as_triple(tsys)[2].owned_by(a.task) == ()


def test_kill_refusals(tsys: System) -> None:
    """main.c:302-311,332-336: -L4_ENOTFOUND out of range, -L4_EUNKNOWN unused or when
    RMGR is not the chief (an allocate2 task)."""
    a, _ = tsys.modules
    assert _check_step(tsys, a, ts.Kill(task=task_id(8))).error is ErrorCode.ENOTFOUND
    assert _check_step(tsys, a, ts.Kill(task=task_id(10))).error is ErrorCode.EUNKNOWN
    got = _check_step(tsys, a, ts.AllocateChief())
    assert _check_step(tsys, a, ts.Kill(task=got.task)).error is ErrorCode.EUNKNOWN


def test_an_ownerless_task_can_be_killed_by_anyone(tsys: System) -> None:
    """main.c:313-317,654-664: owner() to nil, then kill by a stranger."""
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    assert _check_step(tsys, b, ts.Owner(task=got.task)).error is ErrorCode.ENOTOWNER
    assert _check_step(tsys, a, ts.Owner(task=got.task)).error is ErrorCode.OK
    assert _check_step(tsys, b, ts.Kill(task=got.task)).error is ErrorCode.OK


def test_kill_with_events_sends_one_exit_event() -> None:
    """main.c:325-327,344-345,712-749 (``-e``); ``NOEV`` sends none."""
    ks, rs, tstate = spec_world()
    tstate = attrs.evolve(tstate, events=True)
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6), ts.Allocate())
    ks, rs, tstate, _ = ts.step(ks, rs, tstate, task_id(6), ts.Kill(task=got.task))
    assert tstate.exit_events == 1
    kill = ts.Kill(task=got.task, options=ts.KillOption.NOEV)
    ks, rs, tstate, _ = ts.step(ks, rs, tstate, task_id(6), kill)
    assert tstate.exit_events == 1


def test_master_and_anykill() -> None:
    """main.c:313-315: ``-a`` and ``-m`` pass the owner check."""
    ks, rs, tstate = spec_world()
    ks, rs, tstate, got = ts.step(ks, rs, tstate, task_id(6), ts.Allocate())
    for books in (attrs.evolve(tstate, master=7), attrs.evolve(tstate, anykill=True)):
        *_, reply = ts.step(ks, rs, books, task_id(7), ts.Kill(task=got.task))
        assert reply.error is ErrorCode.OK


# -- kill_recursive / exit (main.c:359-377, 603-644) ----------------------------------------


def test_exit_of_a_managed_task_reclaims_what_it_owns(tsys: System) -> None:
    """main.c:619,367-374: kill(me, FREE), then every used number I own."""
    a, _ = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    child = got.task
    grand = _check_step(tsys, child, ts.Allocate())
    _check_step(tsys, child, ts.AllocateChief())
    _check_step(tsys, child, ts.Create(task=grand.task, eip=EIP_CLIENT, pager=child))
    assert _check_step(tsys, a, ts.KillRecursive(task=child)).error is ErrorCode.OK
    tstate = _as_triple(tsys)[2]
    assert tstate.owned_by(child.task) == () or tstate.owned_by(child.task) == (12,)
    ks, _ = _tables(tsys)
    assert not ks.is_active(10) and not ks.is_active(11)


def test_exit_of_an_unmanaged_client_reclaims_nothing(tsys: System) -> None:
    """main.c:300-304,619: a client below TASK_FIRST gets -L4_ENOTFOUND; nothing freed."""
    a, _ = tsys.modules
    _check_step(tsys, a, ts.Allocate())
    assert _check_step(tsys, a, ts.Exit()).error is ErrorCode.ENOTFOUND
    assert _as_triple(tsys)[2].owned_by(a.task) == (10,)


def test_kill_recursive_follows_a_chain_as_deep_as_the_numbers_allow() -> None:
    """main.c:370-374 recurses; the model's loop does not: a chain through every managed
    number is reclaimed under a recursion limit far below its depth."""
    count = ts.TASK_CNT_MAX
    ks, rs, tstate = spec_world(managed=count, task_count=count)
    numbers = [r.number for r in tstate.records]
    assert len(numbers) == ts.TASK_CNT_MAX - ts.TASK_FIRST
    for _ in numbers:
        ks, rs, tstate, _r = ts.step(ks, rs, tstate, task_id(6), ts.Allocate())
    # 10 owned by 6, 11 by 10, 12 by 11, ...: a chain of owners.
    for prev, n in itertools.pairwise(numbers):
        ks, rs, tstate, reply = ts.step(
            ks, rs, tstate, task_id(6), ts.Owner(task=task_id(n), owner=task_id(prev))
        )
        assert reply.error is ErrorCode.OK
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        ks, rs, tstate, reply = ts.step(
            ks, rs, tstate, task_id(6), ts.KillRecursive(task=task_id(10, 1))
        )
    finally:
        sys.setrecursionlimit(limit)
    assert reply.error is ErrorCode.OK
    assert all(not r.used for r in tstate.records)


def test_actor_reclaims_a_chain_without_recursion(tsys: System) -> None:
    """The actor's loop (main.c:370-374) over a chain through every managed number."""
    a, _ = tsys.modules
    ids = [_check_step(tsys, a, ts.Allocate()).task for _ in MANAGED]
    for prev, tid in itertools.pairwise(ids):
        _check_step(tsys, a, ts.Owner(task=tid, owner=prev))
    assert _check_step(tsys, a, ts.KillRecursive(task=ids[0])).error is ErrorCode.OK
    assert all(not r.used for r in _as_triple(tsys)[2].records)


# -- a whole life ---------------------------------------------------------------------------


def test_actor_follows_the_spec_through_a_whole_life(tsys: System) -> None:
    a, b = tsys.modules
    got = _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, b, ts.Create(task=got.task, eip=EIP_CLIENT, pager=b))
    _check_step(tsys, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
    _check_step(tsys, b, ts.Owner(task=got.task, owner=a))
    chief = _check_step(tsys, b, ts.AllocateChief())
    _check_step(tsys, b, ts.Free2(task=chief.task))
    _check_step(tsys, b, ts.Kill(task=got.task))
    _check_step(tsys, a, ts.Kill(task=got.task, options=ts.KillOption.NOEV))
    _check_step(tsys, a, ts.Free(task=got.task))
    _check_step(tsys, a, ts.Allocate())
    _check_step(tsys, b, ts.Exit())
    _check_step(tsys, a, ts.KillRecursive(task=chief.task))
    _check_step(tsys, a, ts.Exit())


# -- recovery (not in the sources: the model's rule, protocols.task_server.recover) ------


def test_a_restarted_task_server_rebuilds_the_books_the_spec_says() -> None:
    from actors.system import BootConfig, System
    from tests.fault_machine import FAULT_IMAGES, restart_task_server

    config = BootConfig(
        task_count=TASKS, modules=(EIP_CLIENT,) * 2, task_server=True, managed=TASKS, timeout=5.0
    )
    system = System(config)
    system.runtime.images.update(FAULT_IMAGES)
    with system.start() as s:
        a, b = s.modules
        got = _check_step(s, a, ts.Allocate())
        _check_step(s, a, ts.Create(task=got.task, eip=EIP_CLIENT, pager=a))
        _check_step(s, b, ts.AllocateChief())
        _check_step(s, b, ts.Allocate())  # reserved, not running: taken back
        before = _as_triple(s)
        ks, rs, books = before
        last = {r.number: r.id for r in books.records}
        restart_task_server(s)
        want = ts.recover(ks, rs, books.me, TASKS, last)
        after = _as_triple(s)
        assert after == want
        rec10, rec11, rec12 = (after[2].record(n) for n in (10, 11, 12))
        assert rec10 is not None and rec10.owner == a.task
        assert rec11 is not None and rec11.owner == b.task and rec11.state is TaskState.CHIEF
        assert rec12 is not None and not rec12.used
