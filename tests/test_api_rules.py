"""The ownership machine with every public-API capability (``scenarios.check.api_rules``).

On ``hardened`` every invariant holds and actors equal the
spec under the widened rules, for every strategy; the cases that were open are plain
tests here: one fixed (``HANDED_ON_TASK_OWNED_BY_THE_DEAD``), one restated (the task
cache, promise 7 in ``protocols.invariants``).
"""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from actors import boot
from actors.l4linux import LinuxShutdown
from protocols import invariants, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.editions import HARDENED
from protocols.errors import ErrorCode
from protocols.explore import explore
from protocols.explore_api import ApiOwnershipSpace
from protocols.ids import RMGR_TASK, task_id
from protocols.l4linux import Strategy
from scenarios.check.ownership_machine import machine_for
from scenarios.cli import main

EXAMPLES = 4
"""Examples per strategy in the ``ci`` profile (thorough: its own)."""


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_the_api_machine_finds_nothing(strategy: Strategy) -> None:
    machine = machine_for(strategy, api=True)
    chosen = settings()
    if chosen.max_examples <= 100:  # the ci profile: keep the suite fast
        chosen = settings(chosen, max_examples=EXAMPLES, stateful_step_count=25)
    run_state_machine_as_test(machine, settings=chosen)


@pytest.mark.parametrize("edition", ["l4env-2007", "hardened"])
def test_a_process_that_kills_itself_leaves_nothing_to_the_dead_in_hardened(edition: str) -> None:
    """classic: a process takes a number, then kills itself with FREE.  l4env-2007 frees
    L4Linux's number (SELF_KILL_FREES_OWNED_NUMBER) and leaves the taken one owned by
    the dead (DEAD_TASK_KEEPS_WHAT_IT_TOOK); hardened keeps both promises."""
    with boot(task_count=24, linux=1, strategy="classic", edition=edition) as system:
        init = system.init_processes[0]
        assert system.task_server is not None
        took = system.perform(init, system.task_server, ts.Allocate())
        assert took.error is ErrorCode.OK
        suicide = ts.Kill(task=init, options=ts.KillOption.FREE)
        assert system.perform(init, system.task_server, suicide).error is ErrorCode.OK
        snap = system.snapshot()
        place = invariants.every_task_is_in_exactly_one_place(snap)
        kept = invariants.exit_reclaims_everything(snap)
        if edition == "hardened":
            assert place is None and kept is None
            rec = snap.task_server.record(took.task.task) if snap.task_server else None
            assert rec is not None and not rec.used, "the taken number is free again"
        else:
            assert (
                place == f"task {init.task} runs a process of 6 but is reserved by the task server"
            )
            assert kept == f"task {took.task.task} still owned by dead task {init.task}"


@pytest.mark.parametrize("strategy", ["chief", "chief+cache"])
def test_a_child_l4linux_kills_leaves_what_it_took_to_no_one_dead(strategy: str) -> None:
    """chief: L4Linux deletes its child's task itself (the kernel hands it the child's
    clan) and gives the number back with free2; hardened's free2 reclaims what the child
    took.  chief+cache: the child's task goes back into the cache, no server is told, and
    what the child took stays recorded under the cached number (promise 7 as restated):
    the next process in that slot inherits it, and the server's exit reclaims it."""
    with boot(task_count=24, linux=1, strategy=strategy, edition="hardened") as system:
        init = system.init_processes[0]
        assert system.task_server is not None
        child = system.linux_call(init, lx.Fork())
        took = system.perform(child.task, system.task_server, ts.Allocate())
        assert took.error is ErrorCode.OK
        assert system.linux_call(init, lx.Kill(pid=child.pid)).error is ErrorCode.OK
        snap = system.snapshot()
        assert invariants.exit_reclaims_everything(snap) is None
        rec = snap.task_server.record(took.task.task) if snap.task_server else None
        assert rec is not None
        if strategy == "chief":
            assert not rec.used, "free2 reclaimed what the child took"
            return
        assert rec.used and rec.owner == child.task.task
        assert any(t.task == child.task.task for t in snap.linux[0].cache)
        again = system.linux_call(init, lx.Fork())
        assert again.task.task == child.task.task and again.task != child.task
        (server,) = system.linux
        gone = system.ref(server).ask(LinuxShutdown(), timeout=20)
        assert getattr(gone, "error", None) is ErrorCode.OK
        snap = system.snapshot()
        assert invariants.exit_reclaims_everything(snap) is None
        rec = snap.task_server.record(took.task.task) if snap.task_server else None
        assert rec is not None and not rec.used, "the server's exit reclaimed it"


@pytest.mark.parametrize("edition", ["l4env-2007", "hardened"])
def test_merged_a_server_exit_frees_what_its_process_took_at_rmgr(edition: str) -> None:
    """merged: RMGR's FreeClient frees what the server held and, in hardened, what its
    processes took from RMGR themselves."""
    with boot(task_count=24, linux=1, strategy="merged", edition=edition) as system:
        init = system.init_processes[0]
        took = system.perform(init, task_id(RMGR_TASK), rmgr.AllocateChief())
        assert took.error is ErrorCode.OK
        (server,) = system.linux
        gone = system.ref(server).ask(LinuxShutdown(), timeout=20)
        assert getattr(gone, "error", None) is ErrorCode.OK
        detail = invariants.exit_reclaims_everything(system.snapshot())
        if edition == "hardened":
            assert detail is None
        else:
            assert detail is not None and f"held at RMGR by dead task {init.task}" in detail


