"""Serving many sessions from one process (``vocalis serve``)."""

from __future__ import annotations

from vocalis.serve.server import AdmissionError, ServeOptions, SessionServer

__all__ = ["AdmissionError", "ServeOptions", "SessionServer"]
