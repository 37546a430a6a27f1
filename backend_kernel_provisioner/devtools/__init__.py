"""Developer tools, not used at run time: the demo (``./dev demo``) and the configuration docs generator."""
