"""Profiles: shipped TOML data, provenance on every constant, overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cost.profile import (
    DEFAULT_PROFILE,
    PROVENANCES,
    SCHEMA,
    ProfileError,
    available_profiles,
    load_profile,
)


def test_the_default_profile_is_shipped_and_complete() -> None:
    assert DEFAULT_PROFILE in available_profiles()
    p = load_profile()
    assert set(SCHEMA) <= set(p.keys())
    assert p["cpu.mhz"] == 800


@pytest.mark.parametrize("name", available_profiles())
def test_every_constant_of_every_shipped_profile_has_a_provenance(name: str) -> None:
    for key, c in load_profile(name).constants:
        assert c.provenance in PROVENANCES[:4], key
        if c.provenance in ("published", "calibrated"):
            assert c.note, f"{name}: {key} names no source"


def test_calibrated_constants_name_the_seed_figure_they_were_solved_against() -> None:
    for key, c in load_profile().constants:
        if c.provenance == "calibrated":
            assert "against " in c.note, key


def test_set_overrides_a_key_and_marks_it() -> None:
    p = load_profile(overrides=("tlb.tagged=true", "tlb.miss_cycles=7", "timer.hz=1000"))
    assert (p["tlb.tagged"], p["tlb.miss_cycles"], p["timer.hz"]) == (True, 7, 1000)
    assert p.constant("tlb.tagged").provenance == "override"
    assert p.name.endswith("+set")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tlb.colour=1", "unknown profile key 'tlb.colour'"),
        ("tlb.tagged=maybe", "tlb.tagged must be true or false"),
        ("tlb.miss_cycles=fast", "tlb.miss_cycles must be an integer"),
        ("timer.hz=-3", "must not be negative"),
        ("timer.hz=0", "timer.hz must be positive"),
        ("tlb.tagged", "expects KEY=VALUE"),
    ],
)
def test_bad_overrides_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(overrides=(override,))
    assert "\n" not in str(info.value)


def test_a_profile_file_loads_by_path(tmp_path: Path) -> None:
    shipped = load_profile()
    lines = ['name = "mine"']
    for key, c in shipped.constants:
        value = str(c.value).lower() if isinstance(c.value, bool) else c.value
        lines.append(f'"{key}" = {{ value = {value}, provenance = "assumed" }}')
    path = tmp_path / "mine.toml"
    path.write_text("\n".join(lines))
    mine = load_profile(str(path))
    assert mine.name == "mine"
    assert mine["tlb.entries"] == shipped["tlb.entries"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = ", "not valid TOML"),
        ('description = "x"', "missing top-level 'name'"),
        ('name = "x"\n[tlb]\nentries = { value = 4, provenance = "assumed" }', "missing key"),
        ('name = "x"\nbogus = { value = 1, provenance = "assumed" }', "unknown profile key"),
        ('name = "x"\n[tlb]\ntagged = { value = 1, provenance = "assumed" }', "must be a bool"),
        ('name = "x"\n[tlb]\ntagged = { value = true, provenance = "guess" }', "provenance"),
        ('name = "x"\n[tlb]\ntagged = { value = true, provenance = "published" }', "source"),
    ],
)
def test_bad_profile_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(str(path))
    assert "\n" not in str(info.value)


def test_an_unknown_name_lists_the_known_profiles() -> None:
    with pytest.raises(ProfileError, match=r"known: .*duron800"):
        load_profile("pentium-iii")


# -- more machines, one software model ---------------------------------------------------


def test_there_are_profiles_of_at_least_three_machines() -> None:
    assert len(available_profiles()) >= 3


@pytest.mark.parametrize("name", available_profiles())
def test_software_is_calibrated_once_and_carried_unchanged(name: str) -> None:
    from scenarios.cost.profile import is_software

    seed = load_profile()
    p = load_profile(name)
    for key, c in p.constants:
        if key.startswith("work."):
            assert c.carried_from in ("", DEFAULT_PROFILE), key
            assert c.value == seed[key], f"{name}: {key} differs from the seed machine's"
        if c.carried_from:
            home = load_profile(c.carried_from).constant(key)
            assert (home.value, home.provenance) == (c.value, c.provenance), key
            assert not home.carried_from, f"{key}: carried from a profile that carries it"
            assert f"carried unchanged from {c.carried_from}" in c.note
        if name != DEFAULT_PROFILE and c.provenance == "calibrated" and not c.carried_from:
            assert not is_software(key) or key == "ipc.path_cycles", (name, key)


def test_a_profile_file_can_carry_the_seed_machines_software(tmp_path: Path) -> None:
    lines = ['name = "mine"', 'software_from = "duron800"']
    for key, c in load_profile().constants:
        from scenarios.cost.profile import is_software

        if not is_software(key):
            value = str(c.value).lower() if isinstance(c.value, bool) else c.value
            lines.append(f'"{key}" = {{ value = {value}, provenance = "assumed" }}')
    lines.append('"ipc.path_cycles" = { from = "pentium2-400" }')
    path = tmp_path / "mine.toml"
    path.write_text("\n".join(lines))
    mine = load_profile(str(path))
    assert mine["work.linux.fork"] == load_profile()["work.linux.fork"]
    assert mine.constant("work.linux.fork").carried_from == DEFAULT_PROFILE
    assert mine["ipc.path_cycles"] == load_profile("pentium2-400")["ipc.path_cycles"]
    assert mine.constant("ipc.path_cycles").carried_from == "pentium2-400"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('software_from = "vax780"', "unknown profile 'vax780'"),
        ('[tlb]\nmiss_cycles = { from = "vax780" }', "unknown profile 'vax780'"),
        ('[tlb]\nmiss_cycles = { from = "duron800", value = 3 }', "unknown field"),
        ("[tlb]\nmiss_cycles = { from = 7 }", "carried constant"),
    ],
)
def test_bad_carrying_is_a_one_line_error(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "x"\n{line}')
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(str(path))
    assert "\n" not in str(info.value)


def test_profile_show_prints_every_constants_provenance_and_origin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scenarios.cli import main

    assert main(["profile", "show", "pentium3-800"]) == 0
    out = capsys.readouterr().out
    assert "calibrated" in out and "published" in out and "assumed" in out
    assert "carried unchanged from pentium2-400" in out
