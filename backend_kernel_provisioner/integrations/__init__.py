"""Plug-ins loaded by other tools in their own process (papermill's engine and translators)."""
