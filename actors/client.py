"""A scripted client thread: it makes the calls a test or scenario tells it to make.

The harness (not an L4 thread) sends it ``Perform`` controls; the client then issues the
call itself, so the runtime stamps the client's own id on it.  This is how tests let
arbitrary tasks (chiefs, non-chiefs, clients of RMGR) act.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.thread import L4Thread
from protocols.ids import NIL_ID, ThreadId

__all__ = ["KERNEL", "ClientThread", "Perform"]

KERNEL = NIL_ID
"""``Perform.dest`` value meaning "trap into the kernel" rather than IPC to a thread."""


@attrs.frozen(kw_only=True)
class Perform:
    """Harness to a client: send ``message`` to ``dest`` (``KERNEL`` for a system call)."""

    dest: ThreadId
    message: object
    timeout: float | None = None


class ClientThread(L4Thread):
    """Runs on its own thread; performs the calls it is told to and returns the replies."""

    def on_control(self, message: Any) -> Any:
        """Handle ``Perform`` from the harness (runs on this client's thread)."""
        if isinstance(message, Perform):
            if message.dest == KERNEL:
                return self.syscall(message.message, timeout=message.timeout)
            return self.call(message.dest, message.message, timeout=message.timeout)
        return super().on_control(message)
