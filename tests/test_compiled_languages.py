"""Acceptance of the compiled-language kernels (C, C++, Go, Rust, Java) through jupyter_client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest
from jupyter_client.manager import AsyncKernelManager

from .helpers import kernel_process_tree, pid_alive, require_programs, run_cell, running_kernel

BIG_LINES = 210_000  # 100-byte lines: about 21 MB


@dataclass(frozen=True)
class Programs:
    """One language's cells for the acceptance scenario."""

    kernel: str
    programs: tuple[str, ...]
    hello: str
    stderr: str
    two_lines: str
    loop: str
    exit3: str
    syntax_error: str
    diagnostic: str
    big: str
    source_name: str


LANGUAGES = {
    "c": Programs(
        "backend-c", ("gcc",),
        hello='#include <stdio.h>\nint main(void) { printf("hello, world\\n"); return 0; }\n',
        stderr='#include <stdio.h>\nint main(void) { fprintf(stderr, "oops\\n"); return 0; }\n',
        two_lines='#include <stdio.h>\nint main(void) { char a[64], b[64];\n'
                  '  if (scanf("%63s", a) != 1 || scanf("%63s", b) != 1) return 1;\n'
                  '  printf("got %s and %s\\n", a, b); return 0; }\n',
        loop='#include <stdio.h>\nint main(void) { printf("started\\n"); fflush(stdout); for (;;) {} }\n',
        exit3='#include <stdlib.h>\nint main(void) { exit(3); }\n',
        syntax_error="int main(void) {\n  return 0\n}\n",
        diagnostic="expected",
        big='#include <stdio.h>\n#include <string.h>\nint main(void) { char line[101];\n'
            '  memset(line, \'x\', 99); line[99] = \'\\n\'; line[100] = 0;\n'
            f'  for (int i = 0; i < {BIG_LINES}; i++) fputs(line, stdout); return 0; }}\n',
        source_name="main.c",
    ),
    "cpp": Programs(
        "backend-cpp", ("g++",),
        hello='#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; }\n',
        stderr='#include <iostream>\nint main() { std::cerr << "oops" << std::endl; }\n',
        two_lines='#include <iostream>\n#include <string>\nint main() { std::string a, b;\n'
                  '  std::getline(std::cin, a); std::getline(std::cin, b);\n'
                  '  std::cout << "got " << a << " and " << b << std::endl; }\n',
        loop='#include <iostream>\nint main() { std::cout << "started" << std::endl; for (;;) {} }\n',
        exit3="#include <cstdlib>\nint main() { std::exit(3); }\n",
        syntax_error="int main() {\n  return 0\n}\n",
        diagnostic="expected",
        big='#include <iostream>\n#include <string>\nint main() { std::string line(99, \'x\'); line += \'\\n\';\n'
            f'  for (int i = 0; i < {BIG_LINES}; i++) std::cout << line; }}\n',
        source_name="main.cpp",
    ),
    "go": Programs(
        "backend-go", ("go",),
        hello='package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n',
        stderr='package main\n\nimport ("fmt"; "os")\n\nfunc main() { fmt.Fprintln(os.Stderr, "oops") }\n',
        two_lines='package main\n\nimport ("bufio"; "fmt"; "os"; "strings")\n\nfunc main() {\n'
                  '\tr := bufio.NewReader(os.Stdin)\n\ta, _ := r.ReadString(\'\\n\')\n\tb, _ := r.ReadString(\'\\n\')\n'
                  '\tfmt.Printf("got %s and %s\\n", strings.TrimSpace(a), strings.TrimSpace(b))\n}\n',
        loop='package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("started")\n\tfor {\n\t}\n}\n',
        exit3='package main\n\nimport "os"\n\nfunc main() { os.Exit(3) }\n',
        syntax_error='package main\n\nfunc main() {\n\tx := \n}\n',
        diagnostic="syntax error",
        big='package main\n\nimport ("bufio"; "os"; "strings")\n\nfunc main() {\n'
            '\tw := bufio.NewWriter(os.Stdout)\n\tline := strings.Repeat("x", 99) + "\\n"\n'
            f'\tfor i := 0; i < {BIG_LINES}; i++ {{ w.WriteString(line) }}\n\tw.Flush()\n}}\n',
        source_name="main.go",
    ),
    "rust": Programs(
        "backend-rust", ("rustc",),
        hello='fn main() { println!("hello, world"); }\n',
        stderr='fn main() { eprintln!("oops"); }\n',
        two_lines='use std::io;\nfn main() {\n    let mut a = String::new();\n    let mut b = String::new();\n'
                  '    io::stdin().read_line(&mut a).unwrap();\n    io::stdin().read_line(&mut b).unwrap();\n'
                  '    println!("got {} and {}", a.trim(), b.trim());\n}\n',
        loop='fn main() {\n    println!("started");\n    loop {}\n}\n',
        exit3="fn main() { std::process::exit(3); }\n",
        syntax_error="fn main() {\n    let x = ;\n}\n",
        diagnostic="expected expression",
        big='use std::io::Write;\nfn main() {\n    let out = std::io::stdout();\n    let mut lock = out.lock();\n'
            '    let line = format!("{}\\n", "x".repeat(99));\n'
            f'    for _ in 0..{BIG_LINES} {{ if lock.write_all(line.as_bytes()).is_err() {{ return; }} }}\n}}\n',
        source_name="main.rs",
    ),
    "java": Programs(
        "backend-java", ("javac", "java"),
        hello='System.out.println("hello, world");\n',
        stderr='System.err.println("oops");\n',
        two_lines='Scanner in = new Scanner(System.in);\nString a = in.nextLine();\nString b = in.nextLine();\n'
                  'System.out.println("got " + a + " and " + b);\n',
        loop='public class Spin {\n  public static void main(String[] args) {\n    System.out.println("started");\n'
             '    while (true) { }\n  }\n}\n',
        exit3="System.exit(3);\n",
        syntax_error="int x = ;\n",
        diagnostic="illegal start of expression",
        big='String line = "x".repeat(99) + "\\n";\njava.io.PrintStream out = new java.io.PrintStream('
            'new java.io.FileOutputStream(java.io.FileDescriptor.out), false);\n'
            f'for (int i = 0; i < {BIG_LINES}; i++) out.print(line);\nout.flush();\n',
        source_name="Main.java",
    ),
}

