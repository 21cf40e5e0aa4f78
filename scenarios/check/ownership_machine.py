"""The Hypothesis state machine of chief ownership (shared by the suite and the mutants).

The machine holds the system under test (actors booted with two L4Linux servers, a task
server unless ``merged``, and one misbehaving scripted client) and the reference model
(``protocols.ownership``, a pure ``SystemSnapshot``).  Every rule makes one call on the
actors and the same call on the model; the replies must be equal, the actors' snapshot
must equal the model, and the eight invariants must hold.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors import EIP_CLIENT, EIP_IDLE, BootConfig, System
from actors._runtime import ThreadFactory
from actors.l4linux import LinuxShutdown
from protocols import invariants, kernel, ownership, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.editions import HARDENED, Edition
from protocols.ids import NIL_ID, RMGR_TASK, ThreadId, task_id
from protocols.l4linux import ProcState, Strategy

TASKS = 20
"""Task numbers in the machine's system: 5..19 are user tasks, 9 of them free at boot."""
CACHE = 2
"""Cache size of each L4Linux (small, so the cache fills and evicts often)."""
VERSIONS = st.integers(0, 3)
SETTLE = 4
"""Calls checked before a rule may end a whole actor (the client or an L4Linux server):
so the client lives to misbehave first, and a run reaches the exits without rules that
throw dice and do nothing."""


class SpecMismatch(AssertionError):
    """The actors' reply or state differs from the spec's after a step."""


