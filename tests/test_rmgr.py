"""The rules of the RMGR task protocol (REFERENCE.md section 3), for the spec and the actor."""

from __future__ import annotations

import pytest

from actors import EIP_CLIENT
from protocols import kernel
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.rmgr import FREE, FreeTask, FreeTaskAll, GetTask, RmgrTaskNew
from tests.backends import TASKS, ActorBackend, Backend, SpecBackend, actor_system

RMGR = task_id(RMGR_TASK)
SIGMA0 = task_id(SIGMA0_TASK)


def give_back(backend: Backend, client: ThreadId, number: int) -> None:
    """The chief hands the chief right of an inactive task back to RMGR."""
    reply = backend.syscall(client, kernel.TaskNew(dest=task_id(number), mcp_or_new_chief=RMGR))
    assert not reply.task.is_nil


def start(dest: ThreadId) -> RmgrTaskNew:
    return RmgrTaskNew(dest=dest, mcp_or_chief=100, eip=EIP_CLIENT, pager=SIGMA0)


def test_get_task_reserves_it_and_makes_the_caller_chief(backend: Backend) -> None:
    a = backend.clients[0]
    reply = backend.rmgr(a, GetTask(number=10))
    assert reply.error is ErrorCode.OK and reply.task.task == 10
    snap = backend.snapshot()
    assert snap.rmgr.owners[10] == a.task
    assert (snap.kernel.tasks[10].chief, snap.kernel.tasks[10].active) == (a.task, False)


@pytest.mark.parametrize("number", [0, 2, 4, TASKS, 2047])
def test_get_task_outside_what_rmgr_manages_is_einval(backend: Backend, number: int) -> None:
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[0], GetTask(number=number)).error is ErrorCode.EINVAL
    assert backend.snapshot() == before


def test_get_task_held_by_another_is_eused(backend: Backend) -> None:
    a, b, _ = backend.clients
    backend.rmgr(a, GetTask(number=10))
    before = backend.snapshot()
    assert backend.rmgr(b, GetTask(number=10)).error is ErrorCode.EUSED
    assert backend.rmgr(b, GetTask(number=a.task)).error is ErrorCode.EUSED  # a boot module
    assert backend.snapshot() == before


@pytest.mark.parametrize("kind", ["spec", "actors"])
def test_quota_limits_what_one_client_holds(kind: str) -> None:
    def check(backend: Backend) -> None:
        a, b, _ = backend.clients
        assert backend.rmgr(a, GetTask(number=10)).error is ErrorCode.OK
        before = backend.snapshot()
        assert backend.rmgr(a, GetTask(number=11)).error is ErrorCode.EQUOTA
        assert backend.rmgr(a, start(task_id(11))).error is ErrorCode.EQUOTA
        assert backend.snapshot() == before
        assert backend.rmgr(b, GetTask(number=11)).error is ErrorCode.OK  # quota is per client

    # quota 1: one task per client
    if kind == "spec":
        check(SpecBackend(quota=1))
    else:
        with actor_system(quota=1) as system:
            check(ActorBackend(system))


def test_get_task_again_by_the_owner_reclaims_a_task_rmgr_created(backend: Backend) -> None:
    a = backend.clients[0]
    assert backend.rmgr(a, start(task_id(10, 1))).error is ErrorCode.OK
    assert backend.alive(task_id(10, 1))
    reply = backend.rmgr(a, GetTask(number=10))
    assert reply.error is ErrorCode.OK
    entry = backend.snapshot().kernel.tasks[10]
    assert (entry.active, entry.chief) == (False, a.task)
    assert not backend.alive(task_id(10, 1))


def test_get_task_again_while_the_caller_is_chief_is_refused(backend: Backend) -> None:
    a = backend.clients[0]
    backend.rmgr(a, GetTask(number=10))
    before = backend.snapshot()
    assert backend.rmgr(a, GetTask(number=10)).error is ErrorCode.ENOTCHIEF
    assert backend.snapshot() == before


def test_free_task_takes_it_back_once_rmgr_is_chief_again(backend: Backend) -> None:
    a = backend.clients[0]
    backend.rmgr(a, GetTask(number=10))
    give_back(backend, a, 10)
    assert backend.rmgr(a, FreeTask(number=10)).error is ErrorCode.OK
    snap = backend.snapshot()
    assert snap.rmgr.owners[10] == FREE and snap.kernel.tasks[10].chief == RMGR_TASK


def test_free_task_while_the_owner_still_holds_the_chief_right_changes_nothing(
    backend: Backend,
) -> None:
    a = backend.clients[0]
    backend.rmgr(a, GetTask(number=10))
    before = backend.snapshot()
    assert backend.rmgr(a, FreeTask(number=10)).error is ErrorCode.ENOTCHIEF
    assert backend.snapshot() == before


