"""Deadline polling for tests: wait for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from typing import Callable


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.01) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it is true (-> True) or ``timeout`` passes
    (-> False, after one last look)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
