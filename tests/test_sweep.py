"""Sweeps from a file: validation with lines and fields, expansion to the UI's configs, the local process
pool and Ray giving the results of `run_experiment`, failures recorded while the rest finishes, resume
after a kill (background sweeps and their status), dry-run estimates, and the results table export."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from pruning_core.sweeps import sweepfile
from pruning_core.cli import main
from pruning_core.experiments.config import ExperimentConfig
from pruning_core.core.errors import PrunescopeError
from pruning_core.model.models import MODELS_DIR
from pruning_core.storage.store import Store

TINY = {"calib_size": 4, "seq_len": 16, "eval_size": 16, "device": "cpu"}
GRID = """
name: tiny
models: [default]
tasks: [rotten_tomatoes]
methods: [magnitude, wanda]
sparsities: [0.5, 0.7]
calib_size: 4
seq_len: 16
eval_size: 16
device: cpu
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _cells(out: str, text: str) -> int:
    """How many cells of a printed rich table hold `text`."""
    return len(re.findall(r"│ *" + re.escape(text) + r" *│", out))


def _good_configs() -> list[ExperimentConfig]:
    return [ExperimentConfig.create(method=m, sparsity=s, **TINY) for m in ("magnitude", "wanda") for s in (0.5, 0.7)]


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory) -> Path:
    """A model folder that passes validation (a config.json and a weights file) but breaks when loaded (the
    zipped weights are no checkpoint; only a safetensors header is checked up front)."""
    d = tmp_path_factory.mktemp("broken")
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "num_labels": 2}))
    with zipfile.ZipFile(d / "pytorch_model.bin", "w") as z:  # a zip archive, but no torch checkpoint in it
        z.writestr("notes.txt", "not a checkpoint")
    return d


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, broken_model):
    """The tiny grid x {shipped model, broken model} on a local pool of 2 workers, through the CLI."""
    d = tmp_path_factory.mktemp("local")
    grid = _write(d / "grid.yaml", GRID.replace("models: [default]", f"models: [default, '{broken_model}']"))
    store = d / "runs.sqlite"
    code = main(["sweep", str(grid), "--workers", "2", "--store", str(store)])
    return {"code": code, "store": Store(store), "grid": grid, "dir": d}


@pytest.fixture
def one_thread():
    """Direct runs with one torch thread, as each of two workers has on two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- the file and its grid


def test_expansion_matches_the_ui_configs(tmp_path):
    text = """
tasks: [rotten_tomatoes]
methods:
  magnitude: {scope: [layer, global]}
  wanda:
  kprune: {}
