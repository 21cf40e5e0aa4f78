"""protocols.explore_core: the compiled core steps, checks and classes states exactly as
the fast explorer's tuple spec does, and says so when it cannot run a search.

Whole searches of the core against the reference explorer are in
``tests/test_explore_fast.py`` (its ``_same`` runs every engine); here the core is held
to ``FastOwnershipSpace`` state by state: the moves out of every state of a
breadth-first walk (indices, states after, which are left unbuilt), the invariants'
verdict on each, and the classes its fingerprints draw.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import pytest

from protocols import explore_core
from protocols.editions import HARDENED, L4ENV_2007, Edition, Fix
from protocols.explore_fast import FastOwnershipSpace, explore_fast
from protocols.l4linux import Strategy
from scenarios.cli import main

if not explore_core.available():
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the compiled core: {explore_core.unavailable_reason()}")
    pytest.skip(explore_core.unavailable_reason(), allow_module_level=True)

STRATEGIES = (Strategy.CLASSIC, Strategy.CHIEF, Strategy.CHIEF_CACHE)
CONFIGS = (
    {"tasks": 3, "clients": 2, "cache_size": 1},
    {"tasks": 3, "clients": 3},
    {"tasks": 4, "clients": 2, "cache_size": 2},
)


def _plain(s: Any) -> Any:
    """A tuple state with its retired ids as sets (their order is no part of the state)."""
    k, own, ver, handed, used, reset, recs, exits, lx = s
    servers = tuple((*x[:4], frozenset(x[4]), x[5]) for x in lx)
    return (k, own, ver, handed, used, reset, recs, exits, servers)


def _walk(space: FastOwnershipSpace, limit: int) -> int:
    """Breadth first over ``space`` (violations expanded too), comparing the core with the
    tuple spec at every state; returns how many states were compared."""
    start = space.initial()
    classes: dict[int, int] = {}  # the fast space's fingerprint -> the core's
    queue = deque([start])
    seen = {space.fingerprint(start)}
    compared = 0
    while queue and compared < limit:
        s = queue.popleft()
        compared += 1
        ours = list(space.moves(s))
        theirs = explore_core.successors(space, s)
        assert [i for i, _, _ in ours] == [i for i, _, _ in theirs]
        for (_, after, verdict), (_, core_after, broken) in zip(ours, theirs, strict=True):
            assert (verdict is not None) == broken
            assert (after is None) == (core_after is None)
            if after is None or core_after is None:
                continue
            assert _plain(core_after) == _plain(after)
            holds, fp = explore_core.check(space, after)
            assert holds == space.holds(after)
            key = space.fingerprint(after)
            # one class in the fast space is one class in the core, and no two share one
            assert classes.setdefault(key, fp) == fp
            if key not in seen:
                seen.add(key)
                queue.append(after)
    assert len(set(classes.values())) == len(classes)
    return compared


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['tasks']}x{c['clients']}")
@pytest.mark.parametrize("edition", (L4ENV_2007, HARDENED), ids=str)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_the_core_steps_checks_and_classes_states_as_the_tuple_spec(
    strategy: Strategy, edition: Edition, config: dict[str, int]
) -> None:
    space = FastOwnershipSpace(strategy=strategy, edition=edition, **config)
    assert _walk(space, 400) > 50


@pytest.mark.parametrize("edition", (L4ENV_2007, HARDENED), ids=str)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_the_core_steps_a_scripted_client_as_the_tuple_spec(
    strategy: Strategy, edition: Edition
) -> None:
    space = FastOwnershipSpace(tasks=3, clients=2, strategy=strategy, edition=edition, script=True)
    assert _walk(space, 300) == 300


@pytest.mark.parametrize("fix", list(Fix), ids=lambda f: f.name.lower())
def test_the_core_with_one_fix_missing_and_a_scripted_client(fix: Fix) -> None:
    kwargs = {"tasks": 2, "clients": 1, "strategy": Strategy.CHIEF, "script": True}
    assert _walk(FastOwnershipSpace(edition=HARDENED.without(fix), **kwargs), 250) > 5


def test_the_core_judges_only_the_transition_invariants_asked_for() -> None:
    checked = ("only_the_owner_kills_or_frees", "task_new_succeeds_only_for_the_chief")
    for invariants in (checked, checked[:1], checked[1:]):
        space = FastOwnershipSpace(
            tasks=2, clients=1, script=True, edition=L4ENV_2007, invariants=invariants
        )
        assert _walk(space, 300) > 100


@pytest.mark.parametrize("fix", list(Fix), ids=lambda f: f.name.lower())
def test_the_core_with_one_fix_missing(fix: Fix) -> None:
    # each fix the core reads, removed: still the tuple spec's steps and verdicts
    kwargs = {"tasks": 3, "clients": 2, "strategy": Strategy.CHIEF_CACHE, "cache_size": 1}
    assert _walk(FastOwnershipSpace(edition=HARDENED.without(fix), **kwargs), 250) > 5


def test_the_core_finds_the_task_cache_counterexample_as_the_python_search_does() -> None:
    kwargs = {
        "tasks": 3,
        "clients": 2,
        "strategy": Strategy.CHIEF_CACHE,
        "cache_size": 1,
        "edition": HARDENED.without(Fix.TASK_CACHE_REUSES_OLD_ID),
    }
    python = explore_fast(FastOwnershipSpace(**kwargs), engine="python")
    compiled = explore_fast(FastOwnershipSpace(**kwargs), engine="compiled")
    assert compiled.engine == "compiled" and python.engine == "python"
    assert compiled.violation is not None
    assert compiled.violation == python.violation
    assert compiled.violation.invariant == "reused_tasks_get_a_new_version"
    assert (compiled.states, compiled.transitions, compiled.depth) == (
        python.states,
        python.transitions,
        python.depth,
    )


def test_a_depth_bound_leaves_the_same_frontier() -> None:
    kwargs = {"tasks": 4, "clients": 2, "strategy": Strategy.CHIEF}
    runs = [
        explore_fast(FastOwnershipSpace(**kwargs), max_depth=5, engine=e)
        for e in ("python", "compiled")
    ]
    figures = [(r.states, r.transitions, r.depth, r.complete, r.frontier) for r in runs]
    assert figures[0] == figures[1] and not runs[1].complete and runs[1].frontier > 100


def test_progress_is_reported_per_level() -> None:
    levels: list[tuple[int, int, int]] = []
    result = explore_fast(
        FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.CHIEF),
        progress=lambda *figures: levels.append(figures),
        engine="compiled",
    )
    assert [level for level, _, _ in levels] == list(range(1, len(levels) + 1))
    assert levels[-1][1:] == (result.states, result.transitions)


def test_auto_runs_the_core_where_it_covers_the_space_and_python_elsewhere() -> None:
    native = explore_fast(FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.CHIEF))
    scripted = explore_fast(FastOwnershipSpace(tasks=2, clients=1, script=True, edition=L4ENV_2007))
    merged = explore_fast(FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.MERGED))
    assert (native.engine, scripted.engine, merged.engine) == ("compiled", "compiled", "python")


def test_compiled_refuses_a_space_it_cannot_run_and_a_bad_engine() -> None:
    merged = FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.MERGED)
    with pytest.raises(ValueError, match="cannot run"):
        explore_fast(merged, engine="compiled")
    with pytest.raises(ValueError, match="engine must be one of"):
        explore_fast(FastOwnershipSpace(tasks=2, clients=1), engine="fast")


def test_a_start_state_beyond_the_core_runs_the_python_search() -> None:
    # More retired ids than the core keeps per server (far below every live version,
    # so they change no class): the core declines, the Python search answers.
    kwargs = {"tasks": 3, "clients": 2, "strategy": Strategy.CHIEF}
    space = FastOwnershipSpace(**kwargs)
    k, own, ver, handed, used, reset, recs, exits, lx = space.initial()
    many = frozenset(
        12 | v << 18 for v in range(100, 100 + explore_core._CORE.CONSTANTS["MAXR"] + 1)
    )
    first = (*lx[0][:4], lx[0][4] | many, lx[0][5])
    space._boot = (k, own, ver, handed, used, reset, recs, exits, (first, *lx[1:]))
    assert explore_core.explore_compiled(space) is None
    result = explore_fast(space)
    expected = explore_fast(FastOwnershipSpace(**kwargs), engine="python")
    assert result.engine == "python"
    assert (result.states, result.transitions, result.depth) == (
        expected.states,
        expected.transitions,
        expected.depth,
    )


def test_malformed_input_to_the_core_is_refused_with_a_clear_error() -> None:
    core = explore_core._CORE
    space = FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.CHIEF)
    cfg = explore_core.config(space)
    assert cfg is not None
    flat = explore_core.flatten(space.initial(), space.task_count)
    with pytest.raises(ValueError, match="too few"):
        core.explore(cfg[:5], flat)
    with pytest.raises(ValueError, match="beyond what the compiled core holds"):
        core.explore((99, *cfg[1:]), flat)
    with pytest.raises(ValueError, match="does not fit"):
        core.successors(cfg, flat[:-3])
    with pytest.raises(TypeError):
        core.check(cfg, [*flat[:-1], "x"])
    with pytest.raises(OverflowError):
        core.check(cfg, [*flat[:-1], 2**40])


def test_the_cli_names_the_engine_and_refuses_compiled_where_it_cannot_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explore", "--tasks", "3", "--clients", "2", "--strategy", "chief"]) == 0
    assert "engine compiled (C core)" in capsys.readouterr().out
    args = ["explore", "--tasks", "3", "--clients", "2", "--engine", "python"]
    assert main(args) == 0
    assert "engine python" in capsys.readouterr().out
    assert main(["explore", "--strategy", "merged", "--engine", "compiled"]) == 2
    assert "cannot run this search" in capsys.readouterr().err
    assert main(["explore", "--workers", "2", "--engine", "compiled"]) == 0
    assert "engine compiled (C core)" in capsys.readouterr().out
    assert main(["explore", "--reference", "--engine", "compiled"]) == 2
    assert "default alphabet only" in capsys.readouterr().err


def test_the_core_walk_moves_its_own_states_as_the_fast_space_moves_tuples() -> None:
    kwargs = {"tasks": 3, "clients": 2, "strategy": Strategy.CHIEF_CACHE, "cache_size": 1}
    walk = explore_core.CompiledOwnershipSpace(**kwargs)
    fast = FastOwnershipSpace(**kwargs)
    start = walk.initial()
    assert _plain(walk.tuple_state(start)) == _plain(fast.initial())
    ours = [(i, None if a is None else _plain(a)) for i, a, _ in fast.moves(fast.initial())]
    theirs = [
        (i, None if a is None else _plain(walk.tuple_state(a))) for i, a, _ in walk.moves(start)
    ]
    assert ours == theirs and len(ours) > 3
    after = next(a for _, a, _ in walk.moves(start) if a is not None)
    assert walk.holds(after) == fast.holds(walk.tuple_state(after))
    assert walk.fingerprint(after) == explore_core.check(fast, walk.tuple_state(after))[1]


def test_the_core_walk_refuses_bytes_that_are_no_state_and_spaces_it_cannot_run() -> None:
    walk = explore_core.CompiledOwnershipSpace(tasks=3, clients=2)
    for junk in (b"", b"\x05\x01", walk.initial()[:-1], walk.initial() + b"\x00"):
        with pytest.raises(ValueError, match="not a state"):
            walk.fingerprint(junk)
        with pytest.raises(ValueError, match="not a state"):
            walk.moves(junk)
    with pytest.raises(ValueError, match="cannot run this space"):
        explore_core.CompiledOwnershipSpace(tasks=3, clients=2, strategy=Strategy.MERGED)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_hardened_is_proved_at_four_tasks_and_three_servers(strategy: Strategy) -> None:
    # Beyond what the Python search proves in CI time: every state invariant holds in
    # every state reachable by L4Linux calls and exits (chief+cache: 39,881 states).
    space = FastOwnershipSpace(tasks=4, clients=3, strategy=strategy, edition=HARDENED)
    result = explore_fast(space, engine="compiled")
    assert result.complete and result.violation is None
    assert result.states > 30_000 and result.depth >= 18
