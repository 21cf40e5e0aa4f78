"""protocols.explore_dist: the sharded search gives exactly what the single-process one gives."""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from protocols import explore_core
from protocols.editions import HARDENED, L4ENV_2007
from protocols.explore import ExploreResult, KernelRmgrSpace, Space, explore
from protocols.explore_codec import encode
from protocols.explore_core import CompiledOwnershipSpace
from protocols.explore_dist import (
    FP_MASK,
    DistError,
    DistResult,
    explore_distributed,
    fingerprinter,
    stable_fingerprint,
)
from protocols.explore_fast import FastOwnershipSpace, FingerprintResult, explore_fast
from protocols.explore_ownership import OwnershipSpace
from protocols.l4linux import Strategy
from scenarios import cli
from tests.test_explore import lenient_step

ROOT = Path(__file__).resolve().parent.parent
Factory = Callable[[], Space[Any]]

TRANSITION_INVARIANTS = ("only_the_owner_kills_or_frees", "task_new_succeeds_only_for_the_chief")
CONFIGURATIONS: dict[str, Factory] = {
    "kernel-rmgr hardened, proved": functools.partial(
        KernelRmgrSpace, tasks=2, clients=2, edition=HARDENED
    ),
    "kernel-rmgr l4env-2007, a state invariant broken": functools.partial(
        KernelRmgrSpace, tasks=2, clients=2, edition=L4ENV_2007
    ),
    "kernel-rmgr l4env-2007, a transition invariant broken": functools.partial(
        KernelRmgrSpace, tasks=2, clients=2, edition=L4ENV_2007, invariants=TRANSITION_INVARIANTS
    ),
    "kernel-rmgr with a broken kernel, 4 steps": functools.partial(
        KernelRmgrSpace, tasks=2, clients=1, kernel_step=lenient_step, edition=HARDENED
    ),
    "ownership chief l4env-2007, proved": functools.partial(
        OwnershipSpace, tasks=2, clients=2, strategy=Strategy.CHIEF, edition=L4ENV_2007
    ),
    "ownership chief+cache hardened, proved": functools.partial(
        OwnershipSpace, tasks=3, clients=1, strategy=Strategy.CHIEF_CACHE, edition=HARDENED
    ),
    "ownership chief+cache l4env-2007, the cache reuses an id": functools.partial(
        OwnershipSpace,
        tasks=2,
        clients=1,
        strategy=Strategy.CHIEF_CACHE,
        processes=3,
        cache_size=1,
        edition=L4ENV_2007,
    ),
}


def outcome(result: ExploreResult) -> tuple[object, ...]:
    return result.states, result.transitions, result.depth, result.complete, result.violation


def with_levels(search: Callable[..., ExploreResult]) -> tuple[ExploreResult, list[object]]:
    """A search's result and what it reported per level."""
    levels: list[object] = []
    return search(progress=lambda *level: levels.append(level)), levels


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_two_worker_processes_find_what_one_process_finds(name: str) -> None:
    factory = CONFIGURATIONS[name]
    single, levels = with_levels(functools.partial(explore, factory()))
    dist, dist_levels = with_levels(functools.partial(explore_distributed, factory, workers=2))
    assert outcome(dist) == outcome(single)  # the counterexample too, step for step
    assert dist_levels == levels  # progress: (level, states, transitions) per level


FAST: dict[str, Callable[[], FastOwnershipSpace]] = {
    "chief+cache hardened 3 x 3, proved": functools.partial(
        FastOwnershipSpace, tasks=3, clients=3, strategy=Strategy.CHIEF_CACHE, edition=HARDENED
    ),
    "classic l4env-2007 3 x 2, proved": functools.partial(
        FastOwnershipSpace, tasks=3, clients=2, edition=L4ENV_2007
    ),
    "scripted client l4env-2007, a state invariant broken": functools.partial(
        FastOwnershipSpace, tasks=2, clients=1, script=True, edition=L4ENV_2007
    ),
    "chief+cache l4env-2007 4 x 2, the cache reuses an id": functools.partial(
        FastOwnershipSpace,
        tasks=4,
        clients=2,
        strategy=Strategy.CHIEF_CACHE,
        cache_size=1,
        edition=L4ENV_2007,
    ),
}


