"""Colours as the drawing commands carry them: RGBA bytes, with hex and tuple forms."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Color:
    """An RGBA colour; each channel 0..255 (alpha 255 is opaque)."""

    red: int
    green: int
    blue: int
    alpha: int = 255

    def __post_init__(self) -> None:
        for name in ("red", "green", "blue", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"Color.{name} must be an int in 0..255, got {value!r}")

    # -- constructors -------------------------------------------------------------

    @classmethod
    def from_hex(cls, value: str) -> Color:
        """``#rgb``, ``#rrggbb`` or ``#rrggbbaa`` (the ``#`` is optional)."""
        digits = value.strip().lstrip("#")
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        if len(digits) not in (6, 8):
            raise ValueError(f"not a hex colour: {value!r} (want #rrggbb or #rrggbbaa)")
        try:
            channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        except ValueError:
            raise ValueError(f"not a hex colour: {value!r}") from None
        return cls(*channels)

    @classmethod
    def from_rgba(cls, rgba: tuple) -> Color:
        """From ``(r, g, b)`` or ``(r, g, b, a)``; ints 0..255 (alpha may be a float 0..1)."""
        if len(rgba) not in (3, 4):
            raise ValueError(f"RGBA needs 3 or 4 channels, got {rgba!r}")
        red, green, blue = (int(c) for c in rgba[:3])
        alpha = rgba[3] if len(rgba) == 4 else 255
        if isinstance(alpha, float) and 0.0 <= alpha <= 1.0:
            alpha = round(alpha * 255)
        return cls(red, green, blue, int(alpha))

    @classmethod
    def from_bytes(cls, data: bytes) -> Color:
        """From 4 bytes ``r g b a`` (3 bytes mean opaque)."""
        if len(data) not in (3, 4):
            raise ValueError(f"colour bytes must be 3 or 4 long, got {len(data)}")
        return cls(*data)

    # -- conversions --------------------------------------------------------------

    def to_hex(self) -> str:
        """``#rrggbbaa``."""
        return f"#{self.red:02x}{self.green:02x}{self.blue:02x}{self.alpha:02x}"

    def to_rgba(self) -> str:
        """CSS ``rgba(r,g,b,a)`` with alpha as 0..1."""
        return f"rgba({self.red},{self.green},{self.blue},{self.alpha / 255:.3g})"

    def to_bytes(self) -> bytes:
        return bytes((self.red, self.green, self.blue, self.alpha))

    @property
    def rgb_hex(self) -> str:
        """``#rrggbb`` (SVG paint, alpha goes into an opacity attribute)."""
        return self.to_hex()[:7]

    @property
    def opacity(self) -> float:
        return self.alpha / 255


ColorLike = Color | str | tuple | bytes


def as_color(value: ColorLike) -> Color:
    """Accept a Color, a hex string, an RGB(A) tuple or RGBA bytes."""
    if isinstance(value, Color):
        return value
    if isinstance(value, str):
        return Color.from_hex(value)
    if isinstance(value, (bytes, bytearray)):
        return Color.from_bytes(bytes(value))
    if isinstance(value, (tuple, list)):
        return Color.from_rgba(tuple(value))
    raise TypeError(f"not a colour: {value!r} (use Color, '#rrggbb', (r, g, b[, a]) or bytes)")


class Colors:
    """Named colours, as the runner's drawing module had them."""

    Transparent = Color(255, 255, 255, 0)
    Black = Color(0, 0, 0)
    Gray = Color(128, 128, 128)
    White = Color(255, 255, 255)
    Red = Color(255, 0, 0)
    Green = Color(0, 255, 0)
    Blue = Color(0, 0, 255)
    Yellow = Color(255, 255, 0)
    Magenta = Color(255, 0, 255)
    Cyan = Color(0, 255, 255)
