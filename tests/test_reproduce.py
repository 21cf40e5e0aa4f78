"""l4sim reproduce: every figure of the seed, honest kinds, exit status, plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scenarios.calibrate import CALIBRATED, write
from scenarios.cli import main
from scenarios.profile import load_profile
from scenarios.reproduce import SPECS, Sizes, report

REFERENCE_IDS = (
    "getpid.native.cycles",
    "getpid.l4linux.cycles",
    "getpid.native.tlb_misses_per_100k",
    "getpid.l4linux.tlb_misses_per_call",
    "read.blocking.cycles",
    "fork.chief.speedup",
    "fork.cache.speedup",
)
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


def test_reproduce_on_the_default_profile_is_all_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["rows"]] == list(REFERENCE_IDS)
    assert all(r["ok"] for r in data["rows"])
    assert data["profile"]["name"] == "duron800"


def test_the_printed_table_has_every_row_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce"]) == 0
    out = capsys.readouterr().out
    for rid in REFERENCE_IDS:
        (line,) = [x for x in out.splitlines() if x.startswith(rid + " ")]
        assert line.endswith("ok"), line
    assert "What-ifs" in out


def test_a_row_out_of_tolerance_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--set", "cpu.trap_cycles=900"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_bad_profile_key_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--set", "tlb.flavour=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile key" in err


def test_out_writes_png_and_svg_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("fork_breakdown", "getpid_mitigations"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert (tmp_path / "fork_breakdown.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "reproduce.json").read_text())["ok"] is True
    assert "wrote 4 plots" in capsys.readouterr().out


def test_calibrate_writes_values_into_a_profile_file(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parent.parent / "scenarios" / "profiles" / "duron800.toml"
    copy = tmp_path / "p.toml"
    copy.write_text(shipped.read_text())
    write(copy, {"cpu.trap_cycles": 111, "work.linux.fork": 4242, "timer.other_pages": 7})
    p = load_profile(str(copy))
    assert (p["cpu.trap_cycles"], p["work.linux.fork"], p["timer.other_pages"]) == (111, 4242, 7)
    assert re.search(r"^mhz = \{ value = 800", copy.read_text(), re.M)


def test_the_shipped_calibrated_constants_are_the_solvers_fixed_point() -> None:
    from scenarios.calibrate import solve

    profile = load_profile()
    solved = solve(profile)
    for key, value in solved.items():
        shipped = profile.get_int(key)
        assert abs(value - shipped) <= max(1, shipped // 10_000), (key, value, shipped)
