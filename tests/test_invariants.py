"""Each named invariant holds on a real system and names a hand-made violation."""

from __future__ import annotations

import attrs
import pytest

from actors import System, boot
from protocols import invariants as inv
from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import task_id
from protocols.linux import Exit, Fork
from protocols.snapshot import SystemSnapshot

TASKS = 16


def _snap(strategy: str = "chief+cache") -> tuple[System, SystemSnapshot]:
    s = boot(task_count=TASKS, linux=2, strategy=strategy, managed=TASKS, cache_size=2)
    try:
        init = s.init_processes[0]
        child = s.linux_call(init, Fork())
        s.linux_call(init, Fork())
        s.linux_call(child.task, Exit())
        return s, s.snapshot()
    except BaseException:
        s.stop()
        raise


@pytest.fixture(scope="module")
def snap() -> SystemSnapshot:
    """A chief+cache system with one cached task, one running child, two inits."""
    s, sn = _snap()
    s.stop()
    return sn


def _set_task(snap: SystemSnapshot, n: int, **changes: object) -> SystemSnapshot:
    tasks = list(snap.kernel.tasks)
    tasks[n] = attrs.evolve(tasks[n], **changes)
    return attrs.evolve(snap, kernel=kernel.KernelState(tasks=tuple(tasks)))


@pytest.mark.parametrize("strategy", ["classic", "chief", "chief+cache", "merged"])
def test_every_invariant_holds_on_a_booted_system(strategy: str) -> None:
    s, sn = _snap(strategy)
    s.stop()
    inv.check_all(sn)


def test_one_chief_rejects_a_chief_cycle(snap: SystemSnapshot) -> None:
    bad = _set_task(_set_task(snap, 9, chief=10), 10, chief=9)
    assert inv.every_task_has_exactly_one_chief(bad) is not None


def test_one_place_rejects_a_task_in_two_caches(snap: SystemSnapshot) -> None:
    lx0, lx1 = snap.linux
    bad = attrs.evolve(snap, linux=(lx0, attrs.evolve(lx1, cache=lx0.cache)))
    assert inv.every_task_is_in_exactly_one_place(bad) is not None


def test_one_place_rejects_a_free_task_that_someone_else_is_chief_of(
    snap: SystemSnapshot,
) -> None:
    free = snap.rmgr.owners.index(rmgr.FREE)
    assert inv.every_task_is_in_exactly_one_place(_set_task(snap, free, chief=7)) is not None


def test_owner_is_chief_rejects_a_chief_elsewhere(snap: SystemSnapshot) -> None:
    assert snap.task_server is not None
    rec = next(r for r in snap.task_server.records if r.state is ts.TaskState.CHIEF)
    dead = next(e.number for e in snap.kernel.tasks if e.number > 4 and not e.active)
    bad = _set_task(snap, rec.number, chief=dead)
    assert inv.the_owner_of_an_allocate_chief_task_is_its_chief(bad) is not None


def test_owner_is_chief_accepts_a_right_handed_on_to_a_live_task(snap: SystemSnapshot) -> None:
    # restated invariant 4: Fiasco lets the owner give its chief right to any task
    assert snap.task_server is not None
    rec = next(r for r in snap.task_server.records if r.state is ts.TaskState.CHIEF)
    handed = _set_task(snap, rec.number, chief=4)
    assert inv.the_owner_of_an_allocate_chief_task_is_its_chief(handed) is None
    # a dead owner's record is promise 7's to report, not this one's
    owner_dead = _set_task(handed, rec.owner, active=False)
    assert inv.the_owner_of_an_allocate_chief_task_is_its_chief(owner_dead) is None
    assert inv.exit_reclaims_everything(owner_dead) is not None


def test_cache_rejects_an_active_cached_task(snap: SystemSnapshot) -> None:
    (cached,) = snap.linux[0].cache
    bad = _set_task(snap, cached.task, active=True)
    assert inv.cached_tasks_are_inactive_and_the_cachers(bad) is not None


def test_new_version_rejects_a_process_under_a_retired_id(snap: SystemSnapshot) -> None:
    lx = snap.linux[0]
    proc = lx.processes[-1]
    bad = attrs.evolve(snap, linux=(attrs.evolve(lx, retired=lx.retired | {proc.task}),))
    assert inv.reused_tasks_get_a_new_version(bad) is not None


def test_reclaim_rejects_a_task_of_a_dead_owner(snap: SystemSnapshot) -> None:
    lx = snap.linux[1]
    assert inv.exit_reclaims_everything(_set_task(snap, lx.me, active=False)) is not None


def test_task_new_rule_rejects_a_non_chief_success(snap: SystemSnapshot) -> None:
    dest = next(t.number for t in snap.kernel.tasks if t.number >= 10 and t.chief != 7)
    req = kernel.TaskNew(dest=task_id(dest), mcp_or_new_chief=task_id(7))
    ok = kernel.TaskNewReply(task=task_id(dest))
    detail = inv.task_new_succeeds_only_for_the_chief(
        snap.kernel, task_id(7, 1), req, ok, snap.kernel
    )
    assert detail is not None


def test_owner_rule_rejects_a_stranger_freeing(snap: SystemSnapshot) -> None:
    assert snap.task_server is not None
    rec = next(r for r in snap.task_server.records if r.owner != ts.NO_OWNER)
    stranger = task_id(rec.owner + 1)
    reply = ts.TsReply(error=ErrorCode.OK)
    assert inv.only_the_owner_kills_or_frees(snap, stranger, ts.Free(task=rec.id), reply)
    assert (
        inv.only_the_owner_kills_or_frees(snap, task_id(rec.owner), ts.Free(task=rec.id), reply)
        is None
    )


def test_tasks_of_lists_what_each_l4linux_holds(snap: SystemSnapshot) -> None:
    lx = snap.linux[0]
    running = {p.task.task for p in lx.processes if p.state.value == "running"}
    assert set(snap.tasks_of(lx.me)) == running | {t.task for t in lx.cache}
