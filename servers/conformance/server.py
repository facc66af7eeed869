"""The fixtures that the MCP conformance suite's server scenarios call, by the names they use.

`tests/conformance/test_conformance.py` serves this module through `mcpkit dev` (the Lambda
code path) and runs the suite against it. Scenarios that need a server-to-client message while a
request is open (handshake-revision sampling and elicitation, progress, logging, SSE polling)
cannot be answered by a JSON-only Lambda behind HTTP API; they are listed with the reason in
`expected-failures.txt`, and the fixtures for them are still real, so they start passing once the
runtime can stream. On 2026-07-28 the same questions travel in the result instead
(`InputRequiredResult`, the `test_input_required_result_*` fixtures below), which Lambda can answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample, UserMessage
from mcp.server.mcpserver.tools import Tool
from mcp_types import (
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mcp.server.context import ServerRequestContext

# A 1x1 PNG and a 44-byte WAV header: the smallest valid payloads of each kind.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_EMPTY = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _schema_2020_12_tool() -> Tool:
    def json_schema_2020_12_tool(
        name: str | None = None,
        address: dict[str, Any] | None = None,
        contactMethod: str | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> str:
        """Tool with JSON Schema 2020-12 features"""
        return json.dumps({"name": name, "address": address, "contactMethod": contactMethod})

    tool = Tool.from_function(json_schema_2020_12_tool)
    # The suite checks that these keywords survive into tools/list as written: `$schema`, `$defs`,
    # `additionalProperties` (SEP-1613), and `$anchor`, `allOf`/`anyOf`, `if`/`then`/`else` (SEP-2106).
    tool.parameters = {
        "$schema": JSON_SCHEMA_2020_12,
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": False,
    }
    return tool


mcp = MCPServer("mcpkit-conformance", version="1.0.0", tools=[_schema_2020_12_tool()])


@mcp.tool()
def test_simple_text() -> str:
    """Returns a fixed text."""
    return "This is a simple text response for testing."


@mcp.tool()
def test_image_content() -> list[ImageContent]:
    """Returns a 1x1 PNG."""
    return [ImageContent(type="image", data=PNG_1X1, mime_type="image/png")]


@mcp.tool()
def test_audio_content() -> list[AudioContent]:
    """Returns a tiny WAV."""
    return [AudioContent(type="audio", data=WAV_EMPTY, mime_type="audio/wav")]


@mcp.tool()
def test_embedded_resource() -> list[EmbeddedResource]:
    """Returns an embedded text resource."""
    contents = TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
    )
    return [EmbeddedResource(type="resource", resource=contents)]


@mcp.tool()
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Returns text, an image and an embedded resource in one result."""
    contents = TextResourceContents(
        uri="test://mixed-content-resource", mime_type="application/json", text='{"test": "data", "value": 123}'
    )
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_1X1, mime_type="image/png"),
        EmbeddedResource(type="resource", resource=contents),
    ]


@mcp.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log notifications while it runs."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@mcp.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100 while it runs."""
    for step in (0, 50, 100):
        await ctx.report_progress(progress=step, total=100, message=f"Completed step {step} of 100")
        await asyncio.sleep(0.05)
    meta = ctx.request_context.meta
    return str(meta.get("progressToken", 0) if isinstance(meta, dict) else getattr(meta, "progress_token", 0))


@mcp.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model to complete `prompt` (sampling/createMessage)."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=100
    )
    content = result.content
    return f"LLM response: {content.text if isinstance(content, TextContent) else 'No response'}"


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


@mcp.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for one string (elicitation/create)."""
    result = await ctx.elicit(message=message, schema=UserResponse)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"User response: action={result.action}, content={content}"


class Sep1034Defaults(BaseModel):
    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    verified: bool = Field(default=True, description="Verification status")


@mcp.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits a form whose primitive fields all carry defaults (SEP-1034)."""
    result = await ctx.elicit(message="Please provide user information", schema=Sep1034Defaults)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"Elicitation result: action={result.action}, content={content}"


class Sep1330Enums(BaseModel):
    # camelCase field names are the suite's.
    untitledSingle: str = Field(
        description="Simple enum without titles", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    titledSingle: str = Field(
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "low", "title": "Low Priority"},
                {"const": "medium", "title": "Medium Priority"},
                {"const": "high", "title": "High Priority"},
            ]
        },
    )
    untitledMulti: list[str] = Field(
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "feature", "title": "New Feature"},
                    {"const": "bug", "title": "Bug Fix"},
                    {"const": "docs", "title": "Documentation"},
                ]
            }
        },
    )
    legacyEnum: str = Field(
        description="Legacy enum with enumNames",
        json_schema_extra={
            "enum": ["small", "medium", "large"],
            "enumNames": ["Small Size", "Medium Size", "Large Size"],
        },
    )


