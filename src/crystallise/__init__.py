"""Crystallise AI backend."""