@pytest.mark.parametrize("name", FAST)
def test_workers_on_the_fast_space_find_what_explore_fast_finds(name: str) -> None:
    factory = FAST[name]
    single, levels = with_levels(functools.partial(explore_fast, factory()))
    dist, dist_levels = with_levels(functools.partial(explore_distributed, factory, workers=2))
    assert outcome(dist) == outcome(single)  # the counterexample too, labels and all
    assert dist_levels == levels
    assert isinstance(dist, DistResult) and isinstance(single, FingerprintResult)
    # a search stopped by a violation may have admitted states found after it
    assert sum(dist.workers_states) == dist.states or dist.violation is not None
    assert all(dist.workers_states) and dist.omission_probability == single.omission_probability


COMPILED = [name for name in FAST if "scripted" not in name]


@pytest.mark.parametrize("name", COMPILED)
def test_workers_on_the_compiled_core_find_what_the_python_search_finds(name: str) -> None:
    if not explore_core.available():
        pytest.skip(explore_core.unavailable_reason())
    kwargs = cast("functools.partial[FastOwnershipSpace]", FAST[name]).keywords
    compiled = functools.partial(CompiledOwnershipSpace, **kwargs)
    single, levels = with_levels(functools.partial(explore_fast, FAST[name](), engine="python"))
    for workers in (2, 3):
        dist, dist_levels = with_levels(
            functools.partial(explore_distributed, compiled, workers=workers)
        )
        assert outcome(dist) == outcome(single)  # the counterexample too, labels and all
        assert dist_levels == levels and dist.engine == "compiled"


def test_the_fast_counterexample_is_rebuilt_across_three_workers_and_cut_by_depth() -> None:
    factory = FAST["chief+cache l4env-2007 4 x 2, the cache reuses an id"]
    dist = explore_distributed(factory, workers=3)
    assert outcome(dist) == outcome(explore_fast(factory()))
    assert dist.violation is not None and len(dist.violation.steps) == 3
    assert len(set(fast_owners_along(factory(), dist.violation.steps, 3))) > 1
    cut = explore_distributed(factory, workers=3, max_depth=2)
    assert outcome(cut) == outcome(explore_fast(factory(), max_depth=2)) and not cut.complete
    assert cut.frontier == explore_fast(factory(), max_depth=2).frontier > 0


def fast_owners_along(space: FastOwnershipSpace, steps: tuple[str, ...], workers: int) -> list[int]:
    """The worker owning each state of a counterexample (replayed in the reference)."""
    state = space.ref.initial()
    owners = [(space.fingerprint(encode(state)) & FP_MASK) % workers]
    for step in steps:
        state = next(after for label, after, _bad in space.ref.actions(state) if label == step)
        owners.append((space.fingerprint(encode(state)) & FP_MASK) % workers)
    return owners


@pytest.mark.parametrize(
    "factory",
    [
        FAST["chief+cache hardened 3 x 3, proved"],
        FAST["chief+cache l4env-2007 4 x 2, the cache reuses an id"],
        CONFIGURATIONS["kernel-rmgr l4env-2007, a transition invariant broken"],
        CONFIGURATIONS["kernel-rmgr l4env-2007, a state invariant broken"],
    ],
    ids=["proved", "cache reuse", "transition", "state"],
)
def test_levels_expanded_a_few_states_per_round_give_the_same_search(factory: Factory) -> None:
    space = factory()
    one = explore_fast if isinstance(space, FastOwnershipSpace) else explore
    single, levels = with_levels(functools.partial(one, space))
    dist, dist_levels = with_levels(
        functools.partial(explore_distributed, factory, workers=3, part=5)
    )
    assert outcome(dist) == outcome(single) and dist_levels == levels


