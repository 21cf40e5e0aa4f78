"""``l4sim explore``: walk every reachable state of a spec for a small bound.

The search itself is ``protocols.explore`` (breadth first, shortest counterexamples) over
``protocols.explore_ownership.OwnershipSpace`` (the whole system with L4Linux clients)
or ``protocols.explore.KernelRmgrSpace`` (the kernel and RMGR with scripted clients).
Exit status 0 when every invariant holds in every reachable state, 1 with a shortest
counterexample, 2 for a bad bound.

A single-process search of the ownership spec runs ``protocols.explore_fast`` (tuple
states, 64-bit fingerprints in the visited set: the output states the probability that
two states shared one), in its compiled core (``protocols.explore_core``, C) where that
covers the search (``--engine`` chooses; the output names the engine); ``--reference``
runs the reference explorer on the attrs spec, which stores every canonical state.  All
give the same counts and counterexamples.  The widened alphabets (``--alphabet api``,
``api-holding``) extend the reference spec only, so they always run the reference explorer.
On a terminal (or with ``--progress``) each breadth-first level prints a progress line
on stderr: states, transitions, depth, frontier, states per second, peak memory.

``--workers N`` spreads the search over N processes on this machine and ``--ray ADDRESS``
over a Ray cluster (``protocols.explore_dist``); either gives exactly the counts and the
counterexample of the single-process search, on the same space (the fast one for the
ownership spec's default alphabet, the reference otherwise; with ``--json`` each worker's
CPU seconds, peak memory and states too).  ADDRESS is Ray's: ``local`` starts a new
Ray on this machine, ``auto`` joins the cluster this machine is part of (``ray start``),
``HOST:PORT`` names a cluster's head; without ``--workers`` there is one worker per CPU of
the cluster.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any, cast

from protocols.editions import edition
from protocols.explore import ExploreResult, KernelRmgrSpace, Space, explore
from protocols.explore_api import ALPHABETS, ApiOwnershipSpace
from protocols.explore_backends import DistError, init_ray
from protocols.explore_core import CompiledOwnershipSpace, unavailable_reason
from protocols.explore_dist import DistResult, SpaceFactory, explore_distributed
from protocols.explore_fast import ENGINES, FastOwnershipSpace, FingerprintResult, explore_fast
from protocols.explore_ownership import OwnershipSpace
from protocols.explore_walk import Walk, peak_rss_bytes
from protocols.l4linux import DEFAULT_CACHE_SIZE, Strategy
from scenarios._common import ScenarioError, add_edition_arg, positive_int

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``l4sim explore``."""
    parser.add_argument(
        "--spec",
        choices=("ownership", "kernel-rmgr"),
        default="ownership",
        help="which spec to explore: the whole system with L4Linux clients (ownership, "
        "the default) or the kernel and RMGR with scripted clients (kernel-rmgr)",
    )
    add_edition_arg(parser)
    parser.add_argument(
        "--tasks",
        type=positive_int,
        default=None,
        help="task numbers to hand out; for ownership those the processes run in, the "
        "inits included (default 3 for ownership, 2 for kernel-rmgr)",
    )
    parser.add_argument(
        "--clients",
        type=positive_int,
        default=2,
        help="client tasks; for ownership L4Linux servers (default 2)",
    )
    parser.add_argument(
        "--strategy",
        choices=tuple(s.value for s in Strategy),
        default=Strategy.CLASSIC.value,
        help="ownership: the L4Linux task strategy (default classic)",
    )
    parser.add_argument(
        "--processes",
        type=positive_int,
        default=None,
        help="ownership: fork only while a server has fewer processes, zombies included "
        "(default: --tasks)",
    )
    parser.add_argument(
        "--cache-size",
        type=positive_int,
        default=DEFAULT_CACHE_SIZE,
        help="ownership: slots of each L4Linux's task cache (chief+cache only; "
        f"default {DEFAULT_CACHE_SIZE}, like lx_task_cache)",
    )
    parser.add_argument(
        "--script",
        action="store_true",
        help="ownership: add a misbehaving client calling the task server, RMGR and l4_task_new",
    )
    parser.add_argument(
        "--alphabet",
        choices=ALPHABETS,
        default="default",
        help="ownership: what the callers may do: default, api (processes are clients of "
        "every server too) or api-holding (api plus chief hand-over to any task); "
        "the widened ones run the reference explorer (protocols/explore_api.py)",
    )
    parser.add_argument(
        "--version-window",
        type=positive_int,
        default=2,
        help="ownership: version gaps counted exactly up to this many increments (default 2)",
    )
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        help="stop after this many steps (default: until no new state)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="search with this many worker processes (with --ray: Ray actors; default "
        "there: one per CPU of the cluster); same result as one process",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="search on a Ray cluster (pip install 'l4sim[dist]'): 'local' starts one on "
        "this machine, 'auto' joins the one this machine is part of, or HOST:PORT",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="ownership: run the reference explorer on the attrs spec (slow; every "
        "canonical state kept) instead of the fast one (fingerprints)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="ownership, default alphabet: 'compiled' runs the C core (classic, chief, "
        "chief+cache, with or without --script; with --workers/--ray too), 'python' the "
        "Python tuple search; 'auto' (default) the core where it covers the search; all "
        "give the same result",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print a progress line per level on stderr even when it is not a terminal",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Walk every reachable state of a spec; exit 1 with a shortest counterexample."""
    if args.tasks is None:
        args.tasks = 3 if args.spec == "ownership" else 2
    factory: SpaceFactory
    try:
        if args.spec == "ownership":
            factory = functools.partial(
                _ownership_space(args.alphabet, args.reference),
                tasks=args.tasks,
                clients=args.clients,
                strategy=Strategy(args.strategy),
                processes=args.processes,
                script=args.script,
                version_window=args.version_window,
                cache_size=args.cache_size,
                edition=edition(args.edition),
            )
        else:
            factory = functools.partial(
                KernelRmgrSpace,
                tasks=args.tasks,
                clients=args.clients,
                edition=edition(args.edition),
            )
        factory().initial()
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    backend = "ray" if args.ray is not None else "processes" if args.workers else "single"
    if args.spec == "ownership" and args.alphabet == "default" and not args.reference:
        factory = _engine_factory(factory, backend, args.engine)
    elif args.engine == "compiled":
        raise ScenarioError(
            "--engine compiled runs the ownership spec's default alphabet only (no "
            "--reference, --alphabet or --spec kernel-rmgr)"
        )
    show = args.progress or (sys.stderr.isatty() and not args.json)
    try:
        result, workers = _search(args, factory, backend, _Progress() if show else None)
    except DistError as exc:
        raise ScenarioError(str(exc)) from None
    if show and sys.stderr.isatty():
        print(file=sys.stderr)
    v = result.violation
    if args.json:
        print(
            json.dumps(
                {
                    "spec": args.spec,
                    "tasks": args.tasks,
                    "clients": args.clients,
                    **(
                        {
                            "strategy": args.strategy,
                            "script": args.script,
                            "cache_size": args.cache_size,
                            "edition": args.edition,
                            "alphabet": args.alphabet,
                        }
                        if args.spec == "ownership"
                        else {}
                    ),
                    "backend": backend,
                    "engine": getattr(result, "engine", "python"),
                    "workers": workers,
                    "states": result.states,
                    "transitions": result.transitions,
                    "depth": result.depth,
                    "complete": result.complete,
                    "seconds": round(result.seconds, 3),
                    "states_per_second": round(result.states_per_second),
                    "frontier": getattr(
                        result, "frontier", 0 if result.complete or v is not None else None
                    ),
                    **_memory(result),
                    "violation": None
                    if v is None
                    else {"invariant": v.invariant, "detail": v.detail, "steps": list(v.steps)},
                },
                indent=2,
            )
        )
    else:
        what = f" ({args.strategy}{', scripted client' if args.script else ''}"
        what += f", alphabet {args.alphabet})" if args.alphabet != "default" else ")"
        print(
            f"{args.spec} spec{what if args.spec == 'ownership' else ''}, "
            f"{args.tasks} tasks, {args.clients} clients: "
            f"{result.states} states, {result.transitions} transitions, depth {result.depth}, "
            f"{result.seconds:.2f} s ({result.states_per_second:,.0f} states/s)"
        )
        if isinstance(result, FingerprintResult):
            print(
                f"visited set: {result.states} 64-bit fingerprints; probability that two "
                f"states shared one (an omission) <= {result.omission_probability:.1e}; "
                f"{result.cpu_seconds:.2f} CPU s, peak memory "
                f"{result.peak_memory_bytes / 2**20:,.0f} MiB; engine {_engine(result)}"
            )
        if v is not None:
            print(f"VIOLATION of {v.invariant}: {v.detail}")
            print(f"shortest counterexample ({len(v.steps)} steps):")
            for number, step in enumerate(v.steps, 1):
                print(f"  {number}. {step}")
        elif result.complete:
            print("every invariant holds in every reachable state (proved for this bound)")
        else:
            print(f"every invariant holds up to depth {args.depth} (search cut at that depth)")
    return 0 if v is None else 1


def _engine_factory(factory: SpaceFactory, backend: str, engine: str) -> SpaceFactory:
    """The fast space, or for ``--workers``/``--ray`` the compiled core's ``Walk`` where
    ``--engine`` allows and the core covers it (a single process picks in
    ``explore_fast``)."""
    if backend == "single" or engine == "python":
        return factory
    keywords = cast("functools.partial[Any]", factory).keywords
    try:
        CompiledOwnershipSpace(**keywords)
    except ValueError as exc:
        if engine == "compiled":
            raise ScenarioError(str(exc)) from None
        return factory
    return functools.partial(CompiledOwnershipSpace, **keywords)


def _engine(result: FingerprintResult) -> str:
    """Which search ran, and why not the compiled core when it did not."""
    if result.engine == "compiled":
        return "compiled (C core)"
    why = unavailable_reason()
    return f"python{f' (compiled core {why})' if why else ''}"


def _memory(result: ExploreResult) -> dict[str, object]:
    """The JSON figures of the visited set and the resources a search used."""
    if isinstance(result, FingerprintResult):
        return {
            "visited": "fingerprints",
            "fingerprint_bits": 64,
            "omission_probability": result.omission_probability,
            "cpu_seconds": round(result.cpu_seconds, 3),
            "peak_memory_bytes": result.peak_memory_bytes,
            **(
                {
                    "workers_cpu_seconds": [round(c, 3) for c in result.workers_cpu_seconds],
                    "workers_peak_memory_bytes": list(result.workers_peak_memory_bytes),
                    "workers_states": list(result.workers_states),
                }
                if isinstance(result, DistResult)
                else {}
            ),
        }
    return {"visited": "states", "peak_memory_bytes": peak_rss_bytes()}


def _ownership_space(alphabet: str, reference: bool) -> Callable[..., Space[Any] | Walk]:
    """The space class for ``--alphabet`` and ``--reference``: the fast tuple space for
    the default alphabet, else the reference spec (the widened alphabets extend it)."""
    if alphabet != "default":
        return functools.partial(ApiOwnershipSpace, alphabet=alphabet)
    return OwnershipSpace if reference else FastOwnershipSpace


class _Progress:
    """Per level on stderr: states, transitions, depth, frontier, states/s, peak memory.

    On a terminal each level overwrites the last; into a file or pipe, one line a level."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.states = 1
        self.depth = 0

    def __call__(self, level: int, states: int, transitions: int) -> None:
        frontier = states - self.states  # the states this level found are the next frontier
        self.states = states
        self.depth = level if frontier else self.depth
        rate = states / max(time.perf_counter() - self.started, 1e-9)
        start = "\r" if self.tty else ""
        print(
            f"{start}  level {level}: {states} states, {transitions} "
            f"transitions, depth {self.depth}, frontier {frontier}, {rate:,.0f} states/s, "
            f"{peak_rss_bytes() / 2**20:,.0f} MiB",
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )


def _search(
    args: argparse.Namespace,
    factory: SpaceFactory,
    backend: str,
    progress: _Progress | None,
) -> tuple[ExploreResult, int]:
    """The search the options ask for, and how many workers ran it."""
    if backend == "single":
        space = factory()
        if isinstance(space, FastOwnershipSpace):
            try:
                found = explore_fast(
                    space, max_depth=args.depth, progress=progress, engine=args.engine
                )
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None
            return found, 1
        result = explore(cast("Space[object]", space), max_depth=args.depth, progress=progress)
        return result, 1
    if backend == "processes":
        result = explore_distributed(
            factory, workers=args.workers, max_depth=args.depth, progress=progress
        )
        return result, args.workers
    ray = init_ray(args.ray)
    try:
        workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        result = explore_distributed(
            factory, workers=workers, backend="ray", max_depth=args.depth, progress=progress
        )
    finally:
        ray.shutdown()
    return result, workers
