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
from typing import Final

from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK
from protocols.l4linux import Strategy
from protocols.linux import ForkReply
from protocols.trace import IpcCall, IpcReply
from scenarios._common import (
    ScenarioError,
    add_edition_arg,
    add_profile_args,
    positive_int,
    profile_from,
)
from scenarios.cost.machine import PricingError, price_each
from scenarios.record.l4world import (
    MODES,
    RecordError,
    Recording,
    record_boot,
    record_fork,
    record_syscalls,
)
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
    "add_arguments",
    "names_from_trace",
    "record",
    "run",
]

SCENARIOS: Final = ("getpid", "read", "fork", "boot")
FORMATS: Final = ("text", "mermaid", "perfetto", "jsonl")


def names_from_trace(recording: Recording) -> dict[int, str]:
    """Name tasks by the protocols they are called with (L4Linux, task server) and Linux
    processes by pid: those in the snapshot before the loop and each child a fork made."""
    names: dict[int, str] = dict(DEFAULT_NAMES)
    pids: dict[int, list[int]] = {}
    if recording.initial is not None:
        for server in recording.initial.linux:
            for proc in server.processes:
                pids.setdefault(proc.task.task, []).append(proc.pid)
    for event in recording.events:
        forked = event.message if isinstance(event, IpcReply) else None
        if isinstance(forked, ForkReply) and forked.error is ErrorCode.OK:
            pids.setdefault(forked.task.task, []).append(forked.pid)
        if not isinstance(event, IpcCall):
            continue
        role = server_role(event.message)
        if role is not None:
            names.setdefault(event.dst.task, role)
        if role == "L4Linux":
            names.setdefault(event.src.task, f"process in t{event.src.task}")
    for task, ran in pids.items():
        ran = sorted(set(ran))
        names[task] = f"pid {ran[0]}" if len(ran) == 1 else _pid_range(ran)
    names[RMGR_TASK] = "RMGR"
    return names


def _pid_range(pids: list[int]) -> str:
    if len(pids) <= 3:
        return "pids " + ", ".join(map(str, pids))
    return f"pids {pids[0]}..{pids[-1]} ({len(pids)})"


def record(scenario: str, args: argparse.Namespace) -> Recording:
    """Record the scenario's run with the recorder ``l4sim run`` uses (small ``-n``)."""
    try:
        if scenario in ("getpid", "read"):
            return record_syscalls(scenario, args.mode, args.n, args.strategy, args.edition)
        if scenario == "fork":
            return record_fork(args.strategy, args.n, args.edition)
        assert scenario == "boot", scenario
        return record_boot(args.by_count, args.managed, args.edition)
    except RecordError as exc:
        raise ScenarioError(str(exc)) from None


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
        choices=MODES,
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
    names = names_from_trace(rec)
    if args.format == "text":
        return render_text(rec.events, names, costs)
    if args.format == "mermaid":
        variant = args.mode if args.scenario in ("getpid", "read") else args.strategy
        title = f"{args.scenario} ({variant})"
        return render_mermaid(rec.events, names, costs, title=title)
    return json.dumps(render_perfetto(rec.events, names, costs)) + "\n"
