"""The experiments and the measuring apparatus: scenarios, pricing, reports, the CLI."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
