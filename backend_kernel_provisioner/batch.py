"""Batch mode: what ``clean``, ``build`` and ``exec`` run, and the runner's exit-code rules.

A step's spec is a shell command, ``*`` for the language's heuristic, or
empty to skip. This module only decides *what* to run (a shell command, or
an exit code with a message when there is nothing to run); each kernel runs
it with its own process control, so output streams, stdin is served through
``input_request`` and interrupt stops it, as for a cell.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Exit code when there is nothing to run (no main file; exec after a failed build).
NOTHING_TO_RUN = 127
BATCH_ENV = {"_BACKEND_BATCH_MODE": "1"}
STEPS = ("clean", "build", "exec")


@dataclass(frozen=True)
class BatchPlan:
    """A resolved step: run ``command`` in a shell, or report ``exit_code`` with ``message``."""

    command: str | None = None
    exit_code: int = 0
    message: str = ""
    env: dict[str, str] = field(default_factory=dict)


def run(command: str, env: dict[str, str] | None = None) -> BatchPlan:
    return BatchPlan(command=command, env=env or {})


def nothing(message: str, exit_code: int = NOTHING_TO_RUN) -> BatchPlan:
    return BatchPlan(exit_code=exit_code, message=message)


SKIP = BatchPlan()


def _q(*args: str | os.PathLike[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def _sources(cwd: Path, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(cwd)) for p in cwd.glob(f"**/{pattern}") if p.is_file())


def _compile_and_link(compiler: str, ext: str, libs: str) -> Callable[[Path], BatchPlan]:
    def build(cwd: Path) -> BatchPlan:
        if not (cwd / f"main.{ext}").is_file():
            return nothing(f"nothing to build: main.{ext} not found in {cwd}")
        sources = _sources(cwd, f"*.{ext}")
        objects = [s[: -len(ext)] + "o" for s in sources]
        compiles = [_q(compiler, "-Wall", "-c", src, "-o", obj) for src, obj in zip(sources, objects)]
        link = f"{_q(compiler, *objects, '-o', 'main')} {libs}"
        return run(" && ".join([*compiles, link]))

    return build


def _run_binary(cwd: Path) -> BatchPlan:
    for name in ("main", "a.out"):
        if os.access(cwd / name, os.X_OK) and (cwd / name).is_file():
            return run(f"./{name}", BATCH_ENV)
    return nothing(f"nothing to execute: ./main or ./a.out not found in {cwd}")


def _main_file(filename: str, runner: str) -> Callable[[Path], BatchPlan]:
    def execute(cwd: Path) -> BatchPlan:
        if (cwd / filename).is_file():
            return run(f"{runner} {_q(filename)}", BATCH_ENV)
        return nothing(f"nothing to execute: {filename} not found in {cwd}")

    return execute


#: The interpreter of the running kernel (the kernelspec's Python), not whatever is first on PATH.
PYTHON = shlex.quote(sys.executable or "python3")


def _python_build(cwd: Path) -> BatchPlan:
    if (cwd / "setup.py").is_file() or (cwd / "pyproject.toml").is_file():
        return run(f"{PYTHON} -m pip install --user -e .")
    return SKIP


def _python_exec(cwd: Path) -> BatchPlan:
    plan = _main_file("main.py", PYTHON)(cwd)
    # Unbuffered: a batch program's output streams as it prints, not at exit.
    return replace(plan, env={**plan.env, "PYTHONUNBUFFERED": "1"}) if plan.command else plan


def _go_build(cwd: Path) -> BatchPlan:
    if not (cwd / "main.go").is_file():
        return nothing(f"nothing to build: main.go not found in {cwd}")
    if (cwd / "go.mod").is_file():
        return run("go build -o main .")
    return run(_q("go", "build", "-o", "main", *_sources(cwd, "*.go")))


def _rust_build(cwd: Path) -> BatchPlan:
    if (cwd / "Cargo.toml").is_file():
        return run("cargo build")
    if (cwd / "main.rs").is_file():
        return run("rustc -o main main.rs")
    return nothing(f"nothing to build: Cargo.toml or main.rs not found in {cwd}")


def _rust_exec(cwd: Path) -> BatchPlan:
    for folder in ("target/debug", "target/release"):
        path = cwd / folder
        if path.is_dir():
            for candidate in sorted(path.iterdir()):
                mode = candidate.stat().st_mode
                if candidate.is_file() and mode & stat.S_IXUSR and "." not in candidate.name:
                    return run(_q(f"./{folder}/{candidate.name}"), BATCH_ENV)
    return _run_binary(cwd)


def _java_build(cwd: Path) -> BatchPlan:
    sources = _sources(cwd, "*.java")
    if not sources:
        return nothing(f"nothing to build: no .java files in {cwd}")
    return run(_q("javac", "-d", ".", *sources))


def _java_exec(cwd: Path) -> BatchPlan:
    if (cwd / "main" / "Main.class").is_file():
        return run("java -cp . main.Main", BATCH_ENV)
    if (cwd / "Main.class").is_file():
        return run("java -cp . Main", BATCH_ENV)
    return nothing(f"nothing to execute: main/Main.class or Main.class not found in {cwd}")


def _haskell_build(cwd: Path) -> BatchPlan:
    if not (cwd / "main.hs").is_file() and not (cwd / "Main.hs").is_file():
        return nothing(f"nothing to build: main.hs not found in {cwd}")
    main = "main.hs" if (cwd / "main.hs").is_file() else "Main.hs"
    return run(_q("ghc", "--make", "-o", "main", main))


def _no_build(_: Path) -> BatchPlan:
    return SKIP


@dataclass(frozen=True)
class Heuristics:
    """A language's ``*`` for build and exec (a Makefile wins over both for build and clean)."""

    build: Callable[[Path], BatchPlan]
    execute: Callable[[Path], BatchPlan]


