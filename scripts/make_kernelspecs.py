"""Regenerate kernelspecs/backend-*/ (kernel.json and logos).

Run by developers after changing the language table
(``backend_kernel_provisioner/common/languages.py``); the folders it writes are
committed, so installing never needs Pillow. A test checks they match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from backend_kernel_provisioner import PROVISIONER_NAME
from backend_kernel_provisioner.common.languages import LANGUAGES, LanguageSpec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "kernelspecs"

def kernel_json(spec: LanguageSpec) -> dict:
    return {
        "argv": spec.argv,
        "display_name": spec.display_name,
        "language": spec.jupyter_language,
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "debugger": False,
            "kernel_provisioner": {
                "provisioner_name": PROVISIONER_NAME,
                "config": {"language": spec.key},
            },
        },
    }


def logo_svg(text: str, bg: str, fg: str) -> str:
    size = 64 if len(text) < 3 else 48 if len(text) == 3 else 40
    size = size * 0.6
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" rx="10" fill="{bg}"/>'
        f'<text x="32" y="33" font-family="DejaVu Sans, Arial, sans-serif" font-weight="bold" '
        f'font-size="{size:.0f}" fill="{fg}" text-anchor="middle" dominant-baseline="central">'
        f"{text}</text></svg>\n"
    )


def logo_png(text: str, bg: str, fg: str, px: int, path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    scale = 4
    big = px * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle([0, 0, big - 1, big - 1], radius=big // 6, fill=bg)
    font_size = int(big * (0.6 if len(text) < 3 else 0.45 if len(text) == 3 else 0.38))
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", font_size)
    except OSError:
        font = ImageFont.load_default(size=font_size)
    draw.text((big / 2, big / 2), text, fill=fg, font=font, anchor="mm")
    img.resize((px, px), Image.LANCZOS).save(path)


def main() -> int:
    for spec in LANGUAGES.values():
        folder = SPECS / spec.spec_name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(kernel_json(spec), indent=2) + "\n")
        logo = spec.logo
        (folder / "logo-svg.svg").write_text(logo_svg(logo.text, logo.background, logo.foreground))
        for px in (32, 64):
            logo_png(logo.text, logo.background, logo.foreground, px, folder / f"logo-{px}x{px}.png")
    print(f"wrote {len(LANGUAGES)} kernelspecs under {SPECS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
