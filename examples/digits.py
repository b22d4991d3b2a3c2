"""scikit-learn's handwritten digits (1,797 images of 8x8 pixels, bundled with it: no download) as 32x32 images for
examples/lenet.py, each pixel enlarged to 4x4 and scaled to [0, 1]: examples/data/digits.npz, with arrays x (1797, 1,
32, 32) and labels (1797,).

  pip install scikit-learn && python examples/digits.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(out: Path = Path(__file__).parent / "data" / "digits.npz") -> Path:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("examples/digits.py needs scikit-learn: pip install scikit-learn (or the project's [digits] extra)")
    digits = load_digits()
    images = digits.images / 16.0  # pixel values 0..16
    enlarged = np.kron(images, np.ones((4, 4)))[:, None].astype(np.float32)
    np.savez_compressed(out, x=enlarged, labels=digits.target.astype(np.int64))
    print(f"wrote {out}: x {enlarged.shape}, labels {digits.target.shape}")
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "digits.npz")
