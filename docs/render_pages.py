"""Render the derivations of the blog posts' three models to docs/NAME.png, every page stacked in one image.

    python docs/render_pages.py        # needs pdflatex, pdftoppm (poppler) and Pillow
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("seed_neuron", "binary_classifier", "multiclass_classifier")


def trimmed(page: Image.Image) -> Image.Image:
    """The page without its white margins below the last line (the page number is dropped too)."""
    body = page.crop((0, 0, page.width, int(page.height * 0.92)))
    box = ImageChops.difference(body, Image.new(body.mode, body.size, "white")).getbbox()
    return body.crop((0, 0, page.width, min(box[3] + 20, body.height))) if box else body


def render(name: str, folder: Path) -> Path:
    tex = ROOT / "tests" / "golden" / f"{name}.tex"
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", str(tex)], cwd=folder,
                   check=True, capture_output=True)
    subprocess.run(["pdftoppm", "-r", "80", "-png", f"{name}.pdf", name], cwd=folder, check=True)
    pages = [trimmed(Image.open(p).convert("RGB")) for p in sorted(folder.glob(f"{name}-*.png"))]
    sheet = Image.new("RGB", (pages[0].width, sum(p.height for p in pages)), "white")
    top = 0
    for page in pages:
        sheet.paste(page, (0, top))
        top += page.height
    out = ROOT / "docs" / f"{name}.png"
    sheet.save(out, optimize=True)
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        for model in sys.argv[1:] or MODELS:
            print(render(model, Path(folder)))
