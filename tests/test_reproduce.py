"""l4sim reproduce: every figure of the seed, honest kinds, exit status, plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.cost.calibrate import CALIBRATED, CALIBRATIONS, leave_one_out, shipped, write
from scenarios.cost.figures import MACHINE_SPECS, machines
from scenarios.cost.profile import available_profiles, load_profile
from scenarios.report.reproduce import SPECS, Sizes, report

REFERENCE_IDS = (
    "getpid.native.cycles",
    "getpid.l4linux.cycles",
    "getpid.native.tlb_misses_per_100k",
    "getpid.l4linux.tlb_misses_per_call",
    "getpid.l4linux.switches_per_call",
    "read.blocking.cycles",
    "fork.chief.speedup",
    "fork.cache.speedup",
)
ALL_IDS = REFERENCE_IDS + tuple(s.id for s in MACHINE_SPECS)
SMALL = Sizes(native_calls=2000, l4linux_calls=100, reads=2, pairs=6, managed=8)


def test_rows_are_the_figures_of_reference_section_1_in_order() -> None:
    assert tuple(s.id for s in SPECS) == REFERENCE_IDS


def test_at_most_one_fork_speedup_is_calibrated() -> None:
    kinds = {s.id: bool(s.calibrated_by) for s in SPECS}
    assert not (kinds["fork.chief.speedup"] and kinds["fork.cache.speedup"])
    assert kinds["fork.chief.speedup"] is False


def test_every_calibrated_row_names_a_profile_constant_calibrated_against_it() -> None:
    profile = load_profile()
    for spec in SPECS:
        key = spec.calibrated_by
        if key in profile:
            c = profile.constant(key)
            assert c.provenance == "calibrated", key
            assert spec.id in c.note, f"{key} does not name {spec.id}"
    calibrated = {k for k, c in profile.constants if c.provenance == "calibrated"}
    assert calibrated == set(CALIBRATED)


def test_a_small_report_is_deterministic_and_complete() -> None:
    a = report(load_profile(), SMALL).to_json()
    b = report(load_profile(), SMALL).to_json()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    rows = a["rows"]
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) >= {"id", "seed", "model", "unit", "tolerance", "kind", "ok"}
        assert row["kind"] in ("calibrated", "predicted")
    ids = {w["id"] for w in a["whatif"]}  # type: ignore[attr-defined]
    assert {"fork.merged.speedup", "boot.task_server_init.cycles"} <= ids
    assert "getpid.l4linux.cycles.tagged" in ids and "getpid.l4linux.cycles.coloring" in ids


def test_reproduce_prints_every_machine_and_writes_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One full run (the slow part of this file): table, JSON, plots."""
    assert main(["reproduce", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for rid in ALL_IDS:
        (line,) = [x for x in out.splitlines() if x.startswith(rid + " ")]
        assert line.endswith((" ok", " miss")), line
        if line.endswith(" miss"):
            assert f"  {rid}: " in out, f"{rid} misses without a reason"
    assert "What-ifs" in out
    data = json.loads((tmp_path / "reproduce.json").read_text())
    assert [r["id"] for r in data["rows"]] == list(ALL_IDS)
    assert data["ok"] is True and data["profile"]["name"] == "duron800"
    assert len(set(data["machines"])) >= 3
    assert data["predicted"] * 2 >= len(data["rows"])
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("fork_breakdown", "getpid_mitigations", "machines"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert (tmp_path / "fork_breakdown.png").read_bytes().startswith(b"\x89PNG")
    assert "wrote 6 plots" in out
    assert (tmp_path / "reproduce.txt").read_text().splitlines() == out.splitlines()[:-1]


def test_the_machine_filter_keeps_one_machines_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--machine", "pentium3-800", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["rows"]] == [
        s.id for s in MACHINE_SPECS if s.machine == "pentium3-800"
    ]
    assert data["whatif"] == []


def test_an_unknown_machine_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--machine", "vax780"]) == 2
    assert "no figures for that machine" in capsys.readouterr().err


def test_a_row_out_of_tolerance_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--set", "cpu.trap_cycles=900"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_bad_profile_key_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--set", "tlb.flavour=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile key" in err


def test_calibrate_writes_values_into_a_profile_file(tmp_path: Path) -> None:
    shipped = (
        Path(__file__).resolve().parent.parent / "scenarios" / "cost" / "profiles" / "duron800.toml"
    )
    copy = tmp_path / "p.toml"
    copy.write_text(shipped.read_text())
    write(copy, {"cpu.trap_cycles": 111, "work.linux.fork": 4242, "timer.other_pages": 7})
    p = load_profile(str(copy))
    assert (p["cpu.trap_cycles"], p["work.linux.fork"], p["timer.other_pages"]) == (111, 4242, 7)
    assert re.search(r"^mhz = \{ value = 800", copy.read_text(), re.M)


def test_the_shipped_calibrated_constants_are_the_solvers_fixed_point() -> None:
    from scenarios.cost.calibrate import solve

    solved, ships = solve(), shipped()
    assert set(solved) == set(ships)
    for key, value in solved.items():
        assert abs(value - ships[key]) <= max(1, ships[key] // 10_000), (key, value, ships[key])


def test_calibrate_writes_a_key_in_its_own_section(tmp_path: Path) -> None:
    shipped_file = (
        Path(__file__).resolve().parent.parent / "scenarios/cost/profiles/pentium3-800.toml"
    )
    copy = tmp_path / "p.toml"
    copy.write_text(shipped_file.read_text())
    write(copy, {"tlb.miss_cycles": 77})
    p = load_profile(str(copy))
    assert p["tlb.miss_cycles"] == 77
    assert p["cache.miss_cycles"] == load_profile("pentium3-800")["cache.miss_cycles"]


def test_every_calibrated_constant_of_every_profile_is_solved_by_the_tool() -> None:
    owned = {(c.owner, c.key) for c in CALIBRATIONS}
    for name in available_profiles():
        for key, c in load_profile(name).constants:
            if c.provenance == "calibrated" and not c.carried_from:
                assert (name, key) in owned, (name, key)
                (cal,) = [x for x in CALIBRATIONS if (x.owner, x.key) == (name, key)]
                assert cal.figures[0] in c.note, f"{name}: {key} does not name its figure"


def test_no_figure_is_both_calibrated_against_and_claimed_predicted() -> None:
    used = {c.figures[0] for c in CALIBRATIONS}
    specs = (*SPECS, *MACHINE_SPECS)
    for spec in specs:
        if spec.id in used:
            assert spec.calibrated_by, f"{spec.id} is calibrated against but marked predicted"
    # and no row is calibrated by two constants
    assert len(used) == len(CALIBRATIONS)
    predicted = [s for s in specs if not s.calibrated_by]
    assert len(predicted) * 2 >= len(specs)
    assert len({s.machine for s in MACHINE_SPECS}) >= 2 and len(machines()) >= 2


def test_leave_one_out_predicts_a_held_out_calibrated_row_from_another_machine() -> None:
    rows = {r.id: r for r in leave_one_out(SMALL)}
    assert set(rows) == set(ALL_IDS)
    hazelnut = rows["p2_400.ipc.oneway.cycles"]
    assert hazelnut.held_out is not None and hazelnut.held_out != hazelnut.shipped
    assert "ipc.path_cycles" in hazelnut.why
    assert rows["p3_800.ipc.switch_penalty.cycles"].held_out is None
    assert rows["getpid.l4linux.cycles"].held_out is None
    assert rows["fork.chief.speedup"].held_out == rows["fork.chief.speedup"].shipped


@pytest.mark.parametrize(
    ("machine", "categories"), [("pentium166", ("tlb",)), ("opteron242", ("tlb", "switch"))]
)
def test_the_stated_reason_of_a_miss_holds(machine: str, categories: tuple[str, ...]) -> None:
    """The reasons printed for the one-way IPC misses: refills (and the switch) alone
    cost more than the published figure."""
    from scenarios.cost.figures import PINGPONG, WARMUP, pingpong
    from scenarios.cost.machine import price

    (spec,) = [s for s in MACHINE_SPECS if s.machine == machine]
    p = load_profile(machine)
    every, warm = price(pingpong(WARMUP + PINGPONG), p), price(pingpong(WARMUP), p)
    spent = sum(every.category(c) - warm.category(c) for c in categories) / (2 * PINGPONG)
    assert spent > spec.seed
