"""The chief-ownership state machine, run for each of the four strategies.

How many examples and steps: the Hypothesis profile (``L4SIM_HYPOTHESIS_PROFILE``, see
``conftest.py``).
"""

from __future__ import annotations

from protocols.l4linux import Strategy
from scenarios.check.ownership_machine import machine_for

TestClassic = machine_for(Strategy.CLASSIC).TestCase
TestChief = machine_for(Strategy.CHIEF).TestCase
TestChiefCache = machine_for(Strategy.CHIEF_CACHE).TestCase
TestMerged = machine_for(Strategy.MERGED).TestCase
