"""erf, the error function; torch.erf. NumPy has none: generated NumPy code defines one. In float32 it is
Abramowitz and Stegun's 7.1.26 (within 1e-6 of torch's float32 erf), computed in place in some 15 passes over one
array: a sixth of SciPy's time. In float64 it is SciPy's where SciPy is installed (an optional extra), else W. J.
Cody's rational approximations (within 5e-16 relative, some 25 passes). The module's ERF says which it runs."""

from __future__ import annotations

import math

import sympy as sp

from .pointwise import pointwise
from .registry import Helper, TorchNames

# float64, after Cody (Math. Comp. 23, 1969; netlib's specfun CALERF): erf(a) = a·R₁(a²) for a ≤ 0.46875;
# erfc(a) = e^(−a²)·R₂(a) up to 4, and e^(−a²)/a·(1/√π + R₃(1/a²)/a²) past it, each R a ratio of polynomials. e^(−a²)
# is split as e^(−h²)·e^(−(a − h)(a + h)), h = a rounded down to sixteenths, so that a² is not rounded first.
# float32: erfc(a) ≈ t·(a1 + t·(a2 + ...))·e^(−a²), t = 1/(1 + p·a), within 1.5e-7 in exact arithmetic.
NUMPY = Helper("erf", '''
def erf(x):
    """The error function, elementwise (NumPy has none): in float32 within 1e-6, in a few passes over one array (a
    sixth of SciPy's time); in float64 to its precision (ERF says by what)."""
    if x.dtype != np.float32:
        return erf64(x)
    a = np.abs(x)
    t = a * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1, poly, out=poly)
    return np.copysign(poly, x, out=poly)


def erf64(x):
    """The error function in float64: SciPy's where it is installed, imported at the first such call (loaded, SciPy
    slows NumPy's other work by some 10%, so a float32 module never loads it); else Cody's."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        return erf_cody(x)
    return scipy_erf(x)


ERF = "Abramowitz and Stegun 7.1.26 in float32; in float64 scipy.special.erf, or without SciPy Cody's approximations"


def erf_cody(x):
    """The error function to float64 precision (Cody's rational approximations)."""
    a = np.abs(x)
    out = np.empty_like(a)
    near, middle = a <= 0.46875, (a > 0.46875) & (a <= 4)
    u = a[near]
    s = u * u
    top, bottom = ERF_A[4] * s, s.copy()
    for i in range(3):
        top += ERF_A[i]
        top *= s
        bottom += ERF_B[i]
        bottom *= s
    out[near] = u * (top + ERF_A[3]) / (bottom + ERF_B[3])
    u = a[middle]
    top, bottom = ERF_C[8] * u, u.copy()
    for i in range(7):
        top += ERF_C[i]
        top *= u
        bottom += ERF_D[i]
        bottom *= u
    out[middle] = 1 - _gauss(u) * (top + ERF_C[7]) / (bottom + ERF_D[7])
    far = ~(near | middle)  # and nan, which stays nan
    u = np.minimum(a[far], 27.0)  # erfc(27) < 1e-300: erf is 1 from there on
    s = 1 / (u * u)
    top, bottom = ERF_P[5] * s, s.copy()
    for i in range(4):
        top += ERF_P[i]
        top *= s
        bottom += ERF_Q[i]
        bottom *= s
    out[far] = 1 - _gauss(u) * (0.5641895835477563 - s * (top + ERF_P[4]) / (bottom + ERF_Q[4])) / u
    return np.copysign(out, x)


def _gauss(u):
    """e^(−u²), u² taken apart so that it is not rounded first."""
    h = np.trunc(u * 16) / 16
    return np.exp(-h * h) * np.exp(-(u - h) * (u + h))


ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
         1.85777706184603153e-1)
ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
         8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
         2.15311535474403846e-8)
ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
         3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
         6.58749161529837803e-4, 1.63153871373020978e-2)
ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
         2.33520497626869185e-3)
''')

pointwise("erf", sympy=sp.erf, python=math.erf,
          torch=TorchNames(("torch.erf", "torch.special.erf"), ("erf",), "", ("aten.erf.default",)),
          spell={"numpy": NUMPY}, in_place={"torch": ("erf",)}, cost={"numpy": 20, "torch": 10}, finite=True)
