"""fork: N fork+exit pairs of an L4Linux process, by task-management strategy.

Covers the seed's second post (two 2006 posts on L4Linux performance): ``fork.chief.speedup``
(~10%, ``allocate_chief``: L4Linux starts and stops its tasks itself) and
``fork.cache.speedup`` (~20%, plus a cache of terminated tasks), both against the
task-server path (``classic``); ``merged`` is the seed's what-if of folding the task
server into RMGR (no source).  Each pair is: init forks, the child exits, init reaps it
(``wait``).  The difference between strategies is only which IPCs and system calls the
servers make, the sources' call sequences of ``protocols.l4linux`` (counted per pair in
``calls_per_fork``: "caller -> callee: Message"); Linux's own fork/exit/wait work is
the same in all four.

Speedup = cycles(classic) / cycles(strategy) - 1 (the seed's "performance increase").

Run alone: ``python -m scenarios.scripts.fork --strategy chief+cache --json``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from typing import Final

import attrs

from protocols.editions import DEFAULT_EDITION, Edition
from protocols.ids import RMGR_TASK
from protocols.trace import Event, IpcCall, Syscall
from scenarios._common import (
    per,
    positive_int,
    priced,
    scenario_parser,
    script_main,
)
from scenarios.cost.machine import Cost
from scenarios.cost.profile import Profile
from scenarios.record.l4world import STRATEGIES
from scenarios.record.traces import fork_pairs
from scenarios.report.render import server_role

__all__ = ["PAIRS", "ForkRun", "main", "measure", "server_calls", "setup", "speedup"]

PAIRS: Final = 100
"""Fork+exit pairs per run (the cache reaches its steady state after the first)."""


@attrs.frozen(kw_only=True)
class ForkRun:
    """A priced run of ``pairs`` fork+exit pairs under one strategy."""

    strategy: str
    pairs: int
    edition: str
    cost: Cost
    ipc: int
    syscalls: int
    calls: tuple[tuple[str, int], ...] = ()
    """Every call a server made (``server_calls``), sorted by name."""

    def calls_per_fork(self) -> dict[str, float]:
        """``server_calls`` per fork+exit pair."""
        return {name: n / self.pairs for name, n in self.calls}

    @property
    def cycles_per_fork(self) -> float:
        """Cycles per fork+exit pair."""
        return self.cost.cycles / self.pairs

    def to_json(self, profile: Profile, classic: ForkRun | None = None) -> dict[str, object]:
        """The scenario's JSON object (with the speedup if ``classic`` is given)."""
        out: dict[str, object] = {
            "scenario": "fork",
            "strategy": self.strategy,
            "edition": self.edition,
            "pairs": self.pairs,
            "profile": profile.name,
            "cycles_per_fork": round(self.cycles_per_fork, 1),
            "ipc_per_fork": round(self.ipc / self.pairs, 3),
            "syscalls_per_fork": round(self.syscalls / self.pairs, 3),
            "tlb_misses_per_fork": round(self.cost.tlb_misses / self.pairs, 3),
            "cache_misses_per_fork": round(self.cost.cache_misses / self.pairs, 3),
            "breakdown": per(self.cost, self.pairs),
            "calls_per_fork": {k: round(v, 3) for k, v in self.calls_per_fork().items()},
        }
        if classic is not None:
            out["speedup_vs_classic"] = round(speedup(classic, self), 5)
        return out


def speedup(classic: ForkRun, other: ForkRun) -> float:
    """The seed's "performance increase" of ``other`` over the task-server path."""
    return classic.cost.cycles / other.cost.cycles - 1


def _roles(events: Sequence[Event]) -> dict[int, str]:
    """Task number -> role, from what each task is asked (RMGR by its fixed number)."""
    roles = {RMGR_TASK: "RMGR"}
    for e in events:
        if type(e) is IpcCall:
            role = server_role(e.message)
            if role is not None:
                roles.setdefault(e.dst.task, role)
    return roles


def server_calls(events: Sequence[Event]) -> dict[str, int]:
    """How often each server called whom with what: ``"L4Linux -> task server: Allocate"``.

    Counts IPC calls and system calls (callee ``kernel``) made by RMGR, the task server
    and L4Linux; the processes' own Linux calls are the same in every strategy and left
    out.  A call to a task that is not running (the task library's ``CapProbe``) counts
    too: it is made, and fails."""
    roles = _roles(events)
    counts: Counter[str] = Counter()
    for e in events:
        message: object
        if type(e) is IpcCall:
            caller, callee, message = (
                roles.get(e.src.task),
                roles.get(e.dst.task, "process"),
                e.message,
            )
        elif type(e) is Syscall:
            caller, callee, message = roles.get(e.caller.task), "kernel", e.request
        else:
            continue
        if caller is not None:
            counts[f"{caller} -> {callee}: {type(message).__name__}"] += 1
    return dict(sorted(counts.items()))


def measure(
    strategy: str, pairs: int, profile: Profile, edition: str | Edition = DEFAULT_EDITION.name
) -> ForkRun:
    """Record and price ``pairs`` fork+exit pairs under ``strategy`` in ``edition``."""
    events = fork_pairs(strategy, pairs, edition)
    return ForkRun(
        strategy=strategy,
        pairs=pairs,
        edition=str(edition),
        cost=priced(events, profile),
        ipc=sum(1 for e in events if type(e) is IpcCall),
        syscalls=sum(1 for e in events if type(e) is Syscall),
        calls=tuple(server_calls(events).items()),
    )


def setup(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the scenario's arguments."""
    parser = scenario_parser("fork", __doc__)
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="classic", help="L4Linux's task strategy"
    )
    parser.add_argument(
        "-n", "--pairs", type=positive_int, default=PAIRS, help="fork+exit pairs to make"
    )
    return parser.parse_args(argv)


@attrs.frozen(kw_only=True)
class ForkReport:
    """``l4sim run fork``: a strategy's run and the classic run it is compared with."""

    run: ForkRun
    classic: ForkRun

    def to_json(self, profile: Profile) -> dict[str, object]:
        """The scenario's JSON object."""
        return self.run.to_json(profile, self.classic)

    def to_lines(self, profile: Profile) -> list[str]:
        """The scenario's report for people."""
        run, out = self.run, self.to_json(profile)
        return [
            f"fork+exit, strategy {run.strategy}, edition {run.edition}, {run.pairs} pairs, "
            f"profile {profile.name}",
            f"  cycles per fork+exit   {out['cycles_per_fork']}",
            f"  IPC calls per fork     {out['ipc_per_fork']}",
            f"  system calls per fork  {out['syscalls_per_fork']}",
            f"  TLB misses per fork    {out['tlb_misses_per_fork']}",
            f"  speedup vs classic     {float(out['speedup_vs_classic']):+.1%}",  # type: ignore[arg-type]
            "  breakdown (cycles per fork+exit):",
            *(f"    {k:<14}{v:>12.1f}" for k, v in per(run.cost, run.pairs).items()),
            "  calls per fork+exit:",
            *(f"    {k:<44}{v:>8.2f}" for k, v in run.calls_per_fork().items()),
        ]


def report(args: argparse.Namespace, profile: Profile) -> ForkReport:
    """``l4sim run fork``: the run its arguments ask for, and classic's to compare."""
    run = measure(args.strategy, args.pairs, profile, args.edition)
    classic = (
        run if args.strategy == "classic" else measure("classic", args.pairs, profile, args.edition)
    )
    return ForkReport(run=run, classic=classic)


main = script_main("fork", setup, report)


if __name__ == "__main__":
    raise SystemExit(main(None))
