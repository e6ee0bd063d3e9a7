"""The marginal covariance of the rows of chosen groups, built term by term from the
stored model matrices (no dense Z): what the marginal-covariance heatmap shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


def _rows_of(term: Any, chosen: Sequence[Any]) -> np.ndarray:
    wanted = {str(g) for g in chosen}
    unknown = sorted(wanted - {str(v) for v in term.levels})
    if unknown:
        raise DataError(
            f"groups: {unknown} are not levels of {term.group!r} (e.g. {list(term.levels[:3])})."
        )
    labels = np.asarray(term.levels, dtype=object)[term.codes]
    # rows in data order, as m.marginal_cov() returns them
    return np.flatnonzero(np.isin(labels.astype(str), list(wanted)))


def marginal_covariance(
    model: LinearMixedModel, groups: Sequence[Any], group: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal covariance σ²(ZΛΛᵀZᵀ + I) of the rows of some groups, and those rows.

    Built term by term from the stored small model matrices (no dense Z): two rows share a
    term's contribution xᵢᵀ Σ_term xⱼ when they are in the same level of that term's factor.
    Only the chosen rows are formed, so it stays small.

    Parameters
    ----------
    model : LinearMixedModel
    groups : sequence
        Levels of ``group`` whose rows to include.
    group : str, optional
        The grouping factor; the one with most levels when omitted.

    Returns
    -------
    (ndarray, ndarray)
        The covariance matrix and the row indices (into the fitted rows) it is about.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> from mixedmodels.toolbox.marginal import marginal_covariance
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> cov, rows = marginal_covariance(m, ["1"])
    >>> cov.shape
    (6, 6)
    >>> bool(abs(cov[0, 1] - m.varcorr()["vcov"][0]) < 1e-12)
    True
    """
    terms = model.crossprods.terms
    term = terms[0]
    if group is not None:
        matches = [t for t in terms if t.group == group]
        if not matches:
            raise DataError(f"group: {group!r} is not a grouping factor of the model.")
        term = matches[0]
    rows = _rows_of(term, groups)
    cov = model.sigma**2 * np.eye(rows.size) + _random_part_covariance(model, rows)
    return cov, rows


def _random_part_covariance(
    model: LinearMixedModel, rows: np.ndarray, relative: bool = False
) -> np.ndarray:
    """Z Σ Zᵀ of some rows, term by term; ``relative`` uses ΛΛᵀ without σ² (a GLMM's
    random effects are Λu with u standard normal, whatever its dispersion)."""
    covariances = (
        [T @ T.T for T in model.crossprods.factors(model.theta)]
        if relative
        else model._term_covariances()
    )
    cov = np.zeros((rows.size, rows.size))
    for t, sigma_term in zip(model.crossprods.terms, covariances, strict=True):
        x = t.matrix[rows]
        same = t.codes[rows][:, None] == t.codes[rows][None, :]
        cov += same * (x @ sigma_term @ x.T)
    return cov
