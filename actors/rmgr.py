"""The RMGR actor: task owners, quotas, and task creation on a client's behalf.

A mutable implementation of ``protocols.rmgr`` (REFERENCE.md section 3); every change of
a task's chief goes through RMGR's own ``l4_task_new`` system call.
"""

from __future__ import annotations

from typing import Any

from actors import working_sets
from actors.faults import ExitEvent
from actors.thread import Envelope, L4Thread, handles, wellformed
from protocols import kernel
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, KERNEL_TASK, NIL_ID, RMGR_TASK, SIGMA0_TASK, ThreadId
from protocols.ipc import IpcError
from protocols.rmgr import (
    BOOT_MODULE_VERSION,
    FREE,
    AllocateChief,
    Free2,
    FreeClient,
    FreeTask,
    FreeTaskAll,
    GetTask,
    RmgrConfig,
    RmgrReply,
    RmgrState,
    RmgrTaskNew,
    StartModules,
    TaskCount,
)

__all__ = ["RmgrActor", "RmgrConfig", "StartModules"]


class RmgrActor(L4Thread):
    """RMGR's server thread (task 4, lthread 0)."""

    WORKING_SETS = working_sets.RMGR
    DISPATCH_WORK = "rmgr.request"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.owners: list[int] = []
        self.versions: list[int] = []
        self.quota = 0
        self.trusted: frozenset[int] = frozenset()
        self.handed: set[int] = set()

    def on_control(self, message: Any) -> Any:
        """Boot configuration and exit events from the harness (runs on RMGR's thread)."""
        if isinstance(message, RmgrConfig):
            n = message.task_count
            self.owners = [KERNEL_TASK if i < FIRST_USER_TASK else FREE for i in range(n)]
            self.versions = [0] * n
            self.quota = n if message.quota is None else message.quota
            self.trusted = message.trusted
            return None
        if isinstance(message, StartModules):
            return tuple(self._start_module(i, eip) for i, eip in enumerate(message.eips))
        if isinstance(message, ExitEvent):
            # A client RMGR started died: as if it had left with free_client itself.
            return self.free_client(message.task, FreeClient(owner=message.task.task))
        return super().on_control(message)

    def _start_module(self, index: int, eip: int) -> ThreadId:
        number = FIRST_USER_TASK + index
        dest = ThreadId(number, 0, BOOT_MODULE_VERSION)
        reply = self._task_new(dest, kernel.MAX_MCP, eip=eip, pager=ThreadId(SIGMA0_TASK))
        assert not reply.is_nil, f"RMGR could not start boot module {number}"
        self.owners[number] = RMGR_TASK
        self.versions[number] = BOOT_MODULE_VERSION
        return reply

    def _task_new(
        self,
        dest: ThreadId,
        other: int | ThreadId,
        *,
        eip: int = 0,
        esp: int = 0,
        pager: ThreadId = NIL_ID,
    ) -> ThreadId:
        reply = self.syscall(
            kernel.TaskNew(dest=dest, mcp_or_new_chief=other, esp=esp, eip=eip, pager=pager)
        )
        if isinstance(reply, IpcError):
            return NIL_ID
        assert isinstance(reply, kernel.TaskNewReply)
        return reply.task

    def on_receive(self, message: Any) -> Any:
        """Refuse a client's request on its own task number (see ``protocols.rmgr``)."""
        if type(message) is Envelope and wellformed(message.message):
            msg = message.message
            own: int | None = None
            if isinstance(msg, GetTask | FreeTask):
                own = msg.number
            elif isinstance(msg, RmgrTaskNew):
                own = msg.dest.task
            elif isinstance(msg, Free2):
                own = msg.task.task
            if own is not None and own == message.sender.task:
                return RmgrReply(error=ErrorCode.EINVAL)
        return super().on_receive(message)

    def _manages(self, number: int) -> bool:
        return FIRST_USER_TASK <= number < len(self.owners)

    def _count(self, owner: int) -> int:
        return sum(1 for o in self.owners if o == owner)

    @handles(GetTask)
    def get_task(self, sender: ThreadId, msg: GetTask) -> RmgrReply:
        """Reserve a task for the sender and make the sender its (inactive) chief."""
        n, caller = msg.number, sender.task
        if not self._manages(n):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.owners[n] != FREE and self.owners[n] != caller:
            return RmgrReply(error=ErrorCode.EUSED)
        if self.owners[n] == FREE and self._count(caller) >= self.quota:
            return RmgrReply(error=ErrorCode.EQUOTA)
        got = self._task_new(ThreadId(n, 0, self.versions[n]), ThreadId(caller))
        if got.is_nil:
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        self.owners[n] = caller
        return RmgrReply(error=ErrorCode.OK, task=got)

    @handles(FreeTask)
    def free_task(self, sender: ThreadId, msg: FreeTask) -> RmgrReply:
        """Take a task back from its owner; RMGR must be its chief again."""
        n = msg.number
        if not self._manages(n):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.owners[n] == FREE:
            return RmgrReply(error=ErrorCode.OK, task=ThreadId(n, 0, self.versions[n]))
        if self.owners[n] != sender.task:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if not self._take_back(n):
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        return RmgrReply(error=ErrorCode.OK, task=ThreadId(n, 0, self.versions[n]))

    def _take_back(self, n: int) -> bool:
        got = self._task_new(ThreadId(n, 0, self.versions[n]), ThreadId(RMGR_TASK))
        if got.is_nil:
            return False
        self.owners[n] = FREE
        self.handed.discard(n)
        return True

    @handles(FreeTaskAll)
    def free_task_all(self, sender: ThreadId, msg: FreeTaskAll) -> RmgrReply:
        """Free every task of ``msg.owner`` (the owner itself or a trusted client)."""
        owner = msg.owner
        if owner in (FREE, KERNEL_TASK, RMGR_TASK) or not 0 <= owner < len(self.owners):
            return RmgrReply(error=ErrorCode.EINVAL)
        if sender.task != owner and sender.task not in self.trusted:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        held = [n for n, o in enumerate(self.owners) if o == owner and n != owner]
        freed = sum(1 for n in held if self._take_back(n))
        return RmgrReply(error=ErrorCode.OK, count=freed)

    @handles(RmgrTaskNew)
    def task_new(self, sender: ThreadId, msg: RmgrTaskNew) -> RmgrReply:
        """Create (pager) or delete (nil pager) a task for the sender; RMGR stays chief."""
        dest, caller = msg.dest, sender.task
        if dest.is_nil or dest.lthread != 0 or not self._manages(dest.task):
            return RmgrReply(error=ErrorCode.EINVAL)
        owner = self.owners[dest.task]
        if owner != FREE and owner != caller:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if owner == FREE and self._count(caller) >= self.quota:
            return RmgrReply(error=ErrorCode.EQUOTA)
        if msg.pager.is_nil:
            other: int | ThreadId = ThreadId(RMGR_TASK)
        elif type(msg.mcp_or_chief) is int:
            other = msg.mcp_or_chief
        else:
            return RmgrReply(error=ErrorCode.EINVAL)
        got = self._task_new(dest, other, eip=msg.eip, esp=msg.esp, pager=msg.pager)
        if got.is_nil:
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        self.owners[dest.task] = caller
        self.versions[dest.task] = dest.version
        return RmgrReply(error=ErrorCode.OK, task=got)

    @handles(AllocateChief)
    def allocate_chief(self, sender: ThreadId, msg: AllocateChief) -> RmgrReply:
        """``merged``: hand the sender the lowest free task, new version, as its chief."""
        caller = sender.task
        if self._count(caller) >= self.quota:
            return RmgrReply(error=ErrorCode.EQUOTA)
        for n in range(FIRST_USER_TASK, len(self.owners)):
            if self.owners[n] != FREE:
                continue
            dest = ThreadId(n, 0, self.versions[n]).next_version()
            got = self._task_new(dest, ThreadId(caller))
            if got.is_nil:
                continue
            self.owners[n] = caller
            self.versions[n] = dest.version
            self.handed.add(n)
            return RmgrReply(error=ErrorCode.OK, task=got)
        return RmgrReply(error=ErrorCode.ENOMEM)

    @handles(Free2)
    def free2(self, sender: ThreadId, msg: Free2) -> RmgrReply:
        """``merged``: take a task back from its owner, who handed the chief right back."""
        n = msg.task.task
        if msg.task.lthread != 0 or not self._manages(n):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.owners[n] == FREE:
            return RmgrReply(error=ErrorCode.ENOTASK)
        if self.owners[n] != sender.task:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        old = self.versions[n]
        self.versions[n] = max(old, msg.task.version)
        if not self._take_back(n):
            self.versions[n] = old
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        return RmgrReply(error=ErrorCode.OK, task=ThreadId(n, 0, self.versions[n]))

    @handles(TaskCount)
    def task_count(self, sender: ThreadId, msg: TaskCount) -> RmgrReply:
        """How many task numbers RMGR's table has (changes nothing)."""
        return RmgrReply(error=ErrorCode.OK, count=len(self.owners))

    @handles(FreeClient)
    def free_client(self, sender: ThreadId, msg: FreeClient) -> RmgrReply:
        """Delete a client RMGR started (its clan passes to RMGR) and free all it held."""
        owner = msg.owner
        if not self._manages(owner) or self.owners[owner] != RMGR_TASK:
            return RmgrReply(error=ErrorCode.EINVAL)
        if sender.task not in self.trusted and (sender.task != owner or self.trusted):
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if not self._take_back(owner):
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        held = [n for n, o in enumerate(self.owners) if o == owner]
        freed = 1 + sum(1 for n in held if self._take_back(n))
        return RmgrReply(error=ErrorCode.OK, count=freed)

    def snapshot(self) -> RmgrState:
        """RMGR's books as a ``protocols.rmgr.RmgrState`` value."""
        return RmgrState(
            owners=tuple(self.owners),
            versions=tuple(self.versions),
            quota=self.quota,
            trusted=self.trusted,
            handed=frozenset(self.handed),
        )
