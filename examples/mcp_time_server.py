"""A small MCP server over stdio with one tool: the local time in a city.

Run by examples/mcp_agent.py; try it alone with
``vocalis mcp tools -- python examples/mcp_time_server.py``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

CITIES = {
    "tokyo": "Asia/Tokyo",
    "paris": "Europe/Paris",
    "london": "Europe/London",
    "berlin": "Europe/Berlin",
    "new york": "America/New_York",
    "boston": "America/New_York",
    "chicago": "America/Chicago",
    "los angeles": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "sydney": "Australia/Sydney",
    "mumbai": "Asia/Kolkata",
    "singapore": "Asia/Singapore",
}

server = MCPServer("time")


@server.tool()
def get_local_time(city: str) -> str:
    """The current local time in a city, e.g. "Tokyo" or "New York"."""
    zone = CITIES.get(city.strip().lower())
    if zone is None:
        raise ToolError(f"unknown city {city!r}; known: {', '.join(sorted(CITIES))}")
    now = datetime.now(ZoneInfo(zone))
    # Said the way a voice says it ("2:05 PM"): the answer may be read out as
    # it is, and "14:05 (Asia/Tokyo)" comes out of a TTS as "fourteen oh five,
    # Asia slash Tokyo".
    clock = now.strftime("%I:%M %p").lstrip("0")
    return f"It is {clock} on {now:%A} in {city.strip().title()}."


if __name__ == "__main__":
    server.run("stdio")
