"""The pairs: each of our kernels beside the kernel a user would install instead, and the cells both run.

Both sides of a pair run the same cells (the language is the same), so a ratio
compares the kernels, not the code. Where a peer has no way to do something
(tslab reads no stdin) its cell is None and the behaviour table says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Lines printed by the "10,000 printed lines" cell in a full run (``--quick`` prints fewer).
LINES = 10_000


@dataclass(frozen=True)
class Cells:
    """One language's cells. ``{n}`` in ``lines`` is the number of lines to print, one number per line."""

    trivial: str           # no output: the round trip of the kernel itself
    define: str            # sets value to 41 (state kept through an interrupt)
    show: str              # prints value
    lines: str             # prints 1..{n}, one per line, as user code does (the language's print in a loop)
    loop: str              # prints "spin" (flushed), then loops forever without a system call
    read: str | None       # reads one line of stdin (None: the kernel has no way to)
    error: str             # fails with the language's own error
    complete: str          # completion request: the code, cursor at its end
    completes_to: str      # a match the completion must contain
    inspect: str           # inspect request: a name, cursor at its end
    stateful: bool = True  # False for compiled cells: no variable lives from one cell to the next


PYTHON = Cells(
    trivial="t = 1", define="value = 41", show="print(value)", lines="for i in range(1, {n} + 1):\n    print(i)",
    loop="print('spin', flush=True)\nwhile True:\n    pass", read="name = input()", error="1 / 0",
    complete="pri", completes_to="print", inspect="print",
)
R = Cells(
    trivial="t <- 1", define="value <- 41", show="cat(value, '\\n')", lines="for (i in 1:{n}) cat(i, '\\n', sep = '')",
    loop="cat('spin\\n'); while (TRUE) {}", read="name <- readline()",
    error="stop('boom')", complete="prin", completes_to="print", inspect="print",
)
OCTAVE = Cells(
    trivial="t = 1;", define="value = 41;", show="disp(value)", lines="for i = 1:{n}, printf('%d\\n', i); end",
    loop="disp('spin'); fflush(stdout); while true, end", read="name = input('', 's');", error="error('boom')",
    complete="dis", completes_to="disp", inspect="disp",
)
SHELL = Cells(
    trivial="t=1", define="value=41", show="echo $value", lines="for ((i = 1; i <= {n}; i++)); do echo $i; done",
    loop="echo spin; while true; do :; done", read="read -r name", error="cd /nonexistent-folder",
    complete="ech", completes_to="echo", inspect="echo",
)
SCHEME = Cells(
    trivial="(define t 1)", define="(define value 41)", show="(display value)(newline)",
    lines="(let loop ((i 1)) (if (<= i {n}) (begin (display i) (newline) (loop (+ i 1)))))",
    loop='(display "spin")(newline)\n(let loop () (loop))', read="(define name (read-line))", error="(car '())",
    complete="(displ", completes_to="display", inspect="display",
)
LUA = Cells(
    trivial="t = 1", define="value = 41", show="print(value)", lines="for i = 1, {n} do print(i) end",
    loop="print('spin') io.stdout:flush() while true do end", read="name = io.read()", error="error('boom')",
    complete="pri", completes_to="print", inspect="print",
)
C = Cells(
    trivial="int main(void) { return 0; }", define="", show="",
    lines='#include <stdio.h>\nint main(void) {{ for (int i = 1; i <= {n}; i++) printf("%d\\n", i); return 0; }}\n',
    loop='#include <stdio.h>\nint main(void) { puts("spin"); fflush(stdout); volatile unsigned long n = 0;'
         " for (;;) n++; }\n",
    read='#include <stdio.h>\nint main(void) { char line[80]; if (fgets(line, sizeof line, stdin)) puts(line);'
         " return 0; }\n",
    error="int main(void) { return missing; }\n", complete="#include <stdio.h>\nint main(void) { prin",
    completes_to="printf", inspect="#include <stdio.h>\nint main(void) { printf", stateful=False,
)
NODE = Cells(
    trivial="var t = 1", define="var value = 41", show="console.log(value)",
    lines="for (let i = 1; i <= {n}; i++) console.log(i)", loop="console.log('spin'); while (true) {}",
    read="var name = input()", error="throw new Error('boom')", complete="console.lo", completes_to="log",
    inspect="console.log",
)


