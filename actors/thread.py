"""The base class of every L4 thread, and with it the IPC path.

The IPC path is ``L4Thread.call`` (IPC to another thread) and ``L4Thread.syscall``
(trap into the kernel).  The runtime, not the sending code, stamps the caller's thread id
on every message (there is no parameter for it).  Every call has a finite timeout.  A
nonexistent or dead destination, a timeout, or a message the receiver does not speak
comes back as an ``IpcError`` value.  Every call and reply is appended to the trace.

A message is wire data (``wellformed``).  Before any handler runs, every field of the
message (an IPC, or the request of a system call) must hold a value of *exactly* a class
its declaration allows, nested ids and messages checked the same way: no ``bool`` for an
``int``, no subclass of ``int`` or of a message class (such a value could compare or hash
as it likes inside a server), no id inside an id.  Every ``int`` fits one 32-bit register,
and every class's own validators hold (a ``ThreadId``'s task number, lthread and version
are in range even when the object was forged around its constructor).  Anything else gets
``IpcError(EMALFORMED)``.  Values that are well-formed but meaningless (a task number the
server does not manage) are the receiving server's business and get its typed error.

Fault isolation: whatever a handler raises, ``BaseException`` included, stays with that
one message: the caller gets ``IpcError(EABORTED)`` and every actor, the handler's own
included, keeps running (Pykka would otherwise stop every actor of the process on a
``BaseException``).  A handler that fails half-way may have changed its own state; the
reply says so.  Only ``ReceiverCrashed`` (fault injection: the receiver dies) is passed on.

Receivers declare what they speak with ``@handles(MessageType)`` on methods
``(self, sender: ThreadId, message) -> reply``; these run on the receiver's own thread.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, TypeVar

import attrs
import pykka

from actors._runtime import Runtime
from protocols.editions import Edition
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, ThreadId
from protocols.ipc import IpcError
from protocols.trace import IpcCall, IpcFail, IpcReply, SpaceSwitch, Syscall, Touch, Work

__all__ = [
    "Envelope",
    "L4Thread",
    "Observe",
    "ReceiverCrashed",
    "Trap",
    "handles",
    "wellformed",
]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class Envelope:
    """What travels through an IPC: the runtime-stamped sender and the typed message."""

    sender: ThreadId
    message: object


@attrs.frozen
class Trap:
    """A thread entering the kernel with a system call (stamped like an envelope)."""

    sender: ThreadId
    request: object


@attrs.frozen
class Observe:
    """From an observer (test, boot, report), not an L4 thread: return your snapshot."""


class ReceiverCrashed(Exception):
    """Raised by a thread that dies while handling a request; its caller gets EABORTED."""


_Check = Callable[[object], bool]
_CHECKS: dict[type, _Check] = {}


WORD_MIN: Final = -(2**31)
WORD_END: Final = 2**32
"""An ``int`` on the wire is one 32-bit register (signed or not): ``WORD_MIN <= v < WORD_END``."""


def _exact(allowed: tuple[type, ...]) -> _Check:
    if int in allowed:

        def word(value: object) -> bool:
            t = type(value)
            return t in allowed and (t is not int or WORD_MIN <= value < WORD_END)  # type: ignore[operator]

        return word

    def check(value: object) -> bool:
        return type(value) in allowed

    return check


def _checker(hint: Any) -> _Check | None:
    """A check of a value against type ``hint`` by exact class, recursively into attrs
    classes, tuples and frozensets; None when the hint allows anything."""
    if hint is Any or isinstance(hint, TypeVar) or hint is object:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [_checker(arg) for arg in typing.get_args(hint)]
        if any(o is None for o in options):
            return None
        checks = [o for o in options if o is not None]
        return lambda value: any(c(value) for c in checks)
    if origin is typing.Literal:
        literals = typing.get_args(hint)
        return lambda value: any(type(value) is type(v) and value == v for v in literals)
    if origin in (tuple, frozenset):
        args = typing.get_args(hint)
        homogeneous = (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or (
            origin is frozenset and len(args) == 1
        )
        if homogeneous:
            each = _checker(args[0])
        else:
            return _exact((origin,))
        if each is None:
            return _exact((origin,))
        element = each
        return lambda value: type(value) is origin and all(element(v) for v in value)  # type: ignore[attr-defined]
    if origin is not None:
        return _exact((origin,)) if isinstance(origin, type) else None
    if hint is None or hint is type(None):
        return _exact((type(None),))
    if hint is float:
        return _exact((float, int))
    if isinstance(hint, type) and attrs.has(hint):
        return lambda value: type(value) is hint and wellformed(value)
    return _exact((hint,)) if isinstance(hint, type) else None


def _class_check(cls: type) -> _Check:
    """The check of every field of attrs class ``cls``: declared class exactly, nested
    values recursively, then the class's own validators (ranges)."""
    check = _CHECKS.get(cls)
    if check is not None:
        return check
    _CHECKS[cls] = lambda value: True  # a class that contains itself: checked one level
    fields: list[tuple[str, _Check]] = []
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        c = _checker(hints.get(field.name, Any))
        if c is not None:
            fields.append((field.name, c))
    validated = any(field.validator is not None for field in attrs.fields(cls))

    def check_fields(value: object) -> bool:
        for name, c in fields:
            if not c(getattr(value, name)):
                return False
        if validated:
            try:
                attrs.validate(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
        return True

    _CHECKS[cls] = check_fields
    return check_fields


def wellformed(message: object) -> bool:
    """Whether ``message`` is valid wire data: every attrs field holds a value of exactly a
    class its declaration allows (no subclass: no ``bool`` for an ``int``, no ``int``
    subclass with its own comparison), nested ids and messages checked the same way, and
    every field within the range its class's validators allow."""
    cls = type(message)
    if not attrs.has(cls):
        return True
    return _class_check(cls)(message)


def handles(*message_types: type) -> Callable[[F], F]:
    """Mark a method as the handler of ``message_types``."""

    def mark(method: F) -> F:
        method.__l4_handles__ = message_types  # type: ignore[attr-defined]
        return method

    return mark


class L4Thread(pykka.ThreadingActor):
    """One L4 thread.  Subclasses add ``@handles`` methods and ``snapshot()``."""

    use_daemon_thread = True
    """A test that dies never leaves the interpreter waiting for actor threads."""

    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {}

    WORKING_SETS: ClassVar[Mapping[str, tuple[int, ...]]] = {}
    """Declared working sets: region name -> virtual page numbers the code touches.

    Three region names are touched by the IPC path itself when declared: ``"call"``
    before this thread sends an IPC and again when it resumes after a reply from another
    space (its side of the call: stub, stack), ``"dispatch"``
    when it receives one (its server loop) and, for ``work(unit)``, the region named
    like the unit (e.g. ``"linux.getpid"``)."""

    DISPATCH_WORK: ClassVar[str | None] = None
    """A unit of work recorded each time this thread receives an IPC (its request loop)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = dict(cls._handlers)
        own = vars(cls)
        # A subclass that overrides a handler method (decorated or not) replaces it.
        for message_type, handler in table.items():
            override = own.get(handler.__name__)
            if callable(override):
                table[message_type] = override
        for value in own.values():
            for message_type in getattr(value, "__l4_handles__", ()):
                table[message_type] = value
        cls._handlers = table

    def __init__(self, runtime: Runtime, tid: ThreadId, pager: ThreadId = NIL_ID) -> None:
        super().__init__()
        self.runtime = runtime
        self.tid = tid
        self.pager = pager

    # -- receiving (runs on this actor's thread) -------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Dispatch an envelope to its handler; unknown messages get ``EUNKNOWN_MESSAGE``,
        malformed ones ``EMALFORMED``, a handler that raises ``EABORTED``."""
        try:
            return self._receive(message)
        except ReceiverCrashed:
            raise
        except BaseException:  # isolation is the point; see the module docstring
            inner = message.message if type(message) is Envelope else message
            if type(message) is Trap:
                inner = message.request
            return IpcError(code=ErrorCode.EABORTED, dest=self.tid, request=type(inner).__name__)

    def _receive(self, message: Any) -> Any:
        if type(message) is Trap and not wellformed(message.request):
            return IpcError(
                code=ErrorCode.EMALFORMED, dest=NIL_ID, request=type(message.request).__name__
            )
        if type(message) is Envelope:
            if "dispatch" in self.WORKING_SETS:
                self.touch("dispatch")
            if self.DISPATCH_WORK is not None:
                self.work(self.DISPATCH_WORK)
            handler = self._handlers.get(type(message.message))
            if handler is None:
                return IpcError(
                    code=ErrorCode.EUNKNOWN_MESSAGE,
                    dest=self.tid,
                    request=type(message.message).__name__,
                )
            if not wellformed(message.message):
                return IpcError(
                    code=ErrorCode.EMALFORMED,
                    dest=self.tid,
                    request=type(message.message).__name__,
                )
            return handler(self, message.sender, message.message)
        if type(message) is Observe:
            return self.snapshot()
        return self.on_control(message)

    def on_control(self, message: Any) -> Any:
        """Messages from the harness that are not IPC (runs on this actor's thread)."""
        return IpcError(
            code=ErrorCode.EUNKNOWN_MESSAGE, dest=self.tid, request=type(message).__name__
        )

    def snapshot(self) -> object:
        """This thread's observable state (override in servers)."""
        return None

    @property
    def edition(self) -> Edition:
        """The edition whose rules this system runs by (``protocols.editions``)."""
        return self.runtime.edition

    # -- what the code does (trace only; never cycles) --------------------------------

    def work(self, unit: str) -> None:
        """Record that this thread did the named unit of work (priced by the profile).

        If the thread declares a working set named like the unit, its pages are touched."""
        if unit in self.WORKING_SETS:
            self.touch(unit)
        self.runtime.trace.record(Work, task=self.tid.task, unit=unit)

    def touch(self, region: str) -> None:
        """Record that this thread touched the pages of its declared working set ``region``."""
        pages = self.WORKING_SETS.get(region)
        assert pages is not None, f"{type(self).__name__} declares no working set {region!r}"
        self.runtime.trace.record(Touch, task=self.tid.task, region=region, pages=pages)

    # -- sending (the IPC path; runs on this actor's thread) -------------------------

    def call(self, dest: ThreadId, message: object, timeout: float | None = None) -> Any:
        """IPC call (send and wait for the reply) to ``dest``; returns reply or ``IpcError``."""
        rt = self.runtime
        record = rt.trace.record
        src = self.tid
        switched = dest.task != src.task
        calls = "call" in self.WORKING_SETS
        if calls:
            self.touch("call")
        record(IpcCall, src=src, dst=dest, message=message)
        ref = rt.lookup(dest)
        if ref is None:
            return self._fail(dest, ErrorCode.ENOT_EXISTENT, message)
        if switched:
            record(SpaceSwitch, src=src.task, dst=dest.task)
        try:
            reply = ref.ask(
                Envelope(src, message), timeout=rt.timeout if timeout is None else timeout
            )
        except pykka.Timeout:
            return self._fail(dest, ErrorCode.ETIMEOUT, message, switched=switched)
        except pykka.ActorDeadError:
            return self._fail(dest, ErrorCode.ENOT_EXISTENT, message, switched=switched)
        except ReceiverCrashed:
            return self._fail(dest, ErrorCode.EABORTED, message, switched=switched)
        record(IpcReply, src=dest, dst=src, message=reply)
        if switched:
            record(SpaceSwitch, src=dest.task, dst=src.task)
            if calls:
                self.touch("call")  # the code resumes after the call, in its own space
        return reply

    def _fail(
        self, dest: ThreadId, code: ErrorCode, message: object, *, switched: bool = False
    ) -> IpcError:
        trace = self.runtime.trace
        name = type(message).__name__
        trace.record(IpcFail, src=self.tid, dst=dest, code=code, request=name)
        if switched:
            trace.record(SpaceSwitch, src=dest.task, dst=self.tid.task)
        return IpcError(code=code, dest=dest, request=name)

    def syscall(self, request: object, timeout: float | None = None) -> Any:
        """Trap into the kernel with ``request``; returns the kernel's reply or ``IpcError``."""
        rt = self.runtime
        assert rt.kernel is not None, "no kernel in this runtime"
        try:
            reply = rt.kernel.ask(
                Trap(self.tid, request), timeout=rt.timeout if timeout is None else timeout
            )
        except pykka.Timeout:
            return IpcError(code=ErrorCode.ETIMEOUT, dest=NIL_ID, request=type(request).__name__)
        except pykka.ActorDeadError:
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=NIL_ID, request=type(request).__name__
            )
        rt.trace.record(Syscall, caller=self.tid, request=request, reply=reply)
        return reply
