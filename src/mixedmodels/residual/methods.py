"""Methods of fitted mixed models about the residual structure (:class:`ResidualMixin`):
its parameters and their intervals, per-level residual variances and the marginal
covariance ``Var(y)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, MixedModelsError
from .structures import ResidualStructure

_DENSE_MAX_ROWS = 2000


class ResidualMixin:
    """Methods of fitted mixed models about the residual structure.

    Mixed into :class:`mixedmodels.models.linear_mixed.LinearMixedModel`.  Models fitted with
    ``variance=`` or ``correlation=`` set ``residual_structure`` and
    ``residual_params``; for the others the residuals are independent with variance σ².
    """

    residual_structure: ResidualStructure | None = None
    residual_params: np.ndarray = np.zeros(0)

    def residual_parameters(self) -> pd.Series:
        """The residual structure's parameters as nlme reports them.

        nlme's ``coef(m$modelStruct$varStruct, unconstrained = FALSE)`` and of
        ``corStruct``: SD ratios to the reference level (VarIdent, named by level),
        ``power`` (VarPower), ``expon`` (VarExp), ``Phi`` (CorAR1, CorCAR1), ``Rho``
        (CorCompSymm), ``cor(i,j)`` (CorSymm).  Empty for a model without residual
        structure.

        Returns
        -------
        Series

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> len(m.residual_parameters())
        0
        """
        if self.residual_structure is None:
            return pd.Series([], dtype=float)
        return self.residual_structure.coef(self.residual_params)

    def residual_intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Intervals of the residual structure's parameters, as nlme's ``intervals(m)``
        ``$varStruct`` and ``$corStruct``: Wald on the unconstrained scale the fit
        optimizes (nlme's: log SD ratios for VarIdent, the power for VarPower,
        log((1 + φ)/(1 − φ)) for CorAR1, ...), est ± z·SE with z the normal quantile, then
        mapped to the scale of :meth:`residual_parameters`.

        The SEs come from the inverse Hessian of the fit's own criterion (REML or ML, as
        nlme's ``apVar``) over θ and the residual parameters; σ profiled out or not, and
        whatever θ's scale, that block of the inverse Hessian is the same at the optimum.

        Returns
        -------
        DataFrame
            Columns ``lower``, ``est``, ``upper``; rows named as
            :meth:`residual_parameters`.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> data["occasion1"] = data["occasion"] + 1
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data, variance=mm.VarPower("occasion1"))
        >>> ci = m.residual_intervals()
        >>> bool(ci.loc["power", "lower"] < ci.loc["power", "est"] < ci.loc["power", "upper"])
        True
        """
        from scipy import stats

        from ..errors import refuse
        from ..lmm.optimize import finite_difference_derivatives

        structure = self.residual_structure
        if structure is None or structure.n_params == 0:
            raise refuse(
                "lmer fit without estimated residual-structure parameters",
                "residual_intervals()",
                "confint() for the variance components and fixed effects",
            )
        if not 0.0 < float(level) < 1.0:
            raise DataError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
        objective = self.objective  # type: ignore[attr-defined]
        x = objective.start
        _, hessian = finite_difference_derivatives(objective, x, objective.lower)
        nr = structure.n_params
        try:
            covariance = 2.0 * np.linalg.inv(hessian)[-nr:, -nr:]
        except np.linalg.LinAlgError:
            covariance = np.full((nr, nr), np.nan)
        se = (
            np.sqrt(np.diag(covariance)) if np.all(np.diag(covariance) > 0) else np.full(nr, np.nan)
        )
        if not np.all(np.isfinite(se)):
            raise MixedModelsError(
                "residual_intervals(): the approximate covariance of the residual parameters "
                "is not positive definite (nlme's 'Non-positive definite approximate "
                "variance-covariance'): the structure is not identified at this fit. Use "
                "confint(method='boot')."
            )
        z = stats.norm.ppf(0.5 + float(level) / 2.0)
        params = x[-nr:]
        est = structure.coef(params)
        lower = structure.coef(params - z * se).to_numpy()
        upper = structure.coef(params + z * se).to_numpy()
        return pd.DataFrame(
            {"lower": np.minimum(lower, upper), "est": est.to_numpy(),
             "upper": np.maximum(lower, upper)},
            index=est.index,
        )  # fmt: skip

    def residual_variances(self) -> pd.DataFrame:
        """Residual variance per level: ``level``, ``relative_sd``, ``variance``.

        For a variance function (nlme formulation) the relative SD is ``g`` (1 at the
        reference level) and the variance ``(σ g)²``.  For the glmmTMB formulation, a
        structured term on a factor's indicator columns such as
        ``diag(0 + occas | student)`` with one row per level and group, the variance of
        level l is that term's variance plus σ², and the relative SD its square root
        over the first level's.  Otherwise one row with σ².

        Returns
        -------
        DataFrame

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> m.residual_variances()["relative_sd"].tolist()
        [1.0]
        """
        sigma = float(self.sigma)  # type: ignore[attr-defined]
        structure = self.residual_structure
        if structure is not None and structure.variance is not None:
            params = structure._split(self.residual_params)[0]
            return structure.variance.table(params, sigma)
        term_index = self._residual_like_term()
        if term_index is None:
            return pd.DataFrame({"level": ["(all)"], "relative_sd": [1.0], "variance": [sigma**2]})
        term = self.crossprods.terms[term_index]  # type: ignore[attr-defined]
        T = self.crossprods.factors(self.theta)[term_index]  # type: ignore[attr-defined]
        variance = sigma**2 * (np.diag(T @ T.T) + 1.0)
        prefix = term.expr.split("+")[-1].strip()
        levels = [c[len(prefix) :] if c.startswith(prefix) else c for c in term.columns]
        return pd.DataFrame(
            {
                "level": levels,
                "relative_sd": np.sqrt(variance / variance[0]),
                "variance": variance,
            }
        )

    def _residual_like_term(self) -> int | None:
        """A structured term on indicator columns with one row per (group, column)."""
        for index, term in enumerate(self.crossprods.terms):  # type: ignore[attr-defined]
            if term.structure == "us" or term.n_columns < 2:
                continue
            M = term.matrix
            if not (np.all((M == 0) | (M == 1)) and np.all(M.sum(axis=1) == 1)):
                continue
            cells = term.codes * term.n_columns + np.argmax(M, axis=1)
            if len(np.unique(cells)) == len(cells):
                return index
        return None

    def marginal_cov(
        self, groups: Any = None, group_var: str | None = None
    ) -> pd.DataFrame | sp.csr_matrix:
        """Var(y) for the rows of the chosen groups: ``σ²(ZΛΛᵀZᵀ + R)``.

        Parameters
        ----------
        groups : label or list of labels, optional
            Levels of ``group_var`` whose rows to include; all rows when omitted.
        group_var : str, optional
            The grouping factor; the one of the term with the most levels by default.

        Returns
        -------
        DataFrame (rows and columns labelled by the data's row index) for up to 2000
        rows, else a sparse CSR matrix.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> m.marginal_cov(groups="1").shape
        (6, 6)
        """
        terms = self.crossprods.terms  # type: ignore[attr-defined]
        n = len(terms[0].codes)
        if groups is None:
            rows = np.arange(n)
        else:
            term = terms[0]
            if group_var is not None:
                matching = [t for t in terms if t.group == group_var]
                if not matching:
                    raise ValueError(
                        f"group_var {group_var!r} is not a grouping factor of the model "
                        f"(expecting one of {sorted({t.group for t in terms})})."
                    )
                term = matching[0]
            wanted = [str(g) for g in (groups if isinstance(groups, list | tuple) else [groups])]
            lookup = {str(label): i for i, label in enumerate(term.levels)}
            unknown = [g for g in wanted if g not in lookup]
            if unknown:
                raise ValueError(f"Unknown level(s) {unknown} of '{term.group}'.")
            rows = np.flatnonzero(np.isin(term.codes, [lookup[g] for g in wanted]))
        sigma2 = float(self.sigma) ** 2  # type: ignore[attr-defined]
        m = len(rows)
        V = sp.csr_matrix((m, m))
        for term, T in zip(terms, self.crossprods.factors(self.theta), strict=True):  # type: ignore[attr-defined]
            k = term.n_columns
            cols = (term.codes[rows, None] * k + np.arange(k)[None, :]).ravel()
            Z = sp.csr_matrix(
                (term.matrix[rows].ravel(), cols, np.arange(0, m * k + 1, k)),
                shape=(m, term.n_levels * k),
            )
            block = sp.kron(sp.identity(term.n_levels, format="csr"), sp.csr_matrix(T @ T.T))
            V = V + Z @ block @ Z.T
        if self.residual_structure is None:
            V = V + sp.identity(m, format="csr")
        else:
            V = V + self.residual_structure.covariance(self.residual_params, rows)
        V = (sigma2 * V).tocsr()
        if m > _DENSE_MAX_ROWS:
            return V
        index = self.design.row_index  # type: ignore[attr-defined]
        labels = index[rows] if index is not None else rows
        return pd.DataFrame(V.toarray(), index=labels, columns=labels)
