"""Residual structures, as nlme's variance functions and correlation structures.

Owns ``VarIdent``, ``VarPower``, ``VarExp``, ``VarConstPower``, ``VarFixed``, ``VarComb``
and ``CorAR1``, ``CorCAR1``, ``CorCompSymm``, ``CorSymm`` (:mod:`.structures`), each a
whitening transform ``R^(-1/2)`` with its ``log|R|``, so the LMM engine's cross-products can
be rebuilt on whitened ``[y X Z]`` (the fit that uses them is
:mod:`mixedmodels.fitting.residual`).

May import: :mod:`mixedmodels.frontend`, :mod:`mixedmodels.lmm` and
:mod:`mixedmodels.errors`.  Never fitted models, inference or the toolbox.
"""
