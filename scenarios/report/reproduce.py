"""reproduce: every figure of the seed and of other machines, figure against model, what-ifs.

Each row's model value comes out of a recorded run of the actors (counted events) priced
by the machine model with the profile's constants; nothing is typed in but the published
figures.  A row is **calibrated** when one constant was solved against that very
figure (``scenarios/cost/calibrate.py`` solves them; the profile's notes say which), so its
agreement shows only that the model can be fitted; a row is **predicted** when no
constant was fitted to it.  Tolerances: cycles within 5%, L4Linux TLB misses
within 0.1, native misses per 100k within 25%, speedups within 2 percentage points when
calibrated and 3 when predicted, switches per system call within 0.05.  The rows of
other machines (``scenarios/cost/figures.py``) follow the seed's, each machine priced on its
own shipped profile; a row out of tolerance for a reason the model states is a ``miss``
(the reason is printed), any other is a ``FAIL`` (exit status 1).  ``--machine NAME``
keeps one machine's rows.

Below the table, the what-ifs the model predicts (nothing calibrated against them):
tagged TLB, small spaces, colouring, a merged task server, a cheaper boot.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from scenarios._common import ScenarioError, add_edition_arg, add_profile_args, profile_from
from scenarios.cost.figures import MACHINE_SPECS, machine_profile, machines
from scenarios.cost.machine import Cost
from scenarios.cost.profile import DEFAULT_PROFILE, Profile
from scenarios.report.measure import SIZES, Measured, Progress, Sizes, measure, quiet
from scenarios.report.rows import SPECS, Row, Spec, native_cycles
from scenarios.report.whatifs import MITIGATIONS, WhatIf, whatifs
from scenarios.report.whatifs import value_text as _value_text

__all__ = [
    "SIZES",
    "SPECS",
    "Measured",
    "Report",
    "Row",
    "Sizes",
    "Spec",
    "WhatIf",
    "main",
    "measure",
    "report",
]


# -- the report --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Report:
    """The whole reproduce report (``measured`` and the what-ifs: the seed's machine)."""

    profile: Profile
    rows: tuple[Row, ...]
    whatif: tuple[WhatIf, ...]
    measured: Measured | None
    edition: str = DEFAULT_EDITION.name

    @property
    def ok(self) -> bool:
        """Every row within tolerance or out of it for its documented reason."""
        return all(r.ok or r.known_miss for r in self.rows)

    def to_json(self) -> dict[str, object]:
        """The ``--json`` object."""
        predicted = sum(r.kind == "predicted" for r in self.rows)
        return {
            "rows": [r.to_json() for r in self.rows],
            "whatif": [w.to_json() for w in self.whatif],
            "profile": self.profile.to_json(),
            "machines": list(dict.fromkeys(r.spec.machine for r in self.rows)),
            "predicted": predicted,
            "calibrated": len(self.rows) - predicted,
            "edition": self.edition,
            "ok": self.ok,
        }

    def lines(self) -> list[str]:
        """The printed table, notes and what-ifs."""
        p = self.profile
        out = [
            f"l4sim reproduce - seed machine profile {p.name}: {p.description}",
            f"edition {self.edition}",
            "",
            f"{'id':<36}{'seed':>11}{'model':>12}{'deviation':>11}{'tolerance':>10}"
            f"  {'kind':<11}ok",
        ]
        machine = ""
        for r in self.rows:
            s = r.spec
            if s.machine != machine:
                machine = s.machine
                title = p.description if r.spec.machine == p.name else _description(machine)
                out.append(f"-- {machine}: {title}")
            out.append(
                f"{s.id:<36}{_value_text(s.unit, s.seed):>11}{_value_text(s.unit, r.model):>12}"
                f"{r.deviation_text():>11}{r.tolerance_text():>10}  {r.kind:<11}{r.verdict}"
            )
        out += ["", "Calibrated rows (the constant solved against the row's own figure):"]
        for r in self.rows:
            if r.spec.calibrated_by:
                out.append(f"  {r.spec.id:<36}<- {r.spec.calibrated_by}")
        out.append("Predicted rows come out of the protocol structure: counted IPCs, system calls,")
        out.append("switches and pages touched, times constants fitted to other rows or assumed.")
        predicted = sum(r.kind == "predicted" for r in self.rows)
        out.append(f"{predicted} of {len(self.rows)} rows predicted.")
        misses = [r for r in self.rows if r.known_miss]
        if misses:
            out += ["", "Out of tolerance, and why:"]
            for r in misses:
                out.append(f"  {r.spec.id}: {r.spec.miss_reason}")
        m = self.measured
        if m is not None:
            out += ["", "Where the cycles go on the seed machine (per call / per fork+exit):"]
            out.append("  " + _breakdown_text("getpid native", m.native, m.sizes.native_calls))
            out.append("  " + _breakdown_text("getpid L4Linux", m.l4linux, m.sizes.l4linux_calls))
            for strategy, cost in m.forks:
                out.append("  " + _breakdown_text(f"fork {strategy}", cost, m.sizes.pairs))
            out += ["", "What-ifs (predictions; nothing calibrated against them):"]
            out += _mitigation_table(self.whatif, m)
            out += [w.text() for w in self.whatif if not w.id.endswith(_MITIGATION_KEYS)]
        out.append("")
        good = sum(r.ok for r in self.rows)
        known = sum(r.known_miss for r in self.rows)
        verdict = (
            "every row within tolerance"
            if good == len(self.rows)
            else f"{known} out of tolerance for the reasons given"
            if self.ok
            else "SOME ROWS OUT OF TOLERANCE"
        )
        out.append(f"{good}/{len(self.rows)} rows ok: {verdict}")
        return out


def _description(machine: str) -> str:
    return machine_profile(machine).description


_MITIGATION_KEYS: Final = tuple(f".{key}" for key, _, _ in MITIGATIONS)
_MITIGATION_COLUMNS: Final = (
    ("getpid.l4linux.cycles", "getpid", "cycles"),
    ("getpid.l4linux.tlb_misses_per_call", "TLB/call", "misses"),
    ("fork.classic.cycles", "fork classic", "cycles"),
    ("fork.cache.cycles", "fork chief+cache", "cycles"),
)


def _mitigation_table(whatif: tuple[WhatIf, ...], m: Measured) -> list[str]:
    by_id = {w.id: w for w in whatif}
    head = f"  {'L4Linux under':<34}" + "".join(f"{c:>18}" for _, c, _ in _MITIGATION_COLUMNS)
    first = [by_id[f"{col}.{MITIGATIONS[0][0]}"].baseline for col, _, _ in _MITIGATION_COLUMNS]
    lines = [head]
    lines.append(
        f"  {'nothing (2006)':<34}"
        + "".join(
            f"{_value_text(u, b or 0.0):>18}"
            for (_, _, u), b in zip(_MITIGATION_COLUMNS, first, strict=True)
        )
    )
    for key, name, _ in MITIGATIONS:
        cells = "".join(
            f"{_value_text(u, by_id[f'{col}.{key}'].model):>18}"
            for col, _, u in _MITIGATION_COLUMNS
        )
        lines.append(f"  {name:<34}{cells}")
    lines.append(f"  {'(native Linux getpid)':<34}{_value_text('cycles', native_cycles(m)):>18}")
    return lines


def _breakdown_text(name: str, cost: Cost, n: int) -> str:
    parts = ", ".join(f"{k} {v / n:,.0f}" for k, v in cost.breakdown if v / n >= 0.5)
    return f"{name:<18}{cost.cycles / n:>10,.0f} = {parts}"


def report(
    profile: Profile,
    sizes: Sizes = SIZES,
    progress: Progress = quiet,
    edition: str = DEFAULT_EDITION.name,
    machines: tuple[str, ...] = (),
) -> Report:
    """Measure everything and build the report (the L4 system in ``edition``).

    The seed's rows are priced on ``profile``, every other machine's on its shipped
    profile; ``machines`` (profile names) keeps only those machines' rows."""
    wanted = set(machines)
    seed = not wanted or profile.name in wanted or DEFAULT_PROFILE in wanted
    rows: list[Row] = []
    m: Measured | None = None
    whatif: tuple[WhatIf, ...] = ()
    if seed:
        m = measure(profile, sizes, progress, edition)
        rows += [Row(spec=attrs.evolve(s, machine=profile.name), model=s.model(m)) for s in SPECS]
    for spec in MACHINE_SPECS:
        if not wanted or spec.machine in wanted:
            progress(f"{spec.machine} {spec.id}")
            rows.append(Row(spec=spec, model=spec.model(machine_profile(spec.machine))))
    if m is not None:
        whatif = whatifs(profile, m, sizes, progress)
    return Report(profile=profile, rows=tuple(rows), whatif=whatif, measured=m, edition=edition)


# -- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``l4sim reproduce``."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="also write plots (PNG, SVG) and the JSON"
    )
    parser.add_argument(
        "--machine",
        action="append",
        default=[],
        metavar="NAME",
        help="only the rows of this machine's profile (repeatable; default: every machine: "
        + ", ".join((DEFAULT_PROFILE, *machines()))
        + ")",
    )
    add_profile_args(parser)
    add_edition_arg(parser)


