"""The cycle cost model: machine profiles (``profiles/*.toml``), the pricing of a trace,
the calibration of the constants without a published value, the published figures of other
machines and the price of each fix of the ``hardened`` edition.
"""
