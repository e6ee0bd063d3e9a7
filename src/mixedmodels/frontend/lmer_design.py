"""``lmer_design``: the front-end stage of ``lmer`` (lme4's ``lFormula``): formula and data
in, the checked :class:`~.design.Design` out, its terms in the order the engine factors them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .checks import check_lmm_design
from .design import build_design
from .design_types import Design, NaAction
from .formula import parse_formula


def lmer_design(
    formula: str,
    data: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
) -> Design:
    """Parse and build the design of an LMM (lme4's ``lFormula``)."""
    design = build_design(
        parse_formula(formula), data, weights=weights, offset=offset, na_action=na_action
    )
    check_lmm_design(design)
    if any(t.structure != "us" for t in design.terms):
        # glmmTMB-style model: among terms with as many levels, the widest goes first so
        # it forms the block-diagonal first block and the dense tail stays small (lme4
        # formulas keep lme4's order, which its output labels follow)
        ordered = sorted(design.terms, key=lambda t: (-t.n_levels, -t.n_columns))
        design = dataclasses.replace(design, terms=tuple(ordered))
    return design
