"""Variance parameters on lme4's standard-deviation/correlation scale.

lme4 profiles and bootstraps the random-effects parameters as SDs and correlations
(its ``Cv_to_Sv``/``Sv_to_Cv``): per term, the structure's own SD/correlation
parameters (for lme4's unstructured terms the lower triangle of the SD/correlation
matrix in column-major order, SDs on the diagonal; for glmmTMB's ``ar1`` one SD and one
correlation, see :meth:`~mixedmodels.lmm.covariance.CovarianceStructure.to_sdcor`), followed
by σ.  Names follow ``confint(oldNames = FALSE)``: ``sd_(Intercept)|Subject``,
``cor_Days.(Intercept)|Subject``, ``sigma``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..lmm.covariance import CovarianceStructure
from ..lmm.crossprods import CrossProducts


@dataclass(frozen=True)
class VarianceLayout:
    """The names and bounds of each term's SD/correlation parameters, then σ."""

    names: tuple[str, ...]  # variance parameters then "sigma"
    lower: np.ndarray  # bounds on the SD/correlation scale (sigma included)
    upper: np.ndarray
    is_sd: np.ndarray  # SD (True) or correlation (False); sigma counts as an SD

    @classmethod
    def of(cls, cp: CrossProducts) -> VarianceLayout:
        names: list[str] = []
        is_sd: list[bool] = []
        lower: list[np.ndarray] = []
        upper: list[np.ndarray] = []
        for term, structure in zip(cp.terms, cp.structures, strict=True):
            for label, sd in structure.sdcor_labels(tuple(term.columns)):
                names.append(f"{label}|{term.group}")
                is_sd.append(sd)
            low, high = structure.sdcor_bounds()
            lower.append(low)
            upper.append(high)
        names.append("sigma")
        is_sd.append(True)
        return cls(
            names=tuple(names),
            lower=np.concatenate([*lower, [0.0]]),
            upper=np.concatenate([*upper, [np.inf]]),
            is_sd=np.array(is_sd),
        )


def theta_to_sdcor(cp: CrossProducts, theta: np.ndarray, sigma: float) -> np.ndarray:
    """θ (relative covariance parameters) and σ → SDs/correlations and σ."""
    parts = [
        structure.to_sdcor(theta[sl], sigma)
        for structure, sl in zip(cp.structures, cp.theta_slices, strict=True)
    ]
    return np.concatenate([*parts, [sigma]])


@functools.lru_cache(maxsize=256)
def _n_sdcor(structure: CovarianceStructure) -> int:
    """How many SD/correlation parameters the structure has (cached: profiles call
    :func:`sdcor_to_theta` at every deviance evaluation)."""
    return len(structure.sdcor_labels(tuple(map(str, range(structure.k)))))


def sdcor_to_theta(cp: CrossProducts, pars: np.ndarray) -> np.ndarray:
    """Inverse of :func:`theta_to_sdcor`; ``pars`` ends with σ."""
    sigma = pars[-1]
    theta = np.empty(cp.n_theta)
    pos = 0
    for structure, sl in zip(cp.structures, cp.theta_slices, strict=True):
        n = _n_sdcor(structure)
        theta[sl] = structure.from_sdcor(pars[pos : pos + n], sigma)
        pos += n
    return theta


def _held_parts(
    cp: CrossProducts, held: int
) -> list[tuple[CovarianceStructure, slice, int | None]]:
    """Each structure, the slice of its SD/correlation values, and the held position in it."""
    parts = []
    pos = 0
    for structure in cp.structures:
        n = _n_sdcor(structure)
        inside = held - pos if pos <= held < pos + n else None
        parts.append((structure, slice(pos, pos + n), inside))
        pos += n
    return parts


def sdcor_to_refit(cp: CrossProducts, pars: np.ndarray, held: int, value: float) -> np.ndarray:
    """SDs/correlations and σ → the coordinates of a profile's refit holding parameter
    ``held`` at ``value``, in which every structure is the box of its SD/correlation bounds
    (:meth:`~mixedmodels.lmm.covariance.CovarianceStructure.refit_coordinates`)."""
    coords = np.asarray(pars, dtype=float).copy()
    for structure, sl, inside in _held_parts(cp, held):
        coords[sl] = structure.refit_coordinates(coords[sl], inside, value)
    return coords


def refit_to_sdcor(cp: CrossProducts, coords: np.ndarray, held: int, value: float) -> np.ndarray:
    """Inverse of :func:`sdcor_to_refit`: the SDs/correlations and σ, the held one at
    ``value`` (NaN in a structure where no parameters have it)."""
    pars = np.asarray(coords, dtype=float).copy()
    for structure, sl, inside in _held_parts(cp, held):
        pars[sl] = structure.from_refit_coordinates(pars[sl], inside, value)
    if held == pars.size - 1:
        pars[held] = value
    return pars
