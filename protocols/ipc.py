"""What the IPC path itself can answer: a typed IPC error instead of a reply."""

from __future__ import annotations

import attrs

from protocols.errors import IPC_ERRORS, ErrorCode
from protocols.ids import ThreadId

__all__ = ["IpcError"]


def _ipc_code(_inst: object, _attr: attrs.Attribute[ErrorCode], value: ErrorCode) -> None:
    if value not in IPC_ERRORS:
        raise ValueError(f"{value!r} is not an IPC error code")


@attrs.frozen(kw_only=True)
class IpcError:
    """The IPC path to a caller: the call did not reach a receiver, or got no reply."""

    code: ErrorCode = attrs.field(validator=_ipc_code)
    dest: ThreadId
    request: str
    """Type name of the request that failed."""

    @property
    def error(self) -> ErrorCode:
        """Same as ``code``: lets callers test ``reply.error`` on any reply."""
        return self.code
