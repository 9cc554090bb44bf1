"""The built-in plugin: vendor-neutral providers that ship with the core."""

from __future__ import annotations
