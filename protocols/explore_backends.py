"""Where the workers of ``protocols.explore_dist`` run: local processes or Ray actors.

A backend starts ``workers`` shards (``explore_dist.Shard``, each built from the space
factory in its own process) and runs exchanges on them: ``round(method, args)`` calls
``method`` on every shard at once, delivering to each the mail the others addressed to
it in the previous round, and returns the shards' summaries; ``ask(worker, method,
args)`` calls one shard alone.  Mail is opaque bytes to the backend.

``ProcessBackend`` runs the shards in ``multiprocessing`` processes started with
``spawn`` (fresh interpreters: a forked copy of a parent running threads, such as
Pykka's, can inherit a held lock) and routes the mail through the parent.
``RayBackend`` runs one Ray actor per shard; the mail travels as Ray objects from actor
to actor without passing through the driver.  Every wait is bounded by ``timeout`` and
by the workers staying alive.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Protocol, Self

__all__ = ["Backend", "DistError", "ProcessBackend", "RayBackend", "import_ray", "init_ray"]

POLL_SECONDS = 0.5
"""How often a waiting parent checks that its worker processes are still alive."""
PROBE_SECONDS = 10.0
"""How long a Ray head given as HOST:PORT may take to accept a connection."""
"""How often a waiting parent checks that its worker processes are still alive."""


class DistError(Exception):
    """The distributed search cannot go on: no Ray, no cluster, a worker died, a timeout."""


class _ShardLike(Protocol):
    def call(
        self, method: str, args: tuple[Any, ...], inbox: Sequence[bytes | None]
    ) -> tuple[Any, list[bytes | None]]: ...


ShardType = Callable[[int, int, Callable[[], Any]], _ShardLike]


class Backend(Protocol):
    workers: int

    def round(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def ask(self, worker: int, method: str, args: tuple[Any, ...]) -> Any: ...

    def __enter__(self) -> Backend: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Closing:
    """A backend used as a context manager: ``close()`` on the way out, error or not."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _route(outboxes: list[list[bytes | None]] | None, workers: int) -> list[list[Any]]:
    """``inbox[v][w]`` = what ``w`` addressed to ``v``."""
    if outboxes is None:
        return [[None] * workers for _ in range(workers)]
    return [[outboxes[w][v] for w in range(workers)] for v in range(workers)]


def _serve(conn: Connection, index: int, workers: int, shard_type: ShardType, factory: Any) -> None:
    """A worker process: build the shard, then answer calls until told to stop."""
    try:
        shard = shard_type(index, workers, factory)
    except Exception as exc:  # reported to the parent, which raises DistError
        conn.send(("error", f"worker {index} could not start: {exc!r}"))
        return
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            return
        method, args, inbox = message
        try:
            conn.send(("ok", shard.call(method, args, inbox)))
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{last.filename}:{last.lineno}"
            conn.send(("error", f"worker {index} failed in {method} at {where}: {exc!r}"))


class ProcessBackend(_Closing):
    """The shards in ``workers`` local processes (``spawn``), mail routed by the parent."""

    def __init__(
        self, factory: Any, workers: int, shard_type: ShardType, *, timeout: float
    ) -> None:
        self.workers = workers
        self.timeout = timeout
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._outboxes: list[list[bytes | None]] | None = None
        try:
            for index in range(workers):
                mine, theirs = context.Pipe()
                proc = context.Process(
                    target=_serve,
                    args=(theirs, index, workers, shard_type, factory),
                    name=f"l4sim-explore-{index}",
                    daemon=True,
                )
                proc.start()
                theirs.close()
                self._conns.append(mine)
                self._procs.append(proc)
            for index in range(workers):
                self._receive(index)
        except BaseException:
            self.close()
            raise

    def _receive(self, index: int) -> Any:
        deadline = time.monotonic() + self.timeout
        conn, proc = self._conns[index], self._procs[index]
        while not conn.poll(POLL_SECONDS):
            if not proc.is_alive():
                raise DistError(f"worker {index} died (exit status {proc.exitcode})")
            if time.monotonic() > deadline:
                raise DistError(f"worker {index} did not answer within {self.timeout:g} s")
        try:
            status, value = conn.recv()
        except EOFError:
            raise DistError(f"worker {index} died (exit status {proc.exitcode})") from None
        if status == "error":
            raise DistError(value)
        return value

    def round(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        inboxes = _route(self._outboxes, self.workers)
        for index, conn in enumerate(self._conns):
            conn.send((method, args[index], inboxes[index]))
        answers = [self._receive(index) for index in range(self.workers)]
        self._outboxes = [outbox for _summary, outbox in answers]
        return [summary for summary, _outbox in answers]

    def ask(self, worker: int, method: str, args: tuple[Any, ...]) -> Any:
        self._conns[worker].send((method, args, [None] * self.workers))
        summary, _outbox = self._receive(worker)
        return summary

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):  # BrokenPipeError: the worker is gone
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()


