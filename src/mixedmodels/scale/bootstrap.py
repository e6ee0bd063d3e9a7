"""The parametric bootstrap of an LMM fitted on Dask data: every replicate's response drawn
in one pass over the partitions.

Each partition draws its rows' responses for all replicates at once, y* = Xβ̂ + offset +
Zb* + ε*, and sums their y parts of the blocks (:class:`~mixedmodels.lmm.crossprods.ResponseSums`);
the client then refits each replicate on the fit's own blocks with its y column replaced,
as the in-memory bootstrap does on ``CrossProducts.with_response``.  The random effects b*
(the same for a level in every partition) are drawn in the client and broadcast, in
batches that keep them under :data:`BROADCAST_BYTES`; each partition's noise comes from
its own stream of the bootstrap's seed, so a seed gives the same replicates on any
cluster (up to the rounding of the order in which the tree adds the partitions' sums).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import refuse
from ..inference.bootstrap import REFIT_CONTROL, _Simulator
from ..lmm.crossprods import ResponseSums
from .cluster import fit_client, tree_sum
from .encoding import PartitionEncoder

#: the random effects of one batch of replicates sent to the workers at most this large
BROADCAST_BYTES = 200_000_000


@dataclass
class _Draws:
    """What a partition needs to draw its responses for a batch of replicates."""

    beta: np.ndarray
    sigma: float
    b: list[np.ndarray]  # per internal term: (replicates, levels, columns)
    entropy: Any  # the bootstrap seed's entropy: each partition's noise stream
    first: int  # the batch's first replicate


def _indexed(part: Any, index: int) -> tuple[int, Any]:
    return index, part


def partition_responses(
    pair: tuple[int, Any], encoder: PartitionEncoder, draws: _Draws
) -> tuple[Any, list, np.ndarray]:
    """One partition's rows, its terms in internal order and its responses (n, replicates)
    for a batch of replicates."""
    index, part = pair
    rows = encoder.rows(part)
    order, _ = encoder.ordered_terms()
    ordered = rows.ordered(order)
    m = draws.b[0].shape[0]
    Y = np.repeat((rows.X @ draws.beta)[:, None], m, axis=1)
    if rows.offset is not None:
        Y += rows.offset[:, None]
    for term, b in zip(ordered, draws.b, strict=True):
        Y += np.einsum("nk,snk->ns", term.matrix, b[:, term.codes, :])
    stream = np.random.SeedSequence(draws.entropy, spawn_key=(2**32, draws.first, index))
    noise = draws.sigma * np.random.default_rng(stream).standard_normal((len(rows.y), m))
    if rows.weights is not None:
        noise /= np.sqrt(np.where(rows.weights > 0, rows.weights, 1.0))[:, None]
    return rows, ordered, Y + noise


def partition_response_sums(
    pair: tuple[int, Any], encoder: PartitionEncoder, draws: _Draws
) -> ResponseSums:
    """One partition's responses for a batch of replicates, summed into the blocks' y parts."""
    rows, ordered, Y = partition_responses(pair, encoder, draws)
    return ResponseSums.of_rows(Y, rows.X, ordered, rows.weights, rows.offset)


class DaskSimulator(_Simulator):
    """The replicates of :func:`mixedmodels.inference.bootstrap.bootstrap` for a Dask fit:
    the responses' sums come from the passes made here, the refits run on the blocks."""

    def __init__(self, model: Any, func: Any, seeds: list[np.random.SeedSequence]):
        if func is not None:
            raise refuse(
                "lmer fit on Dask data",
                "bootstrap(func=)",
                "bootstrap() without func, or a fit in memory (a pandas DataFrame)",
                "its refits hold blocks, not rows, for func to read",
            )
        super().__init__(model, None)
        self.index = {seed.spawn_key: i for i, seed in enumerate(seeds)}
        self.draws: list[_Draws] = []  # per batch of replicates
        self.sums = self._draw(model, seeds)

    def _draw(self, model: Any, seeds: list[np.random.SeedSequence]) -> list[ResponseSums]:
        cp = model.crossprods
        beta, sigma = self.objective.beta_sigma(self.objective.start)
        factors = cp.factors(self.objective.start[: cp.n_theta])
        per_replicate = 8 * sum(t.n_levels * t.n_columns for t in cp.terms)
        size = max(1, min(len(seeds), BROADCAST_BYTES // max(per_replicate, 1)))
        frame = model.source
        out: list[ResponseSums] = []
        with fit_client() as client:
            [encoder] = client.scatter([model.encoder], broadcast=True, hash=False)
            leaves = [_delayed_indexed(part, i) for i, part in enumerate(frame.to_delayed())]
            for first in range(0, len(seeds), size):
                batch = seeds[first : first + size]
                rngs = [np.random.default_rng(seed) for seed in batch]
                b = [
                    sigma
                    * np.stack([rng.standard_normal((t.n_levels, t.n_columns)) for rng in rngs])
                    @ T.T
                    for t, T in zip(cp.terms, factors, strict=True)
                ]
                draws = _Draws(beta, sigma, b, seeds[0].entropy, first)
                self.draws.append(draws)
                [shared] = client.scatter([draws], broadcast=True, hash=False)
                total = tree_sum(
                    client,
                    leaves,
                    partition_response_sums,
                    (encoder, shared),
                    f"bootstrap responses {first + 1}-{first + len(batch)}",
                )
                out.extend(_split(total, len(batch)))
        return out

    def replicate(self, seed: np.random.SeedSequence) -> tuple[np.ndarray, Any]:
        objective = self.objective
        cp = objective.crossprods.with_response_sums(self.sums[self.index[seed.spawn_key]], 0)
        refit = dataclasses.replace(objective, crossprods=cp)
        opt = refit.fit(control=REFIT_CONTROL)
        return self.statistics(refit, opt.final), None


def _delayed_indexed(part: Any, index: int) -> Any:
    import dask

    return dask.delayed(_indexed, pure=True)(part, index)


def _split(total: ResponseSums, m: int) -> list[ResponseSums]:
    return [
        ResponseSums(
            total.C1[:, :, r : r + 1],
            total.C2[:, r : r + 1],
            total.Xy[:, r : r + 1],
            total.yy[r : r + 1],
        )  # fmt: skip
        for r in range(m)
    ]
