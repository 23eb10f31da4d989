"""Attack a (pruned) model with a named recipe on a seeded sample of a task's test split.

Every attacked example is saved to the results store as soon as it finishes, so a long attack that is
stopped (Ctrl-C, a closed browser tab, a killed process) resumes where it stopped; a finished attack is
read back instead of recomputed. Each example is seeded from (seed, position in the sample), so a
resumed attack gives the same results as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

import pruning_core.robustness.recipes as recipes
from pruning_core.data import tasks as data
from pruning_core.core import fingerprint
from pruning_core.model import models
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.errors import PrunescopeError
from pruning_core.robustness.metrics import summarize

DEFAULT_N = 100


@dataclass(frozen=True)
class AttackConfig:
    """What to attack (a prune config; sparsity 0 = the dense model), with which recipe, on which sample.

    The key hashes the target (the pruned run's key, or the dense model's content), the recipe and its
    version, the sample (size and seed), the query budget and the input length."""

    run: ExperimentConfig
    recipe: str = "deepwordbug"
    n: int = DEFAULT_N
    seed: int = 0
    query_budget: int | None = None  # model queries per example; None = no limit
    # attack only the words the model reads (the text cut where its tokens reach the task's maximum
    # length): for long documents (BBC News articles run to ~400 words, the model reads ~100) this saves
    # the queries spent ranking words the model never sees; see `visible_text`
    visible_only: bool = False

    @classmethod
    def create(cls, run: ExperimentConfig | None = None, recipe: str = "deepwordbug", n: int = DEFAULT_N,
               seed: int = 0, query_budget: int | None = None, visible_only: bool = False,
               **run_kw) -> "AttackConfig":
        """Build and validate; without `run`, the prune config is made from `run_kw` (sparsity 0 = dense)."""
        if run is None:
            run_kw.setdefault("sparsity", 0.0)
            run_kw.setdefault("method", "magnitude")
            run = ExperimentConfig.create(**run_kw)
        return cls(run, recipe, n, seed, query_budget, visible_only).validate()

    @property
    def dense(self) -> bool:
        return self.run.sparsity == 0 and self.run.pattern == "unstructured"

    def validate(self) -> "AttackConfig":
        recipes.get(self.recipe)
        if not isinstance(self.n, int) or isinstance(self.n, bool) or not 1 <= self.n <= 1_000_000:
            raise PrunescopeError(f"the number of examples must be a positive integer (at most 1,000,000); "
                                  f"got {self.n}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise PrunescopeError(f"seed must be an integer >= 0; got {self.seed}")
        if self.query_budget is not None and (not isinstance(self.query_budget, int) or self.query_budget < 1):
            raise PrunescopeError(f"query budget must be a positive integer or None; got {self.query_budget}")
        if not isinstance(self.visible_only, bool):
            raise PrunescopeError(f"visible_only must be true or false; got {self.visible_only!r}")
        self.run.validate()
        return self

    def check_size(self) -> None:
        """Refuse an `n` larger than the test split (an attack takes at most the whole split; a user who
        asked for more is told instead of silently getting fewer)."""
        size = len(data.load(self.run.task, "test"))
        if self.n > size:
            raise PrunescopeError(f"n={self.n} is more than the {size} test examples of task '{self.run.task}'; "
                                  f"attack at most {size}")

    def target_key(self) -> str:
        """The pruned run's config key, or for sparsity 0 a key of the dense model itself, shared by every
        method: sparsity 0 means the dense model here (AKRP's ridge refit or a reconstruction's training
        at sparsity 0 would move weights, but is not what a robustness-vs-sparsity curve starts from)."""
        if not self.dense:
            return self.run.with_(eval_size=None).key()  # the pruned model, whatever its evaluation subset
        from pruning_core.data.tasks import HUB, SHIPPED

        path = Path(models.resolve(self.run.model, self.run.task)).expanduser()
        local_task = self.run.task not in SHIPPED and self.run.task not in HUB
        d = {"model": self.run.model, "task": self.run.task, "files": fingerprint.of_path(path),
             "task_file": fingerprint.of_path(Path(self.run.task).expanduser()) if local_task else ""}
        return "dense-" + hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def key(self) -> str:
        from pruning_core.experiments.experiment import eval_max_length

        d = {"target": self.target_key(), "recipe": self.recipe, "version": recipes.get(self.recipe).version,
             "n": self.n, "seed": self.seed, "query_budget": self.query_budget,
             "max_length": eval_max_length(self.run.task)}
        if self.visible_only:  # absent when off, so the keys of earlier attacks stay valid
            d["visible_only"] = True
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def meta(self) -> dict:
        """The columns of the store's attacks table."""
        return {"target": self.target_key(), "model": self.run.model, "task": self.run.task,
                "method": "dense" if self.dense else self.run.method,
                "pattern": "dense" if self.dense else self.run.pattern,
                "sparsity": 0.0 if self.dense else self.run.sparsity,
                "recipe": self.recipe, "n": self.n, "seed": self.seed}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["run"] = self.run.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AttackConfig":
        return cls(ExperimentConfig.from_dict(d["run"]), d["recipe"], d["n"], d["seed"], d.get("query_budget"),
                   bool(d.get("visible_only", False)))

    def with_(self, **kw) -> "AttackConfig":
        return replace(self, **kw)


