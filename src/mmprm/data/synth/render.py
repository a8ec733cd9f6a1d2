"""Drawing helpers shared by the families: a canvas in 112-pixel design units.

Text is drawn from a built-in 5x7 bitmap font instead of a system font, so the
PNGs are byte-identical on every machine and the digits stay thick and sharp
enough for a ViT with 14-pixel patches.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

DESIGN = 112  # families lay out their figures on a 112x112 grid; Canvas scales it

_GLYPHS = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "B": ["11110", "10001", "10001", "11110", "10001", "10001", "11110"],
    "C": ["01110", "10001", "10000", "10000", "10000", "10001", "01110"],
    "D": ["11110", "10001", "10001", "10001", "10001", "10001", "11110"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "F": ["11111", "10000", "10000", "11110", "10000", "10000", "10000"],
}

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)


class Canvas:
    """An RGB image of side `size` addressed in 112-unit design coordinates."""

    def __init__(self, size: int):
        self.size = size
        self.scale = size / DESIGN
        self.img = Image.new("RGB", (size, size), WHITE)
        self.draw = ImageDraw.Draw(self.img)
        self.dot = max(2, round(2 * self.scale))  # one font pixel, in image pixels

    def p(self, v: float) -> int:
        """A design coordinate as an image pixel."""
        return round(v * self.scale)

    def pts(self, points: list[tuple[float, float]]) -> list[tuple[int, int]]:
        return [(self.p(x), self.p(y)) for x, y in points]

    def width(self, w: float = 2) -> int:
        return max(1, self.p(w))

    def line(self, points: list[tuple[float, float]], w: float = 2, fill=BLACK) -> None:
        self.draw.line(self.pts(points), fill=fill, width=self.width(w))

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill=None, outline=BLACK, w: float = 2) -> None:
        self.draw.rectangle(
            [self.p(x0), self.p(y0), self.p(x1) - 1, self.p(y1) - 1],
            fill=fill, outline=outline, width=self.width(w) if outline is not None else 0,
        )

    def polygon(self, points: list[tuple[float, float]], fill=None, outline=BLACK, w: float = 2) -> None:
        self.draw.polygon(self.pts(points), fill=fill, outline=outline, width=self.width(w))

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill=None, outline=None, w: float = 2) -> None:
        self.draw.ellipse(
            [self.p(x0), self.p(y0), self.p(x1) - 1, self.p(y1) - 1],
            fill=fill, outline=outline, width=self.width(w),
        )

    def arc(self, cx: float, cy: float, r: float, start: float, end: float, w: float = 1.5) -> None:
        """An arc around (cx, cy); angles in degrees, clockwise from 3 o'clock as in PIL."""
        box = [self.p(cx - r), self.p(cy - r), self.p(cx + r), self.p(cy + r)]
        self.draw.arc(box, start, end, fill=BLACK, width=self.width(w))

    def text_size(self, text: str) -> tuple[float, float]:
        """Width and height of `text` in design units."""
        d = self.dot / self.scale
        return (6 * len(text) - 1) * d, 7 * d

    def text(self, cx: float, cy: float, text: str, fill=BLACK, degree: bool = False) -> None:
        """Draw `text` centred on (cx, cy), kept inside the image; `degree` adds a small °."""
        w, h = self.text_size(text)
        x0 = min(max(cx - w / 2, 1), DESIGN - w - (4 if degree else 1))
        y0 = min(max(cy - h / 2, 1), DESIGN - h - 1)
        px, py, d = self.p(x0), self.p(y0), self.dot
        for i, ch in enumerate(text):
            for row, bits in enumerate(_GLYPHS[ch]):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        x = px + (6 * i + col) * d
                        y = py + row * d
                        self.draw.rectangle([x, y, x + d - 1, y + d - 1], fill=fill)
        if degree:
            x = px + (6 * len(text)) * d
            self.draw.ellipse([x, py, x + 2 * d, py + 2 * d], outline=fill, width=max(1, d // 2))

    def save(self, path: Path) -> None:
        """Write a PNG; encoding to memory first keeps a killed run from leaving half a file."""
        buf = io.BytesIO()
        self.img.save(buf, format="PNG", optimize=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
