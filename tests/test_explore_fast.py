"""protocols.explore_fast: the tuple-state explorer gives exactly what the reference gives,
in its Python search and in its compiled core (``protocols.explore_core``) alike.

Every strategy of both editions at 3 x 2 and 3 x 3, scripted clients, an edition that
breaks a promise (a counterexample) and the findings' bounds: the same states,
transitions, depth, completeness and counterexample (steps and all) as
``explore(OwnershipSpace(...))``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from protocols import explore_core
from protocols.editions import HARDENED, L4ENV_2007, Edition, Fix
from protocols.explore import ExploreResult, explore
from protocols.explore_codec import encode
from protocols.explore_fast import FastOwnershipSpace, explore_fast
from protocols.explore_ownership import OwnershipSpace
from protocols.l4linux import Strategy
from scenarios.cli import main

STRATEGIES = (Strategy.CLASSIC, Strategy.CHIEF, Strategy.CHIEF_CACHE)
EDITIONS = (L4ENV_2007, HARDENED)


def _same(kwargs: dict[str, Any], max_depth: int | None = None) -> ExploreResult:
    """The reference and the fast explorer's engines (its Python search, and the compiled
    core where that covers the space) on one configuration; asserts they all agree and
    returns the reference's."""
    reference = explore(OwnershipSpace(**kwargs), max_depth=max_depth)
    engines = ["python"]
    if explore_core.config(FastOwnershipSpace(**kwargs)) is not None:
        engines.append("compiled")
    for engine in engines:
        fast = explore_fast(FastOwnershipSpace(**kwargs), max_depth=max_depth, engine=engine)
        assert fast.engine == engine
        assert (fast.states, fast.transitions, fast.depth, fast.complete) == (
            reference.states,
            reference.transitions,
            reference.depth,
            reference.complete,
        ), engine
        assert fast.violation == reference.violation, engine
    return reference


@pytest.mark.parametrize("clients", (2, 3))
@pytest.mark.parametrize("edition", EDITIONS, ids=str)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_every_strategy_and_edition_at_three_tasks(
    strategy: Strategy, edition: Edition, clients: int
) -> None:
    result = _same({"tasks": 3, "clients": clients, "strategy": strategy, "edition": edition})
    assert result.complete and result.violation is None and result.states > 100


@pytest.mark.parametrize("edition", EDITIONS, ids=str)
def test_a_one_slot_cache_at_four_tasks(edition: Edition) -> None:
    kwargs = {"tasks": 4, "clients": 2, "strategy": Strategy.CHIEF_CACHE, "cache_size": 1}
    result = _same({**kwargs, "edition": edition}, max_depth=7)
    if edition is L4ENV_2007:
        # The cache hands out its stored id unchanged: a shortest counterexample.
        assert result.violation is not None and len(result.violation.steps) == 3
    else:
        assert result.violation is None and result.states > 500


def test_a_scripted_client_and_its_counterexample() -> None:
    result = _same({"tasks": 2, "clients": 1, "script": True, "edition": L4ENV_2007})
    assert result.violation is not None and len(result.violation.steps) == 2


@pytest.mark.parametrize("strategy", (Strategy.CLASSIC, Strategy.CHIEF), ids=lambda s: s.value)
def test_a_scripted_client_in_hardened_up_to_a_depth(strategy: Strategy) -> None:
    result = _same(
        {"tasks": 2, "clients": 1, "script": True, "edition": HARDENED, "strategy": strategy},
        max_depth=8,
    )
    assert result.violation is None and result.states > 500


@pytest.mark.slow
def test_a_scripted_client_in_hardened_to_the_end() -> None:
    result = _same({"tasks": 2, "clients": 1, "script": True, "edition": HARDENED})
    assert result.complete


def test_the_task_cache_counterexample_of_l4env_2007() -> None:
    # The cache hands out a stored id unchanged: invariant 6 breaks within 4 steps.
    kwargs = {
        "tasks": 2,
        "clients": 1,
        "strategy": Strategy.CHIEF_CACHE,
        "processes": 3,
        "cache_size": 1,
        "edition": HARDENED.without(Fix.TASK_CACHE_REUSES_OLD_ID),
    }
    result = _same(kwargs)
    assert result.violation is not None
    assert result.violation.invariant == "reused_tasks_get_a_new_version"


