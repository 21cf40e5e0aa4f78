"""The rules of ``l4_task_new`` (Fiasco at e91a37df), for the spec and the kernel actor.

Each test is one rule and names its source lines (``osfree-project/l4env
kernel/fiasco/src/kern/...``); each runs against both backends (``tests/backends.py``),
the edition-dependent ones in both editions.
"""

from __future__ import annotations

import pytest

from actors import EIP_CLIENT
from actors._runtime import Runtime
from actors.kernel import KernelActor
from protocols import kernel, rmgr
from protocols.editions import EDITIONS
from protocols.ids import (
    FIRST_USER_TASK,
    KERNEL_TASK,
    NIL_ID,
    RMGR_TASK,
    SIGMA0_TASK,
    TASK_COUNT,
    ThreadId,
    task_id,
)
from protocols.invariants import (
    every_task_has_exactly_one_chief,
    task_new_succeeds_only_for_the_chief,
)
from protocols.rmgr import GetTask
from protocols.snapshot import SystemSnapshot
from tests.backends import TASKS, Backend, backend_for

SIGMA0 = task_id(SIGMA0_TASK)
RMGR_ID = task_id(RMGR_TASK)
RMGR_BOOKS = rmgr.boot_state(TASK_COUNT)


def create(dest: ThreadId, mcp: int = 100, eip: int = EIP_CLIENT) -> kernel.TaskNew:
    """l4_task_new with a pager: create an active task."""
    return kernel.TaskNew(dest=dest, mcp_or_new_chief=mcp, eip=eip, pager=SIGMA0)


def hand(dest: ThreadId, to: ThreadId) -> kernel.TaskNew:
    """l4_task_new with a nil pager: keep dest inactive and make ``to`` its chief."""
    return kernel.TaskNew(dest=dest, mcp_or_new_chief=to)


def got(backend: Backend, client: ThreadId, number: int) -> None:
    """Let ``client`` get task ``number`` from RMGR (it becomes its chief)."""
    assert backend.rmgr(client, GetTask(number=number)).error.name == "OK"


def test_boot_state_rmgr_is_chief_of_every_task_above_4(backend: Backend) -> None:
    table = backend.snapshot().kernel.tasks
    assert len(table) == TASKS
    for entry in table[:FIRST_USER_TASK]:
        assert entry.chief == KERNEL_TASK
        assert entry.active == (entry.number in (SIGMA0_TASK, RMGR_TASK))
    started = {c.task for c in backend.clients}
    for entry in table[FIRST_USER_TASK:]:
        assert entry.chief == RMGR_TASK
        assert entry.active == (entry.number in started)
    assert backend.alive(SIGMA0) and backend.alive(task_id(RMGR_TASK))


def test_a_non_chief_gets_nil_and_nothing_changes(backend: Backend) -> None:
    a, b, _ = backend.clients
    got(backend, a, 10)
    before = backend.snapshot()
    for request in (create(task_id(10, 1)), hand(task_id(10), b)):
        reply = backend.syscall(b, request)
        assert reply == kernel.TaskNewReply(task=NIL_ID)
        assert backend.snapshot() == before
        verdict = task_new_succeeds_only_for_the_chief(
            before.kernel, b, request, reply, backend.snapshot().kernel
        )
        assert verdict is None


def test_the_chief_creates_an_active_task_with_the_version_of_dest(backend: Backend) -> None:
    a = backend.clients[0]
    got(backend, a, 10)
    reply = backend.syscall(a, create(task_id(10, 7), mcp=100))
    assert reply == kernel.TaskNewReply(task=task_id(10, 7))
    entry = backend.snapshot().kernel.tasks[10]
    assert (entry.active, entry.chief, entry.version, entry.pager) == (True, a.task, 7, SIGMA0)
    assert backend.alive(task_id(10, 7))
    assert not backend.alive(task_id(10, 6))


