"""Handles of drawn objects: every change is recorded as an ``update`` command.

The runner's frontends keep the objects and apply the commands (animating
them), so a handle holds no geometry: ``set_x(5)`` records
``(canvas_id, "update", object_id, "x", 5)``. As in the runner, a setter that
does not apply to the object's kind (``set_x`` of a line, ``fill`` of a line)
records nothing, so notebooks written for it run the same. The setters return
the handle, so edits chain (the runner's returned ``None``; nobody relied on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend_kernel_provisioner.drawing.color import ColorLike, as_color

if TYPE_CHECKING:  # the canvas makes the handles: a run-time import would be a cycle
    from backend_kernel_provisioner.drawing.canvas import Canvas

#: Kinds with a position (``x``, ``y``), a border and a fill; lines have end points and one colour.
AREA_KINDS = ("rect", "circle", "triangle")


class DrawingObject:
    """One object on a canvas, as the runner's API returned it from ``line``, ``circle``, ..."""

    kind = ""

    def __init__(self, canvas: Canvas, object_id: int, args: tuple[Any, ...]) -> None:
        self.canvas = canvas
        self.id = object_id
        #: The object's creation arguments as recorded: ``("rect", left, top, width, height, ...)``.
        self.args = args

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} on canvas {self.canvas.id}>"

    def _update(self, prop: str, value: Any, kinds: tuple[str, ...] | None = None) -> DrawingObject:
        if kinds is None or self.kind in kinds:
            self.canvas.record((self.canvas.id, "update", self.id, prop, value))
        return self

    # -- the runner's setters -------------------------------------------------------------------------

    def set_x(self, x: float) -> DrawingObject:
        return self._update("x", x, AREA_KINDS)

    def set_y(self, y: float) -> DrawingObject:
        return self._update("y", y, AREA_KINDS)

    def set_x1(self, x: float) -> DrawingObject:
        return self._update("x1", x, ("line",))

    def set_y1(self, y: float) -> DrawingObject:
        return self._update("y1", y, ("line",))

    def set_x2(self, x: float) -> DrawingObject:
        return self._update("x2", x, ("line",))

    def set_y2(self, y: float) -> DrawingObject:
        return self._update("y2", y, ("line",))

    def set_radius(self, radius: float) -> DrawingObject:
        return self._update("radius", radius, ("circle",))

    def rotate(self, angle: float) -> DrawingObject:
        """Turn by ``angle`` degrees (clockwise) from the current angle."""
        return self._update("rotate", angle)

    def set_angle(self, angle: float) -> DrawingObject:
        """Set the angle (degrees, clockwise, around the object's centre)."""
        return self._update("angle", angle)

    def stroke(self, color: ColorLike) -> DrawingObject:
        """The line's colour (property ``color``) or the border of the others (property ``border``)."""
        prop = "color" if self.kind == "line" else "border"
        return self._update(prop, as_color(color).to_hex(), ("line", *AREA_KINDS))

    def fill(self, color: ColorLike) -> DrawingObject:
        return self._update("fill", as_color(color).to_hex(), AREA_KINDS)

    # -- conveniences of ours (each is the runner's commands) -----------------------------------------

    def set_pos(self, x: float, y: float) -> DrawingObject:
        """``set_x`` then ``set_y`` (lines: ``set_x1`` then ``set_y1``)."""
        if self.kind == "line":
            return self.set_x1(x).set_y1(y)
        return self.set_x(x).set_y(y)

    def set_border(self, color: ColorLike) -> DrawingObject:
        return self.stroke(color)

    def set_fill(self, color: ColorLike) -> DrawingObject:
        return self.fill(color)


class Line(DrawingObject):
    """``("line", x0, y0, x1, y1, color)``."""

    kind = "line"

    def set_end(self, x: float, y: float) -> DrawingObject:
        return self.set_x2(x).set_y2(y)


class Circle(DrawingObject):
    """``("circle", x, y, radius, border, fill, angle)``: centred at (x, y)."""

    kind = "circle"


class Rectangle(DrawingObject):
    """``("rect", left, top, width, height, border, fill, angle)``."""

    kind = "rect"


class Triangle(DrawingObject):
    """``("triangle", left, top, width, height, border, fill, angle)``: apex up before rotation."""

    kind = "triangle"


#: The name our API had for the common base.
Shape = DrawingObject
