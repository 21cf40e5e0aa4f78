"""``l4sim bench``: how fast the model itself runs, measured in one process run.

People run l4sim in loops (property campaigns, parameter sweeps), so the model must stay
close to raw Pykka speed and hold the full L4 V2 system.  Each *probe* below runs its own
warm-up and then ``repeat`` timed repetitions; every figure is the median of its samples
with the lowest and highest beside it.  Ratios are computed per repetition from figures
measured side by side in that repetition.

Figures are declared in ``FIGURES``; a figure is reported when a probe in ``PROBES``
recorded samples for it, else it is listed as not measured in this run (``--only`` left
its probe out).  A figure per strategy is recorded as ``KEY[STRATEGY]``.  To add one:
declare it in ``FIGURES``, write a probe ``(params, recorder) -> None`` that does its own
warm-up and then calls ``recorder.add(key, value)`` once per repetition (``params.repeat``;
a ratio from values measured in that same repetition), and add it to ``PROBES`` before
``probe_memory``.

This module is measuring apparatus: it reads the host clock; the model never does.
"""

from __future__ import annotations

import statistics
from typing import Any, Final

import attrs

from protocols.ids import FIRST_USER_TASK, TASK_COUNT
from scenarios.bench.actors import (
    EIP_BENCH_CALLER,
    EIP_BENCH_PEER,
    CallLoop,
    Ping,
    Pong,
    bench_system,
)
from scenarios.bench.probes import PROBES, Probe
from scenarios.host import HostInfo, host_info

__all__ = [
    "EIP_BENCH_CALLER",
    "EIP_BENCH_PEER",
    "FIGURES",
    "PROBES",
    "QUICK",
    "BenchParams",
    "BenchReport",
    "CallLoop",
    "Figure",
    "FigureSpec",
    "Ping",
    "Pong",
    "Recorder",
    "Target",
    "bench_system",
    "format_report",
    "probe_name",
    "report_json",
    "run_bench",
]

# -- figures -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Target:
    """A figure's target: its median must be at most ``at_most`` (or, for a figure where
    more is better, at least ``at_least``)."""

    text: str
    at_most: float | None = None
    at_least: float | None = None

    def met(self, value: float) -> bool:
        """Whether ``value`` meets this target."""
        low = self.at_least is None or value >= self.at_least
        return low and (self.at_most is None or value <= self.at_most)


@attrs.frozen(kw_only=True)
class FigureSpec:
    """What a figure measures."""

    key: str
    label: str
    unit: str
    target: Target | None = None


FIGURES: Final[tuple[FigureSpec, ...]] = (
    FigureSpec(key="ask_rt_us", label="raw Pykka ask round trip (baseline)", unit="us"),
    FigureSpec(key="ipc_rt_us", label="l4sim IPC round trip, trace on", unit="us"),
    FigureSpec(key="ipc_rt_untraced_us", label="l4sim IPC round trip, trace off", unit="us"),
    FigureSpec(
        key="ipc_vs_ask",
        label="l4sim IPC / raw ask (same repetition)",
        unit="x",
        target=Target(at_most=1.5, text="<= 1.5"),
    ),
    FigureSpec(key="ask_rt_one_cpu_us", label="raw ask round trip, one CPU", unit="us"),
    FigureSpec(key="ask_rt_all_cpus_us", label="raw ask round trip, all CPUs", unit="us"),
    FigureSpec(key="pin_speedup", label="ask all CPUs / one CPU", unit="x"),
    FigureSpec(key="scale_boot_s", label="boot, every task number in use", unit="s"),
    FigureSpec(key="scale_ipc_all_s", label="one IPC from each of those tasks", unit="s"),
    FigureSpec(key="scale_shutdown_s", label="shutdown of that system", unit="s"),
    FigureSpec(
        key="scale_rss_per_actor_kib", label="RSS per thread actor (first boot)", unit="KiB"
    ),
    FigureSpec(key="peak_rss_mib", label="peak RSS of the bench process", unit="MiB"),
    FigureSpec(key="getpid_native_per_s", label="getpid calls/s, native Linux", unit="1/s"),
    FigureSpec(key="getpid_l4linux_per_s", label="getpid calls/s, L4Linux", unit="1/s"),
    FigureSpec(
        key="fork_exit_per_s",
        label="fork+exit pairs/s, per strategy (one figure each)",
        unit="1/s",
    ),
    FigureSpec(
        key="ownership_steps_per_s",
        label="ownership state-machine steps/s",
        unit="1/s",
    ),
    FigureSpec(key="priced_events_per_s", label="trace events priced per second", unit="1/s"),
    FigureSpec(
        key="pricing_vs_recording",
        label="pricing time / recording time of a trace",
        unit="x",
        target=Target(at_most=0.1, text="<= 0.1"),
    ),
    FigureSpec(
        key="explore_states_per_s",
        label="explore states/s, ownership chief+cache 4x2, whole space, one core, default "
        "engine (the C core where pip install built it)",
        unit="1/s",
    ),
    FigureSpec(
        key="explore_python_states_per_s",
        label="the same search in Python (--engine python), same run",
        unit="1/s",
    ),
    FigureSpec(
        key="bfs_baseline_states_per_s",
        label="BFS states/s over tuples of 40 ints, trivial successors (same run)",
        unit="1/s",
    ),
    FigureSpec(
        key="explore_vs_bfs",
        label="explore states/s / BFS baseline states/s (same repetition)",
        unit="x",
        target=Target(at_least=0.15, text=">= 0.15"),
    ),
    FigureSpec(
        key="reproduce_s",
        label="l4sim reproduce, wall time",
        unit="s",
        target=Target(at_most=60.0, text="< 60"),
    ),
)


