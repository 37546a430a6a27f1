"""Installing the peers, each from its own registry, and their kernelspecs into the benchmark's private prefix.

Python peers go into a virtualenv of their own (``benchmarks/.peers-venv``), so
that nothing they pull in changes the environment our kernels run in; tslab goes
into ``benchmarks/.peers-node`` from npm; IRkernel comes from Debian
(``r-cran-irkernel``, installed by scripts/install-toolchains.sh: a benchmark
does not change the system). Every step is idempotent and quick when done
already. A peer that cannot be installed gets the reason, which the table shows
in its row; it never stops the run.

Each kernelspec is installed by the peer's own installer where it has one (into
a staging prefix), then copied under a distinct ``peer-*`` name, with ``python``
in its argv pinned to the peers' virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Where the peers live; an operator may point it elsewhere (for example a cache kept between CI clones).
PEERS_HOME = Path(os.environ.get("BKP_BENCH_PEERS_HOME", str(HERE)))
VENV = PEERS_HOME / ".peers-venv"
NODE_DIR = PEERS_HOME / ".peers-node"

#: PyPI distribution → (kernelspec name in our prefix, its folder under the virtualenv's share/jupyter/kernels,
#: the peer's own installer that puts it there when the wheel does not). jupyter-c-kernel's installer ignores
#: --prefix when run as root (it installs for the user), hence --sys-prefix for both installers.
PYTHON_PEERS: dict[str, tuple[str, str, str] | None] = {
    "ipykernel": None,  # needed by the others; the ipykernel pair uses the server's own (python3)
    "octave_kernel": ("peer-octave", "octave", ""),
    "bash_kernel": ("peer-bash", "bash", "-m bash_kernel.install --sys-prefix"),
    "calysto_scheme": ("peer-calysto-scheme", "calysto_scheme", ""),
    "ilua": ("peer-ilua", "lua", ""),
    "jupyter-c-kernel": ("peer-c", "c", "{bin}/install_c_kernel --sys-prefix"),
    "xeus-python": ("peer-xpython", "xpython", ""),
}
#: Extra settings so that a peer runs the same interpreter as ours.
SPEC_ENV = {"peer-octave": {"OCTAVE_EXECUTABLE": "octave-cli"}, "peer-ilua": {"LUA_INTERPRETER": "lua5.4"}}
NPM_PEERS = ("tslab", "ijavascript")  # the first that installs from the npm registry alone
PIP_TIMEOUT, NPM_TIMEOUT = 600, 600


@dataclass
class Peer:
    """A peer's kernelspec name and, when it could not be installed, why."""

    name: str
    package: str
    source: str = ""  # where it comes from
    version: str = ""
    reason: str = ""

    @property
    def installed(self) -> bool:
        return not self.reason


