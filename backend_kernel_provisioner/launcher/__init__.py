"""The kernel-side launcher: runs where the kernel runs, hosts its services, answers the provisioner.

``backend-kernel-launcher`` (or ``python -m backend_kernel_provisioner.launcher``)
speaks gateway_provisioners' launcher protocol (:mod:`.payload`, :mod:`.comm_port`),
starts the language kernel as its child (:mod:`.kernel_child`), hosts the kernel's
sidecar next to it, and serves the provisioner's signed channel (:mod:`.channel_server`).
"""
