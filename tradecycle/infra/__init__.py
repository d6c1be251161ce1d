"""Plumbing every layer may use: named errors and exit codes, the run lock,
the JSON-lines log, config and database paths read without pydantic, the
environment's secrets and their redaction, how times are written, running
calls at once.

May import: the standard library only, nothing else of tradecycle.
"""
