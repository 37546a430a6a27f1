"""One module per language; each defines ``kernel_class`` (found by ``python -m ...kernels <language>``)."""
