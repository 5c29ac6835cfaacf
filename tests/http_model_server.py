"""A real HTTP file server on 127.0.0.1 for the download tests, with Range support and scripted misbehaviour.

`ModelServer(files)` serves `{url_name: path}`. Per file it can drop the connection part-way through the first
responses (`drop_after`), serve damaged bytes (`corrupt`), ignore Range requests (`no_range`), send a body without
Content-Length that never ends (`endless`) or redirect elsewhere (`redirect_to`). With `tls` (an SSL context holding
a certificate) it serves https. Every request is logged in `requests` as (path, Range header or None, status).
"""

from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Behaviour:
    drop_after: int | None = None  # bytes of the body sent before the connection is cut
    drops: int = 1  # how many responses are cut that way
    corrupt: bool = False  # flip bytes in the middle of the file (same size, wrong content)
    no_range: bool = False  # answer every request with the whole file (200), like servers without Range support
    endless: bool = False  # no Content-Length, then zeros until the client hangs up
    redirect_to: str | None = None  # answer 302 with this Location


@dataclass
class ModelServer:
    files: dict[str, Path]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    sent: dict[str, int] = field(default_factory=dict)  # body bytes written per file (for the endless body)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="model-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls is not None else 'http'}://{host}:{port}/"

    def __enter__(self) -> "ModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def body(self, name: str) -> bytes:
        data = Path(self.files[name]).read_bytes()
        if self.behaviours.get(name, Behaviour()).corrupt:
            middle = len(data) // 2
            data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
        return data

    def _log(self, path: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.requests.append((path, range_header, status))

    def _take_drop(self, name: str) -> int | None:
        with self._lock:
            behaviour = self.behaviours.get(name)
            if behaviour is None or behaviour.drop_after is None or behaviour.drops <= 0:
                return None
            behaviour.drops -= 1
            return behaviour.drop_after

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                name = unquote(self.path.lstrip("/"))
                range_header = self.headers.get("Range")
                if name not in server.files:
                    server._log(name, range_header, 404)
                    self.send_error(404, "Not Found")
                    return
                behaviour = server.behaviours.get(name, Behaviour())
                if behaviour.redirect_to:
                    server._log(name, range_header, 302)
                    self.send_response(302)
                    self.send_header("Location", behaviour.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if behaviour.endless:
                    server._log(name, range_header, 200)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    zeros = bytes(64 * 1024)
                    try:
                        while True:
                            self.wfile.write(zeros)
                            with server._lock:
                                server.sent[name] = server.sent.get(name, 0) + len(zeros)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                        return
                data = server.body(name)
                start, end, status = 0, len(data) - 1, 200
                if range_header and not behaviour.no_range:
                    match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
                    if not match or int(match.group(1)) >= len(data):
                        server._log(name, range_header, 416)
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    start = int(match.group(1))
                    end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
                    status = 206
                body = data[start : end + 1]
                server._log(name, range_header, status)
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                cut = server._take_drop(name)
                try:
                    if cut is not None and cut < len(body):
                        self.wfile.write(body[:cut])
                        self.wfile.flush()
                        self.close_connection = True  # the client sees the connection end before Content-Length
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client hung up (a cancelled download)

        return Handler


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for the refused-connection case)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
