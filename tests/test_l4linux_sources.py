"""L4Linux's task management as its C sources behave, on the spec and on the actors.

Each test names the source lines it checks.  Effects on the tables (processes, cache
slots, kernel chiefs, versions and priorities) are checked on both the reference spec
(``protocols.ownership``) and the actor system; the call sequences, which only the actors
make one by one, on the actors' trace.  Repositories: L = osfree-project/l4linux-l4env
arch/l4, C = osfree-project/l4env l4/pkg/task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors import System, boot
from protocols import kernel, ownership
from protocols import task_server as ts
from protocols.editions import HARDENED, L4ENV_2007, Edition
from protocols.errors import ErrorCode
from protocols.ids import ThreadId
from protocols.l4linux import (
    PRIO_SERVER_PROC,
    PRIO_USER_PROCESS,
    RESNAME,
    CapProbe,
    LinuxState,
    Strategy,
)
from protocols.linux import Exit, Fork, ForkReply, Kill, LinuxRequest, Wait
from protocols.snapshot import SystemSnapshot
from protocols.trace import IpcCall, Syscall
from scenarios.record.traces import fork_pairs
from scenarios.scripts.fork import server_calls

TASKS = 24
MANAGED = TASKS - 5


class SpecRun:
    """The reference spec: one L4Linux server, Linux calls as ``ownership.step``."""

    def __init__(self, strategy: str, cache_size: int, managed: int, edition: Edition) -> None:
        self.world = ownership.boot(
            task_count=TASKS,
            linux_servers=1,
            strategy=Strategy(strategy),
            cache_size=cache_size,
            managed=managed,
            edition=edition,
        )
        self.init = self.world.linux[0].processes[0].task

    def call(self, process: ThreadId, request: LinuxRequest) -> Any:
        server = self.world.kernel.tasks[self.world.linux[0].me].id
        self.world, reply = ownership.step(self.world, process, server, request)
        return reply

    def snap(self) -> SystemSnapshot:
        return self.world


class ActorRun:
    """The actor system with the same configuration."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.init = system.init_processes[0]

    def call(self, process: ThreadId, request: LinuxRequest) -> Any:
        return self.system.linux_call(process, request)

    def snap(self) -> SystemSnapshot:
        return self.system.snapshot()


Run = SpecRun | ActorRun


