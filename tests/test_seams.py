"""The seams of issue 12 that a bad-input corpus cannot show: what now works (structured pruning from the
CLI, a fresh head asked for explicitly) and what is refused before any work (checked by making the work
itself fail loudly if it is reached)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading

import pytest
import torch

from pruning_core.data import tasks as data
from pruning_core.experiments import experiment
from pruning_core.core import hub
from pruning_core.model import models
from pruning_core.cli import main
from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import check_output_file, minilm_dir, write_output

TINY = ["--calib-size", "4", "--seq-len", "16", "--eval-size", "8", "--device", "cpu", "--no-store"]
SHIPPED = models.MODELS_DIR / "minilm-rotten_tomatoes"


def test_structured_prune_from_cli_takes_the_methods_pattern(capsys):
    """Defect 1: `prune --method kwon` crashed in the progress printer (StepRecord) or was refused."""
    assert main(["prune", "--method", "kwon", "--sparsity", "0.3", *TINY]) == 0
    err = capsys.readouterr().err
    assert "step 1/" in err and "Traceback" not in err
    assert main(["prune", "--method", "kwon", "--pattern", "unstructured", "--sparsity", "0.3", *TINY]) == 2
    assert "its pattern is 'structured'" in capsys.readouterr().err


def test_progress_lines_keep_bracketed_module_kinds(capsys):
    """Rich markup ate "[attention output]" from the progress lines."""
    assert main(["prune", "--method", "magnitude", "--sparsity", "0.5", *TINY]) == 0
    err = capsys.readouterr().err
    assert "[attention output]" in err and "[FFN in]" in err


def test_headless_model_refused_unless_a_fresh_head_is_asked_for():
    """Defect 4: a folder without a classifier head got a random head silently (accuracy 0.175)."""
    base = str(minilm_dir())  # the sentence encoder the shipped models were fine-tuned from: no head
    with pytest.raises(PrunescopeError, match="no trained classification head.*classifier.weight"):
        models.check(base, "rotten_tomatoes")
    with pytest.raises(PrunescopeError, match="--fresh-head"):
        models.load(base, "rotten_tomatoes")
    a, _ = models.load(base, "rotten_tomatoes", fresh_head=True)
    b, _ = models.load(base, "rotten_tomatoes", fresh_head=True)
    assert torch.equal(a.classifier.weight, b.classifier.weight)  # seeded: the same head on every load
    shipped, _ = models.load("default", "rotten_tomatoes")
    assert torch.equal(a.bert.encoder.layer[0].attention.self.query.weight,
                       models.load(base, "rotten_tomatoes", fresh_head=True)[0].bert.encoder.layer[0]
                       .attention.self.query.weight)  # the encoder is the checkpoint's, not random
    assert not torch.equal(a.classifier.weight, shipped.classifier.weight)


def test_architecture_checked_before_anything_is_built(tmp_path, monkeypatch):
    """Defect 4: no model_type and "mpt" in the folder name built a 5 GB random MPT model."""
    import transformers

    folder = tmp_path / "my-mpt-7b"
    shutil.copytree(SHIPPED, folder)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["model_type"]
    (folder / "config.json").write_text(json.dumps(cfg))

    def boom(*a, **k):
        raise AssertionError("a model was built before the architecture was checked")

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", boom)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", boom)
    with pytest.raises(PrunescopeError, match="no model_type"):
        models.load(str(folder), "rotten_tomatoes")
    cfg["model_type"] = "mpt"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PrunescopeError, match="model type 'mpt'.*not supported"):
        models.load(str(folder), "rotten_tomatoes")


def test_safetensors_header_checked_cheaply(tmp_path):
    shapes = models.safetensors_shapes(SHIPPED / "model.safetensors")
    assert shapes["classifier.weight"] == [2, 384]
    raw = (SHIPPED / "model.safetensors").read_bytes()
    for name, content in {"truncated": raw[: len(raw) // 2], "empty": b"", "garbage": os.urandom(4096),
                          "header only": raw[:9000]}.items():
        f = tmp_path / f"{name}.safetensors"
        f.write_bytes(content)
        with pytest.raises(PrunescopeError, match="not a valid safetensors file"):
            models.safetensors_shapes(f)


def test_labels_must_be_whole_numbers_or_names(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("text,label\na,1.0\nb,0\nc,2\n")
    assert data.load(str(good)).labels == (1, 0, 2)
    for bad in ("0.2", "1.7", "inf", "-inf", "1e400", "-1"):
        f = tmp_path / "bad.csv"
        f.write_text(f"text,label\na,1\nb,{bad}\n")
        with pytest.raises(PrunescopeError, match="whole numbers"):
            data.load(str(f))
    names = tmp_path / "names.csv"
    names.write_text("text,label\na,pos\nb,neg\n")
    assert data.load(str(names)).label_names == ("neg", "pos")


def test_a_fifo_task_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "task.csv"
    os.mkfifo(fifo)
    result = []
    t = threading.Thread(target=lambda: result.append(pytest.raises(PrunescopeError, data.load, str(fifo))),
                         daemon=True)
    t.start()
    t.join(10)
    assert result and "not a regular file" in str(result[0].value)


def test_a_file_that_is_no_csv_is_refused_without_quoting_it(tmp_path):
    secret = tmp_path / "notes.csv"
    secret.write_text('PRETTY_NAME="secret host name/with slashes"\nID=x\n')
    with pytest.raises(PrunescopeError) as info:
        data.load(str(secret))
    assert "secret" not in str(info.value).replace(str(tmp_path), "") and "text,label" in str(info.value)
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(PrunescopeError, match=r"\.csv or \.tsv") as info:
        data.load(str(other))
    assert "root:x" not in str(info.value)


def test_output_paths_fail_before_work_and_never_half_written(tmp_path, monkeypatch):
    with pytest.raises(PrunescopeError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(PrunescopeError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "out.json")
    with pytest.raises(PrunescopeError, match="longer than 255 bytes"):
        check_output_file(tmp_path / ("x" * 300 + ".json"))
    target = tmp_path / "table.csv"

    def full(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(PrunescopeError, match="No space left on device"):
        write_output(target, full)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary sibling
    # the prune command checks --json before it loads or prunes anything
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("pruned before the check"))
    assert main(["prune", "--json", str(tmp_path / "no" / "run.json"), *TINY]) == 2


def test_huge_sweep_grid_refused_before_expansion(tmp_path, capsys):
    grid = tmp_path / "huge.yaml"
    sparsities = ", ".join(f"{i / 1000:.3f}" for i in range(1, 1000))
    grid.write_text(f"tasks: [rotten_tomatoes]\nmethods: [magnitude, wanda, sparsegpt]\n"
                    f"sparsities: [{sparsities}]\nseed: [{', '.join(map(str, range(400)))}]\n")
    assert main(["sweep", str(grid), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "1,198,800 runs" in err and "--max-configs" in err and len(err.strip().splitlines()) == 1


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub.online()
    with pytest.raises(PrunescopeError, match="could not load 'someone/not-cached'"):
        models.load("someone/not-cached", "rotten_tomatoes")


def test_attack_size_is_never_capped_silently():
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.robustness import AttackConfig

    run = ExperimentConfig.create(method="magnitude", sparsity=0.0)
    with pytest.raises(PrunescopeError, match="more than the .* test examples"):
        AttackConfig(run, "deepwordbug", 5_000, 0, None).validate().check_size()
    with pytest.raises(PrunescopeError, match="at most 1,000,000"):
        AttackConfig(run, "deepwordbug", 1_000_000_000, 0, None).validate()


def test_no_network_means_cache_only_without_offline_variables(monkeypatch):
    """Defect 5: an offline hub id spent 46 s in retries unless HF_HUB_OFFLINE was set."""
    import datasets.config
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_reachable", lambda host, port: False)  # as on a machine without network
    assert not hub.online()
    with hub.offline_unless_online():
        assert constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    assert not constants.HF_HUB_OFFLINE and not datasets.config.HF_HUB_OFFLINE
    with pytest.raises(PrunescopeError, match="could not load 'someone/not-cached'"):
        models.load("someone/not-cached", "rotten_tomatoes")


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_label_count_read_from_each_familys_output_layer(family, tmp_path, tokenizer):
    from conftest import tiny_model

    folder = tmp_path / family
    tiny_model(family, labels=3).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    models.check(str(folder), "bbc_news", task_labels=3)  # RoBERTa's dense layer in the head is no output
    cfg = json.loads((folder / "config.json").read_text())
    cfg["id2label"] = {str(i): f"c{i}" for i in range(5)}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PrunescopeError, match="names 5 labels but its classifier has 3 outputs"):
        models.check(str(folder), "bbc_news")
