"""The kernel + RMGR state machine of the conformance kit: scripted clients call RMGR and
``l4_task_new`` against the actors (or an implementation under test) and a pure model
built from the specs (``SpecWorld``); replies and tables must agree after every step and
the kernel's promises must hold.  Used by ``scenarios.check.conform`` (protocols ``kernel``
and ``rmgr``) and the test suite.
"""

from __future__ import annotations

import collections
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors import EIP_CLIENT, EIP_IDLE, BootConfig, System
from actors.images import factory
from actors.kernel import KernelActor
from actors.rmgr import RmgrActor
from protocols import invariants as inv
from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition, Fix
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.kernel import EIP_RMGR
from protocols.snapshot import SystemSnapshot

__all__ = ["KernelRmgrMachine", "SpecWorld", "Stats", "kernel_rmgr_machine"]


# -- the kernel + RMGR machine -------------------------------------------------------------

TASKS = 12
CLIENTS = 2
QUOTA = 4
NUMBERS = st.integers(0, TASKS + 1)
VERSIONS = st.integers(0, 3)


@attrs.define
class Stats:
    """What a run of a machine exercised (shared by every example of one run)."""

    examples: int = 0
    steps: int = 0
    rules: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)


class SpecWorld:
    """The reference spec of the kernel and RMGR, advanced step by step."""

    def __init__(
        self,
        task_count: int = TASKS,
        clients: int = CLIENTS,
        quota: int | None = QUOTA,
        edition: Edition = DEFAULT_EDITION,
    ) -> None:
        self.edition = edition
        ks = kernel.boot_state(task_count)
        rs = rmgr.boot_state(task_count, quota=quota)
        self.ks, self.rs, self.clients = rmgr.start_modules(ks, rs, (EIP_CLIENT,) * clients)

    def syscall(self, caller: ThreadId, request: kernel.TaskNew | kernel.NChief) -> Any:
        self.ks, reply = kernel.step(self.ks, caller, request, edition=self.edition)
        return reply

    def rmgr(self, caller: ThreadId, request: rmgr.RmgrRequest) -> Any:
        self.ks, self.rs, reply = rmgr.step(self.ks, self.rs, caller, request, edition=self.edition)
        return reply

    def snapshot(self) -> SystemSnapshot:
        return SystemSnapshot(kernel=self.ks, rmgr=self.rs)

    def alive(self, tid: ThreadId) -> bool:
        """Whether ``tid`` names the running incarnation of its task."""
        entry = self.ks.tasks[tid.task] if tid.task < self.ks.task_count else None
        return entry is not None and entry.active and entry.version == tid.version