def test_the_mcp_is_bounded_by_the_creators(backend: Backend) -> None:
    a = backend.clients[0]
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1), mcp=kernel.MAX_MCP))
    child = task_id(10, 1)
    assert backend.snapshot().kernel.tasks[10].mcp == kernel.MAX_MCP
    got(backend, child, 11)  # the child asks RMGR itself
    backend.syscall(child, create(task_id(11, 1), mcp=50))
    got(backend, a, 12)
    backend.syscall(a, create(task_id(12, 1), mcp=40))
    table = backend.snapshot().kernel.tasks
    assert table[11].mcp == 50 and table[12].mcp == 40


def test_mcp_above_the_creators_is_clipped(backend: Backend) -> None:
    a = backend.clients[0]
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1), mcp=30))
    got(backend, task_id(10, 1), 11)
    backend.syscall(task_id(10, 1), create(task_id(11, 1), mcp=200))
    assert backend.snapshot().kernel.tasks[11].mcp == 30


def test_a_nil_pager_transfers_the_inactive_task_to_a_new_chief(backend: Backend) -> None:
    a, b, _ = backend.clients
    got(backend, a, 10)
    reply = backend.syscall(a, hand(task_id(10, 4), b))
    assert reply == kernel.TaskNewReply(task=task_id(10, 4))
    entry = backend.snapshot().kernel.tasks[10]
    assert (entry.active, entry.chief) == (False, b.task)
    # the old chief lost the right, the new one has it
    assert backend.syscall(a, create(task_id(10, 5))).task == NIL_ID
    assert backend.syscall(b, create(task_id(10, 5))).task == task_id(10, 5)


def test_an_active_dest_is_deleted_first(backend: Backend) -> None:
    """syscalls.cpp@e91a37df:671-684; the kernel keeps no version for a dead number."""
    a = backend.clients[0]
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1)))
    assert backend.alive(task_id(10, 1))
    # re-create with a new version: the old incarnation is gone, the new one runs
    backend.syscall(a, create(task_id(10, 2)))
    assert not backend.alive(task_id(10, 1)) and backend.alive(task_id(10, 2))
    # stop it (nil pager, keep it myself): inactive, still my task
    backend.syscall(a, hand(task_id(10, 3), a))
    entry = backend.snapshot().kernel.tasks[10]
    assert not backend.alive(task_id(10, 2))
    assert (entry.active, entry.chief, entry.version) == (False, a.task, 2)


def test_deletion_takes_the_whole_clan_and_the_caller_inherits_it(backend: Backend) -> None:
    a = backend.clients[0]
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1)))
    mid = task_id(10, 1)
    got(backend, mid, 11)
    backend.syscall(mid, create(task_id(11, 1)))
    low = task_id(11, 1)
    got(backend, low, 12)  # inactive, chief is 11
    got(backend, mid, 13)  # inactive, chief is 10
    backend.syscall(a, hand(task_id(10, 2), a))  # delete 10
    table = backend.snapshot().kernel.tasks
    for number in (10, 11, 12, 13):
        assert not table[number].active
    assert [table[n].chief for n in (11, 12, 13)] == [a.task] * 3
    assert not backend.alive(mid) and not backend.alive(low)


@pytest.mark.parametrize(
    "request_",
    [
        kernel.TaskNew(dest=NIL_ID, mcp_or_new_chief=10, pager=SIGMA0),
        kernel.TaskNew(dest=task_id(TASKS), mcp_or_new_chief=10, pager=SIGMA0),
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=10),  # nil pager needs an id
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=NIL_ID),
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=task_id(10)),  # its own chief
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=task_id(TASKS)),
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=task_id(5), pager=SIGMA0),
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=kernel.MAX_MCP + 1, pager=SIGMA0),
        kernel.TaskNew(dest=task_id(10), mcp_or_new_chief=-1, pager=SIGMA0),
    ],
    ids=repr,
)
def test_malformed_calls_are_refused_like_a_non_chief(
    backend: Backend, request_: kernel.TaskNew
) -> None:
    a = backend.clients[0]
    got(backend, a, 10)
    before = backend.snapshot()
    assert backend.syscall(a, request_) == kernel.TaskNewReply(task=NIL_ID)
    assert backend.snapshot() == before


