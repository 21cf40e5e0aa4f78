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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION
from scenarios._common import (
    ScenarioError,
    add_edition_arg,
    add_profile_args,
    priced,
    profile_from,
)
from scenarios.cost.figures import MACHINE_SPECS, MachineSpec, machine_profile, machines
from scenarios.cost.machine import Cost
from scenarios.cost.profile import DEFAULT_PROFILE, Profile
from scenarios.record.l4world import STRATEGIES
from scenarios.record.traces import fork_pairs, syscall_loop
from scenarios.report.whatifs import MITIGATIONS, WhatIf, whatifs
from scenarios.report.whatifs import value_text as _value_text
from scenarios.scripts import boot as boot_scenario
from scenarios.scripts import fork as fork_scenario
from scenarios.scripts import read as read_scenario
from scenarios.scripts.getpid import NATIVE_MISS_CALLS

__all__ = [
    "SIZES",
    "Measured",
    "Row",
    "WhatIf",
    "main",
    "measure",
    "report",
]


@attrs.frozen(kw_only=True)
class Sizes:
    """How many calls, reads and fork pairs each recorded run makes."""

    native_calls: int = NATIVE_MISS_CALLS
    l4linux_calls: int = 2000
    reads: int = read_scenario.READS
    pairs: int = fork_scenario.PAIRS
    managed: int = boot_scenario.MANAGED


SIZES: Final = Sizes()
"""The sizes of ``l4sim reproduce`` (tests pass smaller ones)."""


# -- measuring ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Measured:
    """The priced runs every row and what-if is computed from."""

    sizes: Sizes
    edition: str
    """The edition of the L4 system every run was recorded in."""
    native: Cost
    l4linux: Cost
    read: read_scenario.ReadRun
    forks: tuple[tuple[str, Cost], ...]

    @property
    def l4linux_cycles_per_call(self) -> float:
        """Cycles per L4Linux getpid."""
        return self.l4linux.cycles / self.sizes.l4linux_calls

    @property
    def l4linux_misses_per_call(self) -> float:
        """TLB misses per L4Linux getpid."""
        return self.l4linux.tlb_misses / self.sizes.l4linux_calls

    def fork(self, strategy: str) -> float:
        """Cycles per fork+exit pair under ``strategy``."""
        return dict(self.forks)[strategy].cycles / self.sizes.pairs

    def speedup(self, strategy: str) -> float:
        """The seed's "performance increase" of ``strategy`` over ``classic``."""
        return self.fork("classic") / self.fork(strategy) - 1


Progress = Callable[[str], None]


def _quiet(_step: str) -> None:
    return None


def measure(
    profile: Profile,
    sizes: Sizes = SIZES,
    progress: Progress = _quiet,
    edition: str = DEFAULT_EDITION.name,
) -> Measured:
    """Record (once per process) and price every run the report needs."""
    progress("native getpid")
    native = priced(syscall_loop("getpid", "native", sizes.native_calls), profile)
    progress("L4Linux getpid")
    l4linux = priced(syscall_loop("getpid", "l4linux", sizes.l4linux_calls, edition), profile)
    progress("blocking read")
    read = read_scenario.measure(sizes.reads, profile, edition)
    forks = []
    for strategy in STRATEGIES:
        progress(f"fork {strategy}")
        forks.append((strategy, priced(fork_pairs(strategy, sizes.pairs, edition), profile)))
    return Measured(
        sizes=sizes,
        edition=edition,
        native=native,
        l4linux=l4linux,
        read=read,
        forks=tuple(forks),
    )


# -- the rows ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Spec:
    """A figure of the seed: its seed value and how to check the model."""

    id: str
    figure: str
    seed: float
    unit: str
    tolerance: float
    relative: bool
    calibrated_by: str
    """The constant solved against this figure; empty for a prediction."""
    model: Callable[[Measured], float]
    machine: str = DEFAULT_PROFILE
    at_least: bool = False
    source: str = "seed: l4linux-blog-2006"
    miss_reason: str = ""


def _native_cycles(m: Measured) -> float:
    return m.native.cycles / m.sizes.native_calls


def _l4linux_cycles(m: Measured) -> float:
    return m.l4linux_cycles_per_call


def _native_misses(m: Measured) -> float:
    return m.native.tlb_misses * 100_000 / m.sizes.native_calls


def _l4linux_misses(m: Measured) -> float:
    return m.l4linux_misses_per_call


def _l4linux_switches(m: Measured) -> float:
    return m.l4linux.count("switches") / m.sizes.l4linux_calls


