"""The look-up table of estimated mAP gains (MGRAL's reward estimator), its size ladder,
and the greedy fill used by the ``agent=greedy`` ablation.

The candidates of a round are split into G groups. For each group g, a few detector
variants were trained with ``n`` images of that group added (the *ladder* of sizes); each
variant's AP50 minus the baseline variant's AP50 is one table entry. The estimated gain of
a batch S is the sum over groups of group g's entries interpolated at ``n_g(S)``, the
number of S's images in group g:

* piecewise linear through (0, 0) and the ladder points, so an empty batch gains 0 and a
  concave ladder (diminishing returns inside a group) stays concave;
* beyond the largest ladder size, ``extrapolate="flat"`` (default) holds the last measured
  gain: nothing was measured there, and holding it neither rewards nor punishes more
  images of a group than the largest variant saw; ``extrapolate="linear"`` continues the
  slope of the last segment instead.

Whole counts up to the largest group's size are read from a dense table of each group's
interpolated gain at 0, 1, 2, ... (built once); other counts are interpolated directly.
Everything here is pure numpy: no detector, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albench.errors import ConfigError

EXTRAPOLATIONS = ("flat", "linear")


@dataclass
class GainTable:
    """Measured gains per group and the candidates' groups.

    ``sizes[g]``: increasing candidate counts (each >= 1) of the variants trained for group
    g (may be empty: that group then gains 0 at any count); ``gains[g]``: aligned,
    AP50(variant) - AP50(baseline variant); ``group_of[i]``: the group (0..G-1) of
    candidate i (0..M-1). ``extrapolate``: "flat" or "linear" (see the module docstring).
    """

    sizes: list[np.ndarray]
    gains: list[np.ndarray]
    group_of: np.ndarray
    extrapolate: str = "flat"

    def __post_init__(self) -> None:
        if self.extrapolate not in EXTRAPOLATIONS:
            raise ConfigError(
                f"Unknown LUT extrapolation {self.extrapolate!r}: use one of "
                f"{', '.join(EXTRAPOLATIONS)}.")
        if len(self.sizes) != len(self.gains):
            raise ValueError(f"sizes has {len(self.sizes)} groups but gains has {len(self.gains)}")
        self.sizes = [np.asarray(s, np.int64).reshape(-1) for s in self.sizes]
        self.gains = [np.asarray(v, np.float64).reshape(-1) for v in self.gains]
        self.group_of = np.asarray(self.group_of, np.int64).reshape(-1)
        for g, (s, v) in enumerate(zip(self.sizes, self.gains)):
            if len(s) != len(v):
                raise ValueError(f"group {g}: {len(s)} sizes but {len(v)} gains")
            if len(s) and (s[0] < 1 or np.any(np.diff(s) <= 0)):
                raise ValueError(f"group {g}: sizes must be >= 1 and strictly increasing, got {s}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"group {g}: gains must be finite, got {v}")
        if len(self.group_of) and (self.group_of.min() < 0 or self.group_of.max() >= self.groups):
            raise ValueError(f"group_of must lie in 0..{self.groups - 1}")
        # Interpolation knots with (0, 0) prepended, and the slope used past the last knot.
        self._xp = [np.concatenate([[0.0], s.astype(np.float64)]) for s in self.sizes]
        self._fp = [np.concatenate([[0.0], v]) for v in self.gains]
        self._slope = [float((fp[-1] - fp[-2]) / (xp[-1] - xp[-2])) if len(xp) > 1 else 0.0
                       for xp, fp in zip(self._xp, self._fp)]
        self._members = [np.flatnonzero(self.group_of == g) for g in range(self.groups)]
        # Fast path: every group's gain at each whole count 0..max group size, [G, N + 1].
        top = int(self.group_sizes().max(initial=0))
        self._dense = np.stack([self._group_gain(g, np.arange(top + 1, dtype=np.float64))
                                for g in range(self.groups)]) if self.groups else np.zeros((0, 1))
        self._rows = np.arange(self.groups)

    @property
    def groups(self) -> int:
        return len(self.sizes)

    @property
    def candidates(self) -> int:
        return len(self.group_of)

    def group_sizes(self) -> np.ndarray:
        """Number of candidates in each group."""
        return np.bincount(self.group_of, minlength=self.groups)

    def scale(self, floor: float = 1e-3) -> float:
        """The table's scale: the largest |gain| in it, at least ``floor``."""
        biggest = max((float(np.abs(v).max()) for v in self.gains if len(v)), default=0.0)
        return max(biggest, floor)

    def _group_gain(self, g: int, n: np.ndarray) -> np.ndarray:
        xp, fp = self._xp[g], self._fp[g]
        out = np.interp(n, xp, fp)  # flat beyond xp[-1]
        if self.extrapolate == "linear" and len(xp) > 1:
            out = np.where(n > xp[-1], fp[-1] + self._slope[g] * (n - xp[-1]), out)
        return out

    def group_gains(self, counts: np.ndarray) -> np.ndarray:
        """Per-group interpolated gains: ``counts`` [..., G] -> [..., G]."""
        c = np.asarray(counts, np.float64)
        if c.shape[-1] != self.groups:
            raise ValueError(f"counts need {self.groups} groups in the last axis, got {c.shape}")
        out = np.empty_like(c)
        for g in range(self.groups):
            out[..., g] = self._group_gain(g, c[..., g])
        return out

    def _whole(self, c: np.ndarray) -> np.ndarray | None:
        """``c`` as integer indices into the dense table, or None if it does not fit there."""
        n = c.astype(np.int64)
        if np.array_equal(n, c) and (n.size == 0 or (n.min() >= 0 and n.max() < self._dense.shape[1])):
            return n
        return None

    def lookup_batch(self, counts: np.ndarray) -> np.ndarray:
        """Estimated gains of K batches given their per-group counts [K, G] -> [K]."""
        c = np.asarray(counts, np.float64)
        if c.ndim != 2 or c.shape[1] != self.groups:
            raise ValueError(f"lookup_batch needs counts of shape [K, {self.groups}], got {c.shape}")
        n = self._whole(c)
        if n is not None:
            return self._dense[self._rows, n].sum(1)
        return self.group_gains(c).sum(1)

    def lookup(self, counts: np.ndarray) -> float:
        """Estimated gain of one batch given its per-group counts [G]."""
        c = np.asarray(counts, np.float64).reshape(-1)
        if len(c) != self.groups:
            raise ValueError(f"counts need {self.groups} entries, got {len(c)}")
        n = self._whole(c)
        if n is not None:
            return float(self._dense[self._rows, n].sum())
        return float(sum(self._group_gain(g, c[g]) for g in range(self.groups)))

    def counts_of(self, mask_or_indices: np.ndarray) -> np.ndarray:
        """Per-group counts [G] of a batch given as a boolean mask over the M candidates
        or as candidate indices."""
        sel = np.asarray(mask_or_indices)
        if sel.dtype == bool:
            if sel.shape != (self.candidates,):
                raise ValueError(f"a mask needs {self.candidates} entries, got {sel.shape}")
            sel = np.flatnonzero(sel)
        return np.bincount(self.group_of[sel.astype(np.int64).reshape(-1)], minlength=self.groups)

    def counts_batch(self, masks: np.ndarray) -> np.ndarray:
        """Per-group counts [K, G] of K batches given as 0/1 masks [K, M]."""
        m = np.asarray(masks)
        if m.ndim != 2 or m.shape[1] != self.candidates:
            raise ValueError(f"masks need shape [K, {self.candidates}], got {m.shape}")
        out = np.zeros((m.shape[0], self.groups), np.float64)
        for g, members in enumerate(self._members):
            out[:, g] = m[:, members].sum(1)
        return out

    def estimate(self, selected_indices: np.ndarray) -> float:
        """Estimated gain of the batch of these candidate indices."""
        return self.lookup(self.counts_of(np.asarray(selected_indices, np.int64)))

    def to_json(self) -> dict:
        return {"sizes": [s.tolist() for s in self.sizes],
                "gains": [v.tolist() for v in self.gains],
                "group_of": self.group_of.tolist(),
                "extrapolate": self.extrapolate}

    @classmethod
    def from_json(cls, blob: dict) -> GainTable:
        return cls(sizes=[np.asarray(s, np.int64) for s in blob["sizes"]],
                   gains=[np.asarray(v, np.float64) for v in blob["gains"]],
                   group_of=np.asarray(blob["group_of"], np.int64),
                   extrapolate=blob.get("extrapolate", "flat"))


