"""Shared by every part: the language table, the event bus, the child-process recipe, the control protocol.

Nothing here imports any other part of the package, so the server, the
sidecar, the kernels and the agent can all use it without importing each other.
"""
