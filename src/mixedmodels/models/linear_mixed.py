"""Fitted linear mixed models: accessors, tidy tables (pandas) and lme4-like summaries."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .._protocols import MixedModel
from ..errors import OptionError
from ..frontend.columns import as_dataframe
from ..frontend.design_types import Design
from ..frontend.formula import parse_formula
from ..inference import InferenceMixin
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Solution, solve
from ..lmm.optimize import OptSummary, boundary_mask
from ..residual.methods import ResidualMixin
from ..toolbox.analysis import AnalysisMixin
from ..toolbox.methods import ToolboxMixin
from .objective import LmmObjective


def _z975() -> float:
    """The normal 97.5% quantile (scipy.stats is imported on first use, not with the
    package: it costs about a second)."""
    from scipy import stats

    return stats.norm.ppf(0.975)


def _effect_name(column: str) -> str:
    """mixedup writes the intercept as ``Intercept``."""
    return "Intercept" if column == "(Intercept)" else column


def _distinct_parameters(structure: str, k: int) -> tuple[list[int], list[tuple[int, int]]]:
    """The variances (column positions) and correlations (pairs) a term's covariance
    structure has as parameters, as glmmTMB prints them: one variance and the lag-1
    correlation for ``ar1``, the variances and one correlation for ``cs``, no
    correlations for ``diag``, everything for ``us`` and ``toep``."""
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    if structure == "ar1":
        return [0], pairs[:1]
    if structure == "cs":
        return list(range(k)), pairs[:1]
    if structure == "diag":
        return list(range(k)), []
    return list(range(k)), pairs


def _is_no_random(re_form: Any) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, float) and np.isnan(re_form):
        return True
    text = str(re_form).replace(" ", "")
    return text in ("~0", "0", "NA", "nan")


class LinearMixedModel(InferenceMixin, ToolboxMixin, ResidualMixin, AnalysisMixin, MixedModel):
    """A fitted linear mixed model (:func:`mixedmodels.lmer`).

    Tables are computed lazily and cached; the fit itself is never mutated.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
    >>> list(m.fixed_effects().columns)
    ['term', 'value', 'se', 't', 'p_value', 'lower_2.5', 'upper_97.5']
    """

    def __init__(
        self,
        design: Design,
        crossprods: CrossProducts,
        opt: OptSummary,
        reml: bool,
        converged: bool,
    ):
        self.design = design
        self.crossprods = crossprods
        self.opt_summary = opt
        self.reml = reml
        self.converged = converged

    # -- basic quantities ---------------------------------------------------------------
    @cached_property
    def _solution(self) -> Solution:
        return solve(self.crossprods, self.opt_summary.final, self.reml)

    @cached_property
    def objective(self) -> LmmObjective:
        """The fit's own objective (:mod:`mixedmodels.models.objective`): the criterion it was
        fitted with as a function of its parameters, with the refits, new responses, ML
        version and simulations that profiles, bootstraps, ddf methods and
        likelihood-ratio tests use."""
        return LmmObjective(
            self.design,
            self.crossprods,
            self.reml,
            self.opt_summary.final,
            residual=self.residual_structure,
            refitted=self._refitted,
        )

    @staticmethod
    def _refitted(objective: LmmObjective, opt: OptSummary) -> LinearMixedModel:
        """A model of this kind at an optimum of (a variant of) its objective: an ML
        refit, or a bootstrap replicate's refit on its new response."""
        return LinearMixedModel(objective.design, objective.crossprods, opt, objective.reml, True)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("objective", None)  # rebuilt on demand; it holds whitened data copies
        return state

    @property
    def formula(self) -> str:
        """The model formula as given to the fit."""
        return self.design.spec.text

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance parameters in lme4's order (terms by levels, largest first)."""
        return self.opt_summary.final.copy()

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates β̂, named as R names them."""
        return pd.Series(self._solution.beta, index=list(self.design.fixed_names), name="fixef")

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return self._solution.sigma

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂: σ² (XᵀV⁻¹X)⁻¹."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(
            self.sigma**2 * self._solution.vcov_unscaled, index=names, columns=names
        )

    @property
    def deviance(self) -> float:
        """The objective at the optimum: the REML criterion for REML fits, as lme4."""
        return self.opt_summary.objective

    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted log-likelihood for REML fits, as lme4's ``logLik``)."""
        return -0.5 * self.opt_summary.objective

    @property
    def npar(self) -> int:
        """Number of estimated parameters: β, θ and σ."""
        return len(self.design.fixed_names) + self.crossprods.n_theta + 1

    @property
    def aic(self) -> float:
        """Akaike's criterion −2 logLik + 2 npar, from the REML criterion for REML fits, as
        lme4's ``AIC`` (compare REML fits only when their fixed effects are the same)."""
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        """Schwarz's criterion −2 logLik + log(n) npar, as lme4's ``BIC``."""
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def nobs(self) -> int:
        """Number of observations used in the fit (rows with missing values dropped)."""
        return self.design.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {t.group: t.n_levels for t in self.crossprods.terms}

    @property
    def is_singular(self) -> bool:
        """True when a variance is (near) zero or a correlation is ±1 (lme4's ``isSingular``)."""
        return bool(np.any(boundary_mask(self.opt_summary.final, self.opt_summary.lower)))

    # -- random-effects covariance --------------------------------------------------------
    def _group_labels(self) -> list[str]:
        """Term group names with lme4's ``.1`` suffix for repeats (e.g. from ``||``)."""
        seen: dict[str, int] = {}
        labels = []
        for term in self.crossprods.terms:
            count = seen.get(term.group, 0)
            labels.append(term.group if count == 0 else f"{term.group}.{count}")
            seen[term.group] = count + 1
        return labels

    def _term_covariances(self) -> list[np.ndarray]:
        return [self.sigma**2 * (T @ T.T) for T in self.crossprods.factors(self.theta)]

    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances, SDs and correlations, as lme4's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        DataFrame with columns ``group, var1, var2, vcov, sdcor`` and, when a term has a
        glmmTMB structure (``diag``, ``cs``, ``ar1``, ``toep``), ``structure``.  A structured
        term lists its distinct parameters, as glmmTMB prints them: ``ar1`` one variance
        (the first column's; all are equal) and its lag-1 correlation, ``cs`` every
        variance and its one correlation, ``diag`` the variances only (its covariances are
        0 by construction), ``toep`` and ``us`` every variance and correlation.
        """
        rows = []
        for label, term, cov in zip(
            self._group_labels(), self.crossprods.terms, self._term_covariances(), strict=True
        ):
            sd = np.sqrt(np.diag(cov))
            variances, pairs = _distinct_parameters(term.structure, len(term.columns))
            for i in variances:
                rows.append((label, term.columns[i], None, cov[i, i], sd[i]))
            for i, j in pairs:
                denom = sd[i] * sd[j]
                corr = cov[i, j] / denom if denom > 0 else np.nan
                rows.append((label, term.columns[i], term.columns[j], cov[i, j], corr))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        table = pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])
        structures = [t.structure for t in self.crossprods.terms]
        if any(s != "us" for s in structures):  # glmmTMB terms: mark each row's structure
            per_label = dict(zip(self._group_labels(), structures, strict=True))
            table["structure"] = table["group"].map(per_label)
        return table

    def variance_components(self) -> pd.DataFrame:
        """Variance components as mixedup's ``extract_vc``: group, effect, variance, sd, var_prop.

        ``var_prop`` is each variance's share of the sum of all variances (residual included).
        An ``ar1`` term has one row, its common variance, counted once (mixedup's table for
        the chapter's ar1 model shows one row too, but its var_prop, 0.159, divides by all six
        identical diagonal entries, so its rows do not sum to 1; here they do).
        """
        rows = []
        for label, term, cov in zip(
            self._group_labels(), self.crossprods.terms, self._term_covariances(), strict=True
        ):
            for i in _distinct_parameters(term.structure, len(term.columns))[0]:
                rows.append((label, _effect_name(term.columns[i]), cov[i, i]))
        rows.append(("Residual", "", self.sigma**2))
        table = pd.DataFrame(rows, columns=["group", "effect", "variance"])
        table["sd"] = np.sqrt(table["variance"])
        table["var_prop"] = table["variance"] / table["variance"].sum()
        return table

    def icc(self) -> pd.Series:
        """Intraclass correlation per grouping factor with a random intercept:
        its intercept variance over the sum of intercept variances and the residual variance."""
        vc = self.variance_components()
        intercepts = vc[vc["effect"] == "Intercept"]
        total = intercepts["variance"].sum() + self.sigma**2
        return pd.Series(
            (intercepts["variance"] / total).to_numpy(),
            index=intercepts["group"].to_numpy(),
            name="icc",
        )

    # -- fixed effects -------------------------------------------------------------------
    def fixed_effects(self, ddf: str = "normal") -> pd.DataFrame:
        """Fixed-effects table as mixedup's ``extract_fixed_effects``.

        Parameters
        ----------
        ddf : {"normal", "satterthwaite", "kenward-roger"}
            Degrees of freedom for the tests: ``"normal"`` uses the standard normal for
            p-values and 95% intervals, as mixedup does; ``"satterthwaite"`` (lmerTest) and
            ``"kenward-roger"`` (pbkrtest, with its adjusted SEs; REML fits only) add a
            ``df`` column and use the t distribution.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> list(m.fixed_effects(ddf="satterthwaite").columns)
        ['term', 'value', 'se', 't', 'df', 'p_value', 'lower_2.5', 'upper_97.5']
        """
        from scipy import stats

        ddf_options = ("normal", "satterthwaite", "kenward-roger")
        if ddf not in ddf_options:
            raise OptionError(f"ddf: expecting one of {set(ddf_options)}. Got {ddf!r}.")
        if ddf != "normal":
            from ..inference.ddf import fixed_effects_table

            return fixed_effects_table(self, ddf)
        value = self.fixef.to_numpy()
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        t = value / se
        return pd.DataFrame(
            {
                "term": list(self.design.fixed_names),
                "value": value,
                "se": se,
                "t": t,
                "p_value": 2.0 * stats.norm.sf(np.abs(t)),
                "lower_2.5": value - _z975() * se,
                "upper_97.5": value + _z975() * se,
            }
        )

    # -- random effects ------------------------------------------------------------------
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes per grouping factor (levels x effects), as lme4's ``ranef``."""
        out = {}
        for label, term, b in zip(
            self._group_labels(), self.crossprods.terms, self._solution.b, strict=True
        ):
            out[label] = pd.DataFrame(
                b, index=pd.Index(term.levels, name=term.group), columns=list(term.columns)
            )
        return out

    def random_effects(self) -> pd.DataFrame:
        """Conditional modes with conditional SDs, as mixedup's ``extract_random_effects``.

        Columns ``group_var, effect, group, value, se, lower_2.5, upper_97.5``.
        """
        frames = []
        for label, term, b, cov in zip(
            self._group_labels(),
            self.crossprods.terms,
            self._solution.b,
            self._solution.b_cov,
            strict=True,
        ):
            se = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
            for j, column in enumerate(term.columns):
                frames.append(
                    pd.DataFrame(
                        {
                            "group_var": label,
                            "effect": _effect_name(column),
                            "group": term.levels,
                            "value": b[:, j],
                            "se": se[:, j],
                        }
                    )
                )
        table = pd.concat(frames, ignore_index=True)
        table["lower_2.5"] = table["value"] - _z975() * table["se"]
        table["upper_97.5"] = table["value"] + _z975() * table["se"]
        return table

    def coef(self) -> pd.DataFrame:
        """Group-level coefficients (fixed + random), as mixedup's ``extract_coef``.

        The SE combines the fixed effect's SE and the conditional SD of the random effect.
        """
        table = self.random_effects()
        fixed = self.fixed_effects().set_index("term")
        value = table["value"].to_numpy().copy()
        se = table["se"].to_numpy().copy()
        for index, effect in enumerate(table["effect"]):
            if effect in fixed.index:
                value[index] += fixed.at[effect, "value"]
                se[index] = np.hypot(se[index], fixed.at[effect, "se"])
        table["value"] = value
        table["se"] = se
        table["lower_2.5"] = value - _z975() * se
        table["upper_97.5"] = value + _z975() * se
        return table

    # -- prediction ----------------------------------------------------------------------
    def _selected_terms(self, re_form: Any) -> list[int]:
        if re_form is None:
            return list(range(len(self.crossprods.terms)))
        if _is_no_random(re_form):
            return []
        spec = parse_formula(
            f"y {re_form.strip()}" if str(re_form).strip().startswith("~") else f"y ~ {re_form}"
        )
        wanted = {(t.expr.replace(" ", ""), t.group) for t in spec.random}
        chosen = [
            i
            for i, t in enumerate(self.crossprods.terms)
            if (t.expr.replace(" ", ""), t.group) in wanted
        ]
        if len(chosen) != len(wanted):
            raise OptionError(
                f"re_form {re_form!r} names random-effects terms that are not in the model "
                f"({', '.join(f'({t.expr} | {t.group})' for t in self.crossprods.terms)})."
            )
        return chosen

    def _random_part(
        self, frame: pd.DataFrame | None, selected: list[int], allow_new_levels: bool = True
    ) -> np.ndarray:
        n = self.nobs if frame is None else len(frame)
        total = np.zeros(n)
        for index in selected:
            term = self.crossprods.terms[index]
            b = self._solution.b[index]
            if frame is None:
                matrix, codes = term.matrix, term.codes
                total += np.einsum("nk,nk->n", matrix, b[codes])
                continue
            matrix, mapped = term.encode_rows(frame, allow_new_levels)
            known = mapped >= 0
            contribution = np.zeros(n)
            contribution[known] = np.einsum("nk,nk->n", matrix[known], b[mapped[known]])
            total += contribution
        return total

    def _predict_rows(
        self, newdata: Any, re_form: Any, allow_new_levels: bool = True
    ) -> np.ndarray:
        """The linear predictor of the fitted rows (``newdata`` None) or of new rows."""
        selected = self._selected_terms(re_form)
        if newdata is None:
            fixed = self.design.X @ self._solution.beta
            if self.design.offset is not None:
                fixed = fixed + self.design.offset
            return fixed + self._random_part(None, selected)
        frame = as_dataframe(newdata)
        X = self.design.encode_fixed(frame)
        return (
            X @ self._solution.beta
            + self.design.encode_offset(frame)
            + self._random_part(frame, selected, allow_new_levels)
        )

    def predict(
        self, newdata: Any = None, re_form: Any = None, allow_new_levels: bool = False
    ) -> np.ndarray | pd.Series:
        """Predictions on the response scale.

        Parameters
        ----------
        newdata : DataFrame, optional
            New rows; the fitted rows when omitted.  The fit's offset (``offset=`` as a
            column name, or ``offset()`` in the formula) and its stateful transforms
            (``scale(x)``, ``poly(x, 2)``: the fit's means, scales and coefficients) are
            applied to them.  A row whose grouping value is missing gets the population
            prediction for that term (its random effect taken as 0).
        re_form : str or None
            ``None`` includes every random effect; ``"~0"`` (or ``"NA"``) none, as lme4's
            ``re.form = NA``; a formula such as ``"~(1 | student)"`` a subset.
        allow_new_levels : bool, default False
            Levels of a grouping factor not seen in the fit are refused with a
            :class:`DataError` that names them, as lme4's default ``allow.new.levels =
            FALSE``; True gives them the population prediction for that term (their random
            effect taken as 0, as lme4's ``allow.new.levels = TRUE``).

        Returns
        -------
        ndarray or Series
            A Series with newdata's index when newdata is a pandas DataFrame; otherwise an
            array, one value per fitted row (NaN for rows dropped under
            ``na_action="exclude"``).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> new = data.iloc[[0, 1]].copy()
        >>> new["student"] = [data["student"].iloc[0], None]
        >>> p = m.predict(new)
        >>> bool(p.iloc[1] == m.predict(new, re_form="~0").iloc[1])
        True
        """
        values = self._predict_rows(newdata, re_form, allow_new_levels)
        if newdata is None:
            return self.design.pad(values)
        if isinstance(newdata, pd.DataFrame):
            return pd.Series(values, index=newdata.index, name="prediction")
        return values

    def fitted(self) -> np.ndarray:
        """Fitted values with all random effects (lme4's ``fitted``)."""
        return self.predict()

    def residuals(self) -> np.ndarray:
        """Response residuals y − fitted (NaN for rows dropped under ``na_action="exclude"``)."""
        return self.design.pad(self.design.y - self._predict_rows(None, None))

    # -- display -------------------------------------------------------------------------
    def summary(self) -> str:
        """A text summary laid out like lme4's ``summary(merMod)``."""
        from ._summary import lmm_summary

        return lmm_summary(self)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from ._summary import lmm_html

        return lmm_html(self)
