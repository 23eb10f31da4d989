"""What each kind of job does: `prepare` checks a spec before it is queued (its coalescing key, label,
whether the result is already stored), `run` computes it inside a worker, reporting records and
progress through a `Context` and stopping at the next record once a cancel is asked."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pruning_core.jobs.table as table
from pruning_core.core.errors import PrunescopeError

KINDS = ("prune", "attack", "speed", "export", "sweep", "warm")


class Cancelled(Exception):
    """Raised inside a job's callback once its cancel flag is set: the job stops, nothing is stored."""


@dataclass(frozen=True)
class Prepared:
    key: str  # the coalescing key
    label: str
    spec: dict  # normalised: equal requests give equal specs
    stored: bool  # the result is already in the store
    result_key: str | None  # what to open once done (known in advance for most kinds)


class Context:
    """A running job's line to the store: events, progress and the cancel check (at most every 0.5 s)."""

    def __init__(self, store, job_id: int, check_every: float = 0.5):
        self.store, self.job_id, self.check_every = store, job_id, check_every
        self._checked = 0.0

    def emit(self, type_: str, data: dict, progress: float | None = None, text: str | None = None) -> None:
        with table.immediate(self.store) as con:
            table.add_event(con, self.job_id, type_, data)
            if text is not None:
                table.set_progress(con, self.job_id, progress, text)
        self.check()

    def check(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return
        self._checked = now
        with table.reading(self.store) as con:
            r = con.execute("SELECT cancel FROM jobs WHERE id = ?", (self.job_id,)).fetchone()
        if r is None or r[0] is not None:
            raise Cancelled()


def _short(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _run_config(d: dict):
    """An ExperimentConfig from its dict, options completed with the method's defaults (equal keys)."""
    from pruning_core.experiments.config import ExperimentConfig

    if not isinstance(d, dict):
        raise PrunescopeError(f"a job's config must be a mapping (ExperimentConfig.to_dict()); got {type(d).__name__}")
    kw = {k: v for k, v in d.items() if k in ExperimentConfig.__dataclass_fields__}
    try:
        return ExperimentConfig.create(**kw)
    except TypeError as exc:
        raise PrunescopeError(f"bad prune config: {exc}") from None


def _run_label(cfg) -> str:
    return f"{cfg.method} {cfg.pattern} {cfg.sparsity:g} on {cfg.task}" + (
        "" if cfg.model == "default" else f" ({cfg.model})")


def _field(spec: dict, name: str):
    if not isinstance(spec, dict) or name not in spec:
        raise PrunescopeError(f"a job spec needs '{name}'; got {sorted(spec) if isinstance(spec, dict) else spec!r}")
    return spec[name]


# ---- prepare: check the spec, key it, and say whether the store has the result ----

def prepare(kind: str, spec: dict, store) -> Prepared:
    if kind not in KINDS:
        raise PrunescopeError(f"unknown job kind '{kind}'; choose one of {', '.join(KINDS)}")
    return PREPARE[kind](spec, store)


def prepare_prune(spec: dict, store) -> Prepared:
    cfg = _run_config(_field(spec, "config"))
    key = cfg.key()
    repeats = spec.get("repeats", 1)
    if not isinstance(repeats, int) or not 1 <= repeats <= 100:
        raise PrunescopeError(f"repeats must be an integer from 1 to 100; got {repeats!r}")
    norm = {"config": cfg.to_dict(), **({"repeats": repeats} if repeats > 1 else {})}
    return Prepared(key, f"prune {_run_label(cfg)}", norm, store.has(key), key)


def prepare_attack(spec: dict, store) -> Prepared:
    from pruning_core.robustness.attack import AttackConfig
    from pruning_core.robustness import recipes

    d = _field(spec, "config")
    if not isinstance(d, dict) or "run" not in d:
        raise PrunescopeError("an attack job's config must be AttackConfig.to_dict() (with 'run')")
    cfg = AttackConfig.from_dict(d | {"run": _run_config(d["run"]).to_dict()})
    cfg = cfg.with_(run=_run_config(d["run"])).validate()
    cfg.check_size()
    recipes.check(cfg.recipe)
    key = cfg.key()
    target = "dense" if cfg.dense else _run_label(cfg.run)
    return Prepared(key, f"attack {cfg.recipe} n={cfg.n} on {target}", {"config": cfg.to_dict()},
                    store.attack_done(key), key)


def prepare_speed(spec: dict, store) -> Prepared:
    from pruning_core.experiments.export import load_record
    from pruning_core.experiments.speed import default_seq_len, device_string
    from pruning_core.model.models import resolve_device

    run_key = _field(spec, "key")
    rec = load_record(run_key, store)
    device = spec.get("device") or "cpu"
    repeats = spec.get("repeats") or 20
    seq_len = spec.get("seq_len") or default_seq_len(rec)
    if not isinstance(repeats, int) or not 1 <= repeats <= 10_000:
        raise PrunescopeError(f"repeats must be an integer from 1 to 10,000; got {repeats!r}")
    if not isinstance(seq_len, int) or not 2 <= seq_len <= 8192:
        raise PrunescopeError(f"seq_len must be an integer from 2 to 8192; got {seq_len!r}")
    dev = str(resolve_device(device))
    stored = bool(store.speeds(run_key, device=device_string(dev), seq_len=seq_len))
    norm = {"key": run_key, "repeats": repeats, "seq_len": seq_len, "device": device}
    return Prepared(f"{run_key}:{device}:{repeats}:{seq_len}", f"speed of run {run_key}", norm, stored, run_key)


def prepare_export(spec: dict, store) -> Prepared:
    from pruning_core.experiments.export import _check_empty, default_root, load_record, resolve_out

    run_key = _field(spec, "key")
    if not isinstance(run_key, str):
        raise PrunescopeError(f"'{run_key}' is not a run key")
    load_record(run_key, store)
    root = Path(spec.get("root") or default_root(store))
    folder = resolve_out(spec.get("out"), root, default_name=run_key)
    force = bool(spec.get("force", False))
    _check_empty(folder, force)
    norm = {"key": run_key, "out": spec.get("out"), "root": str(root), "force": force,
            "device": spec.get("device") or "cpu"}
    return Prepared(f"{run_key}:{folder}", f"export run {run_key} to {folder}", norm, False, str(folder))


def prepare_sweep(spec: dict, store) -> Prepared:
    import pruning_core.sweeps.sweepfile as sweepfile
    from pruning_core.sweeps.run import plan

    raw = _field(spec, "spec")
    sweep = sweepfile.parse(raw)
    key = _short(json.dumps(raw, sort_keys=True, default=str))
    p = plan(sweep, store)
    return Prepared(key, f"sweep {sweep.name} ({len(sweep)} configs)", {"spec": raw}, p.todo == 0, None)


def prepare_warm(spec: dict, store) -> Prepared:
    """A warm-up: the method-independent part of a prune (see `experiment.warm`), keyed by what it loads."""
    cfg = _run_config(_field(spec, "config"))
    what = {k: getattr(cfg, k) for k in ("model", "task", "calib_size", "seq_len", "seed", "eval_size", "fresh_head",
                                         "device")}
    label = (f"warm-up: the dense {'default model' if cfg.model == 'default' else cfg.model} on {cfg.task} "
             f"(calibration {cfg.calib_size} x {cfg.seq_len})")
    return Prepared(_short(json.dumps(what, sort_keys=True, default=str)), label, {"config": cfg.to_dict()}, False,
                    None)


PREPARE = {"prune": prepare_prune, "attack": prepare_attack, "speed": prepare_speed, "export": prepare_export,
           "sweep": prepare_sweep, "warm": prepare_warm}


# ---- run: inside a worker process ----

def run(kind: str, spec: dict, store, ctx: Context, recompute: bool = False) -> str | None:
    """Compute one job; returns the stored thing to open (run key, attack key, export folder, sweep id)."""
    return RUN[kind](spec, store, ctx, recompute)


def run_prune(spec: dict, store, ctx: Context, recompute: bool) -> str:
    from pruning_core.experiments.experiment import load_dense
    from pruning_core.model.arch import arch_of
    from pruning_core.model.models import resolve_device
    from pruning_core.prune.records import BlockRecord, LayerRecord
    from pruning_core.storage.prune_run import prune_and_store

    cfg = _run_config(spec["config"])
    n_blocks: list[int] = []

    def on_stage(text: str) -> None:
        ctx.emit("stage", {"text": text})

    def on_record(r) -> None:
        if not n_blocks:  # the dense model is loaded (and cached) by now
            net, _ = load_dense(cfg.model, cfg.task, str(resolve_device(cfg.device)), cfg.fresh_head)
            n_blocks.append(len(arch_of(net).blocks(net)))
        if isinstance(r, BlockRecord):
            done = r.block + 1
            ctx.emit("block", asdict(r), done / n_blocks[0], f"block {r.block} done ({done} of {n_blocks[0]})")
        elif isinstance(r, LayerRecord):
            ctx.emit("layer", asdict(r))
        else:
            ctx.emit("step", asdict(r), r.step / max(r.total, 1), f"step {r.step} of {r.total}")

    out, _ = prune_and_store(cfg, store, on_record=on_record, on_stage=on_stage, recompute=recompute,
                             repeats=int(spec.get("repeats", 1)))
    return out["key"]


def run_attack(spec: dict, store, ctx: Context, recompute: bool) -> str:
    from pruning_core.robustness.attack import AttackConfig, run_attack as attack

    d = spec["config"]
    cfg = AttackConfig.from_dict(d).with_(run=_run_config(d["run"]))

    def on_example(done: int, total: int, rec: dict) -> None:
        ctx.emit("example", {"done": done, "total": total, "result": rec.get("result")}, done / total,
                 f"example {done} of {total}")

    out = attack(cfg, store, on_example=on_example, on_stage=lambda s: ctx.emit("stage", {"text": s}),
                 recompute=recompute)
    return out.key


def run_speed(spec: dict, store, ctx: Context, recompute: bool) -> str:
    from pruning_core.experiments.speed import measure_run

    measure_run(spec["key"], store, device=spec["device"], repeats=spec["repeats"], seq_len=spec["seq_len"],
                recompute=recompute, on_stage=lambda s: ctx.emit("stage", {"text": s}))
    ctx.check()  # measure_run has stored a new measurement itself (once)
    return spec["key"]


def run_export(spec: dict, store, ctx: Context, recompute: bool) -> str:
    from pruning_core.experiments.export import export_run

    folder = export_run(spec["key"], store, spec["out"], device=spec["device"], root=spec["root"],
                        force=spec["force"] or recompute, on_stage=lambda s: ctx.emit("stage", {"text": s}))
    return str(folder)


def run_warm(spec: dict, store, ctx: Context, recompute: bool) -> None:
    from pruning_core.experiments.experiment import warm

    times = warm(_run_config(spec["config"]), on_stage=lambda s: ctx.emit("stage", {"text": s}))
    ctx.emit("log", {"text": ", ".join(f"{k} {v:.1f} s" for k, v in times.items())}, 1.0, "warm")
    return None


def run_sweep(spec: dict, store, ctx: Context, recompute: bool) -> str:
    import pruning_core.sweeps.executors as executors
    import pruning_core.sweeps.sweepfile as sweepfile
    from pruning_core.sweeps.background import new_sweep_id
    from pruning_core.sweeps.run import run_sweep as sweep_run

    sweep = sweepfile.parse(spec["spec"])
    sweep_id = new_sweep_id()
    store.begin_sweep(sweep_id, state="starting", total=len(sweep), spec=sweep.source)

    def on_event(ev) -> None:
        done = ev.done + ev.failed
        ctx.emit("log", {"text": f"{'done' if ev.outcome.ok else 'failed'} {ev.outcome.job.kind} {ev.outcome.job.key}"},
                 done / max(ev.todo, 1), f"config {done} of {ev.todo}")

    with executors.make("inline") as executor:
        sweep_run(sweep, store, executor, sweep_id=sweep_id, on_event=on_event)
    return sweep_id


RUN = {"prune": run_prune, "attack": run_attack, "speed": run_speed, "export": run_export, "sweep": run_sweep,
       "warm": run_warm}
