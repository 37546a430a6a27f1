"""Drawing: the runner's Canvas/Turtle/Color API, its command media and our SVG of the same picture.

The expected commands are written out by hand from the runner's interface
(the canvas id first; ``canvas``, ``obj``, ``update``, groups, colours as
``#rrggbbaa``), so a change that drifts from what the runner's frontends
decode fails here.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import msgpack
import pytest

from backend_kernel_provisioner.drawing import (
    DRAWING_MIME,
    Canvas,
    Color,
    Colors,
    Turtle,
    Vec2D,
    decode_commands,
    encode_commands,
)

SVG = "{http://www.w3.org/2000/svg}"
TRAIL = "#ff000080"  # the turtle's line colour, (255, 0, 0, 128)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def background_fill(root: ET.Element) -> str | None:
    background = root.find(f"{SVG}rect[@class='background']")
    assert background is not None
    return background.get("fill")


def shapes_of(root: ET.Element) -> list[ET.Element]:
    """The drawn objects, bottom to top (the background rectangle left out)."""
    return [el for el in root if el.get("class") != "background"]


def same(actual: Any, expected: Any, where: str = "commands") -> None:
    """Equal structure and strings; numbers equal up to float noise (the runner's floats are the same sums)."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{where}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}:\n{actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same(a, e, f"{where}[{i}]")
    elif isinstance(expected, str):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    else:
        assert isinstance(actual, (int, float)) and actual == pytest.approx(expected, abs=1e-9), (
            f"{where}: {actual!r} != {expected!r}"
        )


def side(canvas_id: int, line_id: int, x0: float, y0: float, x1: float, y1: float) -> list[list[Any]]:
    """What one turtle move with the pen down records: a group of the trail line and the cursor's x, y."""
    return [
        [canvas_id, "begin-group"],
        [canvas_id, "obj", line_id, ["line", x0, y0, x1, y1, TRAIL]],
        [canvas_id, "update", 0, "x", x1],
        [canvas_id, "update", 0, "y", y1],
        [canvas_id, "end-group"],
    ]


# -- Color, Colors ------------------------------------------------------------------------------------


def test_color_converters_are_the_runners() -> None:
    color = Color(17, 34, 51, 68)
    assert color.to_hex() == "#11223344"
    assert color.to_hex(include_alpha=False) == "#112233"
    assert color.to_rgba() == "rgba(17,34,51,68)"
    assert color.to_bytes() == b"\x11\x22\x33\x44"
    assert Color.from_hex("#11223344") == color
    assert Color.from_bytes(b"\x11\x22\x33\x44") == color
    assert Color.from_rgba([17, 34, 51, 68]) == color
    assert Color(1, 2, 3).alpha == 255 and Color(1, 2, 3).to_hex() == "#010203ff"
    with pytest.raises(ValueError, match="hex colour"):
        Color.from_hex("#12345")
    with pytest.raises(ValueError, match="red"):
        Color(300, 0, 0)


def test_colors_is_an_enum_of_the_runners_colours() -> None:
    assert [(c.name, c.rgba) for c in Colors] == [
        ("Transparent", (255, 255, 255, 0)),
        ("Black", (0, 0, 0, 255)),
        ("Gray", (128, 128, 128, 255)),
        ("White", (255, 255, 255, 255)),
        ("Red", (255, 0, 0, 255)),
        ("Green", (0, 255, 0, 255)),
        ("Blue", (0, 0, 255, 255)),
        ("Yellow", (255, 255, 0, 255)),
        ("Magenta", (255, 0, 255, 255)),
        ("Cyan", (0, 255, 255, 255)),
    ]
    assert isinstance(Colors.Red, Color) and Colors.Red == Color(255, 0, 0) and Colors["Blue"] is Colors.Blue
    assert Colors.Transparent.to_hex() == "#ffffff00"
    made = Colors.from_rgba([255, 200, 200, 255])  # the runner's turtle built its colours this way
    assert type(made) is Color and made.to_hex() == "#ffc8c8ff"


# -- Turtle -------------------------------------------------------------------------------------------


def test_vec2d_arithmetic_and_printing() -> None:
    a, b = Vec2D(3, 4), Vec2D(1, -2)
    assert a + b == (4, 2) and a - b == (2, 6) and -a == (-3, -4)
    assert a * b == 3 - 8 and a * 2 == (6, 8) and 2 * a == (6, 8) and abs(a) == 5
    assert a.rotate(90) == pytest.approx((-4, 3))
    assert repr(Vec2D(1, -2.5)) == "(1.00,-2.50)" and str(a + b) == "(4.00,2.00)"


def test_turtle_starts_at_the_centre_heading_right_with_the_runners_cursor() -> None:
    canvas = Canvas(200, 100)
    turtle = Turtle(canvas)
    cid = canvas.id
    assert turtle.angle == 90 and turtle.pos() == (0, 0) and str(turtle.pos()) == "(0.00,0.00)"
    turtle.forward(30)
    assert turtle.pos() == pytest.approx((30, 0))  # right, not up
    same(canvas.pending, [
        [cid, "canvas", 200, 100, "#ffffffff", "#000000ff"],
        [cid, "obj", 0, ["triangle", 100, 50, 12, 18, "#ff0000ff", "#ffc8c8ff", 90]],
        *side(cid, 1, 100, 50, 130, 50),
    ])


def test_left_right_turn_the_cursor_and_the_heading() -> None:
    canvas = Canvas(200, 200)
    turtle = canvas.create_turtle()
    turtle.left(30)
    turtle.right(120)
    assert turtle.angle == 180
    turtle.forward(10)  # 180 degrees clockwise from up: down, y grows
    assert turtle.pos() == pytest.approx((0, 10))
    same(canvas.pending[2:4], [[canvas.id, "update", 0, "rotate", -30], [canvas.id, "update", 0, "rotate", 120]])


def test_setpos_is_relative_to_the_start_and_penup_draws_nothing() -> None:
    canvas = Canvas(200, 100)
    turtle = canvas.create_turtle()
    cid = canvas.id
    turtle.setpos(30, -40)
    assert turtle.pos() == (30, -40) and str(turtle.pos()) == "(30.00,-40.00)"
    turtle.penup()
    turtle.setpos((-10, 5))  # one pair works too
    turtle.pendown()
    assert turtle.pos() == (-10, 5)
    assert turtle.pos() - Vec2D(-10, 0) == (0, 5)
    same(canvas.pending[2:], [
        *side(cid, 1, 100, 50, 130, 10),
        [cid, "begin-group"], [cid, "update", 0, "x", 90], [cid, "update", 0, "y", 55], [cid, "end-group"],
    ])
    with pytest.raises(TypeError, match="setpos"):
        turtle.setpos(5)


# -- Canvas objects -----------------------------------------------------------------------------------


def test_setters_record_the_runners_update_commands_and_ignore_other_kinds() -> None:
    canvas = Canvas(100, 100)
    cid = canvas.id
    line, circle, rect = canvas.line(0, 0, 10, 10), canvas.circle(50, 50, 5), canvas.rectangle(1, 2, 3, 4)
    start = len(canvas.pending)
    line.set_x1(1).set_y1(2).set_x2(3).set_y2(4).stroke(Colors.Red)
    line.set_x(9)  # not a line's property: nothing, as in the runner
    line.fill(Colors.Red)  # lines have no fill: nothing
    line.set_radius(3)  # nothing
    circle.set_x(5).set_y(6).set_radius(7).stroke(Colors.Blue).fill("#00ff0080").rotate(10).set_angle(20)
    circle.set_x1(1)  # nothing
    rect.set_border((1, 2, 3)).set_fill(Colors.Cyan).set_pos(8, 9)
    same(canvas.pending[start:], [
        [cid, "update", 0, "x1", 1], [cid, "update", 0, "y1", 2], [cid, "update", 0, "x2", 3],
        [cid, "update", 0, "y2", 4], [cid, "update", 0, "color", "#ff0000ff"],
        [cid, "update", 1, "x", 5], [cid, "update", 1, "y", 6], [cid, "update", 1, "radius", 7],
        [cid, "update", 1, "border", "#0000ffff"], [cid, "update", 1, "fill", "#00ff0080"],
        [cid, "update", 1, "rotate", 10], [cid, "update", 1, "angle", 20],
        [cid, "update", 2, "border", "#010203ff"], [cid, "update", 2, "fill", "#00ffffff"],
        [cid, "update", 2, "x", 8], [cid, "update", 2, "y", 9],
    ])


def test_canvas_ids_count_per_process_and_object_ids_per_canvas() -> None:
    first, second = Canvas(10, 10), Canvas(10, 10)
    assert second.id == first.id + 1
    assert [second.line(0, 0, 1, 1).id, second.circle(1, 1, 1).id] == [0, 1]
    assert first.triangle(1, 1, 2, 2).id == 0


def test_stroke_colour_is_the_default_of_later_objects_and_fill_defaults_to_transparent() -> None:
    canvas = Canvas(100, 100, fgcolor=Colors.Blue)
    canvas.stroke_color(Colors.Red)
    canvas.begin_fill(Colors.Cyan)  # recorded for the frontend; it changes no object's fill
    canvas.circle(1, 2, 3)
    canvas.end_fill()
    same(canvas.pending[1:], [
        [canvas.id, "fgcolor", "#ff0000ff"],
        [canvas.id, "begin-fill", "#00ffffff"],
        [canvas.id, "obj", 0, ["circle", 1, 2, 3, "#ff0000ff", "#ffffff00", 0]],
        [canvas.id, "end-fill"],
    ])


def test_media_is_base64_msgpack_of_the_commands() -> None:
    canvas = Canvas(50, 40)
    canvas.line(1, 2.5, 3, 4)
    bundle = canvas.mimebundle(canvas.pending)
    assert set(bundle) == {DRAWING_MIME, "image/svg+xml", "text/plain"}
    raw = msgpack.unpackb(base64.b64decode(bundle[DRAWING_MIME]), raw=False)
    assert raw == [[canvas.id, "canvas", 50, 40, "#ffffffff", "#000000ff"],
                   [canvas.id, "obj", 0, ["line", 1, 2.5, 3, 4, "#000000ff"]]]
    assert decode_commands(encode_commands([(0, "end-fill")])) == [[0, "end-fill"]]
    # binary type on: bytes stay bytes (as a msgpack bin), text stays text
    assert decode_commands(encode_commands([(0, "x", b"\x00\xff")])) == [[0, "x", b"\x00\xff"]]


# -- SVG: the same picture ----------------------------------------------------------------------------


def test_svg_places_objects_as_the_runners_frontend_did() -> None:
    canvas = Canvas(300, 200, bgcolor=Colors.Yellow)
    canvas.rectangle(60, 50, 80, 40, border=Colors.Blue, fill=Color(255, 0, 0, 128), angle=30)
    canvas.triangle(150, 160, 40, 30, fill=Colors.Green)
    canvas.circle(200, 100, 30)
    root = parse(canvas.to_svg())
    assert root.get("width") == "300" and root.get("height") == "200"
    assert background_fill(root) == "#ffff00"
    rect, triangle, circle = shapes_of(root)
    # centred on (left, top), as fabric.js drew it with origin "center"
    assert [rect.get(k) for k in ("x", "y", "width", "height")] == ["20", "30", "80", "40"]
    assert rect.get("fill") == "#ff0000" and rect.get("fill-opacity") == "0.502" and rect.get("stroke") == "#0000ff"
    assert rect.get("transform") == "rotate(30 60 50)"
    assert triangle.get("points") == "130,175 150,145 170,175" and triangle.get("fill") == "#00ff00"
    assert (circle.get("cx"), circle.get("cy"), circle.get("r")) == ("200", "100", "30")
    assert circle.get("fill") == "none" and circle.get("stroke") == "#000000"
    canvas.background_color(Colors.Cyan)
    assert background_fill(parse(canvas.to_svg())) == "#00ffff"


def test_animated_updates_bring_an_object_to_the_top_and_stopped_ones_do_not() -> None:
    canvas = Canvas(100, 100)
    turtle = canvas.create_turtle()
    turtle.forward(20)  # the trail is drawn after the cursor, then the cursor moves: it stays on top
    assert [el.get("class") for el in shapes_of(parse(canvas.to_svg()))] == ["line", "triangle"]
    canvas.stop_animation()
    box = canvas.rectangle(10, 10, 5, 5)
    turtle.cursor.set_angle(45)
    assert [el.get("class") for el in shapes_of(parse(canvas.to_svg()))] == ["line", "triangle", "rect"]
    canvas.resume_animation()
    box.rotate(400)  # wrapped into -360..360 as the frontend did
    top = shapes_of(parse(canvas.to_svg()))[-1]
    assert top.get("class") == "rect" and top.get("transform") == "rotate(40 10 10)"


# -- a runner-style notebook in a real backend-python kernel ------------------------------------------

TURTLE_CELL = """
from backend_kernel_provisioner.drawing import Canvas, Color, Colors
canvas = Canvas(200, 200)
t = canvas.create_turtle()
for _ in range(4):
    t.forward(100)
    t.right(90)
canvas.update()
"""

SHAPES_CELL = """
shapes = Canvas(300, 200, bgcolor=Colors.Yellow)
box = shapes.rectangle(60, 50, 80, 40, fill=Colors.Red, angle=30)
ring = shapes.circle(200, 100, 30, border=Colors.Blue, fill=Color(0, 255, 0, 128))
tri = shapes.triangle(150, 160, 40, 30, fill=Color.from_hex("#11223344"))
shapes.stroke_color(Colors.Magenta)
floor = shapes.line(10, 190, 290, 190)
shapes.begin_fill(Colors.Cyan)
shapes.end_fill()
shapes.stop_animation()
box.fill(Colors.Gray)
box.rotate(15)
ring.set_radius(40)
ring.set_x(210)
floor.stroke(Colors.Green)
floor.set_x2(280)
floor.set_x(5)
shapes.resume_animation()
shapes.background_color(Colors.White)
shapes.show()
"""

MORE_TURTLE_CELL = """
t.left(90)
t.forward(50)
t.penup()
t.setpos((-50, 25))
t.pendown()
print(t.pos())
canvas.update()
"""

#: What the runner records for TURTLE_CELL in a fresh process: canvas 0, the cursor is object 0.
TURTLE_COMMANDS = [
    [0, "canvas", 200, 200, "#ffffffff", "#000000ff"],
    [0, "obj", 0, ["triangle", 100, 100, 12, 18, "#ff0000ff", "#ffc8c8ff", 90]],
    *side(0, 1, 100, 100, 200, 100), [0, "update", 0, "rotate", 90],
    *side(0, 2, 200, 100, 200, 200), [0, "update", 0, "rotate", 90],
    *side(0, 3, 200, 200, 100, 200), [0, "update", 0, "rotate", 90],
    *side(0, 4, 100, 200, 100, 100), [0, "update", 0, "rotate", 90],
]

SHAPES_COMMANDS = [
    [1, "canvas", 300, 200, "#ffff00ff", "#000000ff"],
    [1, "obj", 0, ["rect", 60, 50, 80, 40, "#000000ff", "#ff0000ff", 30]],
    [1, "obj", 1, ["circle", 200, 100, 30, "#0000ffff", "#00ff0080", 0]],
    [1, "obj", 2, ["triangle", 150, 160, 40, 30, "#000000ff", "#11223344", 0]],
    [1, "fgcolor", "#ff00ffff"],
    [1, "obj", 3, ["line", 10, 190, 290, 190, "#ff00ffff"]],
    [1, "begin-fill", "#00ffffff"],
    [1, "end-fill"],
    [1, "stop-anim"],
    [1, "update", 0, "fill", "#808080ff"],
    [1, "update", 0, "rotate", 15],
    [1, "update", 1, "radius", 40],
    [1, "update", 1, "x", 210],
    [1, "update", 3, "color", "#00ff00ff"],
    [1, "update", 3, "x2", 280],
    [1, "resume-anim"],
    [1, "bgcolor", "#ffffffff"],
]

#: Only what was recorded since TURTLE_CELL's update: the update sends the new commands, then forgets them.
MORE_TURTLE_COMMANDS = [
    [0, "update", 0, "rotate", -90],
    *side(0, 5, 100, 100, 100, 50),
    [0, "begin-group"], [0, "update", 0, "x", 50], [0, "update", 0, "y", 125], [0, "end-group"],
]


def lines_of(root: ET.Element) -> list[list[float]]:
    return [[float(el.get(k, "nan")) for k in ("x1", "y1", "x2", "y2")] for el in root.iter(f"{SVG}line")]


@pytest.mark.kernel
async def test_runner_notebook_in_a_kernel_gives_the_runners_commands_and_the_same_svg() -> None:
    from .helpers import run_cell_messages, running_kernel

    async with running_kernel("backend-python") as (_km, kc):
        reply, messages = await run_cell_messages(kc, TURTLE_CELL)
        assert reply["status"] == "ok", messages
        assert [kind for kind, _ in messages] == ["display_data"]
        turtle_display = messages[0][1]
        same(decode_commands(turtle_display["data"][DRAWING_MIME]), TURTLE_COMMANDS)
        root = parse(turtle_display["data"]["image/svg+xml"])
        same(lines_of(root), [[100, 100, 200, 100], [200, 100, 200, 200], [200, 200, 100, 200], [100, 200, 100, 100]])
        for line in root.iter(f"{SVG}line"):
            assert (line.get("stroke"), line.get("stroke-opacity")) == ("#ff0000", "0.502")
        cursor = shapes_of(root)[-1]  # on top of its trail
        assert cursor.get("points") == "94,109 100,91 106,109" and cursor.get("fill") == "#ffc8c8"
        assert cursor.get("transform") == "rotate(90 100 100)"  # 90 + 4 x 90, wrapped as the frontend did

        reply, messages = await run_cell_messages(kc, SHAPES_CELL)
        assert reply["status"] == "ok", messages
        assert [kind for kind, _ in messages] == ["display_data"]
        data = messages[0][1]["data"]
        same(decode_commands(data[DRAWING_MIME]), SHAPES_COMMANDS)
        root = parse(data["image/svg+xml"])
        assert background_fill(root) == "#ffffff"
        rect, circle, triangle, line = shapes_of(root)
        assert [rect.get(k) for k in ("x", "y", "width", "height", "fill", "stroke", "transform")] == [
            "20", "30", "80", "40", "#808080", "#000000", "rotate(45 60 50)"]
        assert [circle.get(k) for k in ("cx", "cy", "r", "stroke", "fill", "fill-opacity")] == [
            "210", "100", "40", "#0000ff", "#00ff00", "0.502"]
        assert [triangle.get(k) for k in ("points", "fill", "fill-opacity")] == [
            "130,175 150,145 170,175", "#112233", "0.267"]
        assert lines_of(root) == [[10, 190, 280, 190]] and line.get("stroke") == "#00ff00"

        reply, messages = await run_cell_messages(kc, MORE_TURTLE_CELL)
        assert reply["status"] == "ok", messages
        assert [kind for kind, _ in messages] == ["stream", "update_display_data"]
        assert messages[0][1]["text"] == "(-50.00,25.00)\n"
        update = messages[1][1]
        assert update["transient"]["display_id"] == turtle_display["transient"]["display_id"]
        same(decode_commands(update["data"][DRAWING_MIME]), MORE_TURTLE_COMMANDS)
        root = parse(update["data"]["image/svg+xml"])  # the whole picture, not only the new part
        same(lines_of(root)[-1], [100, 100, 100, 50])
        assert len(lines_of(root)) == 5
        cursor = shapes_of(root)[-1]
        assert cursor.get("points") == "44,134 50,116 56,134" and cursor.get("transform") is None


@pytest.mark.kernel
async def test_the_agent_passes_the_runners_drawing_media_to_the_platform() -> None:
    """The platform's frontend draws the runner's media: the agent's console carries it, not the SVG."""
    from backend_kernel_provisioner.agent import AgentKernel

    async with await AgentKernel.start("python") as kernel:
        result = await kernel.execute("d1", "query", TURTLE_CELL, flush_timeout=60)
        assert result["status"] == "finished", result
        media = [item for kind, item in result["console"] if kind == "media"]
        assert [mime for mime, _ in media] == [DRAWING_MIME]
        same(decode_commands(media[0][1]), TURTLE_COMMANDS)
