"""deltaglider: versioned build artifacts on S3-compatible storage as binary deltas.

This module exports the public API only; each submodule owns one job (see its docstring).
"""

__version__ = "7.0.0"

__all__ = ["__version__"]
