"""calibrate: solve the profiles' calibrated constants, each against one published figure.

Every constant without a published value is either assumed (documented in its profile)
or calibrated: solved against exactly one figure, on the same recorded runs
``l4sim reproduce`` prices.  Each calibration names the profile whose file holds the
value (other profiles carry it unchanged) and the figures it may be solved against, the
first being the shipped one:

=========================  ==============  =========================================
constant                   profile         figure(s), first = shipped
=========================  ==============  =========================================
``cpu.trap_cycles``        duron800        getpid.native.cycles (260)
``ipc.path_cycles``        duron800        getpid.l4linux.cycles (3,700): Fiasco
``timer.other_pages``      duron800        getpid.native.tlb_misses_per_100k (200)
``work.wait.read``         duron800        read.blocking.cycles (2.7 M)
``work.linux.fork``        duron800        fork.cache.speedup (20%)
``tlb.miss_cycles``        pentium3-800    p3_800.ipc.switch_penalty.cycles (170): P6
``ipc.path_cycles``        pentium2-400    p2_400.ipc.oneway.cycles (273): L4Ka;
                                           else p4_1400, opteron242 one-way IPC
=========================  ==============  =========================================

Every other row is a prediction.  ``--leave-one-out`` holds each machine out in turn:
its constants are solved against their next figure on another machine (if there is
none, the constant keeps its shipped value and the row is marked so), and the held-out
machine's rows are predicted with them.

Run: ``python -m scenarios.cost.calibrate [--write FILE ...] [--write-shipped] [--leave-one-out]``.
``--write FILE`` updates the constants the profile in FILE owns (its ``name``);
``--write-shipped`` updates every shipped profile (after the recorded traces change).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Final

import attrs

from scenarios._common import ScenarioError, priced
from scenarios.cost.figures import MACHINE_SPECS, machine_profile, machines
from scenarios.cost.profile import DEFAULT_PROFILE, Profile
from scenarios.record.traces import fork_pairs, syscall_loop
from scenarios.report.measure import SIZES, Sizes
from scenarios.report.rows import SPECS

__all__ = ["CALIBRATED", "CALIBRATIONS", "Calibration", "leave_one_out", "main", "solve"]


@attrs.frozen
class Calibration:
    """A constant solved against one figure (the first of ``figures`` not held out)."""

    key: str
    owner: str
    """The profile whose file holds the value; the others carry it."""
    figures: tuple[str, ...]


CALIBRATIONS: Final = (
    Calibration("cpu.trap_cycles", DEFAULT_PROFILE, ("getpid.native.cycles",)),
    Calibration("ipc.path_cycles", DEFAULT_PROFILE, ("getpid.l4linux.cycles",)),
    Calibration("timer.other_pages", DEFAULT_PROFILE, ("getpid.native.tlb_misses_per_100k",)),
    Calibration("work.wait.read", DEFAULT_PROFILE, ("read.blocking.cycles",)),
    Calibration("work.linux.fork", DEFAULT_PROFILE, ("fork.cache.speedup",)),
    Calibration("tlb.miss_cycles", "pentium3-800", ("p3_800.ipc.switch_penalty.cycles",)),
    Calibration(
        "ipc.path_cycles",
        "pentium2-400",
        ("p2_400.ipc.oneway.cycles", "p4_1400.ipc.oneway.cycles", "opteron242.ipc.oneway.cycles"),
    ),
)
CALIBRATED: Final = tuple(c.key for c in CALIBRATIONS if c.owner == DEFAULT_PROFILE)
"""The seed machine's calibrated constants."""
ROUNDS: Final = 4

Values = dict[tuple[str, str], int]
"""(owner profile, key) -> value."""


def _machine_of(figure: str) -> str:
    for spec in MACHINE_SPECS:
        if spec.id == figure:
            return spec.machine
    assert any(s.id == figure for s in SPECS), f"no figure {figure!r}"
    return DEFAULT_PROFILE


def _seed(figure: str) -> float:
    return next(s.seed for s in (*SPECS, *MACHINE_SPECS) if s.id == figure)


def shipped() -> Values:
    """The calibrated values the shipped profiles hold."""
    return {(c.owner, c.key): machine_profile(c.owner).get_int(c.key) for c in CALIBRATIONS}


def profile_for(machine: str, values: Values) -> Profile:
    """Machine ``machine``'s shipped profile with ``values`` in place of its own or carried
    calibrated constants."""
    p = machine_profile(machine)
    overrides = []
    for (owner, key), value in values.items():
        c = p.constant(key)
        if (c.carried_from or machine) == owner and c.value != value:
            overrides.append(f"{key}={max(0, value)}")
    return p.with_overrides(overrides) if overrides else p


def _set(p: Profile, key: str, value: int) -> Profile:
    return p.with_overrides((f"{key}={max(0, value)}",))


