"""The ``l4sim`` command line.

Every subcommand is a function ``cmd_NAME(args) -> int``; bad arguments give a one-line
error and exit status 2 (argparse's convention), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from protocols.editions import DEFAULT_EDITION
from scenarios import __version__
from scenarios._common import HelpFormatter, ScenarioError, positive_int
from scenarios.host import pin_requested, pin_to_one_cpu

__all__ = ["CONFORM_PROTOCOLS", "UsageError", "build_parser", "hypothesis_installed", "main"]


UsageError = ScenarioError

CONFORM_PROTOCOLS: tuple[str, ...] = ("cache", "kernel", "rmgr", "task_server")
"""What ``l4sim conform`` checks (``scenarios.check.conform.PROTOCOLS``; a test holds the two
equal): named here so that the CLI runs without Hypothesis, an extra only conform needs."""


def hypothesis_installed() -> bool:
    """Whether Hypothesis (the ``check`` extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("hypothesis") is not None


"""The one usage-error type (``scenarios._common.ScenarioError``): a bad argument or
input file detected after parsing; ``main`` prints it as one line and exits 2."""


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Reproduce every figure of the seed (see ``scenarios.report.reproduce``)."""
    from scenarios.report.reproduce import run

    return run(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure the speed of the model itself and print the figures."""
    import json

    import attrs

    from scenarios.bench.core import (
        PROBES,
        QUICK,
        BenchParams,
        format_report,
        probe_name,
        report_json,
        run_bench,
    )

    overrides = {
        name: value
        for name, value in (
            ("repeat", args.repeat),
            ("calls", args.calls),
            ("scale_tasks", args.tasks),
        )
        if value is not None
    }
    try:
        params = attrs.evolve(QUICK if args.quick else BenchParams(), **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    probes = PROBES
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        known = {probe_name(p): p for p in PROBES}
        unknown = [name for name in wanted if name not in known]
        if unknown or not wanted:
            raise UsageError(
                f"unknown probe {', '.join(unknown) or '(none given)'}; probes: {', '.join(known)}"
            )
        probes = tuple(p for name, p in known.items() if name in wanted)
    report = run_bench(params, probes)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(format_report(report, "l4sim " + " ".join(args.argv)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Replay a trace file against the reference specs; exit 1 at the first violation."""
    import json

    from protocols.conformance import check, model_for
    from scenarios.report.tracefile import TraceFileError, load

    try:
        trace = load(args.trace_file)
        model = model_for(trace.boot, trace.initial)
    except TraceFileError as exc:
        raise UsageError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{args.trace_file}: bad boot configuration in the header ({exc})"
        ) from None
    report = check(trace.events, model)
    edition = str(trace.boot.get("edition", DEFAULT_EDITION.name))
    if args.json:
        out = {
            "ok": report.ok,
            "model": report.model,
            "edition": edition,
            "events": report.events,
            "steps": report.steps,
            "violation": None,
        }
        if report.violation is not None:
            v = report.violation
            out["violation"] = {
                "seq": v.seq,
                "what": v.what,
                "expected": repr(v.expected),
                "got": repr(v.got),
                "history": [repr(e) for e in v.history],
            }
        print(json.dumps(out, indent=2))
    elif report.violation is None:
        print(
            f"conforms: {report.steps} steps of {report.events} events checked against "
            f"the {report.model} specs of edition {edition}"
        )
    else:
        v = report.violation
        print(f"VIOLATION at event {v.seq} (after {report.steps} conforming steps): {v.what}")
        print(f"  expected: {v.expected!r}")
        print(f"  got:      {v.got!r}")
        print("  events before it:")
        for event in v.history:
            print(f"    {event!r}")
    return 0 if report.ok else 1


def cmd_conform(args: argparse.Namespace) -> int:
    """Run a protocol's state machine against an implementation; exit 1 if it fails."""
    from protocols.editions import edition

    if not hypothesis_installed():
        raise UsageError("l4sim conform runs Hypothesis state machines: pip install 'l4sim[check]'")
    from scenarios.check.conform import ConformError, run_conformance

    try:
        report = run_conformance(
            args.protocol,
            args.factory,
            max_examples=args.examples,
            steps=args.steps,
            edition=edition(args.edition),
        )
    except ConformError as exc:
        raise UsageError(str(exc)) from None
    print(report.render())
    return 0 if report.ok else 1


def cmd_trace(args: argparse.Namespace) -> int:
    """Record one small run of a scenario and print its trace in the chosen format."""
    from pathlib import Path

    from scenarios.report.tracecmd import run

    text = run(args)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0


SCENARIOS: tuple[str, ...] = ("getpid", "read", "fork", "mitigations", "boot")
"""Scenario scripts ``scenarios/scripts/NAME.py`` that ``l4sim run NAME`` runs."""


def cmd_run(args: argparse.Namespace) -> int:
    """Run scenario ``args.scenario`` with its own arguments."""
    import importlib

    module = importlib.import_module(f"scenarios.scripts.{args.scenario}")
    result: int = module.main(args.rest)
    return result


def cmd_profile(args: argparse.Namespace) -> int:
    """``l4sim profile list`` / ``l4sim profile show [NAME|FILE] [--json]``."""
    import json

    from scenarios.cost.profile import ProfileError, available_profiles, load_profile

    if args.action == "list":
        for name in available_profiles():
            print(f"{name:<16}{load_profile(name).description}")
        return 0
    try:
        profile = load_profile(args.name, args.overrides)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(profile.to_json(), sort_keys=True))
        return 0
    print(f"{profile.name}: {profile.description}")
    for key, c in profile.constants:
        print(f"  {key:<28}{c.value!s:>9}  {c.provenance:<11}{c.note}")
    return 0


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run one scenario script",
        description="Run a scenario script; its options follow its name (l4sim run getpid --help).",
    )
    run.add_argument("scenario", choices=SCENARIOS)
    run.add_argument("rest", nargs=argparse.REMAINDER, help="the scenario's own options")
    run.set_defaults(func=cmd_run)


def _add_profile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from scenarios.cost.profile import DEFAULT_PROFILE

    prof = sub.add_parser("profile", help="list and show machine profiles")
    psub = prof.add_subparsers(dest="action", metavar="ACTION")
    psub.required = True
    psub.add_parser("list", help="the shipped profiles")
    show = psub.add_parser("show", help="every constant of a profile with its provenance")
    show.add_argument("name", nargs="?", default=DEFAULT_PROFILE, metavar="NAME|FILE")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    prof.set_defaults(func=cmd_profile)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="l4sim",
        description="The L4 microkernel world of 2006 as an actor system with a cycle "
        "cost model: reproduce the L4Linux figures, run scenarios, check protocols.",
    )
    parser.add_argument("--version", action="version", version=f"l4sim {__version__}")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the process to one CPU (also: L4SIM_PIN=0); see README, Speed",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from scenarios.report.reproduce import add_arguments

    rep = sub.add_parser(
        "reproduce",
        help="reproduce the seed's figures (the main job)",
        description="A table of every figure of the seed: seed value, model "
        "value, deviation, tolerance, calibrated or predicted; then the what-ifs. "
        "Exit status 1 if a row is out of tolerance.",
    )
    add_arguments(rep)
    rep.set_defaults(func=cmd_reproduce)
    bench = sub.add_parser(
        "bench",
        help="measure the speed of the model",
        description="Measure the model itself: raw Pykka ask vs l4sim IPC round trips, "
        "pinning, boot and shutdown with every task number in use, memory.",
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument(
        "--only",
        metavar="PROBE,...",
        help="run only these probes: round_trips, pinning, scale, linux_calls, forks, "
        "pricing, ownership, explore, reproduce, memory",
    )
    bench.add_argument(
        "--repeat", type=positive_int, help="timed repetitions after the warm-up (default 5)"
    )
    bench.add_argument("--calls", type=positive_int, help="round trips per repetition (2000)")
    bench.add_argument(
        "--tasks", type=positive_int, help="task numbers of the scale system (default 2048)"
    )
    bench.add_argument(
        "--quick", action="store_true", help="tiny numbers: checks the bench runs (CI smoke)"
    )
    bench.set_defaults(func=cmd_bench)
    chk = sub.add_parser(
        "check",
        help="check a recorded trace file against the reference specs",
        description="Replay a trace file (JSON lines, format l4sim-trace v1; see "
        "scenarios/report/tracefile.py) against the reference specs and report the first step "
        "where the implementation did what the spec does not allow. Exit 0 if it "
        "conforms, 1 at a violation, 2 if the file cannot be read.",
    )
    chk.add_argument("trace_file", metavar="TRACE_FILE")
    chk.add_argument("--json", action="store_true", help="print one JSON object")
    chk.set_defaults(func=cmd_check)
    con = sub.add_parser(
        "conform",
        help="run a protocol's property suite against your implementation",
        description="Run l4sim's Hypothesis state machine for PROTOCOL with your class in "
        "place of l4sim's. FACTORY is module:name, a class or a function returning one "
        "(see scenarios/check/conform.py for what each protocol expects). Prints the spec rules "
        "exercised, the invariants checked, examples and steps, and for a failure the "
        "shrunk counterexample as a short program. Exit 0 if it conforms, 1 if not.",
    )
    con.add_argument(
        "protocol",
        choices=CONFORM_PROTOCOLS,
        metavar="PROTOCOL",
        help="one of: " + ", ".join(CONFORM_PROTOCOLS),
    )
    con.add_argument("factory", metavar="FACTORY", help="module:name of your implementation")
    con.add_argument(
        "--examples", type=positive_int, default=60, help="examples to run (default 60)"
    )
    con.add_argument(
        "--steps", type=positive_int, default=30, help="steps per example (default 30)"
    )
    con.add_argument(
        "--edition",
        choices=("hardened", "l4env-2007"),
        default="hardened",
        help="the rules to conform to: hardened (the spec and every invariant) or "
        "l4env-2007 (the seed's system: the spec only, its findings break the invariants)",
    )
    con.set_defaults(func=cmd_conform)
    exp = sub.add_parser(
        "explore",
        help="exhaustively explore a protocol spec and prove its invariants for a bound",
        description="Breadth-first search of every reachable state of a spec for a small "
        "configuration, with clients and untouched task numbers treated as "
        "interchangeable. Checks every invariant in every state; a violation comes with "
        "a shortest counterexample (exit 1).",
    )
    from scenarios.check import explorecmd

    explorecmd.add_arguments(exp)
    exp.set_defaults(func=explorecmd.run)
    _add_run(sub)
    _add_profile(sub)
    from scenarios.check import findings

    fnd = sub.add_parser(
        "findings",
        help="where chief ownership breaks in an edition, each with a shortest counterexample",
        description="Search each finding's bound with explore and print its shortest "
        "counterexample, story, source lines and the fix of hardened that removes it. "
        "Exit 0 if the search agrees with the catalogue (every finding found in "
        "l4env-2007, none in hardened), 1 if not.",
    )
    findings.add_arguments(fnd)
    fnd.set_defaults(func=findings.command)
    from scenarios.report.tracecmd import add_arguments as add_trace_arguments

    trc = sub.add_parser(
        "trace",
        help="draw a scenario's trace: text, Mermaid, Perfetto, or a trace file",
        description="Record one small run of a scenario and print its trace: text (one "
        "line per event), mermaid (a sequence diagram with the cycles of each hop), "
        "perfetto (Chrome trace JSON for ui.perfetto.dev) or jsonl (a trace file for "
        "l4sim check).",
    )
    add_trace_arguments(trc)
    trc.set_defaults(func=cmd_trace)
    for each in (parser, *sub.choices.values()):
        each.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``l4sim`` console script."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    args.argv = tuple(sys.argv[1:] if argv is None else argv)
    if args.pin and pin_requested():
        pin_to_one_cpu()
    try:
        result: int = args.func(args)
    except UsageError as exc:
        print(f"l4sim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (e.g. ``| head``) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
