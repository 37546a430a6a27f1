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

from backend_kernel_provisioner.common.languages import LANGUAGES, LanguageSpec

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


def _word(path: str) -> str:
    """A path found in the user's folder as a command word: ``-x.c`` would be read as an option."""
    return f"./{path}" if path.startswith("-") else path


def _sources(cwd: Path, pattern: str) -> list[str]:
    """The files matching ``pattern`` under ``cwd``, relative, sorted, each safe as one (quoted) argument."""
    return sorted(_word(str(p.relative_to(cwd))) for p in cwd.glob(f"**/{pattern}") if p.is_file())


def _compile_and_link(compiler: str, ext: str, libs: str) -> Callable[[Path], BatchPlan]:
    """C and C++: compile every source to an object, link them with ``libs``."""
    def build(cwd: Path) -> BatchPlan:
        if not (cwd / f"main.{ext}").is_file():
            return nothing(f"nothing to build: main.{ext} not found in {cwd}")
        sources = _sources(cwd, f"*.{ext}")
        objects = [s[: -len(ext)] + "o" for s in sources]
        compiles = [_q(compiler, "-Wall", "-c", src, "-o", obj) for src, obj in zip(sources, objects, strict=True)]
        link = f"{_q(compiler, *objects, '-o', 'main')} {libs}"
        return run(" && ".join([*compiles, link]))

    return build


def _run_binary(cwd: Path) -> BatchPlan:
    for name in ("main", "a.out"):
        if os.access(cwd / name, os.X_OK) and (cwd / name).is_file():
            return run(f"./{name}", BATCH_ENV)
    return nothing(f"nothing to execute: ./main or ./a.out not found in {cwd}")


def _main_file(filename: str, runner: str) -> Callable[[Path], BatchPlan]:
    """Interpreted languages: run ``filename`` with ``runner`` (a shell command prefix)."""
    def execute(cwd: Path) -> BatchPlan:
        if (cwd / filename).is_file():
            return run(f"{runner} {_q(filename)}", BATCH_ENV)
        return nothing(f"nothing to execute: {filename} not found in {cwd}")

    return execute


#: The interpreter of the running kernel (the kernelspec's Python), not whatever is first on PATH.
PYTHON = sys.executable or "python3"
#: Where a project keeps its own virtual environment (``python -m venv .venv``, the common names).
PROJECT_VENVS = (".venv", "venv")


def _python_of(cwd: Path) -> tuple[str, bool]:
    """The Python a project's steps run with, and whether it is a virtual environment's.

    The project's own virtual environment when it has one, else the kernel's Python. pip refuses
    ``--user`` inside a virtual environment ("Can not perform a '--user' install"), so only a Python
    outside one installs into the user's site, as the runner did.
    """
    for name in PROJECT_VENVS:
        candidate = cwd / name / "bin" / "python"
        if os.access(candidate, os.X_OK):
            return str(candidate), True
    return PYTHON, sys.prefix != sys.base_prefix


def _python_build(cwd: Path) -> BatchPlan:
    if (cwd / "setup.py").is_file() or (cwd / "pyproject.toml").is_file():
        python, in_venv = _python_of(cwd)
        return run(_q(python, "-m", "pip", "install", *([] if in_venv else ["--user"]), "-e", "."))
    return SKIP


def _python_exec(cwd: Path) -> BatchPlan:
    plan = _main_file("main.py", _q(_python_of(cwd)[0]))(cwd)
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


def _java_build(javac: str) -> Callable[[Path], BatchPlan]:
    return lambda cwd: _java_build_in(cwd, javac)


def _java_build_in(cwd: Path, javac: str) -> BatchPlan:
    sources = _sources(cwd, "*.java")
    if not sources:
        return nothing(f"nothing to build: no .java files in {cwd}")
    return run(_q(javac, "-d", ".", *sources))


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


def _fixed(plan: Callable[[Path], BatchPlan]) -> Callable[[], Callable[[Path], BatchPlan]]:
    return lambda: plan


#: The heuristics a language's table entry can name (``batch_build`` / ``batch_exec``), with their arguments.
KINDS: dict[str, Callable[..., Callable[[Path], BatchPlan]]] = {
    "none": _fixed(_no_build),
    "compile_and_link": _compile_and_link,
    "run_binary": _fixed(_run_binary),
    "main_file": _main_file,
    "python_build": _fixed(_python_build),
    "python_exec": _fixed(_python_exec),
    "go_build": _fixed(_go_build),
    "rust_build": _fixed(_rust_build),
    "rust_exec": _fixed(_rust_exec),
    "java_build": _java_build,
    "java_exec": _fixed(_java_exec),
    "haskell_build": _fixed(_haskell_build),
}


def heuristics_of(spec: LanguageSpec) -> Heuristics:
    """A table entry's ``batch_build``/``batch_exec`` as functions (``{program}`` is its program)."""

    def make(step: tuple[str, ...]) -> Callable[[Path], BatchPlan]:
        kind, *args = step
        # main_file's runner is shell text; the other kinds quote their arguments themselves
        program = shlex.quote(spec.program) if kind == "main_file" else spec.program
        return KINDS[kind](*(arg.replace("{program}", program) for arg in args))

    return Heuristics(make(spec.batch_build), make(spec.batch_exec))


HEURISTICS: dict[str, Heuristics] = {
    key: heuristics_of(spec)
    for key, spec in LANGUAGES.items()
    if spec.batch_build != ("none",) or spec.batch_exec != ("none",)
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