@mcp.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits a form with each enum variant of SEP-1330."""
    result = await ctx.elicit(message="Please select values using different enum schema types", schema=Sep1330Enums)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"Elicitation completed: action={result.action}, content={content}"


@mcp.tool()
def test_error_handling() -> str:
    """Always fails, so the client sees a tool error (isError: true)."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@mcp.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE stream mid-call so the client must resume it (SEP-1699)."""
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await asyncio.sleep(0.2)
    await ctx.info("After reconnect")
    return "Reconnection test completed"


@mcp.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource."""
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (the 1x1 PNG)."""
    return base64.b64decode(PNG_1X1)


@mcp.resource("test://template/{id}/data", mime_type="application/json")
def template_data(id: str) -> str:
    """A resource template with one parameter."""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource("test://watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients may subscribe to."""
    return "Watched resource content"


@mcp.prompt()
def test_simple_prompt() -> list[UserMessage]:
    """A prompt without arguments."""
    return [UserMessage(content=TextContent(type="text", text="This is a simple prompt for testing."))]


@mcp.prompt()
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    """A prompt with two required arguments."""
    text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
    return [UserMessage(content=TextContent(type="text", text=text))]


@mcp.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    """A prompt that embeds the resource it is given."""
    contents = TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(content=EmbeddedResource(type="resource", resource=contents)),
        UserMessage(content=TextContent(type="text", text="Please process the embedded resource above.")),
    ]


@mcp.prompt()
def test_prompt_with_image() -> list[UserMessage]:
    """A prompt that carries an image."""
    return [
        UserMessage(content=ImageContent(type="image", data=PNG_1X1, mime_type="image/png")),
        UserMessage(content=TextContent(type="text", text="Please analyze the image above.")),
    ]


# SDK 2.3 leaves `completion()` unannotated.
@mcp.completion()  # type: ignore[no-untyped-call, untyped-decorator]
async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion:
    """Suggests values that start with what the user typed, from a fixed list."""
    candidates = ["paris", "park", "party", "test", "testing"]
    values = [v for v in candidates if v.startswith(argument.value.lower())]
    return Completion(values=values, total=len(values), has_more=False)


# MCPServer has no decorator for logging/setLevel and resources/(un)subscribe (both are handshake-era
# methods, deprecated in 2026-07-28), so they are registered on the low-level server it wraps.
_subscriptions: set[str] = set()


async def _set_level(ctx: ServerRequestContext[Any], params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


async def _subscribe(ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
    _subscriptions.add(str(params.uri))
    return EmptyResult()


async def _unsubscribe(ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams) -> EmptyResult:
    _subscriptions.discard(str(params.uri))
    return EmptyResult()


# No public hook for these methods in SDK 2.3.
_lowlevel = mcp._lowlevel_server
_lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, _set_level)
_lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, _subscribe)
_lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, _unsubscribe)


# ---- 2026-07-28 multi round-trip requests (SEP-2322) -------------------------------------------
# The `input-required-result-*` scenarios name each question's key and wording, so these tools
# return `InputRequiredResult` themselves instead of using the SDK's `Resolve(...)` resolvers (which
# key questions by resolver name). The kit seals every `requestState` below with the key all
# instances share (handlers/request_state.py); a tampered, expired or foreign one never reaches a tool.


def _ask(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _answer(ctx: Context, key: str, field: str) -> Any:
    """What the person entered in `field` for question `key`; None until it was answered and accepted."""
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content and field in answer.content:
        return answer.content[field]
    return None


def _sampled(ctx: Context, key: str) -> str | None:
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, CreateMessageResult) and isinstance(answer.content, TextContent):
        return answer.content.text
    return None


def _roots(ctx: Context, key: str) -> list[str] | None:
    answer = (ctx.input_responses or {}).get(key)
    return [str(root.uri) for root in answer.roots] if isinstance(answer, ListRootsResult) else None


def _still_needed(requests: Mapping[str, InputRequest], state: str | None = None) -> InputRequiredResult:
    return InputRequiredResult(result_type="input_required", input_requests=dict(requests), request_state=state)


@mcp.tool()
def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
    """Asks the person for their name, then greets them."""
    name = _answer(ctx, "user_name", "name")
    if not isinstance(name, str):
        return _still_needed({"user_name": _ask("What is your name?", "name")})
    return f"Hello, {name}!"


@mcp.tool()
def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
    """Asks the client's model a question and returns its answer."""
    text = _sampled(ctx, "capital_question")
    if text is None:
        return _still_needed({"capital_question": _sample("What is the capital of France?", 100)})
    return f"The model answered: {text}"


@mcp.tool()
def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
    """Asks the client for its roots and lists them."""
    roots = _roots(ctx, "client_roots")
    if roots is None:
        return _still_needed({"client_roots": ListRootsRequest()})
    return f"Client roots: {', '.join(roots) or '(none)'}"


_CONFIRM_PENDING = "confirm-pending"


