"""The canvas: drawing state (colours, groups, fills) and showing it in the notebook."""

from __future__ import annotations

from typing import Any, TypeVar

from backend_kernel_provisioner.drawing.color import Color, ColorLike, Colors, as_color
from backend_kernel_provisioner.drawing.shapes import Circle, Group, Line, Rectangle, Shape, Triangle
from backend_kernel_provisioner.drawing.svg import render
from backend_kernel_provisioner.drawing.turtle import Turtle

S = TypeVar("S", bound=Shape)

class Canvas:
    """A drawing surface of ``width`` x ``height`` pixels; (0, 0) is the top-left corner.

    Drawing methods return the new object, which stays editable; ``show()``
    displays the SVG and, called again, updates that same output in place.
    """

    def __init__(
        self,
        width: float = 400,
        height: float = 300,
        bgcolor: ColorLike = Colors.White,
        fgcolor: ColorLike = Colors.Black,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"canvas size must be positive, got {width} x {height}")
        self.width, self.height = width, height
        self.bgcolor: Color = as_color(bgcolor)
        self.fgcolor: Color = as_color(fgcolor)
        self.fillcolor: Color = Colors.Transparent
        self.objects: list[Shape] = []
        self.turtles: list[Any] = []
        self._groups: list[Group] = []
        self._display: Any = None

    # -- state ------------------------------------------------------------------------

    def background_color(self, color: ColorLike) -> None:
        self.bgcolor = as_color(color)

    def stroke_color(self, color: ColorLike) -> None:
        """Border/line colour of the objects drawn from now on."""
        self.fgcolor = as_color(color)

    def fill_color(self, color: ColorLike) -> None:
        """Fill colour of the objects drawn from now on."""
        self.fillcolor = as_color(color)

    def begin_fill(self, color: ColorLike) -> None:
        self.fill_color(color)

    def end_fill(self) -> None:
        self.fillcolor = Colors.Transparent

    def begin_group(self) -> Group:
        """Collect the following objects into a group (until ``end_group``)."""
        group = Group(0, 0, 0, 0, border=self.fgcolor)
        self._add(group)
        self._groups.append(group)
        return group

    def end_group(self) -> Group:
        if not self._groups:
            raise RuntimeError("end_group() without a matching begin_group()")
        return self._groups.pop()

    def clear(self) -> None:
        """Remove every object (turtles keep their place)."""
        self.objects.clear()
        self._groups.clear()

    # -- drawing ----------------------------------------------------------------------

    def _add(self, shape: S) -> S:
        (self._groups[-1].children if self._groups else self.objects).append(shape)
        return shape

    def _colors(self, border: ColorLike | None, fill: ColorLike | None) -> dict[str, Any]:
        return {
            "border": self.fgcolor if border is None else as_color(border),
            "fill": self.fillcolor if fill is None else as_color(fill),
        }

    def line(self, x0: float, y0: float, x1: float, y1: float, color: ColorLike | None = None) -> Line:
        shape = Line(x0, y0, x1 - x0, y1 - y0, border=self.fgcolor if color is None else as_color(color))
        return self._add(shape)

    def circle(
        self, x: float, y: float, radius: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Circle:
        return self._add(Circle(x, y, 2 * radius, 2 * radius, angle=angle, **self._colors(border, fill)))

    def rectangle(
        self, left: float, top: float, width: float, height: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Rectangle:
        return self._add(Rectangle(left, top, width, height, angle=angle, **self._colors(border, fill)))

    def triangle(
        self, left: float, top: float, width: float, height: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Triangle:
        return self._add(Triangle(left, top, width, height, angle=angle, **self._colors(border, fill)))

    def create_turtle(self) -> Turtle:
        return Turtle(self)

    # -- output -----------------------------------------------------------------------

    def to_svg(self) -> str:
        return render(self)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _mimebundle(self) -> dict[str, str]:
        return {
            "image/svg+xml": self.to_svg(),
            "text/plain": f"<Canvas {self.width}x{self.height}, {len(self.objects)} objects>",
        }

    def show(self) -> None:
        """Display the drawing; later calls update the same output (one display id)."""
        from IPython.display import display

        if self._display is None:
            self._display = display(self._mimebundle(), raw=True, display_id=True)
        else:
            self._display.update(self._mimebundle(), raw=True)

    update = show

    @property
    def display_id(self) -> str | None:
        """The notebook display this canvas updates (after the first ``show()``)."""
        return None if self._display is None else self._display.display_id
