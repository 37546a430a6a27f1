"""Octave plots come back as image/png display_data (a real octave-cli session, gnuplot toolkit)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # starts backend-octave through running_kernel


async def test_plot_yields_a_png_display_per_figure() -> None:
    require_programs("octave-cli", "gnuplot")
    async with running_kernel("backend-octave") as (km, kc):
        one = await run_cell(kc, "plot(1:10)")
        assert one["reply"]["status"] == "ok", one
        assert one["stderr"] == ""
        images = [d["data"]["image/png"] for d in one["displays"] if "image/png" in d["data"]]
        assert len(images) == 1, one["displays"]
        picture = Image.open(io.BytesIO(base64.b64decode(images[0])))
        assert picture.format == "PNG" and picture.width > 100 and picture.height > 100
        low, high = picture.convert("L").getextrema()
        assert low < high, "the picture is not blank"

        two = await run_cell(kc, "figure; plot(1:3); figure; bar([1 2]);")
        assert len([d for d in two["displays"] if "image/png" in d["data"]]) == 2

        none = await run_cell(kc, "x = 3;")
        assert none["displays"] == [], "figures are closed after the cell that drew them"
