"""The rules of RMGR's task calls (roottask at e91a37df), for the spec and the actor.

Each test names its source lines (``osfree-project/l4env
l4/pkg/roottask/server/src/...``) and runs against both backends; where an edition
changes a rule, in both editions.
"""

from __future__ import annotations

import pytest

from actors import EIP_CLIENT
from protocols import kernel
from protocols.editions import EDITIONS
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.rmgr import (
    FREE,
    RESERVED,
    FreeTask,
    FreeTaskAll,
    GetTask,
    RmgrTaskNew,
    SetPrio,
    SetTaskId,
)
from tests.backends import TASKS, Backend, backend_for

RMGR = task_id(RMGR_TASK)
SIGMA0 = task_id(SIGMA0_TASK)
BOTH = pytest.mark.parametrize("name", ["l4env-2007", "hardened"])


@pytest.fixture(params=["spec", "actors"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def give_back(backend: Backend, client: ThreadId, number: int) -> None:
    """The chief hands the chief right of an inactive task back to RMGR."""
    reply = backend.syscall(client, kernel.TaskNew(dest=task_id(number), mcp_or_new_chief=RMGR))
    assert not reply.task.is_nil


def start(dest: ThreadId, mcp: int = 100) -> RmgrTaskNew:
    return RmgrTaskNew(dest=dest, mcp_or_chief=mcp, eip=EIP_CLIENT, pager=SIGMA0)


def test_get_task_reserves_it_and_makes_the_caller_chief(backend: Backend) -> None:
    """rmgr.c@e91a37df:118-126: the kernel is passed the caller's id, number replaced."""
    a = backend.clients[0]
    reply = backend.rmgr(a, GetTask(number=10))
    assert reply.error is ErrorCode.OK and reply.task == task_id(10, 0)
    snap = backend.snapshot()
    assert snap.rmgr.owners[10] == a.task
    assert (snap.kernel.tasks[10].chief, snap.kernel.tasks[10].active) == (a.task, False)


@pytest.mark.parametrize("number", [-1, TASKS, 2047])
def test_get_task_outside_the_table_is_einval(backend: Backend, number: int) -> None:
    """rmgr.c@e91a37df:115-116 (num >= RMGR_TASK_MAX answers 1)."""
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[0], GetTask(number=number)).error is ErrorCode.EINVAL
    assert backend.snapshot() == before


@pytest.mark.parametrize("number", [0, 2, 4])
def test_the_boot_numbers_are_reserved(backend: Backend, number: int) -> None:
    """task.c@e91a37df:20-24, init.c@e91a37df:521: 0..4 stay O_RESERVED."""
    before = backend.snapshot()
    assert before.rmgr.owners[number] == RESERVED
    assert backend.rmgr(backend.clients[0], GetTask(number=number)).error is ErrorCode.EUSED
    assert backend.snapshot() == before


def test_get_task_held_by_another_is_eused(backend: Backend) -> None:
    """task.c@e91a37df:39-42."""
    a, b, _ = backend.clients
    backend.rmgr(a, GetTask(number=10))
    before = backend.snapshot()
    assert backend.rmgr(b, GetTask(number=10)).error is ErrorCode.EUSED
    assert backend.rmgr(b, GetTask(number=a.task)).error is ErrorCode.EUSED  # a boot module
    assert backend.snapshot() == before


def test_the_quota_is_cumulative_and_per_holder(kind: str) -> None:
    """quota.c@e91a37df:230-238, 266-269, 72-76: freeing never gives quota back."""
    with backend_for(kind, quota=1) as backend:
        a, b, _ = backend.clients
        assert backend.rmgr(a, GetTask(number=10)).error is ErrorCode.OK
        before = backend.snapshot()
        assert backend.rmgr(a, GetTask(number=11)).error is ErrorCode.EQUOTA
        assert backend.rmgr(a, start(task_id(11))).error is ErrorCode.EQUOTA
        assert backend.snapshot() == before
        assert backend.rmgr(a, GetTask(number=10)).error is not ErrorCode.EQUOTA  # held
        assert backend.rmgr(b, GetTask(number=11)).error is ErrorCode.OK  # b's own quota
        give_back(backend, b, 11)
        assert backend.rmgr(b, FreeTask(number=11)).error is ErrorCode.OK
        assert backend.rmgr(b, GetTask(number=11)).error is ErrorCode.EQUOTA  # spent for good


def test_get_task_again_by_the_owner_reclaims_a_task_rmgr_created(backend: Backend) -> None:
    """rmgr.c@e91a37df:118-126 with task.c:39-40 (a holder may get its number again)."""
    a = backend.clients[0]
    assert backend.rmgr(a, start(task_id(10, 1))).error is ErrorCode.OK
    assert backend.alive(task_id(10, 1))
    reply = backend.rmgr(a, GetTask(number=10))
    assert reply.error is ErrorCode.OK
    entry = backend.snapshot().kernel.tasks[10]
    assert (entry.active, entry.chief) == (False, a.task)
    assert not backend.alive(task_id(10, 1))


@BOTH
def test_a_refused_get_task_releases_the_number(kind: str, name: str) -> None:
    """rmgr.c@e91a37df:126-132: the kernel refuses (the caller is chief), RMGR calls
    task_free: l4env-2007 loses a number the caller held (RMGR_REFUSAL_RELEASES_HELD_NUMBER)."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a = backend.clients[0]
        backend.rmgr(a, GetTask(number=10))
        before = backend.snapshot()
        assert backend.rmgr(a, GetTask(number=10)).error is ErrorCode.ENOTCHIEF
        after = backend.snapshot()
        assert after.kernel == before.kernel and after.kernel.chief_of(10) == a.task
        assert after.rmgr.owners[10] == (a.task if name == "hardened" else FREE)


@BOTH
def test_free_task(kind: str, name: str) -> None:
    """rmgr.c@e91a37df:289-306: books only; the chief keeps its right (l4env-2007).
    hardened (FREE_TASK_LEAVES_CHIEF) needs RMGR to be chief again and takes it back."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a = backend.clients[0]
        backend.rmgr(a, GetTask(number=10))
        before = backend.snapshot()
        reply = backend.rmgr(a, FreeTask(number=10))
        if name == "hardened":
            assert reply.error is ErrorCode.ENOTCHIEF and backend.snapshot() == before
            give_back(backend, a, 10)
            assert backend.rmgr(a, FreeTask(number=10)).error is ErrorCode.OK
        else:
            assert reply.error is ErrorCode.OK
        snap = backend.snapshot()
        assert snap.rmgr.owners[10] == FREE
        assert snap.kernel.chief_of(10) == (RMGR_TASK if name == "hardened" else a.task)


def test_free_task_of_a_running_task_leaves_it_running(backend: Backend) -> None:
    """rmgr.c@e91a37df:289-306 (l4env-2007): no kernel call at all."""
    a = backend.clients[0]
    backend.rmgr(a, start(task_id(10, 1)))
    assert backend.rmgr(a, FreeTask(number=10)).error is ErrorCode.OK
    assert backend.alive(task_id(10, 1)) and backend.snapshot().rmgr.owners[10] == FREE


def test_free_task_by_a_stranger_is_enotowner(backend: Backend) -> None:
    """task.c@e91a37df:52-53."""
    a, b, _ = backend.clients
    backend.rmgr(a, GetTask(number=10))
    before = backend.snapshot()
    assert backend.rmgr(b, FreeTask(number=10)).error is ErrorCode.ENOTOWNER
    assert backend.rmgr(b, FreeTask(number=TASKS + 3)).error is ErrorCode.EINVAL
    assert backend.snapshot() == before


def test_free_task_of_a_free_task_is_a_harmless_no_op(backend: Backend) -> None:
    """task.c@e91a37df:52-60."""
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[1], FreeTask(number=10)).error is ErrorCode.OK
    assert backend.snapshot() == before


