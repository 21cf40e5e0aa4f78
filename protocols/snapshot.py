"""A read-only snapshot of the whole system, over which the invariants are stated."""

from __future__ import annotations

import attrs

from protocols.editions import DEFAULT_EDITION, Edition
from protocols.kernel import KernelState
from protocols.l4linux import LinuxState
from protocols.rmgr import RmgrState
from protocols.task_server import TsState

__all__ = ["SystemSnapshot"]


@attrs.frozen(kw_only=True)
class SystemSnapshot:
    """What every server knows at one moment: kernel, RMGR, task server, every L4Linux."""

    kernel: KernelState
    rmgr: RmgrState
    task_server: TsState | None = None
    """The task server's books (None when the system runs without one)."""
    linux: tuple[LinuxState, ...] = ()
    """Every live L4Linux server: its processes and its task cache."""
    edition: Edition = DEFAULT_EDITION
    """The rules the system runs by (the spec's steps read it)."""

    def tasks_of(self, client: int) -> tuple[int, ...]:
        """Task numbers ``client`` holds: at RMGR, through the task server, or in its cache."""
        held = {n for n, owner in enumerate(self.rmgr.owners) if owner == client and n != client}
        if self.task_server is not None:
            held |= set(self.task_server.owned_by(client))
        for lx in self.linux:
            if lx.me == client:
                held |= {t.task for t in lx.cache}
        return tuple(sorted(held))
