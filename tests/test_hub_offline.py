"""The hub path, for real and offline: a Hugging Face cache laid out as a download leaves it, then
`prunescope eval` and `prune` on the hub ids with HF_HUB_OFFLINE=1.

- the model: the shipped Rotten Tomatoes model under a hub id in huggingface_hub's cache layout
  (`models--ORG--NAME/blobs/<sha256>`, `snapshots/<commit>/<file>` -> ../../blobs/..., `refs/main`);
- the data: `glue/sst2` as `datasets` leaves a prepared dataset in its cache
  (`HF_DATASETS_CACHE/glue/sst2/0.0.0/<hash>/` with `dataset_info.json` and `glue-<split>.arrow`),
  which is what `datasets.load_dataset('glue', 'sst2')` reads when the hub cannot be reached.

huggingface_hub, transformers and datasets read their cache and offline settings when imported, so
each command runs in a fresh process with that environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pruning_core.cli import main
from pruning_core.core.paths import REPO_ROOT

MODEL_DIR = REPO_ROOT / "assets" / "models" / "minilm-rotten_tomatoes"
HUB_ID = "prunescope-tests/minilm-rotten-tomatoes"
COMMIT = hashlib.sha1(b"prunescope offline hub test").hexdigest()  # 40 hex digits, like a git commit
DATA_HASH = hashlib.sha1(b"glue sst2 rows").hexdigest()
N_ROWS = 24


def lay_out_model(hub_cache: Path, repo_id: str, folder: Path, commit: str) -> Path:
    """`folder`'s files as huggingface_hub caches a download of `repo_id` at `commit`."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        data = f.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snap / f.name).symlink_to(Path("..", "..", "blobs", blob))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap


def lay_out_glue_sst2(datasets_cache: Path, splits: dict[str, tuple[list[str], list[int]]]) -> Path:
    """A prepared `glue/sst2` (sentence, label, idx) in the `datasets` cache, as a load leaves it."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"]),
                                  "idx": datasets.Value("int32")})
    out = datasets_cache / "glue" / "sst2" / "0.0.0" / DATA_HASH
    out.mkdir(parents=True)
    split_dict = datasets.SplitDict(dataset_name="glue")
    for split, (texts, labels) in splits.items():
        path = out / f"glue-{split}.arrow"
        with ArrowWriter(features=features, path=str(path)) as writer:
            for i, (t, y) in enumerate(zip(texts, labels)):
                writer.write({"sentence": t, "label": y, "idx": i})
            n, nbytes = writer.finalize()
        split_dict.add(datasets.SplitInfo(name=split, num_bytes=nbytes, num_examples=n, dataset_name="glue"))
    info = datasets.DatasetInfo(features=features, dataset_name="glue", config_name="sst2",
                                version="0.0.0", splits=split_dict)
    info.write_to_directory(str(out))
    return out


def rows() -> dict[str, tuple[list[str], list[int]]]:
    """Real review snippets (Rotten Tomatoes test split); some labels flipped so that accuracy is
    neither 0 nor 1 and a wrong row order or label mapping shows."""
    from pruning_core.data import tasks as data

    test = data.load("rotten_tomatoes", "test")
    texts = list(test.texts[:N_ROWS])
    labels = [y if i % 3 else 1 - y for i, y in enumerate(test.labels[:N_ROWS])]
    return {"train": (texts, labels), "validation": (texts, labels)}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    lay_out_model(root / "hub", HUB_ID, MODEL_DIR, COMMIT)
    r = rows()
    lay_out_glue_sst2(root / "datasets", r)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(root), HF_HUB_CACHE=str(root / "hub"), HF_DATASETS_CACHE=str(root / "datasets"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PRUNESCOPE_DB=str(root / "runs.sqlite"), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    return {"root": root, "env": env, "rows": r}


# one fresh process per command; the clock starts after the heavy imports, at the command itself
RUNNER = """
import contextlib, io, json, sys, time
import datasets, torch, transformers
from pruning_core.cli import main
out, err = io.StringIO(), io.StringIO()
t0 = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue(), "seconds": time.perf_counter() - t0}))
"""


def prunescope(hub, *argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, *argv], env=hub["env"], cwd=hub["root"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a crash in the command ends up here
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_layout_is_what_the_libraries_read(hub):
    """The cache is the real layout: huggingface_hub resolves the id to the snapshot, offline."""
    snap = hub["root"] / "hub" / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT
    assert (snap / "model.safetensors").is_symlink() and (snap / "model.safetensors").resolve().parent.name == "blobs"
    code = ("from huggingface_hub import try_to_load_from_cache as t; "
            f"print(t({HUB_ID!r}, 'config.json'))")
    proc = subprocess.run([sys.executable, "-c", code], env=hub["env"], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == str(snap / "config.json"), proc.stderr[-2000:]


def test_eval_on_hub_ids_offline_matches_the_local_folder(hub, tmp_path, monkeypatch, capsys):
    res = prunescope(hub, "eval", "--model", HUB_ID, "--task", "glue/sst2", "--eval-size", "8", "--device", "cpu")
    assert res["rc"] == 0, res["err"]
    got = json.loads(res["out"].strip().splitlines()[-1])
    assert got["model"] == HUB_ID and got["task"] == "glue/sst2" and got["examples"] == 8

    # the same model from its local folder, on the same rows (a CSV in the same order), here
    texts, labels = hub["rows"]["validation"]
    import pandas as pd

    csv = tmp_path / "sst2.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(csv, index=False)
    monkeypatch.setenv("PRUNESCOPE_DB", str(tmp_path / "runs.sqlite"))
    assert main(["eval", "--model", str(MODEL_DIR), "--task", str(csv), "--eval-size", "8", "--device", "cpu"]) == 0
    local = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert local["examples"] == 8
    assert got["accuracy"] == pytest.approx(local["accuracy"], abs=1e-9)
    assert 0 < got["accuracy"] < 1  # flipped labels: a wrong mapping or row order would show


def test_prune_on_hub_ids_offline(hub):
    res = prunescope(hub, "prune", "--model", HUB_ID, "--task", "glue/sst2", "--method", "magnitude",
                     "--sparsity", "0.5", "--calib-size", "4", "--seq-len", "16", "--eval-size", "8",
                     "--device", "cpu")
    assert res["rc"] == 0, res["err"][-3000:]
    assert "Traceback" not in res["err"]
    summary = " ".join(res["out"][res["out"].index("achieved sparsity"):].split())  # rich wraps the line
    achieved = float(summary.split()[2])
    assert achieved == pytest.approx(0.5, abs=0.01), summary
    assert "on 8 examples" in summary and f"on glue/sst2 ({HUB_ID})" in " ".join(res["out"].split()), summary


@pytest.mark.parametrize("argv,what", [
    (["eval", "--model", "prunescope-tests/not-in-the-cache", "--task", "glue/sst2"], "not-in-the-cache"),
    (["eval", "--model", HUB_ID, "--task", "imdb"], "imdb"),
], ids=["model-not-cached", "dataset-not-cached"])
def test_not_cached_fails_fast_with_one_line(hub, argv, what):
    res = prunescope(hub, *argv, "--eval-size", "8", "--device", "cpu")
    err = res["err"].strip().splitlines()
    assert res["rc"] == 2, res
    assert len(err) == 1 and err[0].startswith("prunescope: error:") and what in err[0], err
    assert res["seconds"] < 10, res["seconds"]
    assert not re.search(r"[Rr]etr(y|ying)", res["err"])