@BOTH
def test_free_task_all(kind: str, name: str) -> None:
    """rmgr.c@e91a37df:255-287: anyone may call it (l4env-2007; hardened:
    FREE_TASK_ALL_BY_ANYONE); RMGR must be chief of each, stopping at the first refusal."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a, b, _ = backend.clients
        backend.rmgr(a, start(task_id(10, 1)))  # RMGR is chief
        backend.rmgr(a, start(task_id(11, 1)))
        before = backend.snapshot()
        by_b = backend.rmgr(b, FreeTaskAll(owner=a.task))
        if name == "hardened":
            assert by_b.error is ErrorCode.ENOTOWNER and backend.snapshot() == before
            by_a = backend.rmgr(a, FreeTaskAll(owner=a.task))
            assert (by_a.error, by_a.count) == (ErrorCode.OK, 2)
        else:
            assert (by_b.error, by_b.count) == (ErrorCode.OK, 2)
        snap = backend.snapshot()
        assert (snap.rmgr.owners[10], snap.rmgr.owners[11]) == (FREE, FREE)
        assert not backend.alive(task_id(10, 1)) and backend.alive(a)


def test_free_task_all_stops_at_the_first_refusal(backend: Backend) -> None:
    """rmgr.c@e91a37df:278-280: a number whose chief is not RMGR ends the loop."""
    a = backend.clients[0]
    backend.rmgr(a, start(task_id(10, 1)))
    backend.rmgr(a, GetTask(number=11))  # a is chief: RMGR is refused here
    backend.rmgr(a, start(task_id(12, 1)))
    reply = backend.rmgr(a, FreeTaskAll(owner=a.task))
    assert (reply.error, reply.count) == (ErrorCode.ENOTCHIEF, 1)
    owners = backend.snapshot().rmgr.owners
    assert (owners[10], owners[11], owners[12]) == (FREE, a.task, a.task)
    assert backend.alive(task_id(12, 1))


def test_free_task_all_compares_the_owner_byte_with_the_whole_number(backend: Backend) -> None:
    """rmgr.c@e91a37df:269: owner 0 (O_FREE) matches every free number, which RMGR
    re-news; an owner above 255 matches nothing."""
    a = backend.clients[0]
    before = backend.snapshot()
    reply = backend.rmgr(a, FreeTaskAll(owner=0))
    assert reply.error is ErrorCode.OK and reply.count == before.rmgr.owners.count(FREE)
    assert backend.snapshot() == before
    assert backend.rmgr(a, FreeTaskAll(owner=256 + a.task)).count == 0


def test_task_new_on_behalf_creates_with_rmgr_as_chief(backend: Backend) -> None:
    """rmgr.c@e91a37df:218-252: RMGR's l4_task_new; the reply is dest as passed."""
    a = backend.clients[0]
    reply = backend.rmgr(a, start(task_id(10, 3)))
    assert (reply.error, reply.task) == (ErrorCode.OK, task_id(10, 3))
    snap = backend.snapshot()
    assert snap.rmgr.owners[10] == a.task
    entry = snap.kernel.tasks[10]
    assert (entry.active, entry.chief, entry.version) == (True, RMGR_TASK, 3)
    assert backend.alive(task_id(10, 3))