@pytest.fixture(params=["spec", "actors"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A function (strategy, cache_size=5, managed=MANAGED, edition) -> a booted run."""
    systems: list[System] = []

    def make(
        strategy: str, cache_size: int = 5, managed: int = MANAGED, edition: Edition = L4ENV_2007
    ) -> Run:
        if request.param == "spec":
            return SpecRun(strategy, cache_size, managed, edition)
        system = boot(
            task_count=TASKS,
            linux=1,
            strategy=strategy,
            cache_size=cache_size,
            managed=managed,
            edition=edition,
            timeout=5.0,
        )
        systems.append(system)
        return ActorRun(system)

    yield make
    for system in systems:
        system.stop()


def lx(run: Run) -> LinuxState:
    (state,) = run.snap().linux
    return state


def fork(run: Run) -> ForkReply:
    child = run.call(run.init, Fork())
    assert isinstance(child, ForkReply) and child.error is ErrorCode.OK, child
    return child


def l4linux_calls(strategy: str, cache_size: int = 5, forks: int = 1) -> list[str]:
    """L4Linux's own calls, in order, for ``forks`` fork+exit+wait after boot (actors)."""
    with boot(task_count=TASKS, linux=1, strategy=strategy, cache_size=cache_size) as s:
        me = s.linux[0].task
        mark = s.trace.mark()
        for _ in range(forks):
            child = s.linux_call(s.init_processes[0], Fork())
            s.linux_call(child.task, Exit())
            s.linux_call(s.init_processes[0], Wait(pid=child.pid))
        return _calls_by(s.trace.since(mark), me)


def _calls_by(events: Any, me: int) -> list[str]:
    out = []
    for e in events:
        if type(e) is IpcCall and e.src.task == me:
            out.append(f"ipc {type(e.message).__name__}")
        elif type(e) is Syscall and e.caller.task == me:
            out.append(f"sys {type(e.request).__name__}")
    return out


# -- the call sequences (actors) --------------------------------------------------------


def test_classic_fork_and_exit_are_allocate_create_kill_free() -> None:
    """L arch-i386/process.c@07d143c8:203-220 (allocate in copy_thread); process_gen.c
    @07d143c8:45 (create at first dispatch), 89-98 (delete, then free); l4lxlib/l4env/
    task.c@07d143c8:61-69, 198-210, 245-252, 130-147."""
    assert l4linux_calls("classic") == [
        "ipc Allocate",
        "ipc Create",
        "ipc Kill",
        "ipc Free",
    ]


def test_classic_kill_is_sync_and_without_exit_event_and_create_names_the_server() -> None:
    """L l4lxlib/l4env/task.c@07d143c8:227-230 (pager linux_server_thread_id), 245-252
    (SYNC, and NOEV for a task not on the hybrid list)."""
    with boot(task_count=TASKS, linux=1, strategy="classic") as s:
        mark = s.trace.mark()
        child = s.linux_call(s.init_processes[0], Fork())
        s.linux_call(child.task, Exit())
        sent = [e.message for e in s.trace.since(mark) if type(e) is IpcCall]
        (create,) = [m for m in sent if isinstance(m, ts.Create)]
        (kill,) = [m for m in sent if isinstance(m, ts.Kill)]
        assert create.pager == s.linux[0] and create.task == child.task
        assert kill.options == ts.KillOption.SYNC | ts.KillOption.NOEV


def test_classic_create_asks_a_named_task_and_its_priority_of_rmgr() -> None:
    """L l4lxlib/l4env/task.c@07d143c8:206-210 (prio CONFIG_L4_PRIO_USER_PROCESS, name
    "L4Linux task"); simple_ts main.c@e91a37df:540-563 (RMGR task_new, set_task_id with
    that name, set_prio): per fork+exit the task server makes four RMGR calls."""
    with boot(task_count=TASKS, linux=1, strategy="classic") as s:
        assert s.task_server is not None
        mark = s.trace.mark()
        child = s.linux_call(s.init_processes[0], Fork())
        s.linux_call(child.task, Exit())
        events = s.trace.since(mark)
        sent = [e.message for e in events if type(e) is IpcCall]
        (create,) = [m for m in sent if isinstance(m, ts.Create)]
        assert (create.prio, create.resname) == (PRIO_USER_PROCESS, RESNAME)
        assert _calls_by(events, s.task_server.task) == [
            "ipc RmgrTaskNew",
            "ipc SetTaskId",
            "ipc SetPrio",
            "ipc GetTask",
            "sys TaskNew",
        ]


def test_chief_fork_and_exit_follow_the_allocate2_path() -> None:
    """L kernel/dispatch.c@72b0736c:578-591 (allocate and create at first dispatch);
    l4lxlib/l4env/task.c@72b0736c:62-74 (allocate2), 230-238 (own l4_task_new, then
    l4lx_task_prio_set: two l4_thread_schedule, 195-212), 289-292 (delete, stay chief),
    147-155 (chief right to the task server, then free2); kernel/process_gen.c@72b0736c:38-46."""
    assert l4linux_calls("chief") == [
        "ipc AllocateChief",
        "sys TaskNew",
        "sys ThreadSchedule",
        "sys ThreadSchedule",
        "sys TaskNew",
        "sys TaskNew",
        "ipc Free2",
    ]


def test_the_cache_module_fills_its_slots_after_init_with_the_library_allocate() -> None:
    """C examples/lx_task_cache/taskcache.c@552f19d0:35, 91-113 (five allocates at module
    init); lib/client/client.c@552f19d0:114, 117-125 (the parent's allocate, then the
    IPCCAP_HACK probe to the new task's lthread 0)."""
    with boot(task_count=TASKS, linux=1, strategy="chief+cache", cache_size=5) as s:
        me = s.linux[0].task
        calls = _calls_by(s.trace.since(0), me)
        init, fill = calls[:5], calls[5:]
        assert init == [
            "ipc AllocateChief",
            "ipc CapProbe",
            "sys TaskNew",
            "sys ThreadSchedule",
            "sys ThreadSchedule",
        ], "init first, by the library (the module loads later)"
        assert fill == 5 * ["ipc AllocateChief", "ipc CapProbe"]
        probes = [e for e in s.trace.since(0) if type(e) is IpcCall and e.message == CapProbe()]
        assert {p.dst for p in probes} == {*s.linux_states()[0].slots, s.init_processes[0]}


def test_a_cache_hit_makes_no_server_call() -> None:
    """C taskcache.c@552f19d0:57-71, 74-88 (both hooks answer CALLBACK_SKIP);
    lib/client/client.c@552f19d0:109-112, 238-241 (a skip returns before any IPC)."""
    assert l4linux_calls("chief+cache", forks=3) == 3 * [
        "sys TaskNew",
        "sys ThreadSchedule",
        "sys ThreadSchedule",
        "sys TaskNew",
    ]


def test_with_every_slot_taken_fork_and_exit_go_through_the_library() -> None:
    """C taskcache.c@552f19d0:60-69 (no free slot: no skip), 78-79 (an id of no taken
    slot: no skip); lib/client/client.c@552f19d0:114-125 (allocate and probe), 246-253
    (chief right to the server, then free)."""
    with boot(task_count=TASKS, linux=1, strategy="chief+cache", cache_size=1) as s:
        init, me = s.init_processes[0], s.linux[0].task
        cached = s.linux_call(init, Fork())
        mark = s.trace.mark()
        other = s.linux_call(init, Fork())
        s.linux_call(other.task, Exit())
        assert _calls_by(s.trace.since(mark), me) == [
            "ipc AllocateChief",
            "ipc CapProbe",
            "sys TaskNew",
            "sys ThreadSchedule",
            "sys ThreadSchedule",
            "sys TaskNew",
            "sys TaskNew",
            "ipc Free2",
        ]
        assert s.linux_states()[0].cache == ()
        s.linux_call(cached.task, Exit())
        assert s.linux_states()[0].cache == (cached.task,)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            "classic",
            {"Allocate": 1, "Create": 1, "Kill": 1, "Free": 1},
        ),
        (
            "chief",
            {"AllocateChief": 1, "TaskNew": 3, "ThreadSchedule": 2, "Free2": 1},
        ),
        ("chief+cache", {"TaskNew": 2, "ThreadSchedule": 2}),
    ],
)
def test_the_fork_scenario_counts_the_sources_calls_per_fork(
    strategy: str, expected: dict[str, int]
) -> None:
    """Per fork+exit, L4Linux's calls as in the sequences above: classic L l4lxlib/l4env/
    task.c@07d143c8:61-69, 198-210, 245-252, 130-147; chief task.c@72b0736c:62-74,
    230-238, 289-292, 147-155; chief+cache with every fork a cache hit, C taskcache.c
    @552f19d0:57-88."""
    pairs = 4
    counts = server_calls(fork_pairs(strategy, pairs))
    mine = {
        name.split(": ")[1]: n / pairs
        for name, n in counts.items()
        if name.startswith("L4Linux -> ")
    }
    assert mine == expected
    assert not any(k.startswith("L4Linux -> RMGR") for k in counts), "RMGR only via the TS"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            "classic",
            {
                "L4Linux -> task server": 4,
                "task server -> RMGR": 4,
                "RMGR -> kernel: TaskNew": 2,
                "task server -> kernel: TaskNew": 1,
                "RMGR -> kernel: ThreadSchedule": 2,
            },
        ),
        (
            "chief",
            {
                "L4Linux -> task server": 2,
                "task server -> RMGR": 1,
                "RMGR -> kernel: TaskNew": 1,
                "task server -> kernel: TaskNew": 2,
                "L4Linux -> kernel: TaskNew": 3,
                "L4Linux -> kernel: ThreadSchedule": 2,
            },
        ),
    ],
)
def test_every_servers_calls_per_fork_are_the_sources_totals(
    strategy: str, expected: dict[str, int]
) -> None:
    """The whole sequence per fork+exit, every caller: classic 4 task-server calls, 4 RMGR
    calls (task_new, set_task_id, set_prio, get_task), 3 l4_task_new (RMGR 2, the task
    server 1), 2 l4_thread_schedule by RMGR (simple_ts main.c@e91a37df:540-563, 332-338;
    roottask rmgr.c@e91a37df:137-163); chief 2 task-server calls, 1 RMGR call, 6
    l4_task_new (RMGR 1, the task server 2, L4Linux 3), 2 l4_thread_schedule by L4Linux
    (main.c@e91a37df:420-436, 447-470; L task.c@72b0736c:62-74, 195-298)."""
    pairs = 4
    counts = server_calls(fork_pairs(strategy, pairs))
    got: dict[str, float] = {}
    for name, n in counts.items():
        key = name if name.split(": ")[0].endswith("kernel") else name.split(": ")[0]
        got[key] = got.get(key, 0) + n / pairs
    assert got == expected