class KernelRmgrMachine(RuleBasedStateMachine):
    """Chiefs and non-chiefs call l4_task_new; clients call RMGR; the spec predicts all.

    Invariants 1 (every task has exactly one chief) and 2 (l4_task_new succeeds only for
    the chief) are checked after every step, with the actors' state equal to the spec's.
    """

    kernel_class: ClassVar[type[KernelActor]] = KernelActor
    rmgr_class: ClassVar[type[RmgrActor]] = RmgrActor
    stats: ClassVar[Stats] = Stats()
    edition: ClassVar[Edition] = DEFAULT_EDITION

    def __init__(self) -> None:
        super().__init__()
        self.system: System | None = None
        self.spec = SpecWorld(edition=self.edition)
        type(self).stats.examples += 1

    @initialize()
    def boot(self) -> None:
        system = System(
            BootConfig(
                task_count=TASKS,
                modules=(EIP_CLIENT,) * CLIENTS,
                quota=QUOTA,
                timeout=5.0,
                edition=self.edition,
            ),
            kernel_class=self.kernel_class,
        )
        system.runtime.images[EIP_RMGR] = factory(self.rmgr_class)
        self.system = system.start()
        assert self.system.modules == self.spec.clients

    def teardown(self) -> None:
        if self.system is not None:
            self.system.stop()

    def _count(self, rule_name: str, outcome: str) -> None:
        stats = type(self).stats
        stats.steps += 1
        stats.rules[rule_name] += 1
        stats.outcomes[outcome] += 1

    def actors(self) -> list[ThreadId]:
        """Every live scripted client thread (boot modules and their children)."""
        return [e.id for e in self.spec.ks.tasks if e.active and e.eip == EIP_CLIENT]

    def _caller(self, who: int) -> ThreadId:
        actors = self.actors()
        return actors[who % len(actors)]

    # l4env-2007: free_task_all(RMGR) by anyone can delete every client.
    @precondition(lambda self: self.system is not None and self.actors())
    @rule(
        who=st.integers(0, 7),
        aim=NUMBERS,
        mine=st.booleans(),
        version=VERSIONS,
        eip=st.sampled_from([EIP_CLIENT, EIP_IDLE]),
        mcp=st.integers(0, 255),
        pager=st.booleans(),
        new_chief=NUMBERS,
    )
    def task_new(
        self,
        who: int,
        aim: int,
        mine: bool,
        version: int,
        eip: int,
        mcp: int,
        pager: bool,
        new_chief: int,
    ) -> None:
        """Client ``who`` calls l4_task_new on task ``aim`` (or, if ``mine``, on its own)."""
        assert self.system is not None
        caller = self._caller(who)
        own = [e.number for e in self.spec.ks.tasks if e.chief == caller.task]
        number = own[aim % len(own)] if mine and own else aim
        request = kernel.TaskNew(
            dest=task_id(number, version),
            mcp_or_new_chief=mcp if pager else task_id(new_chief),
            eip=eip,
            pager=task_id(SIGMA0_TASK) if pager else task_id(0),
        )
        before = self.spec.ks
        expected = self.spec.syscall(caller, request)
        got = self.system.syscall(caller, request)
        assert got == expected, f"l4_task_new: spec says {expected!r}, got {got!r}"
        verdict = inv.task_new_succeeds_only_for_the_chief(
            before, caller, request, got, self.system.kernel_state()
        )
        # l4env-2007 breaks invariant 2 (finding TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF).
        if self.edition.has(Fix.TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF):
            assert verdict is None, verdict
        self._count("task_new", "task_new refused" if got.task.is_nil else "task_new ok")

    # l4env-2007: free_task_all(RMGR) by anyone can delete every client.
    @precondition(lambda self: self.system is not None and self.actors())
    @rule(
        who=st.integers(0, 7),
        request=st.one_of(
            st.builds(rmgr.GetTask, number=NUMBERS),
            st.builds(rmgr.FreeTask, number=NUMBERS),
            st.builds(rmgr.FreeTaskAll, owner=st.integers(-1, TASKS)),
            st.builds(rmgr.SetTaskId, name=st.just("x"), task=st.builds(task_id, NUMBERS)),
            st.builds(
                rmgr.SetPrio,
                task=st.builds(task_id, NUMBERS, VERSIONS),
                prio=st.integers(0, 255),
            ),
            st.builds(
                rmgr.RmgrTaskNew,
                dest=st.builds(task_id, NUMBERS, VERSIONS),
                mcp_or_chief=st.integers(0, 255),
                eip=st.sampled_from([EIP_CLIENT, EIP_IDLE]),
                pager=st.sampled_from([task_id(0), task_id(SIGMA0_TASK)]),
            ),
        ),
    )
    def call_rmgr(self, who: int, request: Any) -> None:
        """Client ``who`` sends RMGR a request."""
        assert self.system is not None
        caller = self._caller(who)
        expected = self.spec.rmgr(caller, request)
        got = self.system.perform(caller, task_id(RMGR_TASK), request)
        assert got == expected, f"{type(request).__name__}: spec says {expected!r}, got {got!r}"
        self._count("call_rmgr", f"{type(request).__name__} {got.error.name}")

    @precondition(lambda self: self.system is not None and not self.actors())
    @rule()
    def no_client_left(self) -> None:
        """Every client was deleted (l4env-2007 lets anyone free_task_all RMGR's tasks)."""
        self._count("no_client_left", "no client left")

    @invariant()
    def actors_match_the_spec(self) -> None:
        """The actors' kernel table, RMGR books and live threads equal the spec's."""
        if self.system is None:
            return
        snap = self.system.snapshot()
        assert snap.kernel == self.spec.ks, "kernel task table differs from the spec"
        assert snap.rmgr == self.spec.rs, "RMGR's books differ from the spec"
        live = set(self.system.runtime.live_threads())
        assert live == {e.id for e in snap.kernel.tasks if e.active}, "live threads differ"

    @invariant()
    def every_task_has_exactly_one_chief(self) -> None:
        """Invariant 1, on the actors' snapshot."""
        if self.system is not None:
            detail = inv.every_task_has_exactly_one_chief(self.system.snapshot())
            assert detail is None, detail


def kernel_rmgr_machine(
    *,
    kernel_class: type[KernelActor] = KernelActor,
    rmgr_class: type[RmgrActor] = RmgrActor,
    edition: Edition = DEFAULT_EDITION,
) -> type[KernelRmgrMachine]:
    """A fresh machine class (with its own stats) running the given implementations."""
    return type(
        "KernelRmgrMachine",
        (KernelRmgrMachine,),
        {
            "kernel_class": kernel_class,
            "rmgr_class": rmgr_class,
            "stats": Stats(),
            "edition": edition,
        },
    )
