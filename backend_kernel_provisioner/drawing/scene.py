"""The picture a canvas's commands make: what the runner's frontend ends up showing.

The SVG we show next to the runner's media is rendered from this model, and
the model is built only from the recorded commands, so both media always
describe the same picture. The frontend (fabric.js) placed every object by its
centre, stacked an object on top when an animation of it finished (so the
turtle's cursor stays above its trail) and wrapped angles into -360..360; the
model does the same. Its frontend drew nothing for ``begin-fill``/``end-fill``
and ``fgcolor`` (objects carry their colours), nor does the model; ``bgcolor``
changes the background here (the frontend ignored it, the call's intent is clear).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend_kernel_provisioner.drawing.color import Color, Colors
from backend_kernel_provisioner.drawing.encoding import Command

#: Property names of each kind's creation arguments (after the kind).
ARG_NAMES: dict[str, tuple[str, ...]] = {
    "line": ("x1", "y1", "x2", "y2", "color"),
    "circle": ("x", "y", "radius", "border", "fill", "angle"),
    "rect": ("x", "y", "width", "height", "border", "fill", "angle"),
    "triangle": ("x", "y", "width", "height", "border", "fill", "angle"),
}


@dataclass
class SceneObject:
    """One object's current properties (colours as the commands' hex text)."""

    id: int
    kind: str
    props: dict[str, Any]

    def number(self, name: str) -> float:
        value = self.props.get(name, 0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def color(self, name: str) -> Color:
        value = self.props.get(name)
        try:
            return Color.from_hex(value) if isinstance(value, str) else Colors.Transparent
        except ValueError:
            return Colors.Transparent


@dataclass
class Scene:
    """A canvas's state after every command applied so far."""

    width: float = 0
    height: float = 0
    background: Color = Colors.White
    foreground: Color = Colors.Black
    animate: bool = True
    objects: dict[int, SceneObject] = field(default_factory=dict)
    #: Object ids bottom to top.
    order: list[int] = field(default_factory=list)

    def stacked(self) -> list[SceneObject]:
        """The objects in drawing order (last on top)."""
        return [self.objects[object_id] for object_id in self.order]

    def _to_front(self, object_id: int) -> None:
        self.order.remove(object_id)
        self.order.append(object_id)

    def apply(self, command: Command) -> None:
        """Apply one command (its canvas id already matched); unknown commands change nothing."""
        name, args = command[1], command[2:]
        if name == "canvas":
            self.width, self.height = args[0], args[1]
            self.background, self.foreground = Color.from_hex(args[2]), Color.from_hex(args[3])
        elif name == "bgcolor":
            self.background = Color.from_hex(args[0])
        elif name == "fgcolor":
            self.foreground = Color.from_hex(args[0])
        elif name == "stop-anim":
            self.animate = False
        elif name == "resume-anim":
            self.animate = True
        elif name == "obj":
            self._create(args[0], tuple(args[1]))
        elif name == "update":
            self._update(args[0], args[1], args[2])

    def _create(self, object_id: int, args: tuple[Any, ...]) -> None:
        kind = args[0] if args else None
        if object_id in self.objects or kind not in ARG_NAMES:
            return  # as the frontend: an id is created once, unknown kinds are skipped
        props = dict(zip(ARG_NAMES[kind], args[1:], strict=False))
        props.setdefault("angle", 0)
        self.objects[object_id] = SceneObject(object_id, kind, props)
        self.order.append(object_id)

    def _update(self, object_id: int, prop: str, value: Any) -> None:
        obj = self.objects.get(object_id)
        if obj is None:
            return
        if prop == "rotate":
            angle = obj.number("angle") + float(value)
            if angle > 360:
                angle -= 360
            elif angle < -360:
                angle += 360
            obj.props["angle"] = angle
        else:
            obj.props[prop] = value
        if self.animate:
            self._to_front(object_id)
