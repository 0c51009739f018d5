"""Asymmetric generalised Gaussian (AGGD) fit by moment matching over a grid of shapes
(MATLAB ``0.2:0.001:10``), as NIQE's reference code."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InvalidInputError

AGGD_ALPHAS = np.linspace(0.2, 10.0, 9801)  # MATLAB 0.2:0.001:10


@functools.lru_cache(maxsize=1)
def aggd_gamma_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gamma(1/a), Gamma(2/a), Gamma(3/a) and r(a) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    gam = np.vectorize(math.gamma, otypes=[np.float64])
    g1, g2, g3 = gam(1.0 / AGGD_ALPHAS), gam(2.0 / AGGD_ALPHAS), gam(3.0 / AGGD_ALPHAS)
    return g1, g2, g3, g2 * g2 / (g1 * g3)


def aggd_fit_rows(
    x: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AGGD moment-matching fit of every row of ``x`` (n, m): alpha, beta_l, beta_r and the
    index of alpha in :data:`AGGD_ALPHAS`, each (n,).

    As the reference: a side without samples gives NaN betas; then alpha is the first grid value
    (MATLAB's min over an all-NaN vector returns index 1).
    """
    neg, pos = x < 0, x > 0
    x2 = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((x2 * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((x2 * pos).sum(axis=1) / pos.sum(axis=1))
        gammahat = left_std / right_std
        rhat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(x2, axis=1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    g1, _, g3, r_gam = aggd_gamma_tables()
    index = np.zeros(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        part = rhatnorm[start : start + chunk]
        err = (r_gam[None, :] - part[:, None]) ** 2
        found = np.argmin(np.where(np.isnan(err), np.inf, err), axis=1)
        index[start : start + chunk] = np.where(np.isnan(part), 0, found)
    alpha = AGGD_ALPHAS[index]
    ratio = np.sqrt(g1[index] / g3[index])
    return alpha, left_std * ratio, right_std * ratio, index


def aggd_fit(x) -> tuple[float, float, float]:
    """Fit an asymmetric generalised Gaussian to the samples ``x`` (any shape).

    Moment matching as in BRISQUE/NIQE: ``alpha`` is the grid value (0.2:0.001:10) whose
    ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to the normalised ratio
    ``rhat (g^3 + 1)(g + 1) / (g^2 + 1)^2`` with ``rhat = mean|x|^2 / mean(x^2)`` and
    ``g = std_l / std_r`` (root mean squares of the negative / positive samples); then
    ``beta_{l,r} = std_{l,r} sqrt(Gamma(1/alpha) / Gamma(3/alpha))``.
    Returns ``(alpha, beta_l, beta_r)``; a side without samples gives NaN betas.
    """
    a = np.asarray(x, dtype=np.float64).reshape(1, -1)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise InvalidInputError("x: expected a non-empty array of finite values")
    alpha, beta_l, beta_r, _ = aggd_fit_rows(a)
    return float(alpha[0]), float(beta_l[0]), float(beta_r[0])
