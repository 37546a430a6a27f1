"""The shared compile cache runs only what this user built (issue 15, "neighbours on the same host").

A cache folder others can write to, an entry someone else owns, or a binary
swapped in after the build must not be run: the cell's output proves that the
real program ran (it was built again), and a warning names the problem.
The kernel tests use a real C kernel with ``cache_dir``; ownership by another
user is made with ``os.chown`` (the tests run as root).
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from backend_kernel_provisioner.kernels.cache import MANIFEST, BuildCache, manifest_of

from .helpers import require_programs, run_cell, running_kernel

NOBODY = 65534
PLANTED = "#!/bin/sh\necho planted\n"


def c_program(word: str) -> str:
    return f'#include <stdio.h>\n// {uuid.uuid4()}\nint main(void) {{ puts("{word}"); return 0; }}\n'


def entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if not p.name.startswith(".")]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def plant(entry: Path, *, fix_manifest: bool) -> None:
    """Swap the entry's program for one printing ``planted``; optionally as an attacker who knows the manifest."""
    main = entry / "main"
    main.unlink()
    main.write_text(PLANTED)
    main.chmod(0o755)
    if fix_manifest:
        manifest = entry / MANIFEST
        manifest.write_text(json.dumps(manifest_of(entry)))
        manifest.chmod(0o600)


def chown_tree(path: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), uid, uid)


# -- the cache on its own ------------------------------------------------------------------------


def built(cache: BuildCache, key: str, content: str = "x") -> Path:
    build = cache.new_build_dir()
    (build / "main").write_text(content)
    return cache.commit(build, key)


def test_created_with_private_modes_and_a_manifest(tmp_path):
    cache = BuildCache(tmp_path / "shared" / "cache", 1 << 20)
    entry = built(cache, "k1")
    assert mode(tmp_path / "shared" / "cache") == 0o700 and mode(entry) == 0o700
    assert mode(entry / MANIFEST) == 0o600
    assert json.loads((entry / MANIFEST).read_text()) == {"main": manifest_of(entry)["main"]}
    assert cache.lookup("k1") == entry and cache.take_warnings() == []


def test_group_writable_build_output_is_still_cached(tmp_path):
    cache = BuildCache(tmp_path / "cache", 1 << 20)
    build = cache.new_build_dir()
    (build / "main").write_text("x")
    (build / "main").chmod(0o775)  # a umask of 002
    entry = cache.commit(build, "k1")
    assert mode(entry / "main") == 0o755 and cache.lookup("k1") == entry


def test_unsafe_root_is_replaced_by_the_fallback_with_one_warning(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cache = BuildCache(shared, 1 << 20, fallback=tmp_path / "private")
    assert cache.root == tmp_path / "private" and mode(tmp_path / "private") == 0o700
    (warning,) = cache.take_warnings()
    assert f"compile cache {shared} is not used" in warning and "writable by group or others (mode 0777)" in warning
    assert cache.root == tmp_path / "private" and cache.take_warnings() == []
    shared.chmod(0o755)
    os.chown(shared, NOBODY, NOBODY)
    assert cache.root == tmp_path / "private"
    assert "is owned by uid 65534" in cache.take_warnings()[0]


def test_folder_writable_by_others_above_the_root_is_refused(tmp_path):
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)  # not sticky: anyone could rename our cache away
    cache = BuildCache(tmp_path / "open" / "cache", 1 << 20, fallback=tmp_path / "private")
    assert cache.root == tmp_path / "private"
    assert "above the cache is writable by others" in cache.take_warnings()[0]


@pytest.mark.parametrize("problem", ["foreign-owned", "swapped", "extra-file", "world-writable"])
def test_bad_entries_are_refused_and_replaced(tmp_path, problem):
    cache = BuildCache(tmp_path / "cache", 1 << 20)
    entry = built(cache, "k1", "real")
    if problem == "foreign-owned":
        chown_tree(entry, NOBODY)
    elif problem == "swapped":
        (entry / "main").write_text("fake")
    elif problem == "extra-file":
        (entry / "libevil.so").write_text("x")
    else:
        entry.chmod(0o777)
    assert cache.lookup("k1") is None
    assert "compile cache entry" in cache.take_warnings()[0]
    again = built(cache, "k1", "real")
    assert (again / "main").read_text() == "real" and cache.lookup("k1") == again


# -- a real kernel ------------------------------------------------------------------------------


@pytest.mark.kernel
async def test_entries_of_a_shared_cache_are_not_run_when_planted_or_swapped(tmp_path):
    require_programs("gcc")
    root = tmp_path / "cache"
    async with running_kernel("backend-c", kernel_options={"cache_dir": str(root)}) as (_km, kc):
        swapped, foreign, planted = c_program("real one"), c_program("real two"), c_program("real three")

        first = await run_cell(kc, swapped)
        assert first["stdout"] == "real one\n"
        (entry,) = entries(root)
        assert (mode(root), mode(entry), mode(entry / MANIFEST)) == (0o700, 0o700, 0o600)

        # A binary swapped in place of the entry's (same name, other content): built again.
        plant(entry, fix_manifest=False)
        again = await run_cell(kc, swapped)
        assert again["stdout"] == "real one\n", again
        assert "compile cache entry" in again["stderr"] and "differs from what was built" in again["stderr"]
        assert (entry / "main").read_bytes() != PLANTED.encode()

        # An entry owned by someone else, consistent manifest and all: not run.
        await run_cell(kc, foreign)
        for candidate in entries(root):
            plant(candidate, fix_manifest=True)
            chown_tree(candidate, NOBODY)
        result = await run_cell(kc, foreign)
        assert result["stdout"] == "real two\n", result
        assert "is owned by uid 65534" in result["stderr"]

        # A root others can write to: whatever is planted there is not run, the private cache is used.
        await run_cell(kc, planted)
        for candidate in entries(root):
            plant(candidate, fix_manifest=True)
        root.chmod(0o777)
        result = await run_cell(kc, planted)
        assert result["stdout"] == "real three\n", result
        assert f"compile cache {root} is not used" in result["stderr"]
        assert "writable by group or others (mode 0777)" in result["stderr"]
