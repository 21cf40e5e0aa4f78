"""``boot()``: assemble a whole system from a small config; stop every actor afterwards."""

from __future__ import annotations

import types
from typing import Any, cast

import attrs
import pykka

from actors._runtime import DEFAULT_TIMEOUT, Runtime
from actors.client import KERNEL, Perform
from actors.images import default_images, factory
from actors.kernel import KernelActor
from actors.rmgr import RmgrActor, RmgrConfig, StartModules
from actors.sigma0 import Sigma0
from actors.thread import Observe
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, TASK_COUNT, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.kernel import EIP_RMGR, EIP_SIGMA0, KernelState
from protocols.rmgr import RmgrState
from protocols.snapshot import SystemSnapshot
from protocols.trace import Trace

__all__ = ["BootConfig", "System", "boot"]


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attr.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class BootConfig:
    """What to build: table size, RMGR quota, boot modules (by eip), IPC timeout, trace."""

    task_count: int = attrs.field(default=TASK_COUNT)
    quota: int | None = None
    modules: tuple[int, ...] = ()
    """Eips of the boot modules RMGR starts as tasks 5, 6, ... (e.g. ``EIP_CLIENT``)."""
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_positive)
    trace: bool = True

    @task_count.validator
    def _check_count(self, _attr: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or not FIRST_USER_TASK < value <= TASK_COUNT:
            raise ValueError(f"task_count must be an int in {FIRST_USER_TASK + 1}..{TASK_COUNT}")
        if len(self.modules) > value - FIRST_USER_TASK:
            raise ValueError(f"{len(self.modules)} boot modules do not fit in {value} tasks")


class System:
    """A running system.  Use as a context manager: leaving it stops every actor."""

    def __init__(self, config: BootConfig) -> None:
        self.config = config
        self.runtime = Runtime(trace=Trace(enabled=config.trace), timeout=config.timeout)
        self.runtime.images.update(default_images())
        self.runtime.images[EIP_SIGMA0] = factory(Sigma0)
        self.runtime.images[EIP_RMGR] = factory(RmgrActor)
        self.modules: tuple[ThreadId, ...] = ()
        self.boot_mark = 0
        """Trace position right after boot: events from here on are the run proper."""
        self._kernel: pykka.ActorRef[Any] | None = None
        self._stopped = False

    def start(self) -> System:
        """Boot the kernel (which starts sigma0 and RMGR), configure RMGR, start modules."""
        try:
            self._kernel = KernelActor.start(self.runtime, self.config.task_count)
            self.runtime.kernel = self._kernel
            self.kernel_state()  # waits until the kernel's on_start has started RMGR
            rmgr = self.ref(task_id(RMGR_TASK))
            rmgr.ask(
                RmgrConfig(task_count=self.config.task_count, quota=self.config.quota),
                timeout=self.config.timeout,
            )
            modules = rmgr.ask(StartModules(eips=self.config.modules), timeout=self.config.timeout)
            self.modules = cast(tuple[ThreadId, ...], modules)
            self.boot_mark = self.runtime.trace.mark()
        except BaseException:
            self.stop()
            raise
        return self

    # -- driving ----------------------------------------------------------------------

    @property
    def trace(self) -> Trace:
        """The trace every actor of this system appends to."""
        return self.runtime.trace

    def ref(self, tid: ThreadId) -> pykka.ActorRef[Any]:
        """The actor of a live thread; ``KeyError`` if there is none."""
        ref = self.runtime.lookup(tid)
        if ref is None:
            raise KeyError(f"no live thread {tid}")
        return ref

    def perform(self, actor: ThreadId, dest: ThreadId, message: object) -> Any:
        """Make client thread ``actor`` send ``message`` to ``dest`` and return the reply."""
        ref = self.runtime.lookup(actor)
        if ref is None:
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=actor, request=type(message).__name__
            )
        return ref.ask(Perform(dest=dest, message=message), timeout=self.config.timeout * 2)

    def syscall(self, actor: ThreadId, request: object) -> Any:
        """Make client thread ``actor`` trap into the kernel with ``request``."""
        return self.perform(actor, KERNEL, request)

    def boot_record(self) -> dict[str, Any]:
        """The boot configuration as plain data, for trace files and conformance checks."""
        return {
            "task_count": self.config.task_count,
            "quota": self.config.quota,
            "modules": list(self.config.modules),
        }

    # -- observing --------------------------------------------------------------------

    def kernel_state(self) -> KernelState:
        """The kernel's task table."""
        assert self._kernel is not None
        return cast(KernelState, self._kernel.ask(Observe(), timeout=self.config.timeout))

    def rmgr_state(self) -> RmgrState:
        """RMGR's books."""
        rmgr = self.ref(task_id(RMGR_TASK))
        return cast(RmgrState, rmgr.ask(Observe(), timeout=self.config.timeout))

    def snapshot(self) -> SystemSnapshot:
        """A read-only snapshot of the whole system for invariant checks."""
        return SystemSnapshot(kernel=self.kernel_state(), rmgr=self.rmgr_state())

    # -- shutdown ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every actor this system started (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        refs = self.runtime.all_started()
        for ref in refs:
            ref.stop(block=False)
        if self._kernel is not None:
            self._kernel.stop(block=False)
            refs.append(self._kernel)
        for ref in refs:
            ref.actor_stopped.wait(self.config.timeout)

    def __enter__(self) -> System:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def boot(config: BootConfig | None = None, /, **overrides: Any) -> System:
    """Build and start a system; use as ``with boot(task_count=64) as system: ...``."""
    cfg = attrs.evolve(config, **overrides) if config else BootConfig(**overrides)
    return System(cfg).start()
