"""Plots of fitted mixed models, one call each (the seed chapter's ggplots, in matplotlib).

Reached through ``m.plot``: :meth:`PlotAccessor.caterpillar`, :meth:`~PlotAccessor.shrinkage`,
:meth:`~PlotAccessor.fitted`, :meth:`~PlotAccessor.marginal_cov`,
:meth:`~PlotAccessor.residuals` and :meth:`~PlotAccessor.profile`. Every method returns a
:class:`matplotlib.figure.Figure` built without pyplot's global state (so nothing pops up and
nothing leaks between calls); show it in a notebook by leaving it as the cell's value, or save it
with ``fig.savefig(path)``. All share one quiet style: light grid, no top/right spines, one
accent colour for what matters (significant effects, the mixed model) and grey for the rest.

This module reads fitted results only; the numerics never import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import DataError, MixedModelsError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import LinearMixedModel

#: the seed's palette: accent (clr2), muted grey (clr0d), a second colour (clr1), light fill
ACCENT = "#B35136"
MUTED = "#8F8F8F"
SECOND = "#3D6E8F"
LIGHT = "#E3E3E3"

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": True,
    "grid.color": "#EBEBEB",
    "grid.linewidth": 0.6,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        yield


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.3):
    """A Figure with a grid of axes, without pyplot (no global state, no GUI backend)."""
    from ._display import Figure

    # a Figure that Jupyter shows as PNG without pyplot (see _display)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _effect_label(column: str) -> str:
    return "Intercept" if column == "(Intercept)" else column


class PlotAccessor:
    """The ``m.plot`` namespace of a fitted model.

    Parameters
    ----------
    model : LinearMixedModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> fig = m.plot.caterpillar(nsim=100, seed=1)
    >>> type(fig).__name__
    'Figure'
    """

    def __init__(self, model: LinearMixedModel):
        self._model = model

    # -- caterpillar --------------------------------------------------------------------
    def caterpillar(
        self,
        level: float = 0.95,
        *,
        simulate: bool = True,
        nsim: int = 1000,
        seed: Any = None,
    ) -> Figure:
        """Random effects ranked with their intervals; those excluding 0 in the accent colour.

        One panel per grouping factor and effect, as the seed's REsim plots.

        Parameters
        ----------
        level : float
            Interval coverage: median ± z·sd of the draws (or mode ± z·conditional SD).
        simulate : bool
            Use :meth:`resim` draws (merTools' way, the default) or the conditional modes
            and conditional SDs directly.
        nsim, seed
            Passed to :meth:`resim`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level: expecting a number between 0 and 1. Got {level!r}.")
        z = stats.norm.ppf(1.0 - (1.0 - level) / 2.0)
        if simulate:
            table = self._model.resim(nsim=nsim, seed=seed)
            centre, spread = table["median"].to_numpy(), table["sd"].to_numpy()
        else:
            table = self._model.random_effects()
            centre, spread = table["value"].to_numpy(), table["se"].to_numpy()
        table = table.assign(centre=centre, lower=centre - z * spread, upper=centre + z * spread)
        panels = list(table.groupby(["group_var", "effect"], sort=False))
        with _style():
            ncols = min(len(panels), 3)
            nrows = -(-len(panels) // ncols)
            fig, axes = _figure(ncols, nrows, width=4.4 if ncols > 1 else 7.0, height=3.2)
            for ax, ((group_var, effect), part) in zip(axes, panels, strict=False):
                part = part.sort_values("centre")
                rank = np.arange(1, len(part) + 1)
                excludes = ((part["lower"] > 0) | (part["upper"] < 0)).to_numpy()
                colours = np.where(excludes, ACCENT, MUTED)
                width = 1.6 if len(part) < 60 else 0.9
                ax.vlines(rank, part["lower"], part["upper"], colors=colours, linewidth=width)
                ax.scatter(rank, part["centre"], s=4, color="#333333", zorder=3, linewidths=0)
                ax.axhline(0.0, color="#333333", linestyle=":", linewidth=0.8)
                ax.set_title(f"{group_var}: {effect}")
                ax.set_xlabel(f"{group_var} (ranked)")
                ax.set_ylabel("effect")
                ax.set_xlim(0, len(part) + 1)
                ax.text(
                    0.02,
                    0.97,
                    f"{int(excludes.sum())} of {len(part)} intervals exclude 0",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=8,
                    color=ACCENT,
                )
            for ax in axes[len(panels) :]:
                ax.set_visible(False)
            how = "REsim median ± z·sd" if simulate else "conditional mode ± z·SD"
            fig.suptitle(f"Random effects with {level:.0%} intervals ({how})", fontsize=10)
        return fig

    # -- shrinkage ------------------------------------------------------------------------
    def _term_index(self, group: str | None) -> int:
        terms = self._model.crossprods.terms
        if group is None:
            return 0
        for index, term in enumerate(terms):
            if term.group == group:
                return index
        raise DataError(
            f"group: {group!r} is not a grouping factor of the model. "
            f"Expecting one of {sorted({t.group for t in terms})}."
        )

    def shrinkage(self, group: str | None = None) -> Figure:
        """Per-group least-squares estimates against the mixed model's group coefficients.

        Densities of the separate (:func:`mixedmodels.lmlist`) and the mixed-model estimates
        per effect, and for two or more effects arrows from each group's separate estimate to
        its mixed-model estimate: the mixed model pulls extreme groups toward the population.

        Parameters
        ----------
        group : str, optional
            The grouping factor; the one with most levels when omitted.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .lmlist import lmlist

        model = self._model
        term = model.crossprods.terms[self._term_index(group)]
        response = model.design.spec.response
        separate = lmlist(f"{response} ~ {term.expr}", model.design.frame, group=term.group)
        separate = separate.pivot(index="group", columns="term", values="value")
        coef = model.coef()
        coef = coef[coef["group_var"] == term.group]
        mixed = coef.pivot(index="group", columns="effect", values="value")
        effects = [_effect_label(c) for c in term.columns]
        missing = [e for e in effects if e not in mixed.columns or e not in separate.columns]
        if missing:
            raise DataError(
                f"shrinkage plots need every effect of ({term.expr} | {term.group}) among the "
                f"fixed effects too; {missing} are not. Add them to the fixed part."
            )
        separate = separate.reindex(mixed.index)
        with _style():
            ncols = len(effects) + (1 if len(effects) >= 2 else 0)
            fig, axes = _figure(ncols, width=3.8, height=3.2)
            for ax, effect in zip(axes, effects, strict=False):
                values = {
                    "separate (lmlist)": separate[effect].to_numpy(dtype=float),
                    "mixed model": mixed[effect].to_numpy(dtype=float),
                }
                finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
                low, high = np.quantile(finite, [0.005, 0.995])
                pad = 0.15 * (high - low if high > low else 1.0)
                grid = np.linspace(low - pad, high + pad, 256)
                for (label, v), colour in zip(values.items(), (MUTED, ACCENT), strict=True):
                    v = v[np.isfinite(v)]
                    if v.size > 1 and np.ptp(v) > 0:
                        density = stats.gaussian_kde(v)(grid)
                        ax.fill_between(grid, density, color=colour, alpha=0.25, linewidth=0)
                        ax.plot(grid, density, color=colour, linewidth=1.4, label=label)
                ax.set_title(effect)
                ax.set_xlabel(f"{effect} per {term.group}")
                ax.set_ylabel("density")
            axes[0].legend(loc="upper left", fontsize=8)
            if len(effects) >= 2:
                ax = axes[len(effects)]
                first, second = effects[0], effects[1]
                x0, y0 = separate[first].to_numpy(float), separate[second].to_numpy(float)
                x1, y1 = mixed[first].to_numpy(float), mixed[second].to_numpy(float)
                ok = np.isfinite(x0) & np.isfinite(y0)
                ax.quiver(
                    x0[ok],
                    y0[ok],
                    (x1 - x0)[ok],
                    (y1 - y0)[ok],
                    angles="xy",
                    scale_units="xy",
                    scale=1,
                    color=MUTED,
                    width=0.003,
                    alpha=0.7,
                )
                ax.scatter(x1, y1, s=6, color=ACCENT, zorder=3, label="mixed model")
                fixef = model.fixef
                names = {_effect_label(c): c for c in model.design.fixed_names}
                ax.scatter(
                    [fixef[names[first]]],
                    [fixef[names[second]]],
                    marker="+",
                    s=120,
                    color="black",
                    zorder=4,
                    label="population",
                )
                ax.set_xlabel(first)
                ax.set_ylabel(second)
                ax.set_title("separate → mixed")
                ax.legend(loc="best", fontsize=8)
            fig.suptitle(f"Shrinkage of per-{term.group} estimates", fontsize=10)
        return fig

    # -- fitted lines -----------------------------------------------------------------------
    def _x_column(self, x: str | None) -> str:
        frame = self._model.design.frame
        if x is not None:
            if x not in frame.columns:
                raise DataError(f"x: {x!r} is not a column of the model frame.")
            return x
        for term in self._model.crossprods.terms:
            for column in term.columns:
                if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
                    return column
        for column in frame.columns:
            if column != self._model.design.spec.response and pd.api.types.is_numeric_dtype(
                frame[column]
            ):
                return column
        raise DataError("fitted plots need a numeric covariate for the x axis; the model has none.")

    def fitted(
        self,
        groups: Sequence[Any] | None = None,
        *,
        group: str | None = None,
        x: str | None = None,
        lm: bool = True,
    ) -> Figure:
        """Data and fitted lines of chosen groups against the population line.

        The left panel shows the chosen groups' observations and their fitted lines (fixed
        plus random effects), the population line (random effects 0) and, optionally, the
        ordinary least-squares line; the right panel every group's line.

        Parameters
        ----------
        groups : sequence, optional
            Levels of the grouping factor to show; the first two when omitted.
        group : str, optional
            The grouping factor; the one with most levels when omitted.
        x : str, optional
            The covariate on the x axis; the first numeric random-slope (else fixed) column.
        lm : bool
            Add the line of :func:`mixedmodels.lm` on the fixed part.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        term = model.crossprods.terms[self._term_index(group)]
        frame = model.design.frame.reset_index(drop=True)
        xcol = self._x_column(x)
        labels = np.asarray(term.levels, dtype=object)[term.codes]
        chosen = [str(g) for g in (groups if groups is not None else term.levels[:2])]
        unknown = [g for g in chosen if g not in set(term.levels)]
        if unknown:
            raise DataError(
                f"groups: {unknown} are not levels of {term.group!r} "
                f"(e.g. {list(term.levels[:3])})."
            )
        response = model.design.spec.response
        y = model.design.y
        with_re = model.predict()
        population = model.predict(re_form="~0")
        colours = [ACCENT, SECOND, "#C99A2E", "#6B8E23", "#7B5EA7", "#2F4F4F"]
        with _style():
            fig, axes = _figure(2, width=4.6, height=3.5)
            ax = axes[0]
            xs = frame[xcol].to_numpy(dtype=float)
            for i, level in enumerate(chosen):
                rows = np.flatnonzero(labels == level)
                order = rows[np.argsort(xs[rows], kind="stable")]
                colour = colours[i % len(colours)]
                ax.scatter(xs[rows], y[rows], s=24, color=colour, alpha=0.85, linewidths=0)
                ax.plot(
                    xs[order], with_re[order], color=colour, linewidth=1.4, label=f"{level} (lmm)"
                )
            order = np.argsort(xs, kind="stable")
            if lm:
                from .linear import lm as fit_lm

                ols = fit_lm(f"{response} ~ {model.design.spec.fixed}", frame)
                ax.plot(xs[order], ols.fitted()[order], color=MUTED, linewidth=2.4, label="lm")
            ax.plot(
                xs[order],
                population[order],
                color="black",
                linewidth=1.1,
                linestyle="--",
                label="population (lmm)",
            )
            ax.set_xlabel(xcol)
            ax.set_ylabel(response)
            ax.set_title(f"Chosen {term.group}s")
            ax.legend(fontsize=8, loc="best")
            ax = axes[1]
            for code in range(term.n_levels):
                rows = np.flatnonzero(term.codes == code)
                rows = rows[np.argsort(xs[rows], kind="stable")]
                ax.plot(xs[rows], with_re[rows], color=MUTED, alpha=0.35, linewidth=0.6)
            ax.plot(xs[order], population[order], color=ACCENT, linewidth=1.8, label="population")
            ax.set_xlabel(xcol)
            ax.set_ylabel(response)
            ax.set_title(f"Every {term.group} (lmm)")
            ax.legend(fontsize=8, loc="best")
            ax.sharey(axes[0])
        return fig

    # -- marginal covariance ------------------------------------------------------------------
    def marginal_cov(
        self, groups: Sequence[Any] | None = None, *, group: str | None = None
    ) -> Figure:
        """Heatmap of the marginal covariance Var(y) of the rows of chosen groups.

        Uses ``m.marginal_cov(groups, group_var)`` (which knows residual structures) when
        the model provides it; otherwise σ²(ZΛΛᵀZᵀ + I) for the chosen rows
        (:func:`marginal_covariance`).

        Parameters
        ----------
        groups : sequence, optional
            Levels of the grouping factor whose rows to show; the first five when omitted.
        group : str, optional
            The grouping factor; the one with most levels when omitted.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        term = model.crossprods.terms[self._term_index(group)]
        chosen = list(groups) if groups is not None else list(term.levels[:5])
        provider = getattr(model, "marginal_cov", None)
        if callable(provider):
            rows = _rows_of(term, chosen)
            cov = provider(groups=[str(g) for g in chosen], group_var=term.group)
            cov = cov.toarray() if hasattr(cov, "toarray") else np.asarray(cov, dtype=float)
        else:
            cov, rows = marginal_covariance(model, chosen, group=term.group)
        with _style():
            fig, axes = _figure(1, width=5.6, height=4.8)
            ax = axes[0]
            image = ax.imshow(cov, cmap="YlOrRd", interpolation="nearest")
            ax.grid(False)
            fig.colorbar(image, ax=ax, shrink=0.8, label="covariance")
            # boundaries between groups
            labels = np.asarray(term.levels, dtype=object)[term.codes[rows]]
            edges = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
            for edge in edges:
                ax.axhline(edge, color="white", linewidth=0.8)
                ax.axvline(edge, color="white", linewidth=0.8)
            ax.set_xlabel("observation")
            ax.set_ylabel("observation")
            ax.set_title(f"Var(y) for {term.group} {', '.join(map(str, chosen))}")
        return fig

    # -- residual diagnostics ---------------------------------------------------------------
    def residuals(self) -> Figure:
        """Residuals against fitted values, a normal QQ plot of the residuals and one of the
        standardized random effects (every effect of every grouping factor).

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        fitted, resid = model.fitted(), model.residuals()
        with _style():
            fig, axes = _figure(3, width=3.7, height=3.2)
            ax = axes[0]
            ax.scatter(fitted, resid, s=5, color=MUTED, alpha=0.6, linewidths=0)
            ax.axhline(0.0, color=ACCENT, linewidth=1.0)
            order = np.argsort(fitted)
            window = max(5, len(fitted) // 20)
            smooth = pd.Series(resid[order]).rolling(window, center=True, min_periods=1).mean()
            ax.plot(fitted[order], smooth, color="black", linewidth=1.0)
            ax.set_xlabel("fitted")
            ax.set_ylabel("residual")
            ax.set_title("Residuals vs fitted")
            _qq(axes[1], resid / model.sigma, MUTED, None)
            axes[1].set_title("Normal QQ: residuals / σ")
            table = model.random_effects()
            colours = [ACCENT, SECOND, "#C99A2E", "#6B8E23", MUTED]
            for i, ((group_var, effect), part) in enumerate(
                table.groupby(["group_var", "effect"], sort=False)
            ):
                values = part["value"].to_numpy()
                sd = values.std(ddof=1) if len(values) > 1 else 0.0
                standardized = values / sd if sd > 0 else values
                _qq(axes[2], standardized, colours[i % len(colours)], f"{group_var}: {effect}")
            axes[2].set_title("Normal QQ: random effects")
            axes[2].legend(fontsize=7, loc="upper left")
        return fig

    # -- profile ------------------------------------------------------------------------------
    def profile(self, **kwargs: Any) -> Figure:
        """ζ traces of the likelihood profile, one panel per parameter (lme4's ``xyplot``).

        Needs ``m.profile()`` (a table with columns ``parameter, value, zeta``); keyword
        arguments are passed to it.

        Returns
        -------
        matplotlib.figure.Figure
        """
        provider = getattr(self._model, "profile", None)
        if not callable(provider):
            raise MixedModelsError(
                "profile plots need likelihood profiles (m.profile()), which this version of "
                "mixedmodels does not provide yet."
            )
        table = provider(**kwargs)
        needed = {"parameter", "value", "zeta"}
        if not needed.issubset(getattr(table, "columns", ())):
            raise MixedModelsError(
                f"m.profile() returned columns {list(getattr(table, 'columns', []))}; "
                f"profile plots expect {sorted(needed)}."
            )
        panels = list(table.groupby("parameter", sort=False))
        with _style():
            ncols = min(len(panels), 4)
            nrows = -(-len(panels) // ncols)
            fig, axes = _figure(ncols, nrows, width=3.0, height=2.7)
            for ax, (parameter, part) in zip(axes, panels, strict=False):
                part = part.sort_values("value")
                ax.plot(part["value"], part["zeta"], color=ACCENT, linewidth=1.4)
                for level in (-1.96, 0.0, 1.96):
                    ax.axhline(level, color=MUTED, linestyle=":", linewidth=0.8)
                ax.set_title(str(parameter))
                ax.set_xlabel("value")
                ax.set_ylabel("ζ")
            for ax in axes[len(panels) :]:
                ax.set_visible(False)
        return fig


def _qq(ax: Axes, values: np.ndarray, colour: str, label: str | None) -> None:
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    if n == 0:
        return
    # R's ppoints
    a = 3.0 / 8.0 if n <= 10 else 0.5
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.scatter(theoretical, values, s=6, color=colour, alpha=0.7, linewidths=0, label=label)
    lim = [theoretical.min(), theoretical.max()]
    ax.plot(lim, lim, color="black", linewidth=0.8)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("sample quantile")


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
    >>> from mixedmodels.plots import marginal_covariance
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
    cov = model.sigma**2 * np.eye(rows.size)
    for t, sigma_term in zip(terms, model._term_covariances(), strict=True):
        x = t.matrix[rows]
        same = t.codes[rows][:, None] == t.codes[rows][None, :]
        cov += same * (x @ sigma_term @ x.T)
    return cov, rows