def test_an_inactive_task_cannot_become_a_chief(backend: Backend) -> None:
    """Regression (found by the kernel+RMGR machine): handing two inactive tasks to each
    other made a chief cycle that no running thread could ever break."""
    a, b, _ = backend.clients
    got(backend, a, 8)
    got(backend, b, 9)
    before = backend.snapshot()
    assert backend.syscall(a, hand(task_id(8), task_id(9))).task == NIL_ID
    assert backend.syscall(b, hand(task_id(9), task_id(8))).task == NIL_ID
    assert backend.snapshot() == before


def test_nobody_but_the_kernel_task_is_chief_of_the_boot_tasks(backend: Backend) -> None:
    a = backend.clients[0]
    before = backend.snapshot()
    for number in (1, SIGMA0_TASK, 3, RMGR_TASK):
        assert backend.syscall(a, create(task_id(number, 1))).task == NIL_ID
    assert backend.snapshot() == before
    assert backend.alive(task_id(RMGR_TASK))


def test_nchief_names_same_inner_and_outer_clans(backend: Backend) -> None:
    a, b, _ = backend.clients
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1)))
    same = backend.syscall(a, kernel.NChief(dest=b))
    inner = backend.syscall(a, kernel.NChief(dest=task_id(10, 1)))
    outer = backend.syscall(task_id(10, 1), kernel.NChief(dest=b))
    assert same == kernel.NChiefReply(relation="same", chief=b)
    assert inner == kernel.NChiefReply(relation="inner", chief=task_id(10, 1))
    assert outer == kernel.NChiefReply(relation="outer", chief=a)


