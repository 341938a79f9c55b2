"""The TLS server both Azure stand-ins run on: 127.0.0.1, a free port, a certificate from a fresh test CA."""

from __future__ import annotations

import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import trustme


class TlsStandin:
    """Start/stop of an HTTPS stand-in (azure-core refuses bearer tokens over plain http). Subclasses set
    `handler` (whose requests reach the stand-in as `self.server.standin`) and call `_tls_init()` once."""

    handler: type[BaseHTTPRequestHandler]
    thread_name = "standin"

    def _tls_init(self, prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.ca = trustme.CA()
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")  # what a client passes as connection_verify
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name,
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
