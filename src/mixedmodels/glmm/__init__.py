"""The generalized linear mixed-model engine: families, PIRLS, Laplace and Gauss-Hermite.

Owns the GLM families and links with R's deviance residuals and log-likelihoods
(:mod:`.families`), PIRLS for the conditional modes with the Laplace and adaptive
Gauss-Hermite deviances (:mod:`.pirls`), the reweighted ``[Z X z]`` blocks each PIRLS step
rebuilds (:mod:`.blocks`), the exact gradient of the Laplace deviance (:mod:`.gradient`) and
the profiled-β, θ-by-L-BFGS-B-or-BOBYQA optimization with its Hessian (:mod:`.optimize`).

May import: :mod:`mixedmodels.lmm` (the blocked factor and the optimizer it builds on),
:mod:`mixedmodels.frontend` and :mod:`mixedmodels.errors`.  Never fitted models, inference
or the toolbox.
"""
