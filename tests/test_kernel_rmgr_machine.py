"""The shipped kernel and RMGR conform to their specs under the kernel+RMGR machine.

The machine itself (``scenarios.check.conform.KernelRmgrMachine``) is part of the conformance
kit; this module declares that l4sim's own implementations pass it, in both editions.
"""

from __future__ import annotations

from hypothesis import settings

from protocols.editions import HARDENED, L4ENV_2007
from scenarios.check.conform import kernel_rmgr_machine

SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None)

Shipped = kernel_rmgr_machine(edition=L4ENV_2007)
Shipped.TestCase.settings = SETTINGS
TestShippedKernelAndRmgr = Shipped.TestCase

Hardened = kernel_rmgr_machine(edition=HARDENED)
Hardened.TestCase.settings = SETTINGS
TestHardenedKernelAndRmgr = Hardened.TestCase
