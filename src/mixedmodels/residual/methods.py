"""Methods of fitted mixed models about the residual structure (:class:`ResidualMixin`):
its parameters and their intervals, per-level residual variances and the marginal
covariance ``Var(y)``; each a one-line delegation to :mod:`.fitted`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .structures import ResidualStructure

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp


class ResidualMixin:
    """Methods of fitted mixed models about the residual structure.

    Mixed into :class:`mixedmodels.models.linear_mixed.LinearMixedModel`; each method is a
    one-line delegation to the free function of the same name in :mod:`.fitted`, which
    takes the fitted model.  Models fitted with ``variance=`` or ``correlation=`` set
    ``residual_structure`` and ``residual_params``; for the others the residuals are
    independent with variance σ².
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
        from .fitted import residual_parameters

        return residual_parameters(self)

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
        from .fitted import residual_intervals

        return residual_intervals(self, level)

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
        from .fitted import residual_variances

        return residual_variances(self)

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
        from .fitted import marginal_cov

        return marginal_cov(self, groups, group_var)
