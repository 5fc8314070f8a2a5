"""Durable file writes: what every writer of the user's files (index, uploads, converted
models) needs to survive a crash."""

from __future__ import annotations

import os
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush a file or folder (a rename inside it) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
