"""Exhaustive exploration of the whole chief-ownership spec (``protocols.ownership``).

``OwnershipSpace`` is a ``protocols.explore.Space``: the system boots with ``clients``
L4Linux servers (each with its init process) using one strategy, and from every state

* every running process of every live server makes each Linux call that can matter:
  ``Fork``, ``Exit(0)``, ``Wait(-1)`` and ``Kill(pid)`` for every pid its server knows
  (init's ``Exit`` and ``Kill(1)`` are refused, so they are left out);
* ``Fork`` only while the server's process table, zombies included, has fewer than
  ``processes`` entries (default ``tasks``): zombies hold no task, so without this bound
  a parent that never waits could fill an unbounded table;
* every live L4Linux server may exit as a whole client (``ownership.shutdown_linux``);
* optionally (``script=True``) a misbehaving boot module calls the task server, RMGR
  and ``l4_task_new`` with a small alphabet of requests about the process task numbers
  (each number's current id, or the next version for a new incarnation), checking
  invariants 2 and 8 on each of its requests.  Like the misbehaving client of
  ``tests/ownership_machine.py`` it hands a chief right it holds only back to where it
  came from.

**Task numbers.**  ``tasks`` is how many task numbers the processes can run in, the
inits included (so ``tasks >= clients``).  The system boots with exactly the task
server (not in ``merged``), the L4Linux servers, the script (if any) and ``tasks`` more
numbers; the task server manages ``tasks`` numbers from ``TASK_FIRST`` (10) on, as
simple_ts does (numbers between the boot modules and 10 stay free at RMGR, unused).
In ``merged`` RMGR hands out any free number, so the number of an exited L4Linux
server becomes available too.

**Canonical form.**  As stored, states never repeat (pids and versions only grow), so
states are compared by a canonical key that forgets what cannot matter:

* *versions*: per task number, every version the state holds that something reads
  (an active task's kernel version, the task server's record, running processes' ids,
  cached ids, retired ids; RMGR's versions only in ``merged``, where its
  ``AllocateChief`` bumps them; an inactive task's kernel version and RMGR's versions
  only with the scripted client, which names tasks by their current id: nothing else
  reads them, ``l4_task_new`` checks the chief by number) is replaced by its place on a
  compressed number line counted from the lowest of them; a gap between two consecutive
  values counts exactly up to ``version_window + 1`` and as "far" beyond.  A retired id
  is kept only if it lies at most ``version_window`` above one of the other (live)
  values: versions are only ever copied or incremented, so a retired id below every
  live value can never be handed out again (and one far above them only after more than
  ``version_window`` increments).  This makes the space finite; it is exact for
  collisions within ``version_window`` increments (see the README section "Exhaustive
  exploration").
* *pids* matter only by equality and order: they are renamed by rank (init stays 1),
  and the next-pid counter is implied (one past the last rank); a zombie's task id is
  read by nothing and dropped; so is the task server's ``exit_events`` statistic.
* *symmetry*: the L4Linux servers (with their processes) are interchangeable, and so
  are the task numbers in the free pool (held by no one): the key is the minimum over
  the permutations of servers, with the free numbers' descriptions sorted.

The counterexample that ``explore`` returns is a real path: each step is applied to the
concrete state stored for its canonical class.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from typing import Final, TypeAlias

import attrs

from protocols import invariants as inv
from protocols import kernel, l4linux, linux, ownership, rmgr
from protocols import task_server as ts
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, NIL_ID, RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.ipc import IpcError
from protocols.snapshot import SystemSnapshot

__all__ = [
    "DEFAULT_VERSION_WINDOW",
    "EIP_SCRIPT",
    "OwnershipSpace",
    "ShutdownFn",
    "StepFn",
]

StepFn: TypeAlias = Callable[
    [SystemSnapshot, ThreadId, ThreadId, object], tuple[SystemSnapshot, object]
]
"""The signature of ``ownership.step``: a spec (or a broken variant) to explore."""
ShutdownFn: TypeAlias = Callable[[SystemSnapshot, int], tuple[SystemSnapshot, object]]
"""The signature of ``ownership.shutdown_linux``."""

DEFAULT_VERSION_WINDOW: Final = 2
"""Version gaps counted exactly up to this many increments (see the module docstring)."""
EIP_SCRIPT: Final = 0x1000
"""Start address of the scripted client (``actors.images.EIP_CLIENT``)."""
EIP_IDLE: Final = 0
"""Start address of the tasks the scripted client creates (they do nothing)."""

_ROLES: Final = {
    ts.EIP_TASK_SERVER: "task server",
    l4linux.EIP_L4LINUX: "L4Linux",
    EIP_SCRIPT: "script",
    l4linux.EIP_PROCESS: "process",
}
Transition: TypeAlias = tuple[str, SystemSnapshot, str | None]


def _short(message: object) -> str:
    """``Name(field=value, ...)`` with only the fields that differ from their defaults."""
    parts = []
    for field in attrs.fields(type(message)):  # type: ignore[arg-type]
        value = getattr(message, field.name)
        if field.default is not attrs.NOTHING and value == field.default:
            continue
        parts.append(f"{field.name}={value!r}")
    return f"{type(message).__name__}({', '.join(parts)})"


def _outcome(reply: object) -> str:
    """A reply in a few words: the error code and what it carries."""
    if isinstance(reply, IpcError):
        return f"IPC error {reply.code.name}"
    if isinstance(reply, kernel.TaskNewReply):
        return "refused (nil)" if reply.task.is_nil else f"{reply.task}"
    error = getattr(reply, "error", None)
    text = error.name if isinstance(error, ErrorCode) else repr(reply)
    if isinstance(reply, linux.ForkReply) and reply.error is ErrorCode.OK:
        text += f" pid {reply.pid} in {reply.task}"
    elif isinstance(reply, linux.WaitReply) and reply.error is ErrorCode.OK:
        text += f" pid {reply.pid}" + (f" status {reply.status}" if reply.pid else "")
    elif isinstance(reply, ts.TsReply | rmgr.RmgrReply) and not reply.task.is_nil:
        text += f" {reply.task}"
    return text


class OwnershipSpace:
    """L4Linux servers, their processes (and optionally a scripted client) over the spec."""

    def __init__(
        self,
        *,
        tasks: int,
        clients: int,
        strategy: l4linux.Strategy = l4linux.Strategy.CLASSIC,
        edition: Edition = DEFAULT_EDITION,
        cache_size: int = l4linux.DEFAULT_CACHE_SIZE,
        processes: int | None = None,
        script: bool = False,
        version_window: int = DEFAULT_VERSION_WINDOW,
        symmetry: bool = True,
        invariants: Collection[str] | None = None,
        step: StepFn = ownership.step,
        shutdown: ShutdownFn = ownership.shutdown_linux,
    ) -> None:
        if clients < 1:
            raise ValueError("need at least one L4Linux client")
        if tasks < clients:
            raise ValueError(
                f"need at least one task number per client for its init ({tasks} < {clients})"
            )
        if version_window < 1:
            raise ValueError("version_window must be at least 1")
        if processes is not None and processes < 1:
            raise ValueError("processes must be at least 1")
        self.strategy = strategy
        self.edition = edition
        # Who reads a version (see "Canonical form"): an inactive task's kernel version
        # only the scripted client (it names tasks by their current id); RMGR's versions
        # only RMGR's own AllocateChief and Free2 (merged) and the scripted client.
        self._inactive_versions_matter = script
        self._rmgr_versions_matter = script or strategy is l4linux.Strategy.MERGED
        self.processes = tasks if processes is None else processes
        """Fork is explored only while the server's process table (zombies too) is smaller."""
        self.cache_size = cache_size
        self.version_window = version_window
        self.symmetry = symmetry
        known = {f.__name__ for f in (*inv.STATE_INVARIANTS, *inv.TRANSITION_INVARIANTS)}
        if invariants is not None and not set(invariants) <= known:
            raise ValueError(f"unknown invariants: {sorted(set(invariants) - known)}")
        self.invariants = frozenset(known if invariants is None else invariants)
        """The invariants checked (all by default; a finding's search checks only its own)."""
        self._step = step
        self._shutdown = shutdown
        has_ts = strategy.uses_task_server
        first = FIRST_USER_TASK + (1 if has_ts else 0)
        self.ts_number = FIRST_USER_TASK if has_ts else None
        self.clients = tuple(range(first, first + clients))
        self.script = first + clients if script else None
        pool_start = first + clients + (1 if script else 0)
        if has_ts:
            # simple_ts manages numbers from TASK_FIRST (10) on; those below stay RMGR's.
            pool_start = max(pool_start, ts.TASK_FIRST)
        self.task_count = pool_start + tasks
        self.pool = tuple(range(pool_start, self.task_count))
        self.managed = self.task_count - ts.TASK_FIRST if has_ts else 0
        """The task server gets exactly the pool (the numbers below it are RMGR's)."""
        self._client_perms: tuple[dict[int, int], ...] = tuple(
            dict(zip(self.clients, perm, strict=True))
            for perm in (itertools.permutations(self.clients) if symmetry else (self.clients,))
        )

    # -- the transition system ------------------------------------------------------

    def initial(self) -> SystemSnapshot:
        world = ownership.boot(
            task_count=self.task_count,
            modules=(EIP_SCRIPT,) if self.script is not None else (),
            linux_servers=len(self.clients),
            strategy=self.strategy,
            cache_size=self.cache_size,
            managed=self.managed,
            edition=self.edition,
        )
        if self.ts_number is not None:
            assert world.task_server is not None
            managed = tuple(r.number for r in world.task_server.records)
            assert managed == self.pool, f"the task server manages {managed}, not the pool"
        return world

    def name(self, world: SystemSnapshot, number: int) -> str:
        """``t6.0v1 (L4Linux)``: a task's current id and its role."""
        entry = world.kernel.tasks[number]
        role = "RMGR" if number == RMGR_TASK else _ROLES.get(entry.eip) if entry.active else None
        return f"{entry.id} ({role})" if role else f"{entry.id}"

    def actions(self, state: SystemSnapshot) -> Iterable[Transition]:
        for lx in state.linux:
            server = state.kernel.tasks[lx.me].id
            pids = tuple(p.pid for p in lx.processes)
            for proc in lx.processes:
                if proc.state is not l4linux.ProcState.RUNNING:
                    continue
                if not ownership.alive(state, proc.task):
                    continue  # it deleted itself (explore_api); its server does not know
                calls: list[linux.LinuxRequest] = [linux.Wait(pid=-1)]
                if len(lx.processes) < self.processes:
                    calls.append(linux.Fork())
                if proc.pid != l4linux.INIT_PID:
                    calls.append(linux.Exit(status=0))
                calls.extend(linux.Kill(pid=pid) for pid in pids if pid != l4linux.INIT_PID)
                for call in calls:
                    after, reply = self._step(state, proc.task, server, call)
                    yield (
                        f"{self.name(state, lx.me)} <- {_short(call)} from pid {proc.pid}"
                        f" -> {_outcome(reply)}",
                        after,
                        None,
                    )
        for lx in state.linux:
            after, reply = self._shutdown(state, lx.me)
            yield f"{self.name(state, lx.me)} exits as a client -> {_outcome(reply)}", after, None
        if self.script is not None:
            entry = state.kernel.tasks[self.script]
            if entry.active and entry.eip == EIP_SCRIPT:
                yield from self._script(state)

    def _script(self, state: SystemSnapshot) -> Iterator[Transition]:
        me = state.kernel.tasks[self.script or 0].id
        return self._calls(state, me, self._script_alphabet(state, me))

    def _calls(
        self, state: SystemSnapshot, me: ThreadId, alphabet: Iterator[tuple[ThreadId, object]]
    ) -> Iterator[Transition]:
        """``me`` sends each message of ``alphabet``: one labelled transition each."""
        for dest, message in alphabet:
            after, reply = self._step(state, me, dest, message)
            verdict = self._verdict(state, me, message, reply, after)
            where = "kernel" if dest == NIL_ID else self.name(state, dest.task)
            yield (
                f"{self.name(state, me.task)} -> {where}: {_short(message)} -> {_outcome(reply)}",
                after,
                verdict,
            )

    def _script_alphabet(
        self, state: SystemSnapshot, me: ThreadId
    ) -> Iterator[tuple[ThreadId, object]]:
        rmgr_id = task_id(RMGR_TASK)
        sigma0 = task_id(SIGMA0_TASK)
        ts_id = state.kernel.tasks[self.ts_number].id if self.ts_number is not None else None
        if ts_id is not None:
            yield ts_id, ts.Allocate()
            yield ts_id, ts.AllocateChief()
            yield ts_id, ts.Exit()
        else:
            yield rmgr_id, rmgr.AllocateChief()
            yield rmgr_id, rmgr.FreeClient(owner=me.task)
        for n in self.pool:
            now = state.kernel.tasks[n].id
            new = now.next_version()
            if ts_id is not None:
                yield ts_id, ts.Create(task=now, eip=EIP_IDLE, pager=sigma0)
                yield ts_id, ts.Free(task=now)
                yield ts_id, ts.Free2(task=now)
                yield ts_id, ts.Kill(task=now)
                yield ts_id, ts.KillRecursive(task=now)
            else:
                yield rmgr_id, rmgr.Free2(task=now)
            yield rmgr_id, rmgr.GetTask(number=n)
            yield rmgr_id, rmgr.FreeTask(number=n)
            yield (
                rmgr_id,
                rmgr.RmgrTaskNew(dest=new, mcp_or_chief=kernel.MAX_MCP, eip=EIP_IDLE, pager=sigma0),
            )
            # l4_task_new: start it (a new incarnation), stop it (stay chief), hand the
            # chief right back where it came from (as tests/ownership_machine.py does:
            # giving it to a stranger breaks the protocol on the client's own side).
            yield (
                NIL_ID,
                kernel.TaskNew(dest=new, mcp_or_new_chief=kernel.MAX_MCP, eip=EIP_IDLE, pager=me),
            )
            if state.kernel.chief_of(n) == me.task:
                yield NIL_ID, kernel.TaskNew(dest=now, mcp_or_new_chief=me)
                tsv = state.task_server
                rec = tsv.record(n) if tsv is not None else None
                back = ts_id if rec is not None and rec.state is ts.TaskState.CHIEF else rmgr_id
                assert back is not None
                yield NIL_ID, kernel.TaskNew(dest=now, mcp_or_new_chief=back)

    def _verdict(
        self,
        before: SystemSnapshot,
        me: ThreadId,
        message: object,
        reply: object,
        after: SystemSnapshot,
    ) -> str | None:
        try:
            inv.check_transition(before, me, message, reply, after)
        except inv.InvariantViolation as bad:
            return f"{bad.name}: {bad.detail}" if bad.name in self.invariants else None
        return None

    def check(self, state: SystemSnapshot) -> tuple[str, str] | None:
        for invariant in inv.STATE_INVARIANTS:
            if invariant.__name__ not in self.invariants:
                continue
            detail = invariant(state)
            if detail is not None:
                return invariant.__name__, detail
        return None

    # -- the canonical form ---------------------------------------------------------

    def canonical(self, state: SystemSnapshot) -> Hashable:
        versions = self._versions(state)
        free = self._free_pool(state)
        best: tuple[object, ...] | None = None
        for rename in self._client_perms:
            code = self._encode(state, rename, versions, free)
            if best is None or code < best:
                best = code
        assert best is not None
        return best

    def _versions(self, state: SystemSnapshot) -> dict[int, dict[int, int]]:
        """Per task number: each version value the state holds -> its relative place."""
        live: dict[int, set[int]] = {}
        for n in range(FIRST_USER_TASK, self.task_count):
            e = state.kernel.tasks[n]
            vs = live[n] = set()
            if e.active or self._inactive_versions_matter:
                vs.add(e.version)
            if self._rmgr_versions_matter:
                vs.add(state.rmgr.versions[n])
        if state.task_server is not None:
            for rec in state.task_server.records:
                live[rec.number].add(rec.id.version)
        for lx in state.linux:
            for t in (*lx.slots, *lx.cache):
                live[t.task].add(t.version)
            for p in lx.processes:
                if p.state is l4linux.ProcState.RUNNING:
                    live[p.task.task].add(p.task.version)
        window = self.version_window
        values = {n: set(vs) for n, vs in live.items()}
        for lx in state.linux:
            for t in lx.retired:
                if any(0 <= t.version - v <= window for v in live[t.task]):
                    values[t.task].add(t.version)
        places: dict[int, dict[int, int]] = {}
        for n, vs in values.items():
            ordered = sorted(vs)
            # places counted from the lowest value that matters: shifting them all
            # changes nothing
            pos = {ordered[0]: 0} if ordered else {}
            for lower, upper in itertools.pairwise(ordered):
                pos[upper] = pos[lower] + min(upper - lower, window + 1)
            places[n] = pos
        return places

    def _free_pool(self, state: SystemSnapshot) -> frozenset[int]:
        """Pool numbers no one holds: free at RMGR and the task server, inactive, uncached."""
        if not self.symmetry:
            return frozenset()
        held = {t.task for lx in state.linux for t in lx.cache}
        free = set()
        tsv = state.task_server
        # simple_ts keeps its numbers at RMGR for good: free means unused in its books.
        keeper = (rmgr.FREE,) if tsv is None else (rmgr.FREE, tsv.me)
        for n in self.pool:
            if n in held or state.kernel.is_active(n) or state.rmgr.owners[n] not in keeper:
                continue
            rec = tsv.record(n) if tsv is not None else None
            if rec is not None and (rec.used or rec.owner != ts.NO_OWNER):
                continue
            free.add(n)
        return frozenset(free)

    def _encode(
        self,
        state: SystemSnapshot,
        rename: dict[int, int],
        versions: dict[int, dict[int, int]],
        free: frozenset[int],
    ) -> tuple[object, ...]:
        def r(n: int) -> int:
            return rename.get(n, n)

        def rid(t: ThreadId) -> tuple[int, ...]:
            # An id of a user task: its number and the version's relative place.
            if t.task >= FIRST_USER_TASK and t.version in versions[t.task]:
                return (r(t.task), versions[t.task][t.version])
            return (r(t.task), t.lthread, t.version)

        retired: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        for lx in state.linux:
            kept: dict[int, list[int]] = {}
            for t in lx.retired:
                place = versions[t.task].get(t.version)
                if place is not None:
                    kept.setdefault(t.task, []).append(place)
            for n, places in kept.items():
                retired.setdefault(n, []).append((r(lx.me), tuple(sorted(places))))

        def row(n: int) -> tuple[object, ...]:
            e = state.kernel.tasks[n]
            rec = state.task_server.record(n) if state.task_server is not None else None
            return (
                versions[n][e.version] if e.active or self._inactive_versions_matter else -1,
                versions[n][state.rmgr.versions[n]] if self._rmgr_versions_matter else -1,
                r(e.chief),
                e.active,
                e.mcp,
                e.eip,
                e.esp,
                rid(e.pager) if not e.pager.is_nil else (),
                r(state.rmgr.owners[n]),
                n in state.rmgr.handed,
                () if rec is None else (r(rec.owner), rec.state.value, versions[n][rec.id.version]),
                tuple(sorted(retired.get(n, ()))),
            )

        fixed = tuple(
            sorted((r(n), row(n)) for n in range(FIRST_USER_TASK, self.task_count) if n not in free)
        )
        pool = tuple(sorted(row(n) for n in free))
        servers = []
        for lx in state.linux:
            rank = {p.pid: i for i, p in enumerate(lx.processes, 1)}
            rank[0] = 0
            procs = tuple(
                (
                    rank[p.parent],
                    p.state.value,
                    p.status,
                    rid(p.task) if p.state is l4linux.ProcState.RUNNING else (),
                )
                for p in lx.processes
            )
            cache = tuple(rid(t) for t in lx.cache)
            servers.append((r(lx.me), procs, cache, tuple(rid(t) for t in lx.slots)))
        return fixed, pool, tuple(sorted(servers))
