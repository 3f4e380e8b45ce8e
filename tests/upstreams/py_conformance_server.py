"""//! Test upstream: the conformance suite's fixture server, built on the official Python SDK
(mcp==2.3.0), so the conformance test exercises real content relaying through the gateway.

The server scenarios of @modelcontextprotocol/conformance call tools, resources and prompts with
fixed names (`test_simple_text`, `test://static-text`, `test_simple_prompt`, ...). An upstream
without them answers most scenarios with "unknown tool", which says nothing about a proxy in
front of it. This server has them: text, image, audio, embedded-resource and mixed content,
logging and progress during a call, an error, sampling and elicitation (server→client requests
in 2025-11-25), static and templated resources, a subscribable resource, prompts with
arguments, images and embedded resources, completion and logging/setLevel; the 2026-07-28
diagnostic tools `test_logging_tool` and `test_streaming_elicitation`, and the tasks scenarios'
plain tools `greet`, `slow_compute`, `confirm_delete` and `failing_job` (no task support). Streamable HTTP at
/mcp, both eras like tests/upstreams/py_server.py.

Usage: python tests/upstreams/py_conformance_server.py --port N   (prints "READY <port>")
"""

import argparse
import asyncio
import base64
import json
import socket
import sys

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import (
    AudioContent,
    Completion,
    EmbeddedResource,
    ImageContent,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)
from pydantic import BaseModel, Field

# A 1×1 PNG and a tiny WAV: valid media, small enough to read in a failure message.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

mcp = MCPServer("py-conformance-upstream", version="1.0.0")
subscriptions: set[str] = set()


@mcp.tool()
def test_simple_text() -> str:
    """Answers with one text block."""
    return "This is a simple text response for testing."


@mcp.tool()
def test_image_content() -> list[ImageContent]:
    """Answers with one PNG image block."""
    return [ImageContent(type="image", data=PNG, mime_type="image/png")]


@mcp.tool()
def test_audio_content() -> list[AudioContent]:
    """Answers with one WAV audio block."""
    return [AudioContent(type="audio", data=WAV, mime_type="audio/wav")]


def _embedded(uri: str, mime: str, text: str) -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime, text=text))


@mcp.tool()
def test_embedded_resource() -> list[EmbeddedResource]:
    """Answers with an embedded text resource."""
    return [_embedded("test://embedded-resource", "text/plain", "This is an embedded resource content.")]


@mcp.tool()
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Answers with text, an image and an embedded resource."""
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG, mime_type="image/png"),
        _embedded("test://mixed-content-resource", "application/json", '{"test": "data", "value": 123}'),
    ]


@mcp.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three log messages while it runs."""
    for step in ("started", "processing data", "completed"):
        await ctx.info(f"Tool execution {step}")
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@mcp.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100 while it runs."""
    for p in (0, 50, 100):
        await ctx.report_progress(progress=p, total=100, message=f"Completed step {p} of 100")
        await asyncio.sleep(0.05)
    return "Tool with progress executed successfully"


@mcp.tool()
def test_error_handling() -> str:
    """Always fails (a tool execution error, isError: true)."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@mcp.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model (sampling/createMessage) and returns its answer."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=100,
    )
    text = result.content.text if getattr(result.content, "type", None) == "text" else "No response"
    return f"LLM response: {text}"


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


async def _elicit(ctx: Context, message: str, schema: type[BaseModel]) -> str:
    result = await ctx.elicit(message=message, schema=schema)
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"User response: action={result.action}, content={content}"


@mcp.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user (elicitation/create) and returns what came back."""
    return await _elicit(ctx, message, UserResponse)


class Defaults(BaseModel):
    """Every primitive type with a default (SEP-1034)."""

    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]})
    verified: bool = Field(default=True, description="Verification status")


@mcp.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits a form whose fields all have defaults."""
    return await _elicit(ctx, "Please provide user information", Defaults)


