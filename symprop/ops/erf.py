"""erf, the error function; torch.erf. NumPy has none: generated NumPy code defines one (exact to about 1e-15), which
costs some 80 passes over its array where torch's is one."""

from __future__ import annotations

import math

import sympy as sp

from .pointwise import pointwise
from .registry import Helper, TorchNames

# The series erf(a) = 2/√π·e^(−a²)·Σ_n (2a²)ⁿ·a/(2n+1)!!, all terms positive, for a ≤ 3; past 3, 1 − erfc(a) with
# erfc's continued fraction e^(−a²)/√π / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))).
NUMPY = Helper("erf", '''
def erf(x):
    """The error function, elementwise, to float64 precision (NumPy has none)."""
    a = np.abs(x)
    out = np.empty_like(a)
    near = a <= 3
    u = a[near]
    term, total, two_u2 = u.copy(), u.copy(), 2 * u * u
    for n in range(1, 56):
        term *= two_u2 / (2 * n + 1)
        total += term
    out[near] = 1.1283791670955126 * np.exp(-u * u) * total
    u = np.minimum(a[~near], 10)  # erfc(10) < 1e-44: erf is 1 from there on
    fraction = u.copy()
    for k in range(30, 0, -1):
        fraction = u + (k / 2) / fraction
    out[~near] = 1 - 0.5641895835477563 * np.exp(-u * u) / fraction
    return np.copysign(out, x)
''')

pointwise("erf", sympy=sp.erf, python=math.erf,
          torch=TorchNames(("torch.erf", "torch.special.erf"), ("erf",), "", ("aten.erf.default",)),
          spell={"numpy": NUMPY}, in_place={"torch": ("erf",)}, cost={"numpy": 80})
