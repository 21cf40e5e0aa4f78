"""The profile's schema: every constant's key, type and range, written once.

A profile's constants are attrs classes nested by section as the TOML files are
(``[cpu]``, ``[ipc]``, ...; ``small_spaces`` stands alone; ``[work]`` maps unit names to
cycles).  Each constant is a ``Constant`` (value, provenance, note); its value type says
what is allowed: ``Positive`` (an int above 0), ``Count`` (an int, 0 or more) or
``bool``.  ``structure`` turns nested plain data into these classes with cattrs and
reports every problem with the key it is about, on one line (``tlb.entries must be
positive``); the checks across keys (TLB and cache geometry) live with their section.

Everything else is derived from the classes: ``SCHEMA`` (flat key -> type), ``SOFTWARE``
(the keys marked ``software=True``, which profiles carry from the machine they were
calibrated on), ``flatten`` (the flat, sorted ``(key, Constant)`` view that
``l4sim profile show``, ``--set`` and the pricing read).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any, Final, Generic, NewType, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

__all__ = [
    "PROVENANCES",
    "SCHEMA",
    "SOFTWARE",
    "WORK_PREFIX",
    "Cache",
    "Constant",
    "Count",
    "Cpu",
    "Ipc",
    "Positive",
    "Sections",
    "SchemaError",
    "Switch",
    "Timer",
    "Tlb",
    "flatten",
    "structure",
]

PROVENANCES: Final = ("measured", "published", "calibrated", "assumed", "override")
"""Where a constant comes from (``override`` marks a ``--set`` on the command line)."""

WORK_PREFIX: Final = "work."

T = TypeVar("T")
Positive = NewType("Positive", int)
"""An int above 0 (a size, a frequency)."""
Count = NewType("Count", int)
"""An int, 0 or more (cycles, pages)."""
Provenance = NewType("Provenance", str)


class SchemaError(Exception):
    """Data that does not fit the schema; the message is one line naming the key(s)."""


class Invalid(ValueError):
    """A rule across fields broken; the message follows the key of the table checked."""


@attrs.frozen(kw_only=True)
class Constant(Generic[T]):
    """One constant of a profile with where it comes from."""

    value: T
    provenance: Provenance
    note: str = ""
    carried_from: str = ""
    """The profile this software constant was carried from unchanged (empty: its own)."""

    def __attrs_post_init__(self) -> None:
        if self.provenance in ("published", "calibrated") and not self.note:
            raise Invalid(f"a {self.provenance} constant must name its source in 'note'")

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


SOFT: Final = {"software": True}
"""Field metadata: the field describes software, not the machine (see ``SOFTWARE``)."""


@attrs.frozen(kw_only=True)
class Cpu:
    mhz: Constant[Positive]
    trap_cycles: Constant[Count]


@attrs.frozen(kw_only=True)
class Ipc:
    """The kernel's IPC path: its cycles and the pages of its working set."""

    path_cycles: Constant[Count] = attrs.field(metadata=SOFT)
    kernel_pages: Constant[Count] = attrs.field(metadata=SOFT)
    tcb_pages: Constant[Count] = attrs.field(metadata=SOFT)
    utcb_pages: Constant[Count] = attrs.field(metadata=SOFT)
    kip_pages: Constant[Count] = attrs.field(metadata=SOFT)


@attrs.frozen(kw_only=True)
class Switch:
    cr3_cycles: Constant[Count]
    small_cycles: Constant[Count]


@attrs.frozen(kw_only=True)
class Tlb:
    entries: Constant[Positive]
    ways: Constant[Positive]
    tagged: Constant[bool]
    global_kernel: Constant[bool]
    miss_cycles: Constant[Count]

    def __attrs_post_init__(self) -> None:
        if self.entries.value % self.ways.value:
            raise Invalid("entries must be a multiple of ways")


@attrs.frozen(kw_only=True)
class Cache:
    size_kb: Constant[Positive]
    ways: Constant[Positive]
    line_bytes: Constant[Positive]
    page_bytes: Constant[Positive]
    lines_per_touch: Constant[Count] = attrs.field(metadata=SOFT)
    miss_cycles: Constant[Count]
    coloring: Constant[bool]

    def __attrs_post_init__(self) -> None:
        line = self.line_bytes.value
        if self.size_kb.value * 1024 % (self.ways.value * line):
            raise Invalid("size_kb must be a multiple of ways * line_bytes")
        if self.page_bytes.value % line:
            raise Invalid("page_bytes must be a multiple of line_bytes")


@attrs.frozen(kw_only=True)
class Timer:
    """The timer interrupt and the other process it occasionally lets run."""

    hz: Constant[Positive] = attrs.field(metadata=SOFT)
    tick_cycles: Constant[Count] = attrs.field(metadata=SOFT)
    kernel_pages: Constant[Count] = attrs.field(metadata=SOFT)
    switch_every: Constant[Count] = attrs.field(metadata=SOFT)
    other_pages: Constant[Count] = attrs.field(metadata=SOFT)
    other_cycles: Constant[Count] = attrs.field(metadata=SOFT)


@attrs.frozen(kw_only=True)
class Sections:
    """Every constant of a profile, by section as in the TOML files."""

    cpu: Cpu
    ipc: Ipc
    switch: Switch
    small_spaces: Constant[bool]
    tlb: Tlb
    cache: Cache
    timer: Timer
    work: dict[str, Constant[Count]] = attrs.field(metadata=SOFT)
    """Cycles per named unit of work (``linux.getpid``); every unit is software."""


# -- derived from the classes -------------------------------------------------------------


