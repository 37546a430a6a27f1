"""The intrinsic web terminal and SSH server as the runner had them (issue 18).

* ``ttyd`` without the ttyd program (Debian 12 has no package): our terminado
  web terminal on the same port and URL shape, behind the kernel's basic-auth
  credential, a shell in a shared tmux session, nothing left after its stop;
  with a ttyd program, its tmux server is the service's own.
* ``sshd`` with dropbear (Debian's ``dropbear-bin``) or OpenSSH, keys only, and
  the SSH client config for the session's cluster peers (``BACKEND_CLUSTER_HOSTS``).

Everything runs through the real :class:`ServiceManager`, real programs and real
sockets; the WebSocket client is tornado's, speaking terminado's protocol.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager
from backend_kernel_provisioner.sidecar.services.intrinsic import SSHD_SERVER_ENV, NotAvailable, find_ssh_server
from backend_kernel_provisioner.sidecar.services.ssh_peers import BEGIN, END

from .browser_lab import CHROMIUM_ARGS, chromium_path
from .helpers import kernel_process_tree, pid_alive, require_programs, write_ttyd_standin
from .test_services_neighbours import free_port, listening_addresses

WEBTERM = "backend_kernel_provisioner.sidecar.services.webterm"


@pytest.fixture
async def manager(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    m = ServiceManager(ManagerContext(home=str(home), env={**os.environ, "HOME": str(home)}))
    yield m
    await m.close()


def only_programs(tmp_path: Path, *programs: str) -> str:
    """A PATH holding just ``programs`` (skipped when one is missing): no ttyd, so the recipe uses terminado."""
    require_programs(*programs)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in programs:
        (bin_dir / program).symlink_to(shutil.which(program))
    return str(bin_dir)


def basic(credential: dict | tuple) -> str:
    user, password = (credential["username"], credential["password"]) if isinstance(credential, dict) else credential
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def http_status(url: str, authorization: str | None = None) -> int:
    request = urllib.request.Request(url)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def terminal(port: int, authorization: str | None) -> WebSocketClientConnection:
    headers = {"Authorization": authorization} if authorization else {}
    ws = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/ws", headers=headers))
    assert json.loads(await ws.read_message()) == ["setup", {}]
    return ws


async def type_and_read(ws: WebSocketClientConnection, line: str, pattern: str) -> re.Match:
    """Type ``line`` (Enter included), then read ``stdout`` messages until ``pattern`` shows (30 s at most)."""
    if line:
        await ws.write_message(json.dumps(["stdin", line + "\r"]))
    output = ""
    while True:
        message = await asyncio.wait_for(ws.read_message(), 30)
        assert message is not None, f"the terminal closed; output so far: {output!r}"
        kind, data = json.loads(message)[:2]
        if kind == "stdout":
            output += data
            if found := re.search(pattern, output):
                return found


async def start_terminal(manager: ServiceManager, path: str) -> tuple[dict, dict]:
    manager.configure(env={**manager.context.env, "PATH": path})
    result = await manager.start_service({"name": "ttyd", "port": free_port()})
    assert result["status"] == "started", (result, manager.read_log("ttyd"))
    return result, manager.status("ttyd")


# -- the web terminal (terminado) ------------------------------------------------------------------


async def test_web_terminal_answers_a_websocket_session_with_the_credential(manager, tmp_path):
    result, status = await start_terminal(manager, only_programs(tmp_path, "bash", "tmux"))
    port = result["ports"][0]
    assert WEBTERM in " ".join(status["command"])
    assert result["credential"]["password"] not in " ".join(status["command"])  # not in /proc/PID/cmdline
    assert listening_addresses(status["pid"]) == {("127.0.0.1", port)}

    ws = await terminal(port, basic(result["credential"]))
    await type_and_read(ws, "echo hello-$((6 * 7))", r"hello-42")
    # The shell runs in tmux, and did not inherit the credential.
    found = await type_and_read(ws, "echo tmux-[${TMUX:+yes}] cred-[$BACKEND_WEBTERM_CREDENTIAL]",
                                r"tmux-\[(\w*)\] cred-\[([^\]]*)\]")
    assert found.groups() == ("yes", "")
    ws.close()


async def test_web_terminal_refuses_requests_without_the_credential(manager, tmp_path):
    result, _ = await start_terminal(manager, only_programs(tmp_path, "bash"))
    port = result["ports"][0]
    right, wrong = basic(result["credential"]), basic((result["credential"]["username"], "wrong"))
    page, script = f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/static/xterm.js"
    assert [await asyncio.to_thread(http_status, url, auth) for url in (page, script) for auth in (None, wrong)] \
        == [401] * 4
    assert await asyncio.to_thread(http_status, page, right) == 200
    assert await asyncio.to_thread(http_status, script, right) == 200
    for authorization in (None, wrong, "Basic !!notbase64"):
        with pytest.raises(HTTPClientError) as refused:
            await terminal(port, authorization)
        assert refused.value.code == 401


async def test_web_terminal_tabs_share_one_private_tmux_session(manager, tmp_path):
    result, status = await start_terminal(manager, only_programs(tmp_path, "bash", "tmux"))
    port, authorization = result["ports"][0], basic(result["credential"])
    first = await terminal(port, authorization)
    await type_and_read(first, "echo first-$((1 + 1))", r"first-2")  # the session exists before the second tab
    second = await terminal(port, authorization)
    await first.write_message(json.dumps(["stdin", "echo shared-$((40 + 2))\r"]))
    await type_and_read(second, "", r"shared-42")  # typed in one tab, seen in the other
    # The tmux server is the kernel's own, on a socket in the service's private folder.
    sockets = [a for a in status["command"] if a.endswith("tmux.sock")]
    assert sockets and sockets[0].startswith(manager.work_dir)
    listing = await asyncio.to_thread(subprocess.run, ["tmux", "-S", sockets[0], "list-sessions", "-F",
                                                       "#{session_name}"], capture_output=True, text=True, timeout=30)
    assert listing.stdout.split() == ["main"]
    first.close()
    second.close()


async def test_web_terminal_leaves_nothing_running_after_stop(manager, tmp_path):
    result, status = await start_terminal(manager, only_programs(tmp_path, "bash", "tmux", "nohup", "sleep"))
    port = result["ports"][0]
    ws = await terminal(port, basic(result["credential"]))
    found = await type_and_read(ws, "nohup sleep 300 >/dev/null 2>&1 & echo pids-$$-$!", r"pids-(\d+)-(\d+)")
    shell, sleeper = map(int, found.groups())
    processes = kernel_process_tree(status["pid"]) | {shell, sleeper}
    assert len(processes) >= 5  # webterm, tmux server, tmux client, shell, sleep
    assert all(pid_alive(p) for p in processes)
    await manager.shutdown_service("ttyd")
    assert [p for p in processes if pid_alive(p)] == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_web_terminal_without_tmux_runs_the_shell_itself(manager, tmp_path):
    # A Jupyter server started inside someone's tmux passes TMUX on; the terminal's shell is not in that tmux.
    manager.configure(env={**manager.context.env, "TMUX": "/tmp/tmux-0/default,1,0", "TMUX_PANE": "%0"})
    result, status = await start_terminal(manager, only_programs(tmp_path, "bash"))
    assert "--tmux" not in status["command"] and status["command"][-1].endswith("bash")
    ws = await terminal(result["ports"][0], basic(result["credential"]))
    found = await type_and_read(ws, "echo shell-$((1 + 1))-[${TMUX:-none}]-$$", r"shell-2-\[(\w+)\]-(\d+)")
    assert found.group(1) == "none"
    await manager.shutdown_service("ttyd")
    assert not pid_alive(int(found.group(2)))


async def test_killed_web_terminal_takes_its_terminals_along(tmp_path):
    """Even SIGKILL (no clean-up code runs): the tmux server has a parent-death signal, the shells lose their pty."""
    require_programs("bash", "tmux")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", WEBTERM, "--port", str(port), "--shell", shutil.which("bash"),
        "--tmux", shutil.which("tmux"), "--tmux-socket", str(private / "tmux.sock"),
        env={**os.environ, "BACKEND_WEBTERM_CREDENTIAL": "u:p"}, cwd=tmp_path, start_new_session=True,
    )
    try:
        for _ in range(600):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        ws = await terminal(port, basic(("u", "p")))
        shell = int((await type_and_read(ws, "echo pid-$$", r"pid-(\d+)")).group(1))
        processes = kernel_process_tree(proc.pid) | {shell}
        assert len(processes) >= 4
        proc.kill()
        await proc.wait()
        for _ in range(200):
            if not any(pid_alive(p) for p in processes):
                break
            await asyncio.sleep(0.05)
        assert [p for p in processes if pid_alive(p)] == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_web_terminal_page_works_in_a_browser(tmp_path):
    """What a user does: open the page in Chromium with the login, type a command, read its answer."""
    require_programs("bash", "tmux")
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("browser not installed: missing chromium (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", WEBTERM, "--port", str(port), "--shell", shutil.which("bash"),
         "--tmux", shutil.which("tmux"), "--tmux-socket", str(tmp_path / "tmux.sock")],
        env={**os.environ, "BACKEND_WEBTERM_CREDENTIAL": "kernel:s3cret"}, cwd=tmp_path, start_new_session=True,
    )
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(http_credentials={"username": "kernel", "password": "s3cret"},
                                              viewport={"width": 1000, "height": 600})
                page = context.new_page()
                page.set_default_timeout(60_000)
                for _ in range(600):
                    with socket.socket() as sock:
                        if sock.connect_ex(("127.0.0.1", port)) == 0:
                            break
                    time.sleep(0.05)
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator(".xterm-rows").wait_for()
                page.locator(".xterm").click()
                page.keyboard.type("echo browser-$((3 * 4)) cols-$COLUMNS\n")
                page.get_by_text("browser-12").wait_for()
                columns = int(re.search(r"cols-(\d+)", page.locator(".xterm-rows").inner_text()).group(1))
                assert columns > 80  # the page fitted the terminal to the window and told the server
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# -- the ttyd program -----------------------------------------------------------------------------



async def test_ttyd_program_gets_a_private_tmux_server_that_stops_with_it(manager, tmp_path):
    path = only_programs(tmp_path, "bash", "tmux")
    write_ttyd_standin(path)
    result, status = await start_terminal(manager, path)
    port, pid = result["ports"][0], status["pid"]
    argv = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()))
    sock = argv[argv.index("-S") + 1]
    assert argv[-8:] == ["-N", "-S", sock, "new-session", "-A", "-s", "main", str(Path(path) / "bash")]
    assert sock.startswith(manager.work_dir)
    assert listening_addresses(pid) == {("127.0.0.1", port)}  # the leader is ttyd itself
    group = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _pgid(p) == pid]
    servers = [p for p in group if b"-D\0-S\0" + sock.encode() in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(servers) == 1, group
    await manager.shutdown_service("ttyd")
    assert not pid_alive(pid) and not pid_alive(servers[0])


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# -- sshd -----------------------------------------------------------------------------------------


async def start_sshd(manager: ServiceManager, server: str, **env: str) -> dict:
    manager.configure(env={**manager.context.env, SSHD_SERVER_ENV: server, **env})
    result = await manager.start_service({"name": "sshd", "port": free_port()})
    if result.get("not_available"):
        pytest.skip(result["error"])
    assert result["status"] == "started", (result, manager.read_log("sshd"))
    return result


async def banner(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()


def ssh(port: int, *options: str, command: str = "true") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-p", str(port), *options,
         "127.0.0.1", command],
        capture_output=True, text=True, timeout=60,
    )


async def test_dropbear_answers_with_its_banner_and_takes_keys_only(manager):
    require_programs("dropbear", "dropbearkey")
    result = await start_sshd(manager, "dropbear")
    port, status = result["ports"][0], manager.status("sshd")
    assert os.path.basename(status["command"][0]) == "dropbear"
    assert (await banner(port)).startswith(b"SSH-2.0-dropbear")
    assert listening_addresses(status["pid"]) == {("127.0.0.1", port)}
    host_key = Path(manager.work_dir) / "sshd" / "dropbear_ed25519_host_key"
    assert host_key.exists() and host_key.stat().st_size > 0
    if shutil.which("ssh"):  # the server offers public keys only: a password login is not even asked for
        refused = await asyncio.to_thread(ssh, port, "-o", "PubkeyAuthentication=no")
        assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr, refused.stderr
    await manager.shutdown_service("sshd")
    assert not pid_alive(status["pid"])
    assert not [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _pgid(p) == status["pid"]]


async def test_openssh_logs_in_with_the_generated_key_only(manager):
    require_programs("ssh")
    result = await start_sshd(manager, "openssh")
    port, home = result["ports"][0], Path(manager.context.env["HOME"])
    assert (await banner(port)).startswith(b"SSH-2.0-OpenSSH")
    done = await asyncio.to_thread(ssh, port, "-i", str(home / "id_container"), command="echo logged-in-$((2 * 3))")
    assert (done.returncode, done.stdout) == (0, "logged-in-6\n"), done.stderr
    refused = await asyncio.to_thread(ssh, port, "-o", "PubkeyAuthentication=no")
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr, refused.stderr


async def test_dropbear_only_machine_makes_the_user_key_with_dropbear_tools(manager, tmp_path):
    """No ssh-keygen on PATH: the pair comes from dropbearkey, converted to the OpenSSH format clients read."""
    require_programs("dropbear", "ssh-keygen")
    path = only_programs(tmp_path, "dropbearkey", "dropbearconvert")
    await start_sshd(manager, "dropbear", PATH=path)
    home = Path(manager.context.env["HOME"])
    keygen = await asyncio.to_thread(subprocess.run, ["ssh-keygen", "-y", "-f", str(home / "id_container")],
                                     capture_output=True, text=True, timeout=30, check=True)
    derived = keygen.stdout.split()[:2]
    assert derived[0] == "ssh-ed25519"
    assert (home / "id_container.pub").read_text().split()[:2] == derived
    assert (home / ".ssh" / "authorized_keys").read_text().split()[:2] == derived


def test_openssh_is_preferred_and_the_setting_picks_either():
    try:
        find_ssh_server(os.environ["PATH"], "openssh")
        find_ssh_server(os.environ["PATH"], "dropbear")
    except NotAvailable as exc:
        pytest.skip(f"needs both OpenSSH's sshd and dropbear installed: {exc}")
    assert find_ssh_server(os.environ["PATH"]).kind == "openssh"
    assert find_ssh_server(os.environ["PATH"], "Dropbear").kind == "dropbear"
    with pytest.raises(RuntimeError, match="BACKEND_SSHD_SERVER='putty': use one of openssh, dropbear"):
        find_ssh_server(os.environ["PATH"], "putty")


async def test_sshd_writes_the_client_config_for_cluster_peers(manager):
    require_programs("ssh")
    home = Path(manager.context.env["HOME"])
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "config").write_text("Host mine\n    HostName example.org\n")
    port = free_port()
    peers = f"self=127.0.0.1:{port},worker1=10.0.0.2:2201, w6=[fd00::2],main1"
    manager.configure(env={**manager.context.env, SSHD_SERVER_ENV: "openssh", "BACKEND_CLUSTER_HOSTS": peers})
    result = await manager.start_service({"name": "sshd", "port": port})
    if result.get("not_available"):
        pytest.skip(result["error"])
    assert result["status"] == "started", (result, manager.read_log("sshd"))
    config = home / ".ssh" / "config"
    text = config.read_text()
    assert text.startswith("Host mine\n    HostName example.org\n") and BEGIN in text and END in text
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    def resolved(name: str) -> dict[str, str]:  # what the ssh client makes of the config
        out = subprocess.run(["ssh", "-F", str(config), "-G", name], capture_output=True, text=True, timeout=30,
                             check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    user = pwd.getpwuid(os.geteuid()).pw_name
    worker = await asyncio.to_thread(resolved, "worker1")
    assert (worker["hostname"], worker["port"], worker["user"]) == ("10.0.0.2", "2201", user)
    assert worker["identityfile"] == str(home / "id_container")
    assert worker["stricthostkeychecking"] == "false"
    assert [(await asyncio.to_thread(resolved, n))[k] for n, k in (("w6", "hostname"), ("w6", "port"),
            ("main1", "hostname"), ("main1", "port"))] == ["fd00::2", "2200", "main1", "2200"]
    # A peer entry takes the user to a peer's sshd: here the kernel's own, through the generated key.
    done = await asyncio.to_thread(subprocess.run, ["ssh", "-F", str(config), "-o", "BatchMode=yes", "self",
                                                    "echo peer-$((5 * 5))"], capture_output=True, text=True,
                                   timeout=60)
    assert (done.returncode, done.stdout) == (0, "peer-25\n"), done.stderr

    # The next start rewrites the block: without peers it goes, the user's own entries stay.
    await manager.shutdown_service("sshd")
    manager.configure(env={**manager.context.env, "BACKEND_CLUSTER_HOSTS": ""})
    assert (await manager.start_service({"name": "sshd", "port": free_port()}))["status"] == "started"
    assert config.read_text() == "Host mine\n    HostName example.org\n"


async def test_bad_cluster_hosts_fail_the_start_naming_the_variable(manager):
    require_programs("dropbear", "dropbearkey")
    manager.configure(env={**manager.context.env, SSHD_SERVER_ENV: "dropbear",
                           "BACKEND_CLUSTER_HOSTS": "ok,bad name=host"})
    result = await manager.start_service({"name": "sshd", "port": free_port()})
    assert result["status"] == "failed"
    assert "BACKEND_CLUSTER_HOSTS: bad peer name in 'bad name=host'" in result["error"]
