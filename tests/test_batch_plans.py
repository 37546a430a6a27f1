"""Batch heuristics resolve to commands that really build and run (issue 5)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backend_kernel_provisioner.kernels.batch import NOTHING_TO_RUN, BatchState, Heuristics, nothing, resolve, run
from tests.helpers import require_programs


def sh(command: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_multi_file_c_project_builds_and_runs(tmp_path: Path) -> None:
    require_programs("gcc")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "add.c").write_text("int add(int a, int b) { return a + b; }\n")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include <stdlib.h>\nint add(int, int);\n'
        'int main(void) { printf("%d %s\\n", add(2, 3), getenv("_BACKEND_BATCH_MODE")); return 0; }\n'
    )
    build = resolve("c", "build", "*", tmp_path)
    assert build.command and "lib/add.c" in build.command
    assert sh(build.command, tmp_path).returncode == 0
    execute = resolve("c", "exec", "*", tmp_path)
    done = sh(execute.command, tmp_path, execute.env)
    assert done.stdout == "5 1\n"


def test_makefile_wins_for_build_and_clean(tmp_path: Path) -> None:
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "Makefile").write_text("all:\n\ttouch built\nclean:\n\trm -f built\n")
    assert resolve("c", "build", "*", tmp_path).command == "make"
    assert resolve("python", "clean", "*", tmp_path).command == "make clean"
    assert resolve("python", "clean", "*", tmp_path / "nowhere").command is None


@pytest.mark.parametrize(
    ("language", "filename"),
    [("python", "main.py"), ("nodejs", "main.js"), ("lua", "main.lua"), ("php", "main.php"),
     ("r", "main.R"), ("octave", "main.m"), ("julia", "main.jl")],
)
def test_missing_main_file_is_127_naming_it(language: str, filename: str, tmp_path: Path) -> None:
    plan = resolve(language, "exec", "*", tmp_path)
    assert plan.command is None and plan.exit_code == NOTHING_TO_RUN
    assert filename in plan.message
    (tmp_path / filename).write_text("")
    assert filename in resolve(language, "exec", "*", tmp_path).command


def test_explicit_command_and_empty_spec(tmp_path: Path) -> None:
    assert resolve("c", "build", "make -j2", tmp_path).command == "make -j2"
    plan = resolve("c", "exec", "./prog --flag", tmp_path)
    assert plan.env == {"_BACKEND_BATCH_MODE": "1"}
    skipped = resolve("c", "build", "", tmp_path)
    assert skipped.command is None and skipped.exit_code == 0


def test_exec_after_failed_build_reports_127_once(tmp_path: Path) -> None:
    state = BatchState()
    state.record("build", 1)
    plan = state.plan("c", "exec", "*", tmp_path)
    assert plan.exit_code == NOTHING_TO_RUN and "build failed" in plan.message
    state.record("exec", plan.exit_code)
    assert "main" in state.plan("c", "exec", "*", tmp_path).message  # next exec is judged on its own


def test_haskell_multi_module_project_builds_and_runs(tmp_path: Path) -> None:
    """The Haskell heuristic on its own (the Haskell kernel runs it the same way)."""
    require_programs("ghc")
    (tmp_path / "Util.hs").write_text("module Util (add) where\n\nadd :: Int -> Int -> Int\nadd = (+)\n")
    (tmp_path / "main.hs").write_text("import Util (add)\n\nmain :: IO ()\nmain = print (add 2 3)\n")
    build = resolve("haskell", "build", "*", tmp_path)
    built = sh(build.command, tmp_path)
    assert built.returncode == 0, built.stderr
    execute = resolve("haskell", "exec", "*", tmp_path)
    assert sh(execute.command, tmp_path, execute.env).stdout == "5\n"


def test_recipe_heuristics_override_the_table(tmp_path: Path) -> None:
    own = Heuristics(build=lambda cwd: run("echo building", {"FROM": "recipe"}),
                     execute=lambda cwd: nothing("custom: app.bin not found"))
    assert resolve("c", "build", "*", tmp_path, own).env == {"FROM": "recipe"}
    assert resolve("c", "exec", "*", tmp_path, own).message == "custom: app.bin not found"
    (tmp_path / "Makefile").write_text("all:\n")
    assert resolve("c", "build", "*", tmp_path, own).command == "make"  # a Makefile still wins
