"""What the compiled languages' toolchains say about a name: C's manual pages, ``go doc``, ``javap``.

Why: a compiled kernel has no running program to ask, but its toolchain documents the library
the cells call: ``man 3 printf`` (Debian's manpages-dev), ``go doc strings.Repeat``, and ``javap``'s
member signatures of ``java.lang.Math``. Each is a short program run off the event loop, with a
time limit; a missing program or page is just no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Awaitable, Callable

#: Sections of a manual page shown, and how many lines of its DESCRIPTION.
MAN_SECTIONS = ("NAME", "LIBRARY", "SYNOPSIS")
DESCRIPTION_LINES = 12
TOOL_TIMEOUT = 10.0


async def run_tool(argv: list[str], env: dict[str, str], timeout: float = TOOL_TIMEOUT, check: bool = True) -> str:
    """``argv``'s standard output when it ends in time (and with ``check``, succeeds), else ''; the program
    never outlives the call."""
    program = shutil.which(argv[0], path=env.get("PATH"))
    if program is None:
        return ""
    proc = await asyncio.create_subprocess_exec(
        program, *argv[1:], stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        return ""
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return out.decode("utf-8", "replace") if proc.returncode == 0 or not check else ""


def man_summary(page: str) -> str:
    """NAME, LIBRARY, SYNOPSIS and the start of DESCRIPTION of a formatted manual page."""
    lines = [line.rstrip() for line in re.sub(".\b", "", page).splitlines()]
    sections: dict[str, list[str]] = {}
    current = ""
    for line in lines[1:]:
        if re.fullmatch(r"[A-Z][A-Z ]*[A-Z]", line):
            current = line
            sections[current] = []
        elif current:
            sections[current].append(line)
    header = re.sub(r"\s{2,}", "  ", lines[0].strip()) if lines else ""  # "printf(3)  Library Functions Manual"
    parts = [header.rsplit("  ", 1)[0]] if header else []
    parts += [f"{name}\n" + "\n".join(sections[name]).strip("\n") for name in MAN_SECTIONS if name in sections]
    description = "\n".join(sections.get("DESCRIPTION", [])).strip("\n").split("\n")
    if description != [""]:
        shown = description[:DESCRIPTION_LINES]
        more = ["       ..."] if len(description) > DESCRIPTION_LINES else []
        parts.append("DESCRIPTION\n" + "\n".join(shown + more))
    return "\n\n".join(parts)


async def man_page(name: str, env: dict[str, str], timeout: float = TOOL_TIMEOUT) -> str:
    """The C library's (or the system call's) manual page of ``name``, summarised."""
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        return ""
    page = await run_tool(["man", "-P", "cat", "-S", "3:2", name], {**env, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""},
                          timeout)
    return man_summary(page) if page else ""


async def go_doc(name: str, env: dict[str, str], timeout: float = TOOL_TIMEOUT) -> str:
    """``go doc`` of a package member (``fmt.Println``, ``strings.Builder``)."""
    if not re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", name):
        return ""
    text = await run_tool(["go", "doc", name], {"GO111MODULE": "auto", **env}, timeout)
    return "\n".join(text.strip().split("\n")[:40])


#: Packages a Java cell imports (the wrapper imports java.util.* and java.io.*; java.lang always).
JAVA_PACKAGES = ("java.lang", "java.util", "java.io")


async def javap_doc(name: str, env: dict[str, str], timeout: float = TOOL_TIMEOUT) -> str:
    """The public signatures ``javap`` gives of a JDK class, or of one member (``Math.max``)."""
    parts = name.split(".")
    index = next((i for i, part in enumerate(parts) if part[:1].isupper()), None)
    if index is None or not all(re.fullmatch(r"[A-Za-z_$][\w$]*", p) for p in parts):
        return ""
    cls, member = ".".join(parts[:index + 1]), ".".join(parts[index + 1:])
    classes = [cls] if index else [f"{package}.{cls}" for package in JAVA_PACKAGES]
    text = await run_tool(["javap", "-public", *classes], env, timeout, check=False)  # fails when one class is missing
    blocks = re.findall(r"^(?:Compiled from.*\n)?((?:public|final|abstract)[^\n]*\{\n(?:.*\n)*?\})", text, re.M)
    if not blocks:
        return ""
    lines = blocks[0].split("\n")
    first, _, rest = member.partition(".")
    field = re.search(rf"\s([\w.$]+)\s+{re.escape(first)};", blocks[0]) if rest else None
    if field:  # System.out.println: println of out's class, java.io.PrintStream
        return await javap_doc(f"{field.group(1)}.{rest}", env, timeout)
    if member:
        wanted = [line.strip() for line in lines if re.search(rf"[ .]{re.escape(first)}\b", line)]
        return f"{lines[0].rstrip(' {')}:\n" + "\n".join(f"  {line}" for line in wanted) if wanted else ""
    return "\n".join(lines[:30] + (["  ..."] if len(lines) > 30 else []))


#: Per language (the kernel's ``language_name``): where its toolchain documents a name.
TOOLCHAIN_DOCS: dict[str, Callable[[str, dict[str, str], float], Awaitable[str]]] = {
    "c": man_page,
    "c++": man_page,
    "go": go_doc,
    "java": javap_doc,
}
