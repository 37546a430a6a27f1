"""Toolchain versions are remembered per program file (kernels/toolchain_versions.py): asked once, then read
from the cache until the program file changes; a cache that cannot be written changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from backend_kernel_provisioner.kernels import toolchain_versions


def _program(tmp_path, body: str = "echo 1.2.3"):
    path = tmp_path / "tool"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_asked_once_then_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program = _program(tmp_path)
    asked: list[int] = []

    def ask() -> str:
        asked.append(1)
        return "1.2.3"

    assert toolchain_versions.remembered(program, ["--version"], ask) == "1.2.3"
    assert toolchain_versions.remembered(program, ["--version"], ask) == "1.2.3"
    assert len(asked) == 1
    stored = json.loads(Path(toolchain_versions.cache_file()).read_text())
    assert list(stored.values()) == ["1.2.3"]
    assert oct(os.stat(os.path.dirname(toolchain_versions.cache_file())).st_mode & 0o777) == "0o700"


def test_a_changed_program_or_other_arguments_are_asked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program = _program(tmp_path)
    answers = iter(["1.0", "2.0", "3.0"])
    assert toolchain_versions.remembered(program, ["-v"], lambda: next(answers)) == "1.0"
    with open(program, "a") as fh:  # an upgrade: another size and modification time
        fh.write("# upgraded\n")
    assert toolchain_versions.remembered(program, ["-v"], lambda: next(answers)) == "2.0"
    assert toolchain_versions.remembered(program, ["--version"], lambda: next(answers)) == "3.0"


def test_an_unwritable_cache_still_answers(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    program = _program(tmp_path)
    asked: list[int] = []
    for _ in range(2):
        assert toolchain_versions.remembered(program, [], lambda: asked.append(1) or "4.5") == "4.5"
    assert len(asked) == 2, "nothing could be kept, so it was asked each time"


def test_an_empty_answer_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program = _program(tmp_path)
    assert toolchain_versions.remembered(program, [], lambda: "") == ""
    assert toolchain_versions.remembered(program, [], lambda: "5.0") == "5.0"
