"""protocols.explore: exhaustive BFS over the specs, with symmetry reduction."""

from __future__ import annotations

import attrs
import pytest

from protocols import kernel
from protocols.explore import KernelRmgrSpace, explore
from protocols.ids import ThreadId


def test_small_kernel_rmgr_configurations_are_proved_completely() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=2))
    assert result.violation is None and result.complete
    assert result.states > 100 and result.transitions > result.states and result.depth > 4


def test_symmetry_reduction_merges_interchangeable_clients_and_tasks() -> None:
    class NoSymmetry(KernelRmgrSpace):
        def canonical(self, state):  # type: ignore[no-untyped-def]
            return self._encode(state, {})

    reduced = explore(KernelRmgrSpace(tasks=2, clients=2))
    full = explore(NoSymmetry(tasks=2, clients=2))
    assert full.violation is None and full.complete
    # 2 clients x 2 tasks: at most 2! * 2! = 4 renamings per class of states
    assert reduced.states < full.states <= 4 * reduced.states
    assert reduced.depth == full.depth


def test_a_depth_bound_marks_the_search_incomplete() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=1), max_depth=2)
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
    return kernel.step(state, sender, request)


def test_a_broken_spec_is_caught_with_a_shortest_counterexample() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=1, kernel_step=lenient_step))
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
        return kernel.step(state, sender, request)

    result = explore(KernelRmgrSpace(tasks=1, clients=1, kernel_step=no_chief_check))
    assert result.violation is not None
    assert result.violation.invariant == "task_new_succeeds_only_for_the_chief"
    assert len(result.violation.steps) == 1


@pytest.mark.parametrize(("tasks", "clients"), [(0, 1), (1, 0)])
def test_empty_configurations_are_refused(tasks: int, clients: int) -> None:
    with pytest.raises(ValueError):
        KernelRmgrSpace(tasks=tasks, clients=clients)
