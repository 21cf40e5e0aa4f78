"""The host the model runs on: what it is, and pinning the process to one CPU.

Pykka hands every message from one thread to another.  With the threads of a process
spread over several host CPUs each hand-over wakes a thread on another CPU, and an
``ask`` round trip costs several times what it costs when the whole process runs on one
CPU (``l4sim bench`` measures both; README.rst has the figures).  The modelled machine
is a uniprocessor and the GIL lets one thread run Python at a time anyway, so the
``l4sim`` command and the test suite pin their process to one CPU unless the
environment variable ``L4SIM_PIN`` is ``0`` (``l4sim --no-pin`` does the same).

Pinning is a property of the host process, not of the model: ``boot()`` never pins.
Python users who want the speed call ``pin_to_one_cpu()`` before booting a system.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from importlib import metadata

import attrs

__all__ = [
    "PIN_ENV",
    "HostInfo",
    "allowed_cpus",
    "host_info",
    "pin_requested",
    "pin_to_one_cpu",
    "pinned_cpu",
    "thread_affinity",
]

PIN_ENV = "L4SIM_PIN"
"""Environment variable: ``0`` (or ``no``, ``off``, ``false``) turns pinning off."""

_OFF = frozenset({"0", "no", "off", "false"})

_original_cpus: frozenset[int] | None = None
"""The CPUs the process could use before ``pin_to_one_cpu`` narrowed it."""
_pinned: int | None = None


def pin_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``L4SIM_PIN`` in ``environ`` (default ``os.environ``) asks for pinning."""
    env = os.environ if environ is None else environ
    return env.get(PIN_ENV, "1").strip().lower() not in _OFF


def _can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def allowed_cpus() -> frozenset[int]:
    """The CPUs the process could use before any pinning by l4sim (all, if unknown)."""
    if _original_cpus is not None:
        return _original_cpus
    if _can_pin():
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def _thread_ids() -> tuple[int, ...]:
    try:
        return tuple(int(name) for name in os.listdir("/proc/self/task"))
    except OSError:
        return (0,)


def pin_to_one_cpu() -> int | None:
    """Pin every thread of this process (and so every thread it starts) to one CPU.

    The CPU is one of those allowed, chosen by process id so that parallel processes
    (test workers) spread over the CPUs.  Returns the CPU, or None where the host cannot
    pin (not Linux).  Idempotent.
    """
    global _original_cpus, _pinned
    if not _can_pin():
        return None
    if _pinned is not None:
        return _pinned
    cpus = sorted(allowed_cpus())
    cpu = cpus[os.getpid() % len(cpus)]
    _original_cpus = frozenset(cpus)
    for tid in _thread_ids():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, {cpu})
    _pinned = cpu
    return cpu


def pinned_cpu() -> int | None:
    """The CPU ``pin_to_one_cpu`` pinned the process to, or None if it did not."""
    return _pinned


@contextlib.contextmanager
def thread_affinity(cpus: frozenset[int]) -> Iterator[None]:
    """Run the calling thread, and the threads (actors) it starts, on ``cpus`` only.

    Threads inherit their creator's affinity, so actors started inside the block keep
    ``cpus`` after it; the calling thread gets its old affinity back.  For measuring
    (``l4sim bench``): a no-op where the host cannot pin.
    """
    if not _can_pin():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@attrs.frozen(kw_only=True)
class HostInfo:
    """What ran a measurement: CPU, how many CPUs, pinning, Python and Pykka versions."""

    cpu_model: str
    cpu_count: int
    """CPUs the process could use (before pinning)."""
    pinned_cpu: int | None
    python: str
    pykka: str
    platform: str


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host_info() -> HostInfo:
    """Describe this host and process."""
    return HostInfo(
        cpu_model=_cpu_model(),
        cpu_count=len(allowed_cpus()),
        pinned_cpu=_pinned,
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        pykka=metadata.version("pykka"),
        platform=platform.platform(),
    )
