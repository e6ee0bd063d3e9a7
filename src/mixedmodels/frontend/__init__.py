"""The front end: formula text and data in, a model design out (lme4's ``lFormula``).

Owns the lme4 bar syntax (:mod:`.formula`: ``||``, ``/``, ``:``, covariance-structure
wrappers, errors with a caret), the only importer of formulaic's internals
(:mod:`._formulaic_compat`: fixed and random model matrices with R-style names), the
data's columns (:mod:`.columns`: tables of any kind, unknown names, refused kinds, weights
and offset), R's factors (:mod:`.factors`: level orders and labels, group codes), the
model frame and design (:mod:`.design`: NA handling and the general path; :mod:`.plain_design`:
the fast path for plain columns), what they produce (:mod:`.design_types`: ``Design`` and
``ReTerm``, each term group codes plus a small n x k matrix, never a dense Z), lme4's
checks of a design (:mod:`.checks`), glmer's response (:mod:`.response`: ``cbind``, R's
0/1 rule for factors, per-row weights and offsets), lmer's front-end stage
(:mod:`.lmer_design`, lme4's ``lFormula``) and formula rewriting for refits
(:mod:`.update`, R's ``update.formula``).

May import: :mod:`mixedmodels.errors` only.  Everything downstream reads a
:class:`~.design_types.Design`; nothing here knows about deviances, fits or results.
"""
