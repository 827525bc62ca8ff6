"""OSCQuery: the OSC address space served over HTTP, so controllers can list and map the controls.

``namespace(state, anchors)`` builds the OSCQuery tree (JSON) from ``live.control.oscspace`` (the
one table): every address with its ``TYPE``, ``RANGE`` (``MIN``/``MAX`` or ``VALS``), ``ACCESS``
(1 read, 2 write, 3 both), ``DESCRIPTION`` and current ``VALUE`` from the performance state.
``OscQueryServer`` answers ``GET /`` (the whole tree), ``GET /vis2mus/tempo`` (one node),
``GET /vis2mus/tempo?VALUE`` (one attribute) and ``GET /?HOST_INFO``, on 127.0.0.1 unless told
otherwise; ``advertise()`` announces it with zeroconf (``_oscjson._tcp``) when the optional
``zeroconf`` package is installed.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from live.control import oscspace
from live.control.osc import state_messages
from live.control.params import QUANTA, SOURCES, Params, State

log = logging.getLogger(__name__)

READ, WRITE = 1, 2
STATE_PREFIX = f"{oscspace.PREFIX}/state/"
CHOICES = {f"{oscspace.PREFIX}/quantum": QUANTA, f"{oscspace.PREFIX}/source": SOURCES,
           f"{STATE_PREFIX}quantum": QUANTA, f"{STATE_PREFIX}source": SOURCES}
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "TYPE": True,
              "CLIPMODE": False, "UNIT": False, "TAGS": False, "LISTEN": False, "PATH_CHANGED": False}


def values(state: State) -> dict[str, list[object]]:
    """Current values by path: each ``/vis2mus/state/X`` and the control ``/vis2mus/X`` it reports."""
    out: dict[str, list[object]] = {}
    for path, value in state_messages(state):
        out[path] = [value]
        control = oscspace.PREFIX + "/" + path[len(STATE_PREFIX):]
        address = oscspace.BY_PATH.get(control)
        if address is not None and address in oscspace.CONTROLS and address.signatures[0]:
            out[control] = [value]
    out[f"{oscspace.PREFIX}/style"] = [state.content or "", state.anchor]
    return out


def node(address: oscspace.Address, current: dict[str, list[object]], anchors: tuple[str, ...]) -> dict[str, Any]:
    """The OSCQuery node of one address."""
    signature = address.signatures[0]
    access = WRITE if address in oscspace.CONTROLS else READ
    if address.path in current and address in oscspace.CONTROLS:
        access |= READ
    entry: dict[str, Any] = {"FULL_PATH": address.path, "ACCESS": access, "DESCRIPTION": address.doc}
    if signature:
        entry["TYPE"] = signature
        if address.low is not None and address.high is not None:
            entry["RANGE"] = [{"MIN": address.low, "MAX": address.high}]
        elif address.path in CHOICES:
            entry["RANGE"] = [{"VALS": list(CHOICES[address.path])}]
        elif address.path.endswith("/anchor") and signature == "s":
            entry["RANGE"] = [{"VALS": list(anchors)}]
        if address.path in current:
            entry["VALUE"] = list(current[address.path])
    return entry


def namespace(state: State, anchors: tuple[str, ...]) -> dict[str, Any]:
    """The whole OSCQuery tree: containers for every path prefix, nodes for every address."""
    current = values(state)
    root: dict[str, Any] = {"FULL_PATH": "/", "DESCRIPTION": "vis2mus-live", "CONTENTS": {}}
    for address in oscspace.CONTROLS + oscspace.FEEDBACK:
        parts = address.path.strip("/").split("/")
        container = root
        for depth, part in enumerate(parts[:-1]):
            contents = container.setdefault("CONTENTS", {})
            container = contents.setdefault(part, {"FULL_PATH": "/" + "/".join(parts[:depth + 1])})
        contents = container.setdefault("CONTENTS", {})
        existing = contents.get(parts[-1], {})
        contents[parts[-1]] = {**existing, **node(address, current, anchors)}
    return root


def lookup(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The node at ``path`` in ``tree`` (``None`` when there is none)."""
    current = tree
    for part in [p for p in path.split("/") if p]:
        current = current.get("CONTENTS", {}).get(part)
        if current is None:
            return None
    return current


class OscQueryServer:
    """HTTP server for the OSCQuery namespace on ``host:port`` (port 0 picks a free one).

    Every request reads the current state and anchor names of ``params`` (``live.control.params.
    Params``; a re-scan may change the anchors); ``osc_port`` is where the OSC server listens.
    """

    def __init__(self, params: Params, osc_port: int, host: str = "127.0.0.1", port: int = 0,
                 osc_host: str = "127.0.0.1") -> None:
        self.params = params
        self.osc_port = osc_port
        self.osc_host = osc_host
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner._answer(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("OSCQuery %s", format % args)

        try:
            self._http = ThreadingHTTPServer((host, port), Handler)
        except OSError as error:
            raise OSError(f"cannot serve OSCQuery on {host}:{port}: {error.strerror or error}") from None
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="oscquery", daemon=True)
        self._zeroconf = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    def host_info(self) -> dict[str, Any]:
        return {"NAME": "vis2mus-live", "OSC_IP": self.osc_host, "OSC_PORT": self.osc_port, "OSC_TRANSPORT": "UDP",
                "EXTENSIONS": EXTENSIONS}

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = unquote(url.query)
        if query == "HOST_INFO":
            return self._send(request, 200, self.host_info())
        found = lookup(namespace(self.params.snapshot(), tuple(self.params.anchors)), unquote(url.path))
        if found is None:
            return self._send(request, 404, {"error": f"no OSC address {url.path}"})
        if query:
            if query not in found:
                return self._send(request, 204, None)
            return self._send(request, 200, {query: found[query]})
        return self._send(request, 200, found)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, body: object) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        request.send_response(code)
        if body is not None:
            request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def start(self) -> "OscQueryServer":
        self._thread.start()
        log.info("OSCQuery on http://%s:%d/", *self.address)
        return self

    def advertise(self) -> bool:
        """Announce ``_oscjson._tcp`` (and the OSC port as ``_osc._udp``) with zeroconf, on the
        interface the server is bound to (every interface for 0.0.0.0); False, with one line, when
        the package is missing or the network refuses."""
        try:
            from zeroconf import ServiceInfo, Zeroconf
        except ImportError:
            log.warning("OSCQuery advertising needs the zeroconf package (pip install zeroconf); not advertised")
            return False
        host, port = self.address
        wide = host == "0.0.0.0"
        name = "vis2mus-live"
        try:
            ip = socket.inet_aton(socket.gethostbyname(socket.gethostname()) if wide else host)
            self._zeroconf = Zeroconf() if wide else Zeroconf(interfaces=[host])
            for kind, service_port in (("_oscjson._tcp.local.", port), ("_osc._udp.local.", self.osc_port)):
                self._zeroconf.register_service(ServiceInfo(kind, f"{name}.{kind}", addresses=[ip], port=service_port,
                                                            server=f"{name}.local."))
        except Exception as error:  # no multicast route, no interface: the server goes on without it
            log.warning("OSCQuery advertising failed: %s", error)
            return False
        return True

    def stop(self) -> None:
        if self._zeroconf is not None:
            self._zeroconf.unregister_all_services()
            self._zeroconf.close()
            self._zeroconf = None
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()
