"""The kernel container image, built on this machine without any image registry (issue 17).

Two layers, each named by a hash of what went into it, so that an unchanged input is never built twice:

* ``localhost/backend-kernel-base:<hash12>``: a Debian rootfs made by ``mmdebstrap`` (Python, gcc, make,
  tini, ...) with a venv ``/opt/backend`` holding our runtime dependencies from PyPI, gateway_provisioners'
  stock ``bootstrap-kernel.sh`` as the default command (so the stock ``DockerProvisioner`` can run the same
  image for the benchmarks) and a user ``kernel`` (1000:100); ``podman import``-ed. About 45 s here.
* ``localhost/backend-kernel:<hash12>`` (and ``:latest``): the base plus our wheel built from the working
  tree, installed ``--no-deps``, and our kernelspecs; a ``podman build`` of a few seconds.

Every podman call runs with ``CONTAINERS_CONF`` pointing at a file written here (runc; no default ulimits:
this host refuses them), never at ``/etc/containers``; :func:`podman_env` gives that setting to the tests and
the provisioner. This is a blocking CLI and test helper, not server code.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

BASE_REPOSITORY = "localhost/backend-kernel-base"
IMAGE_REPOSITORY = "localhost/backend-kernel"
SUITE = "bookworm"
#: Debian packages of every kernel image; ``extra_packages`` adds toolchains (a new base, hashed apart).
BASE_PACKAGES = tuple("python3 python3-venv gcc libc6-dev make ca-certificates tini".split())
#: Documentation and translations are of no use in a kernel container: about 30 MB less.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
#: Image settings given to ``podman import``. tini with ``-g`` reaps zombies and passes signals to the whole
#: process group; the default command is gateway_provisioners' bootstrap, which the stock launcher relies on.
IMAGE_CHANGES = (
    "ENV PATH=/opt/backend/bin:/usr/local/bin:/usr/bin:/bin",
    "ENV LANG=C.UTF-8",
    "USER 1000:100",
    "WORKDIR /home/kernel",
    'ENTRYPOINT ["/usr/bin/tini", "-g", "--"]',
    'CMD ["/usr/local/bin/bootstrap-kernel.sh"]',
)
#: The recipe's other files, package data beside this module.
CUSTOMIZE_HOOK = Path(__file__).resolve().with_name("image_customize.sh")
CONTAINERFILE = Path(__file__).resolve().with_name("image.Containerfile")
#: The engine settings of every podman call: runc (crun refuses hybrid cgroup layouts) and no default ulimits
#: (podman's default ``nofile`` fails with "error setting rlimit type 7: operation not permitted" here).
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
#: Where Debian keeps the CA bundle; pip in the chroot uses the host's (a TLS-intercepting proxy's CA is in it).
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
#: Where the tree's files that go into the wheel are; their content names the final image.
SOURCE_PARTS = ("backend_kernel_provisioner", "kernelspecs", "pyproject.toml")

logger = logging.getLogger(__name__)
Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """The image could not be built; the message says which step failed and ends with its last output."""


class MissingProgramError(ImageBuildError):
    """A program the build needs is not installed; ``program`` names it (tests skip with this reason)."""

    def __init__(self, program: str, package: str) -> None:
        super().__init__(f"{program} not found: install the Debian package {package} "
                         "(scripts/install-toolchains.sh installs every one)")
        self.program = program


#: Program -> Debian package, for :func:`require_programs`.
PROGRAMS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}


def find_program(name: str) -> str | None:
    """``name`` on PATH or in the sbin folders (runc lives in /usr/sbin, not on a normal user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def require_programs(*names: str) -> None:
    """Raise :class:`MissingProgramError` for the first of ``names`` (default: all build programs) not found."""
    for name in names or tuple(PROGRAMS):
        if find_program(name) is None:
            raise MissingProgramError(name, PROGRAMS.get(name, name))


def state_dir() -> Path:
    """The builder's own folder (containers.conf, build lock), under the user's cache folder."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(cache) / "backend-kernel-provisioner" / "podman"
    path.mkdir(parents=True, exist_ok=True)
    return path


def containers_conf() -> Path:
    """Write (when it differs) and return the containers.conf that every podman call of ours uses."""
    path = state_dir() / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(CONTAINERS_CONF)
        tmp.replace(path)  # atomic: a podman started meanwhile reads the old file or the new one, never half
    return path


def podman_env() -> dict[str, str]:
    """The environment additions for podman (and ``podman system service``): ``{"CONTAINERS_CONF": ...}``."""
    return {"CONTAINERS_CONF": str(containers_conf())}


def _run(argv: Sequence[str], log: Log, *, env: dict[str, str] | None = None, step: str = "") -> None:
    """Run ``argv``, streaming each output line to ``log``; raise with the last lines when it fails."""
    log(f"$ {' '.join(argv)}")
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            log(line)
    if proc.returncode != 0:
        raise ImageBuildError(f"{step or argv[0]} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    """A short podman query (no streaming); the caller looks at the exit code."""
    return subprocess.run(["podman", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **podman_env()})


def image_exists(reference: str) -> bool:
    return _podman("image", "exists", reference).returncode == 0


def _image_id(reference: str) -> str | None:
    inspected = _podman("image", "inspect", "--format", "{{.Id}}", reference)
    return inspected.stdout.strip() or None if inspected.returncode == 0 else None


def source_root() -> Path:
    """The working tree the wheel is built from (the image recipe needs the source, not an installed copy)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "kernelspecs").is_dir():
        raise ImageBuildError(f"no source tree at {root}: build the kernel image from a checkout of the project")
    return root


