"""The contract of l4sim: ids, error codes, typed messages, reference specs, invariants.

Pure Python: this package imports no pykka and starts no thread.
"""

from __future__ import annotations

from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, SIGMA0_TASK, TASK_COUNT, ThreadId, task_id
from protocols.ipc import IpcError

__all__ = [
    "NIL_ID",
    "RMGR_TASK",
    "SIGMA0_TASK",
    "TASK_COUNT",
    "ErrorCode",
    "IpcError",
    "ThreadId",
    "task_id",
]
