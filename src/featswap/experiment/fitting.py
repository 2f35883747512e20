"""The fitting step: affine maps for every ordered pair of models and every solver, from one pass of paired
statistics per unordered pair.

For each unordered pair {A, B} (ordered by name, so that every command sees the pair the same way) the
`GramStats` of the fitting images, split into fitting and held-out rows, are computed once, where the engine
runs them. Both directions and every closed-form solver (`lstsq` with any ridge choice, `procrustes`,
`refine`'s start) read their moments from it; iterative solvers read rows too. One more pass gives the
training loss of every map of the pair.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from featswap.engines import Engine
from featswap.errors import FeatswapError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.losses import paper_loss_numpy
from featswap.mapping.moments import Moments
from featswap.mapping.paired import Direction, PairedFeatures
from featswap.mapping.solvers import SOLVERS, Heads
from featswap.mapping.solvers.lstsq import underdetermined
from featswap.outputs.report import memorised_advice
from featswap.progress import labelled
from featswap.similarity.gram import GramStats, chunk_split_parts
from featswap.similarity.parts import SideCache, SideStats, merge_parts
from featswap.store import FeatureStore


@dataclass(frozen=True)
class FittedMap:
    """A map from `source`'s features to `target`'s, fitted on `fit_size` images of `collection`, with its paper
    loss on them."""

    source: str
    target: str
    amap: AffineMap
    train_loss: float
    collection: str
    fit_size: int
    #: What each model was when the map was fitted (spec, weights, preprocessing): `evaluate` refuses a store
    #: whose models differ.
    models: Mapping[str, Any] = field(default_factory=dict)

    @property
    def solver(self) -> str:
        return self.amap.solver

    @property
    def stem(self) -> str:
        return f"{self.source}__to__{self.target}__{self.solver}"


#: A map whose paper loss on its own fitting images is below this reproduces them (0: every direction exact).
INTERPOLATION_LOSS = 1e-3


def fit_facts(fitted: FittedMap) -> dict[str, Any]:
    """What metrics.json and the report say of a map's fit beyond its losses: the fitting images `fit_size` and
    source width `source_dim`; the ridge strength `alpha` where the solver has one; and, for a map fitted on
    fewer images than `source_dim + 1` (`underdetermined`), whether it reproduces them (`interpolates`; a free
    affine map can, an orthogonal one cannot, so `procrustes` is never flagged); and, for a `procrustes` map whose
    pairs determine fewer directions than the narrower width, how many they determine (`rank`; the others map
    to zero)."""
    amap = fitted.amap
    dx = int(amap.weight_.shape[1])
    facts: dict[str, Any] = {"fit_size": fitted.fit_size, "source_dim": dx}
    if isinstance(amap.info_.get("alpha"), int | float):
        facts["alpha"] = float(amap.info_["alpha"])
        # chosen on held-out fitting images, or given (a map saved before this was recorded: unknown, left out)
        if isinstance(amap.info_.get("alpha_chosen"), bool):
            facts["alpha_chosen"] = amap.info_["alpha_chosen"]
    if isinstance(amap.info_.get("converged"), bool):  # iterative solvers: stopped before the loss settled?
        facts["converged"] = amap.info_["converged"]
    rank = amap.info_.get("rank")
    if isinstance(rank, int) and rank < min(amap.weight_.shape):
        facts["rank"] = rank
    solver = SOLVERS.get(fitted.solver)
    if solver.needs_data and underdetermined(fitted.fit_size, dx):
        facts["underdetermined"] = True
        facts["interpolates"] = bool(solver.can_interpolate and fitted.train_loss < INTERPOLATION_LOSS)
    return facts


def small_fit_note(fitted: FittedMap) -> str | None:
    """One line on a map fitted on fewer images than its source's width + 1, or on a `procrustes` map whose fitting
    images determine only some of its directions (None otherwise)."""
    facts = fit_facts(fitted)
    n, dx, solver = facts["fit_size"], facts["source_dim"], fitted.solver
    if not facts.get("underdetermined"):
        if "rank" not in facts:
            return None
        return (
            f"{fitted.source} -> {fitted.target} ({solver}): its {n:,} fitting images determine {facts['rank']:,} of "
            f"its {min(fitted.amap.weight_.shape):,} directions (dead or linearly dependent features); the others are "
            "mapped to zero"
        )
    what = f"{fitted.source} -> {fitted.target} ({solver}): {n:,} fitting images, fewer than {dx:,} source features + 1"
    if facts["interpolates"]:
        advice = memorised_advice(facts)
        return (
            f"warning: {what}, and the map reproduces them (train loss {fitted.train_loss:.2g}): its accuracy "
            f"measures memorised images, not shared information. {advice[0].upper()}{advice[1:]}."
        )
    if "alpha" in facts and facts["alpha"] > 0:
        how = "chosen on held-out fitting images" if facts.get("alpha_chosen", True) else "given"
        return f"{what}: ridge strength {facts['alpha']:.3g} {how}"
    if "rank" in facts:
        return (
            f"{what}: they determine {facts['rank']:,} of its directions, and the others are mapped to zero "
            f"(train loss {fitted.train_loss:.4f})"
        )
    return f"{what} (train loss {fitted.train_loss:.4f})"


class SharedPair:
    """The fitting statistics of one unordered pair, computed once (per holdout setting) and read by both
    directions: `pairs` has the first model (`names[0]`) as x and the second as y. Each model's own sums come
    from `sides` when an earlier pair of the run computed them (on the same collection and split), and go
    there otherwise: a run with N models computes N self-scatters, not N (N - 1)."""

    def __init__(
        self,
        pairs: PairedFeatures,
        device: str,
        names: tuple[str, str] = ("x", "y"),
        sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] | None = None,
    ) -> None:
        self.pairs, self.device, self.names = pairs, device, names
        self.sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] = (
            SideCache() if sides is None else sides
        )
        self._split: dict[tuple[float, int], tuple[GramStats, GramStats]] = {}

    def moments(self, holdout: float, seed: int, swapped: bool) -> tuple[Moments, Moments]:
        """`(fitting rows, held-out rows)` moments of the map x -> y, or y -> x when `swapped`."""
        key = (holdout, seed)
        if key not in self._split:
            self._split[key] = self._compute(holdout, seed)
        fit, held = self._split[key]
        return fit.moments(swapped), held.moments(swapped)

    def _compute(self, holdout: float, seed: int) -> tuple[GramStats, GramStats]:
        keys = [(name, holdout, seed) for name in self.names]
        needed = (keys[0] not in self.sides, keys[1] not in self.sides)
        fn = functools.partial(chunk_split_parts, n=self.pairs.n, holdout=holdout, seed=seed, sides=needed)
        fit: list[Any] = [None, None, None]
        held: list[Any] = [None, None, None]
        for fit_parts, held_parts in self.pairs.map_chunks(fn, self.device):  # merged as they come: O(D^2)
            fit = [merge_parts([a, b]) for a, b in zip(fit, fit_parts, strict=True)]
            held = [merge_parts([a, b]) for a, b in zip(held, held_parts, strict=True)]
        if fit[2] is None or held[2] is None:
            raise FeatswapError("No fitting images to fit on.")
        for side, (key, need) in enumerate(zip(keys, needed, strict=True)):
            if need:
                self.sides.put(key, (fit[side], held[side]))
        (fx, hx), (fy, hy) = self.sides[keys[0]], self.sides[keys[1]]
        return GramStats.join(fx, fy, fit[2]), GramStats.join(hx, hy, held[2])

    def direction(self, forward: bool) -> Direction:
        return Direction(self.pairs, forward, self.moments)


def canonical(a: str, b: str) -> tuple[str, str]:
    """The order in which a pair's statistics are computed: by name, whatever order the models came in."""
    return (a, b) if a <= b else (b, a)


