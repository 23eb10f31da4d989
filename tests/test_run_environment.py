"""Item 7 of issue 16: the run environment on every run, prune time as a median of repeats, the CLI's summary
with the accuracy's Wilson interval, and the run's own time as its `created`."""

import json
import statistics

from pruning_core.cli import main
from pruning_core.measure.intervals import accuracy_interval


def test_prune_repeats_median_interval_and_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRUNESCOPE_DB", str(tmp_path / "store.db"))
    out_json = tmp_path / "run.json"
    argv = ["prune", "--method", "magnitude", "--sparsity", "0.5", "--calib-size", "4", "--seq-len", "16",
            "--eval-size", "40"]
    assert main(argv + ["--repeats", "3", "--json", str(out_json)]) == 0
    cap = capsys.readouterr()
    run = json.loads(out_json.read_text())
    times = run["prune_seconds_runs"]
    assert len(times) == 3 and times[0] == run["prune_seconds"] and all(t > 0 for t in times)
    assert run["prune_seconds_median"] == statistics.median(times)
    lo, hi = accuracy_interval(run["accuracy"], run["eval_examples"])
    assert lo <= run["accuracy"] <= hi
    summary = " ".join(cap.out.split())  # rich may wrap the line
    assert f"accuracy {run['accuracy']:.4f} [{lo:.3f}, {hi:.3f}]" in summary
    assert f"prune {run['prune_seconds_median']:.2f} s (median of 3" in summary
    env_line = next(line for line in cap.err.splitlines() if line.startswith("environment: "))
    assert f"{run['environment']['threads']} threads" in env_line and "torch" in env_line
    # stored: its created is the run's own start time, and a second call with fewer repeats reads it back
    from pruning_core.storage.store import Store

    store = Store(tmp_path / "store.db")
    row = store.runs()
    assert len(row) == 1 and abs(row["created"][0] - run["environment"]["started"]) < 1e-6
    assert main(argv + ["--repeats", "2"]) == 0
    assert "stored run" in capsys.readouterr().err


def test_prune_and_compare_share_the_demo_settings():
    """Prune's default run is a point of Compare's default curves: both pages start from one set of settings,
    the shipped demo's, so the key of Prune's default config is a shipped demo run."""
    from dashboard.common import PRUNE_DEFAULTS, SHARED_SETTINGS
    from dashboard.prune_actions import make_config
    from pruning_core.storage.demo import demo_keys

    from pruning_core.storage.demo import DEMO_DIR

    rows = [json.loads(line) for p in sorted(DEMO_DIR.glob("sweep_*.jsonl")) for line in p.read_text().splitlines()]
    assert {(r["config"]["calib_size"], r["config"]["seq_len"], r["config"]["eval_size"] or 0) for r in rows} == \
        {(SHARED_SETTINGS["calib"], SHARED_SETTINGS["seq_len"], SHARED_SETTINGS["eval"])}
    d = PRUNE_DEFAULTS
    cfg = make_config({"model": d["model"], "task": d["task"], "method": d["method"], "pattern": d["pattern"],
                       "sparsity": d["sparsity"], "calib_size": d["calib"], "seq_len": d["seq_len"],
                       "seed": d["seed"], "eval_size": d["eval"] or None, "options": {}})
    assert cfg.key() in demo_keys()
