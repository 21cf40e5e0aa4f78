"""sigma0, the root pager (task 2).  Paging is not modelled: it exists and speaks nothing."""

from __future__ import annotations

from actors.thread import L4Thread

__all__ = ["Sigma0"]


class Sigma0(L4Thread):
    """The root pager's thread; page faults are not part of this model."""
