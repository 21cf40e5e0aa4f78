"""Traces people can look at: plain text, Mermaid sequence diagrams, Perfetto JSON.

Each renderer takes the events, a name per task number (``names``; missing numbers are
shown as ``tN``) and, optionally, the modelled cycles each event cost (``costs``, one
int per event, from pricing).  A *hop* is one IPC message (or system call) together with
the work done after it until the next message; its cycles are the sum of the costs of
its events, and Mermaid shows them on the arrow.

Perfetto: Chrome trace-event JSON (``{"traceEvents": [...]}``), one track (thread) per
task, complete (``"X"``) slices; the time axis is in modelled cycles, which the viewer
labels as microseconds (1 us on screen = 1 cycle).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from protocols import linux
from protocols import task_server as ts
from protocols.ids import KERNEL_TASK, RMGR_TASK, SIGMA0_TASK, ThreadId
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work

__all__ = [
    "DEFAULT_NAMES",
    "hops",
    "label",
    "render_mermaid",
    "render_perfetto",
    "render_text",
    "server_role",
]

_ROLES: dict[type, str] = {
    **{cls: "task server" for cls in typing.get_args(ts.TsRequest)},
    **{cls: "L4Linux" for cls in typing.get_args(linux.LinuxRequest)},
}


def server_role(message: object) -> str | None:
    """Who receives ``message``, read from the request unions: ``"task server"`` for a
    task-server request, ``"L4Linux"`` for a Linux system call, else ``None``."""
    return _ROLES.get(type(message))


DEFAULT_NAMES: Mapping[int, str] = {KERNEL_TASK: "kernel", SIGMA0_TASK: "sigma0", RMGR_TASK: "RMGR"}
KERNEL_PARTICIPANT = "K"


def _name(names: Mapping[int, str], task: int) -> str:
    return names.get(task, DEFAULT_NAMES.get(task, f"t{task}"))


ADDRESS_FIELDS = frozenset({"eip", "esp"})
"""Message fields that hold an address: shown in hex (``eip=0x4000``)."""


def _short(value: object) -> str:
    """A compact, Mermaid-safe rendering of a message: ``GetTask(number=10)``."""
    if isinstance(value, ThreadId):
        text = repr(value)
    elif attrs.has(type(value)):
        parts = []
        for field in attrs.fields(type(value)):  # type: ignore[arg-type]
            v = getattr(value, field.name)
            if field.default is not attrs.NOTHING and v == field.default:
                continue
            shown = hex(v) if field.name in ADDRESS_FIELDS and type(v) is int else _short(v)
            parts.append(f"{field.name}={shown}")
        text = f"{type(value).__name__}({', '.join(parts)})"
    elif hasattr(value, "name") and type(value).__module__ == "protocols.errors":
        text = str(value.name)
    else:
        text = repr(value)
    return text.replace(";", ",").replace("#", "no.")


def label(event: Event) -> str:
    """One line describing ``event``."""
    if isinstance(event, IpcCall):
        return f"call {event.src} -> {event.dst}: {_short(event.message)}"
    if isinstance(event, IpcReply):
        return f"reply {event.src} -> {event.dst}: {_short(event.message)}"
    if isinstance(event, IpcFail):
        return f"FAIL {event.src} -> {event.dst}: {event.request} ({event.code.name})"
    if isinstance(event, Syscall):
        return f"syscall {event.caller}: {_short(event.request)} = {_short(event.reply)}"
    if isinstance(event, SpaceSwitch):
        return f"switch space {event.src} -> {event.dst}"
    if isinstance(event, Touch):
        return f"t{event.task} touches {event.region} ({len(event.pages)} pages)"
    return f"t{event.task} works: {event.unit}"


def _running(event: Event, current: int) -> int:
    """The task whose time ``event`` is charged to."""
    if isinstance(event, IpcCall | IpcReply):
        return event.dst.task
    if isinstance(event, IpcFail):
        return event.src.task
    if isinstance(event, Syscall):
        return event.caller.task
    if isinstance(event, SpaceSwitch):
        return event.dst
    if isinstance(event, Touch | Work):
        return event.task
    return current


def _checked_costs(events: Sequence[Event], costs: Sequence[int] | None) -> Sequence[int]:
    if costs is None:
        return [0] * len(events)
    if len(costs) != len(events):
        raise ValueError(f"{len(costs)} costs for {len(events)} events")
    return costs


def hops(events: Sequence[Event], costs: Sequence[int] | None = None) -> list[tuple[Event, int]]:
    """Each message event with the cycles of its hop (it and the work until the next one)."""
    costs = _checked_costs(events, costs)
    out: list[tuple[Event, int]] = []
    pending = 0  # cycles spent before the first message
    for event, cost in zip(events, costs, strict=True):
        if isinstance(event, IpcCall | IpcReply | IpcFail | Syscall):
            out.append((event, cost + pending))
            pending = 0
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + cost)
        else:
            pending += cost
    return out


def render_text(
    events: Sequence[Event],
    names: Mapping[int, str] | None = None,
    costs: Sequence[int] | None = None,
) -> str:
    """One line per event: sequence number, cycles (if priced), description."""
    names = names or {}
    costs = _checked_costs(events, costs)
    lines = []
    for event, cost in zip(events, costs, strict=True):
        who = _name(names, _running(event, KERNEL_TASK))
        lines.append(f"{event.seq:6d} {cost:8d}  {who:<12} {label(event)}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_mermaid(
    events: Sequence[Event],
    names: Mapping[int, str] | None = None,
    costs: Sequence[int] | None = None,
    *,
    title: str | None = None,
) -> str:
    """A Mermaid ``sequenceDiagram`` of the IPC between the actors, cycles on each hop."""
    names = names or {}
    priced = costs is not None
    steps = hops(events, costs)
    tasks: list[int] = []

    def see(task: int) -> str:
        if task not in tasks:
            tasks.append(task)
        return f"t{task}"

    body: list[str] = []
    for event, cycles in steps:
        suffix = f" [{cycles} cyc]" if priced else ""
        if isinstance(event, IpcCall):
            body.append(
                f"    {see(event.src.task)}->>{see(event.dst.task)}: "
                f"{_short(event.message)}{suffix}"
            )
        elif isinstance(event, IpcReply):
            body.append(
                f"    {see(event.src.task)}-->>{see(event.dst.task)}: "
                f"{_short(event.message)}{suffix}"
            )
        elif isinstance(event, IpcFail):
            body.append(
                f"    {see(event.src.task)}-x{see(event.dst.task)}: "
                f"{event.request} {event.code.name}{suffix}"
            )
        elif isinstance(event, Syscall):
            caller = see(event.caller.task)
            body.append(f"    {caller}->>{KERNEL_PARTICIPANT}: {_short(event.request)}{suffix}")
            body.append(f"    {KERNEL_PARTICIPANT}-->>{caller}: {_short(event.reply)}")
    head = ["sequenceDiagram"]
    if title:
        head.append("    title " + title.replace(";", ",").replace("#", "no."))
    head += [f"    participant t{t} as {_name(names, t)} (t{t})" for t in tasks]
    if any(isinstance(e, Syscall) for e, _ in steps):
        head.append(f"    participant {KERNEL_PARTICIPANT} as kernel")
    return "\n".join(head + body) + "\n"


def render_perfetto(
    events: Sequence[Event],
    names: Mapping[int, str] | None = None,
    costs: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Chrome trace-event JSON: one track per task, one slice per priced event."""
    names = names or {}
    costs = _checked_costs(events, costs)
    pid = 1
    trace: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "l4sim"}},
    ]
    tracks: set[int] = set()
    now = 0
    current = events[0].src.task if events and isinstance(events[0], IpcCall) else KERNEL_TASK
    for event, cost in zip(events, costs, strict=True):
        current = _running(event, current)
        if current not in tracks:
            tracks.add(current)
            trace.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": pid,
                    "tid": current,
                    "args": {"name": f"{_name(names, current)} (t{current})"},
                }
            )
        entry: dict[str, Any] = {
            "name": label(event),
            "cat": type(event).__name__,
            "pid": pid,
            "tid": current,
            "ts": now,
            "args": {"seq": event.seq, "cycles": cost},
        }
        if cost > 0:
            entry.update(ph="X", dur=cost)
        else:
            entry.update(ph="i", s="t")
        trace.append(entry)
        now += cost
    return {
        "traceEvents": trace,
        "displayTimeUnit": "ns",
        "otherData": {"generator": "l4sim", "time_unit": "modelled cycles (shown as us)"},
    }
