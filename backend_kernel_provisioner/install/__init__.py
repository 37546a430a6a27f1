"""Installing the kernelspec set: the spec folders and the ``backend-kernels`` command."""
