"""`python cli.py ...` is `flowdesk ...`: a shim for running from a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "platform"))

from flowdesk.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
