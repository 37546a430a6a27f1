"""Java: ``javac`` then ``java -cp DIR Class``; a cell without a class is wrapped in ``Main.main``."""

from __future__ import annotations

import re

from traitlets import Unicode

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.compiled import CompiledKernel, Program

JAVA_KEYWORDS = (
    "abstract assert boolean break byte case catch char class const continue default do double else enum "
    "extends final finally float for if implements import instanceof int interface long native new "
    "package private protected public return short static super switch synchronized this throw throws "
    "transient try void volatile while var true false null String System out println print Scanner "
    "Integer List ArrayList Map HashMap main args"
).split()

_PUBLIC_CLASS = re.compile(r"^\s*public\s+(?:(?:final|abstract)\s+)*class\s+([A-Za-z_]\w*)", re.M)
_ANY_CLASS = re.compile(r"^\s*(?:(?:public|final|abstract)\s+)*(?:class|interface|enum|record)\s+([A-Za-z_]\w*)", re.M)
_MAIN = re.compile(r"static\s+void\s+main\s*\(")
_IMPORT = re.compile(r"^\s*import\s+(?:static\s+)?[\w.]+(?:\.\*)?\s*;\s*$")
WRAPPER_IMPORTS = "import java.util.*; import java.io.*; "


def java_program(code: str) -> tuple[str, str]:
    """(main class, source) for a cell: as written when it declares classes, else wrapped.

    The wrapper keeps line numbers: imports stay on their lines and the class header goes on line 1.
    """
    public = _PUBLIC_CLASS.search(code)
    if public:
        return public.group(1), code
    classes = list(_ANY_CLASS.finditer(code))
    main = _MAIN.search(code)
    if classes and main:
        before = [c for c in classes if c.start() < main.start()]
        return (before[-1] if before else classes[0]).group(1), code
    lines = code.split("\n")
    imports = [line.strip() for line in lines if _IMPORT.match(line)]
    body = ["" if _IMPORT.match(line) else line for line in lines]
    header = WRAPPER_IMPORTS + " ".join(imports) + \
        " public class Main { public static void main(String[] args) throws Exception { "
    body[0] = header + body[0]
    return "Main", "\n".join(body) + "\n}}\n"


class JavaKernel(CompiledKernel):
    """The Java recipe."""

    spec = LANGUAGES["java"]

    mimetype = "text/x-java"
    file_extension = ".java"
    pygments_lexer = "java"
    codemirror_mode = "text/x-java"
    keywords = tuple(JAVA_KEYWORDS)
    default_flags = "-encoding UTF-8"

    java = Unicode("java", config=True, help="The Java launcher used to run compiled cells.")

    def prepare(self, code: str) -> Program:
        main_class, source = java_program(code)
        java = self.which(self.java) or self.java
        return Program({f"{main_class}.java": source},
                       [java, "-Dfile.encoding=UTF-8", "-cp", "{dir}", main_class])

    def build_argv(self, program: Program, compiler: str, flags: list[str], ldflags: list[str]) -> list[str]:
        return [compiler, *flags, "-d", ".", *program.sources]

    def version_argv(self, compiler: str) -> list[str]:
        return [compiler, "-version"]


kernel_class = JavaKernel
