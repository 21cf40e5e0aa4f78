"""The IPC path (actors.thread): stamping, timeouts, typed IPC errors, the trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import attrs
import pytest

from actors import EIP_CLIENT, L4Thread, Perform, System, boot, handles
from actors.images import factory
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.rmgr import RmgrTaskNew
from protocols.trace import IpcCall, IpcFail, IpcReply, SpaceSwitch

EIP_ECHO = 0x9000
RELEASE = threading.Event()


@attrs.frozen(kw_only=True)
class Ping:
    """Test client to Echo: who am I?"""

    claimed_sender: ThreadId | None = None


@attrs.frozen(kw_only=True)
class Block:
    """Test client to Echo: wait until the test releases you."""


@attrs.frozen(kw_only=True)
class Unknown:
    """A message Echo does not speak."""


class Echo(L4Thread):
    """Answers with the sender id the runtime stamped."""

    @handles(Ping)
    def ping(self, sender: ThreadId, msg: Ping) -> ThreadId:
        return sender

    @handles(Block)
    def block(self, sender: ThreadId, msg: Block) -> str:
        RELEASE.wait(timeout=10)
        return "released"


@pytest.fixture
def world() -> Iterator[tuple[System, ThreadId, ThreadId]]:
    """A system with a client (task 5) and an Echo task (10) created by RMGR."""
    with boot(task_count=16, modules=(EIP_CLIENT,), timeout=5.0) as system:
        system.runtime.images[EIP_ECHO] = factory(Echo)
        (client,) = system.modules
        echo = task_id(10, 1)
        reply = system.perform(
            client,
            task_id(RMGR_TASK),
            RmgrTaskNew(dest=echo, mcp_or_chief=10, eip=EIP_ECHO, pager=task_id(SIGMA0_TASK)),
        )
        assert reply.error is ErrorCode.OK
        yield system, client, echo


def test_the_runtime_stamps_the_true_sender(world: tuple[System, ThreadId, ThreadId]) -> None:
    system, client, echo = world
    # whatever the message claims, the receiver learns who really sent it
    assert system.perform(client, echo, Ping(claimed_sender=task_id(RMGR_TASK))) == client


def test_a_message_the_receiver_does_not_speak_is_a_typed_error(
    world: tuple[System, ThreadId, ThreadId],
) -> None:
    system, client, echo = world
    reply = system.perform(client, echo, Unknown())
    assert reply == IpcError(code=ErrorCode.EUNKNOWN_MESSAGE, dest=echo, request="Unknown")


@pytest.mark.parametrize("dest", [task_id(11, 0), task_id(10, 2), ThreadId(10, 1, 1)])
def test_a_nonexistent_destination_is_a_typed_error(
    world: tuple[System, ThreadId, ThreadId], dest: ThreadId
) -> None:
    system, client, _ = world
    reply = system.perform(client, dest, Ping())
    assert reply == IpcError(code=ErrorCode.ENOT_EXISTENT, dest=dest, request="Ping")


def test_a_dead_destination_is_a_typed_error(world: tuple[System, ThreadId, ThreadId]) -> None:
    system, client, echo = world
    system.ref(echo).stop()  # the thread crashes; the kernel still lists it
    reply = system.perform(client, echo, Ping())
    assert isinstance(reply, IpcError) and reply.code is ErrorCode.ENOT_EXISTENT


def test_a_slow_receiver_makes_the_call_time_out(world: tuple[System, ThreadId, ThreadId]) -> None:
    system, client, echo = world
    RELEASE.clear()
    try:
        reply = system.ref(client).ask(Perform(dest=echo, message=Block(), timeout=0.05), timeout=5)
    finally:
        RELEASE.set()
    assert reply == IpcError(code=ErrorCode.ETIMEOUT, dest=echo, request="Block")
    # the receiver survives and answers the next call
    assert system.perform(client, echo, Ping()) == client


def test_every_call_and_reply_is_in_the_trace(world: tuple[System, ThreadId, ThreadId]) -> None:
    system, client, echo = world
    mark = system.trace.mark()
    system.perform(client, echo, Ping())
    system.perform(client, task_id(12), Ping())
    events = system.trace.since(mark)
    assert [type(e) for e in events] == [
        IpcCall,
        SpaceSwitch,
        IpcReply,
        SpaceSwitch,
        IpcCall,
        IpcFail,
    ]
    call, to, reply, back, _call2, fail = events
    assert (call.src, call.dst, call.message) == (client, echo, Ping())  # type: ignore[union-attr]
    assert (to.src, to.dst, back.src, back.dst) == (5, 10, 10, 5)  # type: ignore[union-attr]
    assert (reply.src, reply.dst, reply.message) == (echo, client, client)  # type: ignore[union-attr]
    assert fail.code is ErrorCode.ENOT_EXISTENT  # type: ignore[union-attr]
    assert [e.seq for e in events] == list(range(mark, mark + 6))


def test_trace_can_be_switched_off() -> None:
    with boot(task_count=8, modules=(EIP_CLIENT,), trace=False) as system:
        system.perform(system.modules[0], task_id(RMGR_TASK), Unknown())
        assert len(system.trace) == 0


class LoudEcho(Echo):
    """Overrides a handler without re-declaring what it handles."""

    def ping(self, sender: ThreadId, msg: Ping) -> ThreadId:
        return sender.next_version()


def test_a_subclass_overriding_a_handler_replaces_it() -> None:
    assert LoudEcho._handlers[Ping] is LoudEcho.ping
    assert Echo._handlers[Ping] is Echo.ping
    assert LoudEcho._handlers[Block] is Echo.block
