"""A Linux user process: a thread whose pager is its L4Linux server.

Its Linux system calls are IPC calls to the pager (the seed: two context
switches per call).  The harness tells it which call to make with ``LinuxCall``, as it
tells a ``ClientThread`` with ``Perform`` (which a process also understands, so a test
can make a process misbehave).
"""

from __future__ import annotations

from typing import Any

import attrs

from actors import working_sets
from actors.client import ClientThread
from protocols.linux import LinuxRequest

__all__ = ["LinuxCall", "ProcessThread"]


@attrs.frozen(kw_only=True)
class LinuxCall:
    """Harness to a process: make the Linux system call ``request`` (IPC to your pager)."""

    request: LinuxRequest
    timeout: float | None = None


class ProcessThread(ClientThread):
    """lthread 0 of a Linux process's task; runs on its own actor thread."""

    WORKING_SETS = working_sets.APP

    def on_control(self, message: Any) -> Any:
        """Handle ``LinuxCall`` from the harness (runs on this process's thread)."""
        if isinstance(message, LinuxCall):
            return self.call(self.pager, message.request, timeout=message.timeout)
        return super().on_control(message)
