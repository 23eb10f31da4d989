"""`bench_speed --scale bert-base` (issue 15): pruning at the scale of bert-base.

No hub here, so the model is a randomly initialised BertForSequenceClassification with the BertConfig
defaults (12 layers, hidden 768, 12 heads, FFN 3072, 2 labels; seed 0) and the shipped default
model's tokenizer, saved once under artifacts/bench_models/ and loaded like any local folder.

- unit: one forward of the whole model over the calibration set, in its length-sorted micro-batches;
- per method (magnitude, wanda, sparsegpt at 50% unstructured, the held-out set included as in the
  rest of bench_speed), each in a fresh process so that memory freed by an earlier run is not
  reused: the whole `engine.prune` wall, the engine's `prune_seconds`, time per engine phase
  (dense pass; statistics = `solve_block` less the method; the method's solve; measure; held-out),
  and the peak RSS over what the process held just before the call (model, its deep copy and the
  calibration already loaded), sampled every 5 ms in a thread, also as a multiple of the model's
  parameter bytes. SparseGPT also runs with the dense activation cache off (PRUNESCOPE_DENSE_CACHE_MB=0);
- cProfile of the SparseGPT run, top entries by cumulative and by own time.
"""

from __future__ import annotations

import copy
import cProfile
import io
import os
import pstats
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "artifacts" / "bench_models"
TASK = "rotten_tomatoes"
SCALES = {"bert-base": {}}  # BertConfig defaults


def model_dir(scale: str, task: str = TASK) -> Path:
    """The random model of `scale` (created once): BertConfig defaults plus `task`'s default tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pruning_core.model.models import default_model_dir

    folder = MODELS / f"{scale}-random-seed0"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    tok = AutoTokenizer.from_pretrained(default_model_dir(task), local_files_only=True)
    config = BertConfig(vocab_size=len(tok), num_labels=2, **SCALES[scale])
    torch.manual_seed(0)
    net = BertForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def _load(folder: str, n: int, seq_len: int):
    from pruning_core.data import calibration
    from pruning_core.experiments.experiment import load_dense

    model, tok = load_dense(folder, TASK, "cpu")
    calib = calibration.from_task(tok, TASK, n, seq_len, 0)
    held = calibration.heldout(tok, TASK, n, seq_len, 0, exclude=calib.texts)
    return model, calib, held


def unit_forward(folder: str, n: int, seq_len: int) -> dict:
    """Fastest of 2 (after a warm-up) forwards of the whole model over the calibration set."""
    import torch

    from benchmarks.common import best_of

    model, calib, _ = _load(folder, n, seq_len)
    with torch.no_grad():
        unit = best_of(lambda: [model(input_ids=i, attention_mask=m.long()) for i, m in calib.batches], repeat=2)
    return {"unit_s": unit, "real_tokens": calib.real_tokens, "examples": calib.n_examples,
            "params": sum(p.numel() for p in model.parameters()),
            "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}


def _timed_phases(log: dict):
    """Wrap the engine's phase functions (as `engine._prune` calls them) to add their wall time to `log`."""
    from pruning_core.prune import engine

    def wrap(name, fn, gen=False):
        def timed(*a, **kw):
            t = time.perf_counter()
            out = fn(*a, **kw)
            log[name] = log.get(name, 0.0) + time.perf_counter() - t
            return out

        def timed_gen(*a, **kw):
            t = time.perf_counter()
            out = yield from fn(*a, **kw)
            log[name] = log.get(name, 0.0) + time.perf_counter() - t
            return out

        return timed_gen if gen else timed

    for name in ("dense_pass", "solve_block", "advance"):
        setattr(engine, name, wrap(name, getattr(engine, name)))
    engine.measure_window = wrap("measure_window", engine.measure_window, gen=True)


