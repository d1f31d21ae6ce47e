"""``python -m aitel.collector --port 4319 --store aitel.db --token T``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