@dataclass
class AttackOutcome:
    config: AttackConfig
    key: str
    summary: dict
    examples: list[dict]
    reused: int  # examples read from the store (a finished or an interrupted earlier attack)
    computed: int  # examples attacked by this call

    def to_json(self) -> dict:
        return {"key": self.key, "config": self.config.to_dict(), "meta": self.config.meta(),
                "summary": self.summary, "examples": self.examples}


# ---------------------------------------------------------------------------------- the target model

@lru_cache(maxsize=2)
def target_model(run: ExperimentConfig, device: str):
    """(model, tokenizer) to attack: the cached dense model, or a pruned copy rebuilt from the config
    (pruning is deterministic; runs store masks, not the updated weights SparseGPT produces)."""
    from pruning_core.experiments.experiment import load_dense, prune_copy

    dense_net, tok = load_dense(run.model, run.task, device, run.fresh_head)
    if run.sparsity == 0 and run.pattern == "unstructured":
        return dense_net, tok
    net, _ = prune_copy(run, dense_net, tok)
    return net, tok


def model_wrapper(net, tok, max_length: int):
    """A TextAttack `ModelWrapper` returning logits; pads per batch to the longest text (the stock
    HuggingFaceModelWrapper pads every query to the tokenizer's maximum length)."""
    from pruning_core.measure.evaluate import predict
    from pruning_core.robustness.resources import textattack

    ta = textattack()

    class ClassifierWrapper(ta.models.wrappers.ModelWrapper):
        def __init__(self, model, tokenizer, length):
            self.model, self.tokenizer, self.max_length = model, tokenizer, length

        def __call__(self, text_input_list, **kwargs):
            texts = [t if isinstance(t, str) else " ".join(t) for t in text_input_list]
            return predict(self.model, self.tokenizer, texts, self.max_length, batch_size=32)

    return ClassifierWrapper(net, tok, max_length)


# ---------------------------------------------------------------------------------- one example

def _spans(attacked_text, indices) -> list[list[int]]:
    out = []
    for i in indices:
        start = attacked_text._text_index_of_word_index(i)
        out.append([start, start + len(attacked_text.words[i])])
    return out


def example_record(idx: int, result, label: int, seconds: float) -> dict:
    """A plain-JSON record of one TextAttack result (see `metrics` for how records are summarised)."""
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    orig, pert = result.original_result, result.perturbed_result
    kind = ("skipped" if isinstance(result, SkippedAttackResult) else "successful"
            if isinstance(result, SuccessfulAttackResult) else "failed" if isinstance(result, FailedAttackResult)
            else None)
    if kind is None:
        raise PrunescopeError(f"unexpected attack result {type(result).__name__}")
    changed = [] if kind == "skipped" else sorted(orig.attacked_text.all_words_diff(pert.attacked_text))
    return {
        "idx": idx, "result": kind, "label": int(label),
        "text": orig.attacked_text.text, "perturbed": None if kind == "skipped" else pert.attacked_text.text,
        "original_pred": int(orig.output), "original_confidence": float(orig.raw_output[orig.output]),
        "perturbed_pred": int(pert.output), "perturbed_confidence": float(pert.raw_output[pert.output]),
        "queries": int(result.num_queries if kind != "skipped" else 0),
        "words": len(orig.attacked_text.words), "changed": changed,
        "original_spans": _spans(orig.attacked_text, changed),
        "perturbed_spans": _spans(pert.attacked_text, changed) if changed else [],
        "seconds": round(seconds, 4),
    }


class _ThreadRandom(threading.local):
    """Per-thread generators for TextAttack. Its transformations and search methods draw from the
    process-global `random` and `np.random`; in a multi-threaded server (Streamlit) other threads draw
    from those too, and the same attack gave different perturbations. TextAttack's modules get proxies
    to these per-thread generators instead (`isolate_rng`), seeded for every example."""

    def __init__(self):
        self.py = random.Random(0)
        self.np = np.random.RandomState(0)


_RNG = _ThreadRandom()


class _PyRandom:
    def __getattr__(self, name):
        return getattr(_RNG.py, name)


class _NpRandom:
    def __getattr__(self, name):
        return getattr(_RNG.np, name)


class _Numpy:
    random = _NpRandom()

    def __getattr__(self, name):
        return getattr(np, name)


