"""Batch mode through real kernels: %clean, %build and %exec in each language's kernel (issue 4)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend_kernel_provisioner.kernels.batch import resolve

from .helpers import pid_alive, require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts a backend-* kernel through running_kernel

LANGUAGE_PACKAGE = "backend_kernel_provisioner.kernels.languages"


def require_kernel(language: str) -> None:
    """Skip when our kernel for ``language`` has not been written yet."""
    if language != "python" and importlib.util.find_spec(f"{LANGUAGE_PACKAGE}.{language}") is None:
        pytest.skip(f"kernel not implemented yet: module {LANGUAGE_PACKAGE}.{language} is missing")


def write_tree(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class Project:
    """A multi-file project that prints ``sum=5 batch=1``, and a file edit that breaks its build."""

    language: str
    programs: tuple[str, ...]
    files: dict[str, str]
    broken: dict[str, str]
    name: str = ""


PROJECTS = [
    Project("c", ("gcc",), {
        "lib/util.h": "int add(int a, int b);\n",
        "lib/util.c": '#include "util.h"\nint add(int a, int b) { return a + b; }\n',
        "main.c": '#include <stdio.h>\n#include <stdlib.h>\n#include "lib/util.h"\n'
                  'int main(void) { printf("sum=%d batch=%s\\n", add(2, 3), getenv("_BACKEND_BATCH_MODE")); '
                  "return 0; }\n",
    }, {"lib/util.c": "int add(int a, int b) { return a + ; }\n"}),
    Project("cpp", ("g++",), {
        "lib/util.hpp": "int add(int a, int b);\n",
        "lib/util.cpp": '#include "util.hpp"\nint add(int a, int b) { return a + b; }\n',
        "main.cpp": '#include <iostream>\n#include <cstdlib>\n#include "lib/util.hpp"\n'
                    'int main() { std::cout << "sum=" << add(2, 3) << " batch=" '
                    '<< std::getenv("_BACKEND_BATCH_MODE") << std::endl; }\n',
    }, {"main.cpp": "int main() { undeclared_thing(); }\n"}),
    Project("go", ("go",), {
        "util.go": "package main\n\nfunc add(a, b int) int { return a + b }\n",
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\n'
                   'func main() { fmt.Printf("sum=%d batch=%s\\n", add(2, 3), os.Getenv("_BACKEND_BATCH_MODE")) }\n',
    }, {"util.go": "package main\n\nfunc add(a, b int) int { return a + }\n"}),
    Project("rust", ("rustc",), {
        "util.rs": "pub fn add(a: i32, b: i32) -> i32 { a + b }\n",
        "main.rs": "mod util;\nfn main() {\n    let mode = std::env::var(\"_BACKEND_BATCH_MODE\").unwrap_or_default();\n"
                   '    println!("sum={} batch={}", util::add(2, 3), mode);\n}\n',
    }, {"util.rs": "pub fn add(a: i32, b: i32) -> i32 { a + \"b\" }\n"}),
    Project("rust", ("cargo",), {
        "Cargo.toml": '[package]\nname = "adder"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/util.rs": "pub fn add(a: i32, b: i32) -> i32 { a + b }\n",
        "src/main.rs": "mod util;\nfn main() {\n    let mode = std::env::var(\"_BACKEND_BATCH_MODE\").unwrap_or_default();\n"
                       '    println!("sum={} batch={}", util::add(2, 3), mode);\n}\n',
    }, {"src/util.rs": "pub fn add(a: i32, b: i32) -> i32 { a + \"b\" }\n"}, name="rust-cargo"),
    Project("java", ("javac", "java"), {
        "Util.java": "public class Util { static int add(int a, int b) { return a + b; } }\n",
        "Main.java": 'public class Main { public static void main(String[] args) {\n'
                     '  System.out.println("sum=" + Util.add(2, 3) + " batch=" + System.getenv("_BACKEND_BATCH_MODE"));\n'
                     "} }\n",
    }, {"Util.java": "public class Util { static int add(int a, int b) { return a + ; } }\n"}),
    Project("haskell", ("ghc",), {
        "Util.hs": "module Util (add) where\n\nadd :: Int -> Int -> Int\nadd a b = a + b\n",
        "main.hs": "import System.Environment (lookupEnv)\nimport Util (add)\n\nmain :: IO ()\nmain = do\n"
                   '  mode <- lookupEnv "_BACKEND_BATCH_MODE"\n'
                   '  putStrLn ("sum=" ++ show (add 2 3) ++ " batch=" ++ maybe "" id mode)\n',
    }, {"Util.hs": "module Util (add) where\n\nadd :: Int -> Int -> Int\nadd a b = a + \"b\"\n"}),
]


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name or p.language for p in PROJECTS])
async def test_project_builds_runs_and_a_failed_build_blocks_exec(project: Project, tmp_path: Path) -> None:
    require_kernel(project.language)
    require_programs(*project.programs)
    write_tree(tmp_path, project.files)
    async with running_kernel(f"backend-{project.language}", cwd=str(tmp_path)) as (_, kc):
        built = await run_cell(kc, "%build *", timeout=600)
        assert built["reply"]["exit_code"] == 0, built["stderr"]
        ran = await run_cell(kc, "%exec *", timeout=120)
        assert ran["reply"]["status"] == "ok" and ran["reply"]["exit_code"] == 0, ran["stderr"]
        assert ran["stdout"].strip() == "sum=5 batch=1"

        write_tree(tmp_path, project.broken)  # the old program stays on disk: exec must not run it
        failed = await run_cell(kc, "%build *", timeout=600)
        assert failed["reply"]["status"] == "error" and failed["reply"]["exit_code"] != 0
        assert failed["stderr"].strip(), "the compiler's message is shown"
        skipped = await run_cell(kc, "%exec *")
        assert skipped["reply"]["status"] == "error" and skipped["reply"]["exit_code"] == 127
        assert skipped["stdout"] == "" and "build failed" in skipped["stderr"]


async def test_makefile_wins_for_build_and_clean(tmp_path: Path) -> None:
    require_programs("make", "gcc")
    write_tree(tmp_path, {
        "hello.c": '#include <stdio.h>\nint main(void) { puts("made by make"); return 0; }\n',
        "Makefile": "hello: hello.c\n\tgcc -o hello hello.c\n\nclean:\n\trm -f hello\n",
    })
    async with running_kernel("backend-c", cwd=str(tmp_path)) as (_, kc):
        built = await run_cell(kc, "%build *")
        assert built["reply"]["exit_code"] == 0, built["stderr"]
        assert "gcc -o hello hello.c" in built["stdout"] and (tmp_path / "hello").is_file()
        ran = await run_cell(kc, "%exec ./hello")
        assert ran["stdout"] == "made by make\n"
        cleaned = await run_cell(kc, "%clean *")
        assert cleaned["reply"]["exit_code"] == 0 and "rm -f hello" in cleaned["stdout"]
        assert not (tmp_path / "hello").exists()


INTERPRETED = [
    ("python", "main.py", 'import os\nprint("batch", os.environ.get("_BACKEND_BATCH_MODE"))\n', "python3"),
    ("nodejs", "main.js", 'console.log("batch", process.env._BACKEND_BATCH_MODE);\n', "node"),
    ("lua", "main.lua", 'print("batch " .. os.getenv("_BACKEND_BATCH_MODE"))\n', "lua5.4"),
    ("php", "main.php", '<?php echo "batch " . getenv("_BACKEND_BATCH_MODE") . "\\n";\n', "php"),
    ("r", "main.R", 'cat(paste0("batch ", Sys.getenv("_BACKEND_BATCH_MODE"), "\\n"))\n', "Rscript"),
    ("octave", "main.m", 'printf("batch %s\\n", getenv("_BACKEND_BATCH_MODE"));\n', "octave-cli"),
    ("scheme", "main.scm", '(display (string-append "batch " (getenv "_BACKEND_BATCH_MODE")))\n(newline)\n',
     "guile"),
    ("shell", "main.sh", 'echo "batch $_BACKEND_BATCH_MODE"\n', "bash"),
    ("julia", "main.jl", 'println("batch ", ENV["_BACKEND_BATCH_MODE"])\n', "julia"),
]


@pytest.mark.parametrize(("language", "filename", "source", "program"), INTERPRETED,
                         ids=[case[0] for case in INTERPRETED])
async def test_interpreted_exec_runs_main_file(language: str, filename: str, source: str, program: str,
                                               tmp_path: Path) -> None:
    require_kernel(language)
    require_programs(program)
    async with running_kernel(f"backend-{language}", cwd=str(tmp_path)) as (_, kc):
        missing = await run_cell(kc, "%exec *")
        assert missing["reply"]["status"] == "error" and missing["reply"]["exit_code"] == 127
        assert filename in missing["stderr"]
        built = await run_cell(kc, "%build *")
        assert built["reply"]["exit_code"] == 0  # nothing to build
        (tmp_path / filename).write_text(source)
        ran = await run_cell(kc, "%exec *", timeout=120)
        assert ran["reply"]["exit_code"] == 0, ran["stderr"]
        assert ran["stdout"].strip() == "batch 1"


C_READER = ('#include <stdio.h>\nint main(void) { char name[64]; printf("name? "); fflush(stdout);\n'
            '  if (scanf("%63s", name) != 1) return 3; printf("hello %s\\n", name); return 0; }\n')


async def test_batch_c_program_reads_stdin_through_input_request(tmp_path: Path) -> None:
    require_programs("gcc")
    write_tree(tmp_path, {"main.c": C_READER})
    async with running_kernel("backend-c", cwd=str(tmp_path)) as (_, kc):
        assert (await run_cell(kc, "%build *"))["reply"]["exit_code"] == 0
        ran = await run_cell(kc, "%exec *", stdin_answers=["batch-user"])
        assert len(ran["prompts"]) == 1
        assert ran["stdout"] == "name? hello batch-user\n" and ran["reply"]["exit_code"] == 0


async def test_python_input_in_batch_mode(tmp_path: Path) -> None:
    write_tree(tmp_path, {"main.py": 'import sys\nname = input("who? ")\nprint("hello", name)\nsys.exit(4)\n'})
    async with running_kernel("backend-python", cwd=str(tmp_path)) as (_, kc):
        ran = await run_cell(kc, "%exec *", stdin_answers=["pythonista"])
        assert len(ran["prompts"]) == 1
        assert ran["stdout"] == "who? hello pythonista\n"
        assert ran["reply"]["status"] == "error" and ran["reply"]["exit_code"] == 4
        assert ran["errors"][0]["traceback"] == ["%exec failed with exit code 4"]


async def test_python_build_failure_blocks_exec(tmp_path: Path) -> None:
    write_tree(tmp_path, {"main.py": 'open("ran", "w").write("yes")\n'})
    async with running_kernel("backend-python", cwd=str(tmp_path)) as (_, kc):
        failed = await run_cell(kc, "%build exit 2")
        assert failed["reply"]["exit_code"] == 2
        skipped = await run_cell(kc, "%exec *")
        assert skipped["reply"]["exit_code"] == 127 and "build failed" in skipped["stderr"]
        assert not (tmp_path / "ran").exists()
        assert (await run_cell(kc, "%exec *"))["reply"]["exit_code"] == 0
        assert (tmp_path / "ran").read_text() == "yes"


async def _interrupt_step(km, kc, code: str) -> dict:
    """Start ``code``, interrupt the kernel once the step printed, return the reply content."""
    seen: list[str] = []
    msg_id = kc.execute(code)
    while not any("started" in text for text in seen):
        msg = await kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"] == "stream":
            seen.append(msg["content"]["text"])
    await km.interrupt_kernel()
    while True:
        reply = await kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


INTERRUPTIBLE = [  # kernel, a cell setting interpreter state (or ""), a cell printing it, its output
    ("c", "", "", ""),
    ("python", "kept = 41", "print(kept + 1)", "42\n"),
    ("nodejs", "var kept = 41;", "console.log(kept + 1);", "42\n"),
    ("lua", "kept = 41", "print(kept + 1)", "42\n"),
]


@pytest.mark.parametrize(("language", "setup", "check", "expected"), INTERRUPTIBLE,
                         ids=[case[0] for case in INTERRUPTIBLE])
async def test_interrupt_stops_the_step_and_the_kernel_keeps_its_state(
        language: str, setup: str, check: str, expected: str, tmp_path: Path) -> None:
    require_kernel(language)
    pid_file = tmp_path / "child.pid"
    async with running_kernel(f"backend-{language}", cwd=str(tmp_path)) as (km, kc):
        if setup:
            assert (await run_cell(kc, setup))["reply"]["status"] == "ok"
        reply = await _interrupt_step(km, kc, f"%exec echo $$ > {pid_file}; echo started; sleep 300")
        assert reply["status"] == "error" and reply["exit_code"] == 130
        pid = int(pid_file.read_text())
        for _ in range(100):
            if not pid_alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not pid_alive(pid), "the step's shell was killed"
        after = await run_cell(kc, "%exec echo still here")
        assert after["stdout"] == "still here\n"
        if check:
            kept = await run_cell(kc, check)
            assert kept["stdout"] == expected, "the interpreter kept its state through the interrupt"


NODE_READER = ("const rl = require('readline').createInterface({ input: process.stdin });\n"
               "process.stdout.write('name? ');\nrl.once('line', (line) => { console.log('hello ' + line); process.exit(0); });\n")


async def test_batch_program_in_a_session_kernel_reads_stdin(tmp_path: Path) -> None:
    require_kernel("nodejs")
    require_programs("node")
    write_tree(tmp_path, {"main.js": NODE_READER})
    async with running_kernel("backend-nodejs", cwd=str(tmp_path)) as (_, kc):
        ran = await run_cell(kc, "%exec *", stdin_answers=["noder"])
        assert len(ran["prompts"]) == 1
        assert ran["stdout"] == "name? hello noder\n" and ran["reply"]["exit_code"] == 0


PYPROJECT_FILES = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
                      '[project]\nname = "greet-batch"\nversion = "1.2.3"\n\n'
                      '[tool.setuptools]\npackages = ["greet"]\n',
    "greet/__init__.py": 'def hello():\n    return "hello from greet"\n',
    "main.py": 'import sys\nfrom importlib.metadata import version\nimport greet\n'
               'print(greet.hello(), version("greet-batch"), sys.prefix)\n',
}


def make_python_project(folder: Path) -> Path:
    """A pyproject project with its own virtual environment (``.venv``); the venv's prefix."""
    write_tree(folder, PYPROJECT_FILES)
    subprocess.run([sys.executable, "-m", "venv", str(folder / ".venv")], check=True)
    return (folder / ".venv").resolve()


def test_python_build_never_asks_pip_for_user_installs_in_a_virtualenv(tmp_path: Path) -> None:
    """The tests run in a virtualenv, as the README's set-up does: ``--user`` would fail there."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT_FILES["pyproject.toml"]})
    assert sys.prefix != sys.base_prefix
    plan = resolve("python", "build", "*", tmp_path)
    assert plan.command is not None and "pip install" in plan.command and "--user" not in plan.command


async def test_python_build_and_exec_a_pyproject_project_in_its_venv(tmp_path: Path) -> None:
    prefix = await asyncio.to_thread(make_python_project, tmp_path)
    async with running_kernel("backend-python", cwd=str(tmp_path)) as (_, kc):
        built = await run_cell(kc, "%build *", timeout=600)
        assert built["reply"]["exit_code"] == 0, built["stderr"][-2000:]
        assert "--user" not in built["stdout"] + built["stderr"]
        ran = await run_cell(kc, "%exec *", timeout=120)
        assert ran["reply"]["exit_code"] == 0, ran["stderr"]
        assert ran["stdout"] == f"hello from greet 1.2.3 {prefix}\n"
