"""jupyter_kernel_test conformance of backend-python (ipykernel's IPython kernel with our extensions),
with the samples every other kernel has, so that none of its tests skips for lack of one."""

from __future__ import annotations

import jupyter_kernel_test
import pytest

pytestmark = pytest.mark.kernel  # jupyter_kernel_test's KernelTests start a kernel per class


class PythonKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "backend-python"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": "'a' + 'b'", "result": "'ab'"}]
    code_inspect_sample = "print"
    code_display_data = [{"code": "from IPython.display import HTML, display; display(HTML('<b>hi</b>'))",
                          "mime": "text/html"}]
    code_clear_output = "from IPython.display import clear_output; clear_output()"
    code_page_something = "print?"
    # Not range: IPython numbers the current session 0 in a range's entries, where the test wants its number.
    supported_history_operations = ("tail", "search")
    code_history_pattern = "6*7"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["x = 1", "print(1, 2)"]
    incomplete_code_samples = ["def f(x):", "x = [1,"]
    invalid_code_samples = ["x = )"]
