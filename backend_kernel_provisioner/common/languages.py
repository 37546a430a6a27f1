"""One language, one place: every fact about a language that more than one part of the package needs.

The kernelspec generator (``scripts/make_kernelspecs.py``), the CLI, the
server's child environment, batch mode, the demo and the papermill
translators all read this table; a language's recipe module
(``kernels/languages/<key>.py``) reads its entry for its program and names.
Adding a language is one entry here plus one recipe module (docs/kernels.md,
"Adding a language").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SPEC_PREFIX = "backend-"
KERNELS_MODULE = "backend_kernel_provisioner.kernels"
PYTHON_KERNEL_MODULE = "backend_kernel_provisioner.kernels.python.kernel"


@dataclass(frozen=True)
class Logo:
    """The launcher icon: a rounded square with a short text."""

    text: str
    background: str
    foreground: str = "#ffffff"


@dataclass(frozen=True)
class LanguageSpec:
    """The facts of one language (``key`` names its recipe module and its kernelspec ``backend-<key>``)."""

    key: str
    #: Human name: kernel banners, the docs' section title; the kernelspec shows "<name> (backend)".
    name: str
    #: The kernelspec's ``language`` and kernel_info's ``language_info.name``.
    jupyter_language: str
    logo: Logo
    #: Programs that must all be on PATH; the first one is the interpreter or compiler the recipe runs.
    programs: tuple[str, ...] = ()
    #: Arguments that make ``programs[0]`` print its version.
    version_args: tuple[str, ...] = ("--version",)
    #: Folders promoted on the kernel's PATH when they exist: ``~`` is the kernel's HOME,
    #: ``$NAME`` a variable of its environment, ``*`` a glob.
    bin_dirs: tuple[str, ...] = ()
    #: Variables set for the kernel unless already set (``~`` is the kernel's HOME).
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``%build *`` and ``%exec *``: a heuristic of ``kernels/batch.py`` and its arguments
    #: (``{program}`` is ``programs[0]``).
    batch_build: tuple[str, ...] = ("none",)
    batch_exec: tuple[str, ...] = ("none",)
    #: Cells the demo (``./dev demo``) runs, and what it needs beyond the toolchain to run them.
    demo: tuple[str, ...] = ()
    #: Programs on PATH (or ``$VARIABLES`` set) the demo needs beyond ``programs``.
    demo_needs: tuple[str, ...] = ()
    #: Papermill's parameter translator (``integrations/papermill.py``).
    translator: str = ""

    @property
    def spec_name(self) -> str:
        return SPEC_PREFIX + self.key

    @property
    def display_name(self) -> str:
        return f"{self.name} (backend)"

    @property
    def program(self) -> str:
        """The interpreter or compiler the recipe runs ('' for kernels without a toolchain)."""
        return self.programs[0] if self.programs else ""

    @property
    def argv(self) -> list[str]:
        """The kernelspec's ``argv``."""
        if self.key == "python":
            return ["python", "-m", PYTHON_KERNEL_MODULE, "-f", "{connection_file}"]
        return ["python", "-m", KERNELS_MODULE, self.key, "-f", "{connection_file}"]


_LINK_LIBS = "-lrt -lm -lpthread -ldl"

