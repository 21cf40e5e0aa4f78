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

Keys are dotted paths (``tlb.miss_cycles``, ``work.linux.getpid``).  The keys, their
types and ranges are written once, as the attrs classes of ``scenarios.cost.schema``
(``Sections``); cattrs structures a file into them.  A file with an unknown key, a
missing key or a wrongly typed value is refused with a one-line ``ProfileError`` naming
the key; so is a ``--set KEY=VALUE`` override of an unknown key.  This module reads the
files, resolves carried constants and applies overrides; a ``Profile`` holds the typed
``Sections`` (which the pricing reads) and the flat view of them (``constants``).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import attrs

from scenarios.cost.schema import (
    PROVENANCES,
    SCHEMA,
    SOFTWARE,
    WORK_PREFIX,
    Constant,
    SchemaError,
    Sections,
    flatten,
    structure,
)

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

Value = bool | int | float | str


def is_software(key: str) -> bool:
    """Whether ``key`` describes software (``SOFTWARE`` or a ``work.*`` unit)."""
    return key in SOFTWARE or key.startswith(WORK_PREFIX)


class ProfileError(Exception):
    """A profile file or override that cannot be used; the message is one line."""


@attrs.frozen(kw_only=True)
class Profile:
    """A named, validated set of constants: typed by section, and flat (sorted by key)."""

    name: str
    description: str
    sections: Sections = attrs.field(eq=False, repr=False)
    """The constants as the schema's typed classes (what the pricing reads)."""
    constants: tuple[tuple[str, Constant[Any]], ...] = attrs.field(init=False)
    """Every constant with its dotted key, sorted (derived from ``sections``)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "constants", flatten(self.sections))

    def __getitem__(self, key: str) -> Value:
        value: Value = self.constant(key).value
        return value

    def constant(self, key: str) -> Constant[Any]:
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
        """An int constant (the schema guarantees the type)."""
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
        return {unit: c.value for unit, c in sorted(self.sections.work.items())}

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
            table[key] = Constant(
                value=_parse_value(key, text.strip(), _kind(key)),
                provenance="override",  # type: ignore[arg-type]
                note=f"--set {key}={text.strip()} (was {table[key].value!r})",
            )
            changed = True
        if not changed:
            return self
        raw = {key: attrs.asdict(c) for key, c in table.items()}
        return Profile(
            name=self.name + "+set",
            description=self.description,
            sections=_structure(raw, "--set"),
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-able description: name, description and every constant."""
        return {
            "name": self.name,
            "description": self.description,
            "constants": {k: c.to_json() for k, c in self.constants},
        }


def _kind(key: str) -> type:
    return SCHEMA.get(key, int)


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


def _structure(flat: Mapping[str, Mapping[str, object]], origin: str) -> Sections:
    """Flat ``key -> {value, provenance, note}`` tables as typed ``Sections``: each key
    goes to the section its first part names (``tlb.entries`` -> ``[tlb] entries``)."""
    nested: dict[str, Any] = {}
    for key, raw in flat.items():
        section, dot, name = key.partition(".")
        if dot:
            nested.setdefault(section, {})[name] = dict(raw)
        else:
            nested[key] = dict(raw)
    try:
        return structure(nested)
    except SchemaError as exc:
        raise ProfileError(f"{origin}: {exc}") from None


RawConstant = Mapping[str, object]


def _walk(
    prefix: str,
    table: Mapping[str, object],
    out: dict[str, RawConstant],
    refs: dict[str, str],
) -> None:
    """Flatten nested tables to dotted keys: a constant is a table with a ``value``, a
    carried one ``{ from = "PROFILE" }``."""
    for name, item in table.items():
        key = f"{prefix}{name}"
        if not isinstance(item, dict):
            raise ProfileError(f"{key} must be a table with value and provenance")
        if "value" in item:
            if "carried_from" in item or item.get("provenance") == "override":
                raise ProfileError(f"{key}: carried_from and override are set by l4sim")
            out[key] = item
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
    constants: dict[str, RawConstant]
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
    constants: dict[str, RawConstant] = {}
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


def _resolve(key: str, source: str, origin: str, seen: frozenset[str]) -> RawConstant | None:
    """``key`` as profile ``source`` has it (following its own carrying), or None."""
    if source in seen:
        raise ProfileError(f"{origin}: {key} is carried from profile to profile in a cycle")
    raw = _shipped_raw(source, origin)
    if key in raw.constants:
        c = raw.constants[key]
        note = c.get("note", "")
        return {**c, "note": f"{note} [carried unchanged from {source}]", "carried_from": source}
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
    return Profile(
        name=raw.name,
        description=raw.description,
        sections=_structure(constants, origin),
    )


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
