"""The fitting drivers: formula and data in, a fitted model out.

Owns ``lmer`` (:mod:`.lmer`: lme4's ``lFormula`` → ``mkLmerDevfun`` → ``optimizeLmer`` →
``mkMerMod``, whose first three stages are public in the layers below:
:func:`~mixedmodels.frontend.lmer_design.lmer_design`,
:func:`~mixedmodels.lmm.devfun.deviance_function`,
:func:`~mixedmodels.lmm.devfun.optimize_deviance`),
``lmer`` with a residual structure (:mod:`.residual`: residual parameters optimized with θ on
whitened cross-products) and ``glmer``/``glmer_nb`` (:mod:`.glmer`: the gradient path or
lme4's two stages).

May import: everything below it in the pipeline (:mod:`mixedmodels.frontend`,
:mod:`mixedmodels.lmm`, :mod:`mixedmodels.residual`, :mod:`mixedmodels.glmm`,
:mod:`mixedmodels.models`) and :mod:`mixedmodels.scale` for data beyond memory.  Only the
package top (``mixedmodels/__init__.py``, the CLI, the demo) imports this.
"""