def _solve_seed(p: Profile, sizes: Sizes) -> dict[str, int]:
    """The seed machine's constants (each step uses how its figure depends on it)."""
    native = syscall_loop("getpid", "native", sizes.native_calls)
    l4 = syscall_loop("getpid", "l4linux", sizes.l4linux_calls)
    reads = syscall_loop("read", "l4linux", sizes.reads)
    classic, cached = fork_pairs("classic", sizes.pairs), fork_pairs("chief+cache", sizes.pairs)
    for _ in range(ROUNDS):
        per = priced(native, p).cycles / sizes.native_calls
        trap = p.get_int("cpu.trap_cycles")
        p = _set(p, "cpu.trap_cycles", round(trap + _seed("getpid.native.cycles") - per))
        per = priced(l4, p).cycles / sizes.l4linux_calls
        step = (_seed("getpid.l4linux.cycles") - per) / 2
        p = _set(p, "ipc.path_cycles", round(p.get_int("ipc.path_cycles") + step))
        c = priced(native, p)
        misses = c.tlb_misses * 100_000 / sizes.native_calls
        step = (_seed("getpid.native.tlb_misses_per_100k") - misses) / max(1, c.count("other_runs"))
        p = _set(p, "timer.other_pages", round(p.get_int("timer.other_pages") + step))
        step = _seed("read.blocking.cycles") - priced(reads, p).cycles / sizes.reads
        p = _set(p, "work.wait.read", round(p.get_int("work.wait.read") + step))
        t0 = priced(classic, p).cycles / sizes.pairs
        t2 = priced(cached, p).cycles / sizes.pairs
        gain = 1 + _seed("fork.cache.speedup")
        # (t0 + x) / (t2 + x) = gain, x added to every fork: x = (t0 - gain t2) / (gain - 1)
        step = (t0 - gain * t2) / (gain - 1)
        p = _set(p, "work.linux.fork", round(p.get_int("work.linux.fork") + step))
    return {key: p.get_int(key) for key in CALIBRATED}


def _model(figure: str) -> Callable[[Profile], float]:
    return next(s.model for s in MACHINE_SPECS if s.id == figure)


def _secant(cal: Calibration, figure: str, values: Values) -> int:
    """Solve ``cal`` against ``figure`` (a figure of another machine) by secant steps."""
    machine, model, target = _machine_of(figure), _model(figure), _seed(figure)
    v = values[(cal.owner, cal.key)]
    for _ in range(ROUNDS):
        f0 = model(profile_for(machine, {**values, (cal.owner, cal.key): v})) - target
        if abs(f0) < 0.5:
            break
        dv = max(1, v // 10)
        f1 = model(profile_for(machine, {**values, (cal.owner, cal.key): v + dv})) - target
        if f1 == f0:
            break
        v = max(0, round(v - f0 * dv / (f1 - f0)))
    return v


def figure_for(cal: Calibration, held_out: str | None) -> str | None:
    """The figure ``cal`` is solved against when ``held_out`` is held out (None: none)."""
    return next((f for f in cal.figures if _machine_of(f) != held_out), None)


def solve(
    profile: Profile | None = None, sizes: Sizes = SIZES, held_out: str | None = None
) -> Values:
    """Every calibrated constant, solved against its figure (``held_out``'s figures not
    used; a constant with no other figure keeps its shipped value)."""
    values = shipped()
    if held_out != DEFAULT_PROFILE:
        seed = _solve_seed(profile or machine_profile(DEFAULT_PROFILE), sizes)
        values.update({(DEFAULT_PROFILE, k): v for k, v in seed.items()})
    return _solve_others(values, held_out)


def _solve_others(values: Values, held_out: str | None) -> Values:
    """The constants owned by machines other than the seed's, from ``values``."""
    values = dict(values)
    for _ in range(2):  # the other machines' constants are coupled (the P6 miss, the path)
        for cal in CALIBRATIONS:
            figure = figure_for(cal, held_out)
            if cal.owner != DEFAULT_PROFILE and figure is not None:
                values[(cal.owner, cal.key)] = _secant(cal, figure, values)
    return values


@attrs.frozen
class HeldOut:
    """One row of the leave-one-out table."""

    machine: str
    id: str
    seed: float
    shipped: float
    held_out: float | None
    """The row's model value with its machine held out (None: not predictable)."""
    why: str
    relative: bool = True


def leave_one_out(sizes: Sizes = SIZES) -> tuple[HeldOut, ...]:
    """Hold each machine out: calibrate on the rest, predict its rows."""
    from scenarios.report.measure import measure

    out: list[HeldOut] = []
    base = shipped()
    seed_profile = machine_profile(DEFAULT_PROFILE)
    m = measure(seed_profile, sizes)
    for spec in SPECS:
        cal = next((c for c in CALIBRATIONS if spec.id in c.figures), None)
        why = f"no other figure for {cal.key}" if cal else "predicted as shipped (no other figures)"
        held = None if cal or spec.calibrated_by else spec.model(m)
        if spec.calibrated_by and not cal:
            why = f"{spec.calibrated_by}: not a constant the tool solves"
        out.append(
            HeldOut(DEFAULT_PROFILE, spec.id, spec.seed, spec.model(m), held, why, spec.relative)
        )
    for machine in machines():
        # the seed machine's constants do not depend on the others: shipped = solved
        values = _solve_others(base, held_out=machine)
        for ms in MACHINE_SPECS:
            if ms.machine != machine:
                continue
            lost = [
                c.key for c in CALIBRATIONS if c.owner == machine and figure_for(c, machine) is None
            ]
            used = [c for c in CALIBRATIONS if ms.id in c.figures]
            if used and any(figure_for(c, machine) is None for c in used):
                out.append(
                    HeldOut(
                        machine,
                        ms.id,
                        ms.seed,
                        ms.model(profile_for(machine, base)),
                        None,
                        f"no other figure for {', '.join(lost)}",
                        ms.relative,
                    )
                )
                continue
            moved = {k: v for k, v in values.items() if base[k] != v}
            why = ", ".join(f"{o}:{k} {base[(o, k)]} -> {v}" for (o, k), v in moved.items())
            out.append(
                HeldOut(
                    machine,
                    ms.id,
                    ms.seed,
                    ms.model(profile_for(machine, base)),
                    ms.model(profile_for(machine, values)),
                    why
                    or (
                        f"{', '.join(lost)} kept as shipped (no other figure); not used here"
                        if lost
                        else "no constant is calibrated on this machine: as shipped"
                    ),
                    ms.relative,
                )
            )
    return tuple(out)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3f}"


