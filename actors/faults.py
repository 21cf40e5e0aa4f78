"""Fault injection: crash a thread (now, or while it handles its next request), make it slow.

Faults are harness controls, not IPC: no L4 thread can send one.  ``faulty(cls)`` makes a
subclass of a thread class that obeys them; a system gets faulty servers by swapping
images (``runtime.images``) before boot, so the normal classes carry no fault code.

- ``CrashNext``: the thread dies while handling its next IPC request, before it changes
  anything or half-way (instead of its k-th own call).  Its caller is
  mid-call and gets ``IpcError(EABORTED)`` (the kernel aborts an IPC whose partner dies);
  every later call to it gets ``ENOT_EXISTENT``.
- ``SlowNext``: the thread blocks before handling its next request until ``release`` is
  set or ``limit`` seconds pass (a ``threading.Event`` wait: no sleeping, no wall clock in
  the model).  A caller with a shorter timeout gets ``ETIMEOUT``; the request is still
  handled afterwards (a timed-out IPC is not cancelled).
- ``crash_now``: the harness stops a thread between requests.

After a thread died, the events server tells whoever must clean up: ``ExitEvent`` (to the
task server, to RMGR in a system without one, or to a process's pager).  The events server
is modelled by the harness (``notify_exit``); it is a control message, so no client can
forge one.  A crashed task server is restarted by ``restart_task_server``: a new actor
under the same thread id rebuilds its books from the kernel's chief table and RMGR's
owners (``TsRecover``, see ``actors.task_server.TaskServer.recover``).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import attrs
import pykka

from actors.thread import Envelope, L4Thread, ReceiverCrashed
from protocols.ids import ThreadId

__all__ = ["CrashNext", "ExitEvent", "Heal", "SlowNext", "crash_now", "faulty"]


@attrs.frozen(kw_only=True)
class ExitEvent:
    """Events server (the harness) to the task server, RMGR or a pager: ``task`` died."""

    task: ThreadId


@attrs.frozen(kw_only=True)
class CrashNext:
    """Harness to a faulty thread: die while handling your next IPC request."""

    after_calls: int = 0
    """0: die before handling it; k: die instead of making its k-th call or system call
    (so a server can die half-way, e.g. after RMGR gave it a task and before it handed
    the task on)."""


@attrs.frozen(kw_only=True, eq=False)
class SlowNext:
    """Harness to a faulty thread: before your next request, wait for ``release``."""

    release: threading.Event
    limit: float
    """Seconds to wait at most (a bound, so a forgotten release cannot hang a test)."""


@attrs.frozen(kw_only=True)
class Heal:
    """Harness to a faulty thread: forget an armed fault that was not triggered."""


_FAULT = "_l4sim_fault"
_CALLS_LEFT = "_l4sim_calls_left"


def _die(self: L4Thread, doing: str) -> None:
    setattr(self, _CALLS_LEFT, 0)
    self._stop()  # pykka: stop now; queued requests fail with ActorDeadError
    raise ReceiverCrashed(f"{self.tid} crashed {doing}")


def _count_call(self: L4Thread, doing: str) -> None:
    left = getattr(self, _CALLS_LEFT, 0)
    if left:
        setattr(self, _CALLS_LEFT, left - 1)
        if left == 1:
            _die(self, doing)


def _faulty_call(
    self: L4Thread, dest: ThreadId, message: object, timeout: float | None = None
) -> Any:
    _count_call(self, f"calling {dest} with {type(message).__name__}")
    return super(type(self), self).call(dest, message, timeout)  # type: ignore[misc]


def _faulty_syscall(self: L4Thread, request: object, timeout: float | None = None) -> Any:
    _count_call(self, f"in system call {type(request).__name__}")
    return super(type(self), self).syscall(request, timeout)  # type: ignore[misc]


def _faulty_receive(self: L4Thread, message: Any) -> Any:
    """Arm, disarm or trigger a fault, else behave as the wrapped class (own thread)."""
    if isinstance(message, CrashNext | SlowNext):
        setattr(self, _FAULT, message)
        return None
    if isinstance(message, Heal):
        setattr(self, _FAULT, None)
        return None
    fault = getattr(self, _FAULT, None)
    if fault is not None and type(message) is Envelope:
        setattr(self, _FAULT, None)
        if isinstance(fault, CrashNext):
            if not fault.after_calls:
                _die(self, f"handling {type(message.message).__name__}")
            setattr(self, _CALLS_LEFT, fault.after_calls)
            try:
                return super(type(self), self).on_receive(message)
            finally:
                setattr(self, _CALLS_LEFT, 0)
        fault.release.wait(fault.limit)
    return super(type(self), self).on_receive(message)


_FAULTY: dict[type[L4Thread], type[L4Thread]] = {}


def faulty(cls: type[L4Thread]) -> type[L4Thread]:
    """A subclass of thread class ``cls`` that obeys ``CrashNext``, ``SlowNext`` and ``Heal``."""
    made = _FAULTY.get(cls)
    if made is None:
        made = _FAULTY[cls] = type(
            f"Faulty{cls.__name__}",
            (cls,),
            {"on_receive": _faulty_receive, "call": _faulty_call, "syscall": _faulty_syscall},
        )
    return made


def crash_now(ref: pykka.ActorRef[Any], timeout: float) -> None:
    """Stop a thread between requests (the kernel still believes its task is alive)."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.stop(block=True, timeout=timeout)
