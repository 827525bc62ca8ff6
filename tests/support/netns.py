"""A private network namespace for the tests that multicast (Ableton Link, zeroconf): loopback up,
multicast routed to it, so peers inside find each other and nothing reaches the real network."""

from __future__ import annotations

import shutil
import subprocess
import sys

SETUP = "ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$@\""
"""Shell run by ``unshare -n`` before the script: loopback up with multicast routed to it."""


def netns_reason() -> str | None:
    """Why a network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        return "cannot create a network namespace here (unshare -n needs CAP_SYS_ADMIN)"
    return None


def run_in_netns(script: str, *args: str, **run: object) -> subprocess.CompletedProcess:
    """``python script args...`` in a new network namespace (``subprocess.run`` keywords in ``run``)."""
    return subprocess.run(["unshare", "-n", "sh", "-c", SETUP, sys.executable, script, *args], **run)
