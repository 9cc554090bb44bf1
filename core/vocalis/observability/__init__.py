"""Watching sessions: per-turn metrics, the metrics file, traces and reports."""
