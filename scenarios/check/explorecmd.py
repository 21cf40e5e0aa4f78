"""``l4sim explore``: walk every reachable state of a spec for a small bound.

The search itself is ``protocols.explore`` (breadth first, shortest counterexamples) over
``protocols.explore_ownership.OwnershipSpace`` (the whole system with L4Linux clients)
or ``protocols.explore.KernelRmgrSpace`` (the kernel and RMGR with scripted clients).
Exit status 0 when every invariant holds in every reachable state, 1 with a shortest
counterexample, 2 for a bad bound.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from protocols.editions import edition
from protocols.explore import KernelRmgrSpace, Space, explore
from protocols.explore_ownership import OwnershipSpace
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
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Walk every reachable state of a spec; exit 1 with a shortest counterexample."""
    if args.tasks is None:
        args.tasks = 3 if args.spec == "ownership" else 2
    space: Space[Any]
    try:
        if args.spec == "ownership":
            space = OwnershipSpace(
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
            space = KernelRmgrSpace(
                tasks=args.tasks, clients=args.clients, edition=edition(args.edition)
            )
        space.initial()
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None

    def progress(level: int, states: int, transitions: int) -> None:
        print(
            f"\r  depth {level}: {states} states, {transitions} transitions",
            end="",
            file=sys.stderr,
            flush=True,
        )

    result = explore(
        cast("Space[object]", space),
        max_depth=args.depth,
        progress=progress if sys.stderr.isatty() and not args.json else None,
    )
    if sys.stderr.isatty() and not args.json:
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
                        }
                        if args.spec == "ownership"
                        else {}
                    ),
                    "states": result.states,
                    "transitions": result.transitions,
                    "depth": result.depth,
                    "complete": result.complete,
                    "seconds": round(result.seconds, 3),
                    "states_per_second": round(result.states_per_second),
                    "violation": None
                    if v is None
                    else {"invariant": v.invariant, "detail": v.detail, "steps": list(v.steps)},
                },
                indent=2,
            )
        )
    else:
        what = f" ({args.strategy}{', scripted client' if args.script else ''})"
        print(
            f"{args.spec} spec{what if args.spec == 'ownership' else ''}, "
            f"{args.tasks} tasks, {args.clients} clients: "
            f"{result.states} states, {result.transitions} transitions, depth {result.depth}, "
            f"{result.seconds:.2f} s ({result.states_per_second:,.0f} states/s)"
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
