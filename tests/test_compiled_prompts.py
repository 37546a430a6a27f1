"""Prompts of compiled programs come before their input requests (issue 19, acceptance 4).

A program prints a prompt without flushing it and reads two numbers, five times. For each input request the
test checks, over the protocol, that the prompt was already received: every stdout stream message still
waiting at the client is taken before the input request is looked at (``execute_interactive`` would serve
the stdin channel first when both have something), and the stream message carrying the prompt was also sent
before the input request (header dates, set by the kernel when it sends). C's prompt without ``fflush``
never arrived before the input request before this (stdout is a pipe: fully buffered); Java's came after it
in 2 of 3 runs; five rounds per program make such a race show.
"""

from __future__ import annotations

import queue
import time

import pytest
import zmq
import zmq.asyncio

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts a real kernel

ROUNDS = 5
C_PROMPTS = """#include <stdio.h>
int main(void) {
    int i, a, b;
    for (i = 0; i < 5; i++) {
        printf("two numbers %d: ", i);
        if (scanf("%d %d", &a, &b) != 2) return 1;
        printf("sum %d\\n", a + b);
    }
    return 0;
}
"""
PROGRAMS = {
    "c": ("backend-c", ("gcc",), C_PROMPTS),
    "cpp-stdio": ("backend-cpp", ("g++",), C_PROMPTS),
    "cpp-iostream": ("backend-cpp", ("g++",), """#include <iostream>
int main() {
    for (int i = 0; i < 5; i++) {
        int a, b;
        std::cout << "two numbers " << i << ": ";
        if (!(std::cin >> a >> b)) return 1;
        std::cout << "sum " << a + b << "\\n";
    }
}
"""),
    "go": ("backend-go", ("go",), """package main

import "fmt"

func main() {
\tfor i := 0; i < 5; i++ {
\t\tvar a, b int
\t\tfmt.Printf("two numbers %d: ", i)
\t\tif _, err := fmt.Scan(&a, &b); err != nil {
\t\t\treturn
\t\t}
\t\tfmt.Printf("sum %d\\n", a+b)
\t}
}
"""),
    "java": ("backend-java", ("javac", "java"), """Scanner in = new Scanner(System.in);
for (int i = 0; i < 5; i++) {
    System.out.print("two numbers " + i + ": ");
    int a = in.nextInt(), b = in.nextInt();
    System.out.println("sum " + (a + b));
}
"""),
    # Rust's print! is line-buffered by Rust itself, on a terminal too: its programs flush (docs/kernels.md).
    "rust": ("backend-rust", ("rustc",), """use std::io::{self, Write};
fn main() {
    for i in 0..5 {
        print!("two numbers {}: ", i);
        io::stdout().flush().unwrap();
        let mut line = String::new();
        io::stdin().read_line(&mut line).unwrap();
        let sum: i64 = line.split_whitespace().map(|n| n.parse::<i64>().unwrap()).sum();
        println!("sum {}", sum);
    }
}
"""),
}


class Recorder:
    """The cell's stdout as received, and what had been received when each input request arrived."""

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.stdout = ""
        self.stderr = ""
        self.stdout_dates: list[tuple[int, object]] = []  # (length of stdout after the message, header date)
        self.asked: list[dict] = []
        self.idle = False

    def take(self, msg: dict) -> None:
        if msg["parent_header"].get("msg_id") != self.parent:
            return
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
                self.stdout_dates.append((len(self.stdout), msg["header"]["date"]))
            else:
                self.stderr += content["text"]
        elif kind == "status" and content["execution_state"] == "idle":
            self.idle = True

    def sent_before(self, length: int) -> object:
        """Header date of the stream message that brought stdout to ``length`` characters or more."""
        return next(date for end, date in self.stdout_dates if end >= length)


