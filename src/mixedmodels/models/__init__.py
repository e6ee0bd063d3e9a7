"""Fitted models: accessors, tidy tables, prediction, summaries and their own objective.

Owns :class:`~.linear_mixed.LinearMixedModel` (lmer fits),
:class:`~.generalized_mixed.GeneralizedLinearMixedModel` (glmer fits), the model's own
objective every tool goes through (:mod:`.objective`: lme4's ``devfun``/``refit``,
MixedModels.jl's ``objective!``/``refit!``), the lme4-like text and HTML summaries
(:mod:`._summary`), ``lm`` with its :class:`~.linear.LinearModel` and ``lmList``
(:mod:`.lmlist`).

May import: the engines (:mod:`mixedmodels.frontend`, :mod:`mixedmodels.lmm`,
:mod:`mixedmodels.residual`, :mod:`mixedmodels.glmm`) and, for the one-line methods that
delegate to them, :mod:`mixedmodels.inference` and :mod:`mixedmodels.toolbox`.  Never the
fitting drivers in :mod:`mixedmodels.fitting`.
"""
