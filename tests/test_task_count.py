"""RMGR TaskCount and the task server's init by count (the seed's cheaper boot)."""

from __future__ import annotations

from actors import EIP_CLIENT, boot
from actors.task_server import TsInit
from protocols import kernel, rmgr
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import task_id
from protocols.invariants import check_all


def test_the_spec_answers_the_table_size_and_changes_nothing() -> None:
    ks, rs = kernel.boot_state(32), rmgr.boot_state(32)
    ks2, rs2, reply = rmgr.step(ks, rs, task_id(7), rmgr.TaskCount())
    assert (ks2, rs2) == (ks, rs)
    assert reply == rmgr.RmgrReply(error=ErrorCode.OK, count=32)


def test_init_by_count_asks_once_and_the_task_server_still_allocates() -> None:
    with boot(task_count=32, task_server=True, modules=(EIP_CLIENT,), timeout=5.0) as s:
        assert s.task_server is not None
        (client,) = s.modules
        mark = s.trace.mark()
        s.ref(s.task_server).ask(TsInit(managed=16, by_count=True), timeout=5.0)
        calls = [e for e in s.trace.since(mark) if type(e).__name__ == "IpcCall"]
        assert [type(c.message) for c in calls] == [rmgr.TaskCount]
        check_all(s.snapshot())
        reply = s.perform(client, s.task_server, ts.Allocate())
        assert reply.error is ErrorCode.OK
        assert reply.task.task not in (s.task_server.task, client.task)  # refused by RMGR
        check_all(s.snapshot())
