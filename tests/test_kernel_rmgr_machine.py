"""The shipped kernel and RMGR conform to their specs under the kernel+RMGR machine.

The machine itself (``scenarios.conform.KernelRmgrMachine``) is part of the conformance
kit; this module declares that l4sim's own implementations pass it.
"""

from __future__ import annotations

from hypothesis import settings

from scenarios.conform import kernel_rmgr_machine

Shipped = kernel_rmgr_machine()
Shipped.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestShippedKernelAndRmgr = Shipped.TestCase
