"""The front end: formula text and data in, a model design out (lme4's ``lFormula``).

Owns the lme4 bar syntax (:mod:`.formula`: ``||``, ``/``, ``:``, covariance-structure
wrappers, errors with a caret), the only importer of formulaic's internals
(:mod:`._formulaic_compat`: fixed and random model matrices with R-style names), the model
frame and the random-effects terms (:mod:`.design`: NA handling, level orders, group codes,
lme4's checks; each term is group codes plus a small n x k matrix, never a dense Z), lmer's
front-end stage (:mod:`.lmer_design`, lme4's ``lFormula``) and
formula rewriting for refits (:mod:`.update`, R's ``update.formula``).

May import: :mod:`mixedmodels.errors` only.  Everything downstream reads a
:class:`~.design.Design`; nothing here knows about deviances, fits or results.
"""