def isolate_rng() -> None:
    """Point every loaded TextAttack module's `random` and `np` at the per-thread generators."""
    for name, mod in list(sys.modules.items()):
        if name.startswith("textattack.") and mod is not None:
            if getattr(mod, "random", None) is random:
                mod.random = _PyRandom()
            if getattr(mod, "np", None) is np:
                mod.np = _Numpy()


def _seed_example(seed: int, idx: int) -> None:
    s = (seed * 1_000_003 + idx) % (2**32)
    _RNG.py.seed(s)
    _RNG.np.seed(s)


# ---------------------------------------------------------------------------------- the runner

def visible_text(tokenizer, text: str, max_length: int) -> str:
    """`text` cut after the last whole word whose tokens fit in `max_length` (special tokens counted):
    the part of the text a classifier that truncates at `max_length` reads. Its tokens are a prefix of
    the full text's tokens. Deviation from attacking the whole text: a word deleted or split by the
    attack can no longer pull unseen words into view."""
    if not getattr(tokenizer, "is_fast", False):  # offsets and word ids need a fast tokenizer
        raise PrunescopeError("visible_only needs a fast (Rust) tokenizer; attack the whole text instead")
    # one token more than the model reads tells whether the last word read is cut in two
    enc = tokenizer(text, truncation=True, max_length=max_length + 1, return_offsets_mapping=True)
    offsets, words = enc["offset_mapping"], enc.word_ids()
    read = [i for i in range(min(len(words), max_length - 1)) if words[i] is not None]
    nxt = max_length - 1 if max_length - 1 < len(words) and words[max_length - 1] is not None else None
    if not read or nxt is None:
        return text  # the model reads all of it
    last = words[read[-1]]
    if words[nxt] == last:  # drop the word whose last pieces fall outside
        keep = [i for i in read if words[i] != last]
        if not keep:
            return text
        return text[:offsets[keep[-1]][1]].rstrip()
    return text[:offsets[read[-1]][1]].rstrip()


def run_attack(cfg: AttackConfig, store=None, on_example: Callable[[int, int, dict], None] | None = None,
               on_stage: Callable[[str], None] | None = None, recompute: bool = False) -> AttackOutcome:
    """Attack `cfg.n` seeded test examples; reads finished examples from `store` and saves each new one.

    `on_example(done, total, record)` is called after every example (stored ones included);
    `on_stage(text)` at each stage. Raises PrunescopeError for an unavailable recipe or bad config."""
    from pruning_core.experiments.experiment import check_labels, eval_max_length, eval_split

    stage = on_stage or (lambda s: None)
    cfg.validate()
    recipes.check(cfg.recipe)
    key = cfg.key()
    if store is not None and recompute:
        store.delete_attack(key)
    done = {r["idx"]: r for r in store.attack_examples(key)} if store is not None else {}
    split = eval_split(cfg.run.task, cfg.n, cfg.seed)
    total = len(split)
    if store is not None and len(done) >= total:  # finished (or finished just before a crash)
        examples = [done[i] for i in sorted(done)][:total]
        summary = summarize(examples)
        if not store.attack_done(key):
            store.finish_attack(key, summary)
        return AttackOutcome(cfg, key, summary, examples, len(examples), 0)
    if store is not None:
        store.begin_attack(key, cfg.meta(), cfg.to_dict())
    device = str(models.resolve_device(cfg.run.device))
    stage("loading the dense model" if cfg.dense else f"pruning with {cfg.run.method} at {cfg.run.sparsity:g}")
    net, tok = target_model(cfg.run, device)
    check_labels(net, split)
    stage(f"building the {cfg.recipe} attack")
    attack = recipes.build(cfg.recipe, model_wrapper(net, tok, eval_max_length(cfg.run.task)), cfg.query_budget)
    isolate_rng()
    examples, reused = [], 0
    stage(f"attacking {total} examples ({len(done)} already stored)")
    for idx, (text, label) in enumerate(zip(split.texts, split.labels)):
        rec = done.get(idx)
        if rec is None:
            if cfg.visible_only:
                text = visible_text(tok, text, eval_max_length(cfg.run.task))
            _seed_example(cfg.seed, idx)
            t = time.perf_counter()
            result = attack.attack(text, int(label))
            rec = example_record(idx, result, label, time.perf_counter() - t)
            if store is not None:
                store.add_attack_example(key, rec)
        else:
            reused += 1
        examples.append(rec)
        if on_example:
            on_example(idx + 1, total, rec)
    summary = summarize(examples)
    if store is not None:
        store.finish_attack(key, summary)
    return AttackOutcome(cfg, key, summary, examples, reused, total - reused)


def load_attack(store, key: str) -> AttackOutcome | None:
    """A finished stored attack (None if absent or unfinished)."""
    row = store.load_attack(key)
    if row is None or not row["complete"]:
        return None
    examples = store.attack_examples(key)
    return AttackOutcome(AttackConfig.from_dict(row["config"]), key, row["summary"], examples, len(examples), 0)
