"""The plots of ``l4sim reproduce --out DIR`` (PNG and SVG, the same bytes every run).

- ``fork_breakdown``: cycles per fork+exit by strategy on the seed machine, in the groups
  the seed argues about (Linux's own work; the IPC path: traps and kernel IPC; address
  space switches; TLB and cache refills; the servers' work; the kernel's task work; the
  timer), once whole and once without Linux's own work so that the per-strategy
  difference is visible; the model's speedups over ``classic`` against the seed's.
- ``getpid_mitigations``: L4Linux getpid under the seed's proposed mitigations.
- ``machines``: every row of every machine, model over published figure, calibrated and
  predicted rows told apart, each row's tolerance as a bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scenarios.report.reproduce import Report

__all__ = ["GROUPS", "write_plots"]

GROUPS: Final = (
    ("Linux's own work", ("work.linux",)),
    ("IPC path (trap + kernel)", ("trap", "ipc")),
    ("address-space switches", ("switch",)),
    ("TLB refills", ("tlb",)),
    ("cache refills", ("cache",)),
    ("servers' work (L4Linux, task server, RMGR)", ("work.l4linux", "work.ts", "work.rmgr")),
    ("kernel task work", ("work.kernel",)),
    ("timer", ("timer",)),
)
"""Breakdown categories (``scenarios.cost.machine.Cost.breakdown``) grouped as the seed does."""

SEED_SPEEDUPS: Final = {"chief": "fork.chief.speedup", "chief+cache": "fork.cache.speedup"}


def _grouped(breakdown: tuple[tuple[str, int], ...]) -> list[int]:
    values = dict(breakdown)
    out = [sum(values.get(k, 0) for k in keys) for _, keys in GROUPS]
    known = {k for _, keys in GROUPS for k in keys}
    out[-1] += sum(v for k, v in values.items() if k not in known)  # anything new: last
    return out


def write_plots(rep: Report, out: Path) -> tuple[Path, ...]:
    """Every plot of the report (the seed machine's only if its rows were measured)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "l4sim"  # fixed ids: the same SVG every run
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if rep.measured is not None:
        written += _fork(plt, rep, out)
        written += _getpid(plt, rep, out)
    written += _machines(plt, rep, out)
    return tuple(written)


def _fork(plt: Any, rep: Report, out: Path) -> list[Path]:
    m = rep.measured
    assert m is not None
    strategies = [s for s, _ in m.forks]
    per = [[v / m.sizes.pairs for v in _grouped(c.breakdown)] for _, c in m.forks]
    seed = {r.spec.id: r.spec.seed for r in rep.rows}
    colours = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for panel, (ax, skip) in enumerate(zip(axes, (0, 1), strict=True)):
        bottoms = [0.0] * len(strategies)
        for g, (name, _) in enumerate(GROUPS):
            if g < skip:
                continue
            values = [row[g] for row in per]
            ax.bar(strategies, values, bottom=bottoms, label=name, color=colours[g % 10])
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_ylabel("cycles per fork+exit" + (" (without Linux's own work)" if skip else ""))
        top = max(bottoms)
        ax.set_ylim(0, top * 1.22)
        if panel == 1:
            for i, strategy in enumerate(strategies):
                text = f"{m.speedup(strategy):+.1%}" if strategy != "classic" else "baseline"
                if strategy in SEED_SPEEDUPS and SEED_SPEEDUPS[strategy] in seed:
                    text += f"\nseed: {seed[SEED_SPEEDUPS[strategy]]:+.0%}"
                ax.text(i, bottoms[i] + top * 0.02, text, ha="center", va="bottom", fontsize=9)
    axes[0].set_title(f"fork+exit by task strategy ({rep.profile.name})")
    axes[1].set_title("the part the strategies change; speedup over classic (model / seed)")
    axes[1].legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    paths = _save(fig, out / "fork_breakdown")
    plt.close(fig)
    return paths


def _getpid(plt: Any, rep: Report, out: Path) -> list[Path]:
    from scenarios.report.rows import native_cycles

    m = rep.measured
    assert m is not None
    getpid = [w for w in rep.whatif if w.id.startswith("getpid.l4linux.cycles.")]
    names = ["2006", *(w.what.removeprefix("L4Linux getpid, ") for w in getpid)]
    values = [getpid[0].baseline or 0.0, *(w.model for w in getpid)] if getpid else []
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.bar(names[: len(values)], values)
    ax.axhline(native_cycles(m), color="black", linestyle="--", label="native Linux")
    ax.set_ylabel("cycles per getpid")
    ax.set_title(f"L4Linux getpid by mitigation ({rep.profile.name})")
    ax.tick_params(axis="x", labelrotation=15, labelsize="small")
    ax.legend()
    fig.tight_layout()
    paths = _save(fig, out / "getpid_mitigations")
    plt.close(fig)
    return paths


def _machines(plt: Any, rep: Report, out: Path) -> list[Path]:
    rows = [r for r in rep.rows if r.spec.seed]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
    for i, r in enumerate(rows):
        s = r.spec
        ratio = r.model / s.seed
        band = s.tolerance if s.relative else s.tolerance / s.seed
        ax.plot([1 - band, 1 + (10 if s.at_least else band)], [i, i], color="0.8", lw=6)
        colour = "tab:blue" if r.kind == "calibrated" else "tab:orange"
        ax.plot([ratio], [i], "o", color=colour)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.spec.machine}: {r.spec.id}" for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.2, 5)
    ax.minorticks_off()
    ticks = (0.25, 0.5, 1.0, 2.0, 4.0)
    ax.set_xticks(ticks, labels=[f"x{t:g}" for t in ticks])
    ax.invert_yaxis()
    ax.set_xlabel("model / published figure (grey: tolerance)")
    ax.plot([], [], "o", color="tab:blue", label="calibrated")
    ax.plot([], [], "o", color="tab:orange", label="predicted")
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("every published figure: model against figure")
    fig.tight_layout()
    paths = _save(fig, out / "machines")
    plt.close(fig)
    return paths


def _save(fig: Any, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        # SVG without a date and with fixed ids, so two runs write the same file.
        meta = {"Date": None} if path.suffix == ".svg" else {"Software": None}
        fig.savefig(path, metadata=meta)
    return paths
