"""``l4sim bench``: how fast the model itself runs (``core``), its probes and the bench's
own threads (``actors``).
"""