def test_task_new_resets_the_new_tasks_quota(backend: Backend) -> None:
    """rmgr.c@e91a37df:229-230, 247-248; quota.c@e91a37df:184-194: the new task may
    reserve nothing and has log_mcp 0 until its holder calls set_task_id."""
    a = backend.clients[0]
    backend.rmgr(a, start(task_id(10, 1), mcp=200))
    child = task_id(10, 1)
    assert backend.snapshot().kernel.tasks[10].mcp == 200
    assert backend.rmgr(child, GetTask(number=11)).error is ErrorCode.EQUOTA
    assert backend.rmgr(child, SetPrio(task=child, prio=1)).error is ErrorCode.EINVAL
    assert backend.rmgr(child, SetTaskId(name="x", task=child)).error is ErrorCode.ENOTOWNER
    assert backend.rmgr(a, SetTaskId(name="L4Linux task", task=child)).error is ErrorCode.OK
    assert backend.rmgr(child, GetTask(number=11)).error is ErrorCode.OK


def test_set_prio_has_no_ownership_check(backend: Backend) -> None:
    """rmgr.c@e91a37df:137-163: read the sched params, check the caller's log_mcp, set."""
    a, b, _ = backend.clients
    backend.rmgr(a, start(task_id(10, 1)))
    assert backend.rmgr(b, SetPrio(task=task_id(10, 1), prio=77)).error is ErrorCode.OK
    assert backend.snapshot().kernel.tasks[10].prio == 77
    assert backend.rmgr(b, SetPrio(task=task_id(11, 1), prio=7)).error is ErrorCode.ENOTASK


