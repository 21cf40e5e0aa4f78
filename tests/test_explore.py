"""protocols.explore: exhaustive BFS over the specs, with symmetry reduction."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from protocols import kernel, l4linux, rmgr
from protocols.editions import HARDENED, Edition, Fix
from protocols.explore import KernelRmgrSpace, explore
from protocols.explore_ownership import OwnershipSpace
from protocols.ids import ThreadId
from protocols.l4linux import Strategy
from protocols.snapshot import SystemSnapshot


def test_small_kernel_rmgr_configurations_are_proved_completely() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=2, edition=HARDENED))
    assert result.violation is None and result.complete
    assert result.states > 100 and result.transitions > result.states and result.depth > 4


def test_symmetry_reduction_merges_interchangeable_clients_and_tasks() -> None:
    class NoSymmetry(KernelRmgrSpace):
        def canonical(self, state):  # type: ignore[no-untyped-def]
            return self._encode(state, {})

    reduced = explore(KernelRmgrSpace(tasks=2, clients=2, edition=HARDENED))
    full = explore(NoSymmetry(tasks=2, clients=2, edition=HARDENED))
    assert full.violation is None and full.complete
    # 2 clients x 2 tasks: at most 2! * 2! = 4 renamings per class of states
    assert reduced.states < full.states <= 4 * reduced.states
    assert reduced.depth == full.depth


def test_a_depth_bound_marks_the_search_incomplete() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=1, edition=HARDENED), max_depth=2)
    assert not result.complete and result.depth == 2 and result.violation is None


def lenient_step(
    state: kernel.KernelState, sender: ThreadId, request: kernel.KernelRequest
) -> tuple[kernel.KernelState, kernel.KernelReply]:
    """A broken kernel: lets a chief hand an inactive task to any task, even an inactive one."""
    if (
        isinstance(request, kernel.TaskNew)
        and request.pager.is_nil
        and isinstance(request.mcp_or_new_chief, ThreadId)
        and request.dest.task < state.task_count
        and state.chief_of(request.dest.task) == sender.task
        and not state.is_active(request.dest.task)
        and request.mcp_or_new_chief.task != request.dest.task
    ):
        tasks = list(state.tasks)
        tasks[request.dest.task] = attrs.evolve(
            tasks[request.dest.task], chief=request.mcp_or_new_chief.task
        )
        return kernel.KernelState(tasks=tuple(tasks)), kernel.TaskNewReply(task=request.dest)
    return kernel.step(state, sender, request, edition=HARDENED)


def test_a_broken_spec_is_caught_with_a_shortest_counterexample() -> None:
    result = explore(
        KernelRmgrSpace(tasks=2, clients=1, kernel_step=lenient_step, edition=HARDENED)
    )
    assert result.violation is not None
    assert result.violation.invariant == "every_task_has_exactly_one_chief"
    assert "cycle" in result.violation.detail
    # get two tasks, make each the other's chief: no shorter way to a cycle exists
    assert len(result.violation.steps) == 4
    assert sum("GetTask" in s for s in result.violation.steps) == 2


def test_a_kernel_without_the_chief_check_breaks_invariant_2_in_one_step() -> None:
    def no_chief_check(state, sender, request):  # type: ignore[no-untyped-def]
        if isinstance(request, kernel.TaskNew):
            state = attrs.evolve(
                state,
                tasks=tuple(
                    attrs.evolve(e, chief=sender.task) if e.number == request.dest.task else e
                    for e in state.tasks
                ),
            )
        return kernel.step(state, sender, request, edition=HARDENED)

    result = explore(
        KernelRmgrSpace(tasks=1, clients=1, kernel_step=no_chief_check, edition=HARDENED)
    )
    assert result.violation is not None
    assert result.violation.invariant == "task_new_succeeds_only_for_the_chief"
    assert len(result.violation.steps) == 1


@pytest.mark.parametrize(("tasks", "clients"), [(0, 1), (1, 0)])
def test_empty_configurations_are_refused(tasks: int, clients: int) -> None:
    with pytest.raises(ValueError):
        KernelRmgrSpace(tasks=tasks, clients=clients)


# -- the whole ownership spec -------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_three_tasks_two_l4linux_clients_are_proved_for_each_strategy(strategy: Strategy) -> None:
    """hardened keeps every promise at 3 tasks x 2 clients (l4env-2007: see the findings)."""
    result = explore(OwnershipSpace(tasks=3, clients=2, strategy=strategy, edition=HARDENED))
    assert result.violation is None and result.complete
    assert result.states > 100 and result.transitions > result.states


def test_a_misbehaving_scripted_client_is_explored_too() -> None:
    # merged at 2x1 in CI; the task-server strategies take ~30 s each.
    space = OwnershipSpace(
        tasks=2, clients=1, strategy=Strategy.MERGED, script=True, edition=HARDENED
    )
    result = explore(space)
    plain = explore(OwnershipSpace(tasks=2, clients=1, strategy=Strategy.MERGED, edition=HARDENED))
    assert result.violation is None and result.complete
    assert result.states > 10 * plain.states


def _reachable(space: OwnershipSpace) -> list[SystemSnapshot]:
    """Every state the exploration of ``space`` stores (one per canonical class)."""
    seen: list[SystemSnapshot] = []

    class Recording(OwnershipSpace):
        def check(self, state: SystemSnapshot) -> tuple[str, str] | None:
            seen.append(state)
            return super().check(state)

    recording = Recording.__new__(Recording)
    recording.__dict__.update(space.__dict__)
    result = explore(recording)
    assert result.violation is None and result.complete
    return seen


def _shift_versions(world: SystemSnapshot, number: int, by: int) -> SystemSnapshot:
    """The same state with every version of task ``number`` moved up by ``by``."""

    def move(t: ThreadId) -> ThreadId:
        return t.with_version(t.version + by) if t.task == number else t

    tasks = tuple(
        attrs.evolve(e, version=e.version + by) if e.number == number else e
        for e in world.kernel.tasks
    )
    versions = tuple(v + by if n == number else v for n, v in enumerate(world.rmgr.versions))
    tsv = world.task_server
    if tsv is not None:
        tsv = attrs.evolve(tsv, records=tuple(attrs.evolve(r, id=move(r.id)) for r in tsv.records))
    servers = tuple(
        attrs.evolve(
            lx,
            processes=tuple(attrs.evolve(p, task=move(p.task)) for p in lx.processes),
            cache=tuple(move(t) for t in lx.cache),
            retired=frozenset(move(t) for t in lx.retired),
        )
        for lx in world.linux
    )
    return attrs.evolve(
        world,
        kernel=kernel.KernelState(tasks=tasks),
        rmgr=attrs.evolve(world.rmgr, versions=versions),
        task_server=tsv,
        linux=servers,
    )


def _rename_pids(world: SystemSnapshot, rename: Callable[[int], int]) -> SystemSnapshot:
    """The same state with every pid p > 1 renamed to ``rename(p)`` (order-preserving)."""

    def r(pid: int) -> int:
        return pid if pid <= l4linux.INIT_PID else rename(pid)

    servers = tuple(
        attrs.evolve(
            lx,
            processes=tuple(
                attrs.evolve(p, pid=r(p.pid), parent=r(p.parent)) for p in lx.processes
            ),
            next_pid=r(lx.next_pid),
        )
        for lx in world.linux
    )
    return attrs.evolve(world, linux=servers)


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_the_canonical_form_forgets_version_shifts_and_pid_renamings(strategy: Strategy) -> None:
    space = OwnershipSpace(tasks=3, clients=1, strategy=strategy)
    states = _reachable(space)
    assert len(states) > 5
    for world in states:
        key = space.canonical(world)
        for number in space.pool:
            assert space.canonical(_shift_versions(world, number, 7)) == key
        assert space.canonical(_rename_pids(world, lambda p: 3 * p + 10)) == key
        assert space.canonical(_rename_pids(world, lambda p: p + 1000)) == key


def test_the_canonical_form_still_tells_a_stale_id_from_the_current_one() -> None:
    space = OwnershipSpace(tasks=2, clients=1, strategy=Strategy.CHIEF)
    world = space.initial()
    (lx,) = world.linux
    (init,) = lx.processes
    # init running under its task's previous version: a different (and broken) state
    stale = attrs.evolve(init, task=init.task.with_version(init.task.version - 1))
    broken = attrs.evolve(world, linux=(attrs.evolve(lx, processes=(stale,)),))
    assert space.canonical(broken) != space.canonical(world)
    assert space.check(broken) is not None


def test_symmetry_reduction_merges_interchangeable_l4linux_clients() -> None:
    reduced = explore(OwnershipSpace(tasks=3, clients=2, strategy=Strategy.CLASSIC))
    full = explore(OwnershipSpace(tasks=3, clients=2, strategy=Strategy.CLASSIC, symmetry=False))
    assert full.violation is None and full.complete
    assert reduced.states < full.states
    assert reduced.depth == full.depth


def test_a_wider_version_window_gives_the_same_verdict() -> None:
    narrow = explore(OwnershipSpace(tasks=2, clients=1, strategy=Strategy.CHIEF_CACHE))
    wide = explore(
        OwnershipSpace(tasks=2, clients=1, strategy=Strategy.CHIEF_CACHE, version_window=4)
    )
    assert narrow.violation is None and wide.violation is None and wide.complete
    assert wide.states >= narrow.states


def test_the_task_cache_reusing_an_id_is_caught_with_its_shortest_counterexample() -> None:
    # l4env-2007: lx_task_cache hands out the stored id unchanged; room for a zombie in
    # the process table, so init need not wait before it forks again
    space = OwnershipSpace(
        tasks=2, clients=1, strategy=Strategy.CHIEF_CACHE, processes=3, cache_size=1
    )
    result = explore(space)
    assert result.violation is not None
    assert result.violation.invariant == "reused_tasks_get_a_new_version"
    # fork (from the cache), kill it (back into the cache), fork (the same id again): no
    # shorter way exists (the child's own Exit is as short; BFS meets init's Kill first)
    assert result.violation.steps == (
        "t6.0v1 (L4Linux) <- Fork() from pid 1 -> OK pid 2 in t11.0v1",
        "t6.0v1 (L4Linux) <- Kill(pid=2) from pid 1 -> OK",
        "t6.0v1 (L4Linux) <- Fork() from pid 1 -> OK pid 3 in t11.0v1",
    )
    fixed = OwnershipSpace(
        tasks=2,
        clients=1,
        strategy=Strategy.CHIEF_CACHE,
        processes=3,
        cache_size=1,
        edition=Edition.custom({Fix.TASK_CACHE_REUSES_OLD_ID}),
    )
    assert explore(fixed).violation is None


def shutdown_without_reclaim(world: SystemSnapshot, server: int) -> tuple[SystemSnapshot, object]:
    """A broken task server: a client's exit deletes the client but reclaims nothing."""
    tsv = world.task_server
    assert tsv is not None
    ts_id = world.kernel.tasks[tsv.me].id
    ks, rs, reply = rmgr.step(world.kernel, world.rmgr, ts_id, rmgr.FreeClient(owner=server))
    servers = tuple(lx for lx in world.linux if lx.me != server)
    return attrs.evolve(world, kernel=ks, rmgr=rs, linux=servers), reply


