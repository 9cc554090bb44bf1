"""Registering providers and commands: hookspecs, the plugin manager, the registry."""