def test_task_new_with_a_nil_pager_is_refused(backend: Backend) -> None:
    """rmgr.c@e91a37df:221-224: RMGR's task_new cannot delete."""
    a = backend.clients[0]
    backend.rmgr(a, start(task_id(10, 3)))
    before = backend.snapshot()
    assert backend.rmgr(a, RmgrTaskNew(dest=task_id(10, 4))).error is ErrorCode.EINVAL
    assert backend.snapshot() == before and backend.alive(task_id(10, 3))


def test_task_new_on_behalf_of_another_holder_is_eused(backend: Backend) -> None:
    """rmgr.c@e91a37df:223 (task_alloc fails)."""
    a, b, _ = backend.clients
    backend.rmgr(a, start(task_id(10, 3)))
    before = backend.snapshot()
    assert backend.rmgr(b, start(task_id(10, 4))).error is ErrorCode.EUSED
    assert backend.snapshot() == before
    assert backend.alive(task_id(10, 3))


@BOTH
def test_task_new_on_behalf_needs_rmgr_to_be_chief(kind: str, name: str) -> None:
    """rmgr.c@e91a37df:238-245: refused by the kernel, the number is released."""
    with backend_for(kind, EDITIONS[name]) as backend:
        a = backend.clients[0]
        backend.rmgr(a, GetTask(number=10))  # a is chief now
        before = backend.snapshot()
        assert backend.rmgr(a, start(task_id(10, 1))).error is ErrorCode.ENOTCHIEF
        after = backend.snapshot()
        assert after.kernel == before.kernel
        assert after.rmgr.owners[10] == (a.task if name == "hardened" else FREE)


@pytest.mark.parametrize(
    "request_",
    [
        RmgrTaskNew(dest=task_id(TASKS), mcp_or_chief=1, pager=SIGMA0),
        RmgrTaskNew(dest=task_id(10), mcp_or_chief=task_id(6), pager=SIGMA0),
        RmgrTaskNew(dest=task_id(10), mcp_or_chief=1),
    ],
    ids=repr,
)
def test_task_new_on_behalf_with_bad_arguments_is_einval(
    backend: Backend, request_: RmgrTaskNew
) -> None:
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[0], request_).error is ErrorCode.EINVAL
    assert backend.snapshot() == before


def test_the_holder_is_one_byte() -> None:
    """types.h@e91a37df:6, task.c@e91a37df:36-47 (RMGR_OWNER_IS_ONE_BYTE, beyond the
    explorer's bound): tasks 6 and 262 are the same holder to RMGR."""
    from protocols import rmgr
    from tests.backends import SpecBackend

    backend = SpecBackend(task_count=300)
    big = task_id(262, 1)
    backend.ks = kernel.KernelState(
        tasks=tuple(
            kernel.TaskEntry(number=262, chief=RMGR_TASK, active=True, version=1, mcp=255)
            if e.number == 262
            else e
            for e in backend.ks.tasks
        )
    )
    backend.rs = rmgr.RmgrState(
        owners=rmgr.put(backend.rs.owners, 262, RMGR_TASK),
        versions=backend.rs.versions,
        quota=backend.rs.quota,
    )
    six = backend.clients[1]
    assert six.task == 6
    assert backend.rmgr(six, start(task_id(20, 1))).error is ErrorCode.OK
    # 262 holds 20 in RMGR's eyes: it may re-create and free it
    assert backend.rmgr(big, start(task_id(20, 2))).error is ErrorCode.OK
    assert backend.rmgr(big, FreeTask(number=20)).error is ErrorCode.OK
    assert backend.snapshot().rmgr.owners[20] == FREE
