"""The task server's findings in l4env-2007 and the fixes of hardened, spec and actor.

Each finding is confirmed by ``explore`` (a shortest counterexample in the finding's
bound) and by a plain sequence of requests run against the spec and the actor in both
editions.  Sources: ``osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df``.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest

from actors import EIP_CLIENT, System, boot
from actors.faults import ExitEvent
from protocols import invariants, kernel, rmgr
from protocols import task_server as ts
from protocols.editions import HARDENED, L4ENV_2007, Edition, Fix
from protocols.errors import ErrorCode
from protocols.explore import explore
from protocols.explore_ownership import OwnershipSpace
from protocols.findings import TASK_SERVER_FINDINGS, finding, isolate
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, ThreadId, task_id
from protocols.l4linux import Strategy
from protocols.snapshot import SystemSnapshot

TASKS = 16


def _system(edition: Edition) -> System:
    return boot(
        task_count=TASKS,
        modules=(EIP_CLIENT,) * 2,
        task_server=True,
        managed=TASKS,
        timeout=5.0,
        edition=edition,
    )


@pytest.fixture(params=[L4ENV_2007, HARDENED], ids=str)
def tsys(request: pytest.FixtureRequest) -> Iterator[System]:
    with _system(request.param) as s:
        yield s


def _check(s: System, client: ThreadId, request: ts.TsRequest) -> ts.TsReply:
    """The actor's reply and tables equal the spec's, in the system's edition."""
    before = s.snapshot()
    assert before.task_server is not None and s.task_server is not None
    want_ks, want_rs, want_ts, want = ts.step(
        before.kernel, before.rmgr, before.task_server, client, request, edition=s.config.edition
    )
    got = s.perform(client, s.task_server, request)
    after = s.snapshot()
    assert got == want
    assert (after.kernel, after.rmgr, after.task_server) == (want_ks, want_rs, want_ts)
    assert isinstance(got, ts.TsReply)
    return got


def test_every_task_server_fix_has_its_finding() -> None:
    names = {f.name for f in TASK_SERVER_FINDINGS}
    assert Fix.FREE_LEAVES_CHIEF_WITH_CLIENT.name in names
    # KILL_NEEDS_RMGR_AS_CHIEF is beyond the explorer's bound: shown by the plain tests
    # below (test_kill_recursive_strands_..., test_a_client_that_dies_...).


# -- FREE_LEAVES_CHIEF_WITH_CLIENT (main.c:228-245, 420-436, 447-470) ------------------------


def test_free_of_an_allocate2_task_leaves_the_client_chief(tsys: System) -> None:
    a, _ = tsys.modules
    got = _check(tsys, a, ts.AllocateChief())
    freed = _check(tsys, a, ts.Free(task=got.task))
    chief = tsys.snapshot().kernel.chief_of(got.task.task)
    detail = invariants.every_task_is_in_exactly_one_place(tsys.snapshot())
    if tsys.config.edition.has(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT):
        assert freed.error is ErrorCode.ENOTCHIEF and detail is None
    else:
        assert freed.error is ErrorCode.OK and chief == a.task
        assert detail is not None and "free at the task server" in detail


def test_free2_without_handing_back_the_chief_right(tsys: System) -> None:
    a, _ = tsys.modules
    got = _check(tsys, a, ts.AllocateChief())
    freed = _check(tsys, a, ts.Free2(task=got.task))
    hardened = tsys.config.edition.has(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT)
    assert freed.error is (ErrorCode.ENOTCHIEF if hardened else ErrorCode.OK)
    # Handing the right to the task server first makes free2 work in both editions.
    assert tsys.task_server is not None
    if hardened:
        tsys.syscall(a, kernel.TaskNew(dest=got.task, mcp_or_new_chief=tsys.task_server))
        assert _check(tsys, a, ts.Free2(task=got.task)).error is ErrorCode.OK
    assert tsys.snapshot().kernel.chief_of(got.task.task) == (RMGR_TASK if hardened else a.task)


def test_free_of_an_allocate_task_is_unchanged_by_the_fix(tsys: System) -> None:
    a, _ = tsys.modules
    got = _check(tsys, a, ts.Allocate())
    assert _check(tsys, a, ts.Free(task=got.task)).error is ErrorCode.OK
    assert _check(tsys, a, ts.Free2(task=_check(tsys, a, ts.Allocate()).task)).error is (
        ErrorCode.OK
    )