class OwnershipMachine(RuleBasedStateMachine):
    """Two L4Linux servers, their processes and a misbehaving client, against the spec."""

    STRATEGY: ClassVar[Strategy] = Strategy.CLASSIC
    EDITION: ClassVar[Edition] = HARDENED
    """The rules under test; every invariant must hold in ``hardened``."""
    CHECK_INVARIANTS: ClassVar[bool] = True
    """False (for ``l4env-2007``, whose findings break them): only the spec comparison."""
    IMAGES: ClassVar[dict[int, ThreadFactory]] = {}
    """Images to swap in before boot (mutants)."""
    SYSTEM: ClassVar[type[System]] = System
    COMPARE_WITH_SPEC: ClassVar[bool] = True
    """False: check only the invariants, and let the model follow the actors' snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        """Calls made on the actors and checked (against the spec, or the invariants)."""
        config = BootConfig(
            task_count=TASKS,
            modules=(EIP_CLIENT,),
            linux=2,
            strategy=self.STRATEGY,
            edition=self.EDITION,
            cache_size=CACHE,
            managed=TASKS,
            timeout=5.0,
            trace=False,
        )
        system = self.SYSTEM(config)
        system.runtime.images.update(self.IMAGES)
        self.system = system.start()
        self.model = ownership.boot(
            task_count=TASKS,
            modules=(EIP_CLIENT,),
            linux_servers=2,
            strategy=self.STRATEGY,
            cache_size=CACHE,
            managed=TASKS,
            edition=self.EDITION,
        )
        (self.client,) = self.system.modules
        self.snap = self.system.snapshot()
        assert self.snap == self.model, "boot differs from the spec's boot"

    def teardown(self) -> None:
        self.system.stop()

    # -- helpers ----------------------------------------------------------------------

    def _compare(self, sender: ThreadId, request: object, want: object, got: object) -> None:
        self.steps += 1
        before = self.snap
        self.snap = self.system.snapshot()
        if self.COMPARE_WITH_SPEC:
            if got != want:
                raise SpecMismatch(f"reply {got!r}, spec says {want!r}")
            if self.snap != self.model:
                raise SpecMismatch("actors and spec disagree after the step")
        else:
            self.model = self.snap
        if self.CHECK_INVARIANTS:
            invariants.check_transition(before, sender, request, got, self.snap)

    def call(self, sender: ThreadId, dest: ThreadId, request: object) -> object:
        self.model, want = ownership.step(self.model, sender, dest, request)
        if dest == NIL_ID:
            got = self.system.syscall(sender, request)
        elif isinstance(request, lx.LinuxRequest):
            got = self.system.linux_call(sender, request)
        else:
            got = self.system.perform(sender, dest, request)
        self._compare(sender, request, want, got)
        return got

    def settled(self) -> bool:
        """True once the run has made ``SETTLE`` calls (see ``SETTLE``)."""
        return self.steps >= SETTLE

    def _running(self) -> list[tuple[int, ThreadId]]:
        # A process whose task deleted itself is RUNNING in its server's books but dead.
        return [
            (i, p.task)
            for i, server in enumerate(self.model.linux)
            for p in server.processes
            if p.state is ProcState.RUNNING and ownership.alive(self.model, p.task)
        ]

    def _client_alive(self) -> bool:
        return ownership.alive(self.model, self.client)

    def _known_ids(self) -> list[ThreadId]:
        ids = {task_id(n, e.version) for n, e in enumerate(self.model.kernel.tasks) if n > 4}
        if self.model.task_server is not None:
            ids |= {r.id for r in self.model.task_server.records}
        return sorted(ids)

    def _task_ids(self) -> st.SearchStrategy[ThreadId]:
        # Mostly ids that name something (so requests get past the first check).
        random_id = st.builds(task_id, st.integers(0, TASKS - 1), VERSIONS)
        known = st.sampled_from(self._known_ids())
        return st.one_of(known, known, known, random_id)

    # -- Linux processes --------------------------------------------------------------

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def process_syscall(self, data: st.DataObject) -> None:
        """A running process makes a Linux system call to its server."""
        server, proc = data.draw(st.sampled_from(self._running()), label="process")
        pids = [p.pid for p in self.model.linux[server].processes] + [99]
        request = data.draw(
            st.one_of(
                st.just(lx.Getpid()),
                st.just(lx.Fork()),
                st.builds(lx.Exit, status=st.integers(0, 3)),
                st.builds(lx.Kill, pid=st.sampled_from(pids)),
                st.builds(lx.Wait, pid=st.sampled_from([-1, *pids])),
                st.builds(lx.Read, fd=st.integers(-1, 2), nbytes=st.integers(0, 4)),
            ),
            label="call",
        )
        server_id = self.model.kernel.tasks[self.model.linux[server].me].id
        self.call(proc, server_id, request)

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data())
    def process_forks_and_child_exits(self, data: st.DataObject) -> None:
        """Fork then exit of the child: the path the cache is for (fills and reuses)."""
        server, proc = data.draw(st.sampled_from(self._running()), label="process")
        server_id = self.model.kernel.tasks[self.model.linux[server].me].id
        forked = self.call(proc, server_id, lx.Fork())
        if isinstance(forked, lx.ForkReply) and ownership.alive(self.model, forked.task):
            self.call(forked.task, server_id, lx.Exit(status=1))

    @precondition(lambda self: len(self.model.linux) > 1 and self.settled())
    @rule(data=st.data())
    def linux_server_exits(self, data: st.DataObject) -> None:
        """A whole L4Linux server exits (one always stays)."""
        server = data.draw(st.sampled_from([s.me for s in self.model.linux]), label="server")
        sender = self.model.kernel.tasks[server].id
        self.model, want = ownership.shutdown_linux(self.model, server)
        got = self.system.ref(sender).ask(LinuxShutdown(), timeout=20)
        self._compare(sender, LinuxShutdown(), want, got)

    # -- the misbehaving client -------------------------------------------------------

    @precondition(lambda self: self._client_alive() and self.model.task_server is not None)
    @rule(data=st.data())
    def client_asks_the_task_server(self, data: st.DataObject) -> None:
        """The client sends any task-server request, on any task id."""
        tid = self._task_ids()
        request = data.draw(
            st.one_of(
                st.just(ts.Allocate()),
                st.just(ts.AllocateChief()),
                st.builds(ts.Create, task=tid, eip=st.just(EIP_IDLE), pager=st.just(self.client)),
                st.builds(ts.Free, task=tid),
                st.builds(ts.Free2, task=tid),
                st.builds(ts.Kill, task=tid, options=st.sampled_from(list(ts.KillOption))),
                st.builds(ts.KillRecursive, task=tid),
                st.builds(ts.Owner, task=tid),
            ),
            label="request",
        )
        assert self.system.task_server is not None
        self.call(self.client, self.system.task_server, request)

    @precondition(lambda self: self._client_alive())
    @rule(data=st.data())
    def client_asks_rmgr(self, data: st.DataObject) -> None:
        """The client sends any RMGR request, on any task number."""
        number = st.integers(0, TASKS - 1)
        request = data.draw(
            st.one_of(
                st.builds(rmgr.GetTask, number=number),
                st.builds(rmgr.FreeTask, number=number),
                st.builds(rmgr.FreeTaskAll, owner=number),
                st.builds(rmgr.FreeClient, owner=number),
                st.just(rmgr.AllocateChief()),
                st.builds(rmgr.Free2, task=self._task_ids()),
                st.builds(
                    rmgr.RmgrTaskNew,
                    dest=self._task_ids(),
                    mcp_or_chief=st.just(kernel.MAX_MCP),
                    eip=st.just(EIP_IDLE),
                    pager=st.sampled_from([NIL_ID, self.client]),
                ),
            ),
            label="request",
        )
        self.call(self.client, task_id(RMGR_TASK), request)

    @precondition(lambda self: self._client_alive())
    @rule(data=st.data())
    def client_task_new(self, data: st.DataObject) -> None:
        """The client calls ``l4_task_new`` on any task number.

        On a task it is chief of it only starts or stops it (giving a chief right away
        to a stranger breaks the protocol on the client's own side, not the servers').
        """
        dest = data.draw(self._task_ids(), label="dest")
        chief = self.model.kernel.chief_of(dest.task) == self.client.task
        start = kernel.TaskNew(
            dest=dest, mcp_or_new_chief=kernel.MAX_MCP, eip=EIP_IDLE, pager=self.client
        )
        stop = kernel.TaskNew(dest=dest, mcp_or_new_chief=self.client)
        if chief:
            request = data.draw(st.sampled_from([start, stop]), label="own")
        else:
            other = data.draw(st.builds(task_id, st.integers(1, TASKS - 1)), label="to")
            request = data.draw(
                st.sampled_from([start, stop, kernel.TaskNew(dest=dest, mcp_or_new_chief=other)]),
                label="foreign",
            )
        self.call(self.client, NIL_ID, request)

    @precondition(lambda self: self._client_alive() and bool(self._client_chief_of()))
    @rule(data=st.data())
    def client_hands_back(self, data: st.DataObject) -> None:
        """The client hands a chief right back: to the task server if it came from there."""
        number = data.draw(st.sampled_from(self._client_chief_of()), label="task")
        tsv = self.model.task_server
        rec = tsv.record(number) if tsv is not None else None
        to = RMGR_TASK
        if tsv is not None and rec is not None and rec.state is ts.TaskState.CHIEF:
            to = tsv.me
        dest = self.model.kernel.tasks[number].id
        self.call(self.client, NIL_ID, kernel.TaskNew(dest=dest, mcp_or_new_chief=task_id(to)))

    def _client_chief_of(self) -> list[int]:
        return [
            e.number
            for e in self.model.kernel.tasks
            if e.chief == self.client.task and e.number != self.client.task
        ]

    @precondition(lambda self: self._client_alive() and bool(self.model.linux))
    @rule(data=st.data())
    def client_calls_linux(self, data: st.DataObject) -> None:
        """The client, not a process, makes Linux system calls to an L4Linux server."""
        server = data.draw(st.sampled_from([s.me for s in self.model.linux]), label="server")
        request = data.draw(st.sampled_from([lx.Getpid(), lx.Fork(), lx.Wait(), lx.Kill(pid=1)]))
        dest = self.model.kernel.tasks[server].id
        self.model, want = ownership.step(self.model, self.client, dest, request)
        got = self.system.perform(self.client, dest, request)
        self._compare(self.client, request, want, got)

    @precondition(lambda self: self._client_alive() and self.settled())
    @rule()
    def client_exits(self) -> None:
        """The whole client exits (once the run is settled, so it lives to misbehave)."""
        if self.system.task_server is not None:
            self.call(self.client, self.system.task_server, ts.Exit())
        else:
            self.call(self.client, task_id(RMGR_TASK), rmgr.FreeClient(owner=self.client.task))

    @precondition(lambda self: not self._client_alive() and not self._running())
    @rule()
    def nothing_runs_any_more(self) -> None:
        """Everything that could act is dead (in l4env-2007 the client's
        ``free_task_all(RMGR)`` deletes every boot module): the tables stay as they are."""
        snap = self.system.snapshot()
        if self.COMPARE_WITH_SPEC and snap != self.model:
            raise SpecMismatch("the tables changed with nobody running")
        self.snap = snap

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def the_eight_invariants_hold(self) -> None:
        """Invariants 1, 3-7 on the last snapshot (2 and 8 are checked per request)."""
        if self.CHECK_INVARIANTS:
            invariants.check_all(self.snap)


def machine_for(
    strategy: Strategy, *, api: bool = False, **overrides: Any
) -> type[OwnershipMachine]:
    """A machine class for ``strategy`` (``overrides``: class attributes, e.g. mutants);
    ``api``: with the rules of ``scenarios.check.api_rules`` (every public-API capability)."""
    base: type[OwnershipMachine] = OwnershipMachine
    if api:
        from scenarios.check.api_rules import ApiRules

        base = ApiRules
    name = f"{'Api' if api else ''}{strategy.name.title().replace('_', '')}Machine"
    return type(name, (base,), {"STRATEGY": strategy, **overrides})


def counting(machine: type[OwnershipMachine], tally: list[int]) -> type[OwnershipMachine]:
    """``machine`` that appends each run's checked calls to ``tally`` when it ends."""

    class Counting(machine):  # type: ignore[valid-type,misc]
        def teardown(self) -> None:
            tally.append(self.steps)
            super().teardown()

    Counting.__name__ = machine.__name__
    return Counting
