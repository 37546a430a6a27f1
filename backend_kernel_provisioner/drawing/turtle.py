"""Turtle graphics on a canvas: each move with the pen down draws a line."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from backend_kernel_provisioner.drawing.color import Color, ColorLike, Colors, as_color
from backend_kernel_provisioner.drawing.shapes import Line, Triangle, next_id

if TYPE_CHECKING:  # the canvas makes turtles: a run-time import would be a cycle
    from backend_kernel_provisioner.drawing.canvas import Canvas


class Turtle:
    """Starts in the middle of the canvas facing up; angles in degrees, ``left`` turns counter-clockwise."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.x, self.y = canvas.width / 2, canvas.height / 2
        self.heading = 90.0
        self.pen_is_down = True
        self.visible = True
        self.color: Color | None = None
        self.id = next_id()
        canvas.turtles.append(self)

    def pos(self) -> tuple[float, float]:
        return self.x, self.y

    def pencolor(self, color: ColorLike) -> None:
        self.color = as_color(color)

    def penup(self) -> None:
        self.pen_is_down = False

    def pendown(self) -> None:
        self.pen_is_down = True

    def hide(self) -> None:
        self.visible = False

    def show(self) -> None:
        self.visible = True

    def left(self, degrees: float) -> None:
        self.heading = (self.heading + degrees) % 360

    def right(self, degrees: float) -> None:
        self.left(-degrees)

    def _move_to(self, x: float, y: float) -> Line | None:
        line = None
        if self.pen_is_down:
            line = self.canvas.line(self.x, self.y, x, y, color=self.color)
        self.x, self.y = x, y
        return line

    def forward(self, distance: float) -> Line | None:
        """Move along the heading (screen y grows downwards, so up is -y)."""
        radians = math.radians(self.heading)
        x = round(self.x + distance * math.cos(radians), 9)
        y = round(self.y - distance * math.sin(radians), 9)
        return self._move_to(x, y)

    def backward(self, distance: float) -> Line | None:
        return self.forward(-distance)

    def setpos(self, x: float, y: float) -> Line | None:
        """Go to ``(x, y)``, drawing a line when the pen is down."""
        return self._move_to(x, y)

    def marker(self) -> Triangle:
        """The cursor drawn on top of the picture, pointing along the heading."""
        size = 10
        return Triangle(
            self.x - size / 2, self.y - size / 2, size, size,
            border=Colors.Black, fill=self.color or self.canvas.fgcolor, angle=90 - self.heading, id=self.id,
        )
