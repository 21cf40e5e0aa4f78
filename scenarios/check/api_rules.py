"""Rules of the ownership machine for what every caller of the public API can do.

``machine_for(strategy, api=True)`` (``scenarios.check.ownership_machine``) adds these to
the machine's own rules; each is one or more calls on the actors and the same calls on
the spec, compared after every call, with the invariants checked:

* a Linux process is a client of the task server and RMGR too: it takes tasks
  (``allocate``, ``allocate2``; ``AllocateChief`` in ``merged``), kills itself with
  ``FREE``, exits at the task server or frees itself at RMGR (``FreeClient``);
* a process takes a task with ``allocate_chief`` and then exits (Linux ``Exit``);
* the client hands a chief right it holds to any task -- RMGR, the task server, an
  L4Linux server, a process -- and sometimes exits right after;
* the client starts a sub-client (a client image in a task it created through the task
  server, or took from RMGR in ``merged``) that takes tasks, and then deletes it;
* version pressure: the client restarts a task it is chief of under the last version
  before the 14-bit wrap, so the next incarnation's version wraps to 0.

``hypothesis.event`` names what each rule did, for ``--hypothesis-show-statistics``.

``hardened`` keeps every invariant against these capabilities, all checked after every
step.  Promise 7 (``protocols.invariants``) was open for a chief right handed on by a
process that then dies and handed to RMGR by its new holder (fixed:
``Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD``) and for a process's task put back into the task
cache after the process took a task itself (restated: the cacher holds it).
"""

from __future__ import annotations

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from actors import EIP_CLIENT
from protocols import kernel, ownership, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.ids import NIL_ID, RMGR_TASK, VERSION_COUNT, ThreadId, task_id
from scenarios.check.ownership_machine import OwnershipMachine

__all__ = ["ApiRules"]


