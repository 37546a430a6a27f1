"""The kernelspec set: where the spec folders live, and whether each language's toolchain is here.

The folders under ``kernelspecs/`` are generated from the language table
(:mod:`backend_kernel_provisioner.common.languages`) by
``scripts/make_kernelspecs.py`` and shipped in the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from backend_kernel_provisioner.common.languages import LANGUAGES, SPEC_PREFIX, LanguageSpec

__all__ = ["LANGUAGES", "SPEC_PREFIX", "available_spec_names", "load_spec_json", "missing_programs",
           "spec_source_dir", "toolchain_version"]


def spec_source_dir() -> Path:
    """Folder holding the ``backend-<language>`` spec folders (wheel or source tree)."""
    packaged = Path(__file__).resolve().parent.parent / "_kernelspecs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "kernelspecs"


def available_spec_names() -> list[str]:
    """Every spec folder shipped."""
    return sorted(p.name for p in spec_source_dir().iterdir() if (p / "kernel.json").is_file())


def load_spec_json(spec_name: str) -> dict:
    return json.loads((spec_source_dir() / spec_name / "kernel.json").read_text())


def missing_programs(entry: LanguageSpec) -> list[str]:
    """Programs of the toolchain that are not on PATH."""
    return [p for p in entry.programs if shutil.which(p) is None]


def toolchain_version(entry: LanguageSpec) -> str | None:
    """First line of the toolchain's version output, or None when it is missing."""
    if not entry.programs:
        return "-"
    if missing_programs(entry):
        return None
    try:
        proc = subprocess.run(
            [entry.programs[0], *entry.version_args],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "?"
