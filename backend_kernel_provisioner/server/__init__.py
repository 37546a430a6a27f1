"""Runs in the Jupyter server: the provisioner, its traits, the child environment, the process monitor.

It hosts the kernel's sidecar (services, models, control channel) when the
kernel runs on the same machine.
"""