class ApiRules(OwnershipMachine):
    """The ownership machine plus the public API's capabilities (module docstring)."""

    # -- helpers ----------------------------------------------------------------------

    def _alive_processes(self) -> list[tuple[int, ThreadId]]:
        return [(i, p) for i, p in self._running() if ownership.alive(self.model, p)]

    def _holders(self) -> list[int]:
        """Every task a chief right may be handed to (the real kernel allows any)."""
        out = [RMGR_TASK]
        if self.model.task_server is not None:
            out.append(self.model.task_server.me)
        out.extend(s.me for s in self.model.linux)
        out.extend(p.task for _, p in self._alive_processes())
        return out

    def _allocate_chief(self, sender: ThreadId) -> object:
        """``sender`` takes a task with allocate_chief: from the task server, or from RMGR
        in ``merged``."""
        if self.system.task_server is not None:
            return self.call(sender, self.system.task_server, ts.AllocateChief())
        return self.call(sender, task_id(RMGR_TASK), rmgr.AllocateChief())

    def _server_id(self, server: int) -> ThreadId:
        return self.model.kernel.tasks[self.model.linux[server].me].id

    # -- processes as clients ---------------------------------------------------------

    @precondition(lambda self: bool(self._alive_processes()))
    @rule(data=st.data())
    def process_asks_a_server(self, data: st.DataObject) -> None:
        """A process sends a task-server or RMGR request on its own behalf."""
        _, proc = data.draw(st.sampled_from(self._alive_processes()), label="process")
        rm = task_id(RMGR_TASK)
        calls: list[tuple[ThreadId, object]] = [
            (rm, rmgr.AllocateChief()),
            (rm, rmgr.FreeClient(owner=proc.task)),
        ]
        if self.system.task_server is not None:
            tsv = self.system.task_server
            calls = [
                (tsv, ts.Allocate()),
                (tsv, ts.AllocateChief()),
                (tsv, ts.Kill(task=proc, options=ts.KillOption.FREE)),
                (tsv, ts.Free(task=proc)),
                (tsv, ts.Exit()),
            ]
        dest, request = data.draw(st.sampled_from(calls), label="request")
        event(f"process -> {type(request).__name__}")
        self.call(proc, dest, request)

    @precondition(lambda self: bool(self._alive_processes()))
    @rule(data=st.data())
    def process_takes_a_task_and_exits(self, data: st.DataObject) -> None:
        """A process takes a task with allocate_chief, then exits (Linux ``Exit``)."""
        server, proc = data.draw(st.sampled_from(self._alive_processes()), label="process")
        got = self._allocate_chief(proc)
        event(f"process takes a task: {getattr(got, 'error', got)}")
        if ownership.alive(self.model, proc):
            self.call(proc, self._server_id(server), lx.Exit(status=0))

    # -- the client hands rights on, starts sub-clients, wraps versions ----------------

    @precondition(lambda self: self._client_alive() and bool(self._client_chief_of()))
    @rule(data=st.data(), exits=st.booleans())
    def client_hands_to_anyone(self, data: st.DataObject, exits: bool) -> None:
        """The client gives a chief right it holds to any task, and maybe exits."""
        number = data.draw(st.sampled_from(self._client_chief_of()), label="task")
        to = data.draw(st.sampled_from(self._holders()), label="to")
        dest = self.model.kernel.tasks[number].id
        event("client hands a chief right on" + (" and exits" if exits else ""))
        self.call(self.client, NIL_ID, kernel.TaskNew(dest=dest, mcp_or_new_chief=task_id(to)))
        if exits:
            self.client_exits()

    @precondition(lambda self: self._client_alive())
    @rule(takes=st.integers(0, 2))
    def client_runs_a_subclient(self, takes: int) -> None:
        """The client starts a sub-client, which takes tasks; then the client deletes it."""
        sub = self._start_subclient()
        if sub is None:
            event("sub-client: not started")
            return
        for _ in range(takes):
            self._allocate_chief(sub)
        event(f"sub-client took {takes} and was deleted")
        if self.system.task_server is not None:
            self.call(self.client, self.system.task_server, ts.Kill(task=sub))
        else:
            self.call(self.client, NIL_ID, kernel.TaskNew(dest=sub, mcp_or_new_chief=self.client))

    def _start_subclient(self) -> ThreadId | None:
        tsv = self.system.task_server
        if tsv is not None:
            got = self.call(self.client, tsv, ts.Allocate())
            if not isinstance(got, ts.TsReply) or got.task.is_nil:
                return None
            create = ts.Create(task=got.task, eip=EIP_CLIENT, pager=self.client)
            self.call(self.client, tsv, create)
            task = got.task
        else:
            got = self._allocate_chief(self.client)
            if not isinstance(got, rmgr.RmgrReply) or got.task.is_nil:
                return None
            start = kernel.TaskNew(
                dest=got.task, mcp_or_new_chief=kernel.MAX_MCP, eip=EIP_CLIENT, pager=self.client
            )
            self.call(self.client, NIL_ID, start)
            task = got.task
        return task if ownership.alive(self.model, task) else None

    @precondition(lambda self: self._client_alive() and bool(self._client_chief_of()))
    @rule(data=st.data())
    def client_wraps_a_version(self, data: st.DataObject) -> None:
        """The chief starts its task under the last version before the wrap, stops it,
        and starts it again: the new incarnation's version is 0 (the kernel lets the
        chief name the version)."""
        number = data.draw(st.sampled_from(self._client_chief_of()), label="task")
        last = task_id(number, VERSION_COUNT - 1)
        for dest in (last, last.next_version()):
            start = kernel.TaskNew(
                dest=dest, mcp_or_new_chief=kernel.MAX_MCP, eip=0, pager=self.client
            )
            self.call(self.client, NIL_ID, start)
            self.call(self.client, NIL_ID, kernel.TaskNew(dest=dest, mcp_or_new_chief=self.client))
        event("version wrapped")