@dataclass(frozen=True)
class Pair:
    """Our kernel and the peer a user would pick instead, both by kernelspec name."""

    ours: str
    peer: str           # kernelspec name in the benchmark's private prefix (peer_setup installs it)
    peer_label: str     # what the user would install, by its registry name
    cells: Cells
    peer_cells: Cells | None = None   # where the peer needs another spelling of the same thing
    #: Programs our kernel needs (its toolchain); a missing one leaves the pair unmeasured, with the reason.
    programs: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.ours} / {self.peer_label}"

    def cells_of(self, kernel: str) -> Cells:
        return self.peer_cells if kernel == self.peer and self.peer_cells else self.cells


#: The ipykernel pair first: its start is the reference of the start target of every other pair.
#: ipykernel is the server's own (``python3``, stock LocalProvisioner, same interpreter and packages as
#: backend-python), so the ratio is exactly what our provisioner and kernel add.
IPYKERNEL = "python3"
PAIRS = [
    Pair("backend-python", IPYKERNEL, "ipykernel", PYTHON, programs=("python3",)),
    Pair("backend-python", "peer-xpython", "xeus-python", PYTHON, programs=("python3",)),
    Pair("backend-r", "peer-ir", "IRkernel", R, programs=("R",)),
    Pair("backend-octave", "peer-octave", "octave_kernel", OCTAVE, programs=("octave-cli",)),
    Pair("backend-shell", "peer-bash", "bash_kernel", SHELL, programs=("bash",)),
    # Calysto Scheme has no read-line: its own (read) reads from the frontend.
    Pair("backend-scheme", "peer-calysto-scheme", "calysto_scheme", SCHEME,
         peer_cells=replace(SCHEME, read="(define name (read))"), programs=("guile",)),
    Pair("backend-lua", "peer-ilua", "ilua", LUA, programs=("lua5.4",)),
    Pair("backend-c", "peer-c", "jupyter-c-kernel", C, programs=("gcc",)),
    # tslab has no stdin (no input_request) and no inspect; the cells are the same JavaScript.
    Pair("backend-nodejs", "peer-jslab", "tslab (JavaScript)", NODE,
         peer_cells=replace(NODE, read=None), programs=("node",)),
]


@dataclass(frozen=True)
class Solo:
    """One of our kernels without a peer here: only its interrupts are measured (target ≤ 200 ms)."""

    kernel: str
    programs: tuple[str, ...]
    cells: Cells


def _compiled(loop: str, read: str) -> Cells:
    return Cells(trivial="", define="", show="", lines="", loop=loop, read=read, error="", complete="",
                 completes_to="", inspect="", stateful=False)


SOLOS = [
    Solo("backend-php", ("php",), replace(
        LUA, define="$value = 41;", show='echo $value, "\\n";', loop='echo "spin\\n"; while (true) {}',
        read="$name = fgets(STDIN);")),
    Solo("backend-haskell", ("ghci",), replace(
        LUA, define="value = 41 :: Int", show="print value", loop='putStrLn "spin"\nprint (length [1 ..])',
        read="name <- getLine")),
    Solo("backend-cpp", ("g++",), _compiled(
        "#include <iostream>\nint main() { std::cout << \"spin\" << std::endl; volatile unsigned long n = 0;"
        " for (;;) n++; }\n",
        "#include <iostream>\n#include <string>\nint main() { std::string s; std::getline(std::cin, s); }\n")),
    Solo("backend-go", ("go",), _compiled(
        'package main\nimport "fmt"\nfunc main() {\n\tfmt.Println("spin")\n\tn := 0\n\tfor {\n\t\tn++\n\t}\n}\n',
        'package main\nimport ("bufio"; "os")\nfunc main() { bufio.NewReader(os.Stdin).ReadString(10) }\n')),
    Solo("backend-rust", ("rustc",), _compiled(
        'fn main() {\n    println!("spin");\n    loop {}\n}\n',
        "fn main() { let mut s = String::new(); std::io::stdin().read_line(&mut s).unwrap(); }\n")),
    Solo("backend-java", ("javac", "java"), _compiled(
        'public class Spin {\n  public static void main(String[] args) {\n    System.out.println("spin");\n'
        "    while (true) { }\n  }\n}\n",
        "java.util.Scanner in = new java.util.Scanner(System.in);\nString a = in.nextLine();\n")),
]