def test_fast_fingerprints_are_the_same_in_a_process_with_other_string_hashes() -> None:
    space = FAST["scripted client l4env-2007, a state invariant broken"]()
    afters = [a for _i, a, _v in space.moves(space.initial()) if a is not None]
    here = [space.fingerprint(a) for a in afters]
    code = (
        "import json, pickle, sys\n"
        "from protocols.editions import L4ENV_2007\n"
        "from protocols.explore_fast import FastOwnershipSpace\n"
        "space = FastOwnershipSpace(tasks=2, clients=1, script=True, edition=L4ENV_2007)\n"
        "afters = pickle.loads(sys.stdin.buffer.read())\n"
        "print(json.dumps([space.fingerprint(a) for a in afters]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    there = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(afters),
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(there.stdout) == here and len(set(here)) > 1


def test_the_violations_tested_are_of_both_kinds_and_the_proofs_are_complete() -> None:
    results = {name: explore(factory()) for name, factory in CONFIGURATIONS.items()}
    found = {r.violation.invariant for r in results.values() if r.violation is not None}
    assert found & set(TRANSITION_INVARIANTS) and found - set(TRANSITION_INVARIANTS)
    assert any(r.complete for r in results.values())


def owners_along(factory: Factory, steps: tuple[str, ...], workers: int) -> list[int]:
    """The worker owning each state of a counterexample, replayed by its labels."""
    space = factory()
    fingerprint = fingerprinter(space)
    state = space.initial()
    owners = [fingerprint(state) % workers]
    for step in steps:
        state = next(after for label, after, _bad in space.actions(state) if label == step)
        owners.append(fingerprint(state) % workers)
    return owners


def test_a_counterexample_is_rebuilt_across_workers_with_three_of_them() -> None:
    factory = CONFIGURATIONS["kernel-rmgr with a broken kernel, 4 steps"]
    dist = explore_distributed(factory, workers=3)
    assert outcome(dist) == outcome(explore(factory()))
    assert dist.violation is not None and len(dist.violation.steps) == 4
    assert len(set(owners_along(factory, dist.violation.steps, 3))) > 1


def test_a_depth_bound_cuts_the_search_as_in_one_process() -> None:
    factory = CONFIGURATIONS["kernel-rmgr hardened, proved"]
    dist = explore_distributed(factory, workers=2, max_depth=3)
    assert not dist.complete and dist.depth == 3
    assert outcome(dist) == outcome(explore(factory(), max_depth=3))


class CoarseSpace(KernelRmgrSpace):
    """Fingerprints of its own, in only five values: the search must use them."""

    def fingerprint(self, state: Any) -> int:
        return stable_fingerprint(self.canonical(state)) % 5


def test_a_space_with_its_own_fingerprint_is_deduplicated_by_it() -> None:
    factory = functools.partial(CoarseSpace, tasks=2, clients=1, edition=HARDENED)
    dist = explore_distributed(factory, workers=2)
    assert dist.states <= 5 < explore(factory()).states


def test_fingerprints_are_the_same_in_a_process_with_other_string_hashes() -> None:
    space = OwnershipSpace(tasks=2, clients=1, strategy=Strategy.CHIEF_CACHE, script=True)
    start = space.initial()
    keys: list[Hashable] = list({space.canonical(a): 0 for _l, a, _b in space.actions(start)})
    keys.append(("strings", "hash", "differently"))
    here = [stable_fingerprint(k) for k in keys]
    code = (
        "import json, sys\n"
        "from protocols.explore_dist import stable_fingerprint\n"
        "keys = eval(sys.stdin.read())\n"
        "print(json.dumps([stable_fingerprint(k) for k in keys]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    there = subprocess.run(
        [sys.executable, "-c", code],
        input=repr(keys),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(there.stdout) == here and len(set(here)) == len(here)


class SetSpace(KernelRmgrSpace):
    def canonical(self, state: Any) -> Hashable:
        return frozenset(super().canonical(state))  # type: ignore[arg-type]


def test_a_canonical_key_whose_repr_depends_on_the_process_is_refused() -> None:
    with pytest.raises(ValueError, match="canonical keys must be"):
        explore_distributed(functools.partial(SetSpace, tasks=1, clients=1), workers=2)


@pytest.mark.parametrize(("workers", "backend"), [(0, "processes"), (2, "threads")])
def test_bad_worker_counts_and_backends_are_refused(workers: int, backend: Any) -> None:
    with pytest.raises(ValueError):
        explore_distributed(
            CONFIGURATIONS["kernel-rmgr hardened, proved"], workers=workers, backend=backend
        )


class FailingSpace(KernelRmgrSpace):
    def actions(self, state: Any) -> Iterator[Any]:
        raise RuntimeError("this spec cannot step")


def test_a_worker_failing_is_one_error_line_naming_the_worker() -> None:
    with pytest.raises(DistError, match=r"worker \d failed in expand .*cannot step") as caught:
        explore_distributed(functools.partial(FailingSpace, tasks=1, clients=1), workers=2)
    assert "\n" not in str(caught.value)


def test_the_cli_reports_workers_and_backend_and_the_same_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explore", "--spec", "kernel-rmgr", "--edition", "hardened", "--clients", "1", "--json"]
    assert cli.main(argv) == 0
    single = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, "--workers", "2"]) == 0
    dist = json.loads(capsys.readouterr().out)
    assert (single["backend"], single["workers"]) == ("single", 1)
    assert (dist["backend"], dist["workers"]) == ("processes", 2)
    for field in ("states", "transitions", "depth", "complete", "violation"):
        assert dist[field] == single[field]


