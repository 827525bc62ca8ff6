"""OSCQuery (live.control.oscquery): the namespace fetched over HTTP from the running server
(``python run_live.py --oscquery PORT``), compared with the one table, and a value set by OSC
read back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from live.control import oscspace
from live.control.osc import encode
from live.control.oscquery import lookup
from tests.support.netns import netns_reason, run_in_netns

ROOT = Path(__file__).resolve().parent.parent
P = oscspace.PREFIX


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str) -> object:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")  # no MIDI backend: recording only
    osc_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "run_live.py", "--osc-port", str(osc_port), "--oscquery",
                                 str(http_port), "--no-record", "--status", "log", "--midi-api", "jack"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                fetch(http_port, "/?HOST_INFO")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        yield osc_port, http_port, log_path
        proc.terminate()
        assert proc.wait(timeout=20) == 0, log_path.read_text()


def test_namespace_matches_the_table_and_an_osc_change_reads_back(server):
    osc_port, http_port, _ = server
    info = fetch(http_port, "/?HOST_INFO")
    assert info["OSC_PORT"] == osc_port and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["VALUE"]
    tree = fetch(http_port, "/")
    for address in oscspace.CONTROLS + oscspace.FEEDBACK:
        node = lookup(tree, address.path)
        assert node is not None, address.path
        assert node["FULL_PATH"] == address.path and node["DESCRIPTION"] == address.doc
        assert node.get("TYPE", "") == address.signatures[0], address.path
        assert node["ACCESS"] & 2 == (2 if address in oscspace.CONTROLS else 0), address.path
        if address.low is not None:
            assert node["RANGE"] == [{"MIN": address.low, "MAX": address.high}], address.path
    assert lookup(tree, f"{P}/quantum")["RANGE"] == [{"VALS": ["beat", "bar", "segment"]}]
    assert lookup(tree, f"{P}/brightness")["VALUE"] == [0.0]
    assert fetch(http_port, f"{P}/tempo?VALUE") == {"VALUE": [120.0]}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(encode(f"{P}/brightness", 0.5), ("127.0.0.1", osc_port))
        sock.sendto(encode(f"{P}/quantum", "bar"), ("127.0.0.1", osc_port))
    deadline = time.monotonic() + 5
    while fetch(http_port, f"{P}/brightness?VALUE") != {"VALUE": [0.5]}:
        assert time.monotonic() < deadline, fetch(http_port, f"{P}/brightness")
        time.sleep(0.05)
    while fetch(http_port, f"{P}/state/quantum?VALUE") != {"VALUE": ["bar"]}:
        assert time.monotonic() < deadline, fetch(http_port, f"{P}/state/quantum")
        time.sleep(0.05)
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(http_port, f"{P}/nowhere")
    assert missing.value.code == 404


def zeroconf_reason() -> str | None:
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        return "zeroconf not installed (pip install -e .[oscquery])"
    return None


@pytest.mark.skipif(zeroconf_reason() is not None, reason=str(zeroconf_reason()))
@pytest.mark.skipif(netns_reason() is not None, reason=str(netns_reason()))
def test_advertising_is_found_by_zeroconf_inside_a_network_namespace(tmp_path):
    log = tmp_path / "server.log"
    done = run_in_netns("tests/oscquery_advertise.py", str(log), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                        capture_output=True, text=True, timeout=200)
    server_log = log.read_text() if log.exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + server_log[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["services"] == {"vis2mus-live._oscjson._tcp.local.": result["http_port"]}, (result, server_log)
    assert result["osc_port_matches"] and result["exit"] == 0, result
