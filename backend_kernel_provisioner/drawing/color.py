"""Colours as the drawing commands carry them: RGBA bytes, written ``#rrggbbaa``.

The API is the runner's (``Color(red, green, blue, alpha=255)``, the
``from_*``/``to_*`` converters, the ``Colors`` enum) so that notebooks written
for it run unchanged; a few conveniences of ours (short hex forms, tuples and
strings wherever a colour is taken) only add to it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any


class Color:
    """An RGBA colour; each channel an int 0..255 (alpha 255 is opaque).

    A value object: equal colours compare and hash equal, whether made here
    or taken from :class:`Colors`.
    """

    def __init__(self, red: int, green: int, blue: int, alpha: int = 255) -> None:
        for name, value in (("red", red), ("green", green), ("blue", blue), ("alpha", alpha)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"Color.{name} must be an int in 0..255, got {value!r}")
        self.red = red
        self.green = green
        self.blue = blue
        self.alpha = alpha

    # -- constructors (static, as the runner's: ``Colors.from_rgba`` must build a plain Color) ----------

    @staticmethod
    def from_hex(value: str) -> Color:
        """``#rrggbbaa`` (the runner's form), also ``#rrggbb``, ``#rgb``, ``#rgba``; the ``#`` is optional."""
        digits = value.strip().lstrip("#")
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        if len(digits) not in (6, 8):
            raise ValueError(f"not a hex colour: {value!r} (want #rrggbbaa or #rrggbb)")
        try:
            channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        except ValueError:
            raise ValueError(f"not a hex colour: {value!r}") from None
        return Color(*channels)

    @staticmethod
    def from_rgba(value: Sequence[Any]) -> Color:
        """From ``[r, g, b, a]`` (the runner's form) or ``(r, g, b)``; an alpha given as a float 0..1 is scaled."""
        if len(value) not in (3, 4):
            raise ValueError(f"RGBA needs 3 or 4 channels, got {value!r}")
        red, green, blue = (int(c) for c in value[:3])
        alpha = value[3] if len(value) == 4 else 255
        if isinstance(alpha, float) and 0.0 <= alpha <= 1.0:
            alpha = round(alpha * 255)
        return Color(red, green, blue, int(alpha))

    @staticmethod
    def from_bytes(value: bytes) -> Color:
        """From 4 bytes ``r g b a`` (3 bytes mean opaque)."""
        if len(value) not in (3, 4):
            raise ValueError(f"colour bytes must be 3 or 4 long, got {len(value)}")
        return Color(*value)

    # -- conversions ----------------------------------------------------------------------------------

    def to_hex(self, include_alpha: bool = True) -> str:
        """``#rrggbbaa``, or ``#rrggbb`` with ``include_alpha=False``."""
        text = f"#{self.red:02x}{self.green:02x}{self.blue:02x}"
        return f"{text}{self.alpha:02x}" if include_alpha else text

    def to_bytes(self) -> bytes:
        return bytes((self.red, self.green, self.blue, self.alpha))

    def to_rgba(self) -> str:
        """``rgba(r,g,b,a)`` with every channel 0..255, alpha included, as the runner wrote it."""
        return f"rgba({self.red},{self.green},{self.blue},{self.alpha})"

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        return self.red, self.green, self.blue, self.alpha

    @property
    def opacity(self) -> float:
        """Alpha as 0..1 (SVG's ``*-opacity``)."""
        return self.alpha / 255

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Color) and self.rgba == other.rgba

    def __hash__(self) -> int:
        return hash(self.rgba)

    def __repr__(self) -> str:
        return f"Color({self.red}, {self.green}, {self.blue}, {self.alpha})"


class Colors(Color, enum.Enum):
    """Named colours, the runner's set: each member is a :class:`Color`."""

    Transparent = (255, 255, 255, 0)
    Black = (0, 0, 0, 255)
    Gray = (128, 128, 128, 255)
    White = (255, 255, 255, 255)
    Red = (255, 0, 0, 255)
    Green = (0, 255, 0, 255)
    Blue = (0, 0, 255, 255)
    Yellow = (255, 255, 0, 255)
    Magenta = (255, 0, 255, 255)
    Cyan = (0, 255, 255, 255)


ColorLike = Color | str | tuple | list | bytes


def as_color(value: ColorLike) -> Color:
    """Accept a Color, a hex string, an RGB(A) tuple or list, or RGBA bytes."""
    if isinstance(value, Color):
        return value
    if isinstance(value, str):
        return Color.from_hex(value)
    if isinstance(value, (bytes, bytearray)):
        return Color.from_bytes(bytes(value))
    if isinstance(value, (tuple, list)):
        return Color.from_rgba(value)
    raise TypeError(f"not a colour: {value!r} (use Color, '#rrggbbaa', (r, g, b[, a]) or bytes)")
