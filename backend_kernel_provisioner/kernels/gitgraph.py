"""The git commit graph of a repository: the runner's structured list and an SVG picture of it.

Why both: frontends of the old runner read the list (MIME ``application/vnd.sorna.gitgraph``:
``{oid, parent_ids, author, message, branch, parent_branches}`` per commit, **oldest first**, short
object ids, the committer's name, the branch through which ``git log --source --branches`` reaches
the commit or null); a notebook shows the picture (newest on top, as ``git log --graph``).
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any

GITGRAPH_MIME = "application/vnd.sorna.gitgraph"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
ROW, LANE, LEFT, TOP, RADIUS = 26, 18, 14, 16, 5


class GitGraphError(Exception):
    """git failed or the folder is not a repository (the message says which)."""


async def _git(path: str, *args: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", "-C", path, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitGraphError("program 'git' was not found on PATH") from None
    out, err = await proc.communicate()
    if proc.returncode:
        raise GitGraphError(err.decode(errors="replace").strip() or f"git {args[0]} failed in {path}")
    return out.decode(errors="replace")


#: Object ids in the list are this long, as the runner sent them.
SHORT_ID = 7


async def read_graph(path: str, limit: int = 500) -> list[dict[str, Any]]:
    """The runner's list: the newest ``limit`` commits of all refs, oldest first, each with its branch.

    A commit's branch is the one through which ``git log --source --branches`` reached it (null for
    commits on no branch, such as tags only), exactly as the runner derived it.
    """
    if not (await _git(path, "rev-parse", "--is-inside-work-tree")).strip():
        raise GitGraphError(f"{path} is not a git repository")
    log = await _git(path, "log", "--all", "--topo-order", "--reverse", f"--max-count={limit}",
                     "--format=%H%x1f%P%x1f%cn%x1f%s%x1e")
    sources = await _git(path, "log", "--branches", "--source", "--format=%H%x1f%S")
    branch_of: dict[str, str | None] = {}
    for line in sources.splitlines():
        oid, _, ref = line.partition("\x1f")
        branch_of[oid[:SHORT_ID]] = ref.removeprefix("refs/heads/") or None
    commits: list[dict[str, Any]] = []
    for record in log.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 4:
            oid, parents, committer, message = fields
            parent_ids = [p[:SHORT_ID] for p in parents.split()]
            commits.append({"oid": oid[:SHORT_ID], "parent_ids": parent_ids, "author": committer,
                            "message": message, "branch": branch_of.get(oid[:SHORT_ID]),
                            "parent_branches": [branch_of.get(p) for p in parent_ids]})
    return commits


def render_svg(oldest_first: list[dict[str, Any]]) -> str:
    """One row per commit (newest on top), one lane (column and colour) per branch."""
    commits = oldest_first[::-1]
    lanes: dict[str | None, int] = {}
    for commit in commits:
        lanes.setdefault(commit["branch"], len(lanes))
    row = {c["oid"]: i for i, c in enumerate(commits)}

    def point(oid: str) -> tuple[int, int]:
        commit = commits[row[oid]]
        return LEFT + lanes[commit["branch"]] * LANE, TOP + row[oid] * ROW

    text_x = LEFT + max(len(lanes), 1) * LANE + 8
    width = text_x + 560
    height = TOP * 2 + max(len(commits) - 1, 0) * ROW
    edges, nodes, labels = [], [], []
    for commit in commits:
        x, y = point(commit["oid"])
        colour = PALETTE[lanes[commit["branch"]] % len(PALETTE)]
        for parent in commit["parent_ids"]:
            if parent not in row:
                continue
            px, py = point(parent)
            mid = (y + py) / 2
            shape = f"M{x},{y} L{px},{py}" if px == x else f"M{x},{y} C{x},{mid} {px},{mid} {px},{py}"
            lane_colour = PALETTE[lanes[commits[row[parent]]["branch"]] % len(PALETTE)] if px != x else colour
            edges.append(f'<path class="edge" d="{shape}" data-from="{commit["oid"]}" data-to="{parent}" '
                         f'stroke="{lane_colour}" stroke-width="2" fill="none"/>')
        title = html.escape(f'{commit["oid"]} {commit["author"]}: {commit["message"]}')
        nodes.append(f'<circle class="commit" cx="{x}" cy="{y}" r="{RADIUS}" fill="{colour}" '
                     f'data-oid="{commit["oid"]}"><title>{title}</title></circle>')
        tip = commit["branch"] and all(commit["oid"] not in c["parent_ids"] or c["branch"] != commit["branch"]
                                       for c in commits)
        badge = f' <tspan font-weight="bold" fill="{colour}">[{html.escape(commit["branch"])}]</tspan>' if tip else ""
        labels.append(f'<text x="{text_x}" y="{y + 4}" font-family="monospace" font-size="12">'
                      f'{commit["oid"]}{badge} {html.escape(commit["message"][:72])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">' + "".join(edges + nodes + labels) + "</svg>")


def display_bundle(commits: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """display_data content: the picture, the runner's list (JSON text, as the runner sent media)
    and the same list as structured JSON."""
    return {
        "data": {
            "image/svg+xml": render_svg(commits),
            GITGRAPH_MIME: json.dumps(commits),
            GITGRAPH_MIME + "+json": commits,
            "text/plain": f"<git graph of {path}: {len(commits)} commits>",
        },
        "metadata": {},
    }
