"""Bad input to the service manager is refused or made harmless (issue 15, "bad input").

Service names become paths (log files), template values go into shell strings,
format specs can ask for huge strings, prestart writes meet symlinks, and bad
definition files must stay visible. Each test drives the real manager (real
processes on loopback) or a real kernel, and checks the filesystem afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backend_kernel_provisioner.kernels.batch import resolve
from backend_kernel_provisioner.sidecar.services import (
    ManagerContext,
    ServiceDefinitionError,
    ServiceManager,
    TemplateError,
    load_definition,
    load_definitions,
    run_prestart_actions,
)
from backend_kernel_provisioner.sidecar.services.definitions import NAME_PATTERN, expand
from backend_kernel_provisioner.sidecar.services.requests import shell_script_index

from .helpers import require_programs, run_cell, running_kernel

DATA = Path(__file__).parent / "data"
DEFS = DATA / "service-defs"
BAD = DATA / "bad-service-defs"
#: A working folder whose name is shell code: substituted unquoted, it would create PWNED.
NASTY_HOME = "home$(touch PWNED)"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def write_def(folder: Path, name: str, definition: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(definition))
    return path


@pytest.fixture
async def manager(tmp_path):
    """A manager whose private folder is two levels inside ``tmp_path``, so an escape stays in the test's folder."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "outer" / "private"
    work.mkdir(parents=True)
    m = ServiceManager(ManagerContext(home=str(home), runtime_path=sys.executable, defs_dir=str(tmp_path / "defs"),
                                      env=dict(os.environ), start_timeout=30, stop_grace=2), work_dir=str(work))
    yield m
    await m.close()


# -- 1. service names are checked before they become paths ---------------------------------------


@pytest.mark.parametrize("bad", ["../../escaped", "a/b/c", "", ".hidden", "-x", "x" * 65, "name:abc", "sp ace"])
async def test_unsafe_service_names_are_refused_and_create_nothing(manager, tmp_path, bad):
    absolute = str(tmp_path / "abs" / "escaped")
    before = files_under(tmp_path)
    for name in (bad, absolute):
        for protocol in ("tcp", "preopen"):
            result = await manager.start_service({"name": name, "protocol": protocol})
            assert result["status"] == "failed", result
            if name:
                assert "is not allowed" in result["error"] and NAME_PATTERN in result["error"], result
        process = await manager.start_process(name, [sys.executable, "-c", "pass"])
        assert process["status"] == "failed" and (not name or NAME_PATTERN in process["error"])
        stopped = await manager.shutdown_service(name)
        assert stopped["status"] == "failed"
    assert files_under(tmp_path) == before  # no log file or folder anywhere, inside or outside
    assert manager.services == {}


def test_definition_file_with_unsafe_name_is_refused_naming_file_and_field(tmp_path):
    path = write_def(tmp_path, "sp ace", {"command": ["true"]})
    with pytest.raises(ServiceDefinitionError) as info:
        load_definition(path)
    message = str(info.value)
    assert str(path) in message and "name" in message and NAME_PATTERN in message
    write_def(tmp_path, "good.name_1-x", {"command": ["true"]})
    good, bad = load_definitions(tmp_path)
    assert set(good) == {"good.name_1-x"} and set(bad) == {"sp ace"}


# -- 2. substituted values are quoted in shell strings -------------------------------------------


async def test_shell_string_command_and_prestart_quote_the_home_folder(tmp_path):
    root = tmp_path / "root"
    home = root / NASTY_HOME
    home.mkdir(parents=True)
    defs = tmp_path / "defs"
    write_def(defs, "echoer", {
        "prestart": [{"action": "run_command", "args": {"command": ["/bin/sh", "-c", "echo pre:{home}"],
                                                         "echo": True}, "ref": "pre"}],
        "command": "echo cmd:{home} {pre[out]}; exec sleep 30",
        "readiness": "none",
    })
    m = ServiceManager(ManagerContext(home=str(home), defs_dir=str(defs), env=dict(os.environ), stop_grace=2))
    try:
        result = await m.start_service({"name": "echoer"})
        assert result["status"] == "started", result
        log = ""
        for _ in range(200):  # the shell's echo reaches the log file shortly after the start
            log = m.read_log("echoer")
            if "cmd:" in log:
                break
            await asyncio.sleep(0.05)
        assert f"pre:{home}" in log and f"cmd:{home} pre:{home}" in log, log
    finally:
        await m.close()
    assert not [p for p in tmp_path.rglob("PWNED")] and not Path("PWNED").exists()


