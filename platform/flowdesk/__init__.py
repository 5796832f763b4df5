"""Flowdesk: a low-code platform for service processes.

Apps are folders of YAML documents; `flowdesk.model` compiles them into a
frozen `AppModel`, and every runtime layer consumes that model only.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
