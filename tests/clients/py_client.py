"""//! Test client: a real MCP client built on the official Python SDK (mcp==2.3.0).

Connects over streamable HTTP with `Authorization: Bearer TOKEN`, negotiates the
protocol era, lists tools, calls `echo`, then calls the long-running tool (`slow`
on our Python upstream, `trigger-long-running-operation` on server-everything)
with a progress callback. Prints ONE JSON line:
  {"era","protocolVersion","tools","echo","progress","progressBeforeResult","result"}
On failure prints {"error": "..."} and exits 1.

Usage: python tests/clients/py_client.py --url URL --token TOKEN [--era legacy|modern|auto]
  legacy -> initialize handshake (Client mode="legacy")
  modern -> 2026-07-28 stateless envelope, no probe (Client mode="2026-07-28")
  auto   -> server/discover probe, falls back to initialize (the SDK default)
"""

import argparse
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

MODES = {"legacy": "legacy", "modern": MODERN_PROTOCOL_VERSIONS[-1], "auto": "auto"}


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(url: str, token: str, era: str, prefix: str = "") -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=MODES[era]) as client:
            version = client.protocol_version
            tools = [t.name for t in (await client.list_tools()).tools]
            echo = text_of(await client.call_tool(f"{prefix}echo", {"message": "hi"}))

            if f"{prefix}slow" in tools:
                name, args = f"{prefix}slow", {"steps": 3, "delay_ms": 200}
            elif f"{prefix}trigger-long-running-operation" in tools:
                name, args = f"{prefix}trigger-long-running-operation", {"duration": 1, "steps": 3}
            else:
                raise RuntimeError(f"no long-running tool in {tools}")
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            result = await client.call_tool(name, args, progress_callback=on_progress)
            seen_at_result = len(progress)
            await asyncio.sleep(0.2)  # anything arriving now came after the result
            if result.is_error:
                raise RuntimeError(f"{name} failed: {text_of(result)}")
            return {
                "era": "modern" if version in MODERN_PROTOCOL_VERSIONS else "legacy",
                "protocolVersion": version,
                "tools": tools,
                "echo": echo,
                "progress": progress,
                "progressBeforeResult": seen_at_result > 0 and seen_at_result == len(progress),
                "result": text_of(result),
            }


def describe(exc: BaseException) -> str:
    # anyio task groups wrap failures in ExceptionGroups: report the leaves.
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    ap = argparse.ArgumentParser(description="MCP Python SDK test client")
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--era", choices=sorted(MODES), default="auto")
    ap.add_argument("--tool-prefix", default="", help="namespace of the tools, e.g. 'py__' on /mcp")
    args = ap.parse_args()
    try:
        out = asyncio.run(run(args.url, args.token, args.era, args.tool_prefix))
    except BaseException as exc:  # noqa: BLE001 - one JSON line whatever happened
        print(json.dumps({"error": describe(exc)}), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