async def test_argv_commands_are_not_quoted(manager, tmp_path):
    """An argv element is passed as one word: quoting it would change the value the program sees."""
    home = tmp_path / NASTY_HOME
    home.mkdir()
    actions = [{"action": "run_command", "args": {"command": ["echo", "{home}"]}, "ref": "r"}]
    result = await run_prestart_actions(actions, {"home": str(home)}, "unit", cwd=str(home))
    assert result["r"]["out"] == f"{home}\n"
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize(("argv", "script"), [
    (["/bin/sh", "-c", "s"], 2), (["bash", "-ec", "s", "name"], 2), (["bash", "-o", "pipefail", "-c", "s"], 4),
    (["sh", "--", "file.sh"], None), (["sh", "file.sh", "-c"], None), (["python3", "-c", "s"], None),
])
def test_the_script_of_a_shell_argv_is_found(argv, script):
    assert shell_script_index(argv) == script


# -- 3. format specs cannot ask for huge strings --------------------------------------------------


@pytest.mark.parametrize("template", ["{ports[0]:>200000000}", "{ports[0]:.99999}", "{home:x<5000}",
                                      "{ports[0]:{width}}"])
def test_huge_format_spec_is_refused_naming_the_field(template):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TemplateError) as info:
        expand(template, {"ports": [8080], "home": "/h", "width": 10**8}, "service 'x' (x.json): command[2]")
    assert "service 'x' (x.json): command[2]" in str(info.value) and "4096" in str(info.value)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024  # refused before the string was built (190 MiB otherwise)


def test_whole_expansion_is_capped():
    many = "{home:>4000}" * 20  # each field is allowed, the sum (80 000 chars) is not
    with pytest.raises(TemplateError, match=r"svc: .*65536"):
        expand(many, {"home": "/h"}, "svc")
    big_value = "x" * 70_000  # a ref result (a command's output) that is itself too big
    with pytest.raises(TemplateError, match=r"svc: .*65536"):
        expand("{out}", {"out": big_value}, "svc")
    assert expand("{home:>10}|{home:.1}", {"home": "/h"}, "svc") == "        /h|/"


async def test_huge_format_spec_fails_the_start_naming_the_field(manager, tmp_path):
    write_def(tmp_path / "defs", "wide", {"command": ["echo", "{ports[0]:>200000000}"], "readiness": "none"})
    result = await manager.start_service({"name": "wide"})
    assert result["status"] == "failed" and "command[1]" in result["error"] and "4096" in result["error"]


# -- 5. prestart writes do not follow symlinks ---------------------------------------------------