LANGUAGES: dict[str, LanguageSpec] = {
    spec.key: spec
    for spec in (
        LanguageSpec(
            "python", "Python 3", "python", Logo("Py", "#3776ab", "#ffd43b"), ("python3",),
            variables=MappingProxyType({"PYTHONPATH": "{python_user_site}"}),
            batch_build=("python_build",), batch_exec=("python_exec",),
            demo=("x = 6 * 7", "print('python says', x)"), translator="python",
        ),
        LanguageSpec(
            "c", "C", "c", Logo("C", "#283593"), ("gcc",),
            batch_build=("compile_and_link", "{program}", "c", _LINK_LIBS), batch_exec=("run_binary",),
            demo=('#include <stdio.h>\nint main(void) { printf("C says %d\\n", 6 * 7); return 0; }',),
            translator="env",
        ),
        LanguageSpec(
            "cpp", "C++", "c++", Logo("C++", "#00599c"), ("g++",),
            batch_build=("compile_and_link", "{program}", "cpp", _LINK_LIBS), batch_exec=("run_binary",),
            demo=('#include <iostream>\nint main() { std::cout << "C++ says " << 6 * 7 << std::endl; }',),
            translator="env",
        ),
        LanguageSpec(
            "go", "Go", "go", Logo("Go", "#00add8"), ("go",), ("version",),
            bin_dirs=("/usr/lib/go/bin", "/usr/local/go/bin", "~/go/bin"),
            variables=MappingProxyType({"GOPATH": "~/go"}),
            batch_build=("go_build",), batch_exec=("run_binary",),
            demo=('package main\nimport "fmt"\nfunc main() { fmt.Println("Go says", 6*7) }',), translator="env",
        ),
        LanguageSpec(
            "rust", "Rust", "rust", Logo("Rs", "#b7410e"), ("rustc",), bin_dirs=("~/.cargo/bin",),
            batch_build=("rust_build",), batch_exec=("rust_exec",),
            demo=('fn main() { println!("Rust says {}", 6 * 7); }',), translator="env",
        ),
        LanguageSpec(
            "java", "Java", "java", Logo("Jv", "#e76f00"), ("javac", "java"), ("-version",),
            bin_dirs=("$JAVA_HOME/bin", "/usr/lib/jvm/*/bin"),
            batch_build=("java_build", "{program}"), batch_exec=("java_exec",),
            demo=('System.out.println("Java says " + 6 * 7);',), translator="env",
        ),
        LanguageSpec(
            "nodejs", "Node.js", "javascript", Logo("JS", "#f7df1e", "#000000"), ("node",),
            batch_exec=("main_file", "main.js", "{program}"),
            demo=("let x = 6 * 7", "console.log('Node.js says', x)"), translator="javascript",
        ),
        LanguageSpec(
            "lua", "Lua", "lua", Logo("Lua", "#000080"), ("lua5.4",), ("-v",),
            batch_exec=("main_file", "main.lua", "{program}"),
            demo=("x = 6 * 7", "print('Lua says', x)"), translator="lua",
        ),
        LanguageSpec(
            "php", "PHP", "php", Logo("php", "#777bb4"), ("php",),
            batch_exec=("main_file", "main.php", "{program}"),
            demo=("$x = 6 * 7;", 'echo "PHP says $x\\n";'), translator="php",
        ),
        LanguageSpec(
            "haskell", "Haskell", "haskell", Logo("λ", "#5e5086"), ("ghci",),
            bin_dirs=("~/.ghcup/bin", "~/.cabal/bin"),
            batch_build=("haskell_build",), batch_exec=("run_binary",),
            demo=("x = 6 * 7 :: Int", 'putStrLn ("Haskell says " ++ show x)'), translator="haskell",
        ),
        LanguageSpec(
            "julia", "Julia", "julia", Logo("jl", "#9558b2"), ("julia",), bin_dirs=("~/.juliaup/bin",),
            variables=MappingProxyType({"JULIA_LOAD_PATH": "@:@v#.#:@stdlib"}),
            batch_exec=("main_file", "main.jl", "{program}"),
            demo=("x = 6 * 7", 'println("Julia says ", x)'), translator="julia",
        ),
        LanguageSpec(
            "r", "R", "R", Logo("R", "#276dc3"), ("R",),
            batch_exec=("main_file", "main.R", "Rscript"),
            demo=("x <- 6 * 7", "cat('R says', x, '\\n')"), translator="r",
        ),
        LanguageSpec(
            "octave", "Octave", "octave", Logo("Oct", "#0790c0"), ("octave-cli",),
            batch_exec=("main_file", "main.m", "{program} --no-gui --quiet"),
            demo=("x = 6 * 7;", "printf('Octave says %d\\n', x)"), translator="octave",
        ),
        LanguageSpec(
            "scheme", "Scheme", "scheme", Logo("scm", "#7b1fa2"), ("guile",),
            batch_exec=("main_file", "main.scm", "{program} --no-auto-compile"),
            demo=("(define x (* 6 7))", '(display "Scheme says ") (display x) (newline)'), translator="scheme",
        ),
        LanguageSpec(
            "shell", "Shell", "bash", Logo("$_", "#2e3436", "#8ae234"), ("bash",),
            batch_exec=("main_file", "main.sh", "{program}"),
            demo=("X=$((6 * 7))", 'echo "shell says $X"'), translator="bash",
        ),
        LanguageSpec("app", "App services", "text", Logo("App", "#455a64"), demo=("help",)),
        LanguageSpec(
            "speech", "Speech", "speech", Logo("TTS", "#ff9900", "#232f3e"),
            demo=("Speech says forty-two.",), demo_needs=("espeak-ng",),
        ),
        LanguageSpec(
            "rserver", "R Server", "R", Logo("RS", "#1a5f9e"),
            demo=("x <- 6 * 7", "cat('R Server says', x, '\\n')"), demo_needs=("$MRS_ENDPOINT",),
            translator="r",
        ),
    )
}
