"""Bench upstream: a real MCP server on the official Python SDK (the same stack as
tests/upstreams/py_server.py) with exactly 10 tools — `echo` and tool_01..tool_09 — so the
bench knows what every registered server adds to `/mcp` tools/list.

Serves streamable HTTP at /mcp: 2026-07-28 stateless requests and 2025-11-25 sessions alike.
Usage: python bench/upstreams/ten_tools.py --port N (0 picks one); prints "READY <port>".
"""

import argparse
import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

TOOLS = 10  # what the bench expects per registered server
KEEP_ALIVE_S = 300  # idle keep-alive connections are kept this long (see main)

mcp = MCPServer("bench-ten-tools", version="1.0.0")


@mcp.tool(description="Echo the message back, prefixed with 'echo: '.")
def echo(message: str) -> str:
    return f"echo: {message}"


def _filler(n: int):
    def tool(text: str = "") -> str:
        return f"tool_{n:02d}: {text}"

    return tool


for _n in range(1, TOOLS):
    mcp.add_tool(_filler(_n), name=f"tool_{_n:02d}", description=f"Bench filler tool number {_n}.")


if "--padded" in sys.argv:
    # bench/guard.mjs only (an 11th tool; the list rows never pass the flag).
    @mcp.tool(description="Echo the message back, followed by `size` bytes of plain text.")
    def padded(message: str, size: int = 16384) -> str:
        filler = "The quarterly report lists revenue by region and product line. "
        return f"echo: {message} " + (filler * (size // len(filler) + 1))[:size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--padded", action="store_true", help="add the tool `padded` (bench/guard.mjs)")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    # The gateway forwards its own Host header: no DNS-rebinding Host/Origin checks.
    app = mcp.streamable_http_app(
        host=args.host,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets created with it (else
    # every response waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    # Idle keep-alive connections stay open longer than any pause of the bench: uvicorn's default
    # (5 s) closes them while the gateway's pool may be reusing one, and the call in flight on it
    # fails ("lost the connection"; a tools/call is not retried) — an upstream setting, not what
    # the soak is meant to measure.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=KEEP_ALIVE_S)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
