"""Traces for the worker and the CLI alike: which exporter, built from the same words on both sides.

`telemetry.export` is pure (no OpenTelemetry import), so reading and checking the configuration
costs nothing; `telemetry.tracing` imports the SDK and is imported only when an exporter is on.
"""