# -- the effects (spec and actors) ------------------------------------------------------


def test_classic_processes_run_in_tasks_rmgr_created(backend: Any) -> None:
    """The task server creates the task (through RMGR), L4Linux never is its chief:
    L l4lxlib/l4env/task.c@07d143c8:198-210 (l4ts_create_task, no l4_task_new)."""
    run = backend("classic")
    child = fork(run)
    entry = run.snap().kernel.tasks[child.task.task]
    assert entry.active and entry.id == child.task and entry.chief != lx(run).me
    assert entry.pager == run.snap().kernel.tasks[lx(run).me].id


def test_chief_l4linux_creates_and_is_chief_and_sets_the_priority(backend: Any) -> None:
    """L l4lxlib/l4env/task.c@72b0736c:230-238 (own l4_task_new with this server as pager,
    then priority CONFIG_L4_PRIO_SERVER_PROC), 195-212; Kconfig@72b0736c:269-273 (64)."""
    run = backend("chief")
    child = fork(run)
    entry = run.snap().kernel.tasks[child.task.task]
    assert entry.active and entry.chief == lx(run).me and entry.prio == PRIO_SERVER_PROC


@pytest.mark.parametrize("strategy", ["classic", "chief"])
def test_an_exited_process_gives_its_number_back(backend: Any, strategy: str) -> None:
    """classic: kill, then free (L kernel/process_gen.c@07d143c8:89-98); chief: delete,
    chief right to the task server, free2 (L l4lxlib/l4env/task.c@72b0736c:147-155,
    289-292)."""
    run = backend(strategy)
    child = fork(run)
    assert run.call(child.task, Exit()).error is ErrorCode.OK
    snap = run.snap()
    assert not snap.kernel.is_active(child.task.task)
    assert child.task.task not in snap.tasks_of(lx(run).me)
    assert snap.kernel.chief_of(child.task.task) != lx(run).me


