"""Run inside the network namespace test_oscquery.py creates: start the server with
``--oscquery-advertise`` and browse for ``_oscjson._tcp`` with zeroconf; prints one JSON line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from zeroconf import ServiceBrowser, Zeroconf

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Found:
    def __init__(self) -> None:
        self.services: dict[str, int] = {}

    def add_service(self, zc: Zeroconf, kind: str, name: str) -> None:
        info = zc.get_service_info(kind, name, timeout=10000)
        if info is not None:
            self.services[name] = info.port

    def update_service(self, zc: Zeroconf, kind: str, name: str) -> None:
        self.add_service(zc, kind, name)

    def remove_service(self, zc: Zeroconf, kind: str, name: str) -> None:
        self.services.pop(name, None)


def main() -> int:
    os.environ["JACK_DEFAULT_SERVER"] = f"v2mabsent{os.getpid()}"
    osc_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    with open(sys.argv[1], "w") as log:
        server = subprocess.Popen([sys.executable, "run_live.py", "--osc-port", str(osc_port), "--oscquery",
                                   str(http_port), "--oscquery-advertise", "--no-record", "--no-midi-in",
                                   "--status", "log", "--midi-api", "jack"], cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT)
    zc = Zeroconf(interfaces=["127.0.0.1"])
    found = Found()
    ServiceBrowser(zc, "_oscjson._tcp.local.", found)
    result: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 60
        while not found.services and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.1)
        result["services"] = dict(found.services)
        port = next(iter(found.services.values()), None)
        if port is not None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/?HOST_INFO", timeout=5) as response:
                result["osc_port_matches"] = json.loads(response.read())["OSC_PORT"] == osc_port
        result["http_port"] = http_port
    finally:
        server.terminate()
        result["exit"] = server.wait(timeout=20)
        zc.close()
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
