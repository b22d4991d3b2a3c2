"""erf, the error function; torch.erf. NumPy has none: generated NumPy code defines one. In float64 it is exact to
about 1e-15 and costs some 80 passes over its array where torch's costs 10 (float32, 65k values, against a
product); in float32, Abramowitz and Stegun's
7.1.26 (within 1e-6 of torch's float32 erf), some 15 passes."""

from __future__ import annotations

import math

import sympy as sp

from .pointwise import pointwise
from .registry import Helper, TorchNames

# float64: the series erf(a) = 2/√π·e^(−a²)·a·Σ_n (2a²)ⁿ/(2n+1)!!, all terms positive, for a ≤ 3, by Horner's rule;
# past 3, 1 − erfc(a) with erfc's continued fraction e^(−a²)/√π / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))).
# float32: erfc(a) ≈ t·(a1 + t·(a2 + ...))·e^(−a²), t = 1/(1 + p·a), within 1.5e-7 in exact arithmetic.
NUMPY = Helper("erf", '''
def erf(x):
    """The error function, elementwise (NumPy has none): to float64 precision, or in float32 within 1e-6."""
    a = np.abs(x)
    if a.dtype == np.float32:
        t = 1 / (1 + np.float32(0.3275911) * a)
        poly = np.zeros_like(a)
        for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592):
            poly += np.float32(c)
            poly *= t
        return np.copysign(1 - poly * np.exp(-a * a), x)
    out = np.empty_like(a)
    near = a <= 3
    u = a[near]
    w, total = 2 * u * u, np.full_like(u, ERF_SERIES[-1])
    for c in ERF_SERIES[-2::-1]:
        total *= w
        total += c
    out[near] = 1.1283791670955126 * np.exp(-u * u) * u * total
    u = np.minimum(a[~near], 10)  # erfc(10) < 1e-44: erf is 1 from there on
    fraction = u.copy()
    for k in range(30, 0, -1):
        fraction = u + (k / 2) / fraction
    out[~near] = 1 - 0.5641895835477563 * np.exp(-u * u) / fraction
    return np.copysign(out, x)


ERF_SERIES = 1 / np.cumprod(np.arange(1.0, 112.0, 2.0))  # 1/(2n+1)!! for n = 0, ..., 55
''')

pointwise("erf", sympy=sp.erf, python=math.erf,
          torch=TorchNames(("torch.erf", "torch.special.erf"), ("erf",), "", ("aten.erf.default",)),
          spell={"numpy": NUMPY}, in_place={"torch": ("erf",)}, cost={"numpy": 80, "torch": 10})