patterns: [unstructured, "2:4"]
sparsities: [0.3, 0.6]
calib_size: 4
seq_len: 16
"""
    with pytest.raises(PrunescopeError, match=r"line 4 \(methods.magnitude\).*2:4.*unstructured pattern only"):
        sweepfile.load(_write(tmp_path / "s.yaml", text))  # global magnitude has no N:M: said before any work
    sw = sweepfile.load(_write(tmp_path / "s.yaml", text.replace("scope: [layer, global]", "scope: layer")))
    got = [(c.method, c.pattern, c.sparsity) for c in sw.runs]
    want = [(m, p, s) for m in ("magnitude", "wanda") for p, s in (("unstructured", 0.3), ("unstructured", 0.6),
                                                                    ("2:4", 0.5))]  # N:M once, at its sparsity
    want += [("kprune", "structured", 0.3), ("kprune", "structured", 0.6)]  # structured: only "structured"
    assert got == want
    ui = ExperimentConfig.create(method="wanda", pattern="2:4", sparsity=0.5, calib_size=4, seq_len=16)
    assert ui.key() in {c.key() for c in sw.runs}  # the key the Prune page would store
    sw = sweepfile.load(_write(tmp_path / "g.yaml", text.replace("scope: [layer, global]", "scope: [layer, global]")
                               .replace('[unstructured, "2:4"]', "[unstructured]")))
    assert sorted(c.options_dict().get("scope", "-") for c in sw.runs if c.method == "magnitude") == \
        ["global", "global", "layer", "layer"]  # option lists are grids


def test_attack_entries_expand_like_the_robustness_page(tmp_path):
    from pruning_core.sweeps.spec import attack_grid

    attacks = ("attacks:\n  - {recipe: deepwordbug, n: 5, visible_only: true}\n"
               "  - {recipe: deepwordbug, n: 5, methods: [wanda]}\n")
    sw = sweepfile.load(_write(tmp_path / "a.yaml", GRID + attacks))
    ui = attack_grid("rotten_tomatoes", ["magnitude", "wanda"], (0.0, 0.5, 0.7), n=5, visible_only=True,
                     calib_size=4, seq_len=16)
    visible = [a for a in sw.attacks if a.visible_only]
    assert {a.key() for a in visible} == {a.key() for a in ui} and len(visible) == 5  # dense once + 4 pruned
    plain = [a for a in sw.attacks if not a.visible_only]
    assert len(plain) == 3 and not {a.key() for a in plain} & {a.key() for a in ui}  # a different key
    with pytest.raises(PrunescopeError, match=r"\(attacks\[0\].visible_only\): must be true/false"):
        sweepfile.load(_write(tmp_path / "b.yaml", GRID + "attacks:\n  - {recipe: deepwordbug, visible_only: 1}\n"))

BAD_FILES = [
    ("s.yaml", GRID + "frobnicate: 1\n", r"line 11 \(frobnicate\): unknown key 'frobnicate'"),
    ("s.yaml", GRID.replace("[magnitude, wanda]", "[magnitude, lottery]"), r"line 5 \(methods\[1\]\): unknown method"),
    ("s.yaml", GRID.replace("sparsities: [0.5, 0.7]", "sparsities: [0.5, 1.2]"),
     r"line 6 \(sparsities\[1\]\): sparsity must be in \[0, 1\)"),
    ("s.yaml", GRID + "patterns: [structured]\n", r"\(patterns\[0\]\): structured methods always run"),
    ("s.yaml", GRID.replace("[magnitude, wanda]", "{kprune: {}}") + "patterns: ['2:4']\n",
     r"\(patterns\): kprune run at pattern 'structured' only"),
    ("s.yaml", GRID.replace("[magnitude, wanda]", "{sparsegpt: {blocksize: [64, abc]}}"),
     r"\(methods.sparsegpt.blocksize\): option blocksize of 'sparsegpt' must be an integer"),
    ("s.yaml", GRID + "calib_size: 8\n", r"line 11 \(calib_size\): duplicate key"),
    ("s.yaml", GRID.replace("tasks: [rotten_tomatoes]", "tasks: [sst-3]"), r"\(tasks\[0\]\): unknown task 'sst-3'"),
    ("s.yaml", GRID + "attacks:\n  - {recipe: deepwordbug, n: 0, budget: 5}\n",
     r"\(attacks\[0\].budget\): unknown key 'budget'.*\(attacks\[0\].n\): must be >= 1"),
    ("s.yaml", "tasks: [rotten_tomatoes\nmethods: [wanda]\n", r"line 2: not valid YAML"),
    ("s.toml", 'tasks = ["rotten_tomatoes"]\nsparsities = [0.5]\n[methods.magnitude]\nscope = "galactic"\n',
     r"s.toml: line 4 \(methods.magnitude.scope\): magnitude scope must be layer or global"),
    ("s.toml", 'tasks = ["rotten_tomatoes"]\nmethods = ["wanda"]\n', r"\(sparsities\): missing"),
    ("s.txt", GRID, r"must end in .yaml, .yml or .toml"),
    ("s.yaml", GRID.replace("tasks: [rotten_tomatoes]", "tasks: [rotten_tomatoes, bbc_news]")
     .replace("models: [default]", f"models: ['{MODELS_DIR / 'minilm-rotten_tomatoes'}']"),
     r"line 3 \(models\[0\]\): model .* predicts 2 classes but task 'bbc_news' has 5"),
    ("s.yaml", GRID.replace("models: [default]", "models: {bbc_news: default}"),
     r"\(models.bbc_news\): 'bbc_news' is not among the sweep's tasks.*task 'rotten_tomatoes' has none"),
]


@pytest.mark.parametrize("name,text,message", BAD_FILES)
def test_bad_sweep_files_get_one_clear_line_before_any_work(tmp_path, capsys, name, text, message):
    store = tmp_path / "runs.sqlite"
    assert main(["sweep", str(_write(tmp_path / name, text)), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("prunescope: error:"), err
    assert re.search(message, err), err
    assert not store.exists()  # nothing started


def test_models_per_task(tmp_path):
    f = _write(tmp_path / "s.yaml", GRID.replace("tasks: [rotten_tomatoes]", "tasks: [rotten_tomatoes, bbc_news]")
               .replace("models: [default]", "models: {rotten_tomatoes: default, bbc_news: [default]}"))
    runs = sweepfile.load(f).runs
    assert sorted({(r.model, r.task) for r in runs}) == [("default", "bbc_news"), ("default", "rotten_tomatoes")]
    assert len(runs) == 2 * 2 * 2


def test_a_toml_file_expands_like_its_yaml_twin(tmp_path):
    toml = _write(tmp_path / "s.toml", """
