"""The public API of opsctl: request documents, plans, results, phases and exit codes.

Pure pydantic and the standard library; no I/O. Workflows import it inside the Temporal
sandbox, the CLI imports it on every start, so it stays small and cheap to load.
"""
