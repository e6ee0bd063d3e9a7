"""to_latex against equatiomatic's extract_eq output for the seed's models.

The random-intercept string is the seed chapter's equation (equatiomatic's output, line breaks
as equatiomatic prints them); the random-slope string is equatiomatic's lmerMod layout (its
test snapshots) for ``gpa ~ occasion + (1 + occasion | student)``.
"""

from __future__ import annotations

import re

import mixedmodels as mm

RANDOM_INTERCEPT = r"""$$
\begin{aligned}
  \operatorname{gpa}_{i}  &\sim N \left(\alpha_{j[i]} + \beta_{1}(\operatorname{occasion}), \sigma^2 \right) \\
    \alpha_{j}  &\sim N \left(\mu_{\alpha_{j}}, \sigma^2_{\alpha_{j}} \right)
    \text{, for student j = 1,} \dots \text{,J}
\end{aligned}
$$"""  # noqa: E501

RANDOM_SLOPE = r"""$$
\begin{aligned}
  \operatorname{gpa}_{i}  &\sim N \left(\alpha_{j[i]} + \beta_{1j[i]}(\operatorname{occasion}), \sigma^2 \right) \\    
\left(
  \begin{array}{c} 
    \begin{aligned}
      &\alpha_{j} \\
      &\beta_{1j}
    \end{aligned}
  \end{array}
\right)
  &\sim N \left(
\left(
  \begin{array}{c} 
    \begin{aligned}
      &\mu_{\alpha_{j}} \\
      &\mu_{\beta_{1j}}
    \end{aligned}
  \end{array}
\right)
, 
\left(
  \begin{array}{cc}
     \sigma^2_{\alpha_{j}} & \rho_{\alpha_{j}\beta_{1j}} \\ 
     \rho_{\beta_{1j}\alpha_{j}} & \sigma^2_{\beta_{1j}}
  \end{array}
\right)
 \right)
    \text{, for student j = 1,} \dots \text{,J}
\end{aligned}
$$"""  # noqa: E501, W291

# The seed prints the equation with whitespace collapsed:
SEED_TEXT = (
    r"\[ \begin{aligned} \operatorname{gpa}_{i} &\sim N \left(\alpha_{j[i]} + "
    r"\beta_{1}(\operatorname{occasion}), \sigma^2 \right) \\ \alpha_{j} &\sim N "
    r"\left(\mu_{\alpha_{j}}, \sigma^2_{\alpha_{j}} \right) \text{, for student j = 1,} "
    r"\dots \text{,J} \end{aligned} \]"
)


def test_random_intercept_equation(seed_models):
    latex = seed_models["gpa_mixed"].to_latex()
    assert latex == RANDOM_INTERCEPT
    collapsed = re.sub(r"\s+", " ", latex.replace("$$", "").strip())
    assert f"\\[ {collapsed} \\]" == SEED_TEXT


def test_random_slope_equation(seed_models):
    assert seed_models["gpa_mixed2"].to_latex() == RANDOM_SLOPE


def test_crossed_nested_and_uncorrelated(seed_models, gpa):
    crossed = seed_models["pupils_crossed"].to_latex()
    assert r"\alpha_{j[i],k[i]}" in crossed
    assert r"\text{, for primary\_school\_id j = 1,} \dots \text{,J} \\" in crossed
    assert r"\text{, for secondary\_school\_id k = 1,} \dots \text{,K}" in crossed
    assert r"\beta_{1}(\operatorname{sex}_{\operatorname{female}})" in crossed
    nested = seed_models["nurses_hierach"].to_latex()
    # more than three predictors: the linear predictor gets its own mu line
    assert r"&\sim N \left(\mu, \sigma^2 \right) \\" + "\n    \\mu &=\\alpha_{j[i],k[i]}" in nested
    assert r"\text{, for hospital:ward" in nested
    uncorrelated = mm.lmer("gpa ~ occasion + (occasion || student)", gpa).to_latex()
    assert r"\sigma^2_{\alpha_{j}} & 0 \\" in uncorrelated


SDATING_EQUATION = r"""$$
\begin{aligned}
  \operatorname{decision}_{i}  &\sim \operatorname{Binomial}(n = 1, \operatorname{prob}_{\operatorname{decision} = \operatorname{Yes}} = \widehat{P}) \\
    \log\left[\frac{\hat{P}}{1 - \hat{P}} \right] &=\alpha_{j[i]} + \beta_{1}(\operatorname{attractive\_sc}) \\
    \alpha_{j}  &\sim N \left(\mu_{\alpha_{j}}, \sigma^2_{\alpha_{j}} \right)
    \text{, for iid j = 1,} \dots \text{,J}
\end{aligned}
$$"""  # noqa: E501


def test_binomial_glmm_equation():
    data = mm.datasets.speed_dating(seed=1, n_raters=60, dates_per_rater=10)
    g = mm.glmer("decision ~ attractive_sc + (1 | iid)", data, family="binomial")
    assert g.to_latex() == SDATING_EQUATION


def test_poisson_glmm_equation():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(20), 10)
    eta = 1 + 0.5 * rng.normal(size=20)[group]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": rng.normal(size=200), "g": group})
    text = mm.glmer("y ~ x + (1 | g)", data, family="poisson").to_latex()
    assert r"\operatorname{y}_{i}  &\sim \operatorname{Poisson}(\lambda_{i}) \\" in text
    assert r"\log(\lambda_{i}) &=\alpha_{j[i]} + \beta_{1}(\operatorname{x})" in text


def test_gamma_glmm_equation():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    group = np.repeat(np.arange(20), 15)
    x = rng.normal(size=300)
    mean = np.exp(1 + 0.4 * x + 0.3 * rng.normal(size=20)[group])
    data = pd.DataFrame({"y": rng.gamma(4.0, mean / 4.0), "x": x, "g": group})
    model = mm.glmer("y ~ x + (1 | g)", data, family="Gamma", link="log")
    text = model.to_latex()
    dispersion = f"{model.sigma**2:.3g}"
    assert (
        rf"\operatorname{{y}}_{{i}}  &\sim \operatorname{{Gamma}}(\mu_{{i}}, "
        rf"\sigma^{{2}} = {dispersion}) \\"
    ) in text
    assert r"\log(\mu_{i}) &=\alpha_{j[i]} + \beta_{1}(\operatorname{x})" in text