name = "tiny"
tasks = ["rotten_tomatoes"]
methods = ["magnitude", "wanda"]
sparsities = [0.5, 0.7]
calib_size = 4
seq_len = 16
eval_size = 16
device = "cpu"
""")
    yaml_ = _write(tmp_path / "s.yaml", GRID)
    assert [c.key() for c in sweepfile.load(toml).runs] == [c.key() for c in sweepfile.load(yaml_).runs]
    assert [c.key() for c in sweepfile.load(yaml_).runs] == [c.key() for c in _good_configs()]


# ---------------------------------------------------------------------------- executors


def test_local_pool_stores_every_config_once_like_run_experiment(local_sweep, broken_model, one_thread):
    from pruning_core.experiments.experiment import run_experiment

    store = local_sweep["store"]
    assert local_sweep["code"] == 1  # some configs failed: the exit status says so
    good = _good_configs()
    runs = store.runs()
    assert sorted(runs["key"]) == sorted(c.key() for c in good)  # each good config once, nothing else
    for cfg in good:
        stored = store.load(cfg.key())
        direct = run_experiment(cfg)
        d = direct.to_json()
        assert stored["accuracy"] == d["accuracy"] and stored["dense_accuracy"] == d["dense_accuracy"]
        assert stored["achieved_sparsity"] == pytest.approx(d["achieved_sparsity"], abs=1e-12)
        assert [r["local_error"] for r in stored["layers"]] == pytest.approx([r["local_error"] for r in d["layers"]],
                                                                              rel=1e-4)
        masks = store.masks(cfg.key())  # sent back packed, saved by the driver
        assert masks.keys() == direct.prune.masks.keys()
        name = sorted(masks)[0]
        assert torch.equal(masks[name], direct.prune.masks[name].bool())
    # the broken model failed at load time, after validation; every such config is recorded with its error
    fails = store.failures()
    assert len(fails) == 4 and set(fails["kind"]) == {"run"} and set(fails["model"]) == {str(broken_model)}
    assert all("not a readable transformers model folder" in e for e in fails["error"])
    assert all(json.loads(c)["model"] == str(broken_model) for c in fails["config"])


def test_a_later_success_clears_a_recorded_failure(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    cfg = ExperimentConfig.create(method="wanda", sparsity=0.5, **TINY)
    store.record_failure(cfg.key(), "run", cfg.to_dict(), "RuntimeError: out of memory")
    assert store.failure_keys() == {cfg.key()}
    store.save({"key": cfg.key(), "config": cfg.to_dict(), "accuracy": 0.5}, packed={"m": (1, 8, b"x")})
    assert store.failure_keys() == set()


def test_ray_local_mode_gives_the_same_results_as_the_local_pool(local_sweep, tmp_path):
    ray = pytest.importorskip("ray")
    store = tmp_path / "ray.sqlite"
    try:
        code = main(["sweep", str(_write(tmp_path / "grid.yaml", GRID)), "--executor", "ray", "--workers", "2",
                     "--store", str(store)])
        assert not ray.is_initialized()  # the private Ray it started is shut down
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert code == 0
    local, remote = local_sweep["store"], Store(store)
    assert sorted(remote.runs()["key"]) == sorted(c.key() for c in _good_configs())
    for cfg in _good_configs():
        a, b = local.load(cfg.key()), remote.load(cfg.key())
        assert (a["accuracy"], a["achieved_sparsity"]) == (b["accuracy"], b["achieved_sparsity"])
        ma, mb = local.masks(cfg.key()), remote.masks(cfg.key())
        assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


def test_background_sweep_resumes_after_a_kill_without_duplicates(tmp_path, capsys):
    from pruning_core.sweeps import background as sweeps

    grid = _write(tmp_path / "grid.yaml", GRID.replace("[magnitude, wanda]", "[wanda]"))  # two configs
    store = Store(tmp_path / "runs.sqlite")
    want = [c.key() for c in _good_configs() if c.method == "wanda"]
    h = sweeps.start_background(grid, store.path, executor="inline", extra_args=["--cpus-per-task", "1"])
    assert sweeps.status(store, h.id)["alive"]
    deadline = time.time() + 150
    while not sweeps.status(store, h.id)["done"] and time.time() < deadline:  # the first config is stored
        assert sweeps.status(store, h.id)["state"] in ("starting", "running"), h.log.read_text()
        time.sleep(0.2)
    os.killpg(h.pid, signal.SIGKILL)  # a hard kill: no chance to clean up
    while sweeps.status(store, h.id)["alive"] and time.time() < deadline:
        time.sleep(0.1)
    first = store.runs()
    st = sweeps.status(store, h.id)
    assert st["state"] == "died" and not st["alive"] and st["done"] == len(first) == 1, h.log.read_text()
    assert (st["total"], st["remaining"]) == (2, 1)
    capsys.readouterr()
    assert main(["sweep", str(grid), "--store", str(store.path), "--executor", "inline", "--cpus-per-task", "1",
                 "--sweep-id", "again"]) == 0
    assert "1 already stored, 1 to compute" in capsys.readouterr().err
    st = sweeps.status(store, "again")
    assert st["state"] == "finished" and (st["total"], st["stored"], st["done"], st["failed"]) == (2, 1, 1, 0)
    runs = store.runs()
    assert sorted(runs["key"]) == sorted(want)  # every config once
    again = runs.set_index("key").loc[first["key"].iloc[0], "created"]
    assert again == first["created"].iloc[0]  # the run stored before the kill was not recomputed
    assert main(["sweep", str(grid), "--store", str(store.path)]) == 0  # all stored: no executor is started
    assert "all 2 configs are stored" in capsys.readouterr().out


def test_cancel_stops_a_background_sweep_and_an_interrupt_is_recorded(tmp_path, monkeypatch):
    from pruning_core.sweeps import executor_jobs
    from pruning_core.sweeps import executors
    from pruning_core.sweeps import run as sweep_run
    from pruning_core.sweeps import background as sweeps

    store = Store(tmp_path / "runs.sqlite")
    with pytest.raises(PrunescopeError, match="unknown method"):  # checked before anything starts
        sweeps.start_background({"tasks": ["rotten_tomatoes"], "methods": ["lottery"], "sparsities": [0.5]},
                                store.path)
    assert store.sweeps().empty
    spec = {"tasks": ["rotten_tomatoes"], "methods": ["wanda"], "sparsities": [0.5], **TINY}
    h = sweeps.start_background(spec, store.path, executor="inline")
    assert h.spec.suffix == ".json" and h.spec.parent == store.path.parent / "sweeps"
    assert sweeps.status(store, h.id)["alive"] and sweeps.cancel(store, h.id)
    deadline = time.time() + 30
    while sweeps.status(store, h.id)["alive"] and time.time() < deadline:
        time.sleep(0.1)
    st = sweeps.status(store, h.id)
    assert not st["alive"] and st["state"] in ("died", "interrupted") and not sweeps.cancel(store, h.id)

    def interrupted(config):  # Ctrl-C, or SIGTERM turned into KeyboardInterrupt by `prunescope sweep`
        raise KeyboardInterrupt

    monkeypatch.setattr(executor_jobs, "_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep_run.run_sweep(sweepfile.parse(spec), store, executors.InlineExecutor(), sweep_id="ctrl-c")
    assert sweeps.status(store, "ctrl-c")["state"] == "interrupted" and store.failures().empty


def test_attacks_run_after_their_runs_and_the_driver_saves_them(tmp_path, monkeypatch, broken_model):
    """The driver's order and bookkeeping for attacks, with the workers' computations replaced by stubs
    (the inline executor runs in this process, so the stubs apply)."""
    from pruning_core.sweeps import executor_jobs
    from pruning_core.sweeps import executor_local
    from pruning_core.sweeps import executors
    from pruning_core.robustness import AttackConfig, summarize
    from pruning_core.sweeps.run import run_sweep

    order = []

    def fake_run(config):
        order.append(("run", config["method"], config["model"]))
        if config["model"] == str(broken_model):
            raise PrunescopeError("broken")
        cfg = ExperimentConfig.from_dict(config)
        return {"key": cfg.key(), "config": cfg.to_dict(), "accuracy": 0.7, "achieved_sparsity": cfg.sparsity}, {}

    def fake_attack(config):
        a = AttackConfig.from_dict(config)
        order.append(("attack", a.run.method, a.run.sparsity))
        ex = [{"idx": i, "result": r, "queries": 3, "words": 5, "changed": [0]} for i, r in
              enumerate(["successful", "failed", "failed", "skipped"][:a.n])]
        return {"key": a.key(), "config": a.to_dict(), "meta": a.meta(), "summary": summarize(ex), "examples": ex}

    jobs = []
    real_work = executor_jobs.work

    def recording_work(job, threads=None):
        jobs.append((job.kind, len(job.config.get("keys", [None]))))
        return real_work(job, threads)

    monkeypatch.setattr(executor_jobs, "_run", fake_run)
    monkeypatch.setattr(executor_jobs, "_attack", fake_attack)
    monkeypatch.setattr(executor_local, "work", recording_work)  # what InlineExecutor calls
    f = _write(tmp_path / "a.yaml", GRID.replace("models: [default]", f"models: [default, '{broken_model}']")
               + "attacks:\n  - {recipe: deepwordbug, n: 4, methods: [wanda]}\n"
               + "  - {recipe: pruthi, n: 4, methods: [wanda]}\n")
    sw = sweepfile.load(f)
    assert len(sw.runs) == 8 and len(sw.attacks) == 2 * (2 + 4)  # per recipe: dense per model + wanda 0.5, 0.7
    store = Store(tmp_path / "runs.sqlite")
    report = run_sweep(sw, store, executors.InlineExecutor())
    assert [o[0] for o in order] == ["run"] * 8 + ["attack"] * 8  # attacks after runs; broken runs not attacked
    assert jobs == [("run", 1)] * 8 + [("attacks", 2)] * 4  # both recipes of a target in one job: pruned once
    assert report.done == 4 + 8 and report.failed == 4 + 4
    fails = store.failures()
    assert set(fails[fails["kind"] == "attack"]["error"].str.contains("is not stored")) == {True}
    assert len(store.attack_keys()) == 8
    from pruning_core.storage.results import runs_table

    table = runs_table(store)
    wanda = table[(table["method"] == "wanda")]
    for recipe in ("deepwordbug", "pruthi"):
        assert list(wanda[f"{recipe}_accuracy_under_attack"]) == [0.5, 0.5]
        assert list(wanda[f"{recipe}_dense_accuracy_under_attack"]) == [0.5, 0.5]
        assert table[table["method"] == "magnitude"][f"{recipe}_accuracy_under_attack"].isna().all()
    again = run_sweep(sw, store, executors.InlineExecutor())  # resumable: only the failures are retried
    assert again.stored == 8 + 4 and again.done == 0 and len(order) == 16 + 4


# ---------------------------------------------------------------------------- dry run and results


def test_dry_run_prints_the_grid_and_estimates_without_computing(local_sweep, tmp_path, capsys):
    store = local_sweep["store"]
    before = sorted(store.run_keys())
    more = _write(tmp_path / "more.yaml", GRID.replace("[magnitude, wanda]", "[magnitude, wanda, sparsegpt]")
                  .replace("calib_size: 4", "calib_size: 4\nseed: [0, 1]"))
    capsys.readouterr()
    assert main(["sweep", str(more), "--dry-run", "--store", str(store.path), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert _cells(out, "to run") == 8 and _cells(out, "stored") == 4  # 12 configs, 4 of them stored
    assert _cells(out, "measured (2 runs)") == 8  # same method, task, model, calibration (seed, sparsity: any)
    assert _cells(out, "no basis") == 4  # sparsegpt: no stored run of that method
    assert re.search(r"12 configs: 4 stored, 8 to compute\. Estimated [\d.]+ CPU-minutes", out), out
    assert "4 config(s) have no basis" in out and "with 2 parallel worker(s)" in out
    bigger = _write(tmp_path / "bigger.yaml", GRID.replace("calib_size: 4", "calib_size: 16"))
    assert main(["sweep", str(bigger), "--dry-run", "--store", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert out.count("scaled from 2 magnitude runs") == 2 and out.count("scaled from 2 wanda runs") == 2
    m = re.search(r"4 configs: 0 stored, 4 to compute\. Estimated ([\d.]+) CPU-minutes", out)
    stored = sum(r["prune_seconds"] for r in map(store.load, before))
    assert m and float(m[1]) * 60 > 3 * stored  # 4x the calibration: about 4x the prune time (+ evaluation)
    assert sorted(store.run_keys()) == before  # nothing computed
    fresh = tmp_path / "none.sqlite"
    assert main(["sweep", str(more), "--dry-run", "--store", str(fresh)]) == 0
    assert not fresh.exists() and _cells(capsys.readouterr().out, "no basis") == 12


def test_results_csv_and_parquet_round_trip(local_sweep, tmp_path, capsys):
    from pruning_core.storage.results import read_table, runs_table

    store = local_sweep["store"]
    table = runs_table(store)
    assert len(table) == 4 and {"accuracy", "achieved_sparsity", "prune_seconds", "peak_total_mb",
                                "options", "flops_reduction"} <= set(table.columns)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"runs.{fmt}"
        assert main(["results", "--format", fmt, "--out", str(out), "--store", str(store.path)]) == 0
        back = read_table(out)
        pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert main(["results", "--format", "csv", "--method", "wanda", "--store", str(store.path)]) == 0
    csv = capsys.readouterr().out
    assert csv.startswith("key,") and len(csv.strip().splitlines()) == 3 and "magnitude" not in csv
    assert main(["results", "--failures", "--store", str(store.path)]) == 0
    assert capsys.readouterr().out.count("not a readable transformers model folder") == 4
    assert main(["results", "--format", "parquet", "--store", str(store.path)]) == 2  # parquet needs a file
