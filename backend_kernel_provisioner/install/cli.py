"""``backend-kernels``: install, list and remove the kernelspec set."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from backend_kernel_provisioner.install.kernelspecs import (
    LANGUAGES,
    SPEC_PREFIX,
    available_spec_names,
    missing_programs,
    spec_source_dir,
    toolchain_version,
)


class CliError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backend-kernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    install = sub.add_parser("install", help="install kernelspecs")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (the venv)")
    where.add_argument("--prefix", metavar="DIR", help="install into DIR/share/jupyter/kernels")
    install.add_argument("--language", "-l", action="append", default=[], metavar="L",
                         help="language to install (repeatable); default: every one")
    install.add_argument("--all", action="store_true",
                         help="install even when the toolchain is not found")

    sub.add_parser("list", help="show every kernel, its toolchain and where it is installed")

    remove = sub.add_parser("remove", help="remove installed kernelspecs")
    remove.add_argument("--language", "-l", action="append", default=[], metavar="L",
                        help="language to remove (repeatable); default: every one")
    return parser


def _spec_names(languages: Sequence[str]) -> list[str]:
    shipped = available_spec_names()
    if not languages:
        return shipped
    names = []
    for language in languages:
        name = language if language.startswith(SPEC_PREFIX) else SPEC_PREFIX + language
        if name not in shipped:
            known = ", ".join(n[len(SPEC_PREFIX):] for n in shipped)
            raise CliError(f"unknown language {language!r}; known: {known}")
        names.append(name)
    return names


def _language_of(spec_name: str) -> str:
    return spec_name[len(SPEC_PREFIX):]


def _check_writable(path: str) -> None:
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.access(probe, os.W_OK):
        raise CliError(f"cannot write to {path} ({probe} is not writable)")


def cmd_install(args: argparse.Namespace) -> int:
    names = _spec_names(args.language)
    ksm = KernelSpecManager()
    prefix = args.prefix
    if args.sys_prefix:
        prefix = sys.prefix
    if prefix:
        _check_writable(os.path.join(prefix, "share", "jupyter", "kernels"))
    elif args.user:
        _check_writable(ksm.user_kernel_dir)
    installed = 0
    for name in names:
        entry = LANGUAGES.get(_language_of(name))
        missing = missing_programs(entry) if entry else []
        if missing and not args.all:
            print(f"skipped {name}: toolchain not found (missing: {', '.join(missing)}); use --all to install anyway")
            continue
        try:
            dest = ksm.install_kernel_spec(
                str(spec_source_dir() / name), kernel_name=name, user=args.user, prefix=prefix
            )
        except OSError as exc:
            raise CliError(f"cannot install {name}: {exc}") from exc
        print(f"installed {name} -> {dest}")
        installed += 1
    print(f"{installed} kernelspec(s) installed")
    return 0


def cmd_list(_: argparse.Namespace) -> int:
    installed = KernelSpecManager().find_kernel_specs()
    rows = [("kernel", "language", "toolchain", "installed at")]
    for name in available_spec_names():
        entry = LANGUAGES.get(_language_of(name))
        if entry is None:
            toolchain = "-"
        else:
            version = toolchain_version(entry)
            toolchain = version if version else f"missing: {', '.join(missing_programs(entry))}"
        rows.append((name, _language_of(name), toolchain, installed.get(name, "not installed")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    names = _spec_names(args.language)
    ksm = KernelSpecManager()
    removed = 0
    for name in names:
        try:
            path = ksm.get_kernel_spec(name).resource_dir
        except NoSuchKernel:
            continue
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise CliError(f"cannot remove {name} at {path}: {exc}") from exc
        print(f"removed {name} from {path}")
        removed += 1
    print(f"{removed} kernelspec(s) removed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"install": cmd_install, "list": cmd_list, "remove": cmd_remove}[args.command]
    try:
        return handler(args)
    except CliError as exc:
        print(f"backend-kernels: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