def test_the_cli_runs_the_fast_space_on_workers_and_reports_each_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explore", "--strategy", "chief+cache", "--clients", "3", "--json"]
    assert cli.main(argv) == 0
    single = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, "--workers", "2"]) == 0
    dist = json.loads(capsys.readouterr().out)
    assert dist["visited"] == single["visited"] == "fingerprints"
    assert sum(dist["workers_states"]) == dist["states"] == single["states"]
    assert len(dist["workers_peak_memory_bytes"]) == len(dist["workers_cpu_seconds"]) == 2
    for field in ("states", "transitions", "depth", "complete", "violation"):
        assert dist[field] == single[field]


def test_ray_missing_is_one_error_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert cli.main(["explore", "--spec", "kernel-rmgr", "--ray", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'l4sim[dist]'" in err[0]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One local Ray for the module (starting Ray takes seconds), shut down at its end."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_actors_find_what_one_process_finds(ray_session: Any) -> None:
    factory = CONFIGURATIONS["ownership chief+cache l4env-2007, the cache reuses an id"]
    dist = explore_distributed(factory, workers=2, backend="ray")
    assert outcome(dist) == outcome(explore(factory()))
    fast = FAST["classic l4env-2007 3 x 2, proved"]
    assert outcome(explore_distributed(fast, workers=2, backend="ray")) == outcome(
        explore_fast(fast())
    )
    if explore_core.available():
        cached = FAST["chief+cache l4env-2007 4 x 2, the cache reuses an id"]
        compiled = functools.partial(CompiledOwnershipSpace, **cached.keywords)
        dist = explore_distributed(compiled, workers=2, backend="ray")
        assert outcome(dist) == outcome(explore_fast(cached(), engine="python"))
        assert dist.engine == "compiled" and dist.violation is not None
    assert ray_session.is_initialized()  # a Ray the caller started is left running


def test_an_unreachable_ray_head_is_one_error_line_within_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("ray")
    assert cli.main(["explore", "--spec", "kernel-rmgr", "--ray", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach Ray at '127.0.0.1:1'" in err[0]
