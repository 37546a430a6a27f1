"""C++: ``g++ -pipe -Wall main.cpp -o main -lrt -lm -lpthread -ldl``, then ``./main``."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.languages.c import C_KEYWORDS, CKernel

CPP_KEYWORDS = C_KEYWORDS + (
    "bool class delete explicit false friend mutable namespace new nullptr operator private protected "
    "public template this throw true try catch typename using virtual constexpr auto std cout cin cerr "
    "endl string vector map set iostream"
).split()


class CppKernel(CKernel):
    """The C++ recipe: the C recipe with another compiler and file type."""

    spec = LANGUAGES["cpp"]

    mimetype = "text/x-c++src"
    file_extension = ".cpp"
    pygments_lexer = "cpp"
    codemirror_mode = "text/x-c++src"
    keywords = tuple(CPP_KEYWORDS)


kernel_class = CppKernel
