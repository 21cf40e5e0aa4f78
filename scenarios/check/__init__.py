"""Checking the protocols: the Hypothesis state machines, the conformance kit
(``l4sim conform``), the exhaustive explorer's command (``l4sim explore``) and the
findings report (``l4sim findings``).
"""
