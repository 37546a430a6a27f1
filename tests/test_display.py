"""Rich output of the session kernels (issue 19): each language's display API sends display_data in order
with the cell's text, R data frames and matrices come as HTML tables beside their text, and R figures
appear where they were drawn, before text printed after them (real kernels through jupyter_client)."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from backend_kernel_provisioner.kernels import displays, octave_value

from .helpers import require_programs, run_cell_messages, running_kernel

PNG_BYTES = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
HTML = '<b id="shown">hi</b>'


def transcript(messages: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """Streams merged per name (a stream may come in several messages), displays as (kind, their types)."""
    items: list[tuple[str, str]] = []
    for kind, content in messages:
        if kind == "stream":
            if items and items[-1][0] == content["name"]:
                items[-1] = (content["name"], items[-1][1] + content["text"])
            else:
                items.append((content["name"], content["text"]))
        elif kind in ("display_data", "update_display_data", "execute_result"):
            rich = sorted(mime for mime in content["data"] if mime != "text/plain")
            items.append((kind, ",".join(rich) or "text/plain"))
    return items


@dataclass(frozen=True)
class DisplayCell:
    kernel: str
    program: str
    image: str     # the image type the cell sends
    code: str      # prints "before", sends HTML, prints "middle", sends the image ({png}: a PNG file), prints "after"


CELLS = {
    "nodejs": DisplayCell("backend-nodejs", "node", "image/png",
                          "console.log('before'); display.html('<b id=\"shown\">hi</b>'); console.log('middle');\n"
                          "display.png(require('fs').readFileSync('{png}')); console.log('after')"),
    "lua": DisplayCell("backend-lua", "lua5.4", "image/png",
                       "print('before'); display.html('<b id=\"shown\">hi</b>'); print('middle')\n"
                       "display.png('{png}'); print('after')"),
    "php": DisplayCell("backend-php", "php", "image/png",
                       "echo \"before\\n\"; display_html('<b id=\"shown\">hi</b>'); echo \"middle\\n\";\n"
                       "display_png(file_get_contents('{png}')); echo \"after\\n\";"),
    "shell": DisplayCell("backend-shell", "bash", "image/png",
                         "echo before; echo '<b id=\"shown\">hi</b>' | display --html; echo middle\n"
                         "display < '{png}' --png; echo after"),
    "scheme": DisplayCell("backend-scheme", "guile", "image/svg+xml",
                          "(display \"before\\n\") (display-html \"<b id=\\\"shown\\\">hi</b>\") (display \"middle\\n\")\n"
                          "(display-svg \"<svg xmlns='http://www.w3.org/2000/svg'/>\") (display \"after\\n\")"),
    "r": DisplayCell("backend-r", "R", "image/png",
                     "cat('before\\n'); display(html = '<b id=\"shown\">hi</b>'); cat('middle\\n')\n"
                     "display(png = readBin('{png}', 'raw', 1e6)); cat('after\\n')"),
    "octave": DisplayCell("backend-octave", "octave-cli", "image/png",
                          "disp('before'); display_html('<b id=\"shown\">hi</b>'); disp('middle');\n"
                          "display_png('{png}'); disp('after');"),
    "haskell": DisplayCell("backend-haskell", "ghci", "image/png",
                           "putStrLn \"before\"\ndisplayHtml \"<b id=\\\"shown\\\">hi</b>\"\nputStrLn \"middle\"\n"
                           "displayPng \"{png}\"\nputStrLn \"after\""),
}


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(CELLS))
async def test_display_api_sends_html_and_an_image_between_the_prints(language: str, tmp_path: Path) -> None:
    cell = CELLS[language]
    require_programs(cell.program)
    png = tmp_path / "dot.png"
    png.write_bytes(PNG_BYTES)
    async with running_kernel(cell.kernel) as (_, kc):
        reply, messages = await run_cell_messages(kc, cell.code.replace("{png}", str(png)))
    assert reply["status"] == "ok", (reply, messages)
    assert transcript(messages) == [("stdout", "before\n"), ("display_data", "text/html"), ("stdout", "middle\n"),
                                    ("display_data", cell.image), ("stdout", "after\n")], messages
    shown = [content["data"] for kind, content in messages if kind == "display_data"]
    assert shown[0]["text/html"].rstrip("\n") == HTML  # the shell sends what echo printed
    assert shown[0]["text/plain"], "a display has a text form for consoles"
    if cell.image == "image/png":
        assert base64.b64decode(shown[1]["image/png"]) == PNG_BYTES
    assert not list(tmp_path.glob("display-*")), "the user's file is read, never removed"


@pytest.mark.kernel
async def test_r_data_frame_and_matrix_are_html_tables_with_their_text() -> None:
    require_programs("R")
    async with running_kernel("backend-r") as (_, kc):
        reply, messages = await run_cell_messages(kc, 'data.frame(x = 1:3, y = c("a", "<b>", NA))')
        assert reply["status"] == "ok", reply
        (kind, content), = [m for m in messages if m[0] != "stream"]
        assert kind == "execute_result"
        html, text = content["data"]["text/html"], content["data"]["text/plain"]
        assert html.startswith('<table class="dataframe">') and html.count("<tr>") == 2 + 3  # names, types, rows
        assert "<caption>A data.frame: 3 \u00d7 2</caption>" in html
        assert "<td>&lt;b&gt;</td>" in html and "&lt;chr&gt;" in html  # escaped cells, column types
        assert text.splitlines()[0].split() == ["x", "y"] and "<b>" in text  # R's own print

        # A table before the cell's last expression is a display, in order with the text around it.
        reply, messages = await run_cell_messages(kc, 'm <- matrix(1:6, 2); cat("a\\n"); m; cat("b\\n"); 1')
        assert transcript(messages) == [("stdout", "a\n"), ("display_data", "text/html"), ("stdout", "b\n"),
                                        ("execute_result", "text/plain")]
        table = next(c for k, c in messages if k == "display_data")["data"]
        assert "A matrix: 2 \u00d7 3 of type int" in table["text/html"] and "[1,]" in table["text/plain"]

        # Long tables show their first and last rows around an ellipsis row.
        reply, messages = await run_cell_messages(kc, "data.frame(n = 1:1000)")
        html = messages[-1][1]["data"]["text/html"]
        assert "<td>1</td>" in html and "<td>1000</td>" in html and "<td>500</td>" not in html
        assert "\u22ee" in html


@pytest.mark.kernel
async def test_r_figure_comes_where_it_was_drawn() -> None:
    require_programs("R")
    async with running_kernel("backend-r") as (_, kc):
        # The case: summary() printed after plot() appeared above the plot.
        reply, messages = await run_cell_messages(kc, "x <- c(1, 2, 3, 10)\nplot(x)\nsummary(x)\ncat('end\\n')")
        assert reply["status"] == "ok", reply
        items = transcript(messages)
        assert items[0] == ("display_data", "image/png"), items
        assert items[1][0] == "stdout" and "Median" in items[1][1] and items[1][1].endswith("end\n"), items
        picture = Image.open(io.BytesIO(base64.b64decode(messages[0][1]["data"]["image/png"])))
        assert picture.format == "PNG" and picture.size == (640, 480)

        # Drawn further after text: one figure, updated in place (same display id), not a second one.
        reply, messages = await run_cell_messages(kc, "plot(1:3)\nabline(h = 2)\nprint('after')\nlines(3:1)")
        assert [kind for kind, _ in messages] == ["display_data", "stream", "update_display_data"], messages
        first, update = messages[0][1], messages[2][1]
        assert first["transient"]["display_id"] == update["transient"]["display_id"]
        assert first["data"]["image/png"] != update["data"]["image/png"]

        # Each new page is its own figure, sent before the text that follows it.
        reply, messages = await run_cell_messages(kc, "plot(1); cat('one\\n'); plot(2); cat('two\\n')")
        assert transcript(messages) == [("display_data", "image/png"), ("stdout", "one\n"),
                                        ("display_data", "image/png"), ("stdout", "two\n")]

        # A figure closed by the cell is still shown; the next cell starts without one.
        reply, messages = await run_cell_messages(kc, "hist(c(1, 2, 2, 3)); invisible(dev.off())")
        assert transcript(messages) == [("display_data", "image/png")]
        reply, messages = await run_cell_messages(kc, "x <- 1")
        assert messages == []


@pytest.mark.kernel
async def test_octave_figure_and_value_come_through_the_display_channel() -> None:
    require_programs("octave-cli", "gnuplot")
    async with running_kernel("backend-octave") as (_, kc):
        reply, messages = await run_cell_messages(kc, "disp('before'); plot(1:3);\nx = 3; x")
        assert reply["status"] == "ok", reply
        assert transcript(messages) == [("stdout", "before\n"), ("display_data", "image/png"),
                                        ("execute_result", "text/plain")]
        assert messages[-1][1]["data"]["text/plain"] == "x = 3"
        reply, messages = await run_cell_messages(kc, "ans = 5;\ndisp(1)")  # no value: ans is kept
        assert transcript(messages) == [("stdout", "1\n")]
        reply, messages = await run_cell_messages(kc, "ans")
        assert messages[-1][1]["data"]["text/plain"] == "ans = 5"


@pytest.mark.kernel
async def test_a_malformed_display_line_is_told_and_the_cell_goes_on() -> None:
    require_programs("bash")
    async with running_kernel("backend-shell") as (_, kc):
        reply, messages = await run_cell_messages(kc, "echo '<i>x</i>' | display --html --metadata '{bad'; echo after")
    assert reply["status"] == "ok", reply
    assert transcript(messages) == [("stderr", "[display: the display line is not valid JSON]\n"),
                                    ("stdout", "after\n")]


# -- the kernel's side of the protocol, without an interpreter ------------------------------------------------

def test_message_reads_files_removes_staging_ones_and_fills_text(tmp_path: Path) -> None:
    staged = tmp_path / "display-1.png"
    staged.write_bytes(PNG_BYTES)
    own = tmp_path / "mine.svg"
    own.write_text("<svg/>")
    kind, content = displays.message({"data": {"application/json": '{"a": [1]}'},
                                      "files": {"image/png": str(staged), "image/svg+xml": str(own)}}, tmp_path)
    assert kind == "display_data"
    assert content["data"] == {"application/json": {"a": [1]}, "image/png": base64.b64encode(PNG_BYTES).decode(),
                               "image/svg+xml": "<svg/>", "text/plain": '{\n "a": [\n  1\n ]\n}'}
    assert not staged.exists() and own.exists()

    kind, content = displays.message({"data": {"text/html": "<p>"}, "display_id": "f-1", "update": 1}, tmp_path)
    assert kind == "update_display_data" and content["transient"] == {"display_id": "f-1"}
    assert content["data"]["text/plain"] == "<HTML output>"


@pytest.mark.parametrize("line, says", [
    (None, "not valid JSON"), ({"data": {}}, "nothing to display"), ({"data": {"image/png": "not base64!"}}, "base64"),
    ({"data": {"application/json": "{"}}, "not JSON text"), ({"files": {"text/html": "/no/such/file"}}, "cannot read"),
])
def test_message_refuses_what_it_cannot_publish(line: Any, says: str, tmp_path: Path) -> None:
    with pytest.raises(displays.DisplayError, match=says):
        displays.message(line, tmp_path)


def test_result_data_keeps_valid_types_only() -> None:
    answer = {"status": "ok", "result": "x", "data": {"text/html": "<table>", "application/json": "{oops"}}
    assert displays.result_data(answer) == {"text/html": "<table>"}
    assert json.dumps(displays.result_data({"data": "not a bundle"})) == "{}"


@pytest.mark.parametrize("code, split", [
    ("6 * 7", ("", "6 * 7")), ("x = 3;\nx", ("x = 3;", "x")), ("x = 3; x % shown", ("x = 3;", "x")),
    ("c = {1, 2}; c{1}", ("c = {1, 2};", "c{1}")), ("disp(1), a == b", ("disp(1),", "a == b")),
    ("x = 1", None), ("x;", None), ("hold on", None), ("[a, b] = size(1)", None), ("y = [1 2\n3 4]", None),
    ("x = 1 + ...\n  2", None), ("for i = 1:3\n  i\nend", None), ("if x, y, end", None), ("%{\nx\n%}", None),
    ("s = 'a;b'", None), ("'a=b'", ("", "'a=b'")),
])
def test_octave_cell_is_split_before_a_last_line_expression(code: str, split: tuple[str, str] | None) -> None:
    text = octave_value.cell_text(code)
    if split is None:
        assert text == code
    else:
        before, _, expression = text.rpartition(octave_value.SEPARATOR)
        assert (before.strip(), expression.strip()) == split
