"""A read-only snapshot of the whole system, over which the invariants are stated."""

from __future__ import annotations

import attrs

from protocols.kernel import KernelState
from protocols.rmgr import RmgrState

__all__ = ["SystemSnapshot"]


@attrs.frozen(kw_only=True)
class SystemSnapshot:
    """What every server knows at one moment: the kernel's task table and RMGR's books."""

    kernel: KernelState
    rmgr: RmgrState
