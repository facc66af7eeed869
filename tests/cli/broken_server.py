"""A tiny MCP + OAuth server for `mcpkit check`'s tests, correct unless told to break one thing.

Each `Faults` flag removes or breaks exactly one thing a connector depends on, so every red item
of the checklist can be provoked on its own. It runs under uvicorn on loopback, in a thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.requests import Request

GOOD_TOKEN = "good-token"
CLAUDE_COM = "https://claude.com/api/mcp/auth_callback"


@dataclass(frozen=True)
class Faults:
    no_www_authenticate: bool = False
    remapped_challenge: bool = False
    prm_only_at_root: bool = False
    prm_only_at_path: bool = False
    no_s256: bool = False
    dcr_without_registration_client_uri: bool = False
    claude_callback_refused: bool = False
    cursor_scheme_refused: bool = False
    no_cors_expose_headers: bool = False
    no_auth: bool = False
    challenge_scope_not_listed: bool = False
    no_private_key_jwt: bool = False
    chatgpt_callback_refused: bool = False
    # Answers as a Lambda function URL does (x-amzn-requestid; the 401's challenge renamed).
    function_url: bool = False
    listen_not_streamed: bool = False


def build_app(base: str, faults: Faults) -> Starlette:
    clients: dict[str, list[str]] = {}

    def cors(request: Request, response: Response) -> Response:
        origin = request.headers.get("origin")
        if origin:
            response.headers["access-control-allow-origin"] = origin
            if not faults.no_cors_expose_headers:
                response.headers["access-control-expose-headers"] = (
                    "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version"
                )
        return response

    async def mcp(request: Request) -> Response:
        response = await answer(request)
        if faults.function_url:
            response.headers["x-amzn-requestid"] = "5f4b7a52-1111-4c1e-9a7e-3e2f1b0c9d8e"
        return response

    async def answer(request: Request) -> Response:
        if request.method == "OPTIONS":
            return cors(
                request,
                Response(
                    status_code=204,
                    headers={
                        "access-control-allow-methods": "GET, POST, DELETE",
                        "access-control-allow-headers": (
                            "authorization, content-type, mcp-protocol-version, mcp-session-id"
                        ),
                    },
                ),
            )
        if not faults.no_auth and request.headers.get("authorization") != f"Bearer {GOOD_TOKEN}":
            challenge = f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
            challenge += ', scope="files:admin"' if faults.challenge_scope_not_listed else ', scope="files:read"'
            headers = {}
            if faults.remapped_challenge or faults.function_url:
                headers["x-amzn-remapped-www-authenticate"] = challenge
            elif not faults.no_www_authenticate:
                headers["www-authenticate"] = challenge
            return cors(request, JSONResponse({"error": "invalid_token"}, status_code=401, headers=headers))
        message: dict[str, Any] = await request.json()
        method = message.get("method")
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "broken", "version": "1"},
            }
        elif method == "server/discover":
            result = {
                "supportedVersions": ["2025-11-25", "2026-07-28"],
                "capabilities": {},
                "serverInfo": {"name": "b"},
            }
        elif method == "tools/list":
            result = {"tools": [{"name": "ping_tool", "inputSchema": {"type": "object"}}]}
        elif method == "subscriptions/listen" and not faults.listen_not_streamed:
            frames = [
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/subscriptions/acknowledged",
                    "params": {"notifications": {}},
                },
                {"jsonrpc": "2.0", "id": message.get("id"), "result": {}},
            ]
            body = "".join(f"event: message\ndata: {json.dumps(f)}\n\n" for f in frames)
            return cors(request, Response(body, media_type="text/event-stream"))
        elif method == "subscriptions/listen":
            result = {}
        else:
            return JSONResponse({"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": -32601, "message": "?"}})
        response = JSONResponse({"jsonrpc": "2.0", "id": message.get("id"), "result": result})
        response.headers["mcp-session-id"] = "s1"
        return cors(request, response)

    async def prm(request: Request) -> Response:
        at_root = request.url.path == "/.well-known/oauth-protected-resource"
        if (faults.prm_only_at_root and not at_root) or (faults.prm_only_at_path and at_root):
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(
            {"resource": f"{base}/mcp", "authorization_servers": [base], "scopes_supported": ["files:read"]}
        )

    async def as_metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "registration_endpoint": f"{base}/oauth/register",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["plain"] if faults.no_s256 else ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "none"]
                + ([] if faults.no_private_key_jwt else ["private_key_jwt"]),
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
                "client_id_metadata_document_supported": True,
            }
        )

    async def register(request: Request) -> Response:
        body = await request.json()
        redirects = list(body.get("redirect_uris", []))
        if faults.claude_callback_refused and CLAUDE_COM in redirects:
            return JSONResponse({"error": "invalid_redirect_uri", "error_description": "unknown host"}, status_code=400)
        if faults.chatgpt_callback_refused and any(r.startswith("https://chatgpt.com/connector/") for r in redirects):
            return JSONResponse({"error": "invalid_redirect_uri", "error_description": "unknown host"}, status_code=400)
        if faults.cursor_scheme_refused and any(r.startswith("cursor:") for r in redirects):
            return JSONResponse({"error": "invalid_redirect_uri", "error_description": "bad scheme"}, status_code=400)
        client_id = f"client-{len(clients) + 1}"
        clients[client_id] = redirects
        response: dict[str, Any] = {
            "client_id": client_id,
            "client_secret": "s3cret",
            "token_endpoint_auth_method": "client_secret_post",
            "redirect_uris": redirects,
        }
        if not faults.dcr_without_registration_client_uri:
            response |= {
                "registration_client_uri": f"{base}/oauth/register/{client_id}",
                "registration_access_token": "rat",
            }
        return JSONResponse(response, status_code=201)

    async def unregister(request: Request) -> Response:
        clients.pop(request.path_params["client_id"], None)
        return Response(status_code=204)

    async def authorize(request: Request) -> Response:
        query = request.query_params
        if query.get("redirect_uri") not in clients.get(query.get("client_id", ""), []):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        return RedirectResponse(f"{base}/login", status_code=302)

    return Starlette(
        routes=[
            Route("/mcp", mcp, methods=["POST", "OPTIONS"]),
            Route("/.well-known/oauth-protected-resource", prm),
            Route("/.well-known/oauth-protected-resource/mcp", prm),
            Route("/.well-known/oauth-authorization-server", as_metadata),
            Route("/oauth/register", register, methods=["POST"]),
            Route("/oauth/register/{client_id}", unregister, methods=["DELETE"]),
            Route("/oauth/authorize", authorize),
        ]
    )


@contextlib.contextmanager
def serve(faults: Faults) -> Iterator[str]:
    """Run the server on a free loopback port; yields its /mcp URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(build_app(base, faults), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the broken test server did not start")
        time.sleep(0.01)
    try:
        yield f"{base}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