def fit_maps(
    store: FeatureStore,
    names: Sequence[str],
    collection: str,
    solvers: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    engine: Engine,
    say: Callable[[str], None] = lambda _: None,
    *,
    show_progress: bool = False,
) -> list[FittedMap]:
    """Maps for every ordered pair of `names` with every solver, fitted on `collection`; in the order of
    `itertools.permutations(names, 2)`, solvers in the order given."""
    if len(set(names)) != len(names) or len(names) < 2:
        raise FeatswapError(f"Fitting needs two or more different models; got {list(names)}.")
    fitted: dict[tuple[str, str, str], FittedMap] = {}
    sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] = SideCache()
    for a, b in itertools.combinations(sorted(names), 2):
        fitted.update(
            fit_pair_maps(
                store, a, b, collection, solvers, params, engine, say, sides=sides, show_progress=show_progress
            )
        )
    return [fitted[s, t, solver] for s, t in itertools.permutations(names, 2) for solver in solvers]


def fit_pair_maps(
    store: FeatureStore,
    source: str,
    target: str,
    collection: str,
    solvers: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    engine: Engine,
    say: Callable[[str], None] = lambda _: None,
    both: bool = True,
    sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] | None = None,
    *,
    show_progress: bool = False,
) -> dict[tuple[str, str, str], FittedMap]:
    """The maps `source -> target` (and `target -> source`, with `both`) with every solver, from the pair's
    shared statistics; keyed by `(source, target, solver)`. `sides`: each model's own statistics on `collection`,
    shared with the other pairs of a run. `show_progress`: a bar with the time left while an iterative solver
    runs."""
    if source == target:
        raise FeatswapError(f"Source and target are both {source!r}; a map needs two different models.")
    a, b = canonical(source, target)
    base = engine.pairs(store.pairs(collection, a, b))
    shared = SharedPair(base, engine.device, (a, b), sides)
    directions = [(source, target)] + ([(target, source)] if both else [])
    maps: dict[tuple[str, str, str], AffineMap] = {}
    for s, t in directions:
        heads = Heads(*store.head(s), *store.head(t))
        for solver in solvers:
            amap = AffineMap(solver, device=engine.device, **dict(params.get(solver, {})))
            needs_data = SOLVERS.get(solver).needs_data
            with labelled(f"{s} -> {t} ({solver})" if show_progress else None):
                amap.fit_pairs(shared.direction(s == a) if needs_data else None, heads)
            maps[s, t, solver] = amap
            iterations = f" ({amap.n_iter_:,} iterations)" if amap.n_iter_ else ""  # none for closed forms
            say(f"fitted {s} -> {t} with {solver} in {amap.fit_seconds_:.1f} s{iterations}")
            if "message" in amap.info_:
                say(f"  {solver}: {amap.info_['message']}")
    losses = train_losses(base, {key: (m, key[0] == a) for key, m in maps.items()})
    models = {name: store.model_identity(name) for name in (source, target)}
    fitted = {key: FittedMap(key[0], key[1], m, losses[key], collection, base.n, models) for key, m in maps.items()}
    for m in fitted.values():
        note = small_fit_note(m)
        if note:
            say(f"  {note}")
    return fitted


def train_losses(
    pairs: PairedFeatures, maps: Mapping[tuple[str, str, str], tuple[AffineMap, bool]]
) -> dict[tuple[str, str, str], float]:
    """The paper's loss of every map on the fitting images, in one pass over them (`forward`: the map reads x
    and predicts y; else the reverse)."""
    totals = dict.fromkeys(maps, 0.0)
    for x, y in pairs.chunks():
        for key, (amap, forward) in maps.items():
            source, target = (x, y) if forward else (y, x)
            totals[key] += paper_loss_numpy(source @ amap.weight_.T + amap.bias_, target) * len(x)
    return {key: total / max(pairs.n, 1) for key, total in totals.items()}