class Enums(BaseModel):
    """The enum shapes of SEP-1330."""

    untitledSingle: str = Field(description="Plain enum", json_schema_extra={"enum": ["active", "inactive", "pending"]})
    titledSingle: str = Field(
        description="Titled options",
        json_schema_extra={"oneOf": [{"const": c, "title": t} for c, t in [("low", "Low"), ("medium", "Medium"), ("high", "High")]]},
    )
    untitledMulti: list[str] = Field(
        description="Multi-select", json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}}
    )
    titledMulti: list[str] = Field(
        description="Titled multi-select",
        json_schema_extra={"items": {"anyOf": [{"const": c, "title": t} for c, t in [("feature", "Feature"), ("bug", "Bug"), ("docs", "Docs")]]}},
    )
    legacyEnum: str = Field(
        description="enumNames",
        json_schema_extra={"enum": ["small", "medium", "large"], "enumNames": ["Small", "Medium", "Large"]},
    )


@mcp.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits a form with every enum shape."""
    return await _elicit(ctx, "Please select values using different enum schema types", Enums)


@mcp.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs one message: a 2026-07-28 request without a log level must not receive it."""
    await ctx.info("test_logging_tool ran")
    return "logged"


@mcp.tool()
async def test_streaming_elicitation(ctx: Context) -> str:
    """Asks for input mid-call: in 2026-07-28 that may only be an input-required result, never
    a request of the server's own on the response stream."""
    try:
        return await _elicit(ctx, "Please respond", UserResponse)
    except Exception as e:  # noqa: BLE001 - no way to ask in this era: say so in the result
        return f"elicitation unavailable: {e}"


@mcp.tool()
def greet(name: str) -> str:
    """A plain synchronous tool (the tasks scenarios' `greet`)."""
    return f"Hello, {name}!"


@mcp.tool()
async def slow_compute(seconds: float = 0, label: str = "") -> str:
    """Sleeps `seconds` (at most 2) and answers; the tasks scenarios' `slow_compute`, without
    task support."""
    await asyncio.sleep(min(max(seconds, 0), 2))
    return f"computed {label}"


@mcp.tool()
def confirm_delete(filename: str) -> str:
    """The tasks scenarios' `confirm_delete`, answered at once (no task support)."""
    return f"not deleted: {filename}"


@mcp.tool()
def failing_job() -> str:
    """The tasks scenarios' `failing_job`: a tool execution error."""
    raise RuntimeError("failing_job always fails")


@mcp.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource."""
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (a PNG)."""
    return base64.b64decode(PNG)


@mcp.resource("test://template/{id}/data", mime_type="application/json")
def template(id: str) -> str:
    """A templated resource."""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource("test://watched-resource", mime_type="text/plain")
def watched() -> str:
    """A resource clients may subscribe to."""
    return "Watched resource content"


@mcp.prompt()
def test_simple_prompt() -> list[UserMessage]:
    """A prompt without arguments."""
    return [UserMessage(TextContent(type="text", text="This is a simple prompt for testing."))]


@mcp.prompt()
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    """A prompt with two required arguments."""
    return [UserMessage(TextContent(type="text", text=f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]


@mcp.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    """A prompt carrying an embedded resource."""
    return [
        UserMessage(_embedded(resourceUri, "text/plain", "Embedded resource content for testing.")),
        UserMessage(TextContent(type="text", text="Please process the embedded resource above.")),
    ]


@mcp.prompt()
def test_prompt_with_image() -> list[UserMessage]:
    """A prompt carrying an image."""
    return [
        UserMessage(ImageContent(type="image", data=PNG, mime_type="image/png")),
        UserMessage(TextContent(type="text", text="Please analyze the image above.")),
    ]


@mcp.completion()
async def complete(ref, argument, context):
    return Completion(values=[], total=0, has_more=False)


async def on_subscribe(ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def on_unsubscribe(ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    subscriptions.discard(str(params.uri))
    return types.EmptyResult()


async def on_set_level(ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


mcp._lowlevel_server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
mcp._lowlevel_server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)
mcp._lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    # The suite's own DNS-rebinding scenario expects an upstream on localhost to check Host and
    # Origin; the gateway forwards its own Host, so the check stays off here as in py_server.py.
    app = mcp.streamable_http_app(
        host=args.host,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
