"""Error codes: IPC errors raised by the IPC path and error codes of the servers."""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "IPC_ERRORS"]


class ErrorCode(enum.Enum):
    """One enum for every error a caller can get back."""

    OK = "ok"
    # IPC errors (the IPC path itself, no server involved)
    ENOT_EXISTENT = "destination does not exist"
    ETIMEOUT = "timeout"
    EUNKNOWN_MESSAGE = "receiver does not speak this message"
    EABORTED = "receiver failed while handling the message"
    EMALFORMED = "message fields have the wrong types"
    # server errors
    ENOTASK = "no such task"
    ENOTOWNER = "caller is not the owner"
    EUSED = "task in use"
    EINVAL = "invalid argument"
    ENOMEM = "no free task"
    EQUOTA = "quota exceeded"
    ENOTCHIEF = "caller is not the chief"
    # task server (simple_ts) helper: codes its sources return that none above names
    ENOTFOUND = "no such task number"
    """``-L4_ENOTFOUND`` of simple_ts (out-of-range task number, nothing to free)."""
    EUNKNOWN = "unknown error"
    """``-L4_EUNKNOWN``: simple_ts's answer for a kill it cannot carry out."""

    def __repr__(self) -> str:
        return f"ErrorCode.{self.name}"


IPC_ERRORS = frozenset(
    {
        ErrorCode.ENOT_EXISTENT,
        ErrorCode.ETIMEOUT,
        ErrorCode.EUNKNOWN_MESSAGE,
        ErrorCode.EABORTED,
        ErrorCode.EMALFORMED,
    }
)
"""The codes the IPC path produces; every other non-OK code comes from a server."""
