"""The kernel's child environment (runner start-up step 1).

Kept apart from the provisioner so that services, batch steps and tests
build exactly the same environment the kernel gets.
"""

from __future__ import annotations

import glob
import os
import pwd
import site
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template

from backend_kernel_provisioner.common.languages import LANGUAGES

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Folders promoted to the front of PATH when they exist (the runner's list).
ACCELERATOR_BIN_DIRS = ("/usr/local/cuda/bin", "/usr/local/nvidia/bin")


def read_environ_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; blank lines, comments and lines without ``=`` are skipped."""
    result: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, _, value = line.partition("=")
        key = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key:
            result[key] = value
    return result


def _default_home() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/tmp"


def _default_shell() -> str:
    for shell in ("/bin/bash", "/bin/sh"):
        if os.path.exists(shell):
            return shell
    return "/bin/sh"


def promote_path(path_value: str, front: Iterable[str], always: Iterable[str] = ()) -> str:
    """Put ``always`` and each existing folder of ``front`` first in PATH, without duplicates."""
    promoted = [*always, *(d for d in front if d and os.path.isdir(d))]
    rest = [d for d in path_value.split(os.pathsep) if d]
    seen: set[str] = set()
    ordered: list[str] = []
    for entry in promoted + rest:
        if entry not in seen:
            seen.add(entry)
            ordered.append(entry)
    return os.pathsep.join(ordered)


def build_child_environment(
    base: Mapping[str, str],
    *,
    environ_file: str | None = None,
    extra_path: Iterable[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment a kernel (and its services) runs with.

    Order: ``base`` plus defaults for missing names, then the environ file
    (which overrides), then explicit ``overrides``; finally PATH promotion of
    ``~/.local/bin``, accelerator folders and ``extra_path``.
    """
    env = dict(base)
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("HOME", _default_home())
    env.setdefault("TERM", "xterm")
    env.setdefault("SHELL", _default_shell())
    env.setdefault("PATH", DEFAULT_PATH)
    if environ_file and os.path.isfile(environ_file):
        env.update(read_environ_file(environ_file))
    if overrides:
        env.update(overrides)
    local_bin = os.path.join(env["HOME"], ".local", "bin")
    env["PATH"] = promote_path(env["PATH"], [*extra_path, *ACCELERATOR_BIN_DIRS], always=[local_bin])
    return env


def _expand_home(value: str, home: str) -> str:
    """A table value's leading ``~`` is the kernel's HOME (not the server's, as expanduser would say)."""
    return home + value[1:] if value.startswith("~") else value


def language_bin_dirs(language: str, env: Mapping[str, str]) -> list[str]:
    """The language's own bin folders (from its table entry), expanded; existing ones are promoted."""
    spec = LANGUAGES.get(language)
    if spec is None:
        return []
    home = env.get("HOME") or _default_home()
    found: list[str] = []
    for template in spec.bin_dirs:
        expanded = Template(_expand_home(template, home)).safe_substitute(env)
        if "$" in expanded:  # a variable the environment does not have
            continue
        found += sorted(glob.glob(expanded)) if "*" in expanded else [expanded]
    return found


def language_variables(language: str, env: Mapping[str, str]) -> dict[str, str]:
    """Variables the language expects (its table entry), where the environment does not set them.

    ``{python_user_site}`` is prepended to a path list instead (the user's ``pip install --user``
    packages win over the image's, as in the runner).
    """
    spec = LANGUAGES.get(language)
    if spec is None:
        return {}
    home = env.get("HOME") or _default_home()
    result: dict[str, str] = {}
    for name, value in spec.variables.items():
        if value == "{python_user_site}":
            user_site = site.getusersitepackages()
            current = [p for p in env.get(name, "").split(os.pathsep) if p and p != user_site]
            result[name] = os.pathsep.join([user_site, *current])
        elif name not in env:
            result[name] = _expand_home(value, home)
    return result