PARAMS = [pytest.param(name, id=name) for name in LANGUAGES]


async def interrupt_running_loop(km, kc, code: str) -> dict:
    """Run ``code`` until it prints "started", interrupt the kernel, return the cell's outputs."""
    started = asyncio.Event()
    streamed: list[str] = []

    def on_output(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream":
            streamed.append(msg["content"]["text"])
            if "started" in "".join(streamed):
                started.set()

    cell = asyncio.ensure_future(kc.execute_interactive(code, timeout=120, output_hook=on_output))
    await asyncio.wait_for(started.wait(), 120)
    await km.interrupt_kernel()
    reply = await asyncio.wait_for(cell, 60)
    return reply["content"]


@pytest.mark.kernel
@pytest.mark.parametrize("language", PARAMS)
async def test_language_acceptance(language: str) -> None:
    """Hello, two input lines, interrupt then a new cell, exit(3), a syntax error, 20 MB of output."""
    p = LANGUAGES[language]
    require_programs(*p.programs)
    async with running_kernel(p.kernel) as (km, kc):
        hello = await run_cell(kc, p.hello, timeout=180)
        assert hello["reply"]["status"] == "ok", hello
        assert hello["stdout"] == "hello, world\n"
        assert hello["reply"]["exit_code"] == 0

        answered = await run_cell(kc, p.two_lines, stdin_answers=["first", "second"], timeout=180)
        assert len(answered["prompts"]) == 2, answered
        assert "got first and second" in answered["stdout"]

        interrupted = await interrupt_running_loop(km, kc, p.loop)
        assert interrupted["status"] == "error"
        assert interrupted["ename"] == "KeyboardInterrupt"
        after = await run_cell(kc, p.hello, timeout=180)
        assert after["stdout"] == "hello, world\n", "the kernel must stay usable after an interrupt"

        exited = await run_cell(kc, p.exit3, timeout=180)
        assert exited["reply"]["status"] == "error"
        assert exited["reply"]["exit_code"] == 3
        assert "3" in exited["reply"]["evalue"]

        broken = await run_cell(kc, p.syntax_error, timeout=180)
        assert broken["reply"]["status"] == "error"
        assert broken["reply"]["ename"] == "CompileError"
        assert p.diagnostic in broken["stderr"]
        assert p.source_name in broken["stderr"]
        assert "/tmp" not in broken["stderr"], "compiler messages must not show our temp folders"

        big = await run_cell(kc, p.big, timeout=300)
        assert big["reply"]["status"] == "ok", big["reply"]
        assert "output truncated" in big["stderr"]
        assert 0 < len(big["stdout"]) <= 1_000_000
        assert set(big["stdout"]) <= {"x", "\n"}
        again = await run_cell(kc, p.hello, timeout=180)
        assert again["stdout"] == "hello, world\n", "the kernel must survive a flood of output"


@pytest.mark.kernel
@pytest.mark.parametrize("language", PARAMS)
async def test_stdin_not_allowed_gives_end_of_file(language: str) -> None:
    p = LANGUAGES[language]
    require_programs(*p.programs)
    async with running_kernel(p.kernel) as (_, kc):
        result = await run_cell(kc, p.two_lines, allow_stdin=False, timeout=180)
        assert result["prompts"] == []
        assert "got first" not in result["stdout"]


@pytest.mark.kernel
async def test_interrupt_mode_message_stops_the_child() -> None:
    require_programs("gcc")
    km = AsyncKernelManager(kernel_name="backend-c")
    km.kernel_spec.interrupt_mode = "message"
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        content = await interrupt_running_loop(km, kc, LANGUAGES["c"].loop)
        assert content["ename"] == "KeyboardInterrupt"
        assert content["exit_code"] == 130
        tree = kernel_process_tree(km.provisioner.process.pid)
        assert tree == {km.provisioner.process.pid}, "the interrupted program must be gone"
        after = await run_cell(kc, LANGUAGES["c"].hello)
        assert after["stdout"] == "hello, world\n"
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()


@pytest.mark.kernel
async def test_second_run_of_unchanged_c_cell_skips_compilation(tmp_path) -> None:
    require_programs("gcc")
    log = tmp_path / "compiler.log"
    wrapper = tmp_path / "logging-gcc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    code = f'#include <stdio.h>\n// {uuid.uuid4()}\nint main(void) {{ puts("cached"); return 0; }}\n'

    def compiles() -> int:
        return sum("main.c" in line for line in log.read_text().splitlines()) if log.exists() else 0

    async with running_kernel("backend-c", kernel_options={"compiler": str(wrapper)}) as (_, kc):
        first = await run_cell(kc, code)
        assert first["stdout"] == "cached\n"
        assert compiles() == 1
        second = await run_cell(kc, code)
        assert second["stdout"] == "cached\n"
        assert compiles() == 1, "an unchanged cell must not be compiled again"
        await run_cell(kc, "%flags -Wall -O1")
        third = await run_cell(kc, code)
        assert third["stdout"] == "cached\n"
        assert compiles() == 2, "other flags must give another build"


@pytest.mark.kernel
async def test_no_child_remains_after_shutdown() -> None:
    require_programs("gcc")
    code = ('#include <stdio.h>\n#include <unistd.h>\nint main(void) { fork();\n'
            '  printf("started\\n"); fflush(stdout); sleep(300); return 0; }\n')
    async with running_kernel("backend-c") as (km, kc):
        started = asyncio.Event()
        cell = asyncio.ensure_future(kc.execute_interactive(
            code, timeout=120,
            output_hook=lambda m: "started" in m["content"].get("text", "") and started.set()))
        await asyncio.wait_for(started.wait(), 120)
        kernel_pid = km.provisioner.process.pid
        tree = kernel_process_tree(kernel_pid)
        assert len(tree) >= 3, "kernel, program and its fork should be running"
    cell.cancel()
    for _ in range(100):
        if not any(pid_alive(pid) for pid in tree):
            break
        await asyncio.sleep(0.1)
    assert [pid for pid in tree if pid_alive(pid)] == []


@pytest.mark.kernel
async def test_utf8_split_across_reads_stays_whole() -> None:
    require_programs("gcc")
    code = ('#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n'
            '  fputs("caf\\xc3", stdout); fflush(stdout); usleep(300000);\n'
            '  fputs("\\xa9 \\xe2\\x82", stdout); fflush(stdout); usleep(300000);\n'
            '  fputs("\\xac\\n", stdout); return 0; }\n')
    async with running_kernel("backend-c") as (_, kc):
        result = await run_cell(kc, code)
        assert result["stdout"] == "café €\n"


@pytest.mark.kernel
async def test_crash_by_signal_names_the_signal() -> None:
    require_programs("gcc")
    code = "#include <signal.h>\nint main(void) { raise(SIGSEGV); return 0; }\n"
    async with running_kernel("backend-c") as (_, kc):
        result = await run_cell(kc, code)
        assert result["reply"]["ename"] == "Signal"
        assert "SIGSEGV" in result["reply"]["evalue"]
        assert result["reply"]["exit_code"] == 128 + 11


@pytest.mark.kernel
async def test_magics_env_flags_and_ldflags() -> None:
    require_programs("gcc")
    program = ('#include <stdio.h>\n#include <stdlib.h>\n#include <math.h>\n'
               'int main(void) { printf("%s %d %.0f\\n", getenv("GREETING"), VALUE, sqrt(81.0)); return 0; }\n')
    async with running_kernel("backend-c") as (_, kc):
        await run_cell(kc, "%env GREETING=hi")
        shown = await run_cell(kc, "%flags -Wall -DVALUE=42\n%ldflags -lm")
        assert "flags: -Wall -DVALUE=42" in shown["stdout"]
        result = await run_cell(kc, program)
        assert result["stdout"] == "hi 42 9\n", result
        header = await run_cell(kc, "// %flags -DVALUE=7\n" + program)
        assert header["stdout"].endswith("hi 7 9\n"), header
        unknown = await run_cell(kc, "%flags 'unbalanced")
        assert unknown["reply"]["status"] == "error"
        assert "cannot parse flags" in unknown["stderr"]


@pytest.mark.kernel
async def test_missing_toolchain_names_the_program() -> None:
    async with running_kernel("backend-c", kernel_options={"compiler": "no-such-cc-compiler"}) as (_, kc):
        info = await kc.kernel_info(reply=True)
        assert info["content"]["language_info"]["name"] == "c"
        result = await run_cell(kc, LANGUAGES["c"].hello)
        assert result["reply"]["ename"] == "ToolchainMissing"
        assert "no-such-cc-compiler" in result["reply"]["evalue"]
        assert result["reply"]["exit_code"] == 127


def test_unknown_language_fails_with_a_clear_message() -> None:
    done = subprocess.run([sys.executable, "-m", "backend_kernel_provisioner.kernels", "cobol", "-f", "x.json"],
                          capture_output=True, text=True, timeout=60, env={**os.environ})
    assert done.returncode != 0
    assert "no kernel for language 'cobol'" in done.stderr
