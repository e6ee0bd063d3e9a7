"""The linear mixed-model engine: θ → Λ, cross-products, blocked Cholesky, profiled deviance.

Owns the relative covariance factor per term (:mod:`.covariance`: unstructured, diagonal,
compound symmetry, AR(1), Toeplitz; :mod:`.structured`: terms sharing a grouping factor
merged into one block), the cross-product blocks of ``[Z X y]`` (:mod:`.crossprods`) and
the profiled (RE)ML deviance with its blocked factorization and solution (:mod:`.deviance`),
its exact θ gradient (:mod:`.gradient`),
lme4's ``mkLmerDevfun`` and ``optimizeLmer`` (:mod:`.devfun`: the deviance function of a
design, minimized by BOBYQA or, where it pays, L-BFGS-B on the gradient), the
sparse Cholesky of a large tail block (:mod:`.sparse_tail`), the compiled row passes
(:mod:`._kernels`, numba with a plain-numpy reference) and the optimizer with lme4's
convergence and singularity checks and the ``OptSummary`` record (:mod:`.optimize`, used by
every engine).

May import: :mod:`mixedmodels.frontend`, :mod:`mixedmodels.errors` and the private helpers
at the package top (``_threads``).  Never fitted models, inference or the toolbox.
"""