def prune_worker(folder: str, n: int, seq_len: int, method: str, cache_mb: int | None, profile: bool) -> dict:
    """One cold prune of a deep copy in this (fresh) process: times, phases, peak RSS growth; cProfile."""
    if cache_mb is not None:
        os.environ["PRUNESCOPE_DENSE_CACHE_MB"] = str(cache_mb)
    from pruning_core.measure.profiling import PeakMemory, rss_bytes
    from pruning_core.prune import dense_cache, engine
    from pruning_core.prune.records import BlockRecord

    model, calib, held = _load(folder, n, seq_len)
    phases: dict[str, float] = {}
    _timed_phases(phases)
    rss0 = rss_bytes()
    net = copy.deepcopy(model)
    copy_mb = (rss_bytes() - rss0) / 2**20
    block_rss: list[float] = []
    before = rss_bytes()

    def on_record(rec):
        if isinstance(rec, BlockRecord):
            block_rss.append((rss_bytes() - before) / 2**20)

    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    with PeakMemory("cpu") as mem:
        if prof:
            prof.enable()
        res = engine.run(engine.prune(net, calib, method, 0.5, "unstructured", heldout=held,
                                      dense_key=(folder, TASK, "cpu")), on_record)
        if prof:
            prof.disable()
    wall = time.perf_counter() - t
    out = {"method": method, "cache_mb": dense_cache.cap_bytes() / 2**20, "wall_s": wall,
           "prune_s": res.prune_seconds, "timings": res.timings, "phases": phases,
           "peak_growth_mb": mem.peak_mb, "engine_peak_mb": res.peak_memory_mb, "deepcopy_mb": copy_mb,
           "rss_growth_after_block_mb": block_rss, "cache_held_mb": dense_cache.size_mb(),
           "sparsity": res.achieved_sparsity}
    if prof:
        out["profile"] = {key: _top(prof, key) for key in ("cumulative", "tottime")}
    return out


def _top(prof: cProfile.Profile, key: str, top: int = 15) -> str:
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:])


def in_fresh_process(fn, *args):
    """`fn(*args)` in a new (spawned) Python process: its memory starts clean."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def split_row(r: dict) -> list[float]:
    """Seconds per phase: dense pass, statistics (solve_block less the method), method, measure, held-out."""
    ph, tm = r["phases"], r["timings"]
    return [ph.get("dense_pass", 0.0), ph.get("solve_block", 0.0) - tm["method"], tm["method"],
            ph.get("measure_window", 0.0), tm["heldout"]]


def run(scale: str, n: int, seq_len: int, profile: bool = True) -> tuple[str, dict]:
    """The scale benchmark: table text and the report (for speed_<scale>.json)."""
    from benchmarks.common import machine, print_table

    folder = str(model_dir(scale))
    report = {"machine": machine(), "model": folder, "load": os.getloadavg()}
    unit = in_fresh_process(unit_forward, folder, n, seq_len)
    report["unit"] = unit
    model_mb = unit["param_bytes"] / 2**20
    runs = [("magnitude", None, False), ("wanda", None, False), ("sparsegpt", None, False),
            ("sparsegpt", 0, False)]
    if profile:
        runs.append(("sparsegpt", None, True))
    rows = [["one calibration forward (unit)", unit["unit_s"], 1.0, "", "", "", "", "", "", "", ""]]
    for method, cache_mb, prof in runs:
        r = in_fresh_process(prune_worker, folder, n, seq_len, method, cache_mb, prof)
        report.setdefault("runs", []).append(r)
        if prof:
            continue  # profiled: its times are inflated
        name = f"{method} 50%" + (" (dense cache off)" if cache_mb == 0 else "")
        u = unit["unit_s"]
        rows.append([name, r["wall_s"], r["wall_s"] / u, r["prune_s"] / u,
                     *[f"{s:.1f}" for s in split_row(r)],
                     r["peak_growth_mb"], r["peak_growth_mb"] / model_mb])
    title = (f"{scale} (random init, {unit['params'] / 1e6:.0f}M params = {model_mb:.0f} MiB): pruning as multiples "
             f"of one calibration forward ({unit['examples']} x {seq_len}, {unit['real_tokens']} real tokens, "
             f"held-out set included; {machine()}; load {report['load'][0]:.2f})")
    text = print_table(["measure", "wall s", "wall / unit", "prune_s / unit", "dense s", "stats s", "solve s",
                        "measure s", "held-out s", "peak growth MiB", "growth / model"], rows, title)
    text += ("targets: sparsegpt / unit <= 3x; peak growth <= 1.5x the model. dense s: dense_pass; stats s: "
             "solve_block less the method (Gram passes on the pruned stream); measure s includes the held-out "
             "pruned pass\n")
    for r in report["runs"]:
        if "profile" in r:
            for key, body in r["profile"].items():
                text += f"\n# cProfile, {scale} sparsegpt 50% (cold), top 15 by {key}\n{body}\n"
    return text, report
