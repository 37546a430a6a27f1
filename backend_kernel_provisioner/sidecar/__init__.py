"""Runs next to the kernel: service manager, health checker and model runner, control channel.

This is the part that must follow a kernel into a container or onto another
host, so it imports neither the server nor the kernels: only ``common``.
"""
