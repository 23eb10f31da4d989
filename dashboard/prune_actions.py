"""What the Prune page does besides drawing: save an uploaded task, build the config the sidebar shows,
compare a stored run with the sidebar, keep a running prune's records for its progress bar and live
charts, and the lines of text the page writes about them. No Streamlit here."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

from pruning_core import PrunescopeError
from pruning_core.data import tasks as data
from pruning_core.prune import methods
from pruning_core.storage.access import check_page_path, uploads_dir
from pruning_core.model.arch import KIND_LABELS
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.prune.records import BlockRecord, LayerRecord, StepRecord

UPLOAD_LIMIT_MB = 20


def budget_label(meaning: str) -> str:
    """'fraction of encoder FLOPs removed' -> 'Encoder FLOPs removed'."""
    text = meaning.removeprefix("fraction of ")
    return text[:1].upper() + text[1:]


def save_upload(name: str, content: bytes) -> str:
    """Save an uploaded CSV/TSV under the uploads folder, named by the hash of its bytes (the same file gives
    the same path, so the same run key), check that it parses as a task, and return its path. Raises
    PrunescopeError with one line that never quotes the file."""
    if len(content) > UPLOAD_LIMIT_MB * 2**20:
        raise PrunescopeError(f"the upload is {len(content) / 2**20:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB")
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() not in ("csv", "tsv"):
        raise PrunescopeError("upload a .csv or .tsv file with columns text,label")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "task"
    folder = uploads_dir()
    path = folder / f"{hashlib.sha256(content).hexdigest()[:16]}-{safe}.{suffix.lower()}"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # whole or absent: never a half-written upload under the final name
    try:
        data.load(str(path))
    except Exception as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, PrunescopeError):
            raise PrunescopeError(f"the uploaded file {name!r} is not a usable task: "
                                  + str(exc).replace(str(path), "it")) from None
        raise PrunescopeError(f"the uploaded file {name!r} is not a readable CSV/TSV with columns text,label "
                              f"({type(exc).__name__})") from None
    return str(path)


def make_config(s: dict) -> ExperimentConfig:
    """The config the sidebar shows; its local paths checked against the allowed folders before anything
    reads them."""
    if not s["model"]:
        raise PrunescopeError("choose a model: 'default', a model folder or a hub id")
    if not s["task"]:
        raise PrunescopeError("choose a task: type a CSV/TSV path or upload one, or pick a named task")
    check_page_path(s["model"])
    check_page_path(s["task"])
    return ExperimentConfig.create(**s)


def preflight(cfg: ExperimentConfig) -> None:
    """Cheap checks before a prune is queued, so a bad setting is said at once instead of failing its job:
    the model's files (config and weights header, nothing loaded) and a local task file's columns."""
    from pruning_core.model import models

    models.check(cfg.model, cfg.task)
    if cfg.task not in data.SHIPPED and cfg.task not in data.HUB:
        data.load(cfg.task)


def comparable(config: dict) -> dict:
    """A config's fields that the sidebar sets, the method's options completed with their defaults."""
    out = {k: config.get(k) for k in ("model", "task", "method", "pattern", "calib_size", "seq_len", "seed",
                                      "eval_size")}
    out["sparsity"] = round(float(config.get("sparsity") or 0.0), 6)
    try:
        out["options"] = dataclasses.asdict(methods.get(out["method"]).options(config.get("options") or {}))
    except Exception:  # noqa: BLE001 - an old or foreign run: compare its options as stored
        out["options"] = dict(config.get("options") or {})
    return out


def differences(config: dict, settings: dict) -> str:
    """The fields, in words, in which a stored run's config differs from the sidebar's settings ('' if none)."""
    shown, wanted = comparable(config), comparable(settings)
    return ", ".join(k.replace("_", " ") for k in shown if shown[k] != wanted[k])


def describe(c: dict) -> str:
    """'wanda · 2:4 · 50% on rotten_tomatoes (default)'."""
    what = f"budget {c['sparsity']:.0%}" if c["pattern"] == "structured" else f"{c['pattern']} · {c['sparsity']:.0%}"
    return f"{c['method']} · {what} on {c['task']} ({c['model']})"


def options_text(options: dict) -> str:
    """'damping = 0.01, rearrange = True': a method's options, sorted by name."""
    return ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in sorted(options.items()))


# ------------------------------------------------------------------------------- a running prune


@dataclasses.dataclass
class LiveRecords:
    """The records of a running prune, as dicts for the live charts, and where its progress bar stands."""

    n_blocks: int
    steps: list[dict] = dataclasses.field(default_factory=list)
    layers: list[dict] = dataclasses.field(default_factory=list)
    blocks: list[dict] = dataclasses.field(default_factory=list)

    def add(self, rec) -> tuple[float, str] | None:
        """Keep `rec`; the progress bar's (fraction, text) after it, or None where a record does not move it."""
        if isinstance(rec, StepRecord):
            self.steps.append(rec.__dict__)
            return min(rec.step / rec.total, 1.0), f"step {rec.step} of {rec.total}"
        if isinstance(rec, LayerRecord):
            self.layers.append(rec.__dict__)
        elif isinstance(rec, BlockRecord):
            self.blocks.append(rec.__dict__)
            what = "error measured at block" if self.steps else "block"  # named as the chart's x axis names it
            return len(self.blocks) / self.n_blocks, f"{what} {rec.block} done ({len(self.blocks)} of {self.n_blocks})"
        return None


def step_line(rec: StepRecord) -> str:
    """One progress line of a structured method's step."""
    parts = [f"step {rec.step} of {rec.total}: {rec.label}"]
    if rec.flops_kept is not None:
        parts.append(f"FLOPs kept {rec.flops_kept:.1%}")
    if rec.loss is not None:
        parts.append(f"loss {rec.loss:.4g}")
    return " · ".join(parts)


def layer_line(rec: LayerRecord) -> str:
    """One progress line of a pruned module."""
    return (f"`{rec.name}` ({KIND_LABELS[rec.kind]}): sparsity {rec.achieved_sparsity:.3f}, "
            f"local error {rec.local_error:.4g}, cumulative error {rec.cumulative_error:.4g}")


def refine_line(rec: BlockRecord) -> str:
    """One progress line of a block's reconstruction training (a block with `refine_loss`)."""
    return (f"block {rec.block}: reconstruction loss {rec.refine_loss[0]:.4g} → "
            f"{rec.refine_loss[-1]:.4g} over {len(rec.refine_loss)} epochs")
