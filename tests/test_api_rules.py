"""The ownership machine with every public-API capability (``scenarios.check.api_rules``).

On ``hardened`` every invariant but ``api_rules.OPEN`` holds and actors equal the spec
under the widened rules, for every strategy; each open case is pinned by a plain test
that shows the promise still broken (so fixing it fails the pin, and it moves out of
``OPEN``).
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from actors import boot
from actors.l4linux import LinuxShutdown
from protocols import invariants, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.explore import explore
from protocols.explore_api import ApiOwnershipSpace
from protocols.ids import RMGR_TASK, task_id
from protocols.l4linux import Strategy
from scenarios.check.api_rules import OPEN
from scenarios.check.ownership_machine import machine_for

EXAMPLES = 4
"""Examples per strategy in the ``ci`` profile (thorough: its own)."""


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_the_api_machine_finds_nothing_beyond_the_open_cases(strategy: Strategy) -> None:
    machine = machine_for(strategy, api=True)
    chosen = settings()
    if chosen.max_examples <= 100:  # the ci profile: keep the suite fast
        chosen = settings(chosen, max_examples=EXAMPLES, stateful_step_count=25)
    run_state_machine_as_test(machine, settings=chosen)


def test_open_a_process_that_kills_itself_leaves_what_it_took_owned_by_the_dead() -> None:
    """OPEN (promise 7), classic: no server is told of a self-deleted task, so what it
    took from the task server stays its own.  The self-kill no longer frees L4Linux's
    number (SELF_KILL_FREES_OWNED_NUMBER)."""
    with boot(task_count=24, linux=1, strategy="classic", edition="hardened") as system:
        init = system.init_processes[0]
        assert system.task_server is not None
        took = system.perform(init, system.task_server, ts.Allocate())
        assert took.error is ErrorCode.OK
        suicide = ts.Kill(task=init, options=ts.KillOption.FREE)
        assert system.perform(init, system.task_server, suicide).error is ErrorCode.OK
        snap = system.snapshot()
        rec = snap.task_server.record(init.task) if snap.task_server else None
        assert rec is not None and rec.used, "the number stays L4Linux's"
        assert invariants.every_task_is_in_exactly_one_place(snap) is None
        detail = invariants.exit_reclaims_everything(snap)
        assert "exit_reclaims_everything" in OPEN
        assert detail == f"task {took.task.task} still owned by dead task {init.task}"


@pytest.mark.parametrize("strategy", ["chief", "chief+cache"])
def test_open_a_child_l4linux_kills_leaves_what_it_took_owned_by_the_dead(strategy: str) -> None:
    """OPEN (promise 7), chief: L4Linux deletes its child's task itself and gives the
    number back; the task server never learns that the child owned another task."""
    with boot(task_count=24, linux=1, strategy=strategy, edition="hardened") as system:
        init = system.init_processes[0]
        assert system.task_server is not None
        child = system.linux_call(init, lx.Fork())
        took = system.perform(child.task, system.task_server, ts.Allocate())
        assert took.error is ErrorCode.OK
        assert system.linux_call(init, lx.Kill(pid=child.pid)).error is ErrorCode.OK
        detail = invariants.exit_reclaims_everything(system.snapshot())
        assert detail == f"task {took.task.task} still owned by dead task {child.task.task}"


def test_open_merged_a_server_exit_leaves_what_its_process_took_at_rmgr() -> None:
    """OPEN (promise 7), merged: RMGR's FreeClient frees what the server held, not what
    its processes took from RMGR themselves."""
    with boot(task_count=24, linux=1, strategy="merged", edition="hardened") as system:
        init = system.init_processes[0]
        took = system.perform(init, task_id(RMGR_TASK), rmgr.AllocateChief())
        assert took.error is ErrorCode.OK
        (server,) = system.linux
        gone = system.ref(server).ask(LinuxShutdown(), timeout=20)
        assert getattr(gone, "error", None) is ErrorCode.OK
        detail = invariants.exit_reclaims_everything(system.snapshot())
        assert detail is not None and f"held at RMGR by dead task {init.task}" in detail


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
@pytest.mark.parametrize("alphabet", ["api", "api-holding"])
def test_explore_with_the_api_alphabet_finds_only_the_open_promise(
    strategy: Strategy, alphabet: str
) -> None:
    from protocols.editions import HARDENED

    checked = {
        f.__name__ for f in (*invariants.STATE_INVARIANTS, *invariants.TRANSITION_INVARIANTS)
    } - OPEN
    space = ApiOwnershipSpace(
        tasks=2,
        clients=1,
        strategy=strategy,
        edition=HARDENED,
        alphabet=alphabet,
        invariants=checked,
    )
    result = explore(space)
    assert result.violation is None and result.complete
    everything = explore(
        ApiOwnershipSpace(
            tasks=2, clients=1, strategy=strategy, edition=HARDENED, alphabet=alphabet
        )
    )
    assert everything.violation is None or everything.violation.invariant in OPEN


def test_the_api_alphabet_finds_the_self_kill_finding_in_l4env_2007() -> None:
    from protocols.editions import L4ENV_2007

    result = explore(ApiOwnershipSpace(tasks=2, clients=1, edition=L4ENV_2007, alphabet="api"))
    assert result.violation is not None
    assert result.violation.invariant == "every_task_is_in_exactly_one_place"
    assert "Kill(task=t10.0v1, options=<KillOption.FREE: 2>) -> OK" in result.violation.steps[-1]