def _value_type(tp: Any) -> type:
    """The Python type of ``Constant[X]``'s value."""
    (arg,) = typing.get_args(tp)
    return typing.cast(type, getattr(arg, "__supertype__", arg))


def _fixed(cls: type, prefix: str = "") -> Iterator[tuple[str, type, bool]]:
    """(flat key, value type, software) of every fixed field under ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):
        tp = hints[f.name]
        key = prefix + f.name
        if typing.get_origin(tp) is Constant:
            yield key, _value_type(tp), bool(f.metadata.get("software"))
        elif attrs.has(tp):
            for sub, kind, soft in _fixed(tp, key + "."):
                yield sub, kind, soft or bool(f.metadata.get("software"))


SCHEMA: Final[Mapping[str, type]] = {key: kind for key, kind, _ in _fixed(Sections)}
"""Every fixed key and its type; ``work.<unit>`` keys (cycles, int) come in addition."""

SOFTWARE: Final = frozenset(key for key, _, soft in _fixed(Sections) if soft)
"""Keys that describe software, not the machine (plus every ``work.*`` unit): carried
from the machine they were calibrated or assumed on."""


def flatten(sections: Sections) -> tuple[tuple[str, Constant[Any]], ...]:
    """Every constant with its dotted key (``tlb.entries``, ``work.linux.getpid``), sorted."""
    out: list[tuple[str, Constant[Any]]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in attrs.fields(type(obj)):
            item = getattr(obj, f.name)
            if isinstance(item, Constant):
                out.append((prefix + f.name, item))
            elif isinstance(item, dict):
                out.extend((f"{prefix}{f.name}.{unit}", c) for unit, c in item.items())
            else:
                walk(item, f"{prefix}{f.name}.")

    walk(sections, "")
    return tuple(sorted(out, key=lambda kc: kc[0]))


# -- structuring with cattrs ----------------------------------------------------------------


def _positive(value: object, _: object) -> int:
    count = _count(value, None)
    if count == 0:
        raise ValueError("must be positive")
    return count


def _count(value: object, _: object) -> int:
    if type(value) is not int:
        raise TypeError(f"must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _bool(value: object, _: object) -> bool:
    if type(value) is not bool:
        raise TypeError(f"must be a bool, got {value!r}")
    return value


def _str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


def _provenance(value: object, _: object) -> str:
    if value not in PROVENANCES:
        raise ValueError(f"must be one of {', '.join(PROVENANCES[:4])}")
    return str(value)


_CONVERTER: Final = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
for _type, _hook in (
    (Positive, _positive),
    (Count, _count),
    (bool, _bool),
    (str, _str),
    (Provenance, _provenance),
):
    _CONVERTER.register_structure_hook(_type, _hook)


def structure(data: Mapping[str, object]) -> Sections:
    """``data`` (sections of ``{value, provenance, note}`` tables) as typed ``Sections``.

    Raises ``SchemaError`` naming every bad key: unknown, missing, wrongly typed or out
    of range, or geometry that the machine model cannot build.
    """
    try:
        return _CONVERTER.structure(data, Sections)
    except (ClassValidationError, IterableValidationError) as exc:
        missing: list[str] = []
        problems: list[str] = []
        for path, error in _leaves(exc, ()):
            _describe(path, error, missing, problems, data)
        if missing:
            problems.insert(0, f"missing key(s) {', '.join(missing)}")
        raise SchemaError("; ".join(problems)) from None


def _leaves(
    exc: BaseException, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], BaseException]]:
    """Every error in cattrs' exception group with the path of keys it is about."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from _leaves(sub, (*path, note.name))
        for sub in without:
            yield from _leaves(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_index, without_index = exc.group_exceptions()
        for sub, inote in with_index:
            yield from _leaves(sub, (*path, str(inote.index)))
        for sub in without_index:
            yield from _leaves(sub, path)
    else:
        yield path, exc


_FIELDS: Final = frozenset(f.name for f in attrs.fields(Constant))


def _describe(
    path: tuple[str, ...],
    error: BaseException,
    missing: list[str],
    problems: list[str],
    data: Mapping[str, object],
) -> None:
    field = path[-1] if path and path[-1] in _FIELDS else ""
    key = ".".join(path[:-1] if field else path)
    if isinstance(error, ForbiddenExtraKeysError):
        extra = ", ".join(sorted(error.extra_fields))
        if error.cl is Constant:
            problems.append(f"{key}: unknown field(s) {extra}")
        else:
            names = _unknown_keys(data, path, error.extra_fields)
            problems.append(f"unknown profile key(s) {', '.join(repr(n) for n in names)}")
    elif isinstance(error, KeyError):
        if field:
            problems.append(f"{key}: missing {field}")
        else:
            missing.append(key)
    elif field == "value":
        problems.append(f"{key} {error}")
    elif field:
        problems.append(f"{key}: {field} {error}")
    else:
        problems.append(f"{key or 'profile'}: {error}")


def _unknown_keys(data: Mapping[str, object], path: tuple[str, ...], extra: set[str]) -> list[str]:
    """The dotted keys under the unknown names ``extra`` of the table at ``path``."""
    table: object = data
    for part in path:
        table = table.get(part, {}) if isinstance(table, Mapping) else {}
    prefix = "".join(f"{part}." for part in path)
    keys = []
    for name in sorted(extra):
        item = table.get(name) if isinstance(table, Mapping) else None
        if isinstance(item, Mapping) and item and "value" not in item:
            keys += [f"{prefix}{name}.{sub}" for sub in sorted(item)]
        else:
            keys.append(prefix + name)
    return keys
