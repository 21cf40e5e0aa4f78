"""Deliberately broken kernels and RMGRs, for showing that the checks can fail.

Importable as factories (``tests.mutants_kernel_rmgr:NoChiefCheck``) by the kit tests.
"""

from __future__ import annotations

from actors.kernel import KernelActor
from actors.rmgr import RmgrActor
from protocols import kernel
from protocols.errors import ErrorCode  # noqa: F401  (named by the kit tests)
from protocols.ids import ThreadId
from protocols.rmgr import FreeTask, RmgrReply


class NoChiefCheck(KernelActor):
    """A kernel that lets anyone create or delete any task: the chief check is gone."""

    def task_new(self, caller: int, req: kernel.TaskNew) -> kernel.TaskNewReply:
        if self._acceptable(req) and not req.pager.is_nil:
            self.chief[req.dest.task] = caller
        return super().task_new(caller, req)


class LenientFree(RmgrActor):
    """An RMGR whose free_task skips the owner check (task.c@e91a37df:52-53)."""

    def free_task(self, sender: ThreadId, msg: FreeTask) -> RmgrReply:
        if self._in_table(msg.number) and self.task[msg.number] > 1:
            # act as if the holder itself had asked
            holder = ThreadId(self.task[msg.number], sender.lthread, sender.version)
            return super().free_task(holder, msg)
        return super().free_task(sender, msg)


def no_chief_check() -> type[KernelActor]:
    """A factory function (the kit accepts those too)."""
    return NoChiefCheck
