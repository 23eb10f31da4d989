"""Shipped-model format: fp16 safetensors with tokenizer and card, reloaded as float32."""

import json

import torch

from pruning_core.experiments import finetune
from pruning_core.model import models
from pruning_core.core.paths import ASSETS_DIR

from conftest import tiny_model


def test_save_roundtrip_fp16(tmp_path, tokenizer):
    model = tiny_model("bert")
    report = {"config": {"task": "rotten_tomatoes", "seed": 0, "epochs": 1, "lr": 1e-4, "batch_size": 8,
                         "weight_decay": 0.01, "warmup": 0.06, "max_length": None},
              "max_length": 128, "base_model": "tiny", "selected_epoch": 1,
              "history": [{"epoch": 1, "train_loss": 0.5, "validation_accuracy": 0.7}], "training_seconds": 1.0,
              "device": "cpu", "torch_threads": 1, "split_sizes": {"train": 1, "validation": 1, "test": 1},
              "validation_accuracy": 0.7, "test_accuracy": 0.69, "imdb_sample_accuracy": 0.6}
    finetune.save(model, tokenizer, tmp_path / "m", report)
    st = (tmp_path / "m" / "model.safetensors")
    assert st.exists() and (tmp_path / "m" / "README.md").read_text().count("0.6900") == 1
    from safetensors.torch import load_file

    assert all(t.dtype == torch.float16 for t in load_file(st).values())
    net, _ = models.load(str(tmp_path / "m"), "rotten_tomatoes", "cpu")
    assert next(net.parameters()).dtype == torch.float32
    ids = torch.tensor([[101, 2023, 2003, 102]])
    with torch.no_grad():
        assert torch.allclose(net(input_ids=ids).logits, model(input_ids=ids).logits, atol=2e-2)


def test_shipped_models_have_cards():
    for task, target in (("rotten_tomatoes", 0.84), ("bbc_news", 0.96)):
        d = ASSETS_DIR / "models" / f"minilm-{task}"
        report = json.loads((d / "training.json").read_text())
        assert report["test_accuracy"] >= target - 1e-6, (task, report["test_accuracy"])  # float32 mean
        assert (d / "README.md").exists() and (d / "model.safetensors").exists()
