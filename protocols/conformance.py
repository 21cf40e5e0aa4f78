"""Trace conformance: replay a recorded trace against the reference specs.

A monitor only observes.  It walks the events in order, keeps the spec's state, and for
every request that reaches a server with a spec (a *checked step*) it computes what the
spec says the reply must be and compares it with the recorded reply.  A server's own
nested traffic (RMGR's ``l4_task_new`` while it serves a request) belongs to the checked
step and is not checked twice.  The first difference is reported with the events before
it.

Limits: replies that arrive after a timeout are recorded out of nesting order; such a
trace is reported as malformed at that point rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from protocols import kernel, ownership, rmgr
from protocols.editions import DEFAULT_EDITION, Edition, edition
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.snapshot import SystemSnapshot
from protocols.trace import Event, IpcCall, IpcFail, IpcReply, Syscall

__all__ = [
    "CheckReport",
    "KernelRmgrModel",
    "OwnershipModel",
    "SpecModel",
    "Violation",
    "check",
    "model_for",
]

HISTORY = 12
"""How many events before a violation the report shows."""


class SpecModel(Protocol):
    """The specs a trace is checked against, holding the spec state as it advances."""

    name: str

    def speaks(self, dst: ThreadId, message: object) -> bool:
        """Whether a call to ``dst`` is a step this model checks."""
        ...

    def request(self, sender: ThreadId, dst: ThreadId, message: object) -> object:
        """Advance by one checked request; return the reply the spec requires."""
        ...

    def syscall(self, sender: ThreadId, request: object) -> object:
        """Advance by one top-level system call; return the spec's reply."""
        ...


class KernelRmgrModel:
    """The kernel's task table and RMGR's books, from the state right after boot."""

    name = "kernel+rmgr"

    def __init__(
        self,
        *,
        task_count: int,
        quota: int | None,
        modules: tuple[int, ...],
        edition: Edition = DEFAULT_EDITION,
    ) -> None:
        self.edition = edition
        ks = kernel.boot_state(task_count)
        rs = rmgr.boot_state(task_count, quota=quota)
        self.ks, self.rs, _ = rmgr.start_modules(ks, rs, tuple(modules))

    @classmethod
    def from_snapshot(cls, snapshot: SystemSnapshot) -> KernelRmgrModel:
        """Start from a recorded snapshot (a trace file's ``initial``)."""
        model = cls.__new__(cls)
        model.ks, model.rs = snapshot.kernel, snapshot.rmgr
        model.edition = snapshot.edition
        return model

    @classmethod
    def from_boot(cls, boot: dict[str, Any]) -> KernelRmgrModel:
        """Build from a trace file's boot configuration."""
        return cls(
            task_count=int(boot["task_count"]),
            quota=boot.get("quota"),
            modules=tuple(boot.get("modules", ())),
            edition=edition(boot.get("edition", "l4env-2007")),
        )

    def speaks(self, dst: ThreadId, message: object) -> bool:
        return dst == task_id(RMGR_TASK)

    def request(self, sender: ThreadId, dst: ThreadId, message: object) -> object:
        if not isinstance(message, rmgr.RmgrRequest):
            return IpcError(
                code=ErrorCode.EUNKNOWN_MESSAGE, dest=dst, request=type(message).__name__
            )
        self.ks, self.rs, reply = rmgr.step(self.ks, self.rs, sender, message, edition=self.edition)
        return reply

    def syscall(self, sender: ThreadId, request: object) -> object:
        if not isinstance(request, kernel.KernelRequest):
            return kernel.TaskNewReply(task=ThreadId.nil())
        self.ks, reply = kernel.step(self.ks, sender, request, edition=self.edition)
        return reply


