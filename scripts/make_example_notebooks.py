"""Write docs/examples/<language>.ipynb: one small notebook per kernel.

Each has a ``parameters`` cell (papermill injects its own after it), a cell
using the parameter, and cells showing what persists in that kernel. The
expected text of each notebook's output is kept beside it in EXPECTED, which
the tests compare with what nbclient and papermill produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "examples"

C_GREET = '#include <stdio.h>\n#include <stdlib.h>\nint main(void) {\n    printf("hello, %s\\n", getenv("who"));\n    return 0;\n}'
CPP_GREET = '#include <cstdlib>\n#include <iostream>\nint main() {\n    std::cout << "hello, " << std::getenv("who") << std::endl;\n}'
GO_GREET = 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tfmt.Println("hello, " + os.Getenv("who"))\n}'
RUST_GREET = 'fn main() {\n    println!("hello, {}", std::env::var("who").unwrap());\n}'
JAVA_GREET = 'System.out.println("hello, " + System.getenv("who"));'

#: language: (parameters cell, [cells using it]); every notebook prints "hello, <who>" then "6 * 7 = 42".
NOTEBOOKS: dict[str, tuple[str, list[str]]] = {
    "python": ('who = "world"', ['print(f"hello, {who}")', "x = 6 * 7", 'print(f"6 * 7 = {x}")']),
    "c": ("%env who=world", [C_GREET, '#include <stdio.h>\nint main(void) { printf("6 * 7 = %d\\n", 6 * 7); }']),
    "cpp": ("%env who=world", [CPP_GREET, '#include <iostream>\nint main() { std::cout << "6 * 7 = " << 6 * 7 << std::endl; }']),
    "go": ("%env who=world", [GO_GREET, 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("6 * 7 =", 6*7) }']),
    "rust": ("%env who=world", [RUST_GREET, 'fn main() { println!("6 * 7 = {}", 6 * 7); }']),
    "java": ("%env who=world", [JAVA_GREET, 'System.out.println("6 * 7 = " + 6 * 7);']),
    "nodejs": ('var who = "world";', ['console.log(`hello, ${who}`)', "let x = 6 * 7", 'console.log("6 * 7 = " + x)']),
    "lua": ('who = "world"', ['print("hello, " .. who)', "x = 6 * 7", 'print("6 * 7 = " .. x)']),
    "php": ('$who = "world";', ['echo "hello, $who\\n";', "$x = 6 * 7;", 'echo "6 * 7 = $x\\n";']),
    "haskell": ('let who = "world"', ['putStrLn ("hello, " ++ who)', "let x = 6 * 7 :: Int", 'putStrLn ("6 * 7 = " ++ show x)']),
    "r": ('who <- "world"', ['cat("hello, ", who, "\\n", sep = "")', "x <- 6 * 7", 'cat("6 * 7 = ", x, "\\n", sep = "")']),
    "octave": ("who = 'world';", ["printf('hello, %s\\n', who)", "x = 6 * 7;", "printf('6 * 7 = %d\\n', x)"]),
    "scheme": ('(define who "world")', ['(display (string-append "hello, " who)) (newline)', "(define x (* 6 7))",
                                          '(display "6 * 7 = ") (display x) (newline)']),
    "julia": ('who = "world"', ['println("hello, ", who)', "x = 6 * 7", 'println("6 * 7 = ", x)']),
    "shell": ('who="world"', ['echo "hello, $who"', "x=$((6 * 7))", 'echo "6 * 7 = $x"']),
}

DISPLAY = {
    "python": "Python 3 (backend)", "c": "C (backend)", "cpp": "C++ (backend)", "go": "Go (backend)",
    "rust": "Rust (backend)", "java": "Java (backend)", "nodejs": "Node.js (backend)", "lua": "Lua (backend)",
    "php": "PHP (backend)", "haskell": "Haskell (backend)", "r": "R (backend)", "octave": "Octave (backend)",
    "scheme": "Scheme (backend)", "julia": "Julia (backend)", "shell": "Shell (backend)",
}


def expected_output(who: str) -> str:
    return f"hello, {who}\n6 * 7 = 42\n"


def build(language: str) -> nbformat.NotebookNode:
    params, cells = NOTEBOOKS[language]
    nb = nbformat.v4.new_notebook()
    spec = json.loads((ROOT / "kernelspecs" / f"backend-{language}" / "kernel.json").read_text())
    nb.metadata["kernelspec"] = {"name": f"backend-{language}", "display_name": spec["display_name"],
                                 "language": spec["language"]}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {DISPLAY[language]}\n\nA parameter, then cells that use it."))
    parameter_cell = nbformat.v4.new_code_cell(params)
    parameter_cell.metadata["tags"] = ["parameters"]
    nb.cells.append(parameter_cell)
    nb.cells.extend(nbformat.v4.new_code_cell(cell) for cell in cells)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{language}-{index}"
    return nb


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for language in NOTEBOOKS:
        nbformat.write(build(language), OUT / f"{language}.ipynb")
    print(f"wrote {len(NOTEBOOKS)} notebooks under {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