async def test_write_file_refuses_a_symlink_in_home(manager, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("original\n")
    outside.chmod(0o600)
    home = Path(manager.context.home)
    (home / "config.txt").symlink_to(outside)
    write_def(tmp_path / "defs", "writer", {
        "prestart": [{"action": "write_file", "args": {"filename": "{home}/config.txt", "body": ["pwned"],
                                                        "mode": "777"}}],
        "command": ["sleep", "30"], "readiness": "none",
    })
    result = await manager.start_service({"name": "writer"})
    assert result["status"] == "failed", result
    assert "symbolic link" in result["error"] and "config.txt" in result["error"] and "prestart[0]" in result["error"]
    assert outside.read_text() == "original\n" and stat.S_IMODE(outside.stat().st_mode) == 0o600
    append = [{"action": "write_file", "args": {"filename": "{home}/config.txt", "body": ["x"], "append": True}}]
    with pytest.raises(ServiceDefinitionError, match="symbolic link"):
        await run_prestart_actions(append, {"home": str(home)}, "unit")
    assert outside.read_text() == "original\n" and stat.S_IMODE(outside.stat().st_mode) == 0o600


async def test_write_file_sets_the_mode_asked_for(tmp_path):
    old = os.umask(0o077)  # the mode asked for is the mode given, whatever the umask
    try:
        actions = [
            {"action": "write_file", "args": {"filename": "{home}/a.txt", "body": ["a"], "mode": "644"}},
            {"action": "write_file", "args": {"filename": "{home}/a.txt", "body": ["b"], "append": True}},
            {"action": "write_file", "args": {"filename": "{home}/b.txt", "body": ["b"]}},
            {"action": "write_tempfile", "args": {"body": ["t"], "mode": "640"}, "ref": "tmp"},
        ]
        result = await run_prestart_actions(actions, {"home": str(tmp_path)}, "unit", tempdir=str(tmp_path))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "a\nb\n"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(os.stat(result["tmp"]).st_mode) == 0o640


# -- 6. bad definition files are listed with their error -----------------------------------------


async def test_list_services_shows_each_bad_definition_with_its_error(manager, tmp_path):
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(DEFS / "httpd.json", defs)
    shutil.copy(BAD / "unknown-field.json", defs)
    rows = {row["name"]: row for row in manager.list_services()}
    assert rows["httpd"]["status"] == "unknown" and not rows["httpd"]["error"]
    bad = rows["unknown-field"]
    assert bad["status"] == "invalid" and "unknown-field.json" in bad["error"] and "comand_typo" in bad["error"]
    assert manager.status("unknown-field")["status"] == "invalid"


# -- batch: file names found in the user's folder are single words -------------------------------


def test_c_build_with_a_source_named_like_an_option(tmp_path):
    require_programs("gcc")
    (tmp_path / "-helper.c").write_text("int helper(void) { return 41; }\n")
    (tmp_path / "$(touch PWNED).c").write_text("int other(void) { return 1; }\n")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\nint helper(void);\nint main(void) { printf("%d\\n", helper() + 1); return 0; }\n'
    )
    build = resolve("c", "build", "*", tmp_path)
    assert build.command is not None
    built = subprocess.run(build.command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    execute = resolve("c", "exec", "*", tmp_path)
    assert execute.command is not None
    assert subprocess.run(execute.command, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60).stdout == "42\n"
    assert not (tmp_path / "PWNED").exists()


# -- through real kernels -------------------------------------------------------------------------


@pytest.mark.kernel
async def test_magics_list_bad_definitions_and_refuse_unsafe_names(tmp_path):
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(DEFS / "httpd.json", defs)
    shutil.copy(BAD / "unknown-field.json", defs)
    home = tmp_path / "home"
    home.mkdir()
    async with running_kernel("backend-python", service_defs_dir=str(defs), cwd=str(home)) as (km, kc):
        work = Path(km.provisioner.services.work_dir)
        before = files_under(tmp_path) | files_under(work)
        listing = (await run_cell(kc, "%services"))["stdout"]
        line = next((ln for ln in listing.splitlines() if ln.startswith("unknown-field")), "")
        assert "invalid" in line and "comand_typo" in line, listing
        assert any(ln.startswith("httpd") for ln in listing.splitlines())
        for name in ("../../escaped-by-magic", f"{tmp_path}/abs/x", "a/b/c"):
            refused = await run_cell(kc, f"%service start {name}")
            assert refused["reply"]["status"] == "error", refused
            assert "is not allowed" in refused["reply"]["evalue"] and NAME_PATTERN in refused["reply"]["evalue"]
        stopped = await run_cell(kc, "%service stop ../x")
        assert stopped["reply"]["status"] == "error" and NAME_PATTERN in stopped["reply"]["evalue"]
        assert files_under(tmp_path) | files_under(work) == before
        assert not (work.parent / "escaped-by-magic.log").exists() and not (work.parent / "x.log").exists()


@pytest.mark.kernel
async def test_agent_start_service_with_unsafe_name_is_a_clear_failure(tmp_path):
    from backend_kernel_provisioner.agent import AgentKernel

    async with await AgentKernel.start("python", cwd=str(tmp_path), service_defs_dir=str(DEFS)) as kernel:
        work = Path(kernel.provisioner.services.work_dir)
        result = await kernel.start_service({"name": "../../agent-escape", "options": {}})
        assert result["status"] == "failed" and "is not allowed" in result["error"]
        assert NAME_PATTERN in result["error"]
        assert not (work.parent / "agent-escape.log").exists()
        stopped = await kernel.shutdown_service("../../agent-escape")
        assert stopped["status"] == "failed" and "is not allowed" in stopped["error"]
        unknown = await kernel.shutdown_service("never-started")
        assert unknown["status"] == "failed" and "never-started" in unknown["error"]


async def test_run_command_output_is_capped_not_read_whole(tmp_path):
    from backend_kernel_provisioner.sidecar.services.actions import MAX_COMMAND_OUTPUT

    flood = ["sh", "-c", f"head -c {MAX_COMMAND_OUTPUT * 64} /dev/zero; sleep 30"]
    with pytest.raises(ServiceDefinitionError, match=r"unit: prestart\[0\] \(run_command\).*more than 1024 KiB on stdout"):
        await run_prestart_actions([{"action": "run_command", "args": {"command": flood}}], {}, "unit",
                                   tempdir=str(tmp_path))
    fits = ["sh", "-c", f"head -c {MAX_COMMAND_OUTPUT} /dev/zero | tr '\\0' x"]
    result = await run_prestart_actions([{"action": "run_command", "args": {"command": fits}, "ref": "r"}], {},
                                        "unit", tempdir=str(tmp_path))
    assert len(result["r"]["out"]) == MAX_COMMAND_OUTPUT
