"""``jupyter run`` with our kernels exits cleanly (issue 19): it shuts the kernel down from an ``atexit`` hook,
after Python stopped its thread pools and closed the loop the kernel was started on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

JUPYTER = Path(sys.executable).with_name("jupyter")


@pytest.mark.parametrize(("kernel", "code", "printed"), [
    ("backend-shell", "echo from-shell\n", "from-shell"),
    ("backend-python", "print('from-python')\n", "from-python"),
])
def test_jupyter_run_prints_the_output_and_no_traceback(tmp_path: Path, kernel: str, code: str, printed: str) -> None:
    script = tmp_path / "cell.txt"
    script.write_text(code)
    done = subprocess.run([str(JUPYTER), "run", "--kernel", kernel, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "default"})
    assert done.returncode == 0, done.stderr
    assert printed in done.stdout
    for noise in ("Traceback", "Event loop is closed", "cannot schedule new futures", "destroyed but it is pending"):
        assert noise not in done.stderr, done.stderr
