"""Drawing for Python notebooks: canvas shapes and turtle graphics shown as SVG.

The runner shipped a drawing library whose commands its own web UI drew;
here the same API renders to an SVG ``display_data`` that JupyterLab,
nbclient and static exports all show::

    from backend_kernel_provisioner.drawing import Canvas, Colors
    canvas = Canvas(200, 200)
    t = canvas.create_turtle()
    for _ in range(4):
        t.forward(50); t.left(90)
    canvas.show()
"""

from backend_kernel_provisioner.drawing.canvas import Canvas
from backend_kernel_provisioner.drawing.color import Color, Colors
from backend_kernel_provisioner.drawing.shapes import Circle, Group, Line, Rectangle, Shape, Triangle
from backend_kernel_provisioner.drawing.turtle import Turtle

__all__ = ["Canvas", "Circle", "Color", "Colors", "Group", "Line", "Rectangle", "Shape", "Triangle", "Turtle"]