def runtime_dependencies(root: Path) -> list[str]:
    """``[project].dependencies`` of pyproject.toml: the single list of what the kernel side needs."""
    text = (root / "pyproject.toml").read_text()
    if sys.version_info >= (3, 11):
        import tomllib

        return list(tomllib.loads(text)["project"]["dependencies"])
    from importlib.metadata import requires  # Python 3.10: the installed metadata says the same

    return [r for r in requires("backend-kernel-provisioner") or [] if "extra ==" not in r]


def _deb822_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str], list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() != "no":
            yield (fields.get("types", "").split(), fields.get("uris", "").split(),
                   fields.get("suites", "").split(), fields.get("components", "").split())


def _one_line_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str], list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # drop "[signed-by=...]" options
        if len(words) >= 3:
            yield [words[0]], [words[1]], [words[2]], words[3:]


def debian_sources(suite: str = SUITE, apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """The host's Debian mirror for ``suite`` (and its -updates, -security) as one-line ``deb`` entries.

    Entries of other suites (a vendor's ``cloud-sdk-bookworm``, nodesource's ``nodistro``) are left out;
    without any entry for ``suite``, deb.debian.org is used.
    """
    found: list[str] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if path.suffix not in (".list", ".sources") or not path.is_file():
            continue
        parse = _deb822_entries if path.suffix == ".sources" else _one_line_entries
        for types, uris, suites, components in parse(path.read_text()):
            for uri in uris if "deb" in types else ():
                for name in suites:
                    if name == suite or name.startswith(f"{suite}-"):
                        entry = f"deb {uri} {name} {' '.join(components) or 'main'}"
                        if entry not in found:
                            found.append(entry)
    return found or [f"deb http://deb.debian.org/debian {suite} main",
                     f"deb http://deb.debian.org/debian {suite}-updates main",
                     f"deb http://deb.debian.org/debian-security {suite}-security main"]


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def base_reference(packages: Sequence[str], dependencies: Sequence[str]) -> str:
    """The base's name: a hash of the packages, the dependencies and the recipe (options, hook, settings)."""
    recipe = {"suite": SUITE, "packages": sorted(packages), "dependencies": list(dependencies),
              "dpkg": DPKG_OPTIONS, "changes": IMAGE_CHANGES}
    return f"{BASE_REPOSITORY}:{_digest([json.dumps(recipe, sort_keys=True).encode(), CUSTOMIZE_HOOK.read_bytes()])}"


def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for part in SOURCE_PARTS:
        path = root / part
        if path.is_file():
            files.append(path)
        else:
            files.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                         and p.suffix not in (".pyc", ".pyo"))
    return sorted(files)


def final_reference(root: Path, base: str) -> str:
    """The final image's name: a hash of the base's name, the Containerfile and every source file."""
    parts = [base.encode(), CONTAINERFILE.read_bytes()]
    for path in _source_files(root):
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return f"{IMAGE_REPOSITORY}:{_digest(parts)}"


def _ca_file() -> str:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), DEFAULT_CA_FILE):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise ImageBuildError(f"no CA bundle for pip in the image build: {DEFAULT_CA_FILE} is missing "
                          "(Debian package ca-certificates)")


