"""Clients for the runner's vendor runtimes (cloud speech, remote R), used by their kernels."""
