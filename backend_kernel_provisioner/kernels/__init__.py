"""This project's own Jupyter kernels: a protocol base, process control, and one recipe per language."""
