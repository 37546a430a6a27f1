"""C and C++ programs show a prompt written without ``fflush`` before they read stdin, as on a terminal.

Why: the program's stdout is a pipe, so C's stdio buffers it fully, and glibc flushes stdout before a read
of stdin only when both are terminals: ``printf("two numbers: "); scanf(...)`` showed the input box with
no prompt. A pseudo-terminal would make stdout line-buffered (one write per line: a program printing
50 MB in short lines ran 28 to 54 times slower) and merge or reorder stderr. Instead, every C and C++
program is linked with a small object whose constructor installs a handler that flushes stdout on a
signal (only when the kernel asks for it in the environment); when the program blocks reading stdin, the
kernel sends that signal to the reading thread (:mod:`.prompt_order`), so the prompt comes out exactly
then and output stays fully buffered, on its own pipe, the rest of the time.

The object is compiled once per compiler and flags (so ``-m32``, sanitizers and ``-flto`` match the
program's), in the kernel's work folder, for the default flags as the kernel starts; when it compiles
neither with the cell's flags nor with their code-generation ones, cells are built without it (a warning
in the kernel's log) and behave as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
from typing import Any

from traitlets import Bool

from backend_kernel_provisioner.common.childproc import PIPE, STDOUT, spawn
from backend_kernel_provisioner.kernels.base import CellResult
from backend_kernel_provisioner.kernels.compiled import CompiledKernel
from backend_kernel_provisioner.kernels.prompt_order import FLUSH_SIGNAL, FLUSH_SIGNAL_ENV

#: Valid C89..C23 and C++98..C++23, quiet under -Wall -Wextra -pedantic -Werror; nothing global is defined
#: (both functions are static), so it can clash with no name of the cell.
FLUSH_SOURCE = r"""/* backend-kernel-provisioner: flush stdout when the kernel signals that the program reads stdin. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void backend_prompt_flush(int signum)
{
    int saved = errno;
    (void)signum;
    fflush(stdout);
    errno = saved;
}

__attribute__((constructor)) static void backend_prompt_flush_install(void)
{
    const char *value = getenv("@ENV@");
    struct sigaction action;
    if (value == NULL || atoi(value) != @SIGNUM@)
        return;
    memset(&action, 0, sizeof action);
    action.sa_handler = backend_prompt_flush;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(@SIGNUM@, &action, NULL);
}
""".replace("@ENV@", FLUSH_SIGNAL_ENV).replace("@SIGNUM@", str(FLUSH_SIGNAL))

OBJECT_PREFIX = "backend_prompt_flush"


class StdioPromptKernel(CompiledKernel):
    """A compiled-language recipe whose programs use C's stdio (C, C++): linked with the flush handler."""

    flush_prompts = Bool(
        True, config=True,
        help="Link C/C++ programs with a handler that flushes stdout when the program blocks reading stdin, "
             "so a prompt printed without fflush shows before the input box (stdout stays a fully buffered "
             "pipe otherwise). False: programs are built and run exactly as written.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._flush_objects: dict[str, asyncio.Future[str | None]] = {}
        self._flush_object: str | None = None

    def start(self) -> None:
        """Compile the handler for the default flags now, beside the kernel's own start (the compiler is
        another process): the first cell then finds it ready instead of compiling it first."""
        super().start()
        compiler = self.which(self.compiler) if self.flush_prompts else None
        if compiler:
            self._loop.call_soon(self._object_for, compiler)

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        if self.flush_prompts:
            env[FLUSH_SIGNAL_ENV] = str(FLUSH_SIGNAL)
        return env

    def flush_link_args(self) -> list[str]:
        """What the link line ends with: the handler's object (``-x none``: after a ``-x c++`` in the flags
        it is still an object file), or nothing."""
        return ["-x", "none", self._flush_object] if self._flush_object else []

    async def execute_code(self, code: str) -> CellResult:
        compiler = self.which(self.compiler)
        self._flush_object = None
        if compiler and self.flush_prompts:  # shielded: an interrupted cell must not cancel the next cell's compile
            self._flush_object = await asyncio.shield(self._object_for(compiler))
        return await super().execute_code(code)

    def _object_for(self, compiler: str) -> asyncio.Future[str | None]:
        """The handler compiled with ``compiler`` and the current flags (compiling once, on first use)."""
        key = hashlib.sha256("\0".join((compiler, self.flags, FLUSH_SOURCE)).encode()).hexdigest()[:16]
        known = self._flush_objects.get(key)
        if known is None or known.cancelled():
            self._flush_objects[key] = asyncio.ensure_future(self._compile_object(compiler, key))
        return self._flush_objects[key]

    async def _compile_object(self, compiler: str, key: str) -> str | None:
        """Compile the handler with the cell's flags (they decide the ABI: ``-m32``, ``-fPIC``, sanitizers),
        else with only their code-generation ones (``-m...``, ``-f...``) when a ``-D``, ``-U``, ``-std`` or
        ``-W`` of the cell's does not suit it; None when neither compiles."""
        folder = os.path.join(self.work_dir, "prompt-flush")
        os.makedirs(folder, exist_ok=True)
        source = os.path.join(folder, f"{OBJECT_PREFIX}.c")
        target = os.path.join(folder, f"{OBJECT_PREFIX}-{key}.o")
        with open(source, "w") as fh:
            fh.write(FLUSH_SOURCE)
        try:
            flags = shlex.split(self.flags)
        except ValueError:
            return None  # the build itself reports the flags
        attempts = [flags, [flag for flag in flags if flag.startswith(("-m", "-f"))]]
        message = ""
        for attempt in attempts[:1] if attempts[0] == attempts[1] else attempts:
            message = await self._compile([compiler, *attempt, "-c", source, "-o", target], folder)
            if not message and os.path.exists(target):
                return target
        self.log.warning("the prompt-flush handler does not compile with flags %r; programs are built without "
                         "it:\n%s", self.flags, message)
        return None

    async def _compile(self, argv: list[str], folder: str) -> str:
        """Run one compile; '' on success, else what went wrong."""
        proc = None
        try:
            proc = await spawn(argv, cwd=folder, env=self.child_env(), stdout=PIPE, stderr=STDOUT)
            output, _ = await asyncio.wait_for(proc.communicate(), 120)
        except (OSError, asyncio.TimeoutError) as exc:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            return repr(exc)
        return "" if proc.returncode == 0 else output.decode(errors="replace") or f"exit code {proc.returncode}"