@pytest.mark.parametrize("fixed", [False, True])
def test_a_right_handed_on_then_to_rmgr_leaves_nothing_to_the_dead_in_hardened(
    fixed: bool,
) -> None:
    """A process hands its allocate_chief task to another task, dies, and that task hands
    the right to RMGR; no server is told.  Without the fix the number stays owned by the
    dead (HANDED_ON_TASK_OWNED_BY_THE_DEAD); hardened's reclaim left it ownerless, and the
    widened explorer proves every promise at 3 tasks x 2 clients (chief)."""
    from protocols.editions import Fix

    edition = HARDENED if fixed else HARDENED.without(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD)

    result = explore(
        ApiOwnershipSpace(
            tasks=3,
            clients=2,
            strategy=Strategy.CHIEF,
            edition=edition,
            alphabet="api-holding",
        )
    )
    if fixed:
        assert result.violation is None and result.complete
    else:
        assert result.violation is not None
        assert result.violation.invariant == "exit_reclaims_everything"


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_explore_with_the_api_alphabet_finds_nothing_in_hardened(strategy: Strategy) -> None:
    space = ApiOwnershipSpace(tasks=2, clients=1, strategy=strategy, edition=HARDENED)
    result = explore(space)
    assert result.violation is None and result.complete


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_explore_api_holding_breaks_no_promise(strategy: Strategy) -> None:
    checked = {
        f.__name__ for f in (*invariants.STATE_INVARIANTS, *invariants.TRANSITION_INVARIANTS)
    }
    holding = functools.partial(
        ApiOwnershipSpace, tasks=2, clients=1, strategy=strategy, edition=HARDENED
    )
    result = explore(holding(alphabet="api-holding", invariants=checked))
    assert result.violation is None and result.complete


def test_the_api_alphabet_finds_the_self_kill_finding_in_l4env_2007() -> None:
    from protocols.editions import L4ENV_2007

    result = explore(ApiOwnershipSpace(tasks=2, clients=1, edition=L4ENV_2007, alphabet="api"))
    assert result.violation is not None
    assert result.violation.invariant == "every_task_is_in_exactly_one_place"
    assert "Kill(task=t10.0v1, options=<KillOption.FREE: 2>) -> OK" in result.violation.steps[-1]


@pytest.mark.parametrize("alphabet", ["api", "api-holding"])
def test_the_sharded_search_equals_explore_on_the_api_alphabet(alphabet: str) -> None:
    """The widened alphabet yields its actions in a fixed order (no set iteration), so two
    worker processes return explore()'s counts and counterexample exactly."""
    from protocols.explore_dist import explore_distributed

    factory = functools.partial(
        ApiOwnershipSpace, tasks=2, clients=1, edition=HARDENED, alphabet=alphabet
    )
    one, two = explore(factory()), explore_distributed(factory, workers=2)
    assert (one.states, one.transitions, one.depth) == (two.states, two.transitions, two.depth)
    assert one.violation == two.violation
    assert one.transitions > 100


def test_the_cli_explores_with_the_widened_alphabet(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explore", "--tasks", "2", "--clients", "1", "--alphabet", "api"]
    assert main([*argv, "--edition", "hardened"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ownership spec (classic, alphabet api), 2 tasks, 1 clients")
    assert "proved for this bound" in out
    assert main([*argv, "--edition", "l4env-2007", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["alphabet"] == "api"
    assert found["violation"]["invariant"] == "every_task_is_in_exactly_one_place"


@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("strategy", ["chief", "merged"])
def test_actors_a_right_handed_on_then_to_rmgr_comes_back(strategy: str, fixed: bool) -> None:
    """The actors, HANDED_ON_TASK_OWNED_BY_THE_DEAD: init of server 0 takes a task as chief
    and hands the right to init of server 1; server 0 exits, and init 1 hands the right to
    RMGR.  Without the fix the number stays owned by the dead; with it the task server
    has left it ownerless (anyone may kill it with FREE) or RMGR holds it itself (its
    next reclaim takes it back)."""
    from protocols import kernel
    from protocols.editions import Fix
    from protocols.ids import NIL_ID

    edition = HARDENED if fixed else HARDENED.without(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD)
    with boot(task_count=24, linux=2, strategy=strategy, edition=edition) as system:
        one, two = system.init_processes[:2]
        if system.task_server is not None:
            took = system.perform(one, system.task_server, ts.AllocateChief())
        else:
            took = system.perform(one, task_id(RMGR_TASK), rmgr.AllocateChief())
        assert took.error is ErrorCode.OK
        hand = kernel.TaskNew(dest=took.task.task_id, mcp_or_new_chief=two.task_id)
        assert not system.perform(one, NIL_ID, hand).task.is_nil
        gone = system.ref(system.linux[0]).ask(LinuxShutdown(), timeout=20)
        assert getattr(gone, "error", None) is ErrorCode.OK
        back = kernel.TaskNew(dest=took.task.task_id, mcp_or_new_chief=task_id(RMGR_TASK))
        assert not system.perform(two, NIL_ID, back).task.is_nil
        snap = system.snapshot()
        detail = invariants.exit_reclaims_everything(snap)
        if not fixed:
            assert detail is not None and f"dead task {one.task}" in detail
            return
        assert detail is None
        n = took.task.task
        if system.task_server is None:
            assert snap.rmgr.owners[n] == RMGR_TASK
            return
        rec = snap.task_server.record(n) if snap.task_server is not None else None
        assert rec is not None and rec.used and rec.owner == ts.NO_OWNER
        kill = ts.Kill(task=took.task, options=ts.KillOption.FREE)
        assert system.perform(two, system.task_server, kill).error is ErrorCode.OK
        snap = system.snapshot()
        rec = snap.task_server.record(n) if snap.task_server is not None else None
        assert rec is not None and not rec.used, "anyone's kill freed the ownerless number"
