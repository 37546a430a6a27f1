"""Shim: kernelspecs installed before the layout change start ``python -m backend_kernel_provisioner.python_kernel``."""

from backend_kernel_provisioner.kernels.python.kernel import main

if __name__ == "__main__":
    main()