HEURISTICS: dict[str, Heuristics] = {
    "python": Heuristics(_python_build, _python_exec),
    "c": Heuristics(_compile_and_link("gcc", "c", "-lrt -lm -lpthread -ldl"), _run_binary),
    "cpp": Heuristics(_compile_and_link("g++", "cpp", "-lrt -lm -lpthread -ldl"), _run_binary),
    "go": Heuristics(_go_build, _run_binary),
    "rust": Heuristics(_rust_build, _rust_exec),
    "java": Heuristics(_java_build, _java_exec),
    "haskell": Heuristics(_haskell_build, _run_binary),
    "nodejs": Heuristics(_no_build, _main_file("main.js", "node")),
    "lua": Heuristics(_no_build, _main_file("main.lua", "lua5.4")),
    "php": Heuristics(_no_build, _main_file("main.php", "php")),
    "julia": Heuristics(_no_build, _main_file("main.jl", "julia")),
    "r": Heuristics(_no_build, _main_file("main.R", "Rscript")),
    "octave": Heuristics(_no_build, _main_file("main.m", "octave-cli --no-gui --quiet")),
    "scheme": Heuristics(_no_build, _main_file("main.scm", "guile --no-auto-compile")),
    "shell": Heuristics(_no_build, _main_file("main.sh", "bash")),
}


def resolve(language: str, step: str, spec: str, cwd: str | os.PathLike[str],
            heuristics: Heuristics | None = None) -> BatchPlan:
    """Turn a step's spec (command, ``*`` or empty) into a plan for ``language`` in ``cwd``.

    ``heuristics`` is the recipe's own ``*`` (a kernel class's ``batch_heuristics``);
    without it the table entry for ``language`` is used.
    """
    if step not in STEPS:
        raise ValueError(f"unknown batch step {step!r}; expected one of {', '.join(STEPS)}")
    spec = spec.strip()
    extra_env = BATCH_ENV if step == "exec" else {}
    if not spec:
        return SKIP
    if spec != "*":
        return run(spec, extra_env)
    folder = Path(cwd)
    makefile = any((folder / name).is_file() for name in ("Makefile", "makefile", "GNUmakefile"))
    if step == "clean":
        return run("make clean") if makefile else SKIP
    if step == "build" and makefile:
        return run("make")
    heuristics = heuristics or HEURISTICS.get(language)
    if heuristics is None:
        return nothing(f"no batch heuristic for language {language!r}; give a command instead of *")
    return heuristics.build(folder) if step == "build" else heuristics.execute(folder)


class BatchState:
    """Per-kernel memory between steps: an exec right after a failed build does not run."""

    def __init__(self) -> None:
        self.last_build_failed = False

    def plan(self, language: str, step: str, spec: str, cwd: str | os.PathLike[str],
             heuristics: Heuristics | None = None) -> BatchPlan:
        if step == "exec" and self.last_build_failed:
            self.last_build_failed = False
            return nothing("not executed: the preceding build failed")
        return resolve(language, step, spec, cwd, heuristics)

    def record(self, step: str, exit_code: int) -> None:
        if step == "build":
            self.last_build_failed = exit_code != 0
        elif step == "exec":
            self.last_build_failed = False
