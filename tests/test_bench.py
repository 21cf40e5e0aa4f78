"""The bench (scenarios.bench.core) and ``l4sim bench``: a smoke run with tiny numbers.

The figures themselves are not pass/fail here; the tests check that every figure is
measured, or listed as not measured when ``--only`` left its probe out, and that the
output carries them all.
"""

from __future__ import annotations

import json

import attrs
import pytest

from actors.system import BootConfig
from protocols.ids import FIRST_USER_TASK
from scenarios.bench.core import (
    EIP_BENCH_CALLER,
    EIP_BENCH_PEER,
    FIGURES,
    QUICK,
    BenchParams,
    BenchReport,
    CallLoop,
    Ping,
    Recorder,
    Target,
    bench_system,
    format_report,
    run_bench,
)
from scenarios.cli import main

SMOKE = attrs.evolve(QUICK, calls=20)


@pytest.fixture(scope="module")
def smoke() -> BenchReport:
    """One smoke run of every probe, shared by the tests that read its report."""
    return run_bench(SMOKE)


def test_every_figure_is_measured_when_every_probe_runs(smoke: BenchReport) -> None:
    report = smoke
    measured = {fig.spec.key for fig in report.figures}
    missing = {spec.key for spec in report.missing}
    assert measured | missing == {spec.key for spec in FIGURES}
    assert not measured & missing
    assert not report.missing, "a run of every probe measures every figure"
    assert {"ask_rt_us", "ipc_rt_us", "ipc_vs_ask", "scale_boot_s", "peak_rss_mib"} <= measured
    for fig in report.figures:
        assert fig.low <= fig.median <= fig.high
        assert fig.low >= 0


def test_ratios_are_computed_from_the_same_repetition(smoke: BenchReport) -> None:
    report = smoke
    by_key = {fig.spec.key: fig for fig in report.figures}
    raw, traced, ratio = (by_key[k].samples for k in ("ask_rt_us", "ipc_rt_us", "ipc_vs_ask"))
    assert len(ratio) == SMOKE.repeat
    assert ratio == pytest.approx(tuple(t / r for t, r in zip(traced, raw, strict=True)))


def test_explore_is_compared_with_a_bfs_of_the_same_repetition(smoke: BenchReport) -> None:
    by_key = {fig.spec.key: fig for fig in smoke.figures}
    explored, baseline, ratio = (
        by_key[k] for k in ("explore_states_per_s", "bfs_baseline_states_per_s", "explore_vs_bfs")
    )
    assert ratio.samples == pytest.approx(
        tuple(e / b for e, b in zip(explored.samples, baseline.samples, strict=True))
    )
    assert baseline.median > explored.median > 0
    # more is better here: the target is a lower bound
    assert ratio.target_met is (ratio.median >= 0.15)
    assert Target(at_least=0.15, text=">= 0.15").met(0.2)
    assert not Target(at_least=0.15, text=">= 0.15").met(0.1)
    assert not Target(at_most=1.5, text="<= 1.5").met(2.0)


def test_the_text_report_names_host_versions_and_every_figure(smoke: BenchReport) -> None:
    report = smoke
    text = format_report(report, "l4sim bench --quick")
    assert text.startswith("$ l4sim bench --quick")
    assert report.host.pykka in text and report.host.python in text
    for spec in FIGURES:
        assert spec.key in text
    assert not report.missing, "every figure is measured in this build"
    assert "not measured in this run" not in text


def test_bench_quick_json_has_every_figure_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--calls", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    measured = {key.split("[")[0] for key in data["figures"]}  # fork_exit_per_s[classic]
    assert measured == {s.key for s in FIGURES} and not data["not_measured"]
    assert {f"fork_exit_per_s[{s}]" for s in ("classic", "chief", "chief+cache", "merged")} <= set(
        data["figures"]
    )
    assert data["host"]["pykka"] and data["host"]["cpu_count"] >= 1
    assert data["figures"]["ipc_vs_ask"]["target"] == "<= 1.5"


def test_bench_quick_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--no-pin",
                "bench",
                "--quick",
                "--calls",
                "20",
                "--repeat",
                "1",
                "--only",
                "round_trips,memory",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ipc_vs_ask" in out and "1 repetitions" in out
    left_out = out.split("not measured in this run (--only left their probes out):")[1]
    assert "explore_vs_bfs" in left_out and "ipc_vs_ask" not in left_out
    assert "issue" not in left_out


@pytest.mark.parametrize(
    "argv",
    [["--tasks", "3"], ["--repeat", "0"], ["--calls", "x"], ["--only", "nope"], ["--only", ","]],
)
def test_bad_bench_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(["bench", "--quick", *argv])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("l4sim")


def test_bench_params_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="scale_tasks"):
        BenchParams(scale_tasks=FIRST_USER_TASK)
    with pytest.raises(ValueError, match="positive"):
        BenchParams(calls=0)


def test_a_call_loop_goes_through_the_ipc_path_and_is_traced() -> None:
    config = BootConfig(task_count=8, modules=(EIP_BENCH_PEER, EIP_BENCH_CALLER), timeout=5.0)
    with bench_system(config) as system:
        peer, caller = system.modules
        mark = system.trace.mark()
        elapsed = system.ref(caller).ask(CallLoop(dest=peer, message=Ping(), count=3), timeout=5)
        assert elapsed > 0
        calls = [e for e in system.trace.since(mark) if type(e).__name__ == "IpcCall"]
        assert [(e.src, e.dst) for e in calls] == [(caller, peer)] * 3  # type: ignore[union-attr]


def test_a_probe_can_report_one_figure_per_variant() -> None:
    def probe(params: BenchParams, rec: Recorder) -> None:
        for _ in range(params.repeat):
            rec.add("fork_exit_per_s[classic]", 10.0)
            rec.add("fork_exit_per_s[allocate_chief]", 20.0)

    report = run_bench(SMOKE, probes=(probe,))
    assert [(f.key, f.median) for f in report.figures] == [
        ("fork_exit_per_s[allocate_chief]", 20.0),
        ("fork_exit_per_s[classic]", 10.0),
    ]
    assert "fork_exit_per_s" not in {spec.key for spec in report.missing}
    assert "fork_exit_per_s[classic]" in format_report(report)
    with pytest.raises(AssertionError, match="unknown bench figure"):
        Recorder().add("no_such_figure", 1.0)
