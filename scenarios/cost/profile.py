"""Machine profiles: every hardware and software constant the pricing uses, as data.

A profile is a TOML file (the shipped ones live in ``scenarios/cost/profiles/``).  Every
constant is a table ``{ value = ..., provenance = ..., note = ... }`` where provenance is
one of

- ``measured``: measured on the seed's machine (by the seed's author);
- ``published``: from a published source (a processor manual such as AMD's 22007E
  optimisation guide, a paper, or the seed);
- ``calibrated``: solved so that the model hits one seed figure (the note names it);
- ``assumed``: a documented guess; the what-ifs show how much it matters.

Software constants (``SOFTWARE``: the kernel's IPC path, Linux's and the servers' work,
the timer's setup) are calibrated once, on one machine, and carried to the others
unchanged: a profile names where its software comes from with a top-level
``software_from = "NAME"`` (every software key it does not set itself is taken from the
shipped profile NAME), or per key with ``key = { from = "NAME" }`` (e.g. the IPC path of
another kernel, or a hardware cost shared by two machines of one processor core).  A
carried constant keeps its provenance; its note says where it was carried from
(``Constant.carried_from``), so a constant is calibrated on one machine only.

Keys are dotted paths (``tlb.miss_cycles``, ``work.linux.getpid``).  The set of keys and
their types is fixed by ``SCHEMA`` (plus any ``work.*`` unit, an int of cycles): a file
with an unknown key, a missing key or a wrongly typed value is refused with a one-line
``ProfileError``; so is a ``--set KEY=VALUE`` override of an unknown key.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Final

import attrs

__all__ = [
    "DEFAULT_PROFILE",
    "PROVENANCES",
    "SCHEMA",
    "SOFTWARE",
    "is_software",
    "Constant",
    "Profile",
    "ProfileError",
    "available_profiles",
    "load_profile",
    "parse_profile",
]

DEFAULT_PROFILE: Final = "duron800"
"""The seed's machine: AMD Duron 800 MHz, Linux 2.6.16 / L4Linux on Fiasco."""

PROVENANCES: Final = ("measured", "published", "calibrated", "assumed", "override")
"""Where a constant comes from (``override`` marks a ``--set`` on the command line)."""

Value = bool | int | float | str

SCHEMA: Final[Mapping[str, type]] = {
    "cpu.mhz": int,
    "cpu.trap_cycles": int,
    "ipc.path_cycles": int,
    "ipc.kernel_pages": int,
    "ipc.tcb_pages": int,
    "ipc.utcb_pages": int,
    "ipc.kip_pages": int,
    "switch.cr3_cycles": int,
    "switch.small_cycles": int,
    "small_spaces": bool,
    "tlb.entries": int,
    "tlb.ways": int,
    "tlb.tagged": bool,
    "tlb.global_kernel": bool,
    "tlb.miss_cycles": int,
    "cache.size_kb": int,
    "cache.ways": int,
    "cache.line_bytes": int,
    "cache.page_bytes": int,
    "cache.lines_per_touch": int,
    "cache.miss_cycles": int,
    "cache.coloring": bool,
    "timer.hz": int,
    "timer.tick_cycles": int,
    "timer.kernel_pages": int,
    "timer.switch_every": int,
    "timer.other_pages": int,
    "timer.other_cycles": int,
}
"""Every fixed key and its type; ``work.<unit>`` keys (cycles, int) come in addition."""

WORK_PREFIX: Final = "work."

SOFTWARE: Final = frozenset(
    {
        "ipc.path_cycles",
        "ipc.kernel_pages",
        "ipc.tcb_pages",
        "ipc.utcb_pages",
        "ipc.kip_pages",
        "cache.lines_per_touch",
        "timer.hz",
        "timer.tick_cycles",
        "timer.kernel_pages",
        "timer.switch_every",
        "timer.other_pages",
        "timer.other_cycles",
    }
)
"""Keys that describe software, not the machine (plus every ``work.*`` unit): carried
from the machine they were calibrated or assumed on."""


def is_software(key: str) -> bool:
    """Whether ``key`` describes software (``SOFTWARE`` or a ``work.*`` unit)."""
    return key in SOFTWARE or key.startswith(WORK_PREFIX)


class ProfileError(Exception):
    """A profile file or override that cannot be used; the message is one line."""


@attrs.frozen(kw_only=True)
class Constant:
    """One constant of a profile with where it comes from."""

    value: Value
    provenance: str
    note: str = ""
    carried_from: str = ""
    """The profile this software constant was carried from unchanged (empty: its own)."""

    def to_json(self) -> dict[str, object]:
        """Value, provenance, note (and ``carried_from`` for a carried constant)."""
        out: dict[str, object] = {
            "value": self.value,
            "provenance": self.provenance,
            "note": self.note,
        }
        if self.carried_from:
            out["carried_from"] = self.carried_from
        return out


