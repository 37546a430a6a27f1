"""The kernelspec set: one entry per language, and where the spec folders live.

The folders under ``kernelspecs/`` are the source of truth for what Jupyter
sees; this table adds what only the CLI needs (which program makes the
toolchain, how to ask its version).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SPEC_PREFIX = "backend-"


@dataclass(frozen=True)
class LanguageEntry:
    """What the CLI knows about one kernel of the set."""

    language: str
    #: Programs that must all be on PATH for the kernel to work.
    programs: tuple[str, ...]
    #: Arguments that make ``programs[0]`` print its version.
    version_args: tuple[str, ...] = ("--version",)

    @property
    def spec_name(self) -> str:
        return SPEC_PREFIX + self.language


LANGUAGES: dict[str, LanguageEntry] = {
    entry.language: entry
    for entry in (
        LanguageEntry("python", ("python3",)),
        LanguageEntry("c", ("gcc",)),
        LanguageEntry("cpp", ("g++",)),
        LanguageEntry("go", ("go",), ("version",)),
        LanguageEntry("rust", ("rustc",)),
        LanguageEntry("java", ("javac", "java"), ("-version",)),
        LanguageEntry("nodejs", ("node",)),
        LanguageEntry("lua", ("lua5.4",), ("-v",)),
        LanguageEntry("php", ("php",)),
        LanguageEntry("haskell", ("ghci",)),
        LanguageEntry("julia", ("julia",)),
        LanguageEntry("r", ("R",)),
        LanguageEntry("octave", ("octave-cli",)),
        LanguageEntry("scheme", ("guile",)),
        LanguageEntry("shell", ("bash",)),
        LanguageEntry("app", ()),
    )
}


def spec_source_dir() -> Path:
    """Folder holding the ``backend-<language>`` spec folders (wheel or source tree)."""
    packaged = Path(__file__).parent / "_kernelspecs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "kernelspecs"


def available_spec_names() -> list[str]:
    """Every spec folder shipped, including ones not in :data:`LANGUAGES` (vendor kinds)."""
    return sorted(p.name for p in spec_source_dir().iterdir() if (p / "kernel.json").is_file())


def load_spec_json(spec_name: str) -> dict:
    return json.loads((spec_source_dir() / spec_name / "kernel.json").read_text())


def missing_programs(entry: LanguageEntry) -> list[str]:
    """Programs of the toolchain that are not on PATH."""
    return [p for p in entry.programs if shutil.which(p) is None]


def toolchain_version(entry: LanguageEntry) -> str | None:
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
