"""The agent client's batch mode: clean, build and exec reported separately with exit codes (issue 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_kernel_provisioner.agent import AgentKernel

from .helpers import require_programs

pytestmark = pytest.mark.kernel  # every test starts a kernel through AgentKernel.start

MAIN_C = ('#include <stdio.h>\nint twice(int);\n'
          'int main(void) { char word[32]; if (scanf("%31s", word) != 1) return 2;\n'
          '  printf("%s %d\\n", word, twice(21)); return 0; }\n')
TWICE_C = "int twice(int x) { return 2 * x; }\n"


async def batch_run(kernel: AgentKernel, run_id: str, opts: dict, answers: list[str] = ()) -> list[dict]:
    """Every terminal result of one batch run, answering input requests from ``answers``."""
    answers = list(answers)
    results: list[dict] = []
    result = await kernel.execute(run_id, "batch", "", opts=opts, flush_timeout=60)
    while True:
        if result["status"] == "waiting-input":
            results.append(result)
            result = await kernel.execute(run_id, "input", answers.pop(0), flush_timeout=60)
            continue
        if result["status"] != "continued":
            results.append(result)
        if result["status"] == "finished":
            return results
        result = await kernel.execute(run_id, "continue", "", flush_timeout=60)


def stdout_of(results: list[dict]) -> str:
    return "".join(text for r in results for kind, text in r["console"] if kind == "stdout")


async def test_clean_build_exec_report_their_own_exit_codes(tmp_path: Path) -> None:
    require_programs("gcc")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "twice.c").write_text(TWICE_C)
    (tmp_path / "main.c").write_text(MAIN_C)
    async with await AgentKernel.start("c", cwd=str(tmp_path)) as kernel:
        opts = {"clean": "*", "build": "*", "exec": "*"}
        results = await batch_run(kernel, "b1", opts, answers=["answer"])
        statuses = [(r["status"], r["exitCode"]) for r in results]
        assert statuses == [("clean-finished", 0), ("build-finished", 0), ("waiting-input", None), ("finished", 0)]
        assert stdout_of(results) == "answer 42\n"

        (tmp_path / "src" / "twice.c").write_text("int twice(int x) { return 2 * ; }\n")
        failed = await batch_run(kernel, "b2", opts)
        statuses = [(r["status"], r["exitCode"]) for r in failed]
        assert statuses[0] == ("clean-finished", 0)
        assert statuses[1][0] == "build-finished" and statuses[1][1] != 0
        assert statuses[2] == ("finished", 127)
        assert stdout_of(failed) == "", "the old ./main must not run after a failed build"
        assert any("twice.c" in text for r in failed for kind, text in r["console"] if kind == "stderr")


async def test_exec_only_with_a_command_and_missing_main(tmp_path: Path) -> None:
    async with await AgentKernel.start("python", cwd=str(tmp_path)) as kernel:
        missing = await batch_run(kernel, "p1", {"exec": "*"})
        assert [(r["status"], r["exitCode"]) for r in missing] == [("finished", 127)]
        assert any("main.py" in text for kind, text in missing[0]["console"] if kind == "stderr")
        (tmp_path / "main.py").write_text('import os\nprint("mode", os.environ["_BACKEND_BATCH_MODE"])\n')
        ran = await batch_run(kernel, "p2", {"build": "", "exec": "*"})
        assert [(r["status"], r["exitCode"]) for r in ran] == [("finished", 0)]
        assert stdout_of(ran) == "mode 1\n"
        failing = await batch_run(kernel, "p3", {"build": "exit 5", "exec": "*"})
        assert [(r["status"], r["exitCode"]) for r in failing] == [("build-finished", 5), ("finished", 127)]


async def test_build_and_exec_a_pyproject_project_in_its_venv(tmp_path: Path) -> None:
    from .test_batch_kernels import make_python_project

    prefix = make_python_project(tmp_path)
    async with await AgentKernel.start("python", cwd=str(tmp_path)) as kernel:
        results = await batch_run(kernel, "py1", {"build": "*", "exec": "*"})
        assert [(r["status"], r["exitCode"]) for r in results] == [("build-finished", 0), ("finished", 0)], results
        assert stdout_of(results).endswith(f"hello from greet 1.2.3 {prefix}\n")
