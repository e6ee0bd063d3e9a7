"""mixedmodels: lme4-syntax linear mixed models with lme4's numbers.

Examples
--------
>>> import mixedmodels as mm
>>> data = mm.datasets.gpa(seed=1)
>>> m = mm.lmer("gpa ~ occasion + (1 + occasion | student)", data)
>>> m.fixed_effects()["term"].tolist()
['Intercept', 'occasion']
"""

from . import datasets
from .comparison import aic_table
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
from .fit import deviance_function, lmer, lmer_design
from .fit_glmm import glmer, glmer_nb
from .glmm_results import GeneralizedLinearMixedModel
from .inference.anova import anova
from .linear import LinearModel, lm
from .lmlist import lmlist
from .optimize import Control
from .report import report
from .residual import (
    CorAR1,
    CorCAR1,
    CorCompSymm,
    CorSymm,
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
)
from .results import LinearMixedModel

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
