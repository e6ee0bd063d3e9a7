"""mixedmodels: lme4-syntax linear mixed models with lme4's numbers.

Examples
--------
>>> import mixedmodels as mm
>>> data = mm.datasets.gpa(seed=1)
>>> m = mm.lmer("gpa ~ occasion + (1 + occasion | student)", data)
>>> m.fixed_effects()["term"].tolist()
['Intercept', 'occasion']
"""

from typing import TYPE_CHECKING, Any

from . import datasets
from .errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MissingDataWarning,
    MixedModelsError,
    ProfileWarning,
    RankDeficiencyWarning,
    RefitWarning,
    ScaleWarning,
    SingularFitWarning,
    UnsupportedToolError,
)
from .fitting.lmer import lmer
from .frontend.lmer_design import lmer_design
from .inference.anova import anova
from .inference.comparison import aic_table
from .lmm.devfun import deviance_function
from .lmm.optimize import Control
from .models.linear import LinearModel, lm
from .models.linear_mixed import LinearMixedModel
from .models.lmlist import lmlist
from .residual.correlation import CorAR1, CorCAR1, CorCompSymm, CorSymm
from .residual.variance import VarComb, VarConstPower, VarExp, VarFixed, VarIdent, VarPower
from .toolbox.report import report

if TYPE_CHECKING:
    from .fitting.glmer import glmer, glmer_nb
    from .models.generalized_mixed import GeneralizedLinearMixedModel

__version__ = "0.1.0"

__all__ = [
    "Control",
    "ConvergenceWarning",
    "CorAR1",
    "CorCAR1",
    "CorCompSymm",
    "CorSymm",
    "DataError",
    "FormulaError",
    "GeneralizedLinearMixedModel",
    "LinearMixedModel",
    "LinearModel",
    "MissingDataWarning",
    "ScaleWarning",
    "MixedModelsError",
    "UnsupportedToolError",
    "ProfileWarning",
    "RankDeficiencyWarning",
    "RefitWarning",
    "SingularFitWarning",
    "VarExp",
    "VarComb",
    "VarConstPower",
    "VarFixed",
    "VarIdent",
    "VarPower",
    "aic_table",
    "anova",
    "datasets",
    "deviance_function",
    "glmer",
    "glmer_nb",
    "lm",
    "lmer",
    "lmer_design",
    "lmlist",
    "report",
]


def __getattr__(name: str) -> Any:
    """The GLMM names on first use: ``glmer`` pulls the families, and with them
    ``scipy.stats`` (about a second), which an ``lmer`` fit does not need."""
    if name in ("glmer", "glmer_nb"):
        from .fitting.glmer import glmer, glmer_nb

        value = {"glmer": glmer, "glmer_nb": glmer_nb}[name]
    elif name == "GeneralizedLinearMixedModel":
        from .models.generalized_mixed import GeneralizedLinearMixedModel as value
    else:
        raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")
    globals()[name] = value
    return value
