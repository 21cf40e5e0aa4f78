"""The profile schema: one set of attrs classes gives the keys, types, ranges and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cost.profile import ProfileError, available_profiles, load_profile
from scenarios.cost.schema import SCHEMA, SOFTWARE, SchemaError, Sections, structure


@pytest.mark.parametrize("name", available_profiles())
def test_the_flat_view_is_the_typed_sections_key_for_key(name: str) -> None:
    p = load_profile(name)
    assert isinstance(p.sections, Sections)
    keys = p.keys()
    fixed = {k for k in keys if not k.startswith("work.")}
    assert fixed == set(SCHEMA)
    assert fixed >= SOFTWARE
    assert p["tlb.entries"] == p.sections.tlb.entries.value
    assert p.constant("cpu.mhz") is p.sections.cpu.mhz
    work = {k[len("work.") :]: p.get_int(k) for k in keys if k.startswith("work.")}
    assert p.work_units() == work


def test_every_key_has_the_type_its_field_declares() -> None:
    p = load_profile()
    for key, kind in SCHEMA.items():
        assert type(p[key]) is kind, key


def test_a_file_with_several_problems_names_every_key_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\nsoftware_from = "duron800"\n'
        "[tlb]\n"
        'entries = { value = 0, provenance = "assumed" }\n'
        'ways = { value = "four", provenance = "assumed" }\n'
        'colour = { value = 1, provenance = "assumed" }\n'
    )
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert "\n" not in message
    for part in (
        "tlb.entries must be positive",
        "tlb.ways must be an int, got 'four'",
        "unknown profile key(s) 'tlb.colour'",
        "missing key(s) cpu, switch, small_spaces, tlb.tagged",
    ):
        assert part in message


def test_geometry_is_checked_with_its_section() -> None:
    with pytest.raises(ProfileError, match="--set: tlb: entries must be a multiple of ways"):
        load_profile(overrides=("tlb.entries=12", "tlb.ways=8"))
    with pytest.raises(ProfileError, match="cache: page_bytes must be a multiple of line_bytes"):
        load_profile(overrides=("cache.page_bytes=100",))


def test_structure_refuses_a_work_unit_of_negative_cycles_with_its_key() -> None:
    p = load_profile()
    data: dict[str, dict[str, object]] = {}
    for key, c in p.constants:
        section, _, name = key.partition(".")
        table = {"value": c.value, "provenance": c.provenance, "note": c.note}
        if name:
            data.setdefault(section, {})[name] = table
        else:
            data[key] = table
    assert structure(data) == p.sections
    data["work"]["linux.getpid"] = {"value": -1, "provenance": "assumed"}
    with pytest.raises(SchemaError, match=r"^work\.linux\.getpid must not be negative, got -1$"):
        structure(data)
