"""Measure the ownership machine: examples and steps per second, per strategy.

Run: ``python -m tests.measure_ownership [--examples N] [--steps N] [STRATEGY ...]``.
It runs the machine (generation only, no shrinking) on the real system and prints, per
strategy, the examples and steps it ran, the host time, and both rates.  A step is one
call on the actors checked against the spec (a rule may make two).
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from protocols.l4linux import Strategy
from scenarios.check.ownership_machine import counting, machine_for


def measure(strategy: Strategy, examples: int, steps: int) -> tuple[int, int, float]:
    """Run ``examples`` examples of up to ``steps`` rules; return examples, steps, seconds."""
    tally: list[int] = []
    run = settings(
        max_examples=examples,
        stateful_step_count=steps,
        phases=(Phase.generate,),
        database=None,
        deadline=None,
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    )
    start = time.perf_counter()
    run_state_machine_as_test(counting(machine_for(strategy), tally), settings=run)
    seconds = time.perf_counter() - start
    return len(tally), sum(tally), seconds


def main() -> None:
    """Parse arguments, measure each strategy, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("strategies", nargs="*", default=[s.value for s in Strategy])
    args = parser.parse_args()
    for name in args.strategies:
        ex, st, sec = measure(Strategy(name), args.examples, args.steps)
        print(
            f"{name:12} examples={ex:5} steps={st:6} seconds={sec:7.1f} "
            f"examples/s={ex / sec:6.1f} steps/s={st / sec:7.1f}"
        )


if __name__ == "__main__":
    main()
