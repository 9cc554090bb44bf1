"""Model Context Protocol servers as Vocalis tool sources."""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_mcp.http import MCPServerHTTP
from vocalis_mcp.server import MCPServer, MCPSettings, MCPTool
from vocalis_mcp.stdio import MCPServerStdio

__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio", "MCPSettings", "MCPTool"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
