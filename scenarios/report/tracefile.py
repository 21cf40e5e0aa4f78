"""The trace file format: JSON lines, versioned, serialised with cattrs.

Format ``l4sim-trace`` version 1:

* line 1, the header: ``{"format": "l4sim-trace", "version": 1, "boot": {...},
  "initial": {...}}`` where ``boot`` holds the boot configuration (``task_count``,
  ``quota``, ``modules``, ``strategy``, ...) and ``initial``, if present, the system
  snapshot (``protocols.snapshot.SystemSnapshot``) at the first event: the state a
  checker replays the events from;
* every further line, one event: ``{"event": "IpcCall", "seq": 3, "src": "t5.0v1",
  "dst": "t4.0v0", "message": {"_type": "rmgr.GetTask", "number": 10}}``.  Thread ids are
  written in their ``repr`` form (``t17.0v3``, ``nil``), error codes by name, and every
  message or reply as an object tagged with its type name (``_type``: ``module.Class``),
  as listed by ``protocols.registry.message_types``.

``load`` rejects a file of another format or version, a truncated or garbled line or an
unknown type with ``TraceFileError`` naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final

import attrs
import cattrs
from cattrs.preconf.json import make_converter as make_json_converter

from protocols.errors import ErrorCode
from protocols.ids import ThreadId
from protocols.registry import message_types, type_name
from protocols.snapshot import SystemSnapshot
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work

__all__ = ["FORMAT", "VERSION", "TraceFile", "TraceFileError", "dump", "dumps", "load", "loads"]

FORMAT: Final = "l4sim-trace"
VERSION: Final = 1
TAG: Final = "_type"
EVENT_TYPES: Final[dict[str, type]] = {
    cls.__name__: cls for cls in (IpcCall, IpcReply, IpcFail, Syscall, SpaceSwitch, Touch, Work)
}
for _cls in EVENT_TYPES.values():
    attrs.resolve_types(_cls)
PAYLOAD_FIELDS: Final = frozenset({"message", "request", "reply"})
"""Event fields that hold a protocol message (any registered type)."""


class TraceFileError(ValueError):
    """A trace file that cannot be read: wrong format or version, garbage, unknown type."""


@attrs.frozen(kw_only=True)
class TraceFile:
    """A loaded trace: the boot configuration, the snapshot at its start, the events."""

    boot: dict[str, Any]
    events: tuple[Event, ...]
    initial: SystemSnapshot | None = None


def _converter() -> cattrs.Converter:
    conv: cattrs.Converter = make_json_converter()  # sets, enums, ... as JSON can hold them
    conv.register_unstructure_hook(ThreadId, repr)
    conv.register_structure_hook(ThreadId, lambda value, _t: ThreadId.parse(_str(value)))
    conv.register_unstructure_hook(ErrorCode, lambda code: code.name)
    conv.register_structure_hook(ErrorCode, lambda value, _t: ErrorCode[_str(value)])
    conv.register_unstructure_hook(
        int | ThreadId, lambda v: repr(v) if isinstance(v, ThreadId) else v
    )
    conv.register_structure_hook(
        int | ThreadId,
        lambda v, _t: ThreadId.parse(v) if isinstance(v, str) else _int(v),
    )
    return conv


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {value!r}")
    return value


_CONV: Final = _converter()


def _unstructure_payload(value: object) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [_unstructure_payload(v) for v in value]}
    if isinstance(value, ThreadId):
        return {TAG: "ThreadId", "id": repr(value)}
    name = type_name(value)
    if message_types().get(name) is not type(value):
        raise TypeError(f"{name} is not a registered protocol type")
    data = _CONV.unstructure(value)
    data[TAG] = name
    return data


def _structure_payload(data: Any) -> object:
    if data is None or isinstance(data, (bool, int, str)):
        return data
    if not isinstance(data, dict) or TAG not in data:
        raise TypeError(f"not a tagged message: {data!r}")
    name = data[TAG]
    if name == "tuple":
        return tuple(_structure_payload(v) for v in data["items"])
    if name == "ThreadId":
        return ThreadId.parse(_str(data["id"]))
    cls = message_types().get(name)
    if cls is None:
        raise TypeError(f"unknown message type {name!r}")
    fields = {k: v for k, v in data.items() if k != TAG}
    return _CONV.structure(fields, cls)


def _event_to_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(event).__name__}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if field.name in PAYLOAD_FIELDS:
            out[field.name] = _unstructure_payload(value)
        else:
            out[field.name] = _CONV.unstructure(value)
    return out


def _event_from_json(data: Any) -> Event:
    if not isinstance(data, dict):
        raise TypeError("an event must be a JSON object")
    cls = EVENT_TYPES.get(data.get("event", ""))
    if cls is None:
        raise TypeError(f"unknown event {data.get('event')!r}")
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name not in data:
            raise TypeError(f"{cls.__name__} lacks field {field.name!r}")
        value = data[field.name]
        if field.name in PAYLOAD_FIELDS:
            kwargs[field.name] = _structure_payload(value)
        elif field.name == "pages":
            kwargs[field.name] = tuple(_int(v) for v in value)
        else:
            kwargs[field.name] = _CONV.structure(value, field.type)
    event: Event = cls(**kwargs)
    return event


def dumps(
    events: Iterable[Event], boot: dict[str, Any], initial: SystemSnapshot | None = None
) -> str:
    """The trace file text for ``events`` recorded by a system booted with ``boot``."""
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "boot": boot}
    if initial is not None:
        header["initial"] = _CONV.unstructure(initial)
    lines = [json.dumps(header, sort_keys=True)]
    lines += [json.dumps(_event_to_json(e), sort_keys=True) for e in events]
    return "\n".join(lines) + "\n"


def dump(
    events: Iterable[Event],
    boot: dict[str, Any],
    path: str | Path | IO[str],
    initial: SystemSnapshot | None = None,
) -> None:
    """Write a trace file (to a path or an open text file)."""
    text = dumps(events, boot, initial)
    if isinstance(path, (str, Path)):
        Path(path).write_text(text)
    else:
        path.write(text)


def _json(line: str, number: int) -> Any:
    """One line's JSON value; ``TraceFileError`` if it is not JSON or nested too deeply."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceFileError(f"line {number}: not JSON ({exc.msg}); truncated?") from None
    except RecursionError:
        raise TraceFileError(f"line {number}: JSON nested too deeply for a trace") from None


