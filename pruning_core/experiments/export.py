"""Export a stored run as a self-describing transformers folder.

The pruned model is made again from the run's config (pruning is deterministic) and checked against
the stored record before anything is written: the masks and achieved sparsity of an unstructured run,
the kept units and FLOPs of a structured one. The folder holds `model.safetensors`, `config.json`,
the tokenizer files and `prunescope.json` (how the model was made). Unstructured runs are plain BERT
with zeros; structured runs carry their modeling file (`auto_map`), so
`AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)` loads them in a
process that never imports prunescope.

2:4 runs are stored dense with zeros (safetensors has no semi-structured format); `load_exported`
converts their 2:4 linears to `torch.sparse` semi-structured tensors where the device has the kernels
(CUDA, compute capability >= 8.0). CPUs have none, and prunescope.json says so.

Paths: the folder is resolved under an export root (default `<store dir>/exports`); a path that
leaves the root (`..`, an absolute path elsewhere, a symlink pointing out) is refused, as are names
with characters other than letters, digits, `.`, `_` and `-`, and a non-empty folder unless `force`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import NAME_MAX, PATH_MAX, check_output_dir

NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")
SPARSITY_TOL = 1e-6  # achieved sparsity of the re-made model vs the stored run
MASK_TOL = 1e-3  # fraction of keep-mask entries allowed to differ (float non-determinism across devices)
FLOPS_TOL = 1e-6  # relative


def default_root(store) -> Path:
    return Path(store.path).expanduser().parent / "exports"


def resolve_out(out_dir: str | Path | None, root: str | Path, default_name: str = "export") -> Path:
    """The folder `out_dir` names under `root` (relative to it, or absolute inside it), symlinks
    resolved; PrunescopeError if it escapes the root or has odd characters in a name."""
    raw = str(out_dir) if out_dir not in (None, "") else default_name
    if "\x00" in raw:
        raise PrunescopeError("the export folder name contains a NUL character")
    root_abs = Path(root).expanduser().absolute()
    root_real = root_abs.resolve()
    check_output_dir(root_real, "export root")
    p = Path(raw).expanduser()
    if any(len(part.encode()) > NAME_MAX for part in p.parts):
        raise PrunescopeError(f"export folder name '{raw[:40]}...' is longer than {NAME_MAX} bytes")
    if ".." in p.parts:
        raise PrunescopeError(f"export folder '{raw}' escapes the export root {root_real} ('..' is not allowed)")
    if p.is_absolute():
        inside = next((p.relative_to(r) for r in (root_abs, root_real) if p.is_relative_to(r)), None)
        if inside is None:
            raise PrunescopeError(f"export folder '{raw}' is outside the export root {root_real}; give a "
                                  "folder under the root (or a relative name)")
        p = inside
    for part in p.parts:
        if part != "." and not NAME_OK.match(part):
            raise PrunescopeError(f"export folder name '{part}' has characters other than letters, digits, "
                                  "'.', '_' and '-'; pick a plain name")
    if len(os.fsencode(str(root_real / p))) >= PATH_MAX:
        raise PrunescopeError(f"export folder '{raw[:40]}...' makes a path longer than {PATH_MAX} bytes")
    real = (root_real / p).resolve()  # follows symlinks, existing or not
    if not real.is_relative_to(root_real):
        raise PrunescopeError(f"export folder '{raw}' escapes the export root {root_real} (a symlink on the "
                              f"way points to {real})")
    if real == root_real:
        raise PrunescopeError(f"export folder '{raw}' is the export root itself; name a folder under it")
    return real


def _check_empty(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise PrunescopeError(f"export path {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise PrunescopeError(f"export folder {folder} is not empty; pass --force to replace its contents")


@dataclass
class Rebuilt:
    """A stored run made again: its config and JSON record, the dense model, tokenizer and pruned model."""

    config: object  # ExperimentConfig
    record: dict
    dense: torch.nn.Module
    tokenizer: object
    model: torch.nn.Module
    result: object  # engine.PruneResult
    check: dict

    @property
    def structured(self) -> bool:
        return self.record.get("structure") is not None


def load_record(key: str, store) -> dict:
    rec = store.load(key)
    if rec is None:
        raise PrunescopeError(f"no stored run with key '{key}' in {store.path}; see `prunescope prune` "
                              "(stored runs are listed on the dashboard's Experiments page)")
    return rec


def rebuild(key: str, store, device: str = "cpu") -> Rebuilt:
    """Prune the dense model again as the stored run `key` says, and check that the result matches
    the stored record (PrunescopeError if not)."""
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import load_dense, prune_copy
    from pruning_core.model.models import resolve_device

    rec = load_record(key, store)
    cfg = ExperimentConfig.from_dict(rec["config"]).with_(device=device)
    cfg.validate()
    if cfg.key() != key:
        raise PrunescopeError(f"run '{key}' no longer matches its files (the model or task data changed since "
                              f"it was stored: it would now be run '{cfg.key()}'); prune it again")
    dev = str(resolve_device(device))
    dense, tok = load_dense(cfg.model, cfg.task, dev, cfg.fresh_head)
    net, result = prune_copy(cfg, dense, tok)
    net.eval()
    check = verify(rec, result, store.masks(key))
    return Rebuilt(cfg, rec, dense, tok, net, result, check)


def verify(rec: dict, result, stored_masks: dict | None = None) -> dict:
    """Compare a re-made PruneResult with the stored run record; returns what was compared."""
    key = rec.get("key", "?")
    if rec.get("structure") is not None:
        got, want = result.structure or {}, rec["structure"]
        for field in ("heads", "neurons_kept", "hidden_kept"):
            if got.get(field) != want.get(field):
                raise PrunescopeError(f"re-made model of run '{key}' keeps different units ({field}) than the "
                                      "stored run; pruning was not reproducible here (another device or "
                                      "library version?), so it cannot be exported faithfully")
        for field in ("flops", "params"):
            a, b = float(got.get(field, 0)), float(want.get(field, 0))
            if abs(a - b) > FLOPS_TOL * max(1.0, abs(b)):
                raise PrunescopeError(f"re-made model of run '{key}' has {field} {a:.6g}, the stored run "
                                      f"{b:.6g}; cannot export it faithfully")
        return {"structure": "identical", "flops": got.get("flops"), "flops_reduction": got.get("flops_reduction")}
    a, b = float(result.achieved_sparsity), float(rec.get("achieved_sparsity") or 0.0)
    if abs(a - b) > SPARSITY_TOL:
        raise PrunescopeError(f"re-made model of run '{key}' has sparsity {a:.6f}, the stored run {b:.6f}; "
                              "pruning was not reproducible here, so it cannot be exported faithfully")
    out = {"achieved_sparsity": a}
    if stored_masks:
        diff = total = 0
        for name, m in stored_masks.items():
            mine = result.masks.get(name)
            if mine is None or tuple(mine.shape) != tuple(m.shape):
                raise PrunescopeError(f"re-made model of run '{key}' has no mask '{name}' of shape "
                                      f"{tuple(m.shape)}; cannot export it faithfully")
            diff += int((mine.cpu().bool() != m.bool()).sum())
            total += m.numel()
        frac = diff / max(1, total)
        if frac > MASK_TOL:
            raise PrunescopeError(f"re-made model of run '{key}' prunes other weights than the stored run "
                                  f"({frac:.2%} of mask entries differ); cannot export it faithfully")
        out["mask_entries_differing"] = diff
    return out


def semi_structured_support(device: str | torch.device) -> tuple[bool, str]:
    """(whether `device` has semi-structured (2:4) sparse kernels, why / why not)."""
    dev = torch.device(device)
    if not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return False, f"torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured"
    if dev.type != "cuda":
        return False, (f"the {dev.type.upper()} has no semi-structured sparse kernels "
                       "(torch.sparse.to_sparse_semi_structured needs CUDA with compute capability >= 8.0)")
    if not torch.cuda.is_available():
        return False, "no CUDA GPU is available"
    cc = torch.cuda.get_device_capability(dev)
    if cc < (8, 0):
        return False, f"GPU compute capability {cc[0]}.{cc[1]} < 8.0 has no semi-structured sparse kernels"
    return True, f"{torch.cuda.get_device_name(dev)} (compute capability {cc[0]}.{cc[1]})"


def is_two_four(weight: torch.Tensor) -> bool:
    """At most 2 non-zeros in every 4 consecutive input weights of each row."""
    if weight.dim() != 2 or weight.shape[1] % 4:
        return False
    return bool(((weight.reshape(weight.shape[0], -1, 4) != 0).sum(-1) <= 2).all())


def to_semi_structured(model: torch.nn.Module) -> list[str]:
    """Replace the weight of every 2:4-sparse Linear of `model` (on a capable GPU) by a semi-structured
    sparse tensor, in place; returns the converted module names."""
    from torch.sparse import to_sparse_semi_structured

    done = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and is_two_four(mod.weight) and bool((mod.weight == 0).any()):
            try:
                mod.weight = torch.nn.Parameter(to_sparse_semi_structured(mod.weight.detach()), requires_grad=False)
            except (RuntimeError, ValueError) as exc:  # dtype or shape the kernels do not take
                raise PrunescopeError(f"cannot make {name} semi-structured sparse ({str(exc).splitlines()[0]}); "
                                      "load in float16 or bfloat16 (dtype=torch.float16)") from None
            done.append(name)
    return done


def load_exported(folder: str | Path, device: str = "cpu", dtype: torch.dtype | None = None,
                  semi_structured: bool | None = None):
    """(model, tokenizer, info) from an exported folder. A 2:4 run's linears become semi-structured sparse
    tensors when `semi_structured` is True, or None (auto) and the device has the kernels."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pruning_core.model.models import PRUNED_TYPE, read_config

    folder = Path(folder)
    info = json.loads((folder / "prunescope.json").read_text()) if (folder / "prunescope.json").exists() else {}
    if read_config(folder).get("model_type") == PRUNED_TYPE:
        if not info.get("structure"):
            raise PrunescopeError(f"'{folder}' holds a structurally pruned model but no prunescope.json that "
                                  "says how it was made; export it again with `prunescope export`")
        # prunescope's own class: the folder's copy of the modeling file is never executed
        from pruning_core.model.modeling_pruned_bert import PrunedBertForSequenceClassification as cls
    else:
        cls = AutoModelForSequenceClassification
    model = cls.from_pretrained(folder, trust_remote_code=False, dtype=dtype or torch.float32).eval().to(device)
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if info.get("pattern") == "2:4":
        ok, why = semi_structured_support(device)
        if semi_structured and not ok:
            raise PrunescopeError(f"semi-structured sparse tensors are not available on {device}: {why}")
        if semi_structured or (semi_structured is None and ok):
            info = dict(info, converted=to_semi_structured(model))
    return model, tok, info


