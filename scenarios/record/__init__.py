"""Recording runs: boot an L4Linux system, drive a loop, keep the trace.

``l4world`` boots and drives; ``traces`` records each scenario's trace once per process so
that ``run``, ``trace``, ``reproduce``, ``calibrate`` and ``bench`` price the same run.
"""