def import_ray() -> Any:
    """The ``ray`` module, or ``DistError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DistError("Ray is not installed: pip install 'l4sim[dist]'") from None
    return ray


def _probe(address: str) -> None:
    """``DistError`` unless ``HOST:PORT`` (or ``ray://HOST:PORT``) accepts a connection.

    Ray itself retries an unreachable head for minutes; this answers in seconds.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local", a path: Ray's own rules
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise DistError(f"cannot reach Ray at {address!r}: {exc.strerror or exc}") from None


def init_ray(address: str | None) -> Any:
    """``ray.init(address)`` quietly (no dashboard for a new local Ray); ``DistError``."""
    ray = import_ray()
    if address is not None:
        _probe(address)
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    if address == "local":  # a new Ray: no dashboard (Ray refuses the option otherwise)
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()
        raise DistError(
            f"cannot reach Ray at {address!r}: {detail[0] if detail else exc!r}"
        ) from None
    return ray


class RayBackend(_Closing):
    """One Ray actor per shard; mail passed actor to actor as Ray objects.

    ``address`` goes to ``ray.init`` unless this process has already initialised Ray
    (then that Ray is used and left running); a Ray this backend started is shut down
    when it closes.  Each actor asks for one CPU, or an equal share when the cluster has
    fewer CPUs than workers, and actors are spread over the nodes.
    """

    def __init__(
        self,
        factory: Any,
        workers: int,
        shard_type: ShardType,
        *,
        address: str | None,
        timeout: float,
    ) -> None:
        ray = self._ray = import_ray()
        self.workers = workers
        self.timeout = timeout
        self._started = False
        if not ray.is_initialized():
            init_ray(address)
            self._started = True
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            actor = ray.remote(shard_type)
            share = min(1.0, cpus / workers)
            self._actors = [
                actor.options(num_cpus=share, scheduling_strategy="SPREAD").remote(
                    index, workers, factory
                )
                for index in range(workers)
            ]
            self._outboxes: list[list[Any]] | None = None
        except BaseException:
            self.close()
            raise

    def _get(self, refs: list[Any]) -> list[Any]:
        ray = self._ray
        try:
            return list(ray.get(refs, timeout=self.timeout))
        except ray.exceptions.GetTimeoutError:
            raise DistError(f"a Ray worker did not answer within {self.timeout:g} s") from None
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()
            raise DistError(f"a Ray worker failed: {first[-1] if first else exc!r}") from None

    def round(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        inboxes = _route(self._outboxes, self.workers)
        calls = [
            actor.call_flat.options(num_returns=self.workers + 1).remote(
                method, args[index], *inboxes[index]
            )
            for index, actor in enumerate(self._actors)
        ]
        summaries = self._get([refs[0] for refs in calls])
        self._outboxes = [list(refs[1:]) for refs in calls]
        return summaries

    def ask(self, worker: int, method: str, args: tuple[Any, ...]) -> Any:
        refs = (
            self._actors[worker]
            .call_flat.options(num_returns=self.workers + 1)
            .remote(method, args, *([None] * self.workers))
        )
        return self._get([refs[0]])[0]

    def close(self) -> None:
        for actor in getattr(self, "_actors", ()):
            self._ray.kill(actor)
        if self._started:
            self._ray.shutdown()
