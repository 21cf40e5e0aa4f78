"""The IPC path (actors.thread): stamping, timeouts, typed IPC errors, the trace."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import ClassVar

import attrs
import pytest

from actors import EIP_CLIENT, L4Thread, Perform, System, boot, handles
from actors.images import factory
from protocols.errors import ErrorCode
from protocols.ids import RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.kernel import TaskNew
from protocols.rmgr import FreeTask, GetTask, RmgrTaskNew
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


@attrs.frozen(kw_only=True)
class Raise:
    """Test client to Bomb: raise this exception while handling the message."""

    kind: str


class Bomb(L4Thread):
    """A handler that raises whatever it is told to."""

    KINDS: ClassVar[dict[str, type[BaseException]]] = {
        "SystemExit": SystemExit,
        "KeyboardInterrupt": KeyboardInterrupt,
        "RuntimeError": RuntimeError,
    }

    @handles(Raise)
    def boom(self, sender: ThreadId, msg: Raise) -> None:
        raise self.KINDS[msg.kind]("boom")


@pytest.mark.parametrize("kind", sorted(Bomb.KINDS))
def test_a_handler_that_raises_anything_aborts_only_its_own_call(
    world: tuple[System, ThreadId, ThreadId], kind: str
) -> None:
    """SystemExit, KeyboardInterrupt and a plain exception in turn: the caller gets a typed
    EABORTED; the raising actor and every other actor still answer."""
    system, client, echo = world
    system.runtime.images[0x9100] = factory(Bomb)
    bomb = task_id(11, 1)
    made = system.perform(
        client,
        task_id(RMGR_TASK),
        RmgrTaskNew(dest=bomb, mcp_or_chief=10, eip=0x9100, pager=task_id(SIGMA0_TASK)),
    )
    assert made.error is ErrorCode.OK
    for _ in range(2):  # twice: the bomb itself survives its first exception
        reply = system.perform(client, bomb, Raise(kind=kind))
        assert isinstance(reply, IpcError) and reply.code is ErrorCode.EABORTED
    assert system.perform(client, echo, Ping()) == client
    before = system.snapshot()  # every server still answers its observer
    assert before.kernel.tasks[11].active and before.kernel.tasks[11].chief == RMGR_TASK


class Sneaky(int):
    """An int whose comparisons stop the interpreter: must never reach a handler."""

    def __eq__(self, other: object) -> bool:
        raise SystemExit("forged")

    def __lt__(self, other: object) -> bool:
        raise SystemExit("forged")

    __hash__ = int.__hash__


def _forged(message: object, field: str, value: object) -> object:
    object.__setattr__(message, field, value)
    return message


def _forged_id(**fields: object) -> ThreadId:
    tid = task_id(10)
    for name, value in fields.items():
        object.__setattr__(tid, name, value)
    return tid


@pytest.mark.parametrize(
    "forge",
    [
        lambda: _forged(GetTask(number=10), "number", Sneaky(10)),
        lambda: _forged(GetTask(number=10), "number", 2**40),
        lambda: _forged(GetTask(number=10), "number", True),
        lambda: _forged(FreeTask(number=10), "number", 10.0),
        lambda: _forged(RmgrTaskNew(dest=task_id(10), mcp_or_chief=1), "dest", _forged_id(task=-1)),
        lambda: _forged(
            RmgrTaskNew(dest=task_id(10), mcp_or_chief=1), "dest", _forged_id(task=5000)
        ),
        lambda: _forged(
            RmgrTaskNew(dest=task_id(10), mcp_or_chief=1), "dest", _forged_id(version=Sneaky(1))
        ),
        lambda: _forged(
            RmgrTaskNew(dest=task_id(10), mcp_or_chief=1), "dest", _forged_id(task=task_id(3))
        ),
    ],
    ids=[
        "int-subclass",
        "huge",
        "bool",
        "float",
        "negative-task",
        "task-5000",
        "sneaky-version",
        "id-in-id",
    ],
)
def test_forged_wire_values_are_refused_and_change_nothing(
    world: tuple[System, ThreadId, ThreadId], forge: Callable[[], object]
) -> None:
    system, client, echo = world
    before = system.snapshot()
    reply = system.perform(client, task_id(RMGR_TASK), forge())
    assert isinstance(reply, IpcError) and reply.code is ErrorCode.EMALFORMED
    assert system.snapshot() == before
    assert system.perform(client, echo, Ping()) == client


def test_a_forged_system_call_is_refused(world: tuple[System, ThreadId, ThreadId]) -> None:
    system, client, _ = world
    before = system.snapshot()
    forged = _forged(TaskNew(dest=task_id(12), mcp_or_new_chief=task_id(5)), "dest", Sneaky(3))
    reply = system.syscall(client, forged)
    assert isinstance(reply, IpcError) and reply.code is ErrorCode.EMALFORMED
    assert system.snapshot() == before
