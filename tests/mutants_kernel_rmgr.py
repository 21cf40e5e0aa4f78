"""Deliberately broken kernels and RMGRs, for showing that the checks can fail.

Importable as factories (``tests.mutants_kernel_rmgr:NoChiefCheck``) by the kit tests.
"""

from __future__ import annotations

from actors.kernel import KernelActor
from actors.rmgr import RmgrActor
from protocols import kernel
from protocols.errors import ErrorCode
from protocols.ids import ThreadId, task_id
from protocols.rmgr import FreeTask, RmgrReply


class NoChiefCheck(KernelActor):
    """A kernel that lets anyone create or delete any task: the chief check is gone."""

    def task_new(self, caller: int, req: kernel.TaskNew) -> kernel.TaskNewReply:
        if self._acceptable(req) and not req.pager.is_nil:
            self.chief[req.dest.task] = caller
        return super().task_new(caller, req)


class LenientFree(RmgrActor):
    """An RMGR whose free_task skips the owner check."""

    def free_task(self, sender: ThreadId, msg: FreeTask) -> RmgrReply:
        if not self._manages(msg.number):
            return RmgrReply(error=ErrorCode.EINVAL)
        if self._take_back(msg.number):
            return RmgrReply(
                error=ErrorCode.OK, task=task_id(msg.number, self.versions[msg.number])
            )
        return RmgrReply(error=ErrorCode.ENOTCHIEF)


def no_chief_check() -> type[KernelActor]:
    """A factory function (the kit accepts those too)."""
    return NoChiefCheck
