"""The ``l4sim`` command line.

Every subcommand is a function ``cmd_NAME(args) -> int``; bad arguments give a one-line
error and exit status 2 (argparse's convention), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from scenarios import __version__

__all__ = ["UsageError", "build_parser", "main"]


class UsageError(Exception):
    """A bad argument or input file detected after parsing: one line, exit status 2."""


def _not_yet(issue: int, what: str) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(f"l4sim: {what} is not implemented yet (tracked in issue {issue})", file=sys.stderr)
        return 3

    return run


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Reproduce every figure of REFERENCE.md section 1 (see ``scenarios.reproduce``)."""
    from scenarios._common import ScenarioError
    from scenarios.reproduce import run

    try:
        return run(args)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


SUBCOMMANDS: tuple[tuple[str, str, int], ...] = (
    ("trace", "draw a scenario's trace (text, Mermaid, Perfetto)", 5),
    ("check", "check a recorded trace against the reference specs", 5),
    ("conform", "run the protocol suite against your implementation", 5),
    ("explore", "exhaustively explore the ownership spec", 5),
    ("bench", "measure the speed of the model", 7),
)


SCENARIOS: tuple[str, ...] = ("getpid", "read", "fork", "mitigations", "boot")
"""Scenario scripts ``scenarios/NAME.py`` that ``l4sim run NAME`` runs."""


def cmd_run(args: argparse.Namespace) -> int:
    """Run scenario ``args.scenario`` with its own arguments."""
    import importlib

    module = importlib.import_module(f"scenarios.{args.scenario}")
    result: int = module.main(args.rest)
    return result


def cmd_profile(args: argparse.Namespace) -> int:
    """``l4sim profile list`` / ``l4sim profile show [NAME|FILE] [--json]``."""
    import json

    from scenarios.profile import ProfileError, available_profiles, load_profile

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
        print(f"  {key:<24}{c.value!s:>9}  {c.provenance:<11}{c.note}")
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
    from scenarios.profile import DEFAULT_PROFILE

    prof = sub.add_parser("profile", help="list and show machine profiles")
    psub = prof.add_subparsers(dest="action", metavar="ACTION")
    psub.required = True
    psub.add_parser("list", help="the shipped profiles")
    show = psub.add_parser("show", help="every constant of a profile with its provenance")
    show.add_argument("name", nargs="?", default=DEFAULT_PROFILE, metavar="NAME|FILE")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    prof.set_defaults(func=cmd_profile)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="l4sim",
        description="The L4 microkernel world of 2006 as an actor system with a cycle "
        "cost model: reproduce the L4Linux figures, run scenarios, check protocols.",
    )
    parser.add_argument("--version", action="version", version=f"l4sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from scenarios.reproduce import add_arguments

    rep = sub.add_parser(
        "reproduce",
        help="reproduce the seed's figures (the main job)",
        description="A table of every figure of REFERENCE.md section 1: seed value, model "
        "value, deviation, tolerance, calibrated or predicted; then the what-ifs. "
        "Exit status 1 if a row is out of tolerance.",
    )
    add_arguments(rep)
    rep.set_defaults(func=cmd_reproduce)
    _add_run(sub)
    _add_profile(sub)
    for name, help_text, issue in SUBCOMMANDS:
        p = sub.add_parser(name, help=f"{help_text} (not yet implemented)")
        p.set_defaults(func=_not_yet(issue, f"'l4sim {name}'"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``l4sim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
