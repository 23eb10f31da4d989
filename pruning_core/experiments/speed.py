"""Measured speed: latency at batch 1 and throughput at batch 32 of a model on fixed random token ids,
and of a stored run against its dense model (kept in the store's `speed` table so the dashboard shows
it without measuring again).

Latency is the median over `repeats` timed forward passes after warm-up; throughput is sequences per
second from the median time of a batch. Runs under `torch.inference_mode`, with torch's thread count
left as it is (recorded with the numbers), synchronising on CUDA. Unstructured sparsity runs on dense
kernels, so it changes nothing here: the numbers say so honestly; structured runs are smaller models.
"""

from __future__ import annotations

import statistics
import time
from functools import lru_cache

import torch

from pruning_core.core import environment
from pruning_core.core.errors import PrunescopeError

DEFAULT_SEQ_LEN = 64
DEFAULT_REPEATS = 20


@lru_cache(maxsize=None)
def device_string(device: str) -> str:
    """The device type and the processor's name, e.g. 'cpu: AMD EPYC 7B13' or 'cuda: NVIDIA H100'."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    return f"{dev.type}: {environment.cpu_model()}"


def token_ids(tokenizer, seq_len: int, batch: int, seed: int = 0) -> torch.Tensor:
    """Fixed random ids [batch, seq_len]: [CLS] random word pieces [SEP] (no padding)."""
    vocab = getattr(tokenizer, "vocab_size", None) or len(tokenizer)
    low = 1000 if vocab > 2000 else 0  # BERT vocabularies keep special and unused tokens below ~1000
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab, (batch, seq_len), generator=g)
    if tokenizer.cls_token_id is not None:
        ids[:, 0] = tokenizer.cls_token_id
    if tokenizer.sep_token_id is not None:
        ids[:, -1] = tokenizer.sep_token_id
    return ids


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(model, tokenizer, seq_len: int = DEFAULT_SEQ_LEN, device: str | torch.device = "cpu",
            batch_sizes: tuple[int, int] = (1, 32), repeats: int = DEFAULT_REPEATS, warmup: int = 3,
            seed: int = 0) -> dict:
    """{latency_ms (median, batch_sizes[0]), throughput (sequences/s, batch_sizes[1]), median_ms per batch
    size, seq_len, batch_sizes, repeats, device, threads}. `model` must already be on `device`."""
    if not isinstance(seq_len, int) or seq_len < 2:
        raise PrunescopeError(f"seq_len must be an integer >= 2; got {seq_len}")
    if not isinstance(repeats, int) or repeats < 1:
        raise PrunescopeError(f"repeats must be a positive integer; got {repeats}")
    if len(batch_sizes) != 2 or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise PrunescopeError(f"batch_sizes must be two positive integers (latency, throughput); got {batch_sizes}")
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos and seq_len > max_pos:
        raise PrunescopeError(f"seq_len {seq_len} is longer than the model's {max_pos} positions")
    dev = torch.device(device)
    ids_all = token_ids(tokenizer, seq_len, max(batch_sizes), seed).to(dev)
    median_ms = {}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b in dict.fromkeys(batch_sizes):
                ids = ids_all[:b]
                mask = torch.ones_like(ids)
                for _ in range(warmup):
                    model(input_ids=ids, attention_mask=mask)
                _sync(dev)
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask)
                    _sync(dev)
                    times.append(time.perf_counter() - t)
                median_ms[b] = 1000 * statistics.median(times)
    finally:
        model.train(was_training)
    lat_b, thr_b = batch_sizes
    return {"latency_ms": median_ms[lat_b], "throughput": thr_b / (median_ms[thr_b] / 1000),
            "median_ms": {str(b): v for b, v in median_ms.items()}, "seq_len": seq_len,
            "batch_sizes": list(batch_sizes), "repeats": repeats, "warmup": warmup,
            "device": device_string(str(dev)), "threads": torch.get_num_threads()}


def default_seq_len(record: dict) -> int:
    """The task's average length where the run measured it (structured runs), else 64."""
    s = (record.get("structure") or {}).get("seq_len")
    return max(2, round(s)) if s else DEFAULT_SEQ_LEN


def _params(model) -> tuple[int, int]:
    ps = list(model.parameters())
    return sum(p.numel() for p in ps), sum(int((p != 0).sum()) for p in ps)


def measure_run(key: str, store, device: str = "cpu", repeats: int = DEFAULT_REPEATS, seq_len: int | None = None,
                batch_sizes: tuple[int, int] = (1, 32), recompute: bool = False, on_stage=None) -> dict:
    """Dense model vs the pruned model of stored run `key`: {rows: [{model: dense|run, latency_ms,
    throughput, speedup, throughput_speedup, params, nonzero_params, flops, sparsity}], device, threads,
    seq_len, batch_sizes, repeats, stored}. A stored measurement with the same device, thread count and
    length is returned as it is unless `recompute`. `on_stage(text)` hears when the slow part starts."""
    import copy

    from pruning_core.experiments.export import load_record, rebuild, semi_structured_support, to_semi_structured
    from pruning_core.model.models import resolve_device
    from pruning_core.prune.structured.structure import Structure

    rec = load_record(key, store)
    dev = str(resolve_device(device))
    seq_len = default_seq_len(rec) if seq_len is None else seq_len
    if not recompute:
        old = store.load_speed(key, device=device_string(dev), threads=torch.get_num_threads(), seq_len=seq_len)
        if old is not None and old.get("batch_sizes") == list(batch_sizes):
            return old | {"stored": True}
    (on_stage or (lambda s: None))(f"pruning run {key} again on {dev}, then timing it and its dense model")
    rb = rebuild(key, store, dev)
    dense, run = rb.dense, rb.model
    semi, why = False, None
    if rb.config.pattern == "2:4":
        semi, why = semi_structured_support(dev)
        if semi:  # the kernels take float16: compare like with like
            dense, run = copy.deepcopy(dense).half(), run.half()
    dense_params, dense_nz = _params(dense)
    run_params, run_nz = _params(run)
    if semi:
        to_semi_structured(run)
    flops_dense = flops_run = None
    if rb.structured:
        full = Structure.full(rb.dense.config)
        flops_dense = full.flops(seq_len)
        flops_run = Structure.from_masks(rb.result.masks, full.head_dim).flops(seq_len)
    m_dense = measure(dense, rb.tokenizer, seq_len, dev, batch_sizes, repeats)
    m_run = measure(run, rb.tokenizer, seq_len, dev, batch_sizes, repeats)
    rows = [
        {"model": "dense", "latency_ms": m_dense["latency_ms"], "throughput": m_dense["throughput"],
         "speedup": 1.0, "throughput_speedup": 1.0, "params": dense_params, "nonzero_params": dense_nz,
         "flops": flops_dense, "sparsity": 0.0},
        {"model": "run", "latency_ms": m_run["latency_ms"], "throughput": m_run["throughput"],
         "speedup": m_dense["latency_ms"] / m_run["latency_ms"],
         "throughput_speedup": m_run["throughput"] / m_dense["throughput"], "params": run_params,
         "nonzero_params": run_nz, "flops": flops_run, "sparsity": rec.get("achieved_sparsity")},
    ]
    out = {"key": key, "method": rb.config.method, "pattern": rb.config.pattern, "rows": rows,
           "device": m_dense["device"], "threads": m_dense["threads"], "seq_len": seq_len,
           "batch_sizes": list(batch_sizes), "repeats": repeats,
           "semi_structured": semi, "semi_structured_note": why,
           "dtype": str(next(dense.parameters()).dtype).replace("torch.", "")}
    store.save_speed(key, out)
    return out | {"stored": False}