def test_init_does_not_come_from_the_cache(backend: Any) -> None:
    """C taskcache.c@552f19d0:91-113, 133: the cache is a module, loaded once Linux runs."""
    run = backend("chief+cache")
    state = lx(run)
    assert len(state.slots) == 5 and state.cache == state.slots
    assert run.init not in state.slots
    for tid in state.slots:
        entry = run.snap().kernel.tasks[tid.task]
        assert not entry.active and entry.chief == state.me


def test_the_cache_hands_out_the_lowest_free_slot_and_takes_back_only_its_ids(
    backend: Any,
) -> None:
    """C taskcache.c@552f19d0:60-66 (the lowest slot not taken), 78-83 (back only when
    equal to a taken slot's id)."""
    run = backend("chief+cache", cache_size=2)
    slots = lx(run).slots
    a, b = fork(run), fork(run)
    assert (a.task, b.task) == slots and lx(run).cache == ()
    run.call(b.task, Exit())
    assert lx(run).cache == (b.task,)
    run.call(run.init, Kill(pid=a.pid))
    assert lx(run).cache == slots, "slot order, not return order"
    assert fork(run).task == slots[0]


def test_the_cache_reuses_the_stored_id_unchanged(backend: Any) -> None:
    """C taskcache.c@552f19d0:64 (``*task = task_cache[i].task``: no new version): the
    next process runs under the id of the one before (finding TASK_CACHE_REUSES_OLD_ID)."""
    run = backend("chief+cache", cache_size=1)
    first = fork(run)
    run.call(first.task, Exit())
    second = fork(run)
    assert second.task == first.task and second.task in lx(run).retired


