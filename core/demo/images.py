"""Pictures for the demo project, drawn with Pillow when the demo is seeded.

Drawing them from code keeps binary files out of the repository and makes every seed
produce the same pictures. The flower item uses scikit-learn's bundled sample photo when
scikit-learn is installed (it comes with simalign) and a drawn flower otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import unicodedata
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

__all__ = ["DEMO_IMAGES", "render_demo_images"]

SIZE = (480, 320)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans when the system has it (it has accented letters), else Pillow's own font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _drawable(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
    """Pillow's built-in font has no accented letters: drop the accents rather than draw boxes."""
    if isinstance(font, ImageFont.FreeTypeFont) and "DejaVu" in (font.getname()[0] or ""):
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _caption(draw: ImageDraw.ImageDraw, text: str, fill: str = "#222222") -> None:
    font = _font(26)
    text = _drawable(text, font)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = (SIZE[0] - (right - left)) // 2
    draw.text((x, SIZE[1] - 44), text, fill=fill, font=font)


def _portrait(name: str, background: str, clothes: str) -> Callable[[], Image.Image]:
    def draw_it() -> Image.Image:
        img = Image.new("RGB", SIZE, background)
        d = ImageDraw.Draw(img)
        cx = SIZE[0] // 2
        d.ellipse((cx - 130, 170, cx + 130, 400), fill=clothes)  # shoulders
        d.ellipse((cx - 55, 50, cx + 55, 170), fill="#3b3b3b")  # head
        d.rectangle((0, SIZE[1] - 56, SIZE[0], SIZE[1]), fill="#ffffff")
        _caption(d, name)
        return img

    return draw_it


def _flag_italy() -> Image.Image:
    img = Image.new("RGB", SIZE, "#dddddd")
    d = ImageDraw.Draw(img)
    left, top, width, height = 60, 40, 360, 220
    for i, colour in enumerate(("#009246", "#ffffff", "#ce2b37")):
        d.rectangle((left + i * width // 3, top, left + (i + 1) * width // 3, top + height), fill=colour)
    d.rectangle((left, top, left + width, top + height), outline="#555555", width=2)
    d.line((left, top, left, SIZE[1] - 10), fill="#6b4f2a", width=6)  # pole
    return img


def _map_iceland() -> Image.Image:
    img = Image.new("RGB", SIZE, "#9cc9e8")
    d = ImageDraw.Draw(img)
    # A rough outline of the island: a wobbly ellipse with the Westfjords sticking out.
    cx, cy, rx, ry = 250, 150, 150, 85
    points = []
    for k in range(72):
        a = 2 * math.pi * k / 72
        wobble = 1 + 0.08 * math.sin(5 * a) + 0.05 * math.cos(11 * a)
        points.append((cx + rx * wobble * math.cos(a), cy + ry * wobble * math.sin(a)))
    d.polygon(points, fill="#c8d9a6", outline="#4d6b2f")
    d.polygon([(115, 120), (70, 80), (95, 70), (130, 95), (120, 60), (150, 90)], fill="#c8d9a6", outline="#4d6b2f")
    d.ellipse((268, 150, 300, 172), fill="#ffffff")  # glacier
    d.text((175, 20), "North Atlantic", fill="#1d4e75", font=_font(22))
    d.text((330, 270), "ICELAND", fill="#2f4a14", font=_font(22))
    return img


def _map_danube() -> Image.Image:
    img = Image.new("RGB", SIZE, "#eef0e2")
    d = ImageDraw.Draw(img)
    river = [(x, 110 + 40 * math.sin(x / 70) + 0.25 * x) for x in range(0, SIZE[0] + 1, 8)]
    d.line(river, fill="#3a7dc9", width=9)
    font = _font(20)
    for name, x in (("Vienna", 120), ("Bratislava", 230), ("Budapest", 390)):
        y = 110 + 40 * math.sin(x / 70) + 0.25 * x
        d.ellipse((x - 9, y - 30, x + 9, y - 12), fill="#b22222")
        d.text((x - 40, y - 60), name, fill="#222222", font=font)
    d.text((20, 280), "Danube", fill="#3a7dc9", font=_font(24))
    return img


def _building_guggenheim() -> Image.Image:
    img = Image.new("RGB", SIZE, "#bfe0f5")
    d = ImageDraw.Draw(img)
    d.rectangle((0, 250, SIZE[0], SIZE[1]), fill="#6f8fa6")  # river
    for i, (x0, y0, x1, y1) in enumerate(((60, 120, 220, 250), (150, 80, 300, 250), (250, 110, 420, 250), (330, 150, 460, 250))):
        shade = 200 - 25 * i
        d.pieslice((x0, y0, x1, y1 + (y1 - y0)), 180, 360, fill=(shade, shade, shade + 15), outline="#5c5c66", width=3)
    d.rectangle((110, 60, 130, 250), fill="#d9cdb3")  # tower
    return img


def _drawn_flower() -> Image.Image:
    img = Image.new("RGB", SIZE, "#e9f5df")
    d = ImageDraw.Draw(img)
    cx, cy = 240, 140
    d.line((cx, cy, cx, SIZE[1]), fill="#3f7f2f", width=8)
    for k in range(8):
        a = 2 * math.pi * k / 8
        px, py = cx + 55 * math.cos(a), cy + 55 * math.sin(a)
        d.ellipse((px - 38, py - 38, px + 38, py + 38), fill="#e36a9a")
    d.ellipse((cx - 30, cy - 30, cx + 30, cy + 30), fill="#f2c230")
    return img


def _sklearn_sample(name: str) -> Path | None:
    """A photo bundled with scikit-learn, found without importing scikit-learn (slow)."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "images" / name
        if path.is_file():
            return path
    return None


def _flower() -> Image.Image:
    path = _sklearn_sample("flower.jpg")
    if path is None:
        return _drawn_flower()
    with Image.open(path) as photo:
        photo = photo.convert("RGB")
    photo.thumbnail(SIZE)
    return photo


# Image name used by the demo items -> function that draws it.
DEMO_IMAGES: dict[str, Callable[[], Image.Image]] = {
    "portrait_maria_schneider.png": _portrait("Maria Schneider", "#f1e4d0", "#2e5c8a"),
    "portrait_lucia_fernandez.png": _portrait("Lucía Fernández", "#dfeadf", "#8a2e4f"),
    "map_danube.png": _map_danube,
    "building_guggenheim_bilbao.png": _building_guggenheim,
    "flag_italy.png": _flag_italy,
    "map_iceland.png": _map_iceland,
    "photo_flower.jpg": _flower,
}


def render_demo_images(folder: Path, names: set[str] | None = None) -> list[Path]:
    """Draw the demo pictures (all, or those named) into ``folder``; the suffix picks the format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in DEMO_IMAGES.items():
        if names is not None and name not in names:
            continue
        path = folder / name
        if path.suffix == ".jpg":
            draw().save(path, format="JPEG", quality=85)
        else:
            draw().save(path, format="PNG", optimize=True)
        written.append(path)
    return written