SPECS: Final = (
    Spec(
        id="getpid.native.cycles",
        figure="sys_getpid() natively",
        seed=260,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="cpu.trap_cycles",
        model=_native_cycles,
    ),
    Spec(
        id="getpid.l4linux.cycles",
        figure="sys_getpid() on L4Linux (IPC round trip)",
        seed=3700,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="ipc.path_cycles",
        model=_l4linux_cycles,
    ),
    Spec(
        id="getpid.native.tlb_misses_per_100k",
        figure="TLB misses in 100,000 native getpid calls",
        seed=200,
        unit="misses",
        tolerance=0.25,
        relative=True,
        calibrated_by="timer.other_pages",
        model=_native_misses,
    ),
    Spec(
        id="getpid.l4linux.tlb_misses_per_call",
        figure="TLB misses per L4Linux getpid call",
        seed=6,
        unit="misses",
        tolerance=0.1,
        relative=False,
        calibrated_by="working-set sizes (actors/working_sets.py)",
        model=_l4linux_misses,
    ),
    Spec(
        id="getpid.l4linux.switches_per_call",
        figure="context switches per L4Linux system call",
        seed=2,
        unit="switches",
        tolerance=0.05,
        relative=False,
        calibrated_by="",
        model=_l4linux_switches,
    ),
    Spec(
        id="read.blocking.cycles",
        figure="blocking sys_read() on L4Linux",
        seed=2_700_000,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="work.wait.read",
        model=lambda m: m.read.cycles,
    ),
    Spec(
        id="fork.chief.speedup",
        figure="fork+exit with allocate_chief vs task server",
        seed=0.10,
        unit="speedup",
        tolerance=0.03,
        relative=False,
        calibrated_by="",
        model=lambda m: m.speedup("chief"),
    ),
    Spec(
        id="fork.cache.speedup",
        figure="fork+exit with allocate_chief + task cache",
        seed=0.20,
        unit="speedup",
        tolerance=0.02,
        relative=False,
        calibrated_by="work.linux.fork",
        model=lambda m: m.speedup("chief+cache"),
    ),
)
"""Every figure of the seed, in its order, with its tolerance."""


@attrs.frozen(kw_only=True)
class Row:
    """One line of the table."""

    spec: Spec | MachineSpec
    model: float

    @property
    def deviation(self) -> float:
        """Relative deviation (cycles, misses per 100k) or absolute (misses, speedups)."""
        if self.spec.relative:
            return self.model / self.spec.seed - 1
        return self.model - self.spec.seed

    @property
    def ok(self) -> bool:
        """Within tolerance (for a lower bound: at or above it, less the tolerance)."""
        if self.spec.at_least:
            return self.deviation >= -self.spec.tolerance - 1e-12
        return abs(self.deviation) <= self.spec.tolerance + 1e-12

    @property
    def known_miss(self) -> bool:
        """Out of tolerance for the documented reason (``miss_reason``)."""
        return not self.ok and bool(self.spec.miss_reason)

    @property
    def verdict(self) -> str:
        """``ok``, ``miss`` (out of tolerance, reason documented) or ``FAIL``."""
        return "ok" if self.ok else "miss" if self.known_miss else "FAIL"

    @property
    def kind(self) -> str:
        """``calibrated`` or ``predicted``."""
        return "calibrated" if self.spec.calibrated_by else "predicted"

    def tolerance_text(self) -> str:
        """The tolerance as printed."""
        s = self.spec
        if s.at_least:
            return f">= {s.seed - s.tolerance:g}"
        if s.relative:
            return f"{s.tolerance:.0%}"
        if s.unit == "speedup":
            return f"±{s.tolerance * 100:.0f} pp"
        return f"±{s.tolerance:g}"

    def deviation_text(self) -> str:
        """The deviation as printed."""
        if self.spec.relative:
            return f"{self.deviation:+.1%}"
        if self.spec.unit == "speedup":
            return f"{self.deviation * 100:+.1f} pp"
        return f"{self.deviation:+.3f}"

    def to_json(self) -> dict[str, object]:
        """The row in ``--json``."""
        s = self.spec
        return {
            "id": s.id,
            "machine": s.machine,
            "source": s.source,
            "figure": s.figure,
            "seed": s.seed,
            "model": round(self.model, 4),
            "unit": s.unit,
            "deviation": round(self.deviation, 5),
            "tolerance": self.tolerance_text(),
            "kind": self.kind,
            "calibrated_by": s.calibrated_by or None,
            "ok": self.ok,
            "verdict": self.verdict,
            "miss_reason": s.miss_reason if self.known_miss else None,
        }


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
    lines.append(f"  {'(native Linux getpid)':<34}{_value_text('cycles', _native_cycles(m)):>18}")
    return lines


def _breakdown_text(name: str, cost: Cost, n: int) -> str:
    parts = ", ".join(f"{k} {v / n:,.0f}" for k, v in cost.breakdown if v / n >= 0.5)
    return f"{name:<18}{cost.cycles / n:>10,.0f} = {parts}"


def report(
    profile: Profile,
    sizes: Sizes = SIZES,
    progress: Progress = _quiet,
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
        return _quiet
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
    if progress is not _quiet:
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