def test_hardened_restarts_a_cached_task_under_a_new_version(backend: Any) -> None:
    """Fix.TASK_CACHE_REUSES_OLD_ID: the hook bumps the stored id's version and stores it."""
    run = backend("chief+cache", cache_size=1, edition=HARDENED)
    first = fork(run)
    run.call(first.task, Exit())
    second = fork(run)
    assert second.task == first.task.next_version() and lx(run).slots == (second.task,)
    run.call(second.task, Exit())
    assert lx(run).cache == (second.task,)


def test_a_cache_that_cannot_be_filled_frees_what_it_got_and_is_not_loaded(
    backend: Any,
) -> None:
    """C taskcache.c@552f19d0:96-105: a failed allocate frees the slots filled so far and
    the module does not load (no hooks)."""
    run = backend("chief+cache", cache_size=5, managed=5)
    state = lx(run)
    assert state.slots == () and state.cache == ()
    assert run.snap().tasks_of(state.me) == (run.init.task,)
    assert fork(run).error is ErrorCode.OK


def test_an_exited_cached_task_stays_inactive_with_l4linux_its_chief(backend: Any) -> None:
    """L l4lxlib/l4env/task.c@72b0736c:289-292 (delete with l4_task_new(id, myself, nil)),
    then the free hook keeps it (C taskcache.c@552f19d0:78-83)."""
    run = backend("chief+cache", cache_size=1)
    child = fork(run)
    run.call(child.task, Exit())
    snap = run.snap()
    entry = snap.kernel.tasks[child.task.task]
    assert not entry.active and entry.chief == lx(run).me
    assert child.task.task in snap.tasks_of(lx(run).me)


def test_thread_schedule_reads_before_it_sets() -> None:
    """L l4lxlib/l4env/task.c@72b0736c:200-206: read (invalid param), then set if valid."""
    with boot(task_count=TASKS, linux=1, strategy="chief") as s:
        mark = s.trace.mark()
        s.linux_call(s.init_processes[0], Fork())
        sched = [
            e.request
            for e in s.trace.since(mark)
            if type(e) is Syscall and isinstance(e.request, kernel.ThreadSchedule)
        ]
        assert [r.prio for r in sched] == [-1, PRIO_SERVER_PROC]


def test_every_server_runs_init_before_any_cache_module_loads() -> None:
    """C taskcache.c@552f19d0:91-113, 133: the cache is a module of a running Linux, so a
    first server's cache never takes the task a second server's init needs."""
    # 5 task server, 6-7 L4Linux; simple_ts numbers from 10: 10-11 the two inits, 12 the
    # only spare number
    spec = ownership.boot(
        task_count=13, linux_servers=2, strategy=Strategy.CHIEF_CACHE, cache_size=1, managed=3
    )
    with boot(task_count=13, linux=2, strategy="chief+cache", cache_size=1, managed=3) as s:
        for world in (spec, s.snapshot()):
            assert all(len(lx.processes) == 1 for lx in world.linux)
            assert sorted(len(lx.slots) for lx in world.linux) == [0, 1]
