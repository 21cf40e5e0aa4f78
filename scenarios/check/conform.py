"""The conformance kit: run l4sim's protocol suite against your implementation.

Bring an implementation of a protocol as an importable factory (``module:name``, a class
or a zero-argument callable returning one) and the kit runs the Hypothesis state machine
of that protocol with your class in place of l4sim's: after every step every reply must
equal the reference spec's and every invariant must hold.  From the command line::

    l4sim conform rmgr mypackage.rmgr:MyRmgr

From pytest (a test module of your own)::

    from scenarios.check.conform import conformance_test
    TestMyRmgr = conformance_test("rmgr", "mypackage.rmgr:MyRmgr")

What your class must be, per protocol:

``kernel``
    A subclass of ``actors.kernel.KernelActor`` (or a drop-in with the same constructor
    ``(runtime, task_count)``) answering ``Trap`` with the kernel's replies and
    ``Observe`` with a ``protocols.kernel.KernelState``.
``rmgr``
    An ``actors.thread.L4Thread`` subclass speaking ``protocols.rmgr`` (configured by
    ``RmgrConfig`` and ``StartModules`` controls like ``actors.rmgr.RmgrActor``) and
    answering ``Observe`` with a ``protocols.rmgr.RmgrState``.
``task_server``
    A task-server thread speaking ``protocols.task_server``: a subclass of
    ``actors.task_server.TaskServer`` (override what you change) or an edited copy of
    that module's class; run in the whole-system ownership machine
    (two L4Linux servers and a misbehaving client) with the ``classic`` and ``chief``
    strategies, which use every task-server request.
``cache``
    An L4Linux server with its task cache: a subclass or an edited copy of
    ``actors.l4linux.L4LinuxServer``; run in the
    ownership machine with the ``chief+cache`` strategy.

For ``task_server`` and ``cache`` the chief-ownership invariants of protocols.invariants
(the eight promises, 4 also per request) are checked after every step, and every reply
and the whole system's snapshot must equal the spec's (``protocols.ownership``).
"""

from __future__ import annotations

import importlib
import os
import sys
import unittest
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    run_state_machine_as_test,
)

from actors.images import factory
from actors.kernel import KernelActor
from actors.l4linux import L4LinuxServer
from actors.rmgr import RmgrActor
from actors.task_server import TaskServer
from actors.thread import L4Thread
from protocols import invariants as inv
from protocols.editions import HARDENED, Edition
from protocols.ids import ThreadId
from protocols.l4linux import EIP_L4LINUX, Strategy
from protocols.task_server import EIP_TASK_SERVER
from scenarios.check.kernel_rmgr_machine import (
    SpecWorld,
    Stats,
    kernel_rmgr_machine,
)
from scenarios.check.ownership_machine import machine_for

__all__ = [
    "PROTOCOLS",
    "SpecWorld",
    "ConformError",
    "ConformanceReport",
    "conformance_test",
    "kernel_rmgr_machine",
    "load_factory",
    "run_conformance",
]


class ConformError(ValueError):
    """The implementation could not be loaded or does not fit the protocol's contract."""


# -- the kit -----------------------------------------------------------------------------


def ownership_machines(
    implementation: type,
    eip: int,
    strategies: tuple[Strategy, ...],
    edition: Edition = HARDENED,
) -> tuple[type[RuleBasedStateMachine], ...]:
    """The ownership machine, one per strategy, with ``implementation`` at image ``eip``,
    running ``edition``'s rules; the invariants are checked only in ``hardened`` (the
    seed's system breaks them: see ``protocols.findings``)."""
    stats = Stats()
    machines = []
    for strategy in strategies:
        base = machine_for(
            strategy,
            IMAGES={eip: factory(implementation)},
            EDITION=edition,
            CHECK_INVARIANTS=edition == HARDENED,
        )

        class Counted(base):  # type: ignore[valid-type,misc]
            def __init__(self) -> None:
                stats.examples += 1
                super().__init__()

            def call(self, sender: ThreadId, dest: ThreadId, request: object) -> object:
                got = super().call(sender, dest, request)
                name = type(request).__name__
                stats.steps += 1
                stats.rules[f"{self.STRATEGY.value}: {name}"] += 1
                error = getattr(got, "error", None)
                stats.outcomes[f"{name} {getattr(error, 'name', 'ok')}"] += 1
                return got

        Counted.__name__ = base.__name__
        Counted.stats = stats
        machines.append(Counted)
    return tuple(machines)


