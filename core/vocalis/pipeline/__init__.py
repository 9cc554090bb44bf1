"""Pipelines turn the user's audio into the agent's audio."""
