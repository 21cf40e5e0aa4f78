"""The host (scenarios.host): pinning to one CPU, and what the bench says about the host."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scenarios import host

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU affinity needs Linux"
)


@pytest.mark.parametrize(
    ("value", "pin"),
    [(None, True), ("1", True), ("yes", True), ("0", False), ("off", False), (" No ", False)],
)
def test_l4sim_pin_environment_variable(value: str | None, pin: bool) -> None:
    env = {} if value is None else {host.PIN_ENV: value}
    assert host.pin_requested(env) is pin


@linux_only
def test_threads_started_inside_thread_affinity_keep_it() -> None:
    before = os.sched_getaffinity(0)
    one = frozenset({min(host.allowed_cpus())})
    seen: list[set[int]] = []
    with host.thread_affinity(one):
        worker = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        worker.start()
        worker.join(timeout=5)
    assert seen == [set(one)]
    assert os.sched_getaffinity(0) == before


PIN_CHILD = """
import os, threading
from scenarios import host
ready, done = threading.Event(), threading.Event()
seen = []
def early():  # a thread started before pinning
    ready.set()
    done.wait(10)
    seen.append(os.sched_getaffinity(0))
t = threading.Thread(target=early)
t.start()
ready.wait(10)
cpu = host.pin_to_one_cpu()
done.set()
t.join(10)
assert host.pin_to_one_cpu() == cpu == host.pinned_cpu()
assert cpu in host.allowed_cpus()
print(cpu, sorted(os.sched_getaffinity(0)), sorted(seen[0]))
"""


@linux_only
def test_pinning_puts_every_thread_of_the_process_on_one_allowed_cpu() -> None:
    # in a child process, so that this test does not pin the suite
    done = subprocess.run(
        [sys.executable, "-c", PIN_CHILD],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    cpu, main_thread, early_thread = done.stdout.split(" ", 2)
    assert main_thread.strip() == f"[{cpu}]" and early_thread.strip() == f"[{cpu}]"


def test_host_info_names_cpu_python_and_pykka() -> None:
    info = host.host_info()
    assert info.cpu_count >= 1 and info.cpu_model
    assert info.python.split()[-1].count(".") == 2 and info.pykka