OWNERSHIP_INVARIANTS: tuple[str, ...] = (
    "replies and snapshot equal the spec",
    *(f.__name__ for f in inv.STATE_INVARIANTS),
    *(f.__name__ for f in inv.TRANSITION_INVARIANTS),
)


@attrs.frozen(kw_only=True)
class Protocol:
    """One protocol the kit can check: how to build its machines around an implementation."""

    name: str
    summary: str
    base: type
    machines: Callable[[type, Edition], tuple[type[RuleBasedStateMachine], ...]]
    invariants: tuple[str, ...]


PROTOCOLS: dict[str, Protocol] = {
    "kernel": Protocol(
        name="kernel",
        summary="l4_task_new and the task table (Fiasco)",
        base=KernelActor,
        machines=lambda cls, ed: (kernel_rmgr_machine(kernel_class=cls, edition=ed),),
        invariants=(
            "actors_match_the_spec",
            "every_task_has_exactly_one_chief",
            "task_new_succeeds_only_for_the_chief",
        ),
    ),
    "rmgr": Protocol(
        name="rmgr",
        summary="the RMGR task protocol (roottask)",
        base=RmgrActor,
        machines=lambda cls, ed: (kernel_rmgr_machine(rmgr_class=cls, edition=ed),),
        invariants=(
            "actors_match_the_spec",
            "every_task_has_exactly_one_chief",
            "task_new_succeeds_only_for_the_chief",
        ),
    ),
    "task_server": Protocol(
        name="task_server",
        summary="the task server, allocate_chief and free2 (simple_ts)",
        base=TaskServer,
        machines=lambda cls, ed: ownership_machines(
            cls, EIP_TASK_SERVER, (Strategy.CLASSIC, Strategy.CHIEF), ed
        ),
        invariants=OWNERSHIP_INVARIANTS,
    ),
    "cache": Protocol(
        name="cache",
        summary="the L4Linux task cache (lx_task_cache)",
        base=L4LinuxServer,
        machines=lambda cls, ed: ownership_machines(cls, EIP_L4LINUX, (Strategy.CHIEF_CACHE,), ed),
        invariants=OWNERSHIP_INVARIANTS,
    ),
}


def load_factory(target: str) -> type:
    """Import ``module:name``; call it if it is a factory function; return the class."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConformError(f"expected module:factory, got {target!r}")
    if os.getcwd() not in sys.path:  # like pytest and uvicorn: import from where you stand
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConformError(f"cannot import {module_name}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConformError(f"{module_name} has no {attr}") from None
    if not isinstance(obj, type) and callable(obj):
        obj = obj()
    if not isinstance(obj, type):
        raise ConformError(f"{target} is not a class nor a factory returning one")
    return obj


@attrs.frozen(kw_only=True)
class ConformanceReport:
    """The verdict of the kit on one implementation."""

    protocol: str
    implementation: str
    edition: str
    ok: bool
    examples: int
    steps: int
    rules: tuple[tuple[str, int], ...]
    outcomes: tuple[tuple[str, int], ...]
    invariants: tuple[str, ...]
    counterexample: str | None = None
    failure: str | None = None

    def render(self) -> str:
        """The report as printed by ``l4sim conform``."""
        verdict = "CONFORMS" if self.ok else "DOES NOT CONFORM"
        lines = [
            f"{self.implementation} as {self.protocol} ({self.edition}): {verdict}",
            f"  {self.examples} examples, {self.steps} steps",
            "  spec rules exercised: "
            + ", ".join(f"{name} x{count}" for name, count in self.rules),
        ]
        held = "held" if self.ok else "checked"
        lines.append(f"  invariants {held} after every step: " + ", ".join(self.invariants))
        if self.outcomes:
            lines.append("  outcomes: " + ", ".join(f"{k} x{v}" for k, v in self.outcomes))
        if not self.ok:
            lines.append(f"  failure: {self.failure}")
            if self.counterexample:
                lines.append("  shrunk counterexample:")
                lines += [f"    {line}" for line in self.counterexample.splitlines()]
        return "\n".join(lines)


_INVARIANT_CALLS = (
    "actors_match_the_spec",
    "every_task_has_exactly_one_chief",
    "the_eight_invariants_hold",
)
"""Invariant methods of the kit's machines (left out of printed counterexamples)."""