def _progress_to_terminal() -> Progress:
    if not sys.stderr.isatty():
        return quiet
    steps = [0]

    def show(step: str) -> None:
        steps[0] += 1
        print(f"\r\033[K[{steps[0]:>2}] {step}...", end="", file=sys.stderr, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    """``l4sim reproduce``: print the report; exit 1 if a row is out of tolerance."""
    profile = profile_from(args)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ScenarioError(f"--out {args.out}: exists and is not a directory")
    progress = _progress_to_terminal()
    unknown = sorted(set(args.machine) - {DEFAULT_PROFILE, profile.name, *machines()})
    if unknown:
        raise ScenarioError(f"--machine {unknown[0]}: no figures for that machine")
    rep = report(profile, progress=progress, edition=args.edition, machines=tuple(args.machine))
    if progress is not quiet:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    data = rep.to_json()
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        print("\n".join(rep.lines()))
    if args.out is not None:
        try:
            from scenarios.report.plots import write_plots

            written = write_plots(rep, args.out)
            (args.out / "reproduce.json").write_text(json.dumps(data, sort_keys=True, indent=1))
            (args.out / "reproduce.txt").write_text("\n".join(rep.lines()) + "\n")
        except OSError as exc:
            raise ScenarioError(f"--out {args.out}: cannot write: {exc.strerror}") from None
        if not args.json:
            print(f"wrote {len(written)} plots, reproduce.json and reproduce.txt to {args.out}")
    return 0 if rep.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``python -m scenarios.report.reproduce``)."""
    parser = argparse.ArgumentParser(prog="l4sim reproduce", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ScenarioError as exc:
        print(f"l4sim reproduce: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
