"""Drawing for Python notebooks: the runner's ``Canvas``, ``Turtle``, ``Color`` and ``Colors``.

Calls record the runner's drawing commands; ``canvas.update()`` (or
``show()``) displays them as the runner's ``application/x-sorna-drawing``
media, for the platform's frontend, together with an SVG of the whole picture,
for JupyterLab and static exports::

    from backend_kernel_provisioner.drawing import Canvas, Colors
    canvas = Canvas(200, 200)
    t = canvas.create_turtle()
    for _ in range(4):
        t.forward(50)
        t.right(90)
    canvas.update()
"""

from backend_kernel_provisioner.drawing.canvas import Canvas
from backend_kernel_provisioner.drawing.color import Color, Colors
from backend_kernel_provisioner.drawing.encoding import DRAWING_MIME, decode_commands, encode_commands
from backend_kernel_provisioner.drawing.shapes import Circle, DrawingObject, Line, Rectangle, Shape, Triangle
from backend_kernel_provisioner.drawing.turtle import Turtle, Vec2D

__all__ = [
    "DRAWING_MIME",
    "Canvas",
    "Circle",
    "Color",
    "Colors",
    "DrawingObject",
    "Line",
    "Rectangle",
    "Shape",
    "Triangle",
    "Turtle",
    "Vec2D",
    "decode_commands",
    "encode_commands",
]
