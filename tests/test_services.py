"""The service manager on its own: definitions, prestart actions, real processes on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from backend_kernel_provisioner.sidecar.services import (
    ManagerContext,
    ServiceDefinitionError,
    ServiceManager,
    TemplateError,
    load_definition,
    load_definitions,
    run_prestart_actions,
)
from backend_kernel_provisioner.sidecar.services.definitions import expand

from .helpers import pid_alive, write_ttyd_standin

DATA = Path(__file__).parent / "data"
DEFS = DATA / "service-defs"
BAD = DATA / "bad-service-defs"


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.fixture
async def manager(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    m = ServiceManager(ManagerContext(home=str(home), runtime_path=sys.executable, defs_dir=str(DEFS),
                                      kernel_id="k-test", env={**os.environ, "KERNEL_SET": "1"}))
    yield m
    await m.close()


# -- definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, problem",
    [
        ("bad-action", "unknown action 'format_disk'"),
        ("malformed", "invalid JSON"),
        ("no-command", "'command' is required"),
        ("unknown-field", "'comand_typo'"),
        ("bad-url-template", "field 'url_template': unknown variable {ports[0]} (only {protocol}, {host}, {port})"),
    ],
)
def test_bad_definition_names_file_and_problem(name, problem):
    path = BAD / f"{name}.json"
    with pytest.raises(ServiceDefinitionError) as info:
        load_definition(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_folder_load_keeps_good_and_reports_bad():
    good, bad = load_definitions(DEFS)
    assert set(good) == {"httpd", "jupyter", "probe-version", "tensorboard", "vnc-preopen"} and not bad
    good, bad = load_definitions(BAD)
    assert not good and set(bad) == {"bad-action", "bad-url-template", "malformed", "no-command", "unknown-field"}


def test_alias_and_shell_string_command(tmp_path):
    path = tmp_path / "svc.json"
    path.write_text('{"prestart_actions": [{"action": "log", "args": {"body": "hi"}}], "command": "echo {ports[0]}"}')
    defn = load_definition(path)
    assert defn.prestart[0].action == "log" and defn.command == "echo {ports[0]}"


def test_template_indexing_allowed_attributes_refused():
    variables = {"ports": [8080], "pyver": {"out": "3.11"}}
    assert expand("{ports[0]}-{pyver[out]}", variables, "svc") == "8080-3.11"
    with pytest.raises(TemplateError, match="attribute access"):
        expand("{ports.__class__}", variables, "svc")
    with pytest.raises(TemplateError, match="svc.*unknown variable 'nope'"):
        expand("{nope}", variables, "svc")
    with pytest.raises(TemplateError, match="cannot index"):
        expand("{ports[3]}", variables, "svc")


async def test_prestart_actions_and_refs(tmp_path):
    actions = [
        {"action": "mkdir", "args": {"path": "{home}/a/b"}},
        {"action": "write_file", "args": {"filename": "{home}/a/b/f.txt", "body": ["x={x}", "y"], "mode": "600"}},
        {"action": "write_file", "args": {"filename": "{home}/a/b/f.txt", "body": ["z"], "append": True}},
        {"action": "run_command", "args": {"command": ["sh", "-c", "echo out; echo err >&2"]}, "ref": "r"},
        {"action": "write_tempfile", "args": {"body": ["{r[out]}/{r[err]}"]}, "ref": "tmp"},
    ]
    result = await run_prestart_actions(actions, {"home": str(tmp_path), "x": 1}, "unit", tempdir=str(tmp_path))
    target = tmp_path / "a" / "b" / "f.txt"
    assert target.read_text() == "x=1\ny\nz\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    assert result["r"]["out"] == "out\n" and result["r"]["err"] == "err\n", "run_command's output is verbatim"
    assert result["tmp"].endswith(".py") and Path(result["tmp"]).read_text() == "out\n/err\n"


async def test_run_command_time_limit(tmp_path):
    actions = [{"action": "run_command", "args": {"command": ["sleep", "30"]}}]
    with pytest.raises(ServiceDefinitionError, match=r"unit: prestart\[0\] \(run_command\).*did not finish"):
        await run_prestart_actions(actions, {}, "unit", command_timeout=0.3)


async def test_unknown_action_in_raw_actions():
    with pytest.raises(ServiceDefinitionError, match="model x.*unknown action 'format_disk'"):
        await run_prestart_actions([{"action": "format_disk", "args": {}}], {}, "model x")


# -- the manager ---------------------------------------------------------------------------------


async def test_httpd_serves_prestart_page_and_stops(manager):
    result = await manager.start_service({"name": "httpd", "protocol": "http", "options": {}})
    assert result["status"] == "started", result
    port = result["ports"][0]
    page = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/")
    assert page.strip() == f"<h1>served on {port}</h1>"
    pid = manager.status("httpd")["pid"]
    assert environ_of(pid)["HTTPD_PORT"] == str(port)
    assert (await manager.start_service({"name": "httpd"}))["status"] == "running"
    assert "httpd will serve" in manager.read_log("httpd")
    await manager.shutdown_service("httpd")
    assert manager.status("httpd")["status"] == "stopped"
    assert not pid_alive(pid) and not port_open(port)
    assert "GET / " in manager.read_log("httpd")


async def test_requested_port_used_and_busy_port_refused(manager):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = await manager.start_service({"name": "httpd", "port": taken})
        assert result["status"] == "failed" and f"port {taken} is in use" in result["error"]
    result = await manager.start_service({"name": "httpd", "ports": [taken]})
    assert result["status"] == "started" and result["ports"] == [taken]


async def test_probe_version_ref_chain(manager):
    result = await manager.start_service({"name": "probe-version"})
    assert result["status"] == "started", result
    env = environ_of(manager.status("probe-version")["pid"])
    path = Path(env["VERSION_FILE"])
    assert path.suffix == ".py" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text() == f"python {platform.python_version()}\n"


async def test_noop_and_preopen_start_without_a_process(manager):
    assert (await manager.start_service({"name": "vnc-preopen"}))["status"] == "started"
    assert manager.status("vnc-preopen")["pid"] is None
    assert (await manager.start_service({"name": "anything", "protocol": "preopen"}))["status"] == "started"
    pty = await manager.start_service({"name": "httpd", "protocol": "pty"})
    assert pty["status"] == "failed" and "pty" in pty["error"]


async def test_unknown_and_bad_definitions_fail_with_reason(manager, tmp_path):
    result = await manager.start_service({"name": "nope"})
    assert result["status"] == "failed" and "no service definition named 'nope'" in result["error"]
    manager.configure(defs_dir=str(BAD))
    result = await manager.start_service({"name": "unknown-field"})
    assert result["status"] == "failed" and "unknown-field.json" in result["error"] and "comand_typo" in result["error"]


async def test_disallowed_arguments_and_envs_are_refused(manager):
    bad_arg = await manager.start_service({"name": "tensorboard", "options": {"arguments": {"--evil": "1"}}})
    assert bad_arg["status"] == "failed" and "'--evil' is not allowed" in bad_arg["error"]
    bad_env = await manager.start_service({"name": "httpd", "options": {"envs": {"LD_PRELOAD": "x"}}})
    assert bad_env["status"] == "failed" and "'LD_PRELOAD' is not allowed" in bad_env["error"]
    ok = await manager.start_service({"name": "httpd", "options": {"envs": {"HTTPD_GREETING": "hello"}}})
    assert ok["status"] == "started", ok
    assert environ_of(manager.status("httpd")["pid"])["HTTPD_GREETING"] == "hello"


async def test_caller_env_cannot_override_kernel_variable(manager, tmp_path):
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "svc.json").write_text('{"command": ["true"], "allowed_envs": ["KERNEL_SET", "OTHER"]}')
    manager.configure(defs_dir=str(defs))
    result = await manager.start_service({"name": "svc", "options": {"envs": {"KERNEL_SET": "2"}}})
    assert result["status"] == "failed" and "already set by the kernel" in result["error"]


async def test_default_and_caller_arguments_appended(manager, tmp_path):
    defs = tmp_path / "defs"
    defs.mkdir()
    script = ("import sys, http.server; print(sys.argv[1:], flush=True); "
              "http.server.test(http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')")
    (defs / "args.json").write_text(json.dumps({
        "command": ["{runtime_path}", "-c", script, "{ports[0]}"],
        "allowed_arguments": ["--b", "--c"],
        "default_arguments": {"--a": None, "--b": "1"},
    }))
    manager.configure(defs_dir=str(defs))
    result = await manager.start_service({"name": "args", "options": {"arguments": {"--b": "2", "--c": ["x", "y"]}}})
    assert result["status"] == "started", result
    with open(f"/proc/{manager.status('args')['pid']}/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")[:-1]
    assert [a.decode() for a in argv[-6:]] == ["--a", "--b", "2", "--c", "x", "y"]


async def test_immediate_exit_is_failed_with_exit_code(manager):
    manager.configure(start_timeout=120)
    begin = time.monotonic()
    result = await manager.start_process("quick", [sys.executable, "-c", "raise SystemExit(3)"],
                                         ports=[free_port()], wait_for_port=True)
    elapsed = time.monotonic() - begin
    assert result["status"] == "failed" and result["exit_code"] == 3 and "exited with code 3" in result["error"]
    assert elapsed < 60  # decided by the exit, not by the 120 s port timeout
    assert manager.status("quick")["status"] == "failed"


async def test_missing_executable_reason(manager):
    result = await manager.start_process("ghost", ["/no/such/program"])
    assert result["status"] == "failed" and "executable not found: /no/such/program" in result["error"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def next_status(events, name: str, wanted: set[str], timeout: float = 30) -> dict:
    async def scan():
        async for event in events:
            if event["name"] == name and event["status"] in wanted:
                return event
    return await asyncio.wait_for(scan(), timeout)


async def test_killed_service_restarts_per_policy(manager):
    events = manager.subscribe()
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    result = await manager.start_process("web", argv, ports=[port], wait_for_port=True,
                                         restart={"policy": "on-failure", "backoff": 0.05})
    assert result["status"] == "started"
    first = manager.status("web")["pid"]
    os.kill(first, signal.SIGKILL)
    exited = await next_status(events, "web", {"backoff"})
    assert exited["exit_code"] == -signal.SIGKILL
    assert exited["delay"] == 0.05, "the first restart waits `backoff` (docs/services.md)"
    running = await next_status(events, "web", {"running"})
    assert running["restarts"] == 1
    second = manager.status("web")["pid"]
    assert second != first and pid_alive(second) and port_open(port)


async def test_no_policy_reports_exit_and_quick_failures_become_fatal(manager):
    events = manager.subscribe()
    await manager.start_process("sleeper", ["sleep", "30"])
    os.kill(manager.status("sleeper")["pid"], signal.SIGTERM)
    event = await next_status(events, "sleeper", {"exited"})
    assert event["exit_code"] == -signal.SIGTERM and manager.status("sleeper")["status"] == "exited"
    await manager.start_process("crasher", ["sh", "-c", "sleep 0.2; exit 4"],
                                restart={"policy": "always", "max_retries": 2, "backoff": 0.01, "min_uptime": 5})
    delays = []
    while (event := await next_status(events, "crasher", {"backoff", "fatal"}))["status"] == "backoff":
        delays.append(event["delay"])
    fatal = event
    assert fatal["exit_code"] == 4 and fatal["restarts"] == 2 and "gave up" in fatal["error"]
    assert delays == [0.01, 0.02], "backoff first, doubling with each quick failure"


async def test_late_subscriber_gets_current_state(manager):
    await manager.start_service({"name": "httpd"})
    await manager.start_service({"name": "vnc-preopen"})
    events = manager.subscribe()
    first = [await anext(events), await anext(events)]
    assert {(e["name"], e["status"]) for e in first} == {("httpd", "running"), ("vnc-preopen", "started")}


async def test_stop_kills_the_whole_process_group(manager):
    await manager.start_process("family", ["sh", "-c", "sleep 300 & sleep 300 & wait"])
    leader = manager.status("family")["pid"]
    await asyncio.sleep(0.3)
    group = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _pgid(p) == leader]
    assert len(group) >= 3
    await manager.shutdown_service("family")
    assert not any(pid_alive(p) for p in group)


async def test_term_ignoring_service_is_killed_after_grace(manager, tmp_path):
    manager.configure(stop_grace=0.5)
    armed = tmp_path / "trap-armed"
    await manager.start_process("stubborn", ["sh", "-c", f"trap '' TERM; touch {armed}; while :; do sleep 0.1; done"])
    pid = manager.status("stubborn")["pid"]
    while not armed.exists():  # SIGTERM before the trap is set would end it the ordinary way
        await asyncio.sleep(0.01)
    result = await manager.shutdown_service("stubborn")
    assert result["exit_code"] == -signal.SIGKILL and not pid_alive(pid)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


async def test_intrinsic_ttyd_serves_with_ttyd_or_the_terminado_fallback(manager):
    """Which program serves depends on the machine (the manager's PATH is this process's); the page does not."""
    port = free_port()
    program = shutil.which("ttyd")
    result = await manager.start_service({"name": "ttyd", "port": port})
    status = manager.status("ttyd")
    assert (result["status"], result["ports"]) == ("started", [port]), (result, manager.read_log("ttyd"))
    assert status["status"] == "running" and pid_alive(status["pid"])
    if program is None:  # Debian 12 has no ttyd package: our terminado web terminal takes its place
        assert "backend_kernel_provisioner.sidecar.services.webterm" in " ".join(status["command"])
    else:
        assert program in status["command"] and "--writable" in status["command"]
    credential = result["credential"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/")
    token = base64.b64encode(f"{credential['username']}:{credential['password']}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    page = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read().decode())
    assert "<html" in page.lower()


async def test_intrinsic_ttyd_runs_the_program_found_on_path(manager, tmp_path):
    """The running branch on any machine: a stand-in ``ttyd`` on PATH that answers with its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_ttyd_standin(bin_dir)
    manager.configure(env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    port = free_port()
    result = await manager.start_service({"name": "ttyd", "port": port})
    assert (result["status"], result["ports"]) == ("started", [port]), (result, manager.read_log("ttyd"))
    pid = manager.status("ttyd")["pid"]
    argv = json.loads(await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/"))
    assert argv[:3] == ["--port", str(port), "--writable"]
    assert os.path.basename(argv[-1]) in ("zsh", "bash", "ash", "sh"), argv  # the best shell, maybe inside tmux
    await manager.shutdown_service("ttyd")
    assert manager.status("ttyd")["status"] == "stopped"
    assert not pid_alive(pid) and not port_open(port)


async def test_intrinsic_sshd_answers_with_ssh_banner(manager, tmp_path):
    home = tmp_path / "userhome"
    home.mkdir()
    manager.configure(env={**os.environ, "HOME": str(home)})
    result = await manager.start_service({"name": "sshd", "port": free_port()})
    if result.get("not_available"):
        pytest.skip(result["error"])
    assert result["status"] == "started", (result, manager.read_log("sshd"))
    reader, writer = await asyncio.open_connection("127.0.0.1", result["ports"][0])
    banner = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert banner.startswith(b"SSH-2.0-")
    assert (home / ".ssh" / "authorized_keys").read_text() == (home / "id_container.pub").read_text()
    assert oct((home / ".ssh" / "authorized_keys").stat().st_mode & 0o777) == "0o600"


def test_nothing_left_when_owner_process_is_killed(tmp_path):
    """Even SIGKILL of the process that owns the manager leaves no service behind (the reaper)."""
    code = textwrap.dedent(f"""
        import asyncio, sys
        from backend_kernel_provisioner.sidecar.services import ServiceManager, ManagerContext
        async def main():
            m = ServiceManager(ManagerContext(home={str(tmp_path)!r}))
            r = await m.start_process("s", ["sh", "-c", "sleep 300 & wait"])
            print(r["pid"], flush=True)
            await asyncio.sleep(300)
        asyncio.run(main())
    """)
    temp = tmp_path / "tmp"  # the owner's temp folder: the manager's private folder is made there
    temp.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(temp)})
    pid = int(owner.stdout.readline())
    time.sleep(0.2)
    group = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _pgid(p) == pid]
    assert pid_alive(pid) and len(group) >= 2
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 15
    while (any(pid_alive(p) for p in group) or list(temp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in group)
    assert list(temp.iterdir()) == [], "the dead owner's service folder was left"


async def test_http_readiness_waits_for_an_accepted_status(manager, tmp_path):
    port = free_port()
    script = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(204 if self.path == '/ready' else 404); self.end_headers()\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    ok = await manager.start_process("h", [sys.executable, "-c", script], ports=[port], wait_for_port=True,
                                     readiness={"type": "http", "path": "/ready", "status": [204]})
    assert ok["status"] == "started"
    manager.configure(start_timeout=1.0)
    other = free_port()  # not port + 1: that one may be taken (the server then exits: failed once in CI)
    bad = await manager.start_process("h2", [sys.executable, "-c", script.replace(str(port), str(other))],
                                      ports=[other], wait_for_port=True,
                                      readiness={"type": "http", "path": "/missing", "status": [200]})
    assert bad["status"] == "failed" and "did not accept connections within 1 s" in bad["error"]


def test_log_rotation_keeps_backups(tmp_path):
    from backend_kernel_provisioner.sidecar.services.logs import RotatingLog

    log = RotatingLog(tmp_path / "s.log", max_bytes=100, backups=2)
    for i in range(30):
        log.write(f"line {i:02d}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["s.log", "s.log.1", "s.log.2"]
    assert log.read(tail=1) == "line 29\n" and (tmp_path / "s.log.1").read_text().endswith("\n")
    assert all((tmp_path / f).stat().st_size <= 100 for f in files)
