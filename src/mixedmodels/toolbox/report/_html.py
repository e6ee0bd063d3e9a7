"""A self-contained HTML report of a fitted mixed model.

Everything is in the one file: the stylesheet is inline, every figure is a base64 PNG shown at
its natural size, and the equation is MathML converted here from the LaTeX of ``to_latex``
(browsers render it natively: no MathJax, no CDN, no network), so the page opens anywhere,
offline, and can be mailed as is.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import MixedModelsError
from ..mathml import latex_to_mathml

_CSS = """
:root { --accent: #B35136; --muted: #6f6f6f; --line: #e4e4e4; --bg: #fafafa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: #222;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; color: var(--accent); }
.formula { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 16px; }
.sub { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px;
        padding: 8px 14px; min-width: 120px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 18px; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line);
        font-size: 13.5px; width: 100%; }
th, td { padding: 5px 10px; text-align: right; border-bottom: 1px solid var(--line); }
th { background: #f1f1f1; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
tr:last-child td { border-bottom: none; }
.equation { background: #fff; border: 1px solid var(--line); border-radius: 6px;
            padding: 12px 16px; overflow-x: auto; font-size: 17px; }
pre { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px;
      overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
figure { margin: 0 0 18px; background: #fff; border: 1px solid var(--line); border-radius: 6px;
         padding: 10px; width: fit-content; max-width: 100%; }
/* natural size (the width attribute), shrunk only to fit a narrow window */
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.note { color: var(--muted); font-size: 13px; }
"""


#: the figures are drawn at twice the screen's 96 px per inch and shown at half their pixel
#: size: their natural size, sharp on high-density screens
_DPI = 192
_SCREEN_DPI = 96


def _png(fig: Any) -> tuple[str, int, int]:
    """(base64 PNG, CSS width, CSS height) of a figure at its natural size."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    data = buffer.getvalue()
    # the IHDR chunk of every PNG holds width and height as big-endian 32-bit integers
    width, height = (int.from_bytes(data[i : i + 4], "big") for i in (16, 20))
    scale = _SCREEN_DPI / _DPI
    encoded = base64.b64encode(data).decode("ascii")
    return encoded, round(width * scale), round(height * scale)


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(
                lambda v: (
                    "" if pd.isna(v) else f"{v:.{digits}g}" if abs(v) >= 1e4 else f"{v:.{digits}f}"
                )
            )
    return shown.to_html(index=False, border=0, na_rep="", escape=True)


def _card(key: str, value: Any) -> str:
    return (
        f'<div class="card"><div class="k">{html.escape(key)}</div>'
        f'<div class="v">{html.escape(str(value))}</div></div>'
    )


def _figures(
    model: Any, nsim: int, seed: Any, progress: bool | None = None
) -> list[tuple[str, tuple[str, int, int]]]:
    """(caption, (base64 PNG, width, height)) of every plot the model supports; the others
    are skipped."""
    plots: list[tuple[str, Callable[[], Any]]] = [
        (
            "Random effects ranked with 95% REsim intervals; accent: interval excludes 0.",
            lambda: model.plot.caterpillar(nsim=nsim, seed=seed),
        ),
        (
            "Per-group fits of the same fixed part (grey) against the mixed model's "
            "(accent): shrinkage toward the population.",
            lambda: model.plot.shrinkage(),
        ),
        (
            "Two groups' data and fitted lines (other covariates at their means or "
            "reference levels) against the population line; right: every group's line.",
            lambda: model.plot.fitted(),
        ),
        (
            "Marginal covariance of the first groups' observations (Var(y); for a GLMM "
            "Cov(η) of the linear predictor).",
            lambda: model.plot.marginal_cov(),
        ),
        ("Residual diagnostics.", lambda: model.plot.residuals()),
    ]
    from matplotlib.figure import Figure

    from ..._progress import progress_bar

    out = []
    for caption, make in progress_bar(progress, iterable=plots, desc="report figures"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
        except (MixedModelsError, ValueError):
            continue  # the plot does not apply to this model (e.g. no numeric covariate)
        if isinstance(fig, Figure):
            out.append((caption, _png(fig)))
    return out


def _has_scale(model: Any) -> bool:
    """False for binomial and Poisson fits, whose σ is fixed at 1 (lme4 prints none)."""
    family = getattr(model, "family", None)
    return hasattr(model, "sigma") and (family is None or not family.scale_free)


def _fitted_by(model: Any) -> str:
    family = getattr(model, "family", None)
    if family is None:
        method = "REML" if getattr(model, "reml", False) else "maximum likelihood"
        return f"Linear mixed model fitted by mixedmodels with {method}."
    return (
        f"Generalized linear mixed model ({family.r_name} family, {family.link.name} link) "
        "fitted by mixedmodels with maximum likelihood."
    )


def report_html(
    model: Any,
    *,
    title: str | None = None,
    nsim: int = 500,
    seed: Any = 1,
    progress: bool | None = None,
) -> str:
    """The report of :func:`report` as an HTML string.

    Parameters
    ----------
    model : LinearMixedModel
    title : str, optional
    nsim : int
        Draws for the REsim intervals of the caterpillar plot.
    seed : int, optional
        Seed of those draws (the report is reproducible).
    progress : bool, optional
        A progress bar while the figures are drawn; by default shown in a terminal or a
        notebook only.

    Returns
    -------
    str
    """
    criterion = "REML criterion" if getattr(model, "reml", False) else "deviance"
    ngroups = ", ".join(f"{g}: {n}" for g, n in model.ngroups.items())
    cards = [
        ("observations", model.nobs),
        ("groups", ngroups),
        (criterion, f"{model.deviance:.2f}"),
        ("logLik", f"{model.loglik:.2f}"),
        ("AIC", f"{model.aic:.2f}"),
        ("BIC", f"{model.bic:.2f}"),
        ("σ (residual)", f"{model.sigma:.4f}" if _has_scale(model) else "—"),
        ("converged", "yes" if getattr(model, "converged", True) else "NO"),
        ("singular", "YES" if model.is_singular else "no"),
    ]
    try:
        equation = latex_to_mathml(model.to_latex())
    except (MixedModelsError, ValueError) as error:  # a model kind to_latex has no form for
        equation = f'<p class="note">No equation: {html.escape(str(error))}</p>'
    sections = [
        f"<header><h1>{html.escape(title or 'Mixed model report')}</h1>"
        f'<div class="formula">{html.escape(model.formula)}</div>'
        f'<div class="sub">{html.escape(_fitted_by(model))}</div></header>',
        f'<div class="cards">{"".join(_card(k, v) for k, v in cards)}</div>',
        "<h2>Model equation</h2>",
        f'<div class="equation">{equation}</div>',
        '<p class="note">In equatiomatic\'s notation; <code>m.to_latex()</code> gives the LaTeX '
        "source.</p>",
        '<div class="grid"><section><h2>Fixed effects</h2>',
        _table(model.fixed_effects()),
        "</section><section><h2>Variance components</h2>",
        _table(model.variance_components()),
        "</section></div>",
        "<h2>Random effects (first 10 rows)</h2>",
        _table(model.random_effects().head(10)),
        "<h2>Plots</h2>",
    ]
    for caption, (data, width, height) in _figures(model, nsim, seed, progress):
        sections.append(
            f'<figure><img alt="{html.escape(caption)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    sections.append("<h2>Summary</h2>")
    sections.append(f"<pre>{html.escape(model.summary())}</pre>")
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title or model.formula)}</title>\n<style>{_CSS}</style>\n"
        f"</head>\n<body><main>\n{body}\n</main></body>\n</html>\n"
    )


def report(
    model: Any,
    path: str | Path,
    *,
    title: str | None = None,
    nsim: int = 500,
    seed: Any = 1,
    progress: bool | None = None,
) -> Path:
    """Write one self-contained HTML report of a fitted model.

    The page shows the formula and the model equation (MathML), fit statistics, the
    fixed-effects, variance-components and random-effects tables and the plots of
    ``m.plot``; images are embedded as base64 PNG and nothing is loaded from the network.

    Parameters
    ----------
    model : LinearMixedModel
    path : str or Path
        The HTML file to write (its folder is created).
    title : str, optional
    nsim : int
        Draws for the REsim intervals.
    seed : int, optional
    progress : bool, optional
        A progress bar while the figures are drawn; by default shown in a terminal or a
        notebook only.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> out = mm.report(m, pathlib.Path(tempfile.mkdtemp()) / "gpa.html", nsim=100)
    >>> out.read_text().count("<img") >= 4
    True
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    html = report_html(model, title=title, nsim=nsim, seed=seed, progress=progress)
    target.write_text(html, encoding="utf-8")
    return target