@pytest.fixture(params=["spec", "actors"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_lthread_of_dest_is_ignored(backend: Backend) -> None:
    """syscalls.cpp@e91a37df:700-701, 752: the number counts; the task starts lthread 0."""
    a = backend.clients[0]
    got(backend, a, 10)
    reply = backend.syscall(a, create(ThreadId(10, 3, 1)))
    assert reply == kernel.TaskNewReply(task=ThreadId(10, 3, 1))  # dest as passed
    assert backend.alive(task_id(10, 1))
    handed = backend.syscall(a, hand(ThreadId(10, 3, 2), a))
    assert handed == kernel.TaskNewReply(task=task_id(10, 2))  # lthread 0 on hand-over


def test_a_new_task_gets_the_creators_priority(backend: Backend) -> None:
    """syscalls.cpp@e91a37df:759-760: Thread::create with sched()->prio() of the creator."""
    a = backend.clients[0]
    got(backend, a, 10)
    backend.syscall(a, create(task_id(10, 1), mcp=200))
    child = task_id(10, 1)
    assert backend.syscall(a, kernel.ThreadSchedule(dest=child, prio=42)).prio == 0
    got(backend, child, 11)
    backend.syscall(child, create(task_id(11, 1)))
    assert backend.snapshot().kernel.tasks[11].prio == 42


def test_a_task_whose_chief_is_inactive_is_not_reparented(backend: Backend) -> None:
    """space_index.cpp@e91a37df:131-160: only dead children of a *deleted* task move."""
    a, b, _ = backend.clients
    got(backend, a, 10)
    got(backend, a, 11)
    backend.syscall(a, create(task_id(10, 1)))
    mid = task_id(10, 1)
    # 11 is handed to 10 (active), then 10's right over 11 ... 12 is inactive under 11
    assert not backend.syscall(a, hand(task_id(11), mid)).task.is_nil
    got(backend, a, 12)
    assert not backend.syscall(a, hand(task_id(12), b)).task.is_nil
    backend.syscall(a, hand(task_id(10, 2), a))  # delete 10: 11 passes to a
    table = backend.snapshot().kernel.tasks
    assert (table[10].chief, table[11].chief, table[12].chief) == (a.task, a.task, b.task)


@pytest.mark.parametrize("name", ["l4env-2007", "hardened"])
def test_a_hand_over_to_a_task_the_deletion_kills(kind: str, name: str) -> None:
    """syscalls.cpp@e91a37df:671-702: l4env-2007 deletes, then finds no new chief: nil,
    yet the task is gone (TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF); hardened refuses first."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a = backend.clients[0]
        got(backend, a, 10)
        backend.syscall(a, create(task_id(10, 1)))
        before = backend.snapshot()
        request = hand(task_id(10, 1), task_id(10, 1))
        reply = backend.syscall(a, request)
        assert reply == kernel.TaskNewReply(task=NIL_ID)
        after = backend.snapshot()
        verdict = task_new_succeeds_only_for_the_chief(
            before.kernel, a, request, reply, after.kernel
        )
        if name == "hardened":
            assert after == before and verdict is None
            assert backend.alive(task_id(10, 1))
        else:
            assert not backend.alive(task_id(10, 1)) and verdict is not None
            assert (after.kernel.tasks[10].active, after.kernel.tasks[10].chief) == (False, a.task)


def chain(length: int) -> kernel.KernelState:
    """Tasks 5 .. 5+length-1 active, each the chief of the next; 5's chief is RMGR."""
    state = kernel.boot_state(kernel_task_count := FIRST_USER_TASK + length)
    tasks = list(state.tasks)
    for n in range(FIRST_USER_TASK, kernel_task_count):
        chief = RMGR_TASK if n == FIRST_USER_TASK else n - 1
        tasks[n] = kernel.TaskEntry(number=n, chief=chief, active=True, mcp=1, version=1)
    return kernel.KernelState(tasks=tuple(tasks))


def test_the_deepest_chain_of_chiefs_is_deleted_without_recursion() -> None:
    """Task numbers are 11 bits (2048): a chain through every user number still works."""
    state = chain(TASK_COUNT - FIRST_USER_TASK)
    assert state.task_count == TASK_COUNT
    request = hand(task_id(FIRST_USER_TASK, 1), task_id(RMGR_TASK))
    after, reply = kernel.step(state, RMGR_ID, request)
    assert reply == kernel.TaskNewReply(task=task_id(FIRST_USER_TASK, 1))
    assert not any(e.active for e in after.tasks[FIRST_USER_TASK:])
    assert all(e.chief == RMGR_TASK for e in after.tasks[FIRST_USER_TASK:])
    assert kernel.clan_of(state, FIRST_USER_TASK) == tuple(range(FIRST_USER_TASK + 1, TASK_COUNT))
    assert every_task_has_exactly_one_chief(SystemSnapshot(kernel=after, rmgr=RMGR_BOOKS)) is None
    deepest = task_id(TASK_COUNT - 1, 1)
    assert kernel.step(state, deepest, kernel.NChief(dest=task_id(RMGR_TASK)))[1].relation


def test_the_kernel_actor_deletes_the_deepest_chain_without_recursion() -> None:
    """The actor's kill_task walks iteratively too (tables set directly, no threads)."""
    state = chain(TASK_COUNT - FIRST_USER_TASK)
    actor = KernelActor.__new__(KernelActor)
    actor.runtime = Runtime()
    actor.task_count = TASK_COUNT
    actor.chief = [e.chief for e in state.tasks]
    actor.active = [e.active for e in state.tasks]
    for name in ("version", "mcp", "pager", "eip", "esp", "prio"):
        setattr(actor, name, [getattr(e, name) for e in state.tasks])
    reply = actor.task_new(RMGR_TASK, hand(task_id(FIRST_USER_TASK, 1), task_id(RMGR_TASK)))
    assert not reply.task.is_nil
    want, _ = kernel.step(state, RMGR_ID, hand(task_id(FIRST_USER_TASK, 1), task_id(RMGR_TASK)))
    assert actor.snapshot() == want


@pytest.mark.parametrize("name", ["l4env-2007", "hardened"])
def test_a_nil_new_chief_never_exists(kind: str, name: str) -> None:
    """syscalls.cpp@e91a37df:691-695: nil names task 0, whose lookup fails after the
    deletion (l4env-2007) or before it (hardened)."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a = backend.clients[0]
        got(backend, a, 10)
        backend.syscall(a, create(task_id(10, 1)))
        assert backend.syscall(a, hand(task_id(10, 1), NIL_ID)).task == NIL_ID
        assert backend.alive(task_id(10, 1)) == (name == "hardened")
