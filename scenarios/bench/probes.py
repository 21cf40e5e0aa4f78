"""The probes of ``l4sim bench``: each does its own warm-up, then records one sample per
timed repetition (``Recorder.add``); ratios come from values measured in the same
repetition.  See ``scenarios.bench.core`` for the figures they provide.

Measuring apparatus: it reads the host clock; the model never does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import pykka

from actors.system import BootConfig, System
from protocols.ids import FIRST_USER_TASK
from scenarios.bench.actors import (
    EIP_BENCH_CALLER,
    EIP_BENCH_PEER,
    BareEcho,
    BareLoop,
    CallLoop,
    Ping,
    Pong,
    bench_system,
)
from scenarios.host import allowed_cpus, pinned_cpu, thread_affinity

if TYPE_CHECKING:
    from scenarios.bench.core import BenchParams, Recorder

__all__ = ["PROBES", "Probe"]


# -- probes --------------------------------------------------------------------------


def _stop_all(refs: tuple[pykka.ActorRef[Any], ...], timeout: float) -> None:
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(timeout)


@contextlib.contextmanager
def _bare_pair(timeout: float) -> Iterator[pykka.ActorRef[Any]]:
    """Two bare Pykka actors; yields the one that runs timed ask loops on the other."""
    echo = BareEcho.start()
    loop = BareLoop.start(echo, timeout)
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
    from scenarios.record.l4world import TASKS

    return System(BootConfig(task_count=TASKS, linux=1, strategy=strategy)).start()


def _fork_pairs_timed(system: System, pairs: int) -> float:
    """Seconds for ``pairs`` fork + exit + wait of init's children (the scenario's loop)."""
    from scenarios.record.l4world import fork_exit_loop

    t0 = time.perf_counter()
    fork_exit_loop(system, pairs)
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
    from scenarios.record.l4world import STRATEGIES

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
    from scenarios.cost.machine import price
    from scenarios.cost.profile import DEFAULT_PROFILE, load_profile

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
    from scenarios.check.ownership_machine import counting, machine_for

    steps: list[int] = []
    machine = counting(machine_for(Strategy.CHIEF_CACHE), steps)
    examples = max(p.calls // 200, 2)
    for rep in range(p.repeat + 1):
        steps.clear()
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
            rec.add("ownership_steps_per_s", sum(steps) / seconds)


def _bfs_baseline() -> tuple[int, float]:
    """A breadth-first search over tuples of 40 ints whose successors bump one of the
    first five by one modulo 6 (7,776 states): states and CPU seconds."""
    start: tuple[int, ...] = (0,) * 40
    seen = {start}
    frontier = [start]
    t0 = time.process_time()
    while frontier:
        nxt: list[tuple[int, ...]] = []
        for s in frontier:
            for i in range(5):
                after = (*s[:i], (s[i] + 1) % 6, *s[i + 1 :])
                if after not in seen:
                    seen.add(after)
                    nxt.append(after)
        frontier = nxt
    return len(seen), time.process_time() - t0


def probe_explore(p: BenchParams, rec: Recorder) -> None:
    """States/s of ``l4sim explore`` (the fast explorer, its default engine: the compiled
    core where it is built) on the whole chief+cache 4 x 2 space, of its Python search,
    and of a trivial BFS in the same repetition; CPU time of this process."""
    from protocols.explore_fast import FastOwnershipSpace, explore_fast
    from protocols.l4linux import Strategy

    def rate(engine: str) -> float:
        space = FastOwnershipSpace(tasks=4, clients=2, strategy=Strategy.CHIEF_CACHE)
        result = explore_fast(space, engine=engine)
        return result.states / result.cpu_seconds

    for rep in range(p.repeat + 1):
        explored = rate("auto")
        python = rate("python")
        states, seconds = _bfs_baseline()
        baseline = states / seconds
        if not rep:
            continue  # the warm-up
        rec.add("explore_states_per_s", explored)
        rec.add("explore_python_states_per_s", python)
        rec.add("bfs_baseline_states_per_s", baseline)
        rec.add("explore_vs_bfs", explored / baseline)


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


Probe = Callable[["BenchParams", "Recorder"], None]
"""A probe: measures with ``params`` and records samples."""

PROBES: Final[tuple[Probe, ...]] = (
    probe_round_trips,
    probe_pinning,
    probe_scale,
    probe_linux_calls,
    probe_forks,
    probe_pricing,
    probe_ownership,
    probe_explore,
    probe_reproduce,
    probe_memory,
)
"""Run in this order; probes of later issues go before ``probe_memory``."""
