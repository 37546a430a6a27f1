"""The canvas: records the runner's drawing commands and shows them in both media.

Every call records a command (``(canvas_id, name, *arguments)``, the runner's
format). ``update()`` shows one display with

* ``application/x-sorna-drawing``: the commands recorded since the last
  update, which the platform's frontend (written for the runner) applies to
  the picture it already has, animating them;
* ``image/svg+xml``: the whole picture so far, which JupyterLab and static
  exports draw with no extension;
* ``text/plain``: a one-line summary.

The first ``update()`` makes a display; later ones update that same display
(one ``display_id``), as the runner's frontend drew every update of a canvas
into the one picture.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from backend_kernel_provisioner.drawing.color import Color, ColorLike, Colors, as_color
from backend_kernel_provisioner.drawing.encoding import DRAWING_MIME, Command, encode_commands
from backend_kernel_provisioner.drawing.scene import Scene
from backend_kernel_provisioner.drawing.shapes import Circle, DrawingObject, Line, Rectangle, Triangle
from backend_kernel_provisioner.drawing.svg import render
from backend_kernel_provisioner.drawing.turtle import Turtle

#: Canvas ids: a counter from 0 per process, as the runner's (frontends key their pictures by it).
_canvas_ids = itertools.count()

D = TypeVar("D", bound=DrawingObject)


class Canvas:
    """A ``width`` x ``height`` picture; (0, 0) is the top-left corner and y grows downwards."""

    def __init__(
        self,
        width: float = 400,
        height: float = 300,
        bgcolor: ColorLike = Colors.White,
        fgcolor: ColorLike = Colors.Black,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"canvas size must be positive, got {width} x {height}")
        self.id: int = next(_canvas_ids)
        self.width, self.height = width, height
        self.bgcolor: Color = as_color(bgcolor)
        self.fgcolor: Color = as_color(fgcolor)
        #: Default fill of the shapes drawn from now on (ours; the runner's was always transparent).
        self.fillcolor: Color = Colors.Transparent
        self.objects: list[DrawingObject] = []
        self.scene = Scene()
        self._pending: list[Command] = []
        self._object_ids = itertools.count()
        self._display: Any = None
        self.record((self.id, "canvas", width, height, self.bgcolor.to_hex(), self.fgcolor.to_hex()))

    def record(self, command: Command) -> None:
        """Keep ``command`` for the next update and apply it to the picture."""
        self._pending.append(command)
        self.scene.apply(command)

    @property
    def pending(self) -> list[Command]:
        """The commands the next ``update()`` sends (a copy)."""
        return list(self._pending)

    # -- canvas state (each records the runner's command) --------------------------------------------

    def stop_animation(self) -> None:
        """The frontend applies the following commands at once instead of animating them."""
        self.record((self.id, "stop-anim"))

    def resume_animation(self) -> None:
        self.record((self.id, "resume-anim"))

    def begin_group(self) -> None:
        """The frontend animates the following commands together (until ``end_group``)."""
        self.record((self.id, "begin-group"))

    def end_group(self) -> None:
        self.record((self.id, "end-group"))

    def begin_fill(self, color: ColorLike) -> None:
        self.record((self.id, "begin-fill", as_color(color).to_hex()))

    def end_fill(self) -> None:
        self.record((self.id, "end-fill"))

    def background_color(self, color: ColorLike) -> None:
        self.bgcolor = as_color(color)
        self.record((self.id, "bgcolor", self.bgcolor.to_hex()))

    def stroke_color(self, color: ColorLike) -> None:
        """The foreground: border and line colour of the objects drawn from now on."""
        self.fgcolor = as_color(color)
        self.record((self.id, "fgcolor", self.fgcolor.to_hex()))

    def fill_color(self, color: ColorLike) -> None:
        """Fill colour of the shapes drawn from now on (ours; records no command, the shapes carry it)."""
        self.fillcolor = as_color(color)

    # -- objects --------------------------------------------------------------------------------------

    def _add(self, handle_class: type[D], args: tuple[Any, ...]) -> D:
        object_id = next(self._object_ids)
        self.record((self.id, "obj", object_id, args))
        handle = handle_class(self, object_id, args)
        self.objects.append(handle)
        return handle

    def _area_args(
        self, kind: str, geometry: tuple[float, ...], border: ColorLike | None, fill: ColorLike | None, angle: float,
    ) -> tuple[Any, ...]:
        border_color = self.fgcolor if border is None else as_color(border)
        fill_color = self.fillcolor if fill is None else as_color(fill)
        return (kind, *geometry, border_color.to_hex(), fill_color.to_hex(), angle)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: ColorLike | None = None) -> Line:
        line_color = self.fgcolor if color is None else as_color(color)
        return self._add(Line, ("line", x0, y0, x1, y1, line_color.to_hex()))

    def circle(
        self, x: float, y: float, radius: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Circle:
        """Centred at (x, y)."""
        return self._add(Circle, self._area_args("circle", (x, y, radius), border, fill, angle))

    def rectangle(
        self, left: float, top: float, width: float, height: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Rectangle:
        """The runner's frontend centres the rectangle on (left, top); so does our SVG."""
        return self._add(Rectangle, self._area_args("rect", (left, top, width, height), border, fill, angle))

    def triangle(
        self, left: float, top: float, width: float, height: float,
        border: ColorLike | None = None, fill: ColorLike | None = None, angle: float = 0,
    ) -> Triangle:
        """Apex up, centred on (left, top) like ``rectangle``."""
        return self._add(Triangle, self._area_args("triangle", (left, top, width, height), border, fill, angle))

    def create_turtle(self) -> Turtle:
        return Turtle(self)

    # -- output ---------------------------------------------------------------------------------------

    def to_svg(self) -> str:
        """The whole picture so far as SVG text."""
        return render(self.scene, self.id)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def __repr__(self) -> str:
        return f"<Canvas {self.id}: {self.width}x{self.height}, {len(self.objects)} objects>"

    def mimebundle(self, commands: list[Command]) -> dict[str, str]:
        """What one update shows: ``commands`` in the runner's media, the whole picture as SVG, a summary."""
        return {DRAWING_MIME: encode_commands(commands), "image/svg+xml": self.to_svg(), "text/plain": repr(self)}

    def update(self) -> None:
        """Show the commands recorded since the last update, then forget them (the runner's ``update``)."""
        from IPython.display import display  # only where it is shown: the module imports without IPython

        bundle = self.mimebundle(self._pending)
        self._pending = []
        if self._display is None:
            self._display = display(bundle, raw=True, display_id=True)
        else:
            self._display.update(bundle, raw=True)

    def show(self) -> None:
        """Alias of ``update()``, as in the runner."""
        self.update()

    @property
    def display_id(self) -> str | None:
        """The notebook display this canvas updates (after the first ``update()``)."""
        return None if self._display is None else self._display.display_id