async def run_recorded(kc, code: str, answers: list[str], timeout: float = 300) -> tuple[dict, Recorder]:
    """Run ``code``, answering its input requests; an input request is looked at only after every IOPub
    message already delivered to the client has been taken."""
    msg_id = kc.execute(code, allow_stdin=True)
    record = Recorder(msg_id)
    iopub, stdin = kc.iopub_channel.socket, kc.stdin_channel.socket
    poller = zmq.asyncio.Poller()
    poller.register(iopub, zmq.POLLIN)
    poller.register(stdin, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    pending = list(answers)
    while not record.idle:
        assert time.monotonic() < deadline, f"no end of the cell: {record.stdout!r} {record.stderr!r}"
        events = dict(await poller.poll(1000))
        if stdin in events:
            request = await kc.get_stdin_msg(timeout=0)
            while True:  # everything that reached us before the input request comes first
                try:
                    record.take(await kc.get_iopub_msg(timeout=0))
                except queue.Empty:
                    break
            record.asked.append({"stdout": record.stdout, "date": request["header"]["date"]})
            kc.input(pending.pop(0) if pending else "")
        elif iopub in events:
            record.take(await kc.get_iopub_msg(timeout=0))
    reply = await kc.get_shell_msg(timeout=timeout)
    return reply["content"], record


@pytest.mark.parametrize("name", list(PROGRAMS))
async def test_prompt_arrives_before_the_input_request(name: str) -> None:
    kernel, programs, code = PROGRAMS[name]
    require_programs(*programs)
    answers = [f"{i} {10 * i}" for i in range(ROUNDS)]
    async with running_kernel(kernel) as (_, kc):
        reply, record = await run_recorded(kc, code, answers)
    assert reply["status"] == "ok", (reply, record.stderr)
    expected = "".join(f"two numbers {i}: sum {11 * i}\n" for i in range(ROUNDS))
    assert record.stdout == expected, record.stdout
    assert len(record.asked) == ROUNDS, record.asked
    for i, asked in enumerate(record.asked):
        prompt = f"two numbers {i}: "
        assert asked["stdout"].endswith(prompt), f"round {i}: the input request came before the prompt: {asked}"
        assert record.sent_before(len(asked["stdout"])) < asked["date"], f"round {i}: prompt sent after the request"


async def test_c_streams_stay_apart_and_unflushed_output_stays_buffered() -> None:
    """stdout and stderr are still two streams; stdout still fully buffered (so the line printed before the
    prompt comes with it, and a line written to stderr before both comes first), and a program run without
    input prints as before."""
    require_programs("gcc")
    code = ('#include <stdio.h>\nint main(void) { char w[32];\n'
            '  printf("first line\\n"); fprintf(stderr, "to stderr\\n"); printf("word? ");\n'
            '  if (scanf("%31s", w) != 1) return 1;\n  printf("got %s\\n", w); return 0; }\n')
    async with running_kernel("backend-c") as (_, kc):
        reply, record = await run_recorded(kc, code, ["abc"])
        assert reply["status"] == "ok", reply
        assert record.stdout == "first line\nword? got abc\n" and record.stderr == "to stderr\n", record.stdout
        assert [asked["stdout"] for asked in record.asked] == ["first line\nword? "]
        without = await run_cell(kc, code, allow_stdin=False)
        assert without["reply"]["status"] == "error" and without["stdout"] == "first line\nword? ", without


@pytest.mark.parametrize("flags", ["-static -Wall", "-fsanitize=address -g",
                                   "-Wall -std=c99 -U_GNU_SOURCE -D_POSIX_C_SOURCE=1"])
async def test_c_prompt_with_other_flags(flags: str) -> None:
    """The handler is compiled with the cell's flags (a static program, a sanitizer that must come first
    among the libraries), or with only their code-generation ones when a -D/-U/-std does not suit it."""
    require_programs("gcc")
    async with running_kernel("backend-c") as (_, kc):
        assert (await run_cell(kc, f"%flags {flags}"))["reply"]["status"] == "ok"
        reply, record = await run_recorded(kc, C_PROMPTS, [f"{i} {i}" for i in range(ROUNDS)])
    assert reply["status"] == "ok", (reply, record.stderr)
    assert [asked["stdout"].rsplit("\n", 1)[-1] for asked in record.asked] == [
        f"two numbers {i}: " for i in range(ROUNDS)], record.asked


async def test_c_without_the_handler_runs_as_written() -> None:
    """``flush_prompts = False``: the program is built and run as written, its prompt stays in its buffer
    (what every C program did before) until it exits."""
    require_programs("gcc")
    async with running_kernel("backend-c", kernel_options={"flush_prompts": False}) as (_, kc):
        reply, record = await run_recorded(kc, C_PROMPTS, [f"{i} {i}" for i in range(ROUNDS)])
    assert reply["status"] == "ok", reply
    assert record.asked[0]["stdout"] == "", record.asked
    assert record.stdout == "".join(f"two numbers {i}: sum {2 * i}\n" for i in range(ROUNDS))
