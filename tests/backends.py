"""Two ways to run the kernel+RMGR rules: the pure spec and the actor system.

Rule tests take a ``backend`` fixture parametrised over both, so every rule is checked
against the reference spec and the implementation with the same test body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from actors import EIP_CLIENT, System, boot
from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.ids import RMGR_TASK, ThreadId, task_id
from protocols.snapshot import SystemSnapshot
from scenarios.check.conform import SpecWorld

CLIENTS = 3
TASKS = 16


class Backend(Protocol):
    """Issue system calls and RMGR requests as a given thread; observe the result."""

    clients: tuple[ThreadId, ...]

    def syscall(self, caller: ThreadId, request: kernel.TaskNew | kernel.NChief) -> Any: ...

    def rmgr(self, caller: ThreadId, request: rmgr.RmgrRequest) -> Any: ...

    def snapshot(self) -> SystemSnapshot: ...

    def alive(self, tid: ThreadId) -> bool: ...


class SpecBackend(SpecWorld):
    """The reference spec: pure steps over (kernel state, RMGR state).

    ``scenarios.check.conform.SpecWorld`` with the rule tests' defaults (no quota)."""

    def __init__(
        self,
        task_count: int = TASKS,
        clients: int = CLIENTS,
        quota: int | None = None,
        edition: Edition = DEFAULT_EDITION,
    ) -> None:
        super().__init__(task_count, clients, quota, edition)


class ActorBackend:
    """The actor system: scripted client threads make the calls themselves."""

    def __init__(self, system: System):
        self.system = system
        self.clients = system.modules

    def syscall(self, caller: ThreadId, request: kernel.TaskNew | kernel.NChief) -> Any:
        return self.system.syscall(caller, request)

    def rmgr(self, caller: ThreadId, request: rmgr.RmgrRequest) -> Any:
        return self.system.perform(caller, task_id(RMGR_TASK), request)

    def snapshot(self) -> SystemSnapshot:
        return self.system.snapshot()

    def alive(self, tid: ThreadId) -> bool:
        return self.system.runtime.lookup(tid) is not None


def actor_system(
    task_count: int = TASKS,
    clients: int = CLIENTS,
    quota: int | None = None,
    edition: Edition = DEFAULT_EDITION,
) -> System:
    """A booted actor system matching ``SpecBackend``'s configuration."""
    return boot(
        task_count=task_count,
        modules=(EIP_CLIENT,) * clients,
        quota=quota,
        timeout=5.0,
        edition=edition,
    )


@contextlib.contextmanager
def backend_for(kind: str, edition: Edition = DEFAULT_EDITION, **config: Any) -> Iterator[Backend]:
    """A ``spec`` or ``actors`` backend running ``edition``'s rules."""
    if kind == "spec":
        yield SpecBackend(edition=edition, **config)
    else:
        with actor_system(edition=edition, **config) as system:
            yield ActorBackend(system)
