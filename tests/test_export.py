"""Export of stored runs (safetensors folders that load without prunescope) and measured speed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pruning_core.experiments import export
from pruning_core.experiments import speed
from pruning_core.cli import main
from pruning_core.core.errors import PrunescopeError
from pruning_core.storage.store import Store

IDS_SEED = 7


def _ids(tok, n=3, length=20):
    return speed.token_ids(tok, length, n, seed=IDS_SEED)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small magnitude run of the shipped rotten_tomatoes model in a temporary store, saved as the
    CLI saves runs, and its pruned model (rebuilt from the masks)."""
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import load_dense, run_experiment

    cfg = ExperimentConfig.create(method="magnitude", sparsity=0.5, calib_size=16, eval_size=50, device="cpu")
    res = run_experiment(cfg)
    store = Store(tmp_path_factory.mktemp("store") / "s.sqlite")
    out = res.to_json()
    store.save(out, res.prune.masks)
    dense, tok = load_dense(cfg.model, cfg.task, "cpu")
    net = copy.deepcopy(dense)  # magnitude pruning only zeroes weights: the dense model times the masks
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, keep in res.prune.masks.items():
            params[f"{name}.weight"].mul_(keep)
    return store, cfg.key(), out, net.eval(), tok


def test_export_unstructured_reloads_with_plain_transformers(stored):
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    store, key, rec, net, tok = stored
    folder = export.export_run(key, store, "magnitude-50", device="cpu")
    assert folder == (export.default_root(store) / "magnitude-50").resolve()
    names = set(os.listdir(folder))
    assert {"model.safetensors", "config.json", "prunescope.json", "tokenizer.json", "vocab.txt"} <= names
    assert "modeling_pruned_bert.py" not in names and not any(n.endswith(".bin") for n in names)
    loaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert type(loaded) is BertForSequenceClassification
    ids = _ids(tok)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, net(input_ids=ids).logits, rtol=0, atol=1e-6)
    masks = store.masks(key)
    sd = dict(loaded.named_parameters())
    for name, keep in masks.items():
        w = sd[f"{name}.weight"].detach()
        assert torch.equal(w != 0, keep), name  # the same zeros, exactly where the stored run put them

    meta = json.loads((folder / "prunescope.json").read_text())
    assert meta["key"] == key and meta["config"] == rec["config"]
    assert (meta["method"], meta["sparsity"], meta["pattern"]) == ("magnitude", 0.5, "unstructured")
    assert meta["achieved_sparsity"] == pytest.approx(rec["achieved_sparsity"])
    assert meta["accuracy"] == rec["accuracy"] and meta["dense_accuracy"] == rec["dense_accuracy"]
    assert meta["check"]["mask_entries_differing"] == 0
    assert set(meta["versions"]) == {"prunescope", "torch", "transformers"}
    assert meta["versions"]["torch"] == torch.__version__ and meta["created"]
    assert "structure" not in meta and "semi_structured" not in meta


@pytest.mark.parametrize("out,message", [
    ("../x", "escapes the export root"),
    ("a/../../x", "escapes the export root"),
    ("bad name", "characters other than"),
    ("x;rm", "characters other than"),
    (".", "export root itself"),
])
def test_export_refuses_bad_names(stored, tmp_path, out, message):
    store, key, *_ = stored
    with pytest.raises(PrunescopeError, match=message):
        export.export_run(key, store, out, root=tmp_path / "root")
    assert not (tmp_path / "x").exists()


def test_export_refuses_absolute_and_symlink_escapes(stored, tmp_path):
    store, key, *_ = stored
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    with pytest.raises(PrunescopeError, match="outside the export root"):
        export.export_run(key, store, str(outside / "m"), root=root)
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PrunescopeError, match="escapes the export root.*symlink"):
        export.export_run(key, store, "link/m", root=root)
    (root / "direct").symlink_to(outside / "m")
    with pytest.raises(PrunescopeError, match="symlink"):
        export.export_run(key, store, "direct", root=root)
    # an absolute path inside the root is fine (resolution only; nothing is written here)
    assert export.resolve_out(str(root / "sub" / "m"), root) == (root / "sub" / "m").resolve()
    assert list(outside.iterdir()) == []


