"""jupyter_kernel_test conformance of the persistent-session kernels (Node.js, Lua, PHP, shell,
Scheme, R, Octave, Haskell, Julia)."""

from __future__ import annotations

import shutil
import unittest

import jupyter_kernel_test
import pytest

from .test_session_languages import LANGUAGES

pytestmark = pytest.mark.kernel  # jupyter_kernel_test's KernelTests start a kernel per class

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"  # a 1x1 PNG, for the display samples


class _SessionKernelTests(jupyter_kernel_test.KernelTests):
    """Shared settings; subclasses name the language and its samples."""

    __test__ = False  # only the per-language subclasses are collected
    language_key = ""
    error_code = ""  # a cell that fails without printing (default: the acceptance table's error cell)
    supported_history_operations = ("tail", "range", "search")
    #: The history test's cells for a language without execute_result samples (the library takes its cells
    #: from those); ``code_history_pattern`` matches one of the cells.
    code_history_cells: list[str] = []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        cells = LANGUAGES[cls.language_key]
        if shutil.which(cells.program) is None:
            raise unittest.SkipTest(f"toolchain not installed: missing {cells.program}")
        cls.kernel_name = cells.kernel
        cls.code_generate_error = cls.error_code or cells.error
        super().setUpClass()

    def test_history(self) -> None:
        if not self.code_execute_result:
            self.code_execute_result = [{"code": code} for code in self.code_history_cells]
        super().test_history()


class NodeKernelTests(_SessionKernelTests):
    language_key = "nodejs"
    language_name = "javascript"
    file_extension = ".js"
    code_history_pattern = "6*"
    code_inspect_sample = "Math.max"
    code_hello_world = "console.log('hello, world')"
    code_stderr = "console.error('oops')"
    code_display_data = [{"code": "display.html('<b>hi</b>')", "mime": "text/html"},
                         {"code": f"display.png(Buffer.from('{PNG}', 'base64'))", "mime": "image/png"},
                         {"code": "display.json({a: 1})", "mime": "application/json"}]
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": "'a' + 'b'", "result": "'ab'"}]
    completion_samples = [{"text": "process.argv.len", "matches": {"process.argv.length"}},
                          {"text": "Mat", "matches": {"Math"}}]
    complete_code_samples = ["const a = 1;", "f(1, 2)"]
    incomplete_code_samples = ["function f() {", "const s = `open"]
    invalid_code_samples = ["}", "f())"]


class LuaKernelTests(_SessionKernelTests):
    language_key = "lua"
    language_name = "lua"
    file_extension = ".lua"
    code_history_pattern = "6*"
    code_inspect_sample = "string.rep"
    code_hello_world = "print('hello, world')"
    code_stderr = "io.stderr:write('oops\\n')"
    code_display_data = [{"code": "display.html('<b>hi</b>')", "mime": "text/html"},
                         {"code": "display.svg('<svg xmlns=\"http://www.w3.org/2000/svg\"/>')", "mime": "image/svg+xml"}]
    code_execute_result = [{"code": "6 * 7", "result": "42"}]
    completion_samples = [{"text": "string.rep", "matches": {"string.rep"}}, {"text": "ipai", "matches": {"ipairs"}}]
    complete_code_samples = ["x = 1", "print(1, 2)"]
    incomplete_code_samples = ["print(1,", "t = {"]
    invalid_code_samples = [")", "f())"]


class PhpKernelTests(_SessionKernelTests):
    language_key = "php"
    language_name = "php"
    file_extension = ".php"
    code_history_pattern = "return 6*"
    code_inspect_sample = "str_repeat"
    code_hello_world = 'echo "hello, world\\n";'
    code_stderr = 'fwrite(STDERR, "oops\\n");'
    code_display_data = [{"code": "display_html('<b>hi</b>');", "mime": "text/html"},
                         {"code": f"display_png(base64_decode('{PNG}'));", "mime": "image/png"}]
    code_execute_result = [{"code": "return 6 * 7;", "result": "42"}]
    completion_samples = [{"text": "str_rep", "matches": {"str_repeat", "str_replace"}}]
    complete_code_samples = ["$a = 1;", "echo f(1, 2);"]
    incomplete_code_samples = ["function f() {", "$a = [1,"]
    invalid_code_samples = ["}", "f());"]


class ShellKernelTests(_SessionKernelTests):
    language_key = "shell"
    language_name = "bash"
    error_code = "false"
    file_extension = ".sh"
    code_history_cells = ["x=42", "echo $x"]
    code_history_pattern = "x=*"
    code_inspect_sample = "echo"
    code_hello_world = "echo 'hello, world'"
    code_stderr = "echo oops >&2"
    code_display_data = [{"code": "echo '<b>hi</b>' | display --html", "mime": "text/html"},
                         {"code": f"echo {PNG} | base64 -d | display --png", "mime": "image/png"}]
    completion_samples = [{"text": "ech", "matches": {"echo"}}, {"text": "echo $HOM", "matches": {"$HOME"}}]
    complete_code_samples = ["echo hi", "ls -l"]
    incomplete_code_samples = ["echo \"open", "echo $(date"]
    invalid_code_samples = [")"]