def test_the_merged_strategy_goes_through_the_reference() -> None:
    result = _same({"tasks": 3, "clients": 2, "strategy": Strategy.MERGED, "edition": HARDENED})
    assert result.complete


def test_the_encoding_is_exact_both_ways() -> None:
    space = FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.CHIEF_CACHE, script=True)
    first = [after for _, after, _ in space.ref.actions(space.ref.initial())]
    seen = 0
    for state in first[::4]:
        for _, after, _ in itertools.islice(space.ref.actions(state), 0, None, 3):
            code = encode(after)
            assert space.snapshot(code) == after
            assert encode(space.snapshot(code)) == code
            seen += 1
    assert seen > 50


def test_the_result_states_its_fingerprint_omission_probability() -> None:
    result = explore_fast(FastOwnershipSpace(tasks=3, clients=2, strategy=Strategy.CHIEF))
    n = result.states
    assert result.omission_probability == pytest.approx(n * (n - 1) / 2 / 2.0**64)
    assert 0 < result.omission_probability < 1e-12
    assert result.peak_memory_bytes > 0 and result.cpu_seconds > 0


@pytest.mark.parametrize(("edition", "max_depth"), [(L4ENV_2007, None), (HARDENED, 6)], ids=str)
def test_a_frontier_kept_as_objects_or_packed_gives_the_same_search(
    edition: Edition, max_depth: int | None
) -> None:
    kwargs = {"tasks": 2, "clients": 1, "strategy": Strategy.CHIEF, "script": True}
    runs = [
        explore_fast(
            FastOwnershipSpace(**kwargs, edition=edition), max_depth=max_depth, compact=compact
        )
        for compact in (False, True)
    ]
    loose, packed = ((r.states, r.transitions, r.depth, r.frontier, r.violation) for r in runs)
    assert loose == packed
    # one search stopped by a counterexample, one cut with a frontier left
    assert (runs[0].violation is not None) == (edition is L4ENV_2007)
    assert (runs[0].frontier > 100) == (edition is HARDENED)


@pytest.mark.parametrize("fix", list(Fix), ids=lambda f: f.name.lower())
def test_a_scripted_client_with_one_fix_missing(fix: Fix) -> None:
    kwargs = {"tasks": 2, "clients": 1, "script": True, "strategy": Strategy.CHIEF}
    _same({**kwargs, "edition": HARDENED.without(fix)}, max_depth=5)


def test_only_the_transition_invariants_of_a_scripted_client() -> None:
    checked = ("only_the_owner_kills_or_frees", "task_new_succeeds_only_for_the_chief")
    kwargs = {"tasks": 2, "clients": 1, "script": True, "invariants": checked}
    result = _same({**kwargs, "edition": L4ENV_2007}, max_depth=6)
    assert result.violation is None


def test_the_findings_bound_of_free_leaves_chief_with_client() -> None:
    # The scripted client beside two chief servers: its shortest counterexample, and the
    # first levels of hardened, where the promise holds.
    kwargs = {
        "tasks": 3,
        "clients": 2,
        "script": True,
        "strategy": Strategy.CHIEF,
        "invariants": ("every_task_is_in_exactly_one_place",),
    }
    broken = _same({**kwargs, "edition": HARDENED.without(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT)})
    assert broken.violation is not None and len(broken.violation.steps) == 2
    assert _same({**kwargs, "edition": HARDENED}, max_depth=4).violation is None


def test_the_cli_says_how_the_visited_set_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explore", "--strategy", "chief+cache", "--tasks", "3", "--clients", "2", "--json"]
    assert main(args) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main([*args, "--reference"]) == 0
    reference = json.loads(capsys.readouterr().out)
    for key in ("states", "transitions", "depth", "complete", "violation", "frontier"):
        assert fast[key] == reference[key], key
    assert fast["visited"] == "fingerprints" and reference["visited"] == "states"
    assert 0 < fast["omission_probability"] < 1e-12
    assert fast["peak_memory_bytes"] > 0 and fast["cpu_seconds"] >= 0
    assert main(args[:-1]) == 0
    text = capsys.readouterr().out
    assert "64-bit fingerprints" in text and "omission" in text


def test_progress_goes_to_stderr_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--tasks", "3", "--clients", "2", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "level 9: 232 states" in err and "frontier 0" in err and "MiB" in err
