"""The SQLite results store: round trip with masks, filters, delete, atomic writes."""

import pytest
import torch

from pruning_core.storage.store import Store, pack_mask, unpack_mask


def _result(key="k1", method="wanda", sparsity=0.5):
    return {"key": key, "config": {"model": "default", "task": "rotten_tomatoes", "method": method,
                                   "pattern": "unstructured", "sparsity": sparsity},
            "achieved_sparsity": sparsity, "dense_accuracy": 0.85, "accuracy": 0.8, "prune_seconds": 1.0,
            "layers": [{"name": "a", "block": 0, "kind": "q", "local_error": 0.1}], "blocks": []}


def test_mask_packing_roundtrip():
    m = torch.rand(384, 1536) > 0.5
    bits = pack_mask(m)
    assert len(bits) < m.numel() / 8 * 1.05
    assert torch.equal(unpack_mask(bits, 384, 1536), m)


def test_save_load_filter_delete(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    masks = {"layer.q": torch.rand(8, 16) > 0.3}
    store.save(_result("k1"), masks)
    store.save(_result("k2", method="sparsegpt", sparsity=0.7))
    assert store.has("k1") and not store.has("nope")
    assert store.load("k1")["layers"][0]["local_error"] == 0.1
    assert torch.equal(store.masks("k1")["layer.q"], masks["layer.q"])
    assert store.masks("k1", ["layer.q"]).keys() == {"layer.q"} and store.masks("k1", ["other"]) == {}
    assert list(store.runs(method="sparsegpt")["key"]) == ["k2"] and len(store.runs()) == 2
    assert store.delete("k1") and store.masks("k1") == {} and not store.has("k1")
    with store._connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_crash_mid_save_leaves_no_half_row_and_keeps_the_old_one(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    store.save(_result("k1"), {"a": torch.ones(2, 8, dtype=torch.bool)})

    class Exploding:
        shape = (2, 8)

        def cpu(self):
            raise MemoryError("simulated crash while writing masks")

    with pytest.raises(MemoryError):
        store.save(_result("k1", sparsity=0.9), {"a": torch.zeros(2, 8, dtype=torch.bool), "b": Exploding()})
    old = store.load("k1")
    assert old["config"]["sparsity"] == 0.5 and torch.equal(store.masks("k1")["a"], torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(MemoryError):
        store.save(_result("k9"), {"b": Exploding()})
    assert not store.has("k9")


def test_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_DB", str(tmp_path / "x" / "db.sqlite"))
    assert Store().path == tmp_path / "x" / "db.sqlite"


def test_key_follows_file_content(tmp_path, tokenizer):
    """A re-trained model or an edited task file gets a new key: stored results are never stale."""
    import torch

    from conftest import tiny_model
    from pruning_core.experiments.config import ExperimentConfig

    model = tiny_model("bert")
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\ngood,1\nbad,0\n")
    cfg = ExperimentConfig.create(model=str(tmp_path / "m"), task=str(csv), method="wanda", calib_size=2)
    k1 = cfg.key()
    assert cfg.key() == k1
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    model.save_pretrained(tmp_path / "m")
    k2 = cfg.key()
    assert k2 != k1
    csv.write_text("text,label\ngood,1\nawful,0\n")
    assert cfg.key() != k2