def _last_words(output: str) -> str:
    """The line of an installer's output that says what went wrong (pip's and npm's warnings skipped)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() and "WARNING" not in line]
    picked = (errors or lines or ["no output"])[-1]
    return picked[:300]


def _run(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run an installer; one that hangs or cannot start is a failure with its reason, never an exception."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, -1, "", f"error: {argv[0]} took over {timeout:g} s")
    except OSError as exc:
        return subprocess.CompletedProcess(argv, -1, "", f"error: {exc}")


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _installed_versions() -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\nout = {}\nfor name in sys.argv[1:]:\n"
            "    try: out[name] = m.version(name)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
    done = _run([str(_venv_python()), "-c", code, *PYTHON_PEERS], 60)
    try:
        return json.loads(done.stdout) if done.returncode == 0 else {}
    except ValueError:  # something printed beside the answer: count nothing as installed, pip will say
        return {}


def ensure_python_peers() -> dict[str, str]:
    """Each Python peer's version, or "!<reason>" when pip could not install it."""
    if not _venv_python().exists():
        made = _run([sys.executable, "-m", "venv", str(VENV)], 300)
        if made.returncode != 0:
            return {name: "!" + f"no virtualenv: {_last_words(made.stderr)}" for name in PYTHON_PEERS}
    versions = _installed_versions()
    missing = [name for name in PYTHON_PEERS if name not in versions]
    if missing:
        print(f"  installing from PyPI into {VENV}: {' '.join(missing)}", flush=True)
        pip = [str(_venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--retries", "2"]
        if _run([*pip, *missing], PIP_TIMEOUT).returncode != 0:
            for name in missing:  # one at a time, to learn which one cannot be installed and why
                done = _run([*pip, name], PIP_TIMEOUT)
                if done.returncode != 0:
                    versions[name] = "!" + _last_words(done.stderr + done.stdout)
        versions.update(_installed_versions())
    return {name: versions.get(name, "!not installed by pip") for name in PYTHON_PEERS}


def _pin_python(spec: dict) -> dict:
    argv = list(spec["argv"])
    if os.path.basename(argv[0]).startswith("python"):
        argv[0] = str(_venv_python())
    return {**spec, "argv": argv}


def _copy_spec(source: Path, prefix: str, name: str, env: dict | None = None) -> None:
    """Copy a kernelspec folder under ``name``, its python pinned to the peers' virtualenv."""
    target = Path(prefix, "share", "jupyter", "kernels", name)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    spec = _pin_python(json.loads((source / "kernel.json").read_text()))
    spec["display_name"] = f"{spec.get('display_name', name)} (peer)"
    if env:
        spec["env"] = {**spec.get("env", {}), **env}
    (target / "kernel.json").write_text(json.dumps(spec, indent=1))


def _install_python_spec(name: str, folder: str, installer: str, prefix: str) -> str:
    """'' when the spec of ``name`` is in ``prefix``, else why not."""
    source = VENV / "share" / "jupyter" / "kernels" / folder
    if installer and not (source / "kernel.json").exists():
        argv = installer.format(bin=VENV / "bin").split()
        done = _run([str(_venv_python()), *argv] if argv[0] == "-m" else argv, 120)
        if done.returncode != 0:
            return f"its kernelspec installer failed: {_last_words(done.stderr + done.stdout)}"
    if not (source / "kernel.json").exists():
        return f"no kernelspec at {source}"
    _copy_spec(source, prefix, name, SPEC_ENV.get(name))
    return ""


def ensure_irkernel(prefix: str) -> Peer:
    peer = Peer("peer-ir", "IRkernel", "Debian: r-cran-irkernel")
    if shutil.which("R") is None:
        peer.reason = "R is not installed"
        return peer
    probe = _run(["R", "-q", "--slave", "-e", "cat(as.character(packageVersion('IRkernel')))"], 120)
    if probe.returncode != 0:
        peer.reason = "r-cran-irkernel is not installed (scripts/install-toolchains.sh installs it)"
        return peer
    peer.version = probe.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bkp-peer-stage-") as stage:
        env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = _run(["R", "-q", "--slave", "-e",
                     f"IRkernel::installspec(name = 'peer-ir', displayname = 'R (IRkernel)', prefix = '{stage}')"],
                    120, env=env)
        source = Path(stage, "share", "jupyter", "kernels", "peer-ir")
        if done.returncode != 0 or not (source / "kernel.json").exists():
            peer.reason = f"IRkernel::installspec failed: {_last_words(done.stderr + done.stdout)}"
            return peer
        _copy_spec(source, prefix, "peer-ir")
    return peer


def _zeromq_loads(folder: Path) -> str:
    done = _run(["node", "-e", "require('zeromq')"], 60, cwd=folder)
    return "" if done.returncode == 0 else f"its zeromq addon does not load: {_last_words(done.stderr)}"


def ensure_node_peer(prefix: str) -> Peer:
    """tslab (its JavaScript kernel, jslab) or else ijavascript, from the npm registry only."""
    peer = Peer("peer-jslab", "tslab", f"npm, {NODE_DIR}")
    if shutil.which("node") is None or shutil.which("npm") is None:
        peer.reason = "node or npm is not installed"
        return peer
    reasons = []
    for package in NPM_PEERS:
        folder = NODE_DIR / package
        binary = folder / "node_modules" / ".bin" / ("tslab" if package == "tslab" else "ijskernel")
        if not binary.exists():
            print(f"  installing from npm into {folder}: {package}", flush=True)
            folder.mkdir(parents=True, exist_ok=True)
            done = _run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), package], NPM_TIMEOUT)
            if done.returncode != 0 or not binary.exists():
                reasons.append(f"{package}: npm install failed: {_last_words(done.stderr + done.stdout)}")
                continue
        broken = _zeromq_loads(folder)
        if broken:
            reasons.append(f"{package}: {broken}")
            continue
        # tslab type-checks even JavaScript and finds @types/node from its working folder: run it in its own
        argv = (["/bin/sh", "-c", 'cd "$1" && exec "$2" kernel --config-path "$0" --js', "{connection_file}",
                 str(folder), str(binary)] if package == "tslab"
                else [str(binary), "--hide-undefined", "{connection_file}", "--protocol=5.0"])
        target = Path(prefix, "share", "jupyter", "kernels", peer.name)
        target.mkdir(parents=True, exist_ok=True)
        (target / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": f"JavaScript ({package}, peer)", "language": "javascript"}))
        version = json.loads((folder / "node_modules" / package / "package.json").read_text())["version"]
        peer.package, peer.version, peer.reason = package, version, ""
        return peer
    peer.reason = "; ".join(reasons)
    return peer


def ensure_peers(prefix: str) -> dict[str, Peer]:
    """Every peer by kernelspec name (``python3`` is the server's ipykernel, always there)."""
    peers: dict[str, Peer] = {}
    versions = ensure_python_peers()
    for package, entry in PYTHON_PEERS.items():
        if entry is None:
            continue
        name, folder, installer = entry
        peer = Peer(name, package, f"PyPI, {VENV}")
        found = versions[package]
        if found.startswith("!"):
            peer.reason = f"pip install {package} failed: {found[1:]}"
        else:
            peer.version = found
            peer.reason = _install_python_spec(name, folder, installer, prefix)
        peers[name] = peer
    peers["peer-ir"] = ensure_irkernel(prefix)
    peers["peer-jslab"] = ensure_node_peer(prefix)
    import ipykernel

    peers["python3"] = Peer("python3", "ipykernel", "the server's own, stock LocalProvisioner", ipykernel.__version__)
    for peer in peers.values():
        state = f"{peer.version} ({peer.source})" if peer.installed else f"not installed: {peer.reason}"
        print(f"  peer {peer.name}: {peer.package} {state}", flush=True)
    return peers
