"""Drawing: shapes and turtle graphics rendered to SVG, and shown by a real backend-python kernel."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from backend_kernel_provisioner.drawing import Canvas, Color, Colors, Turtle

from .helpers import run_cell_messages, running_kernel

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def segments(root: ET.Element) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    return [
        ((float(el.get("x1")), float(el.get("y1"))), (float(el.get("x2")), float(el.get("y2"))))
        for el in root.iter("{http://www.w3.org/2000/svg}line")
    ]


def test_turtle_square_is_a_closed_square_of_the_right_side() -> None:
    canvas = Canvas(200, 160)
    turtle = Turtle(canvas)
    start = turtle.pos()
    for _ in range(4):
        turtle.forward(60)
        turtle.left(90)
    lines = segments(parse(canvas.to_svg()))
    assert len(lines) == 4
    for (a, b), (c, _) in zip(lines, lines[1:] + lines[:1], strict=True):
        assert math.dist(a, b) == pytest.approx(60)
        assert b == pytest.approx(c)  # each side starts where the previous one ended
    assert lines[0][0] == pytest.approx(start) and lines[-1][1] == pytest.approx(start)
    # consecutive sides are perpendicular
    for (a, b), (c, d) in zip(lines[:-1], lines[1:], strict=True):
        dot = (b[0] - a[0]) * (d[0] - c[0]) + (b[1] - a[1]) * (d[1] - c[1])
        assert dot == pytest.approx(0, abs=1e-6)


def test_turtle_pen_up_moves_without_drawing() -> None:
    canvas = Canvas(100, 100)
    turtle = canvas.create_turtle()
    turtle.penup()
    turtle.setpos(10, 10)
    turtle.pendown()
    turtle.right(90)  # facing right (east)
    turtle.forward(30)
    assert turtle.pos() == pytest.approx((40, 10))
    assert segments(parse(canvas.to_svg())) == [((10, 10), (40, 10))]


def test_rotated_filled_rectangle() -> None:
    canvas = Canvas(300, 200, bgcolor=Colors.Yellow)
    canvas.rectangle(20, 30, 100, 50, border=Colors.Blue, fill=Color(255, 0, 0, 128), angle=30)
    root = parse(canvas.to_svg())
    background = root.find("svg:rect[@class='background']", NS)
    assert background.get("fill") == "#ffff00"
    rects = [el for el in root.findall("svg:rect", NS) if el.get("class") != "background"]
    assert len(rects) == 1
    rect = rects[0]
    assert [float(rect.get(k)) for k in ("x", "y", "width", "height")] == [20, 30, 100, 50]
    assert rect.get("fill") == "#ff0000" and float(rect.get("fill-opacity")) == pytest.approx(128 / 255, abs=1e-3)
    assert rect.get("stroke") == "#0000ff"
    assert rect.get("transform") == "rotate(30 70 55)"  # around the centre


def test_objects_stay_editable_after_drawing() -> None:
    canvas = Canvas(100, 100)
    circle = canvas.circle(50, 50, 10, fill=Colors.Green)
    circle.set_pos(20, 30).set_size(16, 16).set_angle(15).set_fill("#123456").set_border((1, 2, 3))
    el = parse(canvas.to_svg()).find("svg:circle", NS)
    assert (el.get("cx"), el.get("cy"), el.get("r")) == ("20", "30", "8")
    assert el.get("fill") == "#123456" and el.get("stroke") == "#010203"
    assert el.get("transform") == "rotate(15 20 30)"


def test_groups_fills_and_stroke_colours() -> None:
    canvas = Canvas(100, 100)
    canvas.stroke_color(Colors.Red)
    canvas.begin_fill(Colors.Cyan)
    group = canvas.begin_group()
    canvas.triangle(0, 0, 10, 20)
    canvas.line(0, 0, 5, 5)
    canvas.end_group()
    canvas.end_fill()
    canvas.rectangle(50, 50, 10, 10)
    group.set_pos(30, 40).set_angle(90)
    root = parse(canvas.to_svg())
    g = root.find("svg:g", NS)
    assert g.get("transform") == "rotate(90 35 50) translate(30 40)"
    polygon = g.find("svg:polygon", NS)
    assert polygon.get("points") == "5,0 10,20 0,20"
    assert polygon.get("fill") == "#00ffff" and polygon.get("stroke") == "#ff0000"
    assert g.find("svg:line", NS).get("stroke") == "#ff0000"
    outside = [el for el in root.findall("svg:rect", NS) if el.get("class") != "background"][0]
    assert outside.get("fill") == "none"  # end_fill() stopped filling
    with pytest.raises(RuntimeError, match="begin_group"):
        canvas.end_group()


def test_colors_round_trip_and_reject_bad_input() -> None:
    color = Color.from_hex("#11223380")
    assert color.to_rgba() == "rgba(17,34,51,0.502)"
    assert Color.from_bytes(color.to_bytes()) == color
    assert Color.from_rgba((17, 34, 51, 128)).to_hex() == "#11223380"
    assert Color.from_hex("f00") == Colors.Red
    with pytest.raises(ValueError, match="hex colour"):
        Color.from_hex("#12345")
    with pytest.raises(ValueError, match="red"):
        Color(300, 0, 0)


SHOW_CODE = """
from backend_kernel_provisioner.drawing import Canvas, Colors
canvas = Canvas(120, 120)
box = canvas.rectangle(10, 10, 40, 40, fill=Colors.Red)
canvas.show()
"""


@pytest.mark.kernel
async def test_show_displays_svg_and_updates_the_same_display() -> None:
    async with running_kernel("backend-python") as (_km, kc):
        reply, messages = await run_cell_messages(kc, SHOW_CODE)
        assert reply["status"] == "ok", messages
        shown = [c for kind, c in messages if kind == "display_data"]
        assert len(shown) == 1
        first = parse(shown[0]["data"]["image/svg+xml"])
        assert first.findall("svg:rect", NS)[1].get("fill") == "#ff0000"
        display_id = shown[0]["transient"]["display_id"]
        assert display_id

        reply, messages = await run_cell_messages(kc, "box.set_fill(Colors.Blue).set_angle(45)\ncanvas.show()")
        assert reply["status"] == "ok", messages
        updates = [c for kind, c in messages if kind == "update_display_data"]
        assert [kind for kind, _ in messages] == ["update_display_data"]
        assert updates[0]["transient"]["display_id"] == display_id
        rect = parse(updates[0]["data"]["image/svg+xml"]).findall("svg:rect", NS)[1]
        assert rect.get("fill") == "#0000ff" and rect.get("transform") == "rotate(45 30 30)"
