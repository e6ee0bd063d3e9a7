"""Residual structures, as nlme's variance functions and correlation structures.

Owns ``VarIdent``, ``VarPower``, ``VarExp``, ``VarConstPower``, ``VarFixed``, ``VarComb``
and ``CorAR1``, ``CorCAR1``, ``CorCompSymm``, ``CorSymm`` (:mod:`.structures`), each a
whitening transform ``R^(-1/2)`` with its ``log|R|``, and the deviance on whitened
``[y X Z]`` (:mod:`.whitened`: the LMM engine's cross-products rebuilt per evaluation, plus
``log|R|``), which the fit (:mod:`mixedmodels.fitting.residual`) and the fitted model's
objective both evaluate; :mod:`.fitted` holds the free functions of a fitted model about
its residual structure (``residual_parameters``, ``residual_intervals``,
``residual_variances``, ``marginal_cov``) that :class:`~.structures.ResidualMixin`
delegates to.

May import: :mod:`mixedmodels.frontend`, :mod:`mixedmodels.lmm` and
:mod:`mixedmodels.errors`.  Never fitted models, inference or the toolbox.
"""
