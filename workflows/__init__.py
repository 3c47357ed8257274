"""Deterministic workflow code: one module per operation plus the shared lifecycle."""
