"""The rules of ``l4_task_new`` (REFERENCE.md section 2), for the spec and the kernel actor.

Each test is one rule; each runs against both backends (see ``tests/backends.py``).
"""

from __future__ import annotations

import pytest

from actors import EIP_CLIENT
from protocols import kernel
from protocols.ids import (
    FIRST_USER_TASK,
    KERNEL_TASK,
    NIL_ID,
    RMGR_TASK,
    SIGMA0_TASK,
    ThreadId,
    task_id,
)
from protocols.invariants import task_new_succeeds_only_for_the_chief
from protocols.rmgr import GetTask
from tests.backends import TASKS, Backend

SIGMA0 = task_id(SIGMA0_TASK)


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
    assert (entry.active, entry.chief, entry.version) == (False, a.task, 3)


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
        kernel.TaskNew(dest=ThreadId(10, 1, 0), mcp_or_new_chief=10, pager=SIGMA0),
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