class OwnershipModel:
    """The whole system's spec (``protocols.ownership``): kernel, RMGR, task server, L4Linux.

    Checks every request that reaches a live server (RMGR, the task server, an L4Linux
    server) and every top-level system call; a server's nested traffic is part of the
    step that the spec computes for the outer request.
    """

    name = "ownership"

    def __init__(self, world: SystemSnapshot) -> None:
        self.world = world

    @classmethod
    def from_boot(cls, boot: dict[str, Any]) -> OwnershipModel:
        """Rebuild the state right after boot from a trace file's boot configuration."""
        from protocols.l4linux import Strategy

        return cls(
            ownership.boot(
                task_count=int(boot["task_count"]),
                modules=tuple(boot.get("modules", ())),
                linux_servers=int(boot.get("linux", 0)),
                strategy=Strategy(boot.get("strategy", "classic")),
                cache_size=int(boot.get("cache_size", 5)),
                task_server=boot.get("task_server"),
                managed=int(boot.get("managed", 64)),
                quota=boot.get("quota"),
                edition=edition(boot.get("edition", "l4env-2007")),
            )
        )

    def speaks(self, dst: ThreadId, message: object) -> bool:
        w = self.world
        if not ownership.alive(w, dst):
            return False
        servers = {RMGR_TASK, *(lx.me for lx in w.linux)}
        if w.task_server is not None:
            servers.add(w.task_server.me)
        return dst.task in servers

    def request(self, sender: ThreadId, dst: ThreadId, message: object) -> object:
        self.world, reply = ownership.step(self.world, sender, dst, message)
        return reply

    def syscall(self, sender: ThreadId, request: object) -> object:
        self.world, reply = ownership.step(self.world, sender, ThreadId.nil(), request)
        return reply


def model_for(boot: dict[str, Any], initial: SystemSnapshot | None) -> SpecModel:
    """The model a trace file is checked against: its snapshot, else its boot record."""
    if initial is not None:
        return OwnershipModel(initial)
    if "linux" in boot or "strategy" in boot:
        return OwnershipModel.from_boot(boot)
    return KernelRmgrModel.from_boot(boot)


@attrs.frozen(kw_only=True)
class Violation:
    """The first event at which the implementation did what the spec does not allow."""

    seq: int
    what: str
    expected: object = None
    got: object = None
    history: tuple[Event, ...] = ()


@attrs.frozen(kw_only=True)
class CheckReport:
    """The verdict on one trace."""

    model: str
    events: int
    steps: int
    """How many requests and system calls were checked against the spec."""
    violation: Violation | None

    @property
    def ok(self) -> bool:
        """True if the whole trace conforms."""
        return self.violation is None


@attrs.frozen
class _Open:
    call: IpcCall
    checked: bool


def check(events: Iterable[Event], model: SpecModel) -> CheckReport:
    """Replay ``events`` against ``model``; stop at the first violation."""
    seen: list[Event] = []
    stack: list[_Open] = []
    inside = 0  # how many checked calls are open: their nested traffic is not rechecked
    steps = 0

    def violation(
        event: Event, what: str, expected: object = None, got: object = None
    ) -> CheckReport:
        return CheckReport(
            model=model.name,
            events=len(seen),
            steps=steps,
            violation=Violation(
                seq=event.seq,
                what=what,
                expected=expected,
                got=got,
                history=tuple(seen[-HISTORY - 1 : -1]),
            ),
        )

    for event in events:
        seen.append(event)
        if isinstance(event, IpcCall):
            checked = inside == 0 and model.speaks(event.dst, event.message)
            stack.append(_Open(event, checked))
            inside += checked
        elif isinstance(event, IpcReply | IpcFail):
            if not stack:
                return violation(event, "a reply or failure with no open call")
            top = stack.pop()
            caller = top.call.src
            callee = top.call.dst
            if isinstance(event, IpcReply) and (event.dst, event.src) != (caller, callee):
                return violation(
                    event,
                    f"reply {event.src}->{event.dst} does not match the open "
                    f"call {caller}->{callee}",
                )
            if top.checked:
                inside -= 1
                steps += 1
                try:
                    expected = model.request(caller, callee, top.call.message)
                except AssertionError as exc:
                    return violation(event, f"the spec cannot take this step: {exc}")
                got = (
                    event.message
                    if isinstance(event, IpcReply)
                    else IpcError(code=event.code, dest=event.dst, request=event.request)
                )
                if got != expected:
                    return violation(
                        event,
                        f"{callee} answered {type(top.call.message).__name__} from {caller} "
                        "differently from the spec",
                        expected,
                        got,
                    )
        elif isinstance(event, Syscall) and inside == 0:
            steps += 1
            try:
                expected = model.syscall(event.caller, event.request)
            except AssertionError as exc:
                return violation(event, f"the spec cannot take this step: {exc}")
            if event.reply != expected:
                return violation(
                    event,
                    f"the kernel answered {type(event.request).__name__} from {event.caller} "
                    "differently from the spec",
                    expected,
                    event.reply,
                )
    return CheckReport(model=model.name, events=len(seen), steps=steps, violation=None)
