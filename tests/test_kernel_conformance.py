"""jupyter_kernel_test conformance of the compiled-language kernels (blocking client, kernel_name)."""

from __future__ import annotations

import shutil
import unittest

import jupyter_kernel_test
import pytest

from .test_compiled_languages import LANGUAGES

pytestmark = pytest.mark.kernel  # jupyter_kernel_test's KernelTests start a kernel per class


class _CompiledKernelSettings:
    """Shared settings (a mixin, so pytest does not collect it); subclasses name the language."""

    language_key = ""
    incomplete_code_samples = ["int main() {", "foo(1,\n  2"]
    invalid_code_samples = ["}", "foo())"]
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "*hello, world*"  # the hello cell, not the stderr one

    def test_history(self) -> None:
        """jupyter_kernel_test takes the history test's cells from the execute_result samples, which a
        compiled language has none of (a cell is a program): the hello and stderr cells do."""
        self.code_execute_result = [{"code": self.code_hello_world}, {"code": self.code_stderr}]
        super().test_history()  # type: ignore[misc]

    @classmethod
    def setUpClass(cls) -> None:
        programs = LANGUAGES[cls.language_key]
        missing = [p for p in programs.programs if shutil.which(p) is None]
        if missing:
            raise unittest.SkipTest(f"toolchain not installed: missing {', '.join(missing)}")
        cls.kernel_name = programs.kernel
        cls.code_hello_world = programs.hello
        cls.code_stderr = programs.stderr
        cls.code_generate_error = programs.exit3
        cls.complete_code_samples = [programs.hello]
        super().setUpClass()  # type: ignore[misc]


class CKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "c"
    language_name = "c"
    file_extension = ".c"
    code_inspect_sample = "int add(int a, int b) { return a + b; }\nint x = add"  # its declaration
    # Matches are compared as sets: the C keyword table has struct but no string functions (strlen, ...).
    completion_samples = [{"text": "prin", "matches": {"printf"}}, {"text": "str", "matches": {"struct"}},
                          {"text": "si", "matches": {"signed", "sizeof"}}]


class CppKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "cpp"
    language_name = "c++"
    file_extension = ".cpp"
    code_inspect_sample = "int add(int a, int b) { return a + b; }\nint x = add"
    completion_samples = [{"text": "names", "matches": {"namespace"}}]


class GoKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "go"
    language_name = "go"
    file_extension = ".go"
    code_inspect_sample = "func add(a, b int) int { return a + b }\nvar x = add"
    completion_samples = [{"text": "fallt", "matches": {"fallthrough"}}]
    incomplete_code_samples = ["func main() {", "x := `raw"]


class RustKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "rust"
    language_name = "rust"
    file_extension = ".rs"
    code_inspect_sample = "fn add(a: i32, b: i32) -> i32 { a + b }\nlet x = add"
    completion_samples = [{"text": "eprint", "matches": {"eprintln"}}]
    incomplete_code_samples = ["fn main() {", "let s = \"open"]


class JavaKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "java"
    language_name = "java"
    file_extension = ".java"
    code_inspect_sample = "Math.max"  # javap's signatures
    completion_samples = [{"text": "synchro", "matches": {"synchronized"}}]
    incomplete_code_samples = ["public class A {", "/* open comment"]