def ladder(budget: int, groups: int, group_sizes: list[int],
           multipliers: tuple[float, ...] = (1, 2, 4)) -> list[list[int]]:
    """Per group, the sizes of the variants to train: ``m * budget / groups`` for each
    multiplier m, rounded half up, at least 1, capped by the group's size, deduplicated and
    increasing. A group with no candidates gets an empty ladder."""
    if int(budget) < 1:
        raise ConfigError(f"The MGRAL ladder needs a budget of at least 1, got {budget}.")
    if int(groups) < 1:
        raise ConfigError(f"The MGRAL ladder needs at least 1 group, got {groups}; set groups >= 1.")
    if len(group_sizes) != int(groups):
        raise ValueError(f"{len(group_sizes)} group sizes given for {groups} groups")
    mult = [float(m) for m in multipliers]
    if not mult or any(not np.isfinite(m) or m <= 0 for m in mult):
        raise ConfigError(f"The MGRAL ladder multipliers must be positive numbers, got {multipliers}; "
                          "pass e.g. ladder=1,2,4.")
    base = int(budget) / int(groups)
    out = []
    for size in group_sizes:
        size = int(size)
        levels = {min(max(1, int(np.floor(m * base + 0.5))), size) for m in mult} if size > 0 else set()
        out.append(sorted(levels))
    return out


def greedy_select(table: GainTable, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Fill a batch one image at a time: each step adds an image of the group whose next
    image has the largest marginal table gain ``f_g(n_g + 1) - f_g(n_g)`` among groups with
    candidates left (ties: the lower group index). Within a group the images come in a
    random order drawn from ``rng`` (one permutation per group, in group order). Returns
    ``min(budget, M)`` distinct candidate indices in the order added."""
    budget = max(0, min(int(budget), table.candidates))
    queues = [rng.permutation(members) for members in table._members]
    left = np.array([len(q) for q in queues], np.int64)
    counts = np.zeros(table.groups, np.int64)
    picks = np.empty(budget, np.int64)
    for k in range(budget):
        now = table.group_gains(counts[None, :])[0]
        nxt = table.group_gains((counts + 1)[None, :])[0]
        marginal = np.where(left > 0, nxt - now, -np.inf)
        g = int(np.argmax(marginal))
        picks[k] = queues[g][counts[g]]
        counts[g] += 1
        left[g] -= 1
    return picks
