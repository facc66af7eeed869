"""A loopback web server for client ID metadata documents, counting every fetch (dev mode fetches from loopback)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class DocumentServer:
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.delays: dict[str, float] = {}
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                time.sleep(owner.delays.get(self.path, 0))
                document = owner.documents.get(self.path)
                body = json.dumps(document).encode() if document is not None else b"{}"
                self.send_response(200 if document is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", "max-age=600")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def publish(self, path: str, **overrides: Any) -> str:
        url = f"{self.base}{path}"
        self.documents[path] = {
            "client_id": url,
            "client_name": "hostile CIMD client",
            "redirect_uris": ["http://localhost/callback"],
            "token_endpoint_auth_method": "none",
            **overrides,
        }
        return url

    def count(self, path: str) -> int:
        return self.hits.count(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