def test_explore_finds_free_leaves_chief_with_client_in_two_steps() -> None:
    f = finding("FREE_LEAVES_CHIEF_WITH_CLIENT")
    v = isolate(f).violation
    assert v is not None and v.invariant == "every_task_is_in_exactly_one_place"
    assert len(v.steps) == 2
    assert "AllocateChief" in v.steps[0] and "Free" in v.steps[1]


def test_hardened_chief_strategy_keeps_every_promise_at_3_tasks_2_clients() -> None:
    """The task server's part of hardened: every invariant, CHIEF, scripted client."""
    space = OwnershipSpace(
        tasks=3, clients=2, strategy=Strategy.CHIEF, edition=HARDENED, script=True
    )
    result = explore(space, max_depth=6)
    assert result.violation is None


# -- no fix: exit of a client simple_ts does not manage (main.c:300-304, 603-620) -----------


def test_exit_of_an_unmanaged_client_reclaims_nothing_in_both_editions(tsys: System) -> None:
    """A boot module (number below TASK_FIRST) that exits through simple_ts gets
    -L4_ENOTFOUND and keeps everything it owns; its client library then sleeps forever
    (osfree-project/l4env
    l4/pkg/generic_ts/lib/clientlib/exit.c@e91a37df).  The explorer cannot see it: the client is not
    deleted, so no promise about dead owners is broken; no fix."""
    a, _ = tsys.modules
    got = _check(tsys, a, ts.Allocate())
    assert _check(tsys, a, ts.Exit()).error is ErrorCode.ENOTFOUND
    snap = tsys.snapshot()
    assert snap.task_server is not None
    assert snap.task_server.owned_by(a.task) == (got.task.task,)


# -- no fix: defects the bounded explorer cannot reach on this configuration -------------


def _spec_world() -> tuple[kernel.KernelState, rmgr.RmgrState, ts.TsState]:
    ks = kernel.boot_state(TASKS)
    rs = rmgr.boot_state(TASKS, trusted=frozenset({FIRST_USER_TASK}))
    ks, rs, _ = rmgr.start_modules(ks, rs, (1, 2, 3))
    return ts.init(ks, rs, FIRST_USER_TASK, TASKS)


@pytest.mark.parametrize("edition", [L4ENV_2007, HARDENED], ids=str)
def test_kill_recursive_strands_a_number_whose_chief_right_is_at_the_task_server(
    edition: Edition,
) -> None:
    """KILL_NEEDS_RMGR_AS_CHIEF, main.c:332-336,370-374: kill asks RMGR for the task,
    which works only while RMGR is the kernel's chief.  A managed task that got a number
    with allocate2 and handed its chief right to the task server (as free2 asks) is
    killed; the recursion's kill of that number fails with -L4_EUNKNOWN, and the number
    stays owned by the dead task.  In hardened the task server, chief itself, deletes
    it with its own l4_task_new and hands the right to RMGR.  The bounded explorer does
    not reach it (its clients are boot modules, which simple_ts does not manage); the
    fault machine found it when such a client died."""
    ks, rs, books = _spec_world()
    six = task_id(6, ks.tasks[6].version)
    ks, rs, books, got = ts.step(ks, rs, books, six, ts.Allocate(), edition=edition)
    create = ts.Create(task=got.task, eip=EIP_CLIENT, pager=six)
    ks, rs, books, _ = ts.step(ks, rs, books, six, create, edition=edition)
    ks, rs, books, child = ts.step(ks, rs, books, got.task, ts.AllocateChief(), edition=edition)
    ks, _ = kernel.step(
        ks,
        got.task,
        kernel.TaskNew(dest=child.task, mcp_or_new_chief=task_id(FIRST_USER_TASK)),
        edition=edition,
    )
    ks, rs, books, reply = ts.step(
        ks, rs, books, six, ts.KillRecursive(task=got.task), edition=edition
    )
    assert reply.error is ErrorCode.OK and not ks.is_active(got.task.task)
    snap = SystemSnapshot(kernel=ks, rmgr=rs, task_server=books)
    detail = invariants.exit_reclaims_everything(snap)
    if edition.has(Fix.KILL_NEEDS_RMGR_AS_CHIEF):
        assert detail is None and ks.chief_of(child.task.task) == RMGR_TASK
        rec = books.record(child.task.task)
        assert rec is not None and not rec.used
    else:
        assert detail == f"task {child.task.task} still owned by dead task {got.task.task}"


