"""Loading sequence classifiers: the shipped default, a local folder, or a hub id.

The shipped defaults are MiniLM-L6 fine-tuned per task (`prunescope finetune`), stored as fp16
safetensors in assets/models/ and upcast to float32 on load (pruning statistics need fp32).
"""

from __future__ import annotations

import json
import re
import zipfile
from functools import lru_cache
from pathlib import Path

import torch

from pruning_core.core import hub
from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import ASSETS_DIR

MODELS_DIR = ASSETS_DIR / "models"


DEVICE_TYPES = ("cpu", "cuda", "mps")  # where models run; meta, xpu, ... hold no usable weights here


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def check_device_name(device: str) -> torch.device | None:
    """A device name prunescope can run on (auto, cpu, cuda, cuda:N, mps), whether or not this machine has
    it (a sweep's workers may); None for auto."""
    if device == "auto":
        return None
    try:
        dev = torch.device(device) if isinstance(device, str) else None
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise PrunescopeError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` = the GPU where one exists, else the CPU; otherwise cpu, cuda, cuda:N or mps, if present."""
    dev = check_device_name(device)
    if dev is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PrunescopeError(f"device '{device}' asked for but no CUDA GPU is available; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PrunescopeError(f"device '{device}' does not exist: this machine has "
                                  f"{torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not _mps_available():
        raise PrunescopeError(f"device '{device}' asked for but this machine has no Apple GPU (MPS); use cpu")
    return dev


def default_model_dir(task: str) -> Path:
    """Folder of the shipped model that serves `task` as the `default` model."""
    from pruning_core.data.tasks import task_info

    info = task_info(task)
    if info is None or info.default_model_task is None:
        raise PrunescopeError(
            f"there is no shipped default model for task '{task}'; choose a local model folder or a hub id "
            "of a sequence classifier fine-tuned for it")
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


# model types the engine and the structured methods know (see arch.FAMILIES)
PRUNED_TYPE = "prunescope-pruned-bert"
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", PRUNED_TYPE)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HEAD_PREFIXES = ("classifier.", "pre_classifier.", "score.")  # + any "...pooler..." weight
OUTPUT_LAYERS = ("classifier.weight", "classifier.out_proj.weight", "score.weight")  # [labels, hidden]
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
_MAX_CONFIG_BYTES = 1 << 20


def is_local(name: str) -> bool:
    """A local folder (or what is meant as one) rather than a hub id."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(name)


def read_config(folder: Path) -> dict:
    """A local model folder's config.json, checked before anything is built: a JSON object whose
    `model_type` is an encoder prunescope supports. Messages never repeat the file's contents."""
    f = folder / "config.json"
    if not f.is_file():
        raise PrunescopeError(f"'{folder}' is not a readable transformers model folder: it has no config.json")
    if f.stat().st_size > _MAX_CONFIG_BYTES:
        raise PrunescopeError(f"'{f}' is too large for a model config ({f.stat().st_size} bytes)")
    try:
        cfg = json.loads(f.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PrunescopeError(f"'{f}' is not valid UTF-8 JSON") from None
    if not isinstance(cfg, dict):
        raise PrunescopeError(f"'{f}' is not a JSON object")
    check_model_type(cfg.get("model_type"), str(folder))
    return cfg


def check_model_type(model_type, name: str) -> None:
    if not model_type:
        raise PrunescopeError(f"model '{name}' has no model_type in its config.json; prunescope loads only "
                              f"{', '.join(ENCODER_TYPES)} encoders and never guesses the architecture")
    if model_type not in ENCODER_TYPES:
        raise PrunescopeError(f"model type '{str(model_type)[:40]}' of '{name}' is not supported; prunescope "
                              f"handles {', '.join(ENCODER_TYPES)} encoders")


def config_labels(config: dict) -> int | None:
    """How many classes a config.json says (id2label, else num_labels; None when it says neither)."""
    return len(config["id2label"]) if isinstance(config.get("id2label"), dict) else config.get("num_labels")


def check(model: str, task: str, fresh_head: bool = False, task_labels: int | None = None) -> dict | None:
    """Cheap checks before anything is loaded: shipped model present, a local folder with a supported
    config and a sound weights file (a safetensors header is read: corrupt files, a classifier whose
    size differs from config.json, a missing head), or a well-formed hub id. Returns a local folder's
    config.json (None for a hub id)."""
    name = resolve(model, task)
    path = Path(name).expanduser()
    if not is_local(name):
        return None
    if not path.exists():
        raise PrunescopeError(f"model folder '{name}' does not exist (and '{name}' is no hub id)")
    if not path.is_dir():
        raise PrunescopeError(f"model '{name}' is a file; give the folder that holds config.json and the weights")
    config = read_config(path)
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise PrunescopeError(f"model folder '{name}' has no weights ({' or '.join(WEIGHT_FILES[::2])})")
    labels = config_labels(config) or 2  # transformers' own default
    if task_labels is not None and labels != task_labels and not fresh_head:
        raise PrunescopeError(f"the model predicts {labels} classes but task '{task}' has {task_labels}; pick a "
                              "model fine-tuned for this task")
    for f in ("tokenizer.json", "tokenizer_config.json"):  # parsed by the tokenizer; a broken one fails late
        if (path / f).is_file():
            st = (path / f).stat()
            if not _json_ok(str(path / f), st.st_size, st.st_mtime_ns):
                raise PrunescopeError(f"the tokenizer file '{path / f}' is not valid UTF-8 JSON")
    if (path / "pytorch_model.bin").is_file() and not (path / "model.safetensors").is_file():
        with open(path / "pytorch_model.bin", "rb") as fh:
            magic = fh.read(4)
        zipped = magic.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path / "pytorch_model.bin")
        if not (zipped or magic[:1] == b"\x80"):  # torch's zip archive, or a legacy pickle
            raise PrunescopeError(f"'{path / 'pytorch_model.bin'}' is not a torch checkpoint (empty or corrupt)")
    if (path / "model.safetensors").is_file():
        shapes = safetensors_shapes(path / "model.safetensors")
        head = {k: v for k, v in shapes.items() if k.startswith(HEAD_PREFIXES)}
        if not head and not fresh_head:
            raise _no_head(name, [p + "weight" for p in HEAD_PREFIXES[:1]])
        out = [head[k][0] for k in OUTPUT_LAYERS if k in head and len(head[k]) == 2]
        if out and out[0] != labels:
            raise PrunescopeError(f"the config.json of '{name}' names {labels} labels but its classifier has "
                                  f"{out[0]} outputs; fix num_labels / id2label in config.json")
    return config


def safetensors_shapes(file: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header, after checking that the header is sound and the
    file holds every byte it announces (a truncated, empty or garbage file fails here, cheaply). Read once
    per file version: a sweep validates the same folder for every config."""
    st = file.stat()
    return dict(_header_shapes(str(file), st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=64)
def _json_ok(name: str, size: int, mtime_ns: int) -> bool:
    """Whether a file is UTF-8 JSON, parsed once per file version (a tokenizer.json is ~1 MB: a sweep
    validating thousands of configs of one model would parse it for each)."""
    try:
        json.loads(Path(name).read_bytes().decode("utf-8"))
        return True
    except (UnicodeDecodeError, ValueError):
        return False


@lru_cache(maxsize=64)
def _header_shapes(name: str, size: int, mtime_ns: int) -> dict[str, list[int]]:
    file = Path(name)
    bad = f"'{file}' is not a valid safetensors file"
    with open(file, "rb") as f:
        raw = f.read(8)
        n = int.from_bytes(raw, "little") if len(raw) == 8 else -1
        if not 2 <= n <= min(size - 8, 100 << 20):
            raise PrunescopeError(f"{bad} (empty, truncated or not safetensors)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
            shapes = {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise PrunescopeError(f"{bad} (its header is corrupt)") from None
    if 8 + n + end > size:
        raise PrunescopeError(f"{bad}: truncated ({size} bytes, the header announces {8 + n + end})")
    return shapes


def _no_head(name: str, missing: list[str]) -> PrunescopeError:
    return PrunescopeError(
        f"'{name}' has no trained classification head (missing: {', '.join(missing[:4])}); it would predict "
        "at chance. Use a model fine-tuned for the task, or ask for a fresh head explicitly (fresh_head; "
        "command line: --fresh-head) to study the encoder's errors with a seeded random head")


def _fail(name: str, local: bool, exc: Exception) -> PrunescopeError:
    """One line for a model that would not load; the file's contents are never repeated."""
    text = str(exc)
    if "size mismatch" in text:
        line = next(ln.strip() for ln in text.splitlines() if "size mismatch" in ln)
        return PrunescopeError(f"the config.json of '{name}' does not match its weights ({line[:200]}); "
                               "check num_labels / id2label in config.json")
    if local:  # the exception's type only: parsers' messages may quote bytes of the file
        return PrunescopeError(f"'{name}' is not a readable transformers model folder: corrupt or unreadable "
                               f"files ({type(exc).__name__})")
    return PrunescopeError(
        f"could not load '{name}' from the Hugging Face hub (offline, not cached, or not a model id). "
        f"On a connected machine run `huggingface-cli download {name} --local-dir DIR`, "
        "copy DIR here and use that folder")


def load(model: str, task: str, device: str | torch.device = "cpu", fresh_head: bool = False):
    """(model, tokenizer) in eval mode on `device`, float32. `model` = default | folder | hub id.

    The architecture is checked before any weights are built (never trust_remote_code). A checkpoint
    without a trained classification head (or pooler) is refused unless `fresh_head`: then the missing
    head starts from seeded random weights (encoder errors are meaningful, accuracy is chance)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local_config = check(model, task, fresh_head)  # None for a hub id
    name = resolve(model, task)
    local = is_local(name)
    path = str(Path(name).expanduser()) if local else name
    offline = local or not hub.online()
    pruned = local and local_config.get("model_type") == PRUNED_TYPE
    try:
        if pruned:  # prunescope's own structured export: our class, never the folder's code
            from pruning_core.model.modeling_pruned_bert import PrunedBertConfig as config_cls
            from pruning_core.model.modeling_pruned_bert import PrunedBertForSequenceClassification as cls
        else:
            config_cls, cls = AutoConfig, AutoModelForSequenceClassification
        config = config_cls.from_pretrained(path, local_files_only=offline, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - hub, cache and file problems all end in one line
        raise _fail(name, local, exc) from None
    check_model_type(getattr(config, "model_type", None), name)  # before any weights are built
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=offline, trust_remote_code=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a fresh head (if allowed) is the same on every load
            net, info = cls.from_pretrained(path, config=config, local_files_only=offline, dtype=torch.float32,
                                            trust_remote_code=False, output_loading_info=True)
    except PrunescopeError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _fail(name, local, exc) from None
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("position_ids")]
    head = [k for k in missing if k.startswith(HEAD_PREFIXES) or ".pooler." in k or k.startswith("pooler.")]
    body = [k for k in missing if k not in head]
    if body:
        raise PrunescopeError(f"the weights of '{name}' lack {len(body)} encoder tensor(s) (e.g. {body[0]}); "
                              "the checkpoint does not belong to this config or is incomplete")
    if head and not fresh_head:
        raise _no_head(name, head)
    if tok.model_max_length is None or tok.model_max_length > 100_000:
        tok.model_max_length = getattr(net.config, "max_position_embeddings", 512)
    net.eval()
    return net.to(resolve_device(device) if isinstance(device, str) else device), tok
