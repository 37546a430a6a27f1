"""``backend-kernels``: install, list and remove the kernelspec set.

``install --provisioner NAME --remote-host HOST --name-suffix -remote`` installs a
second set beside the plain one (``backend-c-remote``, "C (backend, remote)")
whose specs run the same argv and config through another provisioner, so that
JupyterLab offers local and remote kernels side by side.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from backend_kernel_provisioner import PROVISIONER_NAME
from backend_kernel_provisioner.install.kernelspecs import (
    LANGUAGES,
    SPEC_PREFIX,
    available_spec_names,
    load_spec_json,
    missing_programs,
    spec_source_dir,
    toolchain_version,
)

#: The entry-point group jupyter_client looks provisioners up in (``jupyter kernelspec provisioners``).
PROVISIONER_GROUP = "jupyter_client.kernel_provisioners"
#: What may follow a shipped spec's name in an installed one: a separator first, so that ``backend-c`` plus a
#: suffix can never be another language's spec (``backend-cpp``), and only characters of kernel names.
NAME_SUFFIX = re.compile(r"^[-._][a-z0-9][a-z0-9._-]*$")


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
    install.add_argument("--provisioner", default=PROVISIONER_NAME, metavar="NAME",
                         help=f"kernel provisioner the specs select, an entry point of {PROVISIONER_GROUP} "
                         f"(default: {PROVISIONER_NAME}; for other hosts: backend-distributed-provisioner)")
    install.add_argument("--remote-host", action="append", default=[], metavar="HOST",
                         help="host the kernels may run on (repeatable): the provisioner's remote_hosts")
    install.add_argument("--name-suffix", default="", metavar="S",
                         help="install backend-<language>-S beside the plain specs: --name-suffix remote (or "
                         "--name-suffix=-remote) installs backend-c-remote, display name 'C (backend, remote)'")

    sub.add_parser("list", help="show every kernel, its toolchain, provisioner and where it is installed")

    remove = sub.add_parser("remove", help="remove installed kernelspecs")
    remove.add_argument("--language", "-l", action="append", default=[], metavar="L",
                        help="language to remove (repeatable); default: every one")
    remove.add_argument("--name-suffix", default="", metavar="S",
                        help="remove the specs installed with this --name-suffix (only those)")
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


def _name_suffix(text: str) -> str:
    """The checked ``--name-suffix``: lower case (as kernel names are), ``-`` added in front unless it starts
    with a separator (argparse takes ``--name-suffix -remote`` for an option: ``remote`` is the easy spelling)."""
    suffix = text.lower()
    if suffix and suffix[0] not in "-._":
        suffix = "-" + suffix
    if suffix and not NAME_SUFFIX.match(suffix):
        raise CliError(f"--name-suffix {text!r}: letters, digits, '.', '_' or '-' only, for example remote "
                       "(kernel names backend-c-remote, ...)")
    return suffix


def _shipped_name_of(installed_name: str, shipped: Sequence[str]) -> str | None:
    """The shipped spec an installed name is a copy of (itself, or it plus a name suffix); None when not ours."""
    for name in shipped:
        if installed_name == name or (installed_name.startswith(name)
                                      and NAME_SUFFIX.match(installed_name[len(name):])):
            return name
    return None


def _check_provisioner(name: str, hosts: Sequence[str]) -> None:
    """The provisioner must be installed; remote hosts only make sense for one that has a ``remote_hosts``."""
    found = entry_points(group=PROVISIONER_GROUP, name=name)
    if not found:
        known = ", ".join(sorted({ep.name for ep in entry_points(group=PROVISIONER_GROUP)}))
        raise CliError(f"unknown provisioner {name!r}; installed ({PROVISIONER_GROUP}): {known}")
    for host in hosts:
        if not host.strip() or any(c.isspace() or c == "," for c in host):
            raise CliError(f"--remote-host {host!r} is not a host name or address")
    if not hosts:
        return
    try:
        provisioner = next(iter(found)).load()
    except Exception as exc:  # a broken plug-in: say which, not a traceback
        raise CliError(f"cannot load provisioner {name!r}: {type(exc).__name__}: {exc}") from None
    has_traits = hasattr(provisioner, "class_trait_names")
    if not has_traits or "remote_hosts" not in provisioner.class_trait_names(config=True):
        raise CliError(f"--remote-host needs a provisioner that runs kernels on other hosts (one with a "
                       f"remote_hosts setting, such as backend-distributed-provisioner); {name!r} has none")


def _display_name(display: str, suffix: str) -> str:
    """``C (backend)`` with ``-remote`` → ``C (backend, remote)``."""
    label = suffix.lstrip("-._")
    if display.endswith(")"):
        return f"{display[:-1]}, {label})"
    return f"{display} ({label})"


def _customised_spec(spec: dict[str, Any], provisioner: str, hosts: Sequence[str], suffix: str) -> dict[str, Any]:
    """A copy of a shipped kernel.json: same argv and config, another provisioner, its hosts, a suffixed name."""
    spec = copy.deepcopy(spec)
    metadata = spec.setdefault("metadata", {})
    chosen = metadata.setdefault("kernel_provisioner", {})
    chosen["provisioner_name"] = provisioner
    if hosts:
        chosen.setdefault("config", {})["remote_hosts"] = list(hosts)
    if suffix:
        spec["display_name"] = _display_name(spec.get("display_name", ""), suffix)
    return spec


def _install_one(ksm: KernelSpecManager, name: str, target: str, spec: dict[str, Any],
                 user: bool, prefix: str | None) -> str:
    """Install the spec folder ``name`` as ``target``; through a staged copy when its kernel.json differs."""
    source = spec_source_dir() / name
    if target == name and spec == load_spec_json(name):
        return ksm.install_kernel_spec(str(source), kernel_name=target, user=user, prefix=prefix)
    with tempfile.TemporaryDirectory(prefix="kernelspec-") as staging:
        folder = Path(staging) / target
        shutil.copytree(source, folder)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        return ksm.install_kernel_spec(str(folder), kernel_name=target, user=user, prefix=prefix)


def _provisioner_of(ksm: KernelSpecManager, name: str) -> str:
    try:
        metadata = ksm.get_kernel_spec(name).metadata
    except (NoSuchKernel, OSError, ValueError):
        return "?"
    return str((metadata.get("kernel_provisioner") or {}).get("provisioner_name") or "local-provisioner")


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
    suffix = _name_suffix(args.name_suffix)
    _check_provisioner(args.provisioner, args.remote_host)
    ksm = KernelSpecManager()
    prefix = args.prefix
    if args.sys_prefix:
        prefix = sys.prefix
    if prefix:
        _check_writable(os.path.join(prefix, "share", "jupyter", "kernels"))
    elif args.user:
        _check_writable(ksm.user_kernel_dir)
    installed, skipped = 0, []
    for name in names:
        entry = LANGUAGES.get(_language_of(name))
        missing = missing_programs(entry) if entry else []
        if missing and not args.all:
            print(f"skipped {name}: toolchain not found (missing: {', '.join(missing)}); use --all to install anyway")
            skipped.append(name)
            continue
        target = name + suffix
        spec = _customised_spec(load_spec_json(name), args.provisioner, args.remote_host, suffix)
        try:
            dest = _install_one(ksm, name, target, spec, args.user, prefix)
        except OSError as exc:
            raise CliError(f"cannot install {target}: {exc}") from exc
        print(f"installed {target} -> {dest}")
        installed += 1
    print(f"{installed} kernelspec(s) installed")
    if args.language and skipped:  # asked for by name: not installing it is a failure, not a detail
        print(f"error: not installed: {', '.join(skipped)} (toolchain not found)", file=sys.stderr)
        return 1
    return 0


def cmd_list(_: argparse.Namespace) -> int:
    ksm = KernelSpecManager()
    installed = ksm.find_kernel_specs()
    shipped = available_spec_names()
    suffixed = [(n, base) for n in installed if (base := _shipped_name_of(n, shipped)) not in (None, n)]
    rows = [("kernel", "language", "toolchain", "provisioner", "installed at")]
    toolchains: dict[str, str] = {}
    for name, base in sorted([(n, n) for n in shipped] + suffixed):
        entry = LANGUAGES.get(_language_of(base))
        if base not in toolchains:
            if entry is None:
                toolchains[base] = "-"
            else:
                version = toolchain_version(entry)
                toolchains[base] = version if version else f"missing: {', '.join(missing_programs(entry))}"
        where = installed.get(name)
        provisioner = _provisioner_of(ksm, name) if where else "-"
        rows.append((name, _language_of(base), toolchains[base], provisioner, where or "not installed"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    suffix = _name_suffix(args.name_suffix)
    names = [name + suffix for name in _spec_names(args.language)]
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
