"""The RMGR actor: the roottask's task calls, call by call as rmgr.c makes them.

``osfree-project/l4env l4/pkg/roottask/server/src/rmgr.c@e91a37df:100-353`` with
``task_alloc``/``task_free`` (task.c@e91a37df:36-61) and the task quotas
(quota.c@e91a37df:230-269).  A mutable implementation of ``protocols.rmgr``; every
change of a task's chief goes through RMGR's own ``l4_task_new`` system call.  The
what-if calls (``AllocateChief``, ``Free2``, ``FreeClient``) have no source.
"""

from __future__ import annotations

from typing import Any

from actors import working_sets
from actors.faults import ExitEvent
from actors.thread import Envelope, L4Thread, handles, wellformed
from protocols import kernel
from protocols.editions import Fix
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, NIL_ID, RMGR_TASK, SIGMA0_TASK, ThreadId
from protocols.ipc import IpcError
from protocols.rmgr import (
    BOOT_MODULE_VERSION,
    FREE,
    RESERVED,
    UNLIMITED,
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
    SetPrio,
    SetTaskId,
    StartModules,
    TaskCount,
)

__all__ = ["RmgrActor", "RmgrConfig", "StartModules"]

O_FREE = 0
O_RESERVED = 1


class RmgrActor(L4Thread):
    """RMGR's server thread (task 4, lthread 0)."""

    WORKING_SETS = working_sets.RMGR
    DISPATCH_WORK = "rmgr.request"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.task: list[int] = []
        """``__task[]``: one byte per task number (O_FREE, O_RESERVED or the holder)."""
        self.versions: list[int] = []
        self.quota = 0
        self.current = [0] * 256
        self.reset: set[int] = set()
        self.trusted: frozenset[int] = frozenset()
        self.handed: set[int] = set()

    def on_control(self, message: Any) -> Any:
        """Boot configuration and exit events from the harness (runs on RMGR's thread)."""
        if isinstance(message, RmgrConfig):
            n = message.task_count
            self.task = [O_RESERVED if i < FIRST_USER_TASK else O_FREE for i in range(n)]
            self.versions = [0] * n
            self.quota = UNLIMITED if message.quota is None else message.quota
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
        self.task[number] = RMGR_TASK  # task_alloc(task_no, TASKNO_ROOT, 0)
        self.current[RMGR_TASK] += 1
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
        """What-if calls on the caller's own number are refused (``protocols.rmgr_whatifs``)."""
        if type(message) is Envelope and wellformed(message.message):
            msg = message.message
            if isinstance(msg, Free2) and msg.task.task == message.sender.task:
                return RmgrReply(error=ErrorCode.EINVAL)
        return super().on_receive(message)

    # -- task.c and quota.c --------------------------------------------------------------

    def task_alloc(self, taskno: int, owner: int) -> ErrorCode:
        """``task_alloc(taskno, owner, 1)``: OK, or why the number cannot be reserved."""
        owner &= 0xFF
        if self.task[taskno] == owner:
            return ErrorCode.OK
        if self.task[taskno] != O_FREE:
            return ErrorCode.EUSED
        limit = 0 if owner in self.reset else self.quota
        if not self.current[owner] < limit:
            return ErrorCode.EQUOTA
        self.current[owner] += 1
        self.task[taskno] = owner
        return ErrorCode.OK

    def task_free(self, taskno: int, owner: int) -> bool:
        """``task_free``: release if free or the owner's; the quota count stays."""
        owner &= 0xFF
        if self.task[taskno] != owner and self.task[taskno] != O_FREE:
            return False
        self.task[taskno] = O_FREE
        return True

    def _log_mcp(self, task: int) -> int:
        return 0 if task & 0xFF in self.reset else kernel.MAX_MCP

    def _in_table(self, number: int) -> bool:
        return 0 <= number < len(self.task)

    # -- rmgr.c ----------------------------------------------------------------------------

    @handles(GetTask)
    def get_task(self, sender: ThreadId, msg: GetTask) -> RmgrReply:
        """Reserve ``num`` for the sender, then hand it the chief right (rmgr.c:105-135)."""
        num = msg.number
        if not self._in_table(num):
            return RmgrReply(error=ErrorCode.EINVAL)
        held = self.task[num] == sender.task & 0xFF
        error = self.task_alloc(num, sender.task)
        if error is not ErrorCode.OK:
            return RmgrReply(error=error)
        n = ThreadId(num, sender.lthread, sender.version)
        n = self._task_new(n, sender)
        if n.is_nil:
            if not (held and self.edition.has(Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER)):
                self.task_free(num, sender.task)
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        return RmgrReply(error=ErrorCode.OK, task=ThreadId(num, 0, self.versions[num]))

    @handles(FreeTask)
    def free_task(self, sender: ThreadId, msg: FreeTask) -> RmgrReply:
        """Release ``num`` in the books only (rmgr.c:289-306)."""
        num = msg.number
        if not self._in_table(num):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.task[num] not in (O_FREE, sender.task & 0xFF):
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if self.edition.has(Fix.FREE_TASK_LEAVES_CHIEF) and self.task[num] != O_FREE:
            n = ThreadId(num, sender.lthread, sender.version)
            if self._task_new(n, ThreadId(RMGR_TASK)).is_nil:
                return RmgrReply(error=ErrorCode.ENOTCHIEF)
        self.task_free(num, sender.task)
        if self.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
            self._free_held(num, deep=True)  # hardened: what the number held comes back
        return RmgrReply(error=ErrorCode.OK)

    @handles(FreeTaskAll)
    def free_task_all(self, sender: ThreadId, msg: FreeTaskAll) -> RmgrReply:
        """Delete and release every number held by ``owner`` (rmgr.c:255-287)."""
        owner = msg.owner
        if self.edition.has(Fix.FREE_TASK_ALL_BY_ANYONE) and sender.task not in (
            owner,
            *self.trusted,
        ):
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        freed = 0
        for i in range(len(self.task)):
            if self.task[i] == owner:
                n = ThreadId(i, sender.lthread, sender.version)
                if self._task_new(n, ThreadId(RMGR_TASK)).is_nil:
                    return RmgrReply(error=ErrorCode.ENOTCHIEF, count=freed)
                self.task_free(i, owner)
                freed += 1
        return RmgrReply(error=ErrorCode.OK, count=freed)

    @handles(RmgrTaskNew)
    def task_new(self, sender: ThreadId, msg: RmgrTaskNew) -> RmgrReply:
        """Create ``dest`` for the sender; RMGR is its chief (rmgr.c:196-253)."""
        task = msg.dest.task
        if msg.dest.is_nil or not self._in_table(task) or msg.pager.is_nil:
            return RmgrReply(error=ErrorCode.EINVAL)
        if type(msg.mcp_or_chief) is not int or not 0 <= msg.mcp_or_chief <= kernel.MAX_MCP:
            return RmgrReply(error=ErrorCode.EINVAL)
        held = self.task[task] == sender.task & 0xFF
        error = self.task_alloc(task, sender.task)
        if error is not ErrorCode.OK:
            return RmgrReply(error=error)
        mcp = min(msg.mcp_or_chief, self._log_mcp(sender.task))
        n = self._task_new(msg.dest, mcp, eip=msg.eip, esp=msg.esp, pager=msg.pager)
        if n.is_nil:
            if not (held and self.edition.has(Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER)):
                self.task_free(task, sender.task)
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        self.reset.add(task & 0xFF)  # quota_reset(task)
        self.versions[task] = msg.dest.version
        return RmgrReply(error=ErrorCode.OK, task=n)

    @handles(SetTaskId)
    def set_task_id(self, sender: ThreadId, msg: SetTaskId) -> RmgrReply:
        """Copy the configured quota to ``tid`` if the sender holds it (rmgr.c:333-353)."""
        number = msg.task.task
        if not self._in_table(number):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.task[number] != sender.task:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if number < 256:
            self.reset.discard(number)
            self.current[number] = 0
        return RmgrReply(error=ErrorCode.OK)

    @handles(SetPrio)
    def set_prio(self, sender: ThreadId, msg: SetPrio) -> RmgrReply:
        """Read tid's sched params, check the sender's log_mcp, set prio (rmgr.c:137-163)."""
        old = self.syscall(kernel.ThreadSchedule(dest=msg.task))
        if not isinstance(old, kernel.ThreadScheduleReply) or old.prio < 0:
            return RmgrReply(error=ErrorCode.ENOTASK)
        if self._log_mcp(sender.task) < msg.prio:
            return RmgrReply(error=ErrorCode.EINVAL)
        self.syscall(kernel.ThreadSchedule(dest=msg.task, prio=msg.prio))
        return RmgrReply(error=ErrorCode.OK)

    @handles(TaskCount)
    def task_count(self, sender: ThreadId, msg: TaskCount) -> RmgrReply:
        """How many task numbers RMGR's table has (changes nothing)."""
        return RmgrReply(error=ErrorCode.OK, count=len(self.task))

    # -- what-ifs (no source) ------------------------------------------------------------

    def _manages(self, number: int) -> bool:
        return FIRST_USER_TASK <= number < len(self.task)

    def _held(self, owner: int) -> list[int]:
        return [n for n, o in enumerate(self.task) if o == owner]

    def _take_back(self, n: int) -> bool:
        got = self._task_new(ThreadId(n, 0, self.versions[n]), ThreadId(RMGR_TASK))
        if got.is_nil:
            return False
        self.task[n] = O_FREE
        self.handed.discard(n)
        return True

    @handles(AllocateChief)
    def allocate_chief(self, sender: ThreadId, msg: AllocateChief) -> RmgrReply:
        """What-if (``merged``): the lowest free task, new version, the sender its chief."""
        caller = sender.task
        if len(self._held(caller)) >= self.quota:
            return RmgrReply(error=ErrorCode.EQUOTA)
        for n in range(FIRST_USER_TASK, len(self.task)):
            if self.task[n] != O_FREE:
                continue
            dest = ThreadId(n, 0, self.versions[n]).next_version()
            got = self._task_new(dest, ThreadId(caller))
            if got.is_nil:
                continue
            self.task[n] = caller
            self.versions[n] = dest.version
            self.handed.add(n)
            return RmgrReply(error=ErrorCode.OK, task=got)
        return RmgrReply(error=ErrorCode.ENOMEM)

    @handles(Free2)
    def free2(self, sender: ThreadId, msg: Free2) -> RmgrReply:
        """What-if (``merged``): take a task back; the owner handed the chief right back."""
        n = msg.task.task
        if msg.task.lthread != 0 or not self._manages(n):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self.task[n] == O_FREE:
            return RmgrReply(error=ErrorCode.ENOTASK)
        if self.task[n] != sender.task:
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        old = self.versions[n]
        self.versions[n] = max(old, msg.task.version)
        if not self._take_back(n):
            self.versions[n] = old
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        if self.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK):
            self._free_held(n, deep=True)
        return RmgrReply(error=ErrorCode.OK, task=ThreadId(n, 0, self.versions[n]))

    def _free_held(self, owner: int, *, deep: bool) -> int:
        """Free what ``owner`` holds (``deep``: and what those held, depth first)."""
        freed = 0
        stack = [owner]
        tried: set[int] = set()
        while stack:
            for n in self._held(stack.pop()):
                ok = self._take_back(n)
                freed += ok
                if ok and deep:
                    stack.append(n)
                elif deep:
                    self._disown(n)
            if deep and not stack:
                # then each orphan once: held by a user number free at RMGR now, or disowned
                disowned = self.edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD)
                orphan = next(
                    (
                        n
                        for n, o in enumerate(self.task)
                        if n not in tried
                        and (
                            (FIRST_USER_TASK <= o < len(self.task) and self.task[o] == O_FREE)
                            or (disowned and o == RMGR_TASK and n in self.handed)
                        )
                    ),
                    None,
                )
                if orphan is not None:
                    tried.add(orphan)
                    ok = self._take_back(orphan)
                    freed += ok
                    if ok:
                        stack.append(orphan)
                    else:
                        self._disown(orphan)
        return freed

    def _disown(self, n: int) -> None:
        """hardened (``HANDED_ON_TASK_OWNED_BY_THE_DEAD``): a handed-out number RMGR could
        not take back (a live task holds its chief right) is held by RMGR, not the dead."""
        if self.edition.has(Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD) and n in self.handed:
            self.task[n] = RMGR_TASK

    @handles(FreeClient)
    def free_client(self, sender: ThreadId, msg: FreeClient) -> RmgrReply:
        """What-if: delete a client RMGR started (its clan passes to RMGR), free its tasks."""
        owner = msg.owner
        if not self._manages(owner) or self.task[owner] != RMGR_TASK:
            return RmgrReply(error=ErrorCode.EINVAL)
        if sender.task not in self.trusted and (sender.task != owner or self.trusted):
            return RmgrReply(error=ErrorCode.ENOTOWNER)
        if not self._take_back(owner):
            return RmgrReply(error=ErrorCode.ENOTCHIEF)
        deep = self.edition.has(Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK)
        return RmgrReply(error=ErrorCode.OK, count=1 + self._free_held(owner, deep=deep))

    def snapshot(self) -> RmgrState:
        """RMGR's books as a ``protocols.rmgr.RmgrState`` value."""
        value = {O_FREE: FREE, O_RESERVED: RESERVED}
        return RmgrState(
            owners=tuple(value.get(o, o) for o in self.task),
            versions=tuple(self.versions),
            quota=self.quota,
            trusted=self.trusted,
            handed=frozenset(self.handed),
            used=tuple(self.current),
            reset=frozenset(self.reset),
        )
