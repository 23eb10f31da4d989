"""Run against run: two stored runs of the same model side by side.

Modules and blocks aligned by name (a module pruned in one run only is listed, not dropped), accuracy deltas
B - A with each run's Wilson interval, the deltas of the attacks both runs have, and for one module the
difference of the two keep-masks (kept by both, by A only, by B only, by neither).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pruning_core.core.errors import PrunescopeError
from pruning_core.measure import intervals
from pruning_core.storage.store import Store

# the codes of `mask_diff`'s map (one per weight)
NEITHER, A_ONLY, B_ONLY, BOTH = 0, 1, 2, 3
ATTACK_MEASURES = ("clean_accuracy", "accuracy_under_attack", "attack_success_rate")


def check_comparable(a: dict, b: dict) -> None:
    """Two runs can be compared when they prune the same model (methods, sparsities and tasks may differ)."""
    if a["key"] == b["key"]:
        raise PrunescopeError(f"run {a['key']} is compared with itself; pick two different runs")
    ma, mb = a["config"]["model"], b["config"]["model"]
    if ma != mb:
        raise PrunescopeError(f"run A prunes model '{ma}' and run B model '{mb}'; pick two runs of the same model")


def align_modules(a: dict, b: dict) -> list[dict]:
    """One row per module of either run, in A's order then B's extras: {name, block, kind, a_local, b_local,
    a_sparsity, b_sparsity} (None where a run has no such module, e.g. a structured run's empty list)."""
    la = {r["name"]: r for r in a.get("layers") or []}
    lb = {r["name"]: r for r in b.get("layers") or []}
    names = list(la) + [n for n in lb if n not in la]
    rows = []
    for n in names:
        ra, rb = la.get(n), lb.get(n)
        ref = ra or rb
        rows.append({"name": n, "block": ref["block"], "kind": ref["kind"],
                     "a_local": ra["local_error"] if ra else None, "b_local": rb["local_error"] if rb else None,
                     "a_sparsity": ra["achieved_sparsity"] if ra else None,
                     "b_sparsity": rb["achieved_sparsity"] if rb else None})
    return rows


def align_blocks(a: dict, b: dict) -> list[dict]:
    """One row per block index of either run: {block, a_calib, b_calib, a_heldout, b_heldout} (cumulative error
    at the block's output on calibration and held-out texts; None where not measured)."""
    ba = {r["block"]: r for r in a.get("blocks") or []}
    bb = {r["block"]: r for r in b.get("blocks") or []}
    rows = []
    for i in sorted(set(ba) | set(bb)):
        ra, rb = ba.get(i, {}), bb.get(i, {})
        rows.append({"block": i, "a_calib": ra.get("cumulative_error"), "b_calib": rb.get("cumulative_error"),
                     "a_heldout": ra.get("heldout_error"), "b_heldout": rb.get("heldout_error")})
    return rows


def interval(res: dict, which: str = "accuracy") -> tuple[float, float] | None:
    """The Wilson 95% interval of a run's `accuracy` or `dense_accuracy`: the stored one (`accuracy_ci`,
    `dense_accuracy_ci`), else computed from the accuracy and `eval_examples` (runs stored before it was kept)."""
    if which not in ("accuracy", "dense_accuracy"):
        raise PrunescopeError(f"no interval for '{which}'; choose accuracy or dense_accuracy")
    stored = res.get(f"{which}_ci")
    if stored:
        return (float(stored[0]), float(stored[1]))
    return intervals.accuracy_interval(res.get(which), res.get("eval_examples"))


@dataclass
class Delta:
    """One measure of both runs: A's and B's value, B - A, and each run's 95% interval (None if unknown)."""

    measure: str
    a: float | None
    b: float | None
    a_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    n_a: int | None = None
    n_b: int | None = None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def overlap(self) -> bool | None:
        """Whether the two intervals overlap (None without both): no overlap = a difference beyond noise."""
        if not self.a_ci or not self.b_ci:
            return None
        return self.a_ci[0] <= self.b_ci[1] and self.b_ci[0] <= self.a_ci[1]


def accuracy_deltas(a: dict, b: dict) -> list[Delta]:
    """Pruned and dense accuracy of both runs with their Wilson intervals."""
    return [Delta(w, a.get(w), b.get(w), interval(a, w), interval(b, w), a.get("eval_examples"),
                  b.get("eval_examples")) for w in ("accuracy", "dense_accuracy")]


def attacks_of(store: Store, res: dict) -> dict[str, dict]:
    """recipe -> {n, clean_accuracy, accuracy_under_attack, attack_success_rate} of the largest finished attack
    on a run's pruned model (the newest among equals); {} when it was never attacked."""
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.robustness import AttackConfig

    target = AttackConfig(ExperimentConfig.from_dict(res["config"])).target_key()
    rows = store.query("SELECT recipe, n, clean_accuracy, accuracy_under_attack, attack_success_rate FROM attacks "
                       "WHERE target = ? AND complete = 1 ORDER BY n, created", (target,))
    out: dict[str, dict] = {}
    for recipe, n, *measures in rows.itertuples(index=False):  # later (larger, newer) attacks win
        out[recipe] = {"n": int(n), **{m: (None if v is None or v != v else float(v))
                                       for m, v in zip(ATTACK_MEASURES, measures)}}
    return out


def attack_deltas(attacks_a: dict[str, dict], attacks_b: dict[str, dict]) -> dict[str, list[Delta]]:
    """recipe -> the deltas of its measures, for every recipe that attacked both runs, each with its Wilson
    interval: the accuracies on the attack's n examples, the success rate on the examples the model got right
    before the attack (n x clean accuracy: the others are skipped, not attacked)."""
    out = {}
    for recipe in sorted(set(attacks_a) & set(attacks_b)):
        ra, rb = attacks_a[recipe], attacks_b[recipe]
        out[recipe] = [Delta(m, ra[m], rb[m], _attack_interval(ra, m), _attack_interval(rb, m), ra["n"], rb["n"])
                       for m in ATTACK_MEASURES]
    return out


def _attack_interval(row: dict, measure: str) -> tuple[float, float] | None:
    n = row["n"]
    if measure == "attack_success_rate":
        n = round(n * row["clean_accuracy"]) if row.get("clean_accuracy") is not None else None
    return intervals.accuracy_interval(row[measure], n)


@dataclass
class MaskDiff:
    """Two keep-masks of one module compared weight by weight."""

    both: int
    a_only: int
    b_only: int
    neither: int
    codes: np.ndarray = field(repr=False)  # NEITHER / A_ONLY / B_ONLY / BOTH per weight, the masks' shape

    @property
    def total(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither

    @property
    def agreement(self) -> float:
        """Share of weights both runs treat alike (kept by both or pruned by both)."""
        return (self.both + self.neither) / self.total if self.total else float("nan")

    @property
    def jaccard(self) -> float:
        """Kept by both / kept by either (1 = the same weights kept)."""
        union = self.both + self.a_only + self.b_only
        return self.both / union if union else float("nan")


def mask_diff(mask_a, mask_b) -> MaskDiff:
    """Compare two keep-masks of the same shape (torch tensors, numpy arrays or lists; nonzero = kept)."""
    ma, mb = _bool(mask_a), _bool(mask_b)
    if ma.shape != mb.shape:
        raise PrunescopeError(f"the two masks differ in shape ({ma.shape[0]}×{ma.shape[1]} and "
                              f"{mb.shape[0]}×{mb.shape[1]}): the runs pruned different models")
    codes = (ma.astype(np.uint8) * A_ONLY) + (mb.astype(np.uint8) * B_ONLY)  # both = 1 + 2 = 3
    counts = np.bincount(codes.ravel(), minlength=4)
    return MaskDiff(both=int(counts[BOTH]), a_only=int(counts[A_ONLY]), b_only=int(counts[B_ONLY]),
                    neither=int(counts[NEITHER]), codes=codes)


def module_mask_diff(store: Store, key_a: str, key_b: str, name: str) -> MaskDiff | None:
    """The mask difference of module `name` between two stored runs; None when either run was stored
    without its masks (shipped demo runs)."""
    ma, mb = store.masks(key_a, [name]).get(name), store.masks(key_b, [name]).get(name)
    if ma is None or mb is None:
        return None
    return mask_diff(ma, mb)


def _bool(mask) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise PrunescopeError(f"a keep-mask is 2-D (rows × columns); got shape {m.shape}")
    return m


@dataclass
class RunDiff:
    """Everything the Run-against-run page draws for runs A and B."""

    a: dict
    b: dict
    modules: list[dict]
    blocks: list[dict]
    accuracy: list[Delta]
    attacks: dict[str, list[Delta]]
    attacks_a: dict[str, dict]
    attacks_b: dict[str, dict]

    @property
    def common_modules(self) -> list[str]:
        """Modules pruned in both runs (those a mask difference can be drawn for)."""
        return [r["name"] for r in self.modules if r["a_local"] is not None and r["b_local"] is not None]


def compare(store: Store, key_a: str, key_b: str) -> RunDiff:
    """Load runs `key_a` and `key_b` from `store` and align them (PrunescopeError if either is missing or they
    prune different models)."""
    runs = []
    for label, key in (("A", key_a), ("B", key_b)):
        res = store.load(key)
        if res is None:
            raise PrunescopeError(f"run {label} ({key}) is not in the results store")
        runs.append(res)
    a, b = runs
    check_comparable(a, b)
    atk_a, atk_b = attacks_of(store, a), attacks_of(store, b)
    return RunDiff(a, b, align_modules(a, b), align_blocks(a, b), accuracy_deltas(a, b),
                   attack_deltas(atk_a, atk_b), atk_a, atk_b)