def test_free_task_by_a_stranger_is_enotowner(backend: Backend) -> None:
    a, b, _ = backend.clients
    backend.rmgr(a, GetTask(number=10))
    give_back(backend, a, 10)
    before = backend.snapshot()
    assert backend.rmgr(b, FreeTask(number=10)).error is ErrorCode.ENOTOWNER
    assert backend.rmgr(b, FreeTask(number=TASKS + 3)).error is ErrorCode.EINVAL
    assert backend.snapshot() == before


def test_free_task_of_a_free_task_is_a_harmless_no_op(backend: Backend) -> None:
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[1], FreeTask(number=10)).error is ErrorCode.OK
    assert backend.snapshot() == before


def test_free_task_all_frees_what_rmgr_can_take_back(backend: Backend) -> None:
    a, b, _ = backend.clients
    backend.rmgr(a, GetTask(number=10))
    give_back(backend, a, 10)
    backend.rmgr(a, start(task_id(11, 1)))  # RMGR is chief: can take it back
    backend.rmgr(a, GetTask(number=12))  # a holds the chief right: stays
    before = backend.snapshot()
    assert backend.rmgr(b, FreeTaskAll(owner=a.task)).error is ErrorCode.ENOTOWNER
    assert backend.rmgr(b, FreeTaskAll(owner=-1)).error is ErrorCode.EINVAL
    assert backend.rmgr(a, FreeTaskAll(owner=RMGR_TASK)).error is ErrorCode.EINVAL
    assert backend.snapshot() == before
    reply = backend.rmgr(a, FreeTaskAll(owner=a.task))
    assert (reply.error, reply.count) == (ErrorCode.OK, 2)
    assert backend.alive(a)
    owners = backend.snapshot().rmgr.owners
    assert (owners[10], owners[11], owners[12]) == (FREE, FREE, a.task)
    assert not backend.alive(task_id(11, 1))


def test_task_new_on_behalf_creates_with_rmgr_as_chief(backend: Backend) -> None:
    a = backend.clients[0]
    reply = backend.rmgr(a, start(task_id(10, 3)))
    assert (reply.error, reply.task) == (ErrorCode.OK, task_id(10, 3))
    snap = backend.snapshot()
    assert snap.rmgr.owners[10] == a.task
    entry = snap.kernel.tasks[10]
    assert (entry.active, entry.chief, entry.version) == (True, RMGR_TASK, 3)
    assert backend.alive(task_id(10, 3))


def test_task_new_on_behalf_with_a_nil_pager_deletes(backend: Backend) -> None:
    a = backend.clients[0]
    backend.rmgr(a, start(task_id(10, 3)))
    assert backend.rmgr(a, RmgrTaskNew(dest=task_id(10, 4))).error is ErrorCode.OK
    snap = backend.snapshot()
    entry = snap.kernel.tasks[10]
    assert (entry.active, entry.chief, snap.rmgr.owners[10]) == (False, RMGR_TASK, a.task)
    assert not backend.alive(task_id(10, 3))


def test_task_new_on_behalf_of_a_stranger_is_enotowner(backend: Backend) -> None:
    a, b, _ = backend.clients
    backend.rmgr(a, start(task_id(10, 3)))
    before = backend.snapshot()
    assert backend.rmgr(b, RmgrTaskNew(dest=task_id(10, 4))).error is ErrorCode.ENOTOWNER
    assert backend.rmgr(b, start(task_id(10, 4))).error is ErrorCode.ENOTOWNER
    assert backend.snapshot() == before
    assert backend.alive(task_id(10, 3))


def test_task_new_on_behalf_needs_rmgr_to_be_chief(backend: Backend) -> None:
    a = backend.clients[0]
    backend.rmgr(a, GetTask(number=10))  # a is chief now
    before = backend.snapshot()
    assert backend.rmgr(a, start(task_id(10, 1))).error is ErrorCode.ENOTCHIEF
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    "request_",
    [
        RmgrTaskNew(dest=ThreadId(10, 2, 0), mcp_or_chief=1, pager=SIGMA0),
        RmgrTaskNew(dest=task_id(3), mcp_or_chief=1, pager=SIGMA0),
        RmgrTaskNew(dest=task_id(10), mcp_or_chief=task_id(6), pager=SIGMA0),
    ],
    ids=repr,
)
def test_task_new_on_behalf_with_bad_arguments_is_einval(
    backend: Backend, request_: RmgrTaskNew
) -> None:
    before = backend.snapshot()
    assert backend.rmgr(backend.clients[0], request_).error is ErrorCode.EINVAL
    assert backend.snapshot() == before