@attrs.frozen(kw_only=True)
class Profile:
    """A named, validated set of constants (sorted by key)."""

    name: str
    description: str
    constants: tuple[tuple[str, Constant], ...]

    def __getitem__(self, key: str) -> Value:
        return self.constant(key).value

    def constant(self, key: str) -> Constant:
        """The constant with its provenance; ``KeyError`` if there is no such key."""
        for k, c in self.constants:
            if k == key:
                return c
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.constants)

    def keys(self) -> tuple[str, ...]:
        """Every key, sorted."""
        return tuple(k for k, _ in self.constants)

    def get_int(self, key: str) -> int:
        """An int constant (``SCHEMA`` guarantees the type)."""
        value = self[key]
        assert type(value) is int, f"{key} is not an int"
        return value

    def get_bool(self, key: str) -> bool:
        """A bool constant."""
        value = self[key]
        assert type(value) is bool, f"{key} is not a bool"
        return value

    def work_units(self) -> dict[str, int]:
        """Cycles per named unit of work (``work.linux.getpid`` -> ``linux.getpid``)."""
        return {
            k[len(WORK_PREFIX) :]: int(c.value)
            for k, c in self.constants
            if k.startswith(WORK_PREFIX)
        }

    def with_overrides(self, overrides: Iterable[str]) -> Profile:
        """A copy with ``KEY=VALUE`` overrides applied (provenance ``override``)."""
        table = dict(self.constants)
        changed = False
        for item in overrides:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ProfileError(f"--set expects KEY=VALUE, got {item!r}")
            if key not in table:
                raise ProfileError(f"unknown profile key {key!r} (see 'l4sim profile show')")
            kind = _kind(key)
            assert kind is not None
            table[key] = Constant(
                value=_parse_value(key, text.strip(), kind),
                provenance="override",
                note=f"--set {key}={text.strip()} (was {table[key].value!r})",
            )
            changed = True
        if not changed:
            return self
        _validate(table, "--set")
        return Profile(
            name=self.name + "+set",
            description=self.description,
            constants=tuple(sorted(table.items())),
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-able description: name, description and every constant."""
        return {
            "name": self.name,
            "description": self.description,
            "constants": {k: c.to_json() for k, c in self.constants},
        }


def _kind(key: str) -> type | None:
    if key in SCHEMA:
        return SCHEMA[key]
    if key.startswith(WORK_PREFIX) and len(key) > len(WORK_PREFIX):
        return int
    return None


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse_value(key: str, text: str, kind: type) -> Value:
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ProfileError(f"{key} must be true or false, got {text!r}")
    try:
        value = int(text, 0)
    except ValueError:
        raise ProfileError(f"{key} must be an integer, got {text!r}") from None
    if value < 0:
        raise ProfileError(f"{key} must not be negative, got {value}")
    return value


def _check(key: str, raw: Mapping[str, object]) -> Constant:
    kind = _kind(key)
    if kind is None:
        raise ProfileError(f"unknown profile key {key!r}")
    extra = set(raw) - {"value", "provenance", "note"}
    if extra:
        raise ProfileError(f"{key}: unknown field(s) {', '.join(sorted(extra))}")
    value = raw["value"]
    if type(value) is not kind:
        raise ProfileError(f"{key} must be a {kind.__name__}, got {value!r}")
    if kind is int and isinstance(value, int) and value < 0:
        raise ProfileError(f"{key} must not be negative, got {value}")
    provenance = raw.get("provenance")
    if provenance not in PROVENANCES[:4]:
        raise ProfileError(f"{key}: provenance must be one of {', '.join(PROVENANCES[:4])}")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise ProfileError(f"{key}: note must be a string")
    if provenance in ("published", "calibrated") and not note:
        raise ProfileError(f"{key}: a {provenance} constant must name its source in 'note'")
    assert isinstance(value, bool | int | float | str)
    return Constant(value=value, provenance=str(provenance), note=note)


def _walk(
    prefix: str, table: Mapping[str, object], out: dict[str, Constant], refs: dict[str, str]
) -> None:
    for name, item in table.items():
        key = f"{prefix}{name}"
        if not isinstance(item, dict):
            raise ProfileError(f"{key} must be a table with value and provenance")
        if "value" in item:
            out[key] = _check(key, item)
        elif "from" in item:
            if set(item) != {"from"} or not isinstance(item["from"], str):
                raise ProfileError(f'{key}: a carried constant is {{ from = "PROFILE" }}')
            refs[key] = item["from"]
        else:
            _walk(key + ".", item, out, refs)


@attrs.frozen
class _Raw:
    """A profile file as written: its own constants and what it carries from where."""

    name: str
    description: str
    software_from: str | None
    constants: dict[str, Constant]
    refs: dict[str, str]


def _parse_raw(text: str, origin: str) -> _Raw:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: not valid TOML ({exc})") from None
    name = data.pop("name", None)
    description = data.pop("description", "")
    software_from = data.pop("software_from", None)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{origin}: missing top-level 'name'")
    if not isinstance(description, str):
        raise ProfileError(f"{origin}: 'description' must be a string")
    if software_from is not None and not isinstance(software_from, str):
        raise ProfileError(f"{origin}: 'software_from' must be a profile name")
    constants: dict[str, Constant] = {}
    refs: dict[str, str] = {}
    try:
        _walk("", data, constants, refs)
    except ProfileError as exc:
        raise ProfileError(f"{origin}: {exc}") from None
    return _Raw(name, description, software_from, constants, refs)


def _shipped_raw(name: str, origin: str) -> _Raw:
    if name not in available_profiles():
        raise ProfileError(f"{origin}: carries constants from unknown profile {name!r}")
    resource = resources.files("scenarios.cost") / "profiles" / f"{name}.toml"
    return _parse_cached(resource.read_text(encoding="utf-8"), f"profile {name}")


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, origin: str) -> _Raw:
    """``_parse_raw`` once per text (a file that changes is parsed again)."""
    return _parse_raw(text, origin)


def _resolve(key: str, source: str, origin: str, seen: frozenset[str]) -> Constant | None:
    """``key`` as profile ``source`` has it (following its own carrying), or None."""
    if source in seen:
        raise ProfileError(f"{origin}: {key} is carried from profile to profile in a cycle")
    raw = _shipped_raw(source, origin)
    if key in raw.constants:
        c = raw.constants[key]
        return attrs.evolve(
            c, note=f"{c.note} [carried unchanged from {source}]", carried_from=source
        )
    if key in raw.refs:
        return _resolve(key, raw.refs[key], origin, seen | {source})
    if raw.software_from is not None and is_software(key):
        return _resolve(key, raw.software_from, origin, seen | {source})
    return None


def parse_profile(text: str, *, origin: str) -> Profile:
    """Parse and validate a profile's TOML text; ``origin`` names it in errors."""
    raw = _parse_raw(text, origin)
    constants = dict(raw.constants)
    refs = dict(raw.refs)
    if raw.software_from is not None:
        base = _shipped_raw(raw.software_from, origin)
        wanted = set(base.constants) | set(base.refs) | set(SCHEMA)
        for key in sorted(wanted):
            if is_software(key) and key not in constants and key not in refs:
                refs[key] = raw.software_from
    for key, source in sorted(refs.items()):
        c = _resolve(key, source, origin, frozenset({raw.name}))
        if c is None:
            raise ProfileError(f"{origin}: profile {source} has no {key}")
        constants[key] = c
    missing = sorted(set(SCHEMA) - set(constants))
    if missing:
        raise ProfileError(f"{origin}: missing key(s) {', '.join(missing)}")
    _validate(constants, origin)
    return Profile(
        name=raw.name, description=raw.description, constants=tuple(sorted(constants.items()))
    )


_POSITIVE: Final = (
    "cpu.mhz",
    "tlb.entries",
    "tlb.ways",
    "cache.size_kb",
    "cache.ways",
    "cache.line_bytes",
    "cache.page_bytes",
    "timer.hz",
)


def _validate(constants: Mapping[str, Constant], origin: str) -> None:
    """Checks across keys: geometry that the machine model can build."""
    for key in _POSITIVE:
        if constants[key].value == 0:
            raise ProfileError(f"{origin}: {key} must be positive")
    if int(constants["tlb.entries"].value) % int(constants["tlb.ways"].value):
        raise ProfileError(f"{origin}: tlb.entries must be a multiple of tlb.ways")
    line = int(constants["cache.line_bytes"].value)
    size = int(constants["cache.size_kb"].value) * 1024
    if size % (int(constants["cache.ways"].value) * line):
        raise ProfileError(f"{origin}: cache.size_kb must be a multiple of ways * line_bytes")
    if int(constants["cache.page_bytes"].value) % line:
        raise ProfileError(f"{origin}: cache.page_bytes must be a multiple of line_bytes")


def available_profiles() -> tuple[str, ...]:
    """Names of the profiles shipped in the package."""
    folder = resources.files("scenarios.cost") / "profiles"
    return tuple(
        sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))
    )


def load_profile(name_or_file: str = DEFAULT_PROFILE, overrides: Iterable[str] = ()) -> Profile:
    """A shipped profile by name, or a TOML file by path, with ``KEY=VALUE`` overrides."""
    if name_or_file in available_profiles():
        resource = resources.files("scenarios.cost") / "profiles" / f"{name_or_file}.toml"
        text = resource.read_text(encoding="utf-8")
        origin = f"profile {name_or_file}"
    else:
        path = Path(name_or_file)
        if not path.is_file():
            known = ", ".join(available_profiles())
            raise ProfileError(f"no profile named or file {name_or_file!r} (known: {known})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read ({exc.__class__.__name__})") from None
        origin = str(path)
    return parse_profile(text, origin=origin).with_overrides(overrides)
