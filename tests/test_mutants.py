"""Deliberately broken variants: the ownership machine must catch every one of them.

Each mutant is a small subclass of a real actor, swapped in at boot.  Each test runs the
machine for a bounded number of examples (no shrinking, derandomized, so it is fast and
repeatable) and expects it to fail: the suite is shown able to fail.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from actors import System
from actors.images import factory
from actors.kernel import KernelActor
from actors.l4linux import L4LinuxServer
from actors.task_server import TaskServer, _Rec
from protocols import kernel
from protocols.ids import RMGR_TASK, ThreadId
from protocols.invariants import InvariantViolation
from protocols.l4linux import EIP_L4LINUX, Strategy
from protocols.task_server import EIP_TASK_SERVER
from scenarios.ownership_machine import OwnershipMachine, machine_for

MAX_EXAMPLES = 60
"""The bound: each mutant must be caught within this many examples."""
BLIND_MAX_EXAMPLES = 200
"""The bound when only the invariants are checked (they see less than the spec does)."""

BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=30,
    phases=(Phase.generate,),
    derandomize=True,
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)


class KillWithoutOwnerCheck(TaskServer):
    """Task server that skips the owner check on kill (anyone may kill any task)."""

    def may_act(self, rec: _Rec, caller: int, task: ThreadId, *, self_ok: bool) -> bool:
        return True if self_ok else super().may_act(rec, caller, task, self_ok=self_ok)


class AllocateChiefKeepsChief(TaskServer):
    """``allocate_chief`` that does not hand over the chief right (gives it to RMGR)."""

    def hand_over(self, task: ThreadId, client: int) -> bool:
        return self._task_new(task, RMGR_TASK)


class ExitWithoutReclaim(TaskServer):
    """``exit`` / ``kill_recursive`` that kill the victim but reclaim nothing it owned."""

    def reclaim(self, owner: int) -> None:
        return None


class CacheGivesBackButKeeps(L4LinuxServer):
    """A task cache that gives a task back to the task server while still holding it."""

    def stop_task(self, task: ThreadId) -> None:
        super().stop_task(task)
        if task in self.cache:
            self.give_back(task)


class ReuseKeepsOldVersion(L4LinuxServer):
    """A task cache that restarts a cached task under its old id (no new version)."""

    def reuse_id(self, cached: ThreadId) -> ThreadId:
        return cached


class KernelWithoutChiefCheck(KernelActor):
    """A kernel whose ``l4_task_new`` lets anyone create or delete any task."""

    def task_new(self, caller: int, req: kernel.TaskNew) -> kernel.TaskNewReply:
        if req.dest.task < self.task_count and not req.dest.is_nil:
            self.chief[req.dest.task] = caller
        return super().task_new(caller, req)


class _NoChiefCheckSystem(System):
    kernel_class = KernelWithoutChiefCheck


MUTANTS: dict[str, type[OwnershipMachine]] = {
    "kill_without_owner_check": machine_for(
        Strategy.CLASSIC, IMAGES={EIP_TASK_SERVER: factory(KillWithoutOwnerCheck)}
    ),
    "allocate_chief_keeps_chief": machine_for(
        Strategy.CLASSIC, IMAGES={EIP_TASK_SERVER: factory(AllocateChiefKeepsChief)}
    ),
    "exit_without_reclaim": machine_for(
        Strategy.CHIEF, IMAGES={EIP_TASK_SERVER: factory(ExitWithoutReclaim)}
    ),
    "cache_gives_back_but_keeps": machine_for(
        Strategy.CHIEF_CACHE, IMAGES={EIP_L4LINUX: factory(CacheGivesBackButKeeps)}
    ),
    "reuse_keeps_old_version": machine_for(
        Strategy.CHIEF_CACHE, IMAGES={EIP_L4LINUX: factory(ReuseKeepsOldVersion)}
    ),
    "kernel_without_chief_check": machine_for(Strategy.CLASSIC, SYSTEM=_NoChiefCheckSystem),
}


HARDER: dict[str, int] = {"kill_without_owner_check": 300}
"""Mutants that need a larger bound.  Hypothesis mixes constants from every loaded local
module into its data, so which examples a derandomized run tries depends on which
modules the test session imported: with the scenarios (issue 4) loaded, this mutant was
not found within 60 examples (it was within 300)."""


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_machine_catches_the_mutant(name: str) -> None:
    bound = settings(BOUNDED, max_examples=HARDER.get(name, MAX_EXAMPLES))
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(MUTANTS[name], settings=bound)
    assert str(caught.value), "the failure names what broke"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_invariants_alone_catch_the_mutant(name: str) -> None:
    """Without comparing to the spec, a named invariant still fails."""
    blind = type(f"Blind{name}", (MUTANTS[name],), {"COMPARE_WITH_SPEC": False})
    with pytest.raises(InvariantViolation):
        run_state_machine_as_test(
            blind, settings=settings(BOUNDED, max_examples=BLIND_MAX_EXAMPLES)
        )


def test_the_unbroken_system_passes_the_same_bounded_run() -> None:
    """The bound is meaningful: the same run on the real system finds nothing."""
    run_state_machine_as_test(machine_for(Strategy.CHIEF_CACHE), settings=BOUNDED)
