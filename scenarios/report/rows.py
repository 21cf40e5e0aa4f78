"""The rows of ``l4sim reproduce``: each figure of the seed, how the model computes it
from the measured runs, its tolerance, and the verdict of one model value against it.

A row is **calibrated** when one constant was solved against that very figure (its
``calibrated_by``), **predicted** otherwise; the tolerances are given in
``scenarios.report.reproduce``'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from scenarios.cost.figures import MachineSpec
from scenarios.cost.profile import DEFAULT_PROFILE
from scenarios.report.measure import Measured

__all__ = ["SPECS", "Row", "Spec", "native_cycles"]


@attrs.frozen(kw_only=True)
class Spec:
    """A figure of the seed: its seed value and how to check the model."""

    id: str
    figure: str
    seed: float
    unit: str
    tolerance: float
    relative: bool
    calibrated_by: str
    """The constant solved against this figure; empty for a prediction."""
    model: Callable[[Measured], float]
    machine: str = DEFAULT_PROFILE
    at_least: bool = False
    source: str = "seed: l4linux-blog-2006"
    miss_reason: str = ""


def native_cycles(m: Measured) -> float:
    return m.native.cycles / m.sizes.native_calls


def _l4linux_cycles(m: Measured) -> float:
    return m.l4linux_cycles_per_call


def _native_misses(m: Measured) -> float:
    return m.native.tlb_misses * 100_000 / m.sizes.native_calls


def _l4linux_misses(m: Measured) -> float:
    return m.l4linux_misses_per_call


def _l4linux_switches(m: Measured) -> float:
    return m.l4linux.count("switches") / m.sizes.l4linux_calls


SPECS: Final = (
    Spec(
        id="getpid.native.cycles",
        figure="sys_getpid() natively",
        seed=260,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="cpu.trap_cycles",
        model=native_cycles,
    ),
    Spec(
        id="getpid.l4linux.cycles",
        figure="sys_getpid() on L4Linux (IPC round trip)",
        seed=3700,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="ipc.path_cycles",
        model=_l4linux_cycles,
    ),
    Spec(
        id="getpid.native.tlb_misses_per_100k",
        figure="TLB misses in 100,000 native getpid calls",
        seed=200,
        unit="misses",
        tolerance=0.25,
        relative=True,
        calibrated_by="timer.other_pages",
        model=_native_misses,
    ),
    Spec(
        id="getpid.l4linux.tlb_misses_per_call",
        figure="TLB misses per L4Linux getpid call",
        seed=6,
        unit="misses",
        tolerance=0.1,
        relative=False,
        calibrated_by="working-set sizes (actors/working_sets.py)",
        model=_l4linux_misses,
    ),
    Spec(
        id="getpid.l4linux.switches_per_call",
        figure="context switches per L4Linux system call",
        seed=2,
        unit="switches",
        tolerance=0.05,
        relative=False,
        calibrated_by="",
        model=_l4linux_switches,
    ),
    Spec(
        id="read.blocking.cycles",
        figure="blocking sys_read() on L4Linux",
        seed=2_700_000,
        unit="cycles",
        tolerance=0.05,
        relative=True,
        calibrated_by="work.wait.read",
        model=lambda m: m.read.cycles,
    ),
    Spec(
        id="fork.chief.speedup",
        figure="fork+exit with allocate_chief vs task server",
        seed=0.10,
        unit="speedup",
        tolerance=0.03,
        relative=False,
        calibrated_by="",
        model=lambda m: m.speedup("chief"),
    ),
    Spec(
        id="fork.cache.speedup",
        figure="fork+exit with allocate_chief + task cache",
        seed=0.20,
        unit="speedup",
        tolerance=0.02,
        relative=False,
        calibrated_by="work.linux.fork",
        model=lambda m: m.speedup("chief+cache"),
    ),
)
"""Every figure of the seed, in its order, with its tolerance."""


@attrs.frozen(kw_only=True)
class Row:
    """One line of the table."""

    spec: Spec | MachineSpec
    model: float

    @property
    def deviation(self) -> float:
        """Relative deviation (cycles, misses per 100k) or absolute (misses, speedups)."""
        if self.spec.relative:
            return self.model / self.spec.seed - 1
        return self.model - self.spec.seed

    @property
    def ok(self) -> bool:
        """Within tolerance (for a lower bound: at or above it, less the tolerance)."""
        if self.spec.at_least:
            return self.deviation >= -self.spec.tolerance - 1e-12
        return abs(self.deviation) <= self.spec.tolerance + 1e-12

    @property
    def known_miss(self) -> bool:
        """Out of tolerance for the documented reason (``miss_reason``)."""
        return not self.ok and bool(self.spec.miss_reason)

    @property
    def verdict(self) -> str:
        """``ok``, ``miss`` (out of tolerance, reason documented) or ``FAIL``."""
        return "ok" if self.ok else "miss" if self.known_miss else "FAIL"

    @property
    def kind(self) -> str:
        """``calibrated`` or ``predicted``."""
        return "calibrated" if self.spec.calibrated_by else "predicted"

    def tolerance_text(self) -> str:
        """The tolerance as printed."""
        s = self.spec
        if s.at_least:
            return f">= {s.seed - s.tolerance:g}"
        if s.relative:
            return f"{s.tolerance:.0%}"
        if s.unit == "speedup":
            return f"±{s.tolerance * 100:.0f} pp"
        return f"±{s.tolerance:g}"

    def deviation_text(self) -> str:
        """The deviation as printed."""
        if self.spec.relative:
            return f"{self.deviation:+.1%}"
        if self.spec.unit == "speedup":
            return f"{self.deviation * 100:+.1f} pp"
        return f"{self.deviation:+.3f}"

    def to_json(self) -> dict[str, object]:
        """The row in ``--json``."""
        s = self.spec
        return {
            "id": s.id,
            "machine": s.machine,
            "source": s.source,
            "figure": s.figure,
            "seed": s.seed,
            "model": round(self.model, 4),
            "unit": s.unit,
            "deviation": round(self.deviation, 5),
            "tolerance": self.tolerance_text(),
            "kind": self.kind,
            "calibrated_by": s.calibrated_by or None,
            "ok": self.ok,
            "verdict": self.verdict,
            "miss_reason": s.miss_reason if self.known_miss else None,
        }
