"""Drawn objects: geometry and colours that stay editable after drawing.

Every shape keeps an anchor (``x``, ``y``), a size (``width``, ``height``),
a rotation ``angle`` in degrees (clockwise, around the shape's centre) and
its colours. The setters return the shape, so edits chain; the canvas shows
the new state the next time it is shown (the same notebook output updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from backend_kernel_provisioner.drawing.color import Color, ColorLike, Colors, as_color

_ids = count(1)


def next_id() -> int:
    """A fresh object id (the SVG element id is ``obj<id>``)."""
    return next(_ids)


@dataclass(eq=False)
class Shape:
    """Common state and setters of every drawn object."""

    x: float
    y: float
    width: float
    height: float
    border: Color = Colors.Black
    fill: Color = Colors.Transparent
    angle: float = 0.0
    id: int = field(default_factory=next_id)

    kind = "shape"

    def set_x(self, x: float) -> Shape:
        self.x = x
        return self

    def set_y(self, y: float) -> Shape:
        self.y = y
        return self

    def set_pos(self, x: float, y: float) -> Shape:
        self.x, self.y = x, y
        return self

    def set_size(self, width: float, height: float) -> Shape:
        self.width, self.height = width, height
        return self

    def set_angle(self, angle: float) -> Shape:
        self.angle = angle
        return self

    def set_border(self, color: ColorLike) -> Shape:
        self.border = as_color(color)
        return self

    def set_fill(self, color: ColorLike) -> Shape:
        self.fill = as_color(color)
        return self

    def center(self) -> tuple[float, float]:
        """The rotation centre."""
        return self.x + self.width / 2, self.y + self.height / 2

    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, top, right, bottom)`` before rotation."""
        xs, ys = (self.x, self.x + self.width), (self.y, self.y + self.height)
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(eq=False)
class Line(Shape):
    """From ``(x, y)`` to ``(x + width, y + height)``; ``border`` is the stroke."""

    kind = "line"

    @property
    def end(self) -> tuple[float, float]:
        return self.x + self.width, self.y + self.height

    def set_end(self, x: float, y: float) -> Line:
        self.width, self.height = x - self.x, y - self.y
        return self


@dataclass(eq=False)
class Rectangle(Shape):
    """Axis-aligned box at ``(x, y)`` (top-left), rotated by ``angle`` around its centre."""

    kind = "rectangle"


@dataclass(eq=False)
class Triangle(Shape):
    """Isosceles triangle in the box at ``(x, y)``: apex at the top middle."""

    kind = "triangle"

    def points(self) -> list[tuple[float, float]]:
        return [
            (self.x + self.width / 2, self.y),
            (self.x + self.width, self.y + self.height),
            (self.x, self.y + self.height),
        ]


@dataclass(eq=False)
class Circle(Shape):
    """Centred at ``(x, y)``; ``width``/``height`` are the diameters (equal for a circle)."""

    kind = "circle"

    @property
    def radius(self) -> float:
        return self.width / 2

    def set_radius(self, radius: float) -> Circle:
        self.width = self.height = 2 * radius
        return self

    def center(self) -> tuple[float, float]:
        return self.x, self.y

    def bounds(self) -> tuple[float, float, float, float]:
        return self.x - self.width / 2, self.y - self.height / 2, self.x + self.width / 2, self.y + self.height / 2


@dataclass(eq=False)
class Group(Shape):
    """Objects moved and rotated together: ``(x, y)`` offsets them, ``angle`` turns them."""

    kind = "group"
    children: list[Shape] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        if not self.children:
            return self.x, self.y, self.x, self.y
        boxes = [child.bounds() for child in self.children]
        return (
            self.x + min(b[0] for b in boxes),
            self.y + min(b[1] for b in boxes),
            self.x + max(b[2] for b in boxes),
            self.y + max(b[3] for b in boxes),
        )

    def center(self) -> tuple[float, float]:
        left, top, right, bottom = self.bounds()
        return (left + right) / 2, (top + bottom) / 2
