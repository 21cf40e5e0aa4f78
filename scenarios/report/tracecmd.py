"""``l4sim trace SCENARIO``: record one small run of a scenario and show its trace.

Formats: ``text`` (one line per event with its cycles), ``mermaid`` (a sequence diagram
of the IPC between the actors with the cycles of each hop; GitHub renders it),
``perfetto`` (Chrome trace-event JSON for ui.perfetto.dev, one track per actor, time in
modelled cycles) and ``jsonl`` (the trace file format that ``l4sim check`` reads, with
the system snapshot at the first event).  Cycles come from pricing the trace on the
profile (``--profile``, ``--set``), exactly as ``l4sim run`` does.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, Final

import attrs

from actors import boot
from actors.native_linux import NativeSystem
from actors.task_server import TsInit
from protocols import linux
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId
from protocols.l4linux import Strategy
from protocols.snapshot import SystemSnapshot
from protocols.trace import Event, IpcCall
from scenarios._common import (
    ScenarioError,
    add_edition_arg,
    add_profile_args,
    positive_int,
    profile_from,
)
from scenarios.cost.machine import PricingError, price_each
from scenarios.report.render import (
    DEFAULT_NAMES,
    render_mermaid,
    render_perfetto,
    render_text,
    server_role,
)
from scenarios.report.tracefile import dumps

__all__ = [
    "FORMATS",
    "SCENARIOS",
    "Recording",
    "add_arguments",
    "names_from_trace",
    "record",
    "run",
]

SCENARIOS: Final = ("getpid", "read", "fork", "boot")
FORMATS: Final = ("text", "mermaid", "perfetto", "jsonl")
TASKS: Final = 48


@attrs.frozen(kw_only=True)
class Recording:
    """The events of the measured part of a run, and what a checker needs to replay it."""

    events: tuple[Event, ...]
    boot: dict[str, Any]
    initial: SystemSnapshot | None


def names_from_trace(events: Sequence[Event]) -> dict[int, str]:
    """Name tasks by the protocols they are called with: L4Linux, task server, processes."""
    names: dict[int, str] = dict(DEFAULT_NAMES)
    for event in events:
        if not isinstance(event, IpcCall):
            continue
        role = server_role(event.message)
        if role is not None:
            names.setdefault(event.dst.task, role)
        if role == "L4Linux":
            names.setdefault(event.src.task, f"process {event.src.task}")
    names[RMGR_TASK] = "RMGR"
    return names


def record(scenario: str, args: argparse.Namespace) -> Recording:
    """Boot a system, run the scenario's loop, keep the loop's events."""
    if scenario in ("getpid", "read"):
        request: linux.LinuxRequest = (
            linux.Getpid() if scenario == "getpid" else linux.Read(fd=0, nbytes=4096)
        )
        if args.mode == "native":
            with NativeSystem() as world:
                mark = world.trace.mark()
                world.repeat(world.processes[0], request, args.n)
                return Recording(
                    events=world.trace.since(mark), boot={"native": True}, initial=None
                )
        return _l4linux(
            args.strategy,
            args.edition,
            lambda s, init: [s.linux_call(init, request) for _ in range(args.n)],
        )
    if scenario == "fork":

        def pairs(system: Any, init: ThreadId) -> None:
            for _ in range(args.n):
                child = system.linux_call(init, linux.Fork())
                if not isinstance(child, linux.ForkReply) or child.error is not ErrorCode.OK:
                    raise ScenarioError(f"fork failed: {child!r}")
                system.linux_call(child.task, linux.Exit())
                system.linux_call(init, linux.Wait(pid=child.pid))

        return _l4linux(args.strategy, args.edition, pairs)
    assert scenario == "boot", scenario
    with boot(task_count=TASKS, task_server=True, edition=args.edition) as system:
        assert system.task_server is not None
        initial = system.snapshot()
        mark = system.trace.mark()
        system.ref(system.task_server).ask(
            TsInit(managed=args.managed, by_count=args.by_count),
            timeout=system.config.timeout * 4,
        )
        return Recording(
            events=system.trace.since(mark), boot=system.boot_record(), initial=initial
        )


def _l4linux(strategy: str, edition: str, body: Any) -> Recording:
    with boot(task_count=TASKS, linux=1, strategy=strategy, edition=edition) as system:
        init = system.init_processes[0]
        initial = system.snapshot()
        mark = system.trace.mark()
        body(system, init)
        return Recording(
            events=system.trace.since(mark), boot=system.boot_record(), initial=initial
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``l4sim trace``."""
    parser.add_argument(
        "scenario", choices=SCENARIOS, metavar="SCENARIO", help="one of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default), mermaid, perfetto or jsonl",
    )
    parser.add_argument(
        "-n",
        type=positive_int,
        default=1,
        help="calls (getpid, read) or fork+exit pairs (fork); default 1",
    )
    parser.add_argument(
        "--mode",
        choices=("native", "l4linux"),
        default="l4linux",
        help="getpid/read: native Linux or L4Linux (default l4linux)",
    )
    parser.add_argument(
        "--strategy",
        choices=tuple(s.value for s in Strategy),
        default="classic",
        help="L4Linux task management (default classic)",
    )
    parser.add_argument(
        "--managed",
        type=positive_int,
        default=4,
        help="boot: task numbers the task server manages (default 4)",
    )
    parser.add_argument(
        "--by-count",
        action="store_true",
        help="boot: ask RMGR for the count instead of getting every task",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    add_profile_args(parser)
    add_edition_arg(parser)


def run(args: argparse.Namespace) -> str:
    """Record, price and render; the text to print."""
    profile = profile_from(args)
    if args.n > 1000:
        raise ScenarioError("-n above 1000 makes a trace nobody can read; use l4sim run")
    rec = record(args.scenario, args)
    if args.format == "jsonl":
        return dumps(rec.events, rec.boot, rec.initial)
    try:
        _cost, costs = price_each(rec.events, profile)
    except PricingError as exc:
        raise ScenarioError(str(exc)) from None
    names = names_from_trace(rec.events)
    if args.format == "text":
        return render_text(rec.events, names, costs)
    if args.format == "mermaid":
        variant = args.mode if args.scenario in ("getpid", "read") else args.strategy
        title = f"{args.scenario} ({variant})"
        return render_mermaid(rec.events, names, costs, title=title)
    return json.dumps(render_perfetto(rec.events, names, costs)) + "\n"
