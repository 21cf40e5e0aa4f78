"""``l4sim bench``: how fast the model itself runs, measured in one process run.

People run l4sim in loops (property campaigns, parameter sweeps), so the model must stay
close to raw Pykka speed and hold the full L4 V2 system.  Each *probe* below runs its own
warm-up and then ``repeat`` timed repetitions; every figure is the median of its samples
with the lowest and highest beside it.  Ratios are computed per repetition from figures
measured side by side in that repetition.

Figures are declared in ``FIGURES``; a figure is reported when a probe in ``PROBES``
recorded samples for it, else it is listed as "not available in this build" with the
issue that will provide it (``FigureSpec.planned``).  Those hooks are declared already:
``getpid_native_per_s``, ``getpid_l4linux_per_s``, ``fork_exit_per_s`` (one figure per
strategy, recorded as ``fork_exit_per_s[STRATEGY]``), ``ownership_steps_per_s``,
``priced_events_per_s``, ``pricing_vs_recording`` and ``reproduce_s``.  To provide one:
write a probe ``(params, recorder) -> None`` that does its own warm-up and then calls
``recorder.add(key, value)`` once per repetition (``params.repeat``; a ratio from values
measured in that same repetition), add it to ``PROBES`` before ``probe_memory``, and drop
the spec's ``planned``.

This module is measuring apparatus: it reads the host clock; the model never does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import attrs
import pykka

from actors.client import ClientThread
from actors.images import factory
from actors.system import BootConfig, System
from actors.thread import handles
from protocols.ids import FIRST_USER_TASK, TASK_COUNT, ThreadId
from scenarios.host import HostInfo, allowed_cpus, host_info, pinned_cpu, thread_affinity

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

# -- the bench's own threads and messages --------------------------------------------

EIP_BENCH_PEER: Final = 0xBE00
"""A ``PeerThread``: answers ``Ping`` with ``Pong`` and performs what it is told."""
EIP_BENCH_CALLER: Final = 0xBE10
"""A ``CallerThread``: a client that also runs timed call loops (``CallLoop``)."""


@attrs.frozen(kw_only=True)
class Ping:
    """Any bench thread to a peer thread: answer me (the cheapest possible request)."""


@attrs.frozen(kw_only=True)
class Pong:
    """Peer thread to the caller of ``Ping``: here I am."""

    task: int


@attrs.frozen(kw_only=True)
class CallLoop:
    """Harness to a caller thread: call ``dest`` with ``message`` ``count`` times; time it."""

    dest: ThreadId
    message: object
    count: int


class PeerThread(ClientThread):
    """A scripted client that also answers ``Ping``: the partner of every bench call.

    The answer is built once, so a round trip measures the IPC path, not the handler
    (the raw baseline's receiver likewise returns an object it already has).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._pong = Pong(task=self.tid.task)

    @handles(Ping)
    def ping(self, sender: ThreadId, msg: Ping) -> Pong:
        """Answer a ping (runs on this thread)."""
        return self._pong


class CallerThread(PeerThread):
    """Runs ``CallLoop`` on its own thread and returns the nanoseconds the loop took."""

    def on_control(self, message: Any) -> Any:
        """Handle ``CallLoop`` from the harness (runs on this thread)."""
        if isinstance(message, CallLoop):
            call, dest, msg = self.call, message.dest, message.message
            start = time.perf_counter_ns()
            for _ in range(message.count):
                reply = call(dest, msg)
            elapsed = time.perf_counter_ns() - start
            assert message.count == 0 or type(reply) is Pong, f"bench call failed: {reply!r}"
            return elapsed
        return super().on_control(message)


class _BareEcho(pykka.ThreadingActor):
    """A bare Pykka actor that returns what it is asked: the baseline's receiver."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        return message


class _BareLoop(pykka.ThreadingActor):
    """A bare Pykka actor: asked ``n``, it asks the other ``n`` times; returns the ns taken."""

    use_daemon_thread = True

    def __init__(self, other: pykka.ActorRef[Any], timeout: float) -> None:
        super().__init__()
        self.other = other
        self.timeout = timeout

    def on_receive(self, message: Any) -> Any:
        assert type(message) is int
        ask, timeout, ping = self.other.ask, self.timeout, Ping()
        start = time.perf_counter_ns()
        for _ in range(message):
            ask(ping, timeout=timeout)
        return time.perf_counter_ns() - start


def bench_system(config: BootConfig) -> System:
    """Boot ``config`` with the bench images (``EIP_BENCH_PEER``, ``EIP_BENCH_CALLER``)."""
    system = System(config)
    system.runtime.images[EIP_BENCH_PEER] = factory(PeerThread)
    system.runtime.images[EIP_BENCH_CALLER] = factory(CallerThread)
    return system.start()


# -- figures -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Target:
    """A figure's target: its median must be at most ``at_most``."""

    at_most: float
    text: str


@attrs.frozen(kw_only=True)
class FigureSpec:
    """What a figure measures; ``planned`` names the issue that will provide it."""

    key: str
    label: str
    unit: str
    target: Target | None = None
    planned: str | None = None


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
        return None if target is None else self.median <= target.at_most


@attrs.frozen(kw_only=True)
class BenchReport:
    """One bench run: host, parameters, measured figures, figures this build lacks."""

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


Probe = Callable[[BenchParams, Recorder], None]


# -- probes --------------------------------------------------------------------------


def _stop_all(refs: tuple[pykka.ActorRef[Any], ...], timeout: float) -> None:
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(timeout)


@contextlib.contextmanager
def _bare_pair(timeout: float) -> Iterator[pykka.ActorRef[Any]]:
    """Two bare Pykka actors; yields the one that runs timed ask loops on the other."""
    echo = _BareEcho.start()
    loop = _BareLoop.start(echo, timeout)
    try:
        yield loop
    finally:
        _stop_all((loop, echo), timeout)


def _ask_rt_ns(loop: pykka.ActorRef[Any], calls: int, timeout: float) -> float:
    return float(loop.ask(calls, block=True, timeout=timeout)) / calls


def probe_round_trips(p: BenchParams, rec: Recorder) -> None:
    """Raw Pykka ask vs the l4sim IPC path (trace on and off), side by side."""
    config = BootConfig(
        task_count=FIRST_USER_TASK + 2,
        modules=(EIP_BENCH_PEER, EIP_BENCH_CALLER),
        timeout=p.timeout,
    )
    with _bare_pair(p.timeout) as loop, bench_system(config) as system:
        peer, caller = system.modules
        caller_ref = system.ref(caller)
        loop_msg = CallLoop(dest=peer, message=Ping(), count=p.calls)

        def ipc_rt_ns(traced: bool) -> float:
            system.trace.enabled = traced
            mark = system.trace.mark()
            elapsed = float(caller_ref.ask(loop_msg, block=True, timeout=p.timeout))
            # Four events per call: the call, two address-space switches, the reply.
            assert len(system.trace) - mark == (4 * p.calls if traced else 0)
            return elapsed / p.calls

        for rep in range(p.repeat + 1):  # repetition 0 is the warm-up
            raw = _ask_rt_ns(loop, p.calls, p.timeout)
            traced = ipc_rt_ns(True)
            untraced = ipc_rt_ns(False)
            if rep == 0:
                continue
            rec.add("ask_rt_us", raw / 1e3)
            rec.add("ipc_rt_us", traced / 1e3)
            rec.add("ipc_rt_untraced_us", untraced / 1e3)
            rec.add("ipc_vs_ask", traced / raw)


def probe_pinning(p: BenchParams, rec: Recorder) -> None:
    """Raw ask round trip with both actors on one CPU, and free on every allowed CPU."""
    every = allowed_cpus()
    pinned = pinned_cpu()
    one = frozenset({min(every) if pinned is None else pinned})
    for rep in range(p.repeat + 1):
        measured: dict[frozenset[int], float] = {}
        for cpus in (one, every):
            with thread_affinity(cpus), _bare_pair(p.timeout) as loop:
                _ask_rt_ns(loop, max(1, p.calls // 10), p.timeout)
                measured[cpus] = _ask_rt_ns(loop, p.calls, p.timeout)
        if rep == 0:
            continue
        rec.add("ask_rt_one_cpu_us", measured[one] / 1e3)
        rec.add("ask_rt_all_cpus_us", measured[every] / 1e3)
        rec.add("pin_speedup", measured[every] / measured[one])


def _rss_kib() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _scale_once(tasks: int, timeout: float) -> tuple[float, float, float, int, float | None]:
    """Boot, one IPC from each module to the next, shutdown; times, actors, RSS per actor.

    RSS per actor is the growth of the resident set over the boot.  It means something on
    the first (cold) boot only: later boots reuse the memory (thread stacks) earlier ones
    freed, which the host C library keeps rather than hands back.
    """
    n = tasks - FIRST_USER_TASK
    config = BootConfig(task_count=tasks, modules=(EIP_BENCH_PEER,) * n, timeout=timeout)
    gc.collect()
    rss0 = _rss_kib()
    t0 = time.perf_counter()
    system = bench_system(config)
    try:
        t1 = time.perf_counter()
        rss1 = _rss_kib()
        refs = (*system.runtime.all_started(),)
        modules = system.modules
        assert len(modules) == n, "RMGR did not start every boot module"
        for i, tid in enumerate(modules):
            reply = system.perform(tid, modules[(i + 1) % n], Ping())
            assert type(reply) is Pong, f"IPC from {tid} failed: {reply!r}"
        t2 = time.perf_counter()
    finally:
        system.stop()
    t3 = time.perf_counter()
    assert not any(ref.is_alive() for ref in refs), "an actor survived shutdown"
    actors = len(refs) + 1  # and the kernel actor
    grown = None if rss0 is None or rss1 is None else (rss1 - rss0) / actors
    return t1 - t0, t2 - t1, t3 - t2, actors, grown


def probe_scale(p: BenchParams, rec: Recorder) -> None:
    """Every task number RMGR can hand out runs a thread actor; one IPC from each."""
    _scale_once(FIRST_USER_TASK + 4, p.timeout)  # warm-up
    for rep in range(p.repeat):
        boot_s, ipc_s, stop_s, actors, per_actor = _scale_once(p.scale_tasks, p.timeout)
        rec.add("scale_boot_s", boot_s)
        rec.add("scale_ipc_all_s", ipc_s)
        rec.add("scale_shutdown_s", stop_s)
        if per_actor is not None and rep == 0:  # the cold boot (see _scale_once)
            rec.add("scale_rss_per_actor_kib", per_actor)
        rec.info["scale_actors"] = actors


def probe_memory(_p: BenchParams, rec: Recorder) -> None:
    """Peak resident set size of this process so far (run it last)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rec.add("peak_rss_mib", peak / 1024)


def _l4linux_system(strategy: str = "classic") -> System:
    from scenarios.l4world import TASKS

    return System(BootConfig(task_count=TASKS, linux=1, strategy=strategy)).start()


def _fork_pairs_timed(system: System, pairs: int) -> float:
    """Seconds for ``pairs`` fork + exit + wait of init's children (the scenario's loop)."""
    from protocols.errors import ErrorCode
    from protocols.linux import Exit, Fork, ForkReply, Wait

    init = system.init_processes[0]
    t0 = time.perf_counter()
    for _ in range(pairs):
        child = system.linux_call(init, Fork())
        assert isinstance(child, ForkReply) and child.error is ErrorCode.OK, child
        system.linux_call(child.task, Exit())
        system.linux_call(init, Wait(pid=child.pid))
    return time.perf_counter() - t0


def probe_linux_calls(p: BenchParams, rec: Recorder) -> None:
    """getpid calls per second, native and L4Linux (harness ask to the process included)."""
    from actors.native_linux import NativeSystem
    from protocols.linux import Getpid

    calls = max(p.calls // 4, 10)
    for rep in range(p.repeat + 1):
        with NativeSystem() as world:
            t0 = time.perf_counter()
            world.repeat(world.processes[0], Getpid(), calls)
            native = time.perf_counter() - t0
        system = _l4linux_system()
        try:
            init = system.init_processes[0]
            t0 = time.perf_counter()
            for _ in range(calls):
                system.linux_call(init, Getpid())
            l4linux = time.perf_counter() - t0
        finally:
            system.stop()
        if rep:  # the first round is the warm-up
            rec.add("getpid_native_per_s", calls / native)
            rec.add("getpid_l4linux_per_s", calls / l4linux)


def probe_forks(p: BenchParams, rec: Recorder) -> None:
    """fork+exit pairs per second for each task-management strategy."""
    from scenarios.l4world import STRATEGIES

    pairs = max(p.calls // 40, 5)
    for rep in range(p.repeat + 1):
        for strategy in STRATEGIES:
            system = _l4linux_system(strategy)
            try:
                seconds = _fork_pairs_timed(system, pairs)
            finally:
                system.stop()
            if rep:
                rec.add(f"fork_exit_per_s[{strategy}]", pairs / seconds)


def probe_pricing(p: BenchParams, rec: Recorder) -> None:
    """Record a fork trace, then price it on the default profile: events/s and the ratio."""
    from scenarios.machine import price
    from scenarios.profile import DEFAULT_PROFILE, load_profile

    profile = load_profile(DEFAULT_PROFILE, [])
    pairs = max(p.calls // 40, 5)
    for rep in range(p.repeat + 1):
        system = _l4linux_system("classic")
        try:
            mark = system.trace.mark()
            recording = _fork_pairs_timed(system, pairs)
            events = system.trace.since(mark)
        finally:
            system.stop()
        t0 = time.perf_counter()
        price(events, profile)
        pricing = time.perf_counter() - t0
        if rep:
            rec.add("priced_events_per_s", len(events) / pricing)
            rec.add("pricing_vs_recording", pricing / recording)


def probe_ownership(p: BenchParams, rec: Recorder) -> None:
    """Steps per second of the ownership state machine (chief+cache), spec comparison on."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from protocols.l4linux import Strategy
    from scenarios.ownership_machine import OwnershipMachine, machine_for

    machine = machine_for(Strategy.CHIEF_CACHE)
    examples = max(p.calls // 200, 2)
    for rep in range(p.repeat + 1):
        before = OwnershipMachine.COUNTS["steps"]
        t0 = time.perf_counter()
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=30,
                derandomize=True,
                database=None,
                deadline=None,
                phases=(Phase.generate,),
                suppress_health_check=list(HealthCheck),
            ),
        )
        seconds = time.perf_counter() - t0
        if rep:
            rec.add("ownership_steps_per_s", (OwnershipMachine.COUNTS["steps"] - before) / seconds)


def probe_reproduce(p: BenchParams, rec: Recorder) -> None:
    """Wall time of ``l4sim reproduce`` as a fresh process (start-up included); once."""
    import subprocess
    import sys

    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "reproduce"],
        capture_output=True,
        timeout=max(p.timeout, 300.0),
        check=False,
    )
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, f"l4sim reproduce failed: {done.stderr.decode()[-300:]}"
    rec.add("reproduce_s", seconds)


PROBES: Final[tuple[Probe, ...]] = (
    probe_round_trips,
    probe_pinning,
    probe_scale,
    probe_linux_calls,
    probe_forks,
    probe_pricing,
    probe_ownership,
    probe_reproduce,
    probe_memory,
)
"""Run in this order; probes of later issues go before ``probe_memory``."""


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
        lines += ["", "not available in this build:"]
        lines += [
            f"  {spec.key:<22} {spec.label} (issue {spec.planned})" for spec in report.missing
        ]
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
        "not_available": {
            spec.key: {"label": spec.label, "unit": spec.unit, "issue": spec.planned}
            for spec in report.missing
        },
    }