def test_export_refuses_non_empty_folder_unless_forced(stored, tmp_path):
    store, key, _, net, tok = stored
    root = tmp_path / "root"
    (root / "taken").mkdir(parents=True)
    (root / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(PrunescopeError, match="not empty.*--force"):
        export.export_run(key, store, "taken", root=root)
    assert (root / "taken" / "notes.txt").read_text() == "mine"
    # `force` replaces a full folder's contents (the writing step, without pruning again)
    folder = export.resolve_out("taken", root)
    export.write_folder(folder, copy.deepcopy(net), tok, {"key": key}, force=True)
    assert not (folder / "notes.txt").exists() and (folder / "model.safetensors").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_export_unknown_key_and_cli_errors(stored, tmp_path, capsys, monkeypatch):
    store, key, *_ = stored
    with pytest.raises(PrunescopeError, match="no stored run with key 'feedbeefcafe0000'"):
        export.export_run("feedbeefcafe0000", store, "x", root=tmp_path)
    monkeypatch.setenv("PRUNESCOPE_DB", str(store.path))
    for argv, msg in ((["export", "feedbeefcafe0000", "--root", str(tmp_path)], "no stored run"),
                      (["export", key, "--out", "../x", "--root", str(tmp_path)], "escapes the export root"),
                      (["export", "../../etc", "--root", str(tmp_path)], "is not a run key"),
                      (["speed", "feedbeefcafe0000"], "no stored run"),
                      (["speed", key, "--repeats", "0"], "--repeats must be")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("prunescope: error:") and msg in err, err


FRESH = r"""
import importlib.abc, json, sys
class NoPrunescope(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pruning_core":
            raise ImportError("pruning_core must not be imported here")
sys.meta_path.insert(0, NoPrunescope())
import torch
from transformers import AutoModelForSequenceClassification
folder, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
m = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = m(input_ids=ids).logits
assert "pruning_core" not in sys.modules
print(json.dumps({"cls": type(m).__name__, "logits": logits.tolist(),
                  "params": sum(p.numel() for p in m.parameters())}))
"""


def _fresh_load(folder: Path, ids: torch.Tensor, tmp_path: Path) -> dict:
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", FRESH, str(folder), json.dumps(ids.tolist())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_structured_export_loads_in_a_fresh_process(shipped, tmp_path):
    from pruning_core.prune.structured import Structure
    from pruning_core.prune.structured.shrink import remove

    dense, tok = shipped
    full = Structure.full(dense.config)
    g = torch.Generator().manual_seed(0)
    heads = torch.rand(full.heads.shape, generator=g) > 0.4
    heads[1] = False  # a layer without heads
    hidden = torch.ones_like(full.hidden)
    hidden[torch.randperm(len(hidden), generator=g)[:32]] = False  # narrower hidden width too
    st = full.replace(heads=heads, neurons=torch.rand(full.neurons.shape, generator=g) > 0.5, hidden=hidden)
    small = remove(dense, st)
    folder = export.write_folder(export.resolve_out("structured", tmp_path / "exports"), small, tok,
                                 {"structure": st.to_json()})
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["auto_map"]["AutoModelForSequenceClassification"] == \
        "modeling_pruned_bert.PrunedBertForSequenceClassification"
    assert (folder / "modeling_pruned_bert.py").exists() and (folder / "model.safetensors").exists()
    ids = _ids(tok)
    got = _fresh_load(folder, ids, tmp_path)
    with torch.no_grad():
        want = small(input_ids=ids).logits
    assert got["cls"] == "PrunedBertForSequenceClassification"
    assert got["params"] == sum(p.numel() for p in small.parameters())
    torch.testing.assert_close(torch.tensor(got["logits"]), want, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_export_run_structured(tmp_path):
    """export_run and measure_run on a real structured method, where one is registered (Kwon et al. or
    K-prune): about a minute on a laptop CPU."""
    from pruning_core.prune import methods
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.experiments.experiment import load_dense, run_experiment

    name = next((m for m in ("kwon", "kprune") if m in methods.METHODS), None)
    if name is None:
        pytest.skip("no structured method registered yet")
    cfg = ExperimentConfig.create(method=name, sparsity=0.4, calib_size=16, eval_size=20, device="cpu")
    res = run_experiment(cfg)
    store = Store(tmp_path / "s.sqlite")
    rec = res.to_json()
    store.save(rec, res.prune.masks)
    folder = export.export_run(cfg.key(), store, "structured")
    meta = json.loads((folder / "prunescope.json").read_text())
    assert meta["pattern"] == "structured" and meta["structure"]["flops"] == pytest.approx(rec["structure"]["flops"])
    assert meta["check"]["structure"] == "identical"
    tok = load_dense(cfg.model, cfg.task, "cpu")[1]
    rb_logits = _fresh_load(folder, _ids(tok), tmp_path)["logits"]
    assert torch.isfinite(torch.tensor(rb_logits)).all()
    out = speed.measure_run(cfg.key(), store, "cpu", repeats=1, batch_sizes=(1, 2))
    assert out["seq_len"] == max(2, round(rec["structure"]["seq_len"]))
    dense, run = out["rows"]
    assert 0 < run["flops"] < dense["flops"] and run["params"] < dense["params"]


def test_verify_rejects_a_different_model(stored):
    _, _, rec, _, _ = stored

    class Fake:
        achieved_sparsity = rec["achieved_sparsity"] + 0.01
        masks = {}
    with pytest.raises(PrunescopeError, match="not reproducible"):
        export.verify(rec, Fake())
    structured = dict(rec, structure={"heads": [[1, 0]], "neurons_kept": [3], "hidden_kept": 4, "flops": 1.0,
                                      "params": 1})
    Fake.structure = {"heads": [[1, 1]], "neurons_kept": [3], "hidden_kept": 4, "flops": 1.0, "params": 1}
    with pytest.raises(PrunescopeError, match="different units"):
        export.verify(structured, Fake())


def test_semi_structured_is_not_faked_on_cpu(stored):
    ok, why = export.semi_structured_support("cpu")
    assert not ok and "no semi-structured sparse kernels" in why
    w = torch.tensor([[1.0, 0, 2, 0, 0, 3, 0, 4]])
    assert export.is_two_four(w) and not export.is_two_four(torch.ones(1, 8))


def test_measure_returns_positive_numbers(stored):
    *_, net, tok = stored
    m = speed.measure(net, tok, seq_len=16, device="cpu", batch_sizes=(1, 4), repeats=2, warmup=1)
    assert {"latency_ms", "throughput", "median_ms", "seq_len", "batch_sizes", "repeats", "device",
            "threads"} <= set(m)
    assert m["latency_ms"] > 0 and m["throughput"] > 0 and m["threads"] == torch.get_num_threads()
    assert m["device"].startswith("cpu") and m["batch_sizes"] == [1, 4] and set(m["median_ms"]) == {"1", "4"}
    with pytest.raises(PrunescopeError, match="repeats"):
        speed.measure(net, tok, repeats=0)


def test_speed_of_a_run_is_stored_and_shown(stored, capsys, monkeypatch):
    store, key, rec, *_ = stored
    out = speed.measure_run(key, store, "cpu", repeats=2, seq_len=16, batch_sizes=(1, 4))
    assert not out["stored"] and [r["model"] for r in out["rows"]] == ["dense", "run"]
    dense, run = out["rows"]
    for r in out["rows"]:
        assert {"latency_ms", "throughput", "speedup", "params", "flops", "sparsity"} <= set(r)
        assert r["latency_ms"] > 0 and r["throughput"] > 0 and r["speedup"] > 0 and r["flops"] is None
    assert dense["params"] == run["params"] and run["nonzero_params"] < dense["nonzero_params"]
    assert run["sparsity"] == rec["achieved_sparsity"] and dense["speedup"] == 1.0
    again = speed.measure_run(key, store, "cpu", repeats=2, seq_len=16, batch_sizes=(1, 4))  # from the table
    assert again["stored"] and again["rows"] == out["rows"] and again["created"] > 0
    row = store.load_speed(key)
    assert row["device"] == speed.device_string("cpu") and row["threads"] == torch.get_num_threads()
    assert row["batch_sizes"] == [1, 4] and row["seq_len"] == 16 and row["rows"] == out["rows"]
    assert store.load_speed(key, device="cuda: nothing") is None and len(store.speeds(key)) == 1
    # the CLI shows a stored measurement without measuring
    store.save_speed(key, dict(out, seq_len=64, batch_sizes=[1, 32]))
    monkeypatch.setenv("PRUNESCOPE_DB", str(store.path))
    assert main(["speed", key, "--seq-len", "64"]) == 0
    shown = capsys.readouterr()
    assert "stored measurement" in shown.err and "dense kernels" in shown.out
    assert "dense" in shown.out and f"{out['rows'][0]['latency_ms']:.2f}" in shown.out


def test_speed_rows_go_with_their_run(stored, tmp_path):
    _, key, rec, *_ = stored
    store = Store(tmp_path / "other.sqlite")
    store.save(rec)
    store.save_speed(key, {"device": "cpu: x", "threads": 1, "batch_sizes": [1, 32], "seq_len": 64, "rows": []})
    assert store.load_speed(key)["device"] == "cpu: x"
    store.delete(key)
    assert store.speeds(key) == []
