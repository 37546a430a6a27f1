"""IPython extension loaded by the ``backend-python`` kernelspec.

It adds the magics our other kernels have (batch mode, services) to
ipykernel; each feature registers itself here as it lands.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Register our magics with the running IPython shell."""
    from backend_kernel_provisioner.kernels.limits_magic import register_ipython as register_limits_magic
    from backend_kernel_provisioner.kernels.python.batch_magics import register_ipython as register_batch_magics
    from backend_kernel_provisioner.kernels.service_magics import register_ipython as register_service_magics

    register_service_magics(ipython)
    register_limits_magic(ipython)
    register_batch_magics(ipython)
