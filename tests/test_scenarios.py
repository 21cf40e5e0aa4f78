"""Each scenario's golden output (small N) and what its JSON must contain.

The golden files live in ``tests/golden/``; a scenario is deterministic (same run,
same numbers), so its ``--json`` output must match byte for byte.  After an intended
change of the model, regenerate them with ``L4SIM_UPDATE_GOLDEN=1 pytest
tests/test_scenarios.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.cost.profile import load_profile
from scenarios.scripts import boot, fork, getpid, mitigations, read

GOLDEN = Path(__file__).resolve().parent / "golden"

RUNS = {
    "getpid_native": ["run", "getpid", "--mode", "native", "-n", "1000"],
    "getpid_l4linux": ["run", "getpid", "--mode", "l4linux", "-n", "200"],
    "read": ["run", "read", "-n", "3"],
    "fork_classic": ["run", "fork", "--strategy", "classic", "-n", "10"],
    "fork_chief": ["run", "fork", "--strategy", "chief", "-n", "10"],
    "fork_chief+cache": ["run", "fork", "--strategy", "chief+cache", "-n", "10"],
    "fork_merged": ["run", "fork", "--strategy", "merged", "-n", "10"],
    "mitigations": ["run", "mitigations", "-n", "200", "--pairs", "10"],
    "boot": ["run", "boot", "--managed", "16"],
}


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints exactly one object"
    data: dict[str, object] = json.loads(out)
    return data


@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_output(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(RUNS[name], capsys)
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, sort_keys=True, indent=1) + "\n"
    if os.environ.get("L4SIM_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs from its golden output"


def test_getpid_json_has_the_issue_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(RUNS["getpid_l4linux"], capsys)
    assert {"cycles_per_call", "tlb_misses_per_call", "breakdown"} <= set(data)
    breakdown = data["breakdown"]
    assert isinstance(breakdown, dict)
    assert abs(sum(breakdown.values()) - float(data["cycles_per_call"])) < 0.1  # type: ignore[arg-type]


def test_fork_json_has_the_issue_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(RUNS["fork_chief"], capsys)
    assert {"cycles_per_fork", "ipc_per_fork", "breakdown"} <= set(data)


def test_l4linux_getpid_refills_three_pages_on_each_side() -> None:
    run = getpid.measure("l4linux", 200, load_profile())
    # untagged TLB: 3 process pages + 3 server pages per call; cold start and timer extra
    assert 6.0 <= run.cost.tlb_misses / 200 < 6.2


def test_native_getpid_has_no_steady_state_misses() -> None:
    run = getpid.measure("native", 1000, load_profile())
    assert run.cost.tlb_misses < 20  # only the cold start: no timer tick in 1000 calls
    assert run.cost.count("SpaceSwitch") == 0


def test_fork_ipc_counts_follow_the_protocol() -> None:
    p = load_profile()
    ipc = {s: fork.measure(s, 10, p).ipc / 10 for s in ("classic", "chief", "merged")}
    # 3 process calls (fork, exit, wait) + task server and RMGR calls of the strategy:
    # classic allocate, create, kill, free and the task server's task_new, set_task_id,
    # set_prio, get_task; chief allocate2 and free2 and the task server's get_task
    assert ipc == {"classic": 3 + 4 + 4, "chief": 3 + 2 + 1, "merged": 3 + 2}
    cached = fork.measure("chief+cache", 10, p)
    assert cached.ipc == 10 * 3  # the cache is filled when its module loads: every fork hits


def test_boot_counts_every_task_versus_one_question() -> None:
    run = boot.measure(16, load_profile())
    assert run.count_ipc == 1
    # simple_ts's init: one get_task per managed number (10..25), never a free_task
    assert run.every_ipc == 16
    assert run.every.cycles > 10 * run.count.cycles  # 16 round trips and 32 kernel calls vs 1


def test_read_overhead_is_the_ipc_round_trip() -> None:
    run = read.measure(3, load_profile())
    assert 0 < run.overhead < 10_000
    assert run.l4linux.count("IpcCall") == 3 and run.native.count("IpcCall") == 0


@pytest.mark.parametrize("name", ["getpid", "read", "fork", "mitigations", "boot"])
def test_every_scenario_is_a_module_with_setup_and_main(name: str) -> None:
    module = {
        "getpid": getpid,
        "read": read,
        "fork": fork,
        "mitigations": mitigations,
        "boot": boot,
    }[name]
    assert callable(module.setup) and callable(module.main)
    assert module.__doc__ and "Run alone" in module.__doc__


def test_a_bad_scenario_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "fork", "--strategy", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
