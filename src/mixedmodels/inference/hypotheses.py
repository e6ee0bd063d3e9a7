"""The hypothesis matrix ``L`` of each fixed-effects term's F test, for lmerTest's
``anova(m, type = 1 | 2 | 3)``.

Type I (sequential): the term's rows of the unit upper-triangular factor of XᵀX
(XᵀX = Uᵀ D U), so each term is adjusted for the terms before it.

Type II (marginal to containing terms): as type I, after moving the term and every
term that contains it to the end of the column order.

Type III (SAS's, contrast-invariant): write each coefficient as a linear function of
the over-parameterized model, in which every factor of a term has one column per
level (R's ``model.matrix(~ 0 + term)``).  Processing terms from the highest order
down, the functions of a term that other terms contain are made orthogonal, in that
over-parameterized space, to the functions of the containing terms.  The resulting
hypothesis for a main effect A beside A:B averages over B's levels with equal weights
whatever the cell counts, and does not depend on how the factors are coded.  Without
containment it is the plain test of the term's coefficients.

Containment follows R's ``terms``: F₁ is contained in F₂ when F₂ has all of F₁'s
variables and more, and both have the same numeric variables (``x`` is contained in
``x:A``; ``A`` is not).  A variable counts for a term only if the term without it is
in the model too (R's code 1 in the ``factors`` attribute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ..frontend import _formulaic_compat as fc

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

AnovaType = Literal[1, 2, 3]
ANOVA_TYPES = (1, 2, 3)


def model_terms(model: LinearMixedModel) -> list[fc.FixedTerm]:
    """The fixed-effects terms of a fit, intercept included, with only their kept columns."""
    kept = set(model.design.fixed_names)
    terms = []
    for term in fc.fixed_terms(model.design.fixed_model_spec):
        columns = tuple(c for c in term.columns if c in kept)
        if columns:
            terms.append(fc.FixedTerm(term.label, term.variables, term.numeric, columns))
    return terms


def term_columns(model: LinearMixedModel) -> dict[str, list[int]]:
    """Fixed-effects term → positions of its (kept) columns, intercept excluded."""
    names = list(model.design.fixed_names)
    return {
        t.label: [names.index(c) for c in t.columns] for t in model_terms(model) if t.label != "1"
    }


def containing_terms(terms: list[fc.FixedTerm]) -> dict[str, list[str]]:
    """For each term (intercept excluded), the terms that contain it (R's containment)."""
    terms = [t for t in terms if t.label != "1"]
    present = {frozenset(t.variables) for t in terms} | {frozenset()}
    marginal: dict[str, frozenset[str]] = {}
    numeric: dict[str, frozenset[str]] = {}
    for t in terms:
        own = frozenset(t.variables)
        marginal[t.label] = frozenset(v for v in t.variables if own - {v} in present)
        numeric[t.label] = (
            frozenset(v for v, is_num in zip(t.variables, t.numeric, strict=True) if is_num)
            & marginal[t.label]
        )
    return {
        a.label: [
            b.label
            for b in terms
            if marginal[a.label] < marginal[b.label] and numeric[a.label] == numeric[b.label]
        ]
        for a in terms
    }


def _unit_upper(X: np.ndarray) -> np.ndarray:
    """U of XᵀX = Uᵀ D U with a unit diagonal (lmerTest's Doolittle factor, transposed)."""
    R = np.linalg.qr(X, mode="r")
    return R / np.diag(R)[:, None]


def _positions(names: list[str], terms: list[fc.FixedTerm]) -> dict[str, list[int]]:
    return {t.label: [names.index(c) for c in t.columns] for t in terms}


def type1(X: np.ndarray, names: list[str], terms: list[fc.FixedTerm]) -> dict[str, np.ndarray]:
    """Sequential hypotheses: term k adjusted for the terms before it."""
    U = _unit_upper(X)
    return {label: U[cols] for label, cols in _positions(names, terms).items() if label != "1"}


def type2(X: np.ndarray, names: list[str], terms: list[fc.FixedTerm]) -> dict[str, np.ndarray]:
    """Each term adjusted for every term that does not contain it."""
    where = _positions(names, terms)
    contained = containing_terms(terms)
    out = {}
    for label, containers in contained.items():
        last = where[label] + [j for other in containers for j in where[other]]
        order = [j for j in range(len(names)) if j not in last] + last
        U = _unit_upper(X[:, order])
        rows = U[len(order) - len(last) : len(order) - len(last) + len(where[label])]
        L = np.zeros_like(rows)
        L[:, order] = rows
        out[label] = L
    return out


def overparameterized(frame: pd.DataFrame, terms: list[fc.FixedTerm]) -> np.ndarray:
    """R's over-parameterized design: an intercept (if the model has one), then each
    term's row-wise product of its variables' full codings (``model.matrix(~ 0 + term)``)."""
    blocks = []
    for term in terms:
        if term.label == "1":
            blocks.append(np.ones((len(frame), 1)))
            continue
        block = np.ones((len(frame), 1))
        for variable in term.variables:
            coding = fc.full_coding(variable, frame)
            block = (block[:, :, None] * coding[:, None, :]).reshape(len(frame), -1)
        blocks.append(block)
    return np.hstack(blocks)


def type3(
    X: np.ndarray, names: list[str], terms: list[fc.FixedTerm], full: np.ndarray
) -> dict[str, np.ndarray]:
    """SAS/lmerTest type III hypotheses; ``full`` is :func:`overparameterized`'s matrix.

    Column k of ``C = X⁺ full`` writes the over-parameterized column k in X's columns,
    so β_j = Σ_k C[j, k] γ_k: the function β_j of the over-parameterized coefficients
    γ has weights C[j] there.  A contrast w (over β) has weights Cᵀw, and two contrasts
    have the inner product w₁ᵀ (C Cᵀ) w₂ there: orthogonalizing in that metric keeps
    everything in β's coordinates.
    """
    C = np.linalg.lstsq(X, full, rcond=None)[0]
    metric = C @ C.T
    where = _positions(names, terms)
    contained = containing_terms(terms)
    W = np.eye(X.shape[1])
    order = {t.label: len(t.variables) for t in terms}
    for label in sorted(contained, key=lambda t: -order[t]):  # stable: ties keep order
        if not contained[label]:
            continue
        own = where[label]
        others = [j for container in contained[label] for j in where[container]]
        Wo, Ws = W[:, others], W[:, own]
        coef = np.linalg.pinv(Wo.T @ metric @ Wo) @ (Wo.T @ metric @ Ws)
        W[:, own] = Ws - Wo @ coef
    out = {}
    for label in contained:
        L = W[:, where[label]].T
        scale = max(1.0, float(np.abs(L).max()))
        out[label] = L[np.abs(L).sum(axis=1) > 1e-8 * scale]
    return out


def term_hypotheses(model: LinearMixedModel, type: AnovaType = 3) -> dict[str, np.ndarray]:
    """Hypothesis matrices (rows over :attr:`fixef`) of each term's F test, as lmerTest's
    ``anova(m, type = type)``; the intercept is not tested."""
    if type not in ANOVA_TYPES:
        raise ValueError(f"type: expecting one of {set(ANOVA_TYPES)}. Got {type!r}.")
    design = model.design
    names = list(design.fixed_names)
    terms = model_terms(model)
    if type == 1:
        return type1(design.X, names, terms)
    if type == 2:
        return type2(design.X, names, terms)
    if not any(containing_terms(terms).values()):  # nothing to orthogonalize
        p = len(names)
        return {label: np.eye(p)[cols] for label, cols in term_columns(model).items()}
    return type3(design.X, names, terms, overparameterized(design.frame, terms))