@attrs.frozen(kw_only=True)
class BenchParams:
    """How much to measure: calls per repetition, repetitions, size of the scale system."""

    calls: int = 2000
    """IPC (and ask) round trips per repetition."""
    repeat: int = 5
    """Timed repetitions per probe (after one warm-up)."""
    scale_tasks: int = TASK_COUNT
    """Task numbers of the scale system; every one RMGR can hand out runs a thread."""
    timeout: float = 30.0
    """Seconds any single wait of the bench may take."""

    def __attrs_post_init__(self) -> None:
        if self.calls < 1 or self.repeat < 1:
            raise ValueError("calls and repeat must be positive")
        if not FIRST_USER_TASK + 2 <= self.scale_tasks <= TASK_COUNT:
            raise ValueError(f"scale_tasks must be in {FIRST_USER_TASK + 2}..{TASK_COUNT}")


QUICK: Final = BenchParams(calls=50, repeat=2, scale_tasks=FIRST_USER_TASK + 16)
"""Tiny numbers for the CI smoke run: every figure, none of them meaningful."""


class Recorder:
    """Collects the samples the probes measure, by figure key."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.info: dict[str, int] = {}

    def add(self, key: str, value: float) -> None:
        """One sample of figure ``key``: a key of ``FIGURES``, or ``KEY[variant]`` for one
        variant of it (``fork_exit_per_s[allocate_chief]``: one figure per strategy)."""
        assert _base_key(key) in _SPECS, f"unknown bench figure {key!r}"
        self.samples.setdefault(key, []).append(float(value))


@attrs.frozen(kw_only=True)
class Figure:
    """A measured figure: its key (the spec's, or ``KEY[variant]``), spec and samples."""

    key: str
    spec: FigureSpec
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of the samples."""
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        """Lowest sample."""
        return min(self.samples)

    @property
    def high(self) -> float:
        """Highest sample."""
        return max(self.samples)

    @property
    def target_met(self) -> bool | None:
        """Whether the median meets the target (None if the figure has none)."""
        target = self.spec.target
        return None if target is None else target.met(self.median)


@attrs.frozen(kw_only=True)
class BenchReport:
    """One bench run: host, parameters, measured figures, figures left out (``--only``)."""

    host: HostInfo
    params: BenchParams
    actors: int
    """Thread actors the scale system ran (its task numbers in use, plus kernel)."""
    figures: tuple[Figure, ...]
    missing: tuple[FigureSpec, ...]


_SPECS: Final = {spec.key: spec for spec in FIGURES}


def _base_key(key: str) -> str:
    """``fork_exit_per_s[classic]`` -> ``fork_exit_per_s``."""
    return key.split("[", 1)[0] if key.endswith("]") else key


def probe_name(probe: Probe) -> str:
    """The name ``--only`` uses for a probe: its function name without ``probe_``."""
    return probe.__name__.removeprefix("probe_")


def run_bench(params: BenchParams, probes: tuple[Probe, ...] = PROBES) -> BenchReport:
    """Run every probe and collect the figures."""
    rec = Recorder()
    for probe in probes:
        probe(params, rec)
    figures = tuple(
        Figure(key=key, spec=spec, samples=tuple(rec.samples[key]))
        for spec in FIGURES
        for key in sorted(rec.samples)
        if _base_key(key) == spec.key
    )
    measured = {fig.spec.key for fig in figures}
    missing = tuple(spec for spec in FIGURES if spec.key not in measured)
    return BenchReport(
        host=host_info(),
        params=params,
        actors=rec.info.get("scale_actors", 0),
        figures=figures,
        missing=missing,
    )


# -- output --------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_report(report: BenchReport, command: str = "l4sim bench") -> str:
    """The report as a text table with the host and the command beside it."""
    h, p = report.host, report.params
    pin = "not pinned" if h.pinned_cpu is None else f"pinned to CPU {h.pinned_cpu}"
    lines = [
        f"$ {command}",
        f"host: {h.cpu_model}, {h.cpu_count} CPUs, process {pin}; {h.python}; Pykka {h.pykka}",
        f"{p.repeat} repetitions after a warm-up; {p.calls} round trips each; scale system: "
        f"{p.scale_tasks} task numbers, {report.actors} thread actors",
        "",
        f"{'figure':<24} {'median':>9} {'low':>9} {'high':>9}  {'unit':<4} target  what",
    ]
    for fig in report.figures:
        target = ""
        if fig.spec.target is not None:
            target = f"{fig.spec.target.text} {'met' if fig.target_met else 'MISSED'}"
        lines.append(
            f"{fig.key:<24} {_fmt(fig.median):>9} {_fmt(fig.low):>9} {_fmt(fig.high):>9}"
            f"  {fig.spec.unit:<4} {target:<7} {fig.spec.label}"
        )
    if report.missing:
        lines += ["", "not measured in this run (--only left their probes out):"]
        lines += [f"  {spec.key:<22} {spec.label}" for spec in report.missing]
    return "\n".join(lines)


def report_json(report: BenchReport) -> dict[str, Any]:
    """The report as plain JSON-able data (for ``l4sim bench --json``)."""
    return {
        "host": attrs.asdict(report.host),
        "params": attrs.asdict(report.params),
        "actors": report.actors,
        "figures": {
            fig.key: {
                "label": fig.spec.label,
                "unit": fig.spec.unit,
                "median": fig.median,
                "low": fig.low,
                "high": fig.high,
                "samples": list(fig.samples),
                "target": None if fig.spec.target is None else fig.spec.target.text,
                "target_met": fig.target_met,
            }
            for fig in report.figures
        },
        "not_measured": {
            spec.key: {"label": spec.label, "unit": spec.unit} for spec in report.missing
        },
    }