def _program(notes: list[str], invariants: tuple[str, ...]) -> str | None:
    """The shrunk steps Hypothesis noted, without the invariant checks between them."""
    lines = "\n".join(notes).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("state = ")]
    if not starts:
        return None
    calls = tuple(f"state.{name}()" for name in invariants)
    program = []
    for line in lines[starts[-1] :]:
        if line.strip() in calls:
            continue
        program.append(line)
        if line.startswith("state.teardown()"):
            break
    return "\n".join(program)


def run_conformance(
    protocol: str,
    implementation: type | str,
    *,
    max_examples: int = 60,
    steps: int = 30,
    derandomize: bool = True,
    edition: Edition = HARDENED,
) -> ConformanceReport:
    """Run the protocol's machine with ``implementation`` in place of l4sim's, against
    ``edition``'s rules (``hardened``: the spec and every invariant; ``l4env-2007``: the
    spec of the seed's system, whose findings break the ownership invariants)."""
    proto = PROTOCOLS.get(protocol)
    if proto is None:
        raise ConformError(f"unknown protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    cls = load_factory(implementation) if isinstance(implementation, str) else implementation
    # Duck typing: a subclass of ours or an edited copy of our module both qualify; what
    # counts is that it is a Pykka actor built like ours (see the module docstring).
    if not issubclass(cls, pykka.Actor) or (
        issubclass(proto.base, L4Thread) != issubclass(cls, L4Thread)
    ):
        kind = "an L4Thread (actors.thread)" if issubclass(proto.base, L4Thread) else "a kernel"
        raise ConformError(
            f"{cls.__name__} is not a Pykka actor usable as {kind}; "
            f"see what the {protocol} protocol expects in scenarios/check/conform.py"
        )
    machines = proto.machines(cls, edition)
    failure: str | None = None
    counterexample: str | None = None
    for machine in machines:
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=max_examples,
                    stateful_step_count=steps,
                    deadline=None,
                    derandomize=derandomize,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    report_multiple_bugs=False,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
                ),
            )
        except Exception as exc:  # the machine failed: the implementation does not conform
            failure = f"{machine.__name__}: {type(exc).__name__}: {exc}".splitlines()[0]
            counterexample = _program(getattr(exc, "__notes__", []), _INVARIANT_CALLS)
            break
    stats: Stats = machines[0].stats  # type: ignore[attr-defined]
    return ConformanceReport(
        protocol=protocol,
        implementation=implementation if isinstance(implementation, str) else cls.__qualname__,
        ok=failure is None,
        examples=stats.examples,
        steps=stats.steps,
        rules=tuple(sorted(stats.rules.items())),
        outcomes=tuple(sorted(stats.outcomes.items())),
        invariants=proto.invariants
        if edition == HARDENED or protocol in ("kernel", "rmgr")
        else OWNERSHIP_INVARIANTS[:1],
        edition=edition.name,
        counterexample=counterexample,
        failure=failure,
    )


def conformance_test(
    protocol: str, implementation: type | str, **settings_: Any
) -> type[unittest.TestCase]:
    """A test case class for pytest/unittest that fails unless the implementation conforms."""

    class ConformanceTest(unittest.TestCase):
        def test_conforms(self) -> None:
            report = run_conformance(protocol, implementation, **settings_)
            if not report.ok:
                self.fail(report.render())

    ConformanceTest.__name__ = f"Conformance_{protocol}"
    return ConformanceTest