@mcp.tool()
def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
    """Asks for a confirmation and carries state across the round trip."""
    ok = _answer(ctx, "confirm", "ok")
    if ctx.request_state != _CONFIRM_PENDING or not isinstance(ok, bool):
        return _still_needed({"confirm": _ask("Please confirm", "ok", "boolean")}, _CONFIRM_PENDING)
    return f"state-ok: confirmed={ok}"


@mcp.tool()
def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
    """Asks the person, the model and the client's roots in one round."""
    name, greeting, roots = _answer(ctx, "user_name", "name"), _sampled(ctx, "greeting"), _roots(ctx, "client_roots")
    if ctx.request_state != "all-three" or not isinstance(name, str) or greeting is None or roots is None:
        requests: dict[str, InputRequest] = {
            "user_name": _ask("What is your name?", "name"),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        }
        return _still_needed(requests, "all-three")
    return f"{greeting} {name} (roots: {', '.join(roots) or '(none)'})"


@mcp.tool()
def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
    """Asks two questions in two rounds; what round one learnt rides in the sealed state."""
    state = json.loads(ctx.request_state) if ctx.request_state else {}
    name = state.get("name") or _answer(ctx, "step1", "name")
    if not isinstance(name, str):
        return _still_needed({"step1": _ask("Step 1: What is your name?", "name")}, json.dumps({"step": 1}))
    color = _answer(ctx, "step2", "color")
    if state.get("step") != 2 or not isinstance(color, str):
        question = {"step2": _ask("Step 2: What is your favorite color?", "color")}
        return _still_needed(question, json.dumps({"step": 2, "name": name}))
    return f"{name}'s favorite color is {color}."


@mcp.tool()
def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
    """Round two only runs with the untouched state of round one; anything else is refused before this body."""
    ok = _answer(ctx, "confirm", "ok")
    if ctx.request_state != "untampered" or not isinstance(ok, bool):
        return _still_needed({"confirm": _ask("Please confirm", "ok", "boolean")}, "untampered")
    return "state-ok: the requestState came back as it was sealed"


@mcp.tool()
def test_input_required_result_capabilities(ctx: Context) -> str | InputRequiredResult:
    """Asks only for what the client declared it can answer (elicitation, sampling, roots)."""
    declared = ctx.client_capabilities
    wanted: dict[str, InputRequest] = {}
    if declared is not None and declared.elicitation is not None and _answer(ctx, "user_name", "name") is None:
        wanted["user_name"] = _ask("What is your name?", "name")
    if declared is not None and declared.sampling is not None and _sampled(ctx, "greeting") is None:
        wanted["greeting"] = _sample("Generate a greeting", 50)
    if declared is not None and declared.roots is not None and _roots(ctx, "client_roots") is None:
        wanted["client_roots"] = ListRootsRequest()
    if wanted:
        return _still_needed(wanted)
    return "Nothing left to ask for with the capabilities the client declared."


@mcp.prompt()
def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
    """A prompt that first asks the person what context to use."""
    context = _answer(ctx, "user_context", "context")
    if not isinstance(context, str):
        return _still_needed({"user_context": _ask("What context should the prompt use?", "context")})
    return [UserMessage(content=TextContent(type="text", text=f"Use this context: {context}"))]


# ---- server-stateless (SEP-2575) diagnostics ------------------------------------------------------


def _greeting(ctx: Context) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text="Say hello"))], max_tokens=50)


@mcp.tool()
def test_missing_capability(greeting: Annotated[CreateMessageResult, Resolve(_greeting)]) -> str:
    """Needs sampling: a client that did not declare it gets -32021 with `requiredCapabilities.sampling`."""
    return f"The model said: {greeting.content.text if isinstance(greeting.content, TextContent) else '?'}"


@mcp.tool()
def test_streaming_elicitation(ctx: Context) -> str | InputRequiredResult:
    """Needs the person: answered with an InputRequiredResult, never a request of its own on the stream."""
    return test_input_required_result_elicitation(ctx)


@mcp.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs while it runs; nothing reaches a client that did not ask for a log level."""
    await ctx.info("test_logging_tool ran")
    return "Logged once."


@mcp.tool()
async def test_trigger_tool_change(ctx: Context) -> str:
    """Tells listening clients that the tool list changed."""
    await ctx.notify_tools_changed()
    return "Sent notifications/tools/list_changed."


# ---- custom Mcp-Param headers (SEP-2243) ------------------------------------------------------------


_REGION = Field(description="Also sent as Mcp-Param-Region", json_schema_extra={"x-mcp-header": "Region"})
_PRIORITY = Field(description="Also sent as Mcp-Param-Priority", json_schema_extra={"x-mcp-header": "Priority"})


@mcp.tool()
def test_custom_headers(region: Annotated[str, _REGION], priority: Annotated[int, _PRIORITY]) -> str:
    """A tool whose arguments also travel as headers, so a gateway can route on them without reading the body."""
    return f"region={region} priority={priority}"
