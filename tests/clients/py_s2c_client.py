"""//! Test client for server→client requests: a real Python SDK (mcp==2.3.0) client that
declares sampling, elicitation and roots and answers them from fixed handlers.

Calls each `--call NAME=JSON_ARGS` tool in order and prints ONE JSON line:
  {"era", "results": {NAME: text | "ERROR: ..."}, "asked": [methods the handlers served]}
Fixed answers: elicitation accepts {"name": "Ada"}; sampling answers "sunny" from model
"test-model"; roots are file:///work/alpha and file:///work/beta.

Usage: python tests/clients/py_s2c_client.py --url URL --token TOKEN [--era legacy|modern|auto]
       [--no-caps] --call NAME=JSON ...
"""

import argparse
import asyncio
import json
import sys

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

MODES = {"legacy": "legacy", "modern": MODERN_PROTOCOL_VERSIONS[-1], "auto": "auto"}


async def run(url: str, token: str, era: str, calls: list[str], caps: bool) -> dict:
    asked: list[str] = []

    async def on_sampling(context, params):
        asked.append("sampling/createMessage")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sunny"), model="test-model"
        )

    async def on_elicit(context, params):
        asked.append("elicitation/create")
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_roots(context):
        asked.append("roots/list")
        return types.ListRootsResult(
            roots=[types.Root(uri="file:///work/alpha", name="alpha"), types.Root(uri="file:///work/beta")]
        )

    handlers = (
        {"sampling_callback": on_sampling, "elicitation_callback": on_elicit, "list_roots_callback": on_roots}
        if caps
        else {}
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=60.0)) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=MODES[era], **handlers) as client:
            results = {}
            for call in calls:
                name, _, raw = call.partition("=")
                try:
                    r = await client.call_tool(name, json.loads(raw or "{}"))
                    text = "".join(getattr(c, "text", "") for c in r.content)
                    results[name] = ("ERROR: " + text) if r.is_error else text
                except Exception as exc:  # noqa: BLE001 - reported per call
                    results[name] = f"ERROR: {type(exc).__name__}: {exc}"
            version = client.protocol_version
            return {
                "era": "modern" if version in MODERN_PROTOCOL_VERSIONS else "legacy",
                "results": results,
                "asked": asked,
            }


def main() -> int:
    ap = argparse.ArgumentParser(description="MCP Python SDK server→client request test client")
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--era", choices=sorted(MODES), default="auto")
    ap.add_argument("--no-caps", action="store_true", help="declare no sampling/elicitation/roots")
    ap.add_argument("--call", action="append", default=[])
    args = ap.parse_args()
    try:
        out = asyncio.run(run(args.url, args.token, args.era, args.call, not args.no_caps))
    except BaseException as exc:  # noqa: BLE001 - one JSON line whatever happened
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
