"""Prompts (filled in by the capability)."""
