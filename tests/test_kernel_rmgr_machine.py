"""Stateful test: random l4_task_new and RMGR calls by chiefs, non-chiefs and RMGR's clients.

The machine holds the actor system under test and the reference spec; after every step
the snapshot of the actors equals the spec's state and invariants 1 and 2 hold.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors import EIP_CLIENT, EIP_IDLE, System
from protocols import kernel, rmgr
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.invariants import check_all, task_new_succeeds_only_for_the_chief
from protocols.snapshot import SystemSnapshot
from tests.backends import SpecBackend, actor_system

TASKS = 12
CLIENTS = 2
NUMBERS = st.integers(0, TASKS + 1)
"""Task numbers to aim at: the whole table and two beyond it."""
VERSIONS = st.integers(0, 3)


class KernelRmgrMachine(RuleBasedStateMachine):
    """Chiefs and non-chiefs call l4_task_new; clients call RMGR; the spec predicts all."""

    def __init__(self) -> None:
        super().__init__()
        self.system: System | None = None
        self.spec = SpecBackend(task_count=TASKS, clients=CLIENTS, quota=4)

    @initialize()
    def boot(self) -> None:
        self.system = actor_system(task_count=TASKS, clients=CLIENTS, quota=4)
        assert self.system.modules == self.spec.clients

    def teardown(self) -> None:
        if self.system is not None:
            self.system.stop()

    # -- who can act: every live scripted client thread (boot modules and their children)

    def actors(self) -> list[ThreadId]:
        return [e.id for e in self.spec.ks.tasks if e.active and e.eip == EIP_CLIENT]

    def snapshot(self) -> SystemSnapshot:
        assert self.system is not None
        return self.system.snapshot()

    @precondition(lambda self: self.system is not None)
    @rule(
        data=st.data(),
        version=VERSIONS,
        eip=st.sampled_from([EIP_CLIENT, EIP_IDLE]),
        mcp=st.integers(0, 255),
        pager=st.booleans(),
        new_chief=NUMBERS,
    )
    def task_new(
        self,
        data: st.DataObject,
        version: int,
        eip: int,
        mcp: int,
        pager: bool,
        new_chief: int,
    ) -> None:
        assert self.system is not None
        caller = data.draw(st.sampled_from(self.actors()), label="caller")
        # aim mostly at tasks the caller is chief of, sometimes at any number
        mine = [e.number for e in self.spec.ks.tasks if e.chief == caller.task]
        aims = st.one_of(st.sampled_from(mine), NUMBERS) if mine else NUMBERS
        number = data.draw(aims, label="dest")
        request = kernel.TaskNew(
            dest=task_id(number, version),
            mcp_or_new_chief=mcp if pager else task_id(new_chief),
            eip=eip,
            pager=task_id(SIGMA0_TASK) if pager else task_id(0),
        )
        before = self.spec.ks
        expected = self.spec.syscall(caller, request)
        got = self.system.syscall(caller, request)
        assert got == expected
        event(f"task_new {'refused' if got.task.is_nil else ('created' if pager else 'handed')}")
        verdict = task_new_succeeds_only_for_the_chief(
            before, caller, request, got, self.snapshot().kernel
        )
        assert verdict is None, verdict

    @precondition(lambda self: self.system is not None)
    @rule(
        data=st.data(),
        request=st.one_of(
            st.builds(rmgr.GetTask, number=NUMBERS),
            st.builds(rmgr.FreeTask, number=NUMBERS),
            st.builds(rmgr.FreeTaskAll, owner=st.integers(-1, TASKS)),
            st.builds(
                rmgr.RmgrTaskNew,
                dest=st.builds(task_id, NUMBERS, VERSIONS),
                mcp_or_chief=st.integers(0, 255),
                eip=st.sampled_from([EIP_CLIENT, EIP_IDLE]),
                pager=st.sampled_from([task_id(0), task_id(SIGMA0_TASK)]),
            ),
        ),
    )
    def call_rmgr(self, data: st.DataObject, request: Any) -> None:
        assert self.system is not None
        caller = data.draw(st.sampled_from(self.actors()), label="caller")
        expected = self.spec.rmgr(caller, request)
        got = self.system.perform(caller, task_id(RMGR_TASK), request)
        assert got == expected
        event(f"{type(request).__name__} {got.error.name}")

    @invariant()
    def actors_match_the_spec_and_invariants_hold(self) -> None:
        if self.system is None:
            return
        snap = self.snapshot()
        assert snap == self.spec.snapshot()
        check_all(snap)
        live = {t for t in self.system.runtime.live_threads()}
        expected = {e.id for e in snap.kernel.tasks if e.active}
        assert live == expected


KernelRmgrMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestKernelRmgr = KernelRmgrMachine.TestCase
