"""Render a canvas's picture as an SVG document (what JupyterLab shows).

SVG is plain markup every Jupyter front end and static export renders, so no
custom widget or front-end extension is needed next to the runner's media.
Geometry follows the runner's frontend: rectangles and triangles are centred
on their (left, top) arguments, every stroke is 2 px wide, angles turn
clockwise around the object's centre (a line's: its midpoint).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from backend_kernel_provisioner.drawing.color import Color
from backend_kernel_provisioner.drawing.scene import Scene, SceneObject

SVG_NS = "http://www.w3.org/2000/svg"
STROKE_WIDTH = "2"


def _num(value: float) -> str:
    """Compact numbers: 10 not 10.0, rounded to 1/1000 to hide float noise."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _paint(element: ET.Element, attribute: str, color: Color) -> None:
    if color.alpha == 0:
        element.set(attribute, "none")
        return
    element.set(attribute, color.to_hex(include_alpha=False))
    if color.alpha != 255:
        element.set(f"{attribute}-opacity", _num(color.opacity))


def _rotate(element: ET.Element, angle: float, cx: float, cy: float) -> None:
    if angle % 360:
        element.set("transform", f"rotate({_num(angle)} {_num(cx)} {_num(cy)})")


def _line(obj: SceneObject) -> ET.Element:
    x1, y1, x2, y2 = (obj.number(k) for k in ("x1", "y1", "x2", "y2"))
    element = ET.Element("line", x1=_num(x1), y1=_num(y1), x2=_num(x2), y2=_num(y2))
    _paint(element, "stroke", obj.color("color"))
    element.set("stroke-width", STROKE_WIDTH)
    _rotate(element, obj.number("angle"), (x1 + x2) / 2, (y1 + y2) / 2)
    return element


def _area(obj: SceneObject) -> ET.Element:
    x, y = obj.number("x"), obj.number("y")
    if obj.kind == "circle":
        element = ET.Element("circle", cx=_num(x), cy=_num(y), r=_num(abs(obj.number("radius"))))
    else:
        width, height = obj.number("width"), obj.number("height")
        left, top = x - width / 2, y - height / 2
        if obj.kind == "rect":
            element = ET.Element("rect", x=_num(left), y=_num(top), width=_num(width), height=_num(height))
        else:  # triangle: apex at the top middle, base at the bottom
            corners = [(left, top + height), (x, top), (left + width, top + height)]
            element = ET.Element("polygon", points=" ".join(f"{_num(px)},{_num(py)}" for px, py in corners))
    _paint(element, "stroke", obj.color("border"))
    _paint(element, "fill", obj.color("fill"))
    element.set("stroke-width", STROKE_WIDTH)
    _rotate(element, obj.number("angle"), x, y)
    return element


def render(scene: Scene, canvas_id: int) -> str:
    """The picture (background, then the objects bottom to top) as a standalone SVG string."""
    root = ET.Element(
        "svg",
        xmlns=SVG_NS,
        width=_num(scene.width),
        height=_num(scene.height),
        viewBox=f"0 0 {_num(scene.width)} {_num(scene.height)}",
    )
    root.set("id", f"canvas{canvas_id}")
    background = ET.SubElement(root, "rect", x="0", y="0", width="100%", height="100%")
    background.set("class", "background")
    _paint(background, "fill", scene.background)
    for obj in scene.stacked():
        element = _line(obj) if obj.kind == "line" else _area(obj)
        element.set("id", f"canvas{canvas_id}-obj{obj.id}")
        element.set("class", obj.kind)
        root.append(element)
    return ET.tostring(root, encoding="unicode")