def _versions() -> dict:
    import transformers

    import pruning_core

    return {"prunescope": pruning_core.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__}


def describe(rb: Rebuilt, device: str) -> dict:
    """The prunescope.json of an export."""
    rec, cfg = rb.record, rb.config
    out = {
        "format": ("prunescope-pruned-bert: a physically smaller BERT; load with "
                   "AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)"
                   if rb.structured else
                   "BERT with the pruned weights stored as zeros; load with "
                   "AutoModelForSequenceClassification.from_pretrained(folder)"),
        "key": rec["key"],
        "config": rec["config"],
        "method": cfg.method,
        "sparsity": cfg.sparsity,
        "pattern": cfg.pattern,
        "achieved_sparsity": rec.get("achieved_sparsity"),
        "encoder_sparsity": rec.get("encoder_sparsity"),
        "accuracy": rec.get("accuracy"),
        "dense_accuracy": rec.get("dense_accuracy"),
        "eval_examples": rec.get("eval_examples"),
        "task": cfg.task,
        "model": cfg.model,
        "reproduced_on": device,
        "check": rb.check,
        "versions": _versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if rb.structured:
        s = rec["structure"]
        out["structure"] = {k: s.get(k) for k in ("flops", "flops_dense", "flops_reduction", "params",
                                                  "params_dense", "seq_len", "heads", "neurons_kept",
                                                  "hidden_kept", "hidden_size", "head_dim", "budget_meaning")}
    if cfg.pattern == "2:4":
        ok, why = semi_structured_support(device)
        out["semi_structured"] = {
            "stored": "dense with zeros in a 2:4 pattern (safetensors has no semi-structured format)",
            "available_here": ok,
            "note": (f"{why}: load with pruning_core.experiments.export.load_exported(folder, device) to turn the 2:4 "
                     "linears into torch semi-structured sparse tensors (float16/bfloat16)") if ok else
                    f"the weights are dense with zeros because {why}; no 2:4 speed-up on this device",
        }
    elif cfg.pattern not in ("unstructured", "structured"):
        out["semi_structured"] = {"available_here": False,
                                  "note": f"{cfg.pattern} has no hardware kernels (only 2:4 does); dense with zeros"}
    return out


def save_model(model, tokenizer, folder: Path) -> None:
    """save_pretrained as safetensors; a structured model also gets its modeling file and auto_map."""
    from pruning_core.model.modeling_pruned_bert import (PrunedBertConfig,
                                                              PrunedBertForSequenceClassification)

    if isinstance(model, PrunedBertForSequenceClassification):
        PrunedBertConfig.register_for_auto_class()
        PrunedBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    model = model.to("cpu")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if isinstance(model, PrunedBertForSequenceClassification) and not (folder / "modeling_pruned_bert.py").exists():
        raise PrunescopeError("transformers did not copy the modeling file into the export; "
                              "the folder would not load without prunescope")


def write_folder(folder: Path, model, tokenizer, meta: dict, force: bool = False) -> Path:
    """Write into a temporary sibling, then move it into place (a failure leaves no half export)."""
    _check_empty(folder, force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_model(model, tokenizer, tmp)
        (tmp / "prunescope.json").write_text(json.dumps(meta, indent=1, default=str))
        if folder.exists():
            _check_empty(folder, force)
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def export_run(key: str, store, out_dir: str | Path | None = None, device: str = "cpu",
               root: str | Path | None = None, force: bool = False, on_stage=None) -> Path:
    """Export stored run `key` to `out_dir` under `root` (default `<store dir>/exports`; `out_dir`
    default: the key). Returns the folder. `on_stage(text)` hears when the slow part starts."""
    from pruning_core.model.models import resolve_device

    if not isinstance(key, str) or not NAME_OK.match(key or "") or len(key) > 64:
        raise PrunescopeError(f"'{key}' is not a run key (16 hex digits, see the Experiments page)")
    root = Path(root) if root is not None else default_root(store)
    folder = resolve_out(out_dir, root, default_name=key)
    _check_empty(folder, force)  # before the expensive re-pruning
    load_record(key, store)
    dev = str(resolve_device(device))
    (on_stage or (lambda s: None))(f"pruning run {key} again on {dev} and checking it against the store")
    rb = rebuild(key, store, dev)
    return write_folder(folder, rb.model, rb.tokenizer, describe(rb, dev), force)
