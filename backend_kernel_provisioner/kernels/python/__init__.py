"""``backend-python``: ipykernel with exit codes, plus our magics through an IPython extension."""
