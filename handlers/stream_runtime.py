"""The function's own Lambda Runtime API client, so that a response can stream (`python -m handlers.stream_runtime`).

Python's managed runtime answers every invocation with one buffered payload. Behind a function URL
in RESPONSE_STREAM mode, Lambda forwards whatever a runtime streams to its Runtime API, so with
`stream_responses = true` the managed runtime's exec wrapper (handlers/stream_bootstrap) runs this
client in its place. The protocol is the one AWS's Node.js and Rust runtime clients speak:
`GET /runtime/invocation/next`; an HTTP event is answered by a chunked `POST .../response` in
`streaming` mode whose body is a JSON prelude (status, headers, cookies), eight NUL bytes, then the
response body, each ASGI body message as one chunk as the app sends it; a failure after the first
byte ends the stream with the error trailers. Any other event gets a buffered response.

Only the standard library talks HTTP here: the app is built (and the server imported) by
`handlers.lambda_handler` exactly as for the buffered handler.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

API = "/2018-06-01"
PRELUDE_END = b"\0" * 8
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY = "Lambda-Runtime-Function-Error-Body"

# The request id the log lines of the current invocation carry (Lambda's runtimes do the same).
_current_request_id = ""


class RuntimeApiError(ConnectionError):
    """The Runtime API answered what a runtime cannot go on from (or is gone: the environment ends)."""


class InvocationContext:
    """The Lambda context object, from the headers of `invocation/next` and the environment."""

    identity = None

    def __init__(self, headers: Mapping[str, str]) -> None:
        """`headers`: the names lower-cased."""
        self.aws_request_id = headers["lambda-runtime-aws-request-id"]
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn", "")
        self.deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        client_context = headers.get("lambda-runtime-client-context")
        self.client_context = json.loads(client_context) if client_context else None
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0)
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self) -> int:
        # The deadline is wall-clock epoch milliseconds; the transport stops a request before it.
        return max(0, self.deadline_ms - int(time.time() * 1000))


def error_document(exc: BaseException) -> dict[str, Any]:
    """The error shape Lambda's runtimes report: errorType, errorMessage, stackTrace (one string a frame)."""
    frames = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    if isinstance(exc, SyntaxError) and exc.filename:
        # The mistake's own place, which the traceback of a failed import does not list.
        frames.append(f'  File "{exc.filename}", line {exc.lineno}, in <module>\n    {(exc.text or "").strip()}\n')
    return {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": frames}


class RuntimeApi:
    """One keep-alive connection to the Runtime API at `address` (host:port); one request at a time."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        # No timeout: `next` waits as long as the environment stays frozen between invocations.
        self._conn = http.client.HTTPConnection(host, int(port))

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPMessage]:
        try:
            self._conn.request(method, API + path, body=body, headers=headers or {})
            response = self._conn.getresponse()
            return response.status, response.read(), response.headers
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise RuntimeApiError(f"the Runtime API is unreachable: {exc}") from exc

    def next(self) -> tuple[bytes, http.client.HTTPMessage]:
        status, body, headers = self._request("GET", "/runtime/invocation/next")
        if status != 200:
            raise RuntimeApiError(f"invocation/next answered {status}: {body[:200]!r}")
        return body, headers

    def respond(self, request_id: str, payload: bytes) -> None:
        self._expect_accepted(self._request("POST", f"/runtime/invocation/{request_id}/response", payload))

    def fail(self, request_id: str, error: dict[str, Any]) -> None:
        self._post_error(f"/runtime/invocation/{request_id}/error", error)

    def init_error(self, error: dict[str, Any]) -> None:
        self._post_error("/runtime/init/error", error)

    def _post_error(self, path: str, error: dict[str, Any]) -> None:
        headers = {ERROR_TYPE: f"Runtime.{error['errorType']}", "Content-Type": "application/json"}
        self._expect_accepted(self._request("POST", path, json.dumps(error).encode(), headers))

    @staticmethod
    def _expect_accepted(answer: tuple[int, bytes, http.client.HTTPMessage]) -> None:
        status, body, _ = answer
        if status >= 300:
            raise RuntimeApiError(f"the Runtime API refused a response with {status}: {body[:200]!r}")

    def stream(self, request_id: str) -> ResponseStream:
        return ResponseStream(self._conn, f"{API}/runtime/invocation/{request_id}/response")


class ResponseStream:
    """A streamed HTTP response: opened by the prelude, then one chunk per write, each sent at once."""

    def __init__(self, conn: http.client.HTTPConnection, path: str) -> None:
        self._conn = conn
        self._path = path
        self.started = False

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        joined: dict[str, str] = {}
        cookies: list[str] = []
        for raw_name, raw_value in headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name == "set-cookie":
                cookies.append(value)
            else:
                joined[name] = f"{joined[name]}, {value}" if name in joined else value
        prelude = json.dumps({"statusCode": status, "headers": joined, "cookies": cookies}).encode()
        conn = self._conn
        try:
            if conn.sock is None:
                conn.connect()
            # Each chunk is a small write that must leave now, not wait for the previous one's ACK.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.putrequest("POST", self._path, skip_accept_encoding=True)
            conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Content-Type", "application/vnd.awslambda.http-integration-response")
            conn.putheader("Trailer", f"{ERROR_TYPE}, {ERROR_BODY}")
            conn.endheaders()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RuntimeApiError(f"the Runtime API is unreachable: {exc}") from exc
        self.started = True
        self.write(prelude + PRELUDE_END)

    def write(self, chunk: bytes) -> None:
        if chunk:
            self._send(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def finish(self, error: dict[str, Any] | None = None) -> None:
        """The last chunk; with `error`, the trailers that tell Lambda the invocation failed mid-stream."""
        trailers = b""
        if error is not None:
            body = base64.b64encode(json.dumps(error).encode())
            trailers = b"%s: Runtime.%s\r\n%s: %s\r\n" % (
                ERROR_TYPE.encode(),
                str(error["errorType"]).encode(),
                ERROR_BODY.encode(),
                body,
            )
        self._send(b"0\r\n" + trailers + b"\r\n")
        try:
            response = self._conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise RuntimeApiError(f"the Runtime API is unreachable: {exc}") from exc

    def _send(self, data: bytes) -> None:
        try:
            self._conn.send(data)
        except OSError as exc:
            self._conn.close()
            raise RuntimeApiError(f"the Runtime API is unreachable: {exc}") from exc


class _LambdaLogFormat(logging.Formatter):
    """`[LEVEL]<tab>time<tab>request id<tab>message`, one line a record (Lambda's Python runtime's format).

    Each line on stdout is its own log event in CloudWatch; a traceback's line breaks become
    carriage returns, as the managed runtime writes them, so a record stays one event.
    """

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        record.aws_request_id = _current_request_id
        return super().format(record).replace("\n", "\r")


def log_as_lambda_does() -> None:
    """The root handler Lambda's runtime installs before the init phase (so the SDK's rich handler never is)."""
    # A pipe is block-buffered: without this, Powertools' JSON lines would reach the log in bursts.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_LambdaLogFormat())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())


def serve_one(api: RuntimeApi, handle: Callable[..., Any]) -> None:
    """Wait for the next invocation and answer it."""
    global _current_request_id
    body, headers = api.next()
    context = InvocationContext({name.lower(): value for name, value in headers.items()})
    _current_request_id = request_id = context.aws_request_id
    trace = headers.get("Lambda-Runtime-Trace-Id")
    if trace:
        os.environ["_X_AMZN_TRACE_ID"] = trace
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    out = api.stream(request_id)
    try:
        event = json.loads(body)
        result = handle(event, context, out=out)
        payload = None if out.started else json.dumps(result).encode()
    except RuntimeApiError:
        raise
    except Exception as exc:
        logging.getLogger("handlers.stream_runtime").exception("the invocation failed")
        if out.started:
            out.finish(error_document(exc))
        else:
            api.fail(request_id, error_document(exc))
        return
    if out.started:
        out.finish()
    else:
        api.respond(request_id, payload or b"null")


def main() -> int:
    log_as_lambda_does()
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        from handlers.lambda_handler import stream_handler
    except Exception as exc:  # noqa: BLE001 - any init failure is reported to Lambda through init/error
        error = error_document(exc)
        # One line: where and what (the whole trace goes to init/error); `mcpkit dev` shows the fix below it.
        where = error["stackTrace"][-1].strip().splitlines()[0] if error["stackTrace"] else ""
        logging.getLogger("handlers.stream_runtime").error(
            "the init phase failed: %s: %s (%s)", error["errorType"], error["errorMessage"], where
        )
        api.init_error(error)
        # As Lambda's own runtimes do: the environment is torn down and the next request starts a new one.
        return 1
    while True:
        try:
            serve_one(api, stream_handler)
        except RuntimeApiError as exc:
            # The environment is going away (in Lambda) or its front has stopped (mcpkit dev).
            print(f"mcpkit stream runtime: {exc}", file=sys.stderr)
            return 0


if __name__ == "__main__":
    sys.exit(main())
