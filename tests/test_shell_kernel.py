"""The shell kernel's own behaviour: %show graph, %ping, %resize, cd that lasts."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts backend-shell through running_kernel

SVG = "{http://www.w3.org/2000/svg}"


def make_repo_with_merge(path) -> dict[str, str]:
    """main: A - B - M (merge of feature: C); returns the oids by letter."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, text=True,
                              env={"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
                                   "GIT_COMMITTER_NAME": "Cy", "GIT_COMMITTER_EMAIL": "cy@example.org",
                                   "HOME": str(path), "PATH": "/usr/bin:/bin"})
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    oids = {}
    for letter, branch in (("A", None), ("B", None), ("C", "feature")):
        if branch:
            git("checkout", "-q", "-b", branch, oids["A"])
        (path / f"{letter}.txt").write_text(letter)
        git("add", f"{letter}.txt")
        git("commit", "-q", "-m", f"commit {letter}")
        oids[letter] = git("rev-parse", "HEAD")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    oids["M"] = git("rev-parse", "HEAD")
    return oids


@pytest.fixture
def repo(tmp_path):
    require_programs("bash", "git")
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder, make_repo_with_merge(folder)


async def test_show_graph_renders_svg_and_the_gitgraph_list(repo) -> None:
    folder, oids = repo
    async with running_kernel("backend-shell") as (km, kc):
        shown = await run_cell(kc, f"%show graph {folder}")
        assert shown["reply"]["status"] == "ok", shown
        [display] = shown["displays"]
        data = display["data"]
        commits = json.loads(data["application/vnd.sorna.gitgraph"])
        assert data["application/vnd.sorna.gitgraph+json"] == commits
        short = {letter: oid[:7] for letter, oid in oids.items()}
        assert [c["oid"] for c in commits][0] == short["A"] and commits[-1]["oid"] == short["M"], "oldest first"
        assert {c["oid"] for c in commits} == set(short.values())
        by_oid = {c["oid"]: c for c in commits}
        merge = by_oid[short["M"]]
        assert merge["parent_ids"] == [short["B"], short["C"]]
        assert merge["author"] == "Cy", "the runner sent the committer's name"
        assert merge["message"] == "merge feature"
        assert merge["branch"] == "main" and merge["parent_branches"] == ["main", "feature"]
        assert by_oid[short["C"]]["branch"] == "feature" and by_oid[short["B"]]["branch"] == "main"
        assert by_oid[short["A"]]["branch"] in ("main", "feature") and by_oid[short["A"]]["parent_ids"] == []
        assert set(merge) == {"oid", "parent_ids", "author", "message", "branch", "parent_branches"}

        svg = ET.fromstring(data["image/svg+xml"])
        circles = {c.get("data-oid") for c in svg.iter(f"{SVG}circle")}
        assert circles == set(short.values())
        edges = {(p.get("data-from"), p.get("data-to")) for p in svg.iter(f"{SVG}path")}
        expected = {(c["oid"], p) for c in commits for p in c["parent_ids"]}
        assert edges == expected and len(edges) == 4


async def test_show_graph_defaults_to_the_shells_current_folder(repo) -> None:
    folder, oids = repo
    async with running_kernel("backend-shell") as (km, kc):
        await run_cell(kc, f"cd {folder}")
        shown = await run_cell(kc, "%show graph")
        commits = json.loads(shown["displays"][0]["data"]["application/vnd.sorna.gitgraph"])
        assert len(commits) == 4
        outside = await run_cell(kc, "%show graph /")
        assert outside["reply"]["status"] == "error"
        assert "not a git repository" in outside["stderr"].lower()


async def test_ping_resize_and_cd_that_lasts(tmp_path) -> None:
    require_programs("bash")
    async with running_kernel("backend-shell") as (km, kc):
        assert (await run_cell(kc, "%ping"))["stdout"] == "pong\n"
        resized = await run_cell(kc, "%resize 40 132\necho \"$LINES $COLUMNS\"")
        assert resized["stdout"].splitlines()[-1] == "40 132"
        bad = await run_cell(kc, "%resize wide")
        assert bad["reply"]["status"] == "error" and "usage" in bad["stderr"]
        await run_cell(kc, f"cd {tmp_path}\nexport GREETING=hello")
        where = await run_cell(kc, "pwd; echo $GREETING")
        assert where["stdout"] == f"{tmp_path}\nhello\n"