@pytest.mark.parametrize(
    ("strategy", "invariant"),
    [
        (Strategy.CLASSIC, "exit_reclaims_everything"),
        # init's task passes to RMGR with the dead server's clan, the record still its:
        # promise 7 (invariant 4 leaves a dead owner's record to it, protocols.invariants)
        (Strategy.CHIEF_CACHE, "exit_reclaims_everything"),
    ],
    ids=lambda v: getattr(v, "value", ""),
)
def test_an_exit_that_forgets_to_reclaim_is_caught_at_once(
    strategy: Strategy, invariant: str
) -> None:
    space = OwnershipSpace(tasks=3, clients=2, strategy=strategy, shutdown=shutdown_without_reclaim)
    result = explore(space)
    assert result.violation is not None
    assert result.violation.invariant == invariant
    # the first exit strands its init's task: one step
    assert result.violation.steps == ("t6.0v1 (L4Linux) exits as a client -> OK",)
    assert "task 10" in result.violation.detail  # simple_ts numbers from 10


def test_the_scripted_client_hands_back_chief_rights_only_where_they_came_from() -> None:
    space = OwnershipSpace(tasks=2, clients=1, strategy=Strategy.MERGED, script=True)
    labels = [label for label, _, _ in space.actions(space.initial())]
    assert any("(script) -> t4.0v0 (RMGR): AllocateChief()" in label for label in labels)
    assert any("(script) -> kernel: TaskNew(" in label for label in labels)
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize(
    ("tasks", "clients", "options"),
    [(1, 2, {}), (2, 0, {}), (2, 1, {"processes": 0}), (2, 1, {"version_window": 0})],
)
def test_impossible_ownership_bounds_are_refused(
    tasks: int, clients: int, options: dict[str, int]
) -> None:
    with pytest.raises(ValueError):
        OwnershipSpace(tasks=tasks, clients=clients, **options)  # type: ignore[arg-type]


def test_versions_nothing_reads_are_forgotten_unless_the_script_reads_them() -> None:
    def retag(world: SystemSnapshot, number: int) -> SystemSnapshot:
        # an inactive task's kernel version and RMGR's version of it, changed alone
        tasks = tuple(
            attrs.evolve(e, version=e.version + 5) if e.number == number else e
            for e in world.kernel.tasks
        )
        versions = tuple(v + 3 if n == number else v for n, v in enumerate(world.rmgr.versions))
        return attrs.evolve(
            world,
            kernel=kernel.KernelState(tasks=tasks),
            rmgr=attrs.evolve(world.rmgr, versions=versions),
        )

    plain = OwnershipSpace(tasks=3, clients=1, strategy=Strategy.CHIEF)
    scripted = OwnershipSpace(tasks=3, clients=1, strategy=Strategy.CHIEF, script=True)
    for space in (plain, scripted):
        world = space.initial()
        free = [n for n in space.pool if not world.kernel.is_active(n)]
        assert free
        same = space.canonical(retag(world, free[0])) == space.canonical(world)
        assert same is (space is plain)
