"""Faster deviance for glmmTMB-style models: terms of one grouping factor merged.

``gpa ~ occasion + ar1(0 + occas | student) + (1 | student)`` has two terms on
``student``; the engine would put the second in the dense "tail" block.  Merged into one
term of 7 columns with a block-diagonal T (:class:`~mixedmodels.lmm.covariance.BlockDiagonal`)
the whole system is block diagonal per student and one evaluation is a batched 7 x 7
Cholesky.  The merged model has the same likelihood and the same θ (in the same order),
so only the function the optimizer calls changes; the fitted model keeps the separate
terms for its tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..frontend.design_types import ReTerm
from .covariance import BlockDiagonal, structure_for
from .crossprods import CrossProducts


def merge_same_group_terms(ordered: list[ReTerm]) -> list[ReTerm] | None:
    """Merge neighbouring terms (in the engine's order) with identical group codes.

    Returns None when nothing merges.  Only neighbours merge, so the θ layout of the
    merged terms is exactly that of the separate ones.

    Examples
    --------
    >>> g = np.repeat(np.arange(3), 2)
    >>> one = ReTerm("g", g, np.array(["a", "b", "c"]), np.ones((6, 1)), ("(Intercept)",),
    ...              "us", "1", ("g",))
    >>> two = dataclasses.replace(one, matrix=np.eye(2)[np.tile([0, 1], 3)],
    ...                           columns=("f1", "f2"), structure="ar1", expr="0 + f")
    >>> [t.n_columns for t in merge_same_group_terms([two, one])]
    [3]
    """
    merged: list[list[ReTerm]] = []
    for term in ordered:
        last = merged[-1][-1] if merged else None
        if (
            last is not None
            and last.n_levels == term.n_levels
            and np.array_equal(last.codes, term.codes)
        ):
            merged[-1].append(term)
        else:
            merged.append([term])
    if all(len(group) == 1 for group in merged):
        return None
    out = []
    for group in merged:
        if len(group) == 1:
            out.append(group[0])
            continue
        parts = tuple(structure_for(t.structure, t.n_columns) for t in group)
        k = sum(t.n_columns for t in group)
        out.append(
            dataclasses.replace(
                group[0],
                matrix=np.column_stack([t.matrix for t in group]),
                columns=tuple(c for t in group for c in t.columns),
                structure=BlockDiagonal(k, parts),  # type: ignore[arg-type]
                expr=" + ".join(t.expr for t in group),
                model_spec=None,
            )
        )
    return out


def merged_crossprods(
    cp: CrossProducts,
    y: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray | None,
    offset: np.ndarray | None,
) -> CrossProducts | None:
    """Cross-products of the merged terms of ``cp`` (same θ layout), or None."""
    terms = merge_same_group_terms(list(cp.terms))
    if terms is None:
        return None
    merged = CrossProducts.build(y, X, terms, weights, offset)
    if merged.n_theta != cp.n_theta:  # pragma: no cover - guarded by construction
        return None
    return merged
