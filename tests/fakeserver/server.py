"""The HTTP plumbing: a ``ThreadingHTTPServer`` on keep-alive HTTP/1.1, no access
log, request bodies (chunked too), recording, latency, and the scripted faults
(status, delay, drop, late_accept, garbage) applied around dispatch."""

from __future__ import annotations

import json
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .common import PREFIXES, Headers, RecordedRequest, Reply, _Drop, _Stopping

if TYPE_CHECKING:
    from .core import FakeServices


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never join handler threads that sleep in a fault
    allow_reuse_address = True
    # The listen backlog: a 100-symbol cycle opens some 200 connections at once, faster than the
    # accept loop takes them. A full backlog drops the SYN and the client retries a second later:
    # a benchmark would then time the kernel's retransmit timer, not the tool (no real service
    # drops connection 129 of a burst).
    request_queue_size = 1024
    fake: FakeServices

    def handle_error(self, request: Any, client_address: Any) -> None:  # no tracebacks on stderr
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, OSError, _Stopping)):
            with self.fake.lock:
                self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services
    # Without this, a reply on a reused keep-alive connection waits ~40 ms for the client's
    # delayed ACK (Nagle's algorithm): benchmarks would measure the fake, not the tool.
    disable_nagle_algorithm = True
    server_version = "fakeserver/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # no access log
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.fake.lock:
            self.server.fake._connections.discard(self.connection)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _handle(self) -> None:
        fake = self.server.fake
        try:
            self._serve(fake)
        except (_Stopping, _Drop):
            self._hang_up()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True  # the client went away (e.g. gave up on a late reply)
        except Exception:
            with fake.lock:
                fake.errors.append(traceback.format_exc())
            try:
                self._send(Reply(500, {"error": "fakeserver bug", "traceback": traceback.format_exc()}))
            except OSError:
                self.close_connection = True

    def _serve(self, fake: FakeServices) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        service, subpath = "", path
        for name, prefix in PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                service, subpath = name, path[len(prefix):] or "/"
                break
        req = RecordedRequest(service=service, method=self.command, path=path, subpath=subpath, query=query,
                              headers=Headers(self.headers.items()), json=body, body=raw, time=time.time())
        fault = fake._take_fault(service, self.command, path, subpath)
        req.fault = fault.kind if fault else None
        with fake.lock:
            fake.requests.append(req)

        fake._sleep(fake.latency_seconds)
        if fault is None:
            self._send(fake._dispatch(req))
            return
        params = fault.params
        if fault.kind == "status":
            self._send(fake._error_reply(service, int(params["status"]), params.get("message"),
                                         params.get("headers"), params.get("body")))
        elif fault.kind == "delay":
            fake._sleep(float(params.get("seconds", 1.0)))
            self._send(fake._dispatch(req))
        elif fault.kind == "drop":
            if params.get("accept"):
                fake._dispatch(req)
            raise _Drop()
        elif fault.kind == "late_accept":
            reply = fake._dispatch(req)  # the broker has the order now...
            fake._sleep(float(params.get("seconds", 1.0)))  # ...but the client hears of it late
            self._send(reply)
        elif fault.kind == "hook":  # the test's own code around the reply: reorder, fill, kill
            if params.get("before"):
                params["before"](req)
            reply = fake._dispatch(req)
            if params.get("after"):
                params["after"](req, reply)
            self._send(reply)
        elif fault.kind == "garbage":
            self._send(Reply(200, params.get("body", "<html><body>502 Bad Gateway</body></html>"),
                             dict(params.get("headers") or {}), params.get("content_type", "application/json")))

    def _send(self, reply: Reply) -> None:
        payload = reply.encode()
        self.send_response(reply.status)
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        if reply.status != 204 or payload:
            if "content-type" not in headers:
                self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.values():
            self.send_header(name, str(value))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
