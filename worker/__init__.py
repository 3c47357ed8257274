"""Wiring only: settings, the Temporal client, activity instances, and the Worker itself."""
