"""What the client and each worker hold, known from the levels and terms before any pass.

With ℓ₁ levels and k₁ columns in the largest term, Q₂ random effects in the other terms
and p fixed-effects columns, the blocks are (in doubles) ``ℓ₁k₁² + ℓ₁k₁(p+1)`` for the
first term, ``Q₂² + Q₂(p+1)`` for the tail, ``(p+1)²`` for ``[X y]ᵀ[X y]``, and
``Z_tailᵀZ₁``, sparse, at most ``Q₂ · ℓ₁k₁`` entries of 12 bytes (value and index).
"""

from __future__ import annotations

from ..errors import DataError
from ..frontend.design_types import ReTerm

#: copies of the blocks alive at once: a worker adds two partial sums into a third; the
#: client holds the sum and the factorization's working blocks of the same sizes
_COPIES = 3


def block_bytes(ordered: list[ReTerm], p: int) -> int:
    """Bytes of one set of cross-product blocks (README: "Memory")."""
    first, tail = ordered[0], ordered[1:]
    ell1, k1 = first.n_levels, first.n_columns
    q2 = sum(t.n_effects for t in tail)
    doubles = ell1 * k1 * k1 + ell1 * k1 * (p + 1) + q2 * q2 + q2 * (p + 1) + (p + 1) ** 2
    return 8 * doubles + 12 * q2 * ell1 * k1


def check_fits(ordered: list[ReTerm], p: int, client_bytes: float, worker_bytes: float) -> int:
    """Refuse, before the pass, blocks that would not fit the client or a worker."""
    need = _COPIES * block_bytes(ordered, p)
    for where, have in (("the client", client_bytes), ("a worker", worker_bytes)):
        if need > have:
            raise DataError(
                f"The cross-product blocks of this model need about {need / 1e9:.2f} GB "
                f"({_COPIES} copies of {block_bytes(ordered, p) / 1e9:.2f} GB) but {where} has "
                f"{have / 1e9:.2f} GB. Use a machine with more memory, workers with a larger "
                "memory_limit, or fewer levels in the terms after the largest one."
            )
    return need


def available_bytes(client) -> tuple[float, float]:
    """The client's available memory and the smallest worker memory limit."""
    import psutil

    client_bytes = float(psutil.virtual_memory().available)
    limits = [
        w.get("memory_limit") or client_bytes for w in client.scheduler_info()["workers"].values()
    ]
    return client_bytes, float(min(limits) if limits else client_bytes)
