"""``l4sim findings``: where chief ownership breaks in an edition, each with a shortest story.

For ``l4env-2007`` (the default) every finding of ``protocols.findings`` is searched in its
bound with every *other* fix in place (``isolate``), so the counterexample printed is that
finding's own and is a shortest one; it is computed by exploration on every run, never
stored.  For ``hardened`` every finding's bound is searched with all fixes in place and
whatever still breaks a promise is listed (the tests demand: nothing).

Run alone: ``python -m scenarios.check.findings [--edition E] [--json] [--only NAME,...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import attrs

from protocols.editions import EDITIONS, HARDENED, L4ENV_2007, Edition, edition
from protocols.explore import ExploreResult
from protocols.findings import BEYOND_THE_EXPLORER, FINDINGS, Finding, isolate, search
from scenarios._common import ScenarioError, add_profile_args, profile_from
from scenarios.cost import prices

__all__ = [
    "FindingResult",
    "add_arguments",
    "as_expected",
    "command",
    "main",
    "render",
    "run",
    "to_json",
]


@attrs.frozen(kw_only=True)
class FindingResult:
    """A finding searched in one edition: the counterexample if the promise broke."""

    finding: Finding
    edition: str
    """The edition actually searched (``hardened`` less the fix, when isolating)."""
    result: ExploreResult

    @property
    def found(self) -> bool:
        """Whether the finding's promise broke within its bound."""
        return self.result.violation is not None


def run(ed: Edition, only: Sequence[str] = ()) -> list[FindingResult]:
    """Search every finding (or those named in ``only``) for edition ``ed``."""
    chosen = [f for f in FINDINGS if not only or f.name in only]
    out = []
    for f in chosen:
        if ed == L4ENV_2007:
            searched, result = HARDENED.without(f.fix), isolate(f)
        else:
            searched, result = ed, search(f, ed)
        out.append(FindingResult(finding=f, edition=searched.name, result=result))
    return out


def to_json(ed: Edition, results: Sequence[FindingResult]) -> dict[str, Any]:
    """The findings as one JSON object (the same facts the text shows)."""
    listed = []
    for r in results:
        if not r.found:
            continue
        f, v = r.finding, r.result.violation
        assert v is not None
        listed.append(
            {
                "name": f.name,
                "invariant": f.invariant,
                "detail": v.detail,
                "steps": list(v.steps),
                "story": f.story,
                "sources": list(f.sources),
                "fix": f.fix.name.lower(),
                "fix_does": f.fix.value,
                "bound": f.bound.describe(),
                "searched_edition": r.edition,
                "states": r.result.states,
            }
        )
    return {
        "edition": ed.name,
        "findings": listed,
        "searched": [
            {
                "name": r.finding.name,
                "bound": r.finding.bound.describe(),
                "edition": r.edition,
                "found": r.found,
                "states": r.result.states,
                "complete": r.result.complete,
            }
            for r in results
        ],
    }


def render(ed: Edition, results: Sequence[FindingResult]) -> str:
    """The findings as text: one block per finding, then what was searched."""
    lines: list[str] = []
    found = [r for r in results if r.found]
    lines.append(f"edition {ed.name}: {len(found)} finding(s) in {len(results)} searched bound(s)")
    for i, r in enumerate(found, 1):
        f, v = r.finding, r.result.violation
        assert v is not None
        lines.append("")
        lines.append(f"{i}. {f.name}  (breaks {f.invariant})")
        lines.append(f"   {v.detail}")
        lines.append(
            f"   shortest counterexample, {len(v.steps)} steps ({r.edition}; {f.bound.describe()}):"
        )
        lines.extend(f"     {n}. {step}" for n, step in enumerate(v.steps, 1))
        lines.append(f"   story: {f.story}")
        lines.append("   sources:")
        lines.extend(f"     {s}" for s in f.sources)
        lines.append(f"   fixed in hardened by {f.fix.name.lower()}: {f.fix.value}")
    lines.append("")
    lines.append("searched:")
    for r in results:
        verdict = "FOUND" if r.found else "none"
        lines.append(
            f"  {r.finding.name:<40} {verdict:<5} {r.result.states:>7} states  "
            f"{r.edition}; {r.finding.bound.describe()}"
        )
    if ed.name != HARDENED.name:
        lines.append("")
        lines.append("beyond the explorer's bounds (shown by plain tests, fixed in hardened):")
        for fix, test in BEYOND_THE_EXPLORER.items():
            lines.append(f"  {fix.name:<40} {test}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``l4sim findings`` (shared with ``python -m scenarios.check.findings``)."""
    parser.add_argument(
        "--edition",
        default=L4ENV_2007.name,
        choices=sorted(EDITIONS),
        help="which rules to search (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only",
        default="",
        metavar="NAME,...",
        help="search only these findings (default: all)",
    )
    parser.add_argument(
        "--no-prices",
        action="store_true",
        help="leave out what each fix costs per fork+exit (scenarios.cost.prices)",
    )
    add_profile_args(parser)


def as_expected(ed: Edition, results: Sequence[FindingResult]) -> bool:
    """Whether the search agrees with the catalogue: in ``l4env-2007`` every finding is
    found (else the catalogue is stale), in any other edition none is."""
    if ed == L4ENV_2007:
        return all(r.found for r in results)
    return not any(r.found for r in results)


def command(args: argparse.Namespace) -> int:
    """Run ``l4sim findings`` with parsed ``args``.

    Exit status 0 if the search agrees with the catalogue (``as_expected``), 1 if not, 2
    for a bad finding name."""
    only = tuple(n for n in args.only.split(",") if n)
    unknown = sorted(set(only) - {f.name for f in FINDINGS})
    if unknown:
        print(f"l4sim findings: error: no finding {', '.join(unknown)}", file=sys.stderr)
        return 2
    ed = edition(args.edition)
    try:
        profile = profile_from(args)
    except ScenarioError as exc:
        print(f"l4sim findings: error: {exc}", file=sys.stderr)
        return 2
    results = run(ed, only)
    table = () if args.no_prices else prices.measure(profile)
    if args.json:
        out = to_json(ed, results)
        if not args.no_prices:
            out["prices"] = prices.to_json(table)
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(render(ed, results))
        if not args.no_prices:
            print("\n" + "\n".join(prices.render(table, profile)))
    return 0 if as_expected(ed, results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scenarios.check.findings``."""
    parser = argparse.ArgumentParser(prog="python -m scenarios.check.findings", description=__doc__)
    add_arguments(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
