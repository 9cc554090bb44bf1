"""Tools the LLM can call: function tools (:mod:`.function`) and the runner (:mod:`.runner`)."""

from vocalis.tools.function import FunctionTool, ToolContext, ToolError, function_tool

__all__ = ["FunctionTool", "ToolContext", "ToolError", "function_tool"]
