"""Chaos testing: inputs and failures nobody should send, sent on purpose (`python -m tests.chaos.fuzz`)."""
