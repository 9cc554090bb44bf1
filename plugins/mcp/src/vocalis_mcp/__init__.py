"""Model Context Protocol servers as Vocalis tool sources."""

from __future__ import annotations

from vocalis_mcp.http import MCPServerHTTP
from vocalis_mcp.server import MCPServer, MCPSettings, MCPTool
from vocalis_mcp.stdio import MCPServerStdio

__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio", "MCPSettings", "MCPTool"]
