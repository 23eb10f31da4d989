"""Loading sequence classifiers: the shipped default, a local folder, or a hub id.

The shipped defaults are MiniLM-L6 fine-tuned per task (`prunescope finetune`), stored as fp16
safetensors in assets/models/ and upcast to float32 on load (pruning statistics need fp32).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pruning_core.errors import PrunescopeError
from pruning_core.paths import ASSETS_DIR

MODELS_DIR = ASSETS_DIR / "models"


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` = the GPU where one exists, else the CPU; otherwise any torch device string."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise PrunescopeError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PrunescopeError(f"device '{device}' asked for but no CUDA GPU is available; use --device cpu")
    return dev


def default_model_dir(task: str) -> Path:
    """Folder of the shipped model that serves `task` with `--model default`."""
    from pruning_core.data import task_info

    info = task_info(task)
    if info is None or info.default_model_task is None:
        raise PrunescopeError(
            f"there is no shipped default model for task '{task}'; pass --model with a local folder "
            "or a hub id of a sequence classifier for it")
    return MODELS_DIR / f"minilm-{info.default_model_task}"


def resolve(model: str, task: str) -> str:
    """The folder or hub id that `model` names for `task`."""
    if model == "default":
        path = default_model_dir(task)
        if not (path / "config.json").exists():
            raise PrunescopeError(
                f"shipped model {path} is missing; run `prunescope finetune --task {path.name[7:]}`")
        return str(path)
    return model


def check(model: str, task: str) -> None:
    """Cheap checks before anything is loaded: shipped model present, local folder exists."""
    name = resolve(model, task)
    path = Path(name).expanduser()
    if not path.exists() and name.startswith((".", "/", "~")):
        raise PrunescopeError(f"model folder '{name}' does not exist")
    if path.exists() and not (path / "config.json").is_file():
        raise PrunescopeError(f"'{name}' is not a readable transformers model folder: it has no config.json")


def load(model: str, task: str, device: str | torch.device = "cpu"):
    """(model, tokenizer) in eval mode on `device`, float32. `model` = default | folder | hub id."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check(model, task)
    name = resolve(model, task)
    path = Path(name).expanduser()
    local = path.exists()
    try:
        tok = AutoTokenizer.from_pretrained(str(path) if local else name, local_files_only=local)
        net = AutoModelForSequenceClassification.from_pretrained(
            str(path) if local else name, local_files_only=local, dtype=torch.float32)
    except (OSError, AttributeError, TypeError) as exc:
        if local:
            raise PrunescopeError(f"'{name}' is not a readable transformers model folder: "
                                  f"{str(exc).splitlines()[0]}") from None
        raise PrunescopeError(
            f"could not load '{name}' from the Hugging Face hub (offline, not cached, or not a model id). "
            f"On a connected machine run `huggingface-cli download {name} --local-dir DIR`, "
            "copy DIR here and pass --model DIR") from None
    except ValueError as exc:
        raise PrunescopeError(f"'{name}' is not a sequence-classification model: "
                              f"{str(exc).splitlines()[0]}") from None
    if tok.model_max_length is None or tok.model_max_length > 100_000:
        tok.model_max_length = getattr(net.config, "max_position_embeddings", 512)
    net.eval()
    return net.to(resolve_device(device) if isinstance(device, str) else device), tok

