"""Payload encryption: the keyring, the AES-GCM codec, and the codec server that decodes for people.

Shared by the worker, the CLI and `opsctl codec-server`; it imports `contracts` only.
"""