def leave_one_out_lines(rows: Sequence[HeldOut]) -> list[str]:
    """The leave-one-out table as printed."""
    lines = [
        f"{'machine':<14}{'row':<35}{'figure':>11}{'shipped':>11}{'held out':>11}{'dev':>9}"
        "  constants re-solved without the machine"
    ]
    for r in rows:
        held = "-" if r.held_out is None else _num(r.held_out)
        dev = "-"
        if r.held_out is not None:
            dev = f"{r.held_out / r.seed - 1:+.1%}" if r.relative else f"{r.held_out - r.seed:+.3f}"
        lines.append(
            f"{r.machine:<14}{r.id:<35}{_num(r.seed):>11}{_num(r.shipped):>11}{held:>11}"
            f"{dev:>9}  {r.why}"
        )
    return lines


def write(path: Path, values: dict[str, int]) -> None:
    """Replace the ``value = N`` of each calibrated key's line in profile file ``path``
    (the line of the key's leaf in the key's ``[section]``)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    for key, value in values.items():
        section, leaf = key.split(".", 1)
        pattern = re.compile(rf'^("?{re.escape(leaf)}"?\s*=\s*\{{\s*value\s*=\s*)\d+')
        current, found = "", 0
        for i, line in enumerate(lines):
            head = re.match(r"^\[([^\]]+)\]\s*$", line)
            if head:
                current = head.group(1).strip()
            elif current == section and pattern.match(line):
                lines[i] = pattern.sub(rf"\g<1>{value}", line)
                found += 1
        if found != 1:
            raise ScenarioError(f"{path}: found {found} lines for {key}")
    path.write_text("\n".join(lines), encoding="utf-8")


def _owned(path: Path, values: Values) -> dict[str, int]:
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read a profile ({exc.__class__.__name__})") from None
    return {key: v for (owner, key), v in values.items() if owner == name}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``python -m scenarios.cost.calibrate``)."""
    parser = argparse.ArgumentParser(prog="python -m scenarios.cost.calibrate", description=__doc__)
    parser.add_argument(
        "--write",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="update the constants the profile in FILE owns (repeatable; default: none)",
    )
    parser.add_argument(
        "--write-shipped",
        action="store_true",
        help="update every shipped profile file (default: off)",
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also hold each machine out and print the table (default: off)",
    )
    args = parser.parse_args(argv)
    try:
        values = solve()
        for (owner, key), value in values.items():
            print(f"{owner:<14}{key} = {value}")
        paths = list(args.write)
        if args.write_shipped:
            folder = Path(str(resources.files("scenarios.cost") / "profiles"))
            paths += sorted(folder.glob("*.toml"))
        for path in paths:
            owned = _owned(path, values)
            if owned:
                write(path, owned)
        if args.leave_one_out:
            print()
            print("\n".join(leave_one_out_lines(leave_one_out())))
    except ScenarioError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
