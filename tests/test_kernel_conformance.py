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
    # Matches are compared as sets: the C keyword table has struct but no string functions (strlen, ...).
    completion_samples = [{"text": "prin", "matches": {"printf"}}, {"text": "str", "matches": {"struct"}},
                          {"text": "si", "matches": {"signed", "sizeof"}}]


class CppKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "cpp"
    language_name = "c++"
    file_extension = ".cpp"
    completion_samples = [{"text": "names", "matches": {"namespace"}}]


class GoKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "go"
    language_name = "go"
    file_extension = ".go"
    completion_samples = [{"text": "fallt", "matches": {"fallthrough"}}]
    incomplete_code_samples = ["func main() {", "x := `raw"]


class RustKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "rust"
    language_name = "rust"
    file_extension = ".rs"
    completion_samples = [{"text": "eprint", "matches": {"eprintln"}}]
    incomplete_code_samples = ["fn main() {", "let s = \"open"]


class JavaKernelTests(_CompiledKernelSettings, jupyter_kernel_test.KernelTests):
    language_key = "java"
    language_name = "java"
    file_extension = ".java"
    completion_samples = [{"text": "synchro", "matches": {"synchronized"}}]
    incomplete_code_samples = ["public class A {", "/* open comment"]