def test_a_client_that_dies_after_handing_back_the_chief_right_is_reclaimed(
    tsys: System,
) -> None:
    """The same defect through the actors: a boot module takes a task with allocate2,
    hands the chief right to the task server (as L4Linux does before free2) and dies;
    the task server's exit event reclaims the task only in hardened."""
    a, _ = tsys.modules
    got = _check(tsys, a, ts.AllocateChief())
    assert tsys.task_server is not None
    handed = tsys.syscall(
        a, kernel.TaskNew(dest=got.task, mcp_or_new_chief=task_id(tsys.task_server.task))
    )
    assert isinstance(handed, kernel.TaskNewReply) and not handed.task.is_nil
    reply = tsys.ref(tsys.task_server).ask(ExitEvent(task=a), timeout=10)
    assert reply.error is ErrorCode.OK
    snap = tsys.snapshot()
    detail = invariants.exit_reclaims_everything(snap)
    if tsys.config.edition.has(Fix.KILL_NEEDS_RMGR_AS_CHIEF):
        assert detail is None
    else:
        assert detail == f"task {got.task.task} still owned by dead task {a.task}"


def test_with_events_a_failed_kill_leaves_the_terminating_bit_set() -> None:
    """main.c:325-336 (``--events``, as some configurations start simple_ts): the bit is
    set before RMGR is asked; when RMGR refuses it is never cleared, so after a free the
    number is free but terminating: create refuses it (-L4_EUSED) for good.  The explorer
    runs simple_ts without ``--events`` (its default), so this is a plain test; no fix."""
    ks, rs, books = _spec_world()
    books = attrs.evolve(books, events=True)
    six = task_id(6, ks.tasks[6].version)
    ks, rs, books, got = ts.step(ks, rs, books, six, ts.AllocateChief())
    ks, rs, books, killed = ts.step(ks, rs, books, six, ts.Kill(task=got.task))
    assert killed.error is ErrorCode.EUNKNOWN
    ks, _ = kernel.step(
        ks, six, kernel.TaskNew(dest=got.task, mcp_or_new_chief=task_id(FIRST_USER_TASK))
    )
    ks, rs, books, freed = ts.step(ks, rs, books, six, ts.Free2(task=got.task), edition=HARDENED)
    assert freed.error is ErrorCode.OK
    snap = SystemSnapshot(kernel=ks, rmgr=rs, task_server=books)
    detail = invariants.every_task_is_in_exactly_one_place(snap)
    assert detail == f"task {got.task.task} is free at the task server but still terminating"


# -- FREE2_MOVES_CHIEF_FOR_ANYONE (main.c:462-470), found by the adversary machine --------


def test_a_strangers_refused_free2_moves_the_chief_right_the_owner_handed_back(
    tsys: System,
) -> None:
    """free2's l4_task_new(id, RMGR) comes before the owner check: a client that handed
    its allocate2 task's chief right to the task server (as free2 asks) has it moved on
    to RMGR by anyone's free2, refused ENOTOWNER, and its own free2 is then ENOTCHIEF.
    In hardened the stranger's free2 is refused before anything moves."""
    a, b = tsys.modules
    assert tsys.task_server is not None
    got = _check(tsys, a, ts.AllocateChief())
    tsys.syscall(a, kernel.TaskNew(dest=got.task, mcp_or_new_chief=tsys.task_server))
    before = tsys.snapshot()
    stranger = _check(tsys, b, ts.Free2(task=got.task))
    assert stranger.error is ErrorCode.ENOTOWNER
    moved = tsys.snapshot().kernel.chief_of(got.task.task)
    if tsys.config.edition.has(Fix.FREE2_MOVES_CHIEF_FOR_ANYONE):
        assert tsys.snapshot() == before  # refused, nothing moved
        assert _check(tsys, a, ts.Free2(task=got.task)).error is ErrorCode.OK
    else:
        assert before.kernel.chief_of(got.task.task) == tsys.task_server.task
        assert moved == RMGR_TASK  # a refused call moved the owner's chief right
