"""calibrate: solve the profile's calibrated constants against their seed figures.

Five constants have no published value (AMD publishes no K7 TLB-miss, CR3 or IPC
cycle cost) and are each solved
against exactly one seed figure, on the same recorded runs ``l4sim reproduce`` prices:

=========================  ==========================================  ===============
constant                   seed figure                                 how it enters
=========================  ==========================================  ===============
``cpu.trap_cycles``        getpid.native.cycles (260)                  1 trap per call
``ipc.path_cycles``        getpid.l4linux.cycles (3,700)               2 IPCs per call
``timer.other_pages``      getpid.native.tlb_misses_per_100k (200)     misses per run
``work.wait.read``         read.blocking.cycles (2.7 M)                1 wait per read
``work.linux.fork``        fork.cache.speedup (20%)                    1 fork per pair
=========================  ==========================================  ===============

Every other constant is published or assumed.  ``fork.chief.speedup`` is **not** used:
it stays a prediction.  The solver iterates (the timer couples the figures slightly)
and prints the values; ``--write FILE`` puts them into a profile file.

Run: ``python -m scenarios.calibrate [--profile NAME|FILE] [--write FILE]``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from scenarios._common import ScenarioError, add_profile_args, priced, profile_from
from scenarios.profile import Profile
from scenarios.reproduce import SIZES, SPECS, Sizes
from scenarios.traces import fork_pairs, syscall_loop

__all__ = ["CALIBRATED", "main", "solve"]

CALIBRATED: Final = (
    "cpu.trap_cycles",
    "ipc.path_cycles",
    "timer.other_pages",
    "work.wait.read",
    "work.linux.fork",
)
ROUNDS: Final = 4


def _seed(figure: str) -> float:
    return next(s.seed for s in SPECS if s.id == figure)


def _set(p: Profile, key: str, value: int) -> Profile:
    return p.with_overrides((f"{key}={max(0, value)}",))


def solve(profile: Profile, sizes: Sizes = SIZES) -> dict[str, int]:
    """The calibrated constants that make the model hit their seed figures."""
    native = syscall_loop("getpid", "native", sizes.native_calls)
    l4 = syscall_loop("getpid", "l4linux", sizes.l4linux_calls)
    reads = syscall_loop("read", "l4linux", sizes.reads)
    classic, cached = fork_pairs("classic", sizes.pairs), fork_pairs("chief+cache", sizes.pairs)
    p = profile
    for _ in range(ROUNDS):
        c = priced(native, p)
        per = c.cycles / sizes.native_calls
        p = _set(
            p,
            "cpu.trap_cycles",
            round(p.get_int("cpu.trap_cycles") + _seed("getpid.native.cycles") - per),
        )
        c = priced(l4, p)
        per = c.cycles / sizes.l4linux_calls
        step = (_seed("getpid.l4linux.cycles") - per) / 2
        p = _set(p, "ipc.path_cycles", round(p.get_int("ipc.path_cycles") + step))
        c = priced(native, p)
        misses = c.tlb_misses * 100_000 / sizes.native_calls
        runs = max(1, c.count("other_runs"))
        step = (_seed("getpid.native.tlb_misses_per_100k") - misses) / runs
        p = _set(p, "timer.other_pages", round(p.get_int("timer.other_pages") + step))
        c = priced(reads, p)
        step = _seed("read.blocking.cycles") - c.cycles / sizes.reads
        p = _set(p, "work.wait.read", round(p.get_int("work.wait.read") + step))
        t0 = priced(classic, p).cycles / sizes.pairs
        t2 = priced(cached, p).cycles / sizes.pairs
        gain = 1 + _seed("fork.cache.speedup")
        # (t0 + x) / (t2 + x) = gain, x added to every fork: x = (t0 - gain t2) / (gain - 1)
        step = (t0 - gain * t2) / (gain - 1)
        p = _set(p, "work.linux.fork", round(p.get_int("work.linux.fork") + step))
    return {key: p.get_int(key) for key in CALIBRATED}


def write(path: Path, values: dict[str, int]) -> None:
    """Replace the ``value = N`` of each calibrated key's line in profile file ``path``."""
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        leaf = key.split(".", 1)[1] if key.startswith("work.") else key.rsplit(".", 1)[1]
        pattern = re.compile(rf'^("?{re.escape(leaf)}"?\s*=\s*\{{\s*value\s*=\s*)\d+', re.M)
        text, n = pattern.subn(rf"\g<1>{value}", text)
        if n != 1:
            raise ScenarioError(f"{path}: found {n} lines for {key}")
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``python -m scenarios.calibrate``)."""
    parser = argparse.ArgumentParser(prog="python -m scenarios.calibrate", description=__doc__)
    parser.add_argument("--write", type=Path, metavar="FILE", help="update this profile file")
    add_profile_args(parser)
    args = parser.parse_args(argv)
    try:
        values = solve(profile_from(args))
        for key, value in values.items():
            print(f"{key} = {value}")
        if args.write is not None:
            write(args.write, values)
    except ScenarioError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
