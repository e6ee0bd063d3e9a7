"""Residual structures, as nlme's variance functions and correlation structures.

Owns the variance functions ``VarIdent``, ``VarPower``, ``VarExp``, ``VarConstPower``,
``VarFixed``, ``VarComb`` (:mod:`.variance`: the diagonal ``D`` of ``R = D C D``), the
correlation structures ``CorAR1``, ``CorCAR1``, ``CorCompSymm``, ``CorSymm``
(:mod:`.correlation`: the block-diagonal ``C``, each a whitening transform ``C^(-1/2)``
with its ``log|C|``), their composition bound to a model's rows (:mod:`.structures`:
``ResidualStructure``, ``R^(-1/2)`` and ``log|R|``), the deviance on whitened ``[y X Z]``
(:mod:`.whitened`: the LMM engine's cross-products rebuilt per evaluation, plus
``log|R|``), which the fit (:mod:`mixedmodels.fitting.residual`) and the fitted model's
objective both evaluate, and the fitted models' methods about the residual structure
(:mod:`.methods`: ``ResidualMixin``, one-line delegations to the free functions of
:mod:`.fitted`: ``residual_parameters``, ``residual_intervals``, ``residual_variances``,
``marginal_cov``).  :mod:`._columns` reads the structures' data columns.

May import: :mod:`mixedmodels.frontend`, :mod:`mixedmodels.lmm` and
:mod:`mixedmodels.errors`.  Never fitted models, inference or the toolbox.
"""
