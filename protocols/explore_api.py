"""The explorer's alphabet widened to what a caller of the public API can do.

``OwnershipSpace`` (``protocols.explore_ownership``) lets processes make Linux calls and
a scripted client misbehave with a small alphabet that hands a chief right only back to
where it came from.  ``ApiOwnershipSpace`` adds (with or without the scripted client):

* ``api``: every running process is also a client of every server (any task can send
  IPC to any thread it knows the id of; the servers check the sender, nothing else):
  it asks the task server for a task (``allocate``, ``allocate2``), kills its own task
  with ``FREE`` (the interface lets "the task itself" kill, osfree-project/l4env
  l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df:94-100), exits at it, and in ``merged``
  takes a task from RMGR (``AllocateChief``) or frees itself (``FreeClient``);
* ``api-holding``: ``api`` plus chief hand-over to *any* task: the scripted client and
  every process hand each chief right they hold to RMGR, the task server, every L4Linux
  server, every process task and the script itself (Fiasco's ``l4_task_new`` with a nil
  pager makes any task number the new chief).

Every request is checked against the transition invariants (2, 8 and 4's request half)
like the script's.  The widened alphabet is cheap enough without the scripted client:
``l4sim explore --alphabet api`` at 3 tasks x 2 clients takes seconds per strategy.
Actions are generated in a fixed order (no set iteration), so ``explore_distributed``
replays the same action indices in every process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from protocols import kernel, l4linux, ownership, rmgr
from protocols import task_server as ts
from protocols.explore_ownership import (
    EIP_SCRIPT,
    OwnershipSpace,
    Transition,
)
from protocols.ids import NIL_ID, RMGR_TASK, ThreadId, task_id
from protocols.snapshot import SystemSnapshot

__all__ = ["ALPHABETS", "ApiOwnershipSpace"]

ALPHABETS: Final = ("default", "api", "api-holding")
"""``default``: ``OwnershipSpace`` as it is; the others: see the module docstring."""


def _live_processes(state: SystemSnapshot) -> list[ThreadId]:
    """The tasks of the processes that run and whose task the kernel has alive."""
    return [
        p.task
        for lx in state.linux
        for p in lx.processes
        if p.state is l4linux.ProcState.RUNNING and ownership.alive(state, p.task)
    ]


class ApiOwnershipSpace(OwnershipSpace):
    """``OwnershipSpace`` with the widened alphabet."""

    def __init__(self, *, alphabet: str = "api", **kwargs: Any) -> None:
        if alphabet not in ALPHABETS[1:]:
            raise ValueError(f"unknown alphabet {alphabet!r}; choose one of {ALPHABETS[1:]}")
        super().__init__(**kwargs)
        self.alphabet = alphabet
        self.holding = alphabet == "api-holding"

    def actions(self, state: SystemSnapshot) -> Iterator[Transition]:
        yield from super().actions(state)
        for proc in _live_processes(state):
            yield from self._calls(state, proc, self._process_alphabet(state, proc))
        if self.holding and self.script is not None:
            entry = state.kernel.tasks[self.script]
            if entry.active and entry.eip == EIP_SCRIPT:
                yield from self._calls(state, entry.id, self._hand_overs(state, entry.id))

    def _process_alphabet(
        self, state: SystemSnapshot, me: ThreadId
    ) -> Iterator[tuple[ThreadId, object]]:
        rmgr_id = task_id(RMGR_TASK)
        if self.ts_number is not None:
            ts_id = state.kernel.tasks[self.ts_number].id
            yield ts_id, ts.Allocate()
            yield ts_id, ts.AllocateChief()
            yield ts_id, ts.Kill(task=me, options=ts.KillOption.FREE)
            yield ts_id, ts.Exit()
        else:
            yield rmgr_id, rmgr.AllocateChief()
            yield rmgr_id, rmgr.FreeClient(owner=me.task)
        if self.holding:
            yield from self._hand_overs(state, me)

    def _hand_overs(self, state: SystemSnapshot, me: ThreadId) -> Iterator[tuple[ThreadId, object]]:
        """``l4_task_new(task, new chief)`` for every task ``me`` is chief of, to anyone."""
        ks = state.kernel
        targets = [RMGR_TASK]
        if self.ts_number is not None:
            targets.append(self.ts_number)
        targets.extend(lx.me for lx in state.linux)
        if self.script is not None:
            targets.append(self.script)
        targets.extend(t.task for t in _live_processes(state))
        for n in self.pool:
            if ks.chief_of(n) != me.task:
                continue
            for to in dict.fromkeys(targets):
                if to not in (n, me.task):
                    yield NIL_ID, kernel.TaskNew(dest=ks.tasks[n].id, mcp_or_new_chief=task_id(to))
