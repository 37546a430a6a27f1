"""``python -m backend_kernel_provisioner.kernels <language> -f CONNECTION_FILE``.

The language module ``backend_kernel_provisioner.kernels.languages.<language>`` is
imported by name, so adding a language is adding a module that defines ``kernel_class``.
"""

from __future__ import annotations

import importlib
import re
import sys

#: Modules that register magics shared by every backend kernel when imported.
FEATURE_MODULES = (
    "backend_kernel_provisioner.kernels.service_magics",
    "backend_kernel_provisioner.kernels.batch_magics",
    "backend_kernel_provisioner.kernels.limits_magic",
)


def load_kernel_class(language: str) -> type:
    """The kernel class of ``language``; SystemExit with a clear message when there is none."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", language):
        raise SystemExit(f"backend kernels: invalid language name {language!r}")
    module_name = f"{__package__}.languages.{language}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SystemExit(f"backend kernels: no kernel for language {language!r} "
                         f"(module {module_name} does not exist)") from None
    kernel_class = getattr(module, "kernel_class", None)
    if kernel_class is None:
        raise SystemExit(f"backend kernels: {module_name} defines no kernel_class")
    return kernel_class


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        raise SystemExit("usage: python -m backend_kernel_provisioner.kernels <language> -f CONNECTION_FILE")
    kernel_class = load_kernel_class(args[0])
    for module in FEATURE_MODULES:
        importlib.import_module(module)
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=args[1:], kernel_class=kernel_class)


if __name__ == "__main__":
    main()
