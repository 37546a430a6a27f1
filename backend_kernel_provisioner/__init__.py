"""backend-kernel-provisioner: a multi-language kernel runner as a Jupyter plugin."""

__version__ = "0.1.0"

PROVISIONER_NAME = "backend-kernel-provisioner"
