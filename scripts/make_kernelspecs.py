"""Regenerate kernelspecs/backend-*/ (kernel.json and logos).

Run by developers after changing the table below; the folders it writes are
committed, so installing never needs Pillow. A test checks they match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "kernelspecs"

# language: (display name, jupyter language, logo text, logo colour, text colour)
TABLE: dict[str, tuple[str, str, str, str, str]] = {
    "python": ("Python 3 (backend)", "python", "Py", "#3776ab", "#ffd43b"),
    "c": ("C (backend)", "c", "C", "#283593", "#ffffff"),
    "cpp": ("C++ (backend)", "c++", "C++", "#00599c", "#ffffff"),
    "go": ("Go (backend)", "go", "Go", "#00add8", "#ffffff"),
    "rust": ("Rust (backend)", "rust", "Rs", "#b7410e", "#ffffff"),
    "java": ("Java (backend)", "java", "Jv", "#e76f00", "#ffffff"),
    "nodejs": ("Node.js (backend)", "javascript", "JS", "#f7df1e", "#000000"),
    "lua": ("Lua (backend)", "lua", "Lua", "#000080", "#ffffff"),
    "php": ("PHP (backend)", "php", "php", "#777bb4", "#ffffff"),
    "haskell": ("Haskell (backend)", "haskell", "λ", "#5e5086", "#ffffff"),
    "julia": ("Julia (backend)", "julia", "jl", "#9558b2", "#ffffff"),
    "r": ("R (backend)", "R", "R", "#276dc3", "#ffffff"),
    "octave": ("Octave (backend)", "octave", "Oct", "#0790c0", "#ffffff"),
    "scheme": ("Scheme (backend)", "scheme", "scm", "#7b1fa2", "#ffffff"),
    "shell": ("Shell (backend)", "bash", "$_", "#2e3436", "#8ae234"),
    "app": ("App services (backend)", "text", "App", "#455a64", "#ffffff"),
    "speech": ("Speech (backend)", "speech", "TTS", "#ff9900", "#232f3e"),
    "rserver": ("R Server (backend)", "R", "RS", "#1a5f9e", "#ffffff"),
}


def kernel_json(language: str) -> dict:
    display, jlang, *_ = TABLE[language]
    if language == "python":
        argv = ["python", "-m", "backend_kernel_provisioner.python_kernel", "-f", "{connection_file}"]
    else:
        argv = ["python", "-m", "backend_kernel_provisioner.kernels", language, "-f", "{connection_file}"]
    return {
        "argv": argv,
        "display_name": display,
        "language": jlang,
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "debugger": False,
            "kernel_provisioner": {
                "provisioner_name": "backend-kernel-provisioner",
                "config": {"language": language},
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
    for language, (_, _, text, bg, fg) in TABLE.items():
        folder = SPECS / f"backend-{language}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(kernel_json(language), indent=2) + "\n")
        (folder / "logo-svg.svg").write_text(logo_svg(text, bg, fg))
        for px in (32, 64):
            logo_png(text, bg, fg, px, folder / f"logo-{px}x{px}.png")
    print(f"wrote {len(TABLE)} kernelspecs under {SPECS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
