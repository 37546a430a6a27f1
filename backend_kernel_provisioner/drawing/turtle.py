"""Turtle graphics as the runner had them: a cursor triangle, a red trail, positions relative to the start.

The turtle starts at the canvas centre heading right. Its internal angle is
measured clockwise from "up" (90 = right), so a move of ``d`` is
``(sin a * d, -cos a * d)`` on the canvas, whose y grows downwards. Each move
is one animation group for the frontend: the trail line, then the cursor's
new x and y. The arithmetic is the runner's, so the recorded coordinates are
the same floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backend_kernel_provisioner.drawing.color import Color, ColorLike, Colors, as_color
from backend_kernel_provisioner.drawing.shapes import Line

if TYPE_CHECKING:  # the canvas makes turtles: a run-time import would be a cycle
    from backend_kernel_provisioner.drawing.canvas import Canvas

#: The cursor's fill and the trail's colour, the runner's.
CURSOR_FILL = Color(255, 200, 200, 255)
TRAIL_COLOR = Color(255, 0, 0, 128)
CURSOR_WIDTH, CURSOR_HEIGHT = 12, 18


class Vec2D(tuple):
    """A position: a 2-tuple with vector arithmetic, printed ``(x.xx,y.yy)`` (as the stdlib turtle's)."""

    def __new__(cls, x: float, y: float) -> Vec2D:
        return tuple.__new__(cls, (x, y))

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]

    def __add__(self, other: Sequence[float]) -> Vec2D:  # type: ignore[override]
        return Vec2D(self[0] + other[0], self[1] + other[1])

    def __sub__(self, other: Sequence[float]) -> Vec2D:
        return Vec2D(self[0] - other[0], self[1] - other[1])

    def __mul__(self, other: object) -> Vec2D | float:  # type: ignore[override]
        """A dot product with another vector, else scaling by a number."""
        if isinstance(other, Vec2D):
            return self[0] * other[0] + self[1] * other[1]
        if isinstance(other, (int, float)):
            return Vec2D(self[0] * other, self[1] * other)
        return NotImplemented

    def __rmul__(self, other: object) -> Vec2D:
        if isinstance(other, (int, float)):
            return Vec2D(self[0] * other, self[1] * other)
        return NotImplemented

    def __neg__(self) -> Vec2D:
        return Vec2D(-self[0], -self[1])

    def __abs__(self) -> float:
        return math.hypot(self[0], self[1])

    def rotate(self, angle: float) -> Vec2D:
        """This vector turned counter-clockwise by ``angle`` degrees."""
        radians = math.radians(angle)
        c, s = math.cos(radians), math.sin(radians)
        return Vec2D(self[0] * c - self[1] * s, self[1] * c + self[0] * s)

    def __getnewargs__(self) -> tuple[float, float]:
        return self[0], self[1]

    def __repr__(self) -> str:
        return f"({self[0]:.2f},{self[1]:.2f})"


class Turtle:
    """A turtle on ``canvas``; ``canvas.create_turtle()`` makes one too."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.pen = True
        #: Degrees clockwise from up: 90 is heading right.
        self.angle: float = 90
        #: Every point visited, in canvas coordinates; the first is the start.
        self.points: list[tuple[float, float]] = [(canvas.width / 2, canvas.height / 2)]
        #: The trail's colour (ours: ``pencolor``; the runner's was always TRAIL_COLOR).
        self.color: Color = TRAIL_COLOR
        start_x, start_y = self.points[0]
        self.cursor = canvas.triangle(
            start_x, start_y, CURSOR_WIDTH, CURSOR_HEIGHT, border=Colors.Red, fill=CURSOR_FILL, angle=90,
        )

    def _move_to(self, x: float, y: float) -> Line | None:
        """One animation group: the trail (pen down), then the cursor's new place."""
        last_x, last_y = self.points[-1]
        self.canvas.begin_group()
        line = self.canvas.line(last_x, last_y, x, y, color=self.color) if self.pen else None
        self.cursor.set_x(x)
        self.cursor.set_y(y)
        self.canvas.end_group()
        self.points.append((x, y))
        return line

    def forward(self, distance: float) -> Line | None:
        x, y = self.points[-1]
        radians = math.radians(self.angle)
        return self._move_to(x + math.sin(radians) * distance, y + -math.cos(radians) * distance)

    def backward(self, distance: float) -> Line | None:
        """Ours: ``forward(-distance)``."""
        return self.forward(-distance)

    def left(self, degrees: float) -> None:
        self.cursor.rotate(-degrees)
        self.angle -= degrees

    def right(self, degrees: float) -> None:
        self.cursor.rotate(degrees)
        self.angle += degrees

    def penup(self) -> None:
        self.pen = False

    def pendown(self) -> None:
        self.pen = True

    def pencolor(self, color: ColorLike) -> None:
        """Ours: the colour of the trail drawn from now on."""
        self.color = as_color(color)

    def pos(self) -> Vec2D:
        """The position relative to the start point (the canvas centre)."""
        (start_x, start_y), (x, y) = self.points[0], self.points[-1]
        return Vec2D(x - start_x, y - start_y)

    def setpos(self, x: float | Sequence[float], y: float | None = None) -> Line | None:
        """Go to ``(x, y)`` (or ``setpos((x, y))``) relative to the start point, drawing like ``forward``."""
        if y is None and isinstance(x, Sequence):
            to_x, to_y = x[0], x[1]
        elif y is not None and not isinstance(x, Sequence):
            to_x, to_y = x, y
        else:
            raise TypeError("setpos() takes x and y, or one (x, y) pair")
        start_x, start_y = self.points[0]
        return self._move_to(to_x + start_x, to_y + start_y)
