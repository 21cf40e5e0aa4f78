"""What every scenario script shares: profile options, JSON output, per-call figures."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias

from protocols.editions import DEFAULT_EDITION, EDITIONS
from scenarios.cost.machine import Cost, PricingError, price
from scenarios.cost.profile import DEFAULT_PROFILE, Profile, ProfileError, load_profile

__all__ = [
    "HelpFormatter",
    "ScenarioError",
    "add_edition_arg",
    "add_profile_args",
    "emit",
    "per",
    "MAX_COUNT",
    "positive_int",
    "profile_from",
    "ScriptResult",
    "script_main",
    "scenario_parser",
]


class ScenarioError(Exception):
    """A bad argument or profile detected after parsing: one line, exit status 2."""


MAX_COUNT = 1_000_000
"""The largest count (calls, pairs, reads, ...) a command accepts: more would run for hours."""


def positive_int(text: str) -> int:
    """argparse type: an integer in 1..``MAX_COUNT``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"at most {MAX_COUNT}: {text!r}")
    return value


def add_profile_args(parser: argparse.ArgumentParser) -> None:
    """``--profile NAME|FILE`` and repeatable ``--set KEY=VALUE``."""
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        metavar="NAME|FILE",
        help=f"machine profile: a shipped name or a TOML file (default {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one profile constant (repeatable), e.g. --set tlb.tagged=true",
    )


def add_edition_arg(parser: argparse.ArgumentParser) -> None:
    """``--edition l4env-2007|hardened``: which rules the simulated system runs by."""
    parser.add_argument(
        "--edition",
        choices=tuple(EDITIONS),
        default=DEFAULT_EDITION.name,
        help="the system's rules: the 2007 sources as they behave, or with every fix",
    )


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and adds ``(default: X)`` to every option's help that
    has a default worth saying and does not name it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default in ([], "")
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return action.help
        return f"{text} (default: %(default)s)"


def scenario_parser(name: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of scenario ``name`` (``l4sim run NAME``) with ``--json`` and the
    profile options; the script adds its own options."""
    parser = argparse.ArgumentParser(
        prog=f"l4sim run {name}",
        description=description,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_profile_args(parser)
    add_edition_arg(parser)
    return parser


def profile_from(args: argparse.Namespace) -> Profile:
    """The profile the options name; ``ScenarioError`` (one line) if it is bad."""
    try:
        return load_profile(args.profile, args.overrides)
    except ProfileError as exc:
        raise ScenarioError(str(exc)) from None


def priced(events: Iterable[object], profile: Profile) -> Cost:
    """``price`` with a pricing failure turned into a one-line ``ScenarioError``."""
    try:
        return price(events, profile)  # type: ignore[arg-type]
    except PricingError as exc:
        raise ScenarioError(str(exc)) from None


def per(cost: Cost, n: int) -> dict[str, float]:
    """Cycles per unit by category (rounded to 0.001 cycle for stable output)."""
    return {k: round(v / n, 3) for k, v in cost.breakdown}


def emit(result: Mapping[str, object], *, as_json: bool, lines: Sequence[str]) -> None:
    """Print ``result`` as one JSON object, or the human-readable ``lines``."""
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        for line in lines:
            print(line)


ScriptMain: TypeAlias = Callable[[Sequence[str] | None], int]
"""A scenario script's ``main(argv)``: exit status 0, or 2 for bad usage."""


class ScriptResult(Protocol):
    """What a scenario script reports: one JSON object, or lines for people."""

    def to_json(self, profile: Profile) -> dict[str, object]: ...

    def to_lines(self, profile: Profile) -> list[str]: ...


def script_main(
    name: str,
    setup: Callable[[Sequence[str] | None], argparse.Namespace],
    report: Callable[[argparse.Namespace, Profile], ScriptResult],
) -> ScriptMain:
    """The entry point of scenario script ``name`` (``l4sim run NAME`` and ``python -m``):
    parse with ``setup``, measure with ``report`` on the chosen profile, print the result
    as JSON (``--json``) or lines; a ``ScenarioError`` is one error line, exit status 2."""
    prog = f"l4sim run {name}"

    def main(argv: Sequence[str] | None = None) -> int:
        try:
            args = setup(argv)
            profile = profile_from(args)
            result = report(args, profile)
            emit(result.to_json(profile), as_json=args.json, lines=result.to_lines(profile))
        except ScenarioError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
        return 0

    main.__doc__ = f"Entry point (``python -m scenarios.scripts.{name}`` and ``{prog}``)."
    return main
