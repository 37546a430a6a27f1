"""Render a canvas as an SVG document (the display the notebook shows).

SVG is plain markup every Jupyter front end and static export renders, so
no custom widget or front-end extension is needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from backend_kernel_provisioner.drawing.color import Color
from backend_kernel_provisioner.drawing.shapes import Circle, Group, Line, Rectangle, Shape, Triangle

if TYPE_CHECKING:
    from backend_kernel_provisioner.drawing.canvas import Canvas

SVG_NS = "http://www.w3.org/2000/svg"


def _num(value: float) -> str:
    """Compact numbers: 10 not 10.0, rounded to 1/1000 to hide float noise."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _paint(element: ET.Element, attribute: str, color: Color) -> None:
    if color.alpha == 0:
        element.set(attribute, "none")
        return
    element.set(attribute, color.rgb_hex)
    if color.alpha != 255:
        element.set(f"{attribute}-opacity", _num(color.opacity))


def _rotate(element: ET.Element, shape: Shape) -> None:
    if shape.angle:
        cx, cy = shape.center()
        element.set("transform", f"rotate({_num(shape.angle)} {_num(cx)} {_num(cy)})")


def _element(shape: Shape) -> ET.Element:
    if isinstance(shape, Line):
        x1, y1 = shape.end
        element = ET.Element(
            "line", x1=_num(shape.x), y1=_num(shape.y), x2=_num(x1), y2=_num(y1)
        )
        _paint(element, "stroke", shape.border)
        element.set("stroke-linecap", "round")
    elif isinstance(shape, Rectangle):
        left, top, right, bottom = shape.bounds()
        element = ET.Element(
            "rect", x=_num(left), y=_num(top), width=_num(right - left), height=_num(bottom - top)
        )
    elif isinstance(shape, Triangle):
        points = " ".join(f"{_num(px)},{_num(py)}" for px, py in shape.points())
        element = ET.Element("polygon", points=points)
    elif isinstance(shape, Circle):
        if shape.width == shape.height:
            element = ET.Element("circle", cx=_num(shape.x), cy=_num(shape.y), r=_num(shape.radius))
        else:
            element = ET.Element(
                "ellipse", cx=_num(shape.x), cy=_num(shape.y),
                rx=_num(shape.width / 2), ry=_num(shape.height / 2),
            )
    elif isinstance(shape, Group):
        element = ET.Element("g")
        transforms = []
        if shape.angle:
            cx, cy = shape.center()
            transforms.append(f"rotate({_num(shape.angle)} {_num(cx)} {_num(cy)})")
        if shape.x or shape.y:
            transforms.append(f"translate({_num(shape.x)} {_num(shape.y)})")
        if transforms:
            element.set("transform", " ".join(transforms))
        element.extend(_element(child) for child in shape.children)
        element.set("id", f"obj{shape.id}")
        return element
    else:
        raise TypeError(f"cannot render {type(shape).__name__}")
    if not isinstance(shape, Line):
        _paint(element, "stroke", shape.border)
        _paint(element, "fill", shape.fill)
    _rotate(element, shape)
    element.set("id", f"obj{shape.id}")
    return element


def render(canvas: Canvas) -> str:
    """The canvas (background, objects, turtles) as a standalone SVG string."""
    root = ET.Element(
        "svg",
        xmlns=SVG_NS,
        width=_num(canvas.width),
        height=_num(canvas.height),
        viewBox=f"0 0 {_num(canvas.width)} {_num(canvas.height)}",
    )
    background = ET.SubElement(root, "rect", x="0", y="0", width="100%", height="100%")
    background.set("class", "background")
    _paint(background, "fill", canvas.bgcolor)
    root.extend(_element(shape) for shape in canvas.objects)
    for turtle in canvas.turtles:
        if turtle.visible:
            marker = _element(turtle.marker())
            marker.set("class", "turtle")
            root.append(marker)
    return ET.tostring(root, encoding="unicode")
