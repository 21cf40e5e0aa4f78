"""The bench's own threads and messages: a peer that answers ``Ping`` with ``Pong`` and a
caller that makes IPC round trips in a loop (``l4sim bench``, tests/test_scale.py).

Measuring apparatus only: nothing of the modelled system uses them.
"""

from __future__ import annotations

import time
from typing import Any, Final

import attrs
import pykka

from actors.client import ClientThread
from actors.images import factory
from actors.system import BootConfig, System
from actors.thread import handles
from protocols.ids import ThreadId

__all__ = [
    "EIP_BENCH_CALLER",
    "EIP_BENCH_PEER",
    "CallLoop",
    "CallerThread",
    "PeerThread",
    "Ping",
    "Pong",
    "bench_system",
]

# -- the bench's own threads and messages --------------------------------------------

EIP_BENCH_PEER: Final = 0xBE00
"""A ``PeerThread``: answers ``Ping`` with ``Pong`` and performs what it is told."""
EIP_BENCH_CALLER: Final = 0xBE10
"""A ``CallerThread``: a client that also runs timed call loops (``CallLoop``)."""


@attrs.frozen(kw_only=True)
class Ping:
    """Any bench thread to a peer thread: answer me (the cheapest possible request)."""


@attrs.frozen(kw_only=True)
class Pong:
    """Peer thread to the caller of ``Ping``: here I am."""

    task: int


@attrs.frozen(kw_only=True)
class CallLoop:
    """Harness to a caller thread: call ``dest`` with ``message`` ``count`` times; time it."""

    dest: ThreadId
    message: object
    count: int


class PeerThread(ClientThread):
    """A scripted client that also answers ``Ping``: the partner of every bench call.

    The answer is built once, so a round trip measures the IPC path, not the handler
    (the raw baseline's receiver likewise returns an object it already has).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._pong = Pong(task=self.tid.task)

    @handles(Ping)
    def ping(self, sender: ThreadId, msg: Ping) -> Pong:
        """Answer a ping (runs on this thread)."""
        return self._pong


class CallerThread(PeerThread):
    """Runs ``CallLoop`` on its own thread and returns the nanoseconds the loop took."""

    def on_control(self, message: Any) -> Any:
        """Handle ``CallLoop`` from the harness (runs on this thread)."""
        if isinstance(message, CallLoop):
            call, dest, msg = self.call, message.dest, message.message
            start = time.perf_counter_ns()
            for _ in range(message.count):
                reply = call(dest, msg)
            elapsed = time.perf_counter_ns() - start
            assert message.count == 0 or type(reply) is Pong, f"bench call failed: {reply!r}"
            return elapsed
        return super().on_control(message)


class BareEcho(pykka.ThreadingActor):
    """A bare Pykka actor that returns what it is asked: the baseline's receiver."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        return message


class BareLoop(pykka.ThreadingActor):
    """A bare Pykka actor: asked ``n``, it asks the other ``n`` times; returns the ns taken."""

    use_daemon_thread = True

    def __init__(self, other: pykka.ActorRef[Any], timeout: float) -> None:
        super().__init__()
        self.other = other
        self.timeout = timeout

    def on_receive(self, message: Any) -> Any:
        assert type(message) is int
        ask, timeout, ping = self.other.ask, self.timeout, Ping()
        start = time.perf_counter_ns()
        for _ in range(message):
            ask(ping, timeout=timeout)
        return time.perf_counter_ns() - start


def bench_system(config: BootConfig) -> System:
    """Boot ``config`` with the bench images (``EIP_BENCH_PEER``, ``EIP_BENCH_CALLER``)."""
    system = System(config)
    system.runtime.images[EIP_BENCH_PEER] = factory(PeerThread)
    system.runtime.images[EIP_BENCH_CALLER] = factory(CallerThread)
    return system.start()