def loads(text: str) -> TraceFile:
    """Parse trace file text; ``TraceFileError`` (with the line number) if it is not one."""
    lines = text.splitlines()
    if not lines:
        raise TraceFileError("empty file: not an l4sim trace")
    header = _json(lines[0], 1)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TraceFileError(f"line 1: not an {FORMAT} file")
    if header.get("version") != VERSION:
        raise TraceFileError(
            f"line 1: {FORMAT} version {header.get('version')!r} is not supported "
            f"(this l4sim reads version {VERSION})"
        )
    boot = header.get("boot")
    if not isinstance(boot, dict):
        raise TraceFileError("line 1: the header has no boot configuration")
    initial = None
    if header.get("initial") is not None:
        try:
            initial = _CONV.structure(header["initial"], SystemSnapshot)
        except cattrs.BaseValidationError as exc:
            detail = "; ".join(cattrs.transform_error(exc, format_exception=lambda e, _t: str(e)))
            raise TraceFileError(f"line 1: bad initial snapshot: {detail}") from None
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise TraceFileError(f"line 1: bad initial snapshot: {exc}") from None
    events = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        data = _json(line, number)
        try:
            events.append(_event_from_json(data))
        except cattrs.BaseValidationError as exc:
            detail = "; ".join(cattrs.transform_error(exc, format_exception=lambda e, _t: str(e)))
            raise TraceFileError(f"line {number}: {detail}") from None
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise TraceFileError(f"line {number}: {exc}") from None
    for index, event in enumerate(events):
        if event.seq != events[0].seq + index:
            raise TraceFileError(f"event {index + 1}: sequence number {event.seq} out of order")
    return TraceFile(boot=boot, events=tuple(events), initial=initial)


def load(path: str | Path) -> TraceFile:
    """Read a trace file; ``TraceFileError`` if it cannot be read or parsed."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TraceFileError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TraceFileError(f"{path} is not a text file") from None
    return loads(text)
