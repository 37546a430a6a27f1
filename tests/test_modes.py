"""What our files and sockets let other local users do: nothing.

The manager's private folder and the control folder are 0700, the control
socket 0600, service logs 0600 and never written through a planted symlink.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from backend_kernel_provisioner.sidecar.control import ControlServer
from backend_kernel_provisioner.sidecar.services import ManagerContext, ServiceManager
from backend_kernel_provisioner.sidecar.services.logs import RotatingLog

DEFS = Path(__file__).parent / "data" / "service-defs"


def mode(path: str | os.PathLike[str]) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():
    """A permissive umask, as an operator's shell may have: our modes must not depend on it."""
    old = os.umask(0)
    yield
    os.umask(old)


async def test_service_folder_and_logs_are_private(tmp_path, open_umask):
    home = tmp_path / "home"
    home.mkdir()
    manager = ServiceManager(ManagerContext(home=str(home), runtime_path=sys.executable, defs_dir=str(DEFS),
                                            kernel_id="k-modes", env=dict(os.environ)))
    try:
        result = await manager.start_service({"name": "httpd", "protocol": "http", "options": {}})
        assert result["status"] == "started", result
        log_file = Path(manager.log_dir) / "httpd.log"
        assert log_file.is_file()
        assert mode(manager.work_dir) == 0o700
        assert mode(log_file) == 0o600
        assert os.lstat(log_file).st_uid == os.getuid()
    finally:
        await manager.close()


def test_rotated_logs_stay_private(tmp_path, open_umask):
    log = RotatingLog(tmp_path / "svc.log", max_bytes=10, backups=2)
    for _ in range(5):
        log.write(b"0123456789\n")
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(mode(f) == 0o600 for f in files), {f.name: oct(mode(f)) for f in files}


def test_log_refuses_a_planted_symlink(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    target.chmod(0o644)
    (tmp_path / "svc.log").symlink_to(target)
    with pytest.raises(OSError):
        RotatingLog(tmp_path / "svc.log")
    assert target.read_text() == "precious\n" and mode(target) == 0o644


async def test_control_socket_is_private(open_umask):
    server = ControlServer()
    await server.start()
    try:
        assert server.folder and server.path
        assert mode(server.folder) == 0o700
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode) and mode(server.path) == 0o600
    finally:
        await server.close()