class SchemeKernelTests(_SessionKernelTests):
    language_key = "scheme"
    language_name = "scheme"
    file_extension = ".scm"
    code_history_pattern = "(string-append*"
    code_inspect_sample = "(string-append"
    code_hello_world = '(display "hello, world")'
    code_stderr = '(display "oops" (current-error-port))'
    code_display_data = [{"code": '(display-html "<b>hi</b>")', "mime": "text/html"},
                         {"code": '(display-markdown "*hi*")', "mime": "text/markdown"}]
    code_execute_result = [{"code": "(* 6 7)", "result": "42"}, {"code": '(string-append "a" "b")', "result": '"ab"'}]
    completion_samples = [{"text": "(newli", "matches": {"newline"}}]
    complete_code_samples = ["(define a 1)", "(f 1 2)"]
    incomplete_code_samples = ["(define (f x)", '(display "open']
    invalid_code_samples = [")"]


class RKernelTests(_SessionKernelTests):
    language_key = "r"
    language_name = "R"
    file_extension = ".r"
    code_history_pattern = "paste0*"
    code_inspect_sample = "paste"
    code_hello_world = 'cat("hello, world\\n")'
    code_stderr = 'message("oops")'
    code_execute_result = [{"code": "6 * 7", "result": "[1] 42"}, {"code": 'paste0("a", "b")', "result": '[1] "ab"'},
                           {"code": "data.frame(x = 1:2)", "mime": "text/html"}]
    code_display_data = [{"code": "plot(1:3)", "mime": "image/png"},
                         {"code": 'display(html = "<b>hi</b>")', "mime": "text/html"}]
    completion_samples = [{"text": "rnor", "matches": {"rnorm"}}, {"text": "Sys.geten", "matches": {"Sys.getenv"}}]
    complete_code_samples = ["x <- 1", "f(1, 2)"]
    incomplete_code_samples = ["f <- function(x) {", "x <- c(1,"]
    invalid_code_samples = [")"]


class OctaveKernelTests(_SessionKernelTests):
    language_key = "octave"
    language_name = "octave"
    file_extension = ".m"
    code_history_pattern = "6*"
    code_inspect_sample = "linspace"
    code_hello_world = "disp('hello, world')"
    code_stderr = "fprintf(stderr, 'oops\\n')"
    code_execute_result = [{"code": "6 * 7", "result": "ans = 42"}, {"code": "x = 3; x", "result": "x = 3"}]
    code_display_data = [{"code": "plot(1:3)", "mime": "image/png"},
                         {"code": "display_html('<b>hi</b>')", "mime": "text/html"}]
    completion_samples = [{"text": "linspa", "matches": {"linspace"}}]
    complete_code_samples = ["x = 1;", "disp(1)"]
    incomplete_code_samples = ["x = [1,", "disp(\"open"]
    invalid_code_samples = [")"]


class HaskellKernelTests(_SessionKernelTests):
    language_key = "haskell"
    language_name = "haskell"
    file_extension = ".hs"
    code_history_pattern = "6*"
    code_inspect_sample = "map"
    code_hello_world = 'putStrLn "hello, world"'
    code_stderr = 'import System.IO\nhPutStrLn stderr "oops"'
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": '"a" ++ "b"', "result": '"ab"'}]
    code_display_data = [{"code": 'displayHtml "<b>hi</b>"', "mime": "text/html"},
                         {"code": 'displaySvg "<svg xmlns=\'http://www.w3.org/2000/svg\'/>"', "mime": "image/svg+xml"}]
    completion_samples = [{"text": "putStrL", "matches": {"putStrLn"}}]
    complete_code_samples = ["x = 1", "print (1 + 2)"]
    incomplete_code_samples = ["print (1 +", 'putStrLn "open']
    invalid_code_samples = [")"]


class JuliaKernelTests(_SessionKernelTests):
    language_key = "julia"
    language_name = "julia"
    file_extension = ".jl"
    code_history_pattern = "6*"
    code_inspect_sample = "inc(a) = a + 1\ninc"  # a declaration (the Julia loader has no inspect)
    code_hello_world = 'println("hello, world")'
    code_stderr = 'println(stderr, "oops")'
    code_execute_result = [{"code": "6 * 7", "result": "42"}]
    completion_samples = [{"text": "printl", "matches": {"println"}}]
    complete_code_samples = ["x = 1", "f(1, 2)"]
    incomplete_code_samples = ["f(1,", "x = [1,"]
    invalid_code_samples = [")"]
