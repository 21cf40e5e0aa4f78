"""The invariants of chief ownership (ARCHITECTURE.md), as named functions.

Each takes a snapshot (or, for a rule about transitions, the states before and after)
and returns ``None`` when it holds or a one-line description of the first violation.
``check_all`` runs every state invariant and raises ``InvariantViolation``.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols import kernel
from protocols.ids import KERNEL_TASK, ThreadId
from protocols.snapshot import SystemSnapshot

__all__ = [
    "STATE_INVARIANTS",
    "InvariantViolation",
    "check_all",
    "every_task_has_exactly_one_chief",
    "task_new_succeeds_only_for_the_chief",
]


class InvariantViolation(AssertionError):
    """A named invariant does not hold."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def every_task_has_exactly_one_chief(snap: SystemSnapshot) -> str | None:
    """Every task number has exactly one chief, and following chiefs leads to the kernel."""
    ks = snap.kernel
    for entry in ks.tasks:
        if entry.number == KERNEL_TASK:
            if entry.chief != KERNEL_TASK:
                return "the kernel task must be its own root"
            continue
        if not 0 <= entry.chief < ks.task_count or entry.chief == entry.number:
            return f"task {entry.number} has chief {entry.chief}"
        seen = {entry.number}
        chief = entry.chief
        while chief != KERNEL_TASK:
            if chief in seen:
                return f"chief cycle through task {entry.number}"
            seen.add(chief)
            chief = ks.chief_of(chief)
    return None


def task_new_succeeds_only_for_the_chief(
    before: kernel.KernelState,
    sender: ThreadId,
    request: kernel.TaskNew,
    reply: object,
    after: kernel.KernelState,
) -> str | None:
    """``l4_task_new`` succeeds only for the chief of the task; anything else changes nothing."""
    if not isinstance(reply, kernel.TaskNewReply):
        return f"l4_task_new answered {reply!r}"
    if reply.task.is_nil:
        if after != before:
            return f"refused l4_task_new({request.dest}) by {sender} changed the task table"
        return None
    if request.dest.task >= before.task_count or before.chief_of(request.dest.task) != sender.task:
        return f"l4_task_new({request.dest}) by non-chief {sender} succeeded"
    return None


STATE_INVARIANTS: tuple[Callable[[SystemSnapshot], str | None], ...] = (
    every_task_has_exactly_one_chief,
)


def check_all(snap: SystemSnapshot) -> None:
    """Raise ``InvariantViolation`` for the first state invariant that does not hold."""
    for invariant in STATE_INVARIANTS:
        detail = invariant(snap)
        if detail is not None:
            raise InvariantViolation(invariant.__name__, detail)
