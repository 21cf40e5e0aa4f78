"""The trace: typed events recording what the actors did, in causal order.

Actors append events; they never count cycles.  Later layers price a trace
(``scenarios``), check it against the specs (conformance) and draw it.  Every event
carries its sequence number ``seq`` (its index in the trace).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TypeAlias

import attrs

from protocols.errors import ErrorCode
from protocols.ids import ThreadId

__all__ = [
    "Event",
    "IpcCall",
    "IpcFail",
    "IpcReply",
    "SpaceSwitch",
    "Syscall",
    "Touch",
    "Trace",
    "Work",
]


@attrs.frozen(kw_only=True)
class IpcCall:
    """``src`` sent ``message`` to ``dst`` and waits for the reply (call = send + receive)."""

    seq: int
    src: ThreadId
    dst: ThreadId
    message: object


@attrs.frozen(kw_only=True)
class IpcReply:
    """``src`` (the callee) answered ``dst`` (the caller) with ``message``."""

    seq: int
    src: ThreadId
    dst: ThreadId
    message: object


@attrs.frozen(kw_only=True)
class IpcFail:
    """The call from ``src`` to ``dst`` failed in the IPC path with ``code``."""

    seq: int
    src: ThreadId
    dst: ThreadId
    code: ErrorCode
    request: str


@attrs.frozen(kw_only=True)
class Syscall:
    """``caller`` trapped into the kernel with ``request`` and got ``reply`` (no IPC)."""

    seq: int
    caller: ThreadId
    request: object
    reply: object


@attrs.frozen(kw_only=True)
class SpaceSwitch:
    """The CPU switched from the address space of task ``src`` to that of task ``dst``."""

    seq: int
    src: int
    dst: int


@attrs.frozen(kw_only=True)
class Touch:
    """Code running in ``task`` touched the pages of its named working set ``region``."""

    seq: int
    task: int
    region: str
    pages: tuple[int, ...]


@attrs.frozen(kw_only=True)
class Work:
    """``task`` did a named unit of work (e.g. the body of getpid), priced by the profile."""

    seq: int
    task: int
    unit: str


Event: TypeAlias = IpcCall | IpcReply | IpcFail | Syscall | SpaceSwitch | Touch | Work


class Trace:
    """An append-only, thread-safe list of events; ``record`` stamps the sequence number.

    ``enabled=False`` makes ``record`` a no-op (for speed runs that price nothing).

    Recording is on every IPC's path, so it is cheap: ``record`` appends the kind and
    its fields in one atomic ``list.append`` (no lock; the index is the ``seq``), and
    the typed event is built when the trace is read.  A wrong field name therefore
    raises when the trace is read, not when the event is recorded.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._raw: list[tuple[type[Event], dict[str, object]]] = []
        self._built: list[Event] = []
        self._lock = threading.Lock()
        """Serialises readers building events; writers never take it."""
        self.enabled = enabled

    def record(self, kind: type[Event], /, **fields: object) -> None:
        """Append ``kind(seq=<next>, **fields)``; thread-safe."""
        if self.enabled:
            self._raw.append((kind, fields))

    def _build(self, end: int) -> list[Event]:
        """Build the events up to index ``end`` (exclusive); returns the built list."""
        with self._lock:
            built, raw = self._built, self._raw
            for seq in range(len(built), end):
                kind, fields = raw[seq]
                built.append(kind(seq=seq, **fields))  # type: ignore[arg-type]
            return built

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def events(self) -> tuple[Event, ...]:
        """A snapshot of the events so far."""
        end = len(self._raw)
        return tuple(self._build(end)[:end])

    def mark(self) -> int:
        """The current length: pass it to ``since`` to get the events recorded after now."""
        return len(self._raw)

    def since(self, mark: int) -> tuple[Event, ...]:
        """The events recorded after ``mark``."""
        end = len(self._raw)
        return tuple(self._build(end)[mark:end])
