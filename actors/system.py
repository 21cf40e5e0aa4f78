"""``boot()``: assemble a whole system from a small config; stop every actor afterwards."""

from __future__ import annotations

import enum
from typing import Any, cast

import attrs
import pykka

from actors._runtime import DEFAULT_TIMEOUT, Runtime, StopsOnExit, stop_actors
from actors.client import KERNEL, Perform
from actors.images import EIP_L4LINUX, EIP_TASK_SERVER, default_images, factory
from actors.kernel import KernelActor
from actors.l4linux import LinuxBoot, LoadCacheModule
from actors.process import LinuxCall
from actors.rmgr import RmgrActor, RmgrConfig, StartModules
from actors.sigma0 import Sigma0
from actors.task_server import TsInit
from actors.thread import Observe
from protocols.editions import DEFAULT_EDITION, Edition, edition
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, NIL_ID, RMGR_TASK, TASK_COUNT, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.kernel import EIP_RMGR, EIP_SIGMA0, KernelState
from protocols.l4linux import DEFAULT_CACHE_SIZE, LinuxState, Strategy
from protocols.linux import ForkReply, LinuxRequest
from protocols.rmgr import RmgrState
from protocols.snapshot import SystemSnapshot
from protocols.task_server import DEFAULT_MANAGED, TsState
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
    linux: int = attrs.field(default=0)
    """How many L4Linux servers to boot (each starts an init process)."""
    strategy: Strategy = attrs.field(default=Strategy.CLASSIC, converter=Strategy)
    """How L4Linux manages tasks: ``classic``, ``chief``, ``chief+cache`` or ``merged``."""
    cache_size: int = DEFAULT_CACHE_SIZE
    """Tasks each L4Linux caches (``chief+cache`` only)."""
    task_server: bool | None = None
    """Boot a task server; by default when L4Linux needs one (every strategy but ``merged``)."""
    managed: int = DEFAULT_MANAGED
    """How many task numbers the task server manages (from task 5 on)."""
    edition: Edition = attrs.field(default=DEFAULT_EDITION, converter=edition)
    """The rules: ``l4env-2007`` (the sources' system, the default) or ``hardened``."""

    @task_count.validator
    def _check_count(self, _attr: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or not FIRST_USER_TASK < value <= TASK_COUNT:
            raise ValueError(f"task_count must be an int in {FIRST_USER_TASK + 1}..{TASK_COUNT}")
        if len(self.boot_eips) > value - FIRST_USER_TASK:
            raise ValueError(f"{len(self.boot_eips)} boot modules do not fit in {value} tasks")

    @linux.validator
    def _check_linux(self, _attr: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 0:
            raise ValueError(f"linux must be a non-negative int, got {value!r}")
        if self.cache_size < 0 or self.managed < 0:
            raise ValueError("cache_size and managed must not be negative")

    @property
    def has_task_server(self) -> bool:
        """Whether boot starts a task server."""
        if self.task_server is not None:
            return self.task_server
        return self.linux > 0 and self.strategy.uses_task_server

    @property
    def boot_eips(self) -> tuple[int, ...]:
        """Every boot module RMGR starts: task server, L4Linux servers, then ``modules``."""
        ts = (EIP_TASK_SERVER,) if self.has_task_server else ()
        return (*ts, *(EIP_L4LINUX,) * self.linux, *self.modules)


class System(StopsOnExit):
    """A running system.  Use as a context manager: leaving it stops every actor."""

    kernel_class: type[KernelActor] = KernelActor
    """The kernel implementation to boot (conformance checks and mutants swap in others)."""

    def __init__(
        self, config: BootConfig, *, kernel_class: type[KernelActor] | None = None
    ) -> None:
        self.config = config
        if kernel_class is not None:
            self.kernel_class = kernel_class
        self.runtime = Runtime(
            trace=Trace(enabled=config.trace), timeout=config.timeout, edition=config.edition
        )
        self.runtime.images.update(default_images())
        self.runtime.images[EIP_SIGMA0] = factory(Sigma0)
        self.runtime.images[EIP_RMGR] = factory(RmgrActor)
        self.modules: tuple[ThreadId, ...] = ()
        self.boot_mark = 0
        """Trace position right after boot: events from here on are the run proper."""
        self.task_server: ThreadId | None = None
        """The task server's thread id, if one was booted."""
        self.linux: tuple[ThreadId, ...] = ()
        """The L4Linux servers' thread ids."""
        self.init_processes: tuple[ThreadId, ...] = ()
        """Each L4Linux server's init process (pid 1), in the order of ``linux``."""
        self._kernel: pykka.ActorRef[Any] | None = None
        self._stopped = False

    def start(self) -> System:
        """Boot the kernel (which starts sigma0 and RMGR), configure RMGR, start modules."""
        try:
            self._kernel = self.kernel_class.start(self.runtime, self.config.task_count)
            self.runtime.kernel = self._kernel
            self.kernel_state()  # waits until the kernel's on_start has started RMGR
            rmgr = self.ref(task_id(RMGR_TASK))
            cfg = self.config
            ts_count = 1 if cfg.has_task_server else 0
            trusted = frozenset({FIRST_USER_TASK}) if ts_count else frozenset()
            rmgr.ask(
                RmgrConfig(task_count=cfg.task_count, quota=cfg.quota, trusted=trusted),
                timeout=cfg.timeout,
            )
            started = rmgr.ask(StartModules(eips=cfg.boot_eips), timeout=cfg.timeout)
            started = cast(tuple[ThreadId, ...], started)
            self.modules = started[ts_count + cfg.linux :]
            self.linux = started[ts_count : ts_count + cfg.linux]
            if ts_count:
                self.task_server = started[0]
                self.ref(started[0]).ask(TsInit(managed=cfg.managed), timeout=cfg.timeout * 4)
            self.init_processes = tuple(self._boot_linux(lx) for lx in self.linux)
            for lx in self.linux:  # modules load once every server runs init
                self.ref(lx).ask(LoadCacheModule(), timeout=self.config.timeout * 4)
            self.boot_mark = self.runtime.trace.mark()
        except BaseException:
            self.stop()
            raise
        return self

    def _boot_linux(self, server: ThreadId) -> ThreadId:
        boot_msg = LinuxBoot(
            strategy=self.config.strategy,
            task_server=self.task_server or NIL_ID,
            cache_size=self.config.cache_size,
        )
        reply = self.ref(server).ask(boot_msg, timeout=self.config.timeout * 4)
        assert isinstance(reply, ForkReply), reply
        if reply.error is not ErrorCode.OK:
            raise RuntimeError(f"L4Linux {server} could not start init: {reply.error!r}")
        return reply.task

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
        try:
            return ref.ask(Perform(dest=dest, message=message), timeout=self.config.timeout * 2)
        except pykka.ActorDeadError:  # the thread crashed (fault injection)
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=actor, request=type(message).__name__
            )

    def syscall(self, actor: ThreadId, request: object) -> Any:
        """Make client thread ``actor`` trap into the kernel with ``request``."""
        return self.perform(actor, KERNEL, request)

    def boot_record(self) -> dict[str, Any]:
        """The boot configuration as plain data, for trace files and conformance checks."""
        record: dict[str, Any] = {}
        for field in attrs.fields(BootConfig):
            value = getattr(self.config, field.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, Edition):
                value = value.name
            elif isinstance(value, tuple):
                value = list(value)
            record[field.name] = value
        return record

    def linux_call(self, process: ThreadId, request: LinuxRequest) -> Any:
        """Make process ``process`` do the Linux system call ``request`` (IPC to its pager)."""
        ref = self.runtime.lookup(process)
        if ref is None:
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=process, request=type(request).__name__
            )
        try:
            return ref.ask(LinuxCall(request=request), timeout=self.config.timeout * 4)
        except pykka.ActorDeadError:  # the process crashed (fault injection)
            return IpcError(
                code=ErrorCode.ENOT_EXISTENT, dest=process, request=type(request).__name__
            )

    # -- observing --------------------------------------------------------------------

    def kernel_state(self) -> KernelState:
        """The kernel's task table."""
        assert self._kernel is not None
        return cast(KernelState, self._kernel.ask(Observe(), timeout=self.config.timeout))

    def rmgr_state(self) -> RmgrState:
        """RMGR's books."""
        rmgr = self.ref(task_id(RMGR_TASK))
        return cast(RmgrState, rmgr.ask(Observe(), timeout=self.config.timeout))

    def task_server_state(self) -> TsState | None:
        """The task server's books, or None if there is no (live) task server."""
        if self.task_server is None:
            return None
        ref = self.runtime.lookup(self.task_server)
        if ref is None:
            return None
        return cast(TsState, ref.ask(Observe(), timeout=self.config.timeout))

    def linux_states(self) -> tuple[LinuxState, ...]:
        """The state of every L4Linux server still alive, in boot order."""
        states = []
        for server in self.linux:
            ref = self.runtime.lookup(server)
            if ref is not None:
                try:
                    state = ref.ask(Observe(), timeout=self.config.timeout)
                except pykka.ActorDeadError:
                    continue
                # Another task may run under a dead server's id now: it is not a server.
                if isinstance(state, LinuxState):
                    states.append(state)
        return tuple(states)

    def snapshot(self) -> SystemSnapshot:
        """A read-only snapshot of the whole system for invariant checks."""
        return SystemSnapshot(
            kernel=self.kernel_state(),
            rmgr=self.rmgr_state(),
            task_server=self.task_server_state(),
            linux=self.linux_states(),
            edition=self.config.edition,
        )

    # -- shutdown ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every actor this system started (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        refs = self.runtime.all_started()
        if self._kernel is not None:
            refs.append(self._kernel)
        stop_actors(refs, self.config.timeout)  # a batch at a time: see there why


def boot(config: BootConfig | None = None, /, **overrides: Any) -> System:
    """Build and start a system; use as ``with boot(task_count=64) as system: ...``."""
    cfg = attrs.evolve(config, **overrides) if config else BootConfig(**overrides)
    return System(cfg).start()
