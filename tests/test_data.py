"""Loaders: shipped tasks and splits, local CSV/TSV files and saved datasets, clear errors offline."""

import json

import pytest

from pruning_core.data import calibration
from pruning_core.data import tasks as data
from pruning_core.model import models
from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import ASSETS_DIR

from conftest import tiny_model


def test_shipped_splits_are_disjoint_and_complete():
    for task in ("rotten_tomatoes", "bbc_news"):
        ids = json.loads((ASSETS_DIR / "splits" / f"{task}.json").read_text())
        sets = [set(ids[s]) for s in data.SPLITS]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        table = data._shipped_table(task)
        removed = set(ids.get("removed_from_train", []))
        assert set().union(*sets) | removed == set(table.index)
    rt = json.loads((ASSETS_DIR / "splits" / "rotten_tomatoes.json").read_text())
    assert rt["removed_from_train"] and not set(rt["removed_from_train"]) & set(rt["train"])


def test_shipped_tasks_load():
    rt = data.load("rotten_tomatoes", "test")
    assert len(rt) > 1000 and set(rt.labels) == {0, 1} and rt.label_names == ("rotten", "fresh")
    bbc = data.load("bbc_news", "validation")
    assert bbc.num_labels == 5 and set(bbc.labels) == set(range(5))
    imdb = data.load("imdb_sample")
    assert len(imdb) == 200
    with pytest.raises(PrunescopeError, match="only the split"):
        data.load("imdb_sample", "train")


def test_rotten_tomatoes_train_excludes_sst2_dev():
    """Uses ../shared/data when present (never needed by the stored split itself)."""
    from pathlib import Path

    from pruning_core.data.splits import normalise

    dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2_dev.tsv"
    if not dev.exists():
        pytest.skip("../shared/data/sst2_dev.tsv not present (only beside the project checkout)")
    import csv

    import pandas as pd

    sentences = [normalise(s) for s in pd.read_csv(dev, sep="\t", quoting=csv.QUOTE_NONE)["sentence"]]
    train = "\x00".join(normalise(t) for t in data.load("rotten_tomatoes", "train").texts)
    leaked = [s for s in sentences if len(s) >= 8 and s in train]
    assert leaked == []


def test_local_csv_and_tsv(tmp_path):
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text('text,label\n"good, really",pos\nbad,neg\nfine,pos\n')
    d = data.load(str(csv_path))
    assert d.texts == ("good, really", "bad", "fine") and d.label_names == ("neg", "pos") and d.labels == (1, 0, 1)
    tsv = tmp_path / "mine.tsv"
    tsv.write_text("sentence\tlabel\nit 's fine \t1\nno \t0\n")
    t = data.load(str(tsv))
    assert t.labels == (1, 0) and t.texts[0] == "it 's fine "
    split = tmp_path / "split.csv"
    split.write_text("text,label,split\na,0,train\nb,1,test\nc,1,test\n")
    assert len(data.load(str(split), "test")) == 2 and len(data.load(str(split), "train")) == 1


def test_bad_local_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\nx,1\n")
    with pytest.raises(PrunescopeError, match="needs columns text,label"):
        data.load(str(bad))
    with pytest.raises(PrunescopeError, match="does not exist"):
        data.load(str(tmp_path / "missing.csv"))
    with pytest.raises(PrunescopeError, match="unknown task"):
        data.load("sst3")


def test_saved_dataset_folder(tmp_path):
    """The same path online users take: a `datasets` dataset (saved to disk here)."""
    import datasets

    feats = datasets.Features({"sentence": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["negative", "positive"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": ["a", "b", "c"], "label": [0, 1, 1]}, features=feats),
        "validation": datasets.Dataset.from_dict({"sentence": ["d", "e"], "label": [1, 0]}, features=feats)})
    dd.save_to_disk(str(tmp_path / "sst"))
    test = data.load(str(tmp_path / "sst"), "test")  # falls back to validation
    assert test.texts == ("d", "e") and test.label_names == ("negative", "positive")
    assert len(data.load(str(tmp_path / "sst"), "train")) == 3


def test_hub_dataset_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(PrunescopeError, match="save_to_disk"):
        data.load("imdb", "test")


def test_models_local_folder_and_hub_offline(tmp_path, tokenizer):
    model = tiny_model("distilbert", labels=3)
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    net, tok = models.load(str(tmp_path / "m"), "rotten_tomatoes", "cpu")
    assert net.config.num_labels == 3 and not net.training
    with pytest.raises(PrunescopeError, match="does not exist"):
        models.load(str(tmp_path / "nothing"), "rotten_tomatoes")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrunescopeError, match="not a readable"):
        models.load(str(tmp_path / "empty"), "rotten_tomatoes")
    with pytest.raises(PrunescopeError, match="huggingface-cli download"):
        models.load("someone/bert-not-cached", "rotten_tomatoes")
    with pytest.raises(PrunescopeError, match="no shipped default model"):
        models.load("default", "glue/sst2")


def test_calibration_is_seeded(tokenizer):
    texts = data.load("rotten_tomatoes", "train").texts
    a = calibration.sample_texts(texts, 16, 0)
    assert a == calibration.sample_texts(texts, 16, 0) != calibration.sample_texts(texts, 16, 1)
    cal = calibration.build(tokenizer, a, seq_len=16)
    assert cal.n_examples == 16 and all(ids.shape[1] <= 16 for ids, _ in cal.batches)
    with pytest.raises(PrunescopeError, match="exceeds"):
        calibration.sample_texts(texts[:3], 5, 0)


def test_eval_only_task_calibrates_elsewhere(tokenizer):
    cal = calibration.from_task(tokenizer, "imdb_sample", 16, 32, 0)
    assert not set(cal.texts) & set(data.load("imdb_sample").texts)
