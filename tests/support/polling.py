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


def stays_true(predicate: Callable[[], object], window: float, step: float = 0.01) -> bool:
    """Check ``predicate`` every ``step`` seconds for ``window`` seconds: False as soon as it fails
    (a quiet window that ends early on the first counter-example), True if it held throughout."""
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(step)
    return bool(predicate())
