"""The compile-then-run recipe: write the cell to a file, build it (cached), run the program."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from traitlets import Int, Unicode, default

from backend_kernel_provisioner.kernels import toolchain_versions
from backend_kernel_provisioner.kernels.base import BackendKernel, CellResult
from backend_kernel_provisioner.kernels.cache import BuildCache, cache_key
from backend_kernel_provisioner.kernels.inspection import CompiledInspection
from backend_kernel_provisioner.kernels.magics import MagicError, register_magic

T = TypeVar("T")


@dataclass
class Program:
    """What to build and how to run it; ``{dir}`` in ``run`` is the folder with the build output."""

    sources: dict[str, str]
    run: list[str]


class CompiledKernel(CompiledInspection, BackendKernel):
    """Base for C, C++, Go, Rust, Java: a recipe gives the compiler command and the run command."""

    default_compiler: ClassVar[str] = ""
    default_flags: ClassVar[str] = ""
    default_ldflags: ClassVar[str] = ""
    source_name: ClassVar[str] = "main"

    compiler = Unicode(config=True, help="The compiler (a name looked up on PATH, or a path).")
    flags = Unicode(config=True, help="Compiler flags (shell syntax); %flags changes them for the session.")
    ldflags = Unicode(config=True, help="Linker flags / libraries (shell syntax); %ldflags changes them.")
    cache_dir = Unicode(
        "", config=True,
        help="Folder of the compile cache; default: inside the kernel's temporary folder "
        "(removed at shutdown). Point several kernels of one user at one folder to share builds; a folder "
        "owned by another user or writable by others is not used (the private one is, with a warning).",
    )
    cache_max_bytes = Int(256 * 1024 * 1024, config=True,
                          help="Size bound of the compile cache; least recently used builds go first.")

    @default("compiler")
    def _default_compiler(self) -> str:
        return self.default_compiler or (self.spec.program if self.spec else "")

    @default("flags")
    def _default_flags(self) -> str:
        return self.default_flags

    @default("ldflags")
    def _default_ldflags(self) -> str:
        return self.default_ldflags

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        private = os.path.join(self.work_dir, "cache")
        self.cache = BuildCache(self.cache_dir or private, self.cache_max_bytes, fallback=private)

    # -- recipe hooks --------------------------------------------------------------------

    def prepare(self, code: str) -> Program:
        """Source files for the cell and the run command (default: one file, ``{dir}/main``)."""
        return Program({self.source_name + self.file_extension: code}, ["{dir}/main"])

    def build_argv(self, program: Program, compiler: str, flags: list[str], ldflags: list[str]) -> list[str]:
        """The compiler command, run inside the build folder."""
        raise NotImplementedError

    def version_argv(self, compiler: str) -> list[str]:
        return [compiler, "--version"]

    def parse_version(self, output: str) -> str:
        return output.split()[-1] if output.split() else ""

    # -- shared machinery ----------------------------------------------------------------

    def detect_version(self) -> str:
        compiler = self.which(self.compiler)
        if compiler is None:
            return ""
        argv = self.version_argv(compiler)

        def ask() -> str:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=self.child_env())
            return self.parse_version((done.stdout + done.stderr).strip().splitlines()[0])

        return toolchain_versions.remembered(compiler, argv[1:], ask)

    async def execute_code(self, code: str) -> CellResult:
        compiler = self.which(self.compiler)
        if compiler is None:
            return CellResult.missing(self.compiler, f"the {self.display_language} compiler")
        program = self.prepare(code)
        key = cache_key(self.language_name, compiler, self.toolchain_version, self.flags, self.ldflags,
                        program.sources, program.run)
        # A lookup re-hashes the entry's files: about 0.1 ms for a cell's program, less than the hop to a worker
        # thread (0.5 ms); this is the kernel's own loop, which has nothing else to do while the cell starts.
        entry = await self._cache_call(self.cache.lookup, key, inline=True)
        if entry is None:
            entry, failure = await self._build(program, compiler, key)
            if failure is not None:
                return failure
        argv = [part.replace("{dir}", str(entry)) for part in program.run]
        result = await self.run_program(argv)
        return CellResult.from_program(result)

    async def _build(self, program: Program, compiler: str, key: str) -> tuple[Path, CellResult | None]:
        build_dir = await self._cache_call(self.cache.new_build_dir)
        for name, text in program.sources.items():
            (build_dir / name).write_text(text)
        captured: list[str] = []
        argv = self.build_argv(program, compiler, shlex.split(self.flags), shlex.split(self.ldflags))
        result = await self.run_program(argv, cwd=str(build_dir), stdin=False,
                                        publish=lambda _name, text: captured.append(text))
        self.stream("stderr", self._trim("".join(captured), build_dir))
        if result.returncode != 0 or self.interrupted:
            shutil.rmtree(build_dir, ignore_errors=True)
            if result.signal is not None:
                return build_dir, CellResult.from_program(result, "the compiler")
            return build_dir, CellResult(result.exit_code or 1, "CompileError",
                                         f"{os.path.basename(compiler)} failed with exit code {result.exit_code}")
        return await self._cache_call(self.cache.commit, build_dir, key), None

    async def _cache_call(self, method: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """A cache call in a worker thread (or ``inline``); its warnings (a refused root or entry) go to stderr,
        each once."""
        try:
            return method(*args) if inline else await asyncio.to_thread(method, *args)
        finally:
            for message in self.cache.take_warnings():
                self.log.warning("%s", message)
                self.stream("stderr", f"warning: {message}\n")

    def _trim(self, text: str, build_dir: Path) -> str:
        """Compiler messages without our temporary folders in them."""
        for folder in (str(build_dir), os.path.realpath(build_dir), self.work_dir):
            text = text.replace(folder + os.sep, "").replace(folder, ".")
        return text


def _flags_magic(trait: str) -> Any:
    def handler(kernel: Any, argument: str) -> int:
        if not isinstance(kernel, CompiledKernel):
            raise MagicError("this kernel has no compiler flags")
        argument = argument.strip()
        if argument == "--reset":
            kernel.set_trait(trait, getattr(kernel, f"default_{trait}"))
        elif argument:
            try:
                shlex.split(argument)
            except ValueError as exc:
                raise MagicError(f"cannot parse flags: {exc}") from None
            kernel.set_trait(trait, argument)
        kernel.stream("stdout", f"{trait}: {getattr(kernel, trait)}\n")
        return 0

    return handler


register_magic("flags", _flags_magic("flags"),
               "%flags shows the compiler flags; %flags -O2 -g replaces them for the session; %flags --reset.")
register_magic("ldflags", _flags_magic("ldflags"),
               "%ldflags shows the linker flags; %ldflags -lm replaces them for the session; %ldflags --reset.")