def build_base(reference: str, packages: Sequence[str], dependencies: Sequence[str], log: Log) -> None:
    """mmdebstrap the rootfs into a tarball, with the customize hook, then ``podman import`` it."""
    with tempfile.TemporaryDirectory(prefix="bkp-image-") as tmp:
        (Path(tmp) / "requirements.txt").write_text("\n".join(dependencies) + "\n")
        tarball = os.path.join(tmp, "rootfs.tar")
        # A clean environment: the host's pip settings (local wheel folders, index files) mean nothing inside.
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": os.environ.get("HOME", "/root"), "TMPDIR": tempfile.gettempdir(),
               "BKP_BUILD_DIR": tmp, "BKP_CA_FILE": _ca_file()}
        argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}",
                *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
                f'--customize-hook=sh {shlex.quote(str(CUSTOMIZE_HOOK))} "$1"', SUITE, tarball, *debian_sources()]
        _run(argv, log, env=env, step="mmdebstrap")
        changes = [arg for change in IMAGE_CHANGES for arg in ("--change", change)]
        _run(["podman", "import", "--quiet", *changes, "--message", "backend kernel base", tarball, reference],
             log, env={**os.environ, **podman_env()}, step="podman import")


def build_final(reference: str, base: str, root: Path, log: Log) -> None:
    """Build our wheel from the tree and ``podman build`` it onto ``base`` (no pull, no network)."""
    with tempfile.TemporaryDirectory(prefix="bkp-image-") as context:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", context, str(root)],
             log, step="pip wheel")
        shutil.copy(CONTAINERFILE, os.path.join(context, "Containerfile"))
        _run(["podman", "build", "--pull=never", "--network=none", "--layers=false", "--build-arg", f"BASE={base}",
              "--label", f"backend-kernel.base={base}", "--tag", reference, "--file", "Containerfile", context],
             log, env={**os.environ, **podman_env()}, step="podman build")


def _superseded(reference: str, base: str) -> list[str]:
    """Our final images of older trees on the same base: a newer tree replaced them."""
    listed = _podman("images", "--filter", f"label=backend-kernel.base={base}", "--format", "{{.Repository}}:{{.Tag}}")
    keep = (reference, f"{IMAGE_REPOSITORY}:latest")
    return [name for name in listed.stdout.split() if name.startswith(f"{IMAGE_REPOSITORY}:") and name not in keep]


def _remove_images(names: Iterable[str], log: Log) -> None:
    """Best effort: an image a container still uses stays (podman refuses), and is removed by a later build."""
    for name in names:
        if _podman("rmi", name).returncode == 0:
            log(f"removed old image {name}")


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time on this machine (a test session and a CLI call would build the same tags)."""
    with open(state_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_kernel_image(*, extra_packages: Sequence[str] = (), log: Log = logger.info, rebuild: bool = False) -> str:
    """Return the kernel image's reference, building the base and/or the final layer when their inputs changed.

    ``extra_packages``: more Debian packages (toolchains) in the base. ``rebuild``: build both layers again
    even when images of the same hashes exist. Raises :class:`MissingProgramError` naming a missing program.
    """
    require_programs()
    root = source_root()
    packages = sorted({*BASE_PACKAGES, *extra_packages})
    dependencies = runtime_dependencies(root)
    base = base_reference(packages, dependencies)
    reference = final_reference(root, base)
    with _build_lock():
        replaced = [_image_id(reference), _image_id(base)] if rebuild else []  # final first, then its base
        if rebuild or not image_exists(base):
            log(f"building {base} (packages: {' '.join(packages)})")
            build_base(base, packages, dependencies, log)
        built = rebuild or not image_exists(reference)
        if built:
            log(f"building {reference} on {base}")
            build_final(reference, base, root, log)
        tagged = _podman("tag", reference, f"{IMAGE_REPOSITORY}:latest")
        if tagged.returncode != 0:
            raise ImageBuildError(f"podman tag {reference} failed: {tagged.stderr.strip()}")
        if built:
            current = {_image_id(reference), _image_id(base)}
            _remove_images([*_superseded(reference, base), *(i for i in replaced if i and i not in current)], log)
    return reference


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend_kernel_provisioner.install.image",
                                     description="Build (or find cached) the kernel container image; print its name.")
    parser.add_argument("--extra-package", action="append", default=[], metavar="P",
                        help="another Debian package in the image (repeatable), for example golang-go")
    parser.add_argument("--rebuild", action="store_true", help="build both layers again even when cached")
    args = parser.parse_args(argv)
    try:
        reference = ensure_kernel_image(extra_packages=args.extra_package, rebuild=args.rebuild,
                                        log=lambda line: print(line, file=sys.stderr, flush=True))
    except ImageBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
