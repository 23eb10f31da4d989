"""Every shipped demo result (assets/demo/*.jsonl) is found by the keys a fresh checkout computes.

The dashboard looks stored results up by key: a row whose stored key differs from the one today's code
computes for its config is unreachable, and the page it was shipped for computes it again (the dense
baseline of the Robustness demo once took 278 s and the chart started at 30%). These tests need no model
load: keys need only the configs and the fingerprints of the shipped model files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pruning_core.storage import demo
from pruning_core.core import fingerprint
from pruning_core.model import models
from pruning_core.sweeps import spec as sweep_spec

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
DEMO_FILES = sorted(demo.DEMO_DIR.glob("*.jsonl"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_files_are_shipped():
    names = [p.name for p in DEMO_FILES]
    assert {"sweep_rotten_tomatoes.jsonl", "sweep_bbc_news.jsonl", "robustness_rotten_tomatoes.jsonl"} <= set(names)
    assert all(_rows(p) for p in DEMO_FILES)


@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_shipped_row_has_the_key_its_config_gives(path):
    """(a) The key (and an attack's target) re-derived from each row's stored config is the stored one."""
    wrong = []
    for row in _rows(path):
        key, meta = demo.demo_row_key(row)
        if key != row["key"] or (meta is not None and meta != row["meta"]):
            wrong.append(f"{row['key']} -> {key} ({row['config'].get('recipe', '')} {row.get('meta', row['config'])})")
    assert not wrong, (f"{len(wrong)} rows of {path.name} are unreachable by today's keys (re-key them with "
                       f"demo.rekey_demo if the key change leaves results alone): " + "; ".join(wrong))


def test_model_fingerprint_ignores_place_time_and_line_ends(tmp_path):
    """A clone elsewhere, written at another time, with CRLF line ends (git's autocrlf), keys the same."""
    src = Path(models.resolve("default", "rotten_tomatoes"))
    dst = tmp_path / "elsewhere" / src.name
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.suffix == ".safetensors":
            (dst / p.name).symlink_to(p)  # the same bytes, another path
        else:
            (dst / p.name).write_bytes(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert b"\r\n" in (dst / "config.json").read_bytes()
    assert fingerprint.of_path(dst) == fingerprint.of_path(src)
    (dst / "config.json").write_text((src / "config.json").read_text().replace("384", "385"))
    assert fingerprint.of_path(dst) != fingerprint.of_path(src)  # content still counts


def test_saved_dataset_folder_fingerprint_follows_its_files(tmp_path):
    """A task given as a folder (a saved dataset) is keyed by its files, so an edited copy gets a new key."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data-00000.arrow").write_bytes(b"abc")
    (tmp_path / "dataset_dict.json").write_text("{}")
    before = fingerprint.of_path(tmp_path)
    (tmp_path / "train" / "data-00000.arrow").write_bytes(b"abd")
    assert fingerprint.of_path(tmp_path) != before


def test_rekey_demo_restores_keys_and_refuses_another_config(tmp_path):
    src = next(p for p in DEMO_FILES if p.name.startswith("robustness_"))
    rows = _rows(src)[:2]
    good = [demo.demo_row_key(r)[0] for r in rows]
    rows[0]["key"], rows[1]["meta"]["target"] = "0" * 16, "dense-stale"
    path = tmp_path / "robustness_x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert demo.rekey_demo(path) == [("0" * 16, good[0])]
    assert [r["key"] for r in _rows(path)] == good and _rows(path)[1]["meta"] == _rows(src)[1]["meta"]
    assert _rows(path)[0]["summary"] == _rows(src)[0]["summary"]  # results untouched
    rows[0]["meta"]["recipe"] = "pwws"  # the config now describes another attack: re-keying would lie
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from pruning_core.core.errors import PrunescopeError

    with pytest.raises(PrunescopeError, match="recompute it"):
        demo.rekey_demo(path)


# ---- (b) the grids the pages open on are all in a fresh store after the demo import ----------------------

def _page(name: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(name)
    at.run()
    assert not at.exception, at.exception
    return at


def _demo_tasks(prefix: str) -> list[str]:
    return sorted({r["config"].get("run", r["config"])["task"] for p in DEMO_FILES if p.name.startswith(prefix)
                   for r in _rows(p)})


def test_compare_page_default_grid_is_shipped(fresh_app):
    """The Compare page's default grid (its widgets' defaults, expanded by sweep_spec.grid as the page does) is
    stored after the demo import, for every shipped task, and the page says nothing is left to compute."""
    # the import the page runs first (once per server), into the fresh store the page then reads
    assert demo.import_demo(fresh_app) == sum(len(_rows(p)) for p in DEMO_FILES if p.name.startswith("sweep_"))
    at = _page("compare_page.py")
    methods = at.multiselect(key="cmp_methods").value
    patterns = at.multiselect(key="cmp_patterns").value
    sparsities = at.multiselect(key="cmp_sparsities").value
    common = dict(calib_size=int(at.number_input(key="cmp_calib").value),
                  seq_len=int(at.number_input(key="cmp_seq").value),
                  eval_size=int(at.number_input(key="cmp_eval").value) or None)
    from pruning_core.prune import methods as registry

    assert methods and not any(registry.METHODS[m].structured for m in methods)  # the page's expander
    tasks = _demo_tasks("sweep_")
    assert tasks == ["bbc_news", "rotten_tomatoes"]
    for task in tasks:
        configs = sweep_spec.grid(task, methods, patterns, sparsities, **common)
        missing = [(c.method, c.pattern, c.sparsity) for c in configs if not fresh_app.has(c.key())]
        assert not missing, f"{task}: the Compare page's default grid misses {missing}"
        at.selectbox(key="cmp_task").set_value(task)
        at.run()
        assert not at.exception, at.exception
        n = len(configs)
        assert f"{n} runs in the grid: {n} stored, 0 to compute" in [c.value for c in at.caption]


def test_robustness_page_default_grid_is_shipped_with_its_dense_baseline(fresh_app):
    """The Robustness page opens on the shipped BBC News grid, and each shipped grid (its sidebar button) is
    stored after the demo import for every recipe it ships, the dense (sparsity 0) attack in particular: the
    page tables and plots it, the dense point included, without computing anything."""
    shipped = [r for p in DEMO_FILES if p.name.startswith("robustness_") for r in _rows(p)]
    assert demo.import_demo_attacks(fresh_app) == len(shipped)  # as the page does, into the store it reads
    at = _page("robustness_page.py")
    assert at.selectbox(key="rob_task").value == "bbc_news"  # the default view: the BBC News demo
    files = [p for p in DEMO_FILES if p.name.startswith("robustness_")]
    assert sorted(_demo_tasks("robustness_")) == ["bbc_news", "rotten_tomatoes"]
    for path in sorted(files, key=lambda p: p.name != "robustness_bbc_news.jsonl"):  # the default first
        if path.name != "robustness_bbc_news.jsonl":
            button = next(b for b in at.button if b.key and b.key.startswith("rob_demo_") and b.label in
                          ("Rotten Tomatoes",))
            button.click()
            at.run()
        task = at.selectbox(key="rob_task").value
        assert task == _rows(path)[0]["config"]["run"]["task"]
        kw = dict(n=int(at.number_input(key="rob_n").value), seed=int(at.text_input(key="rob_seeds").value),
                  query_budget=int(at.number_input(key="rob_budget").value) or None,
                  visible_only=bool(at.checkbox(key="rob_visible").value),
                  calib_size=int(at.number_input(key="rob_calib").value),
                  seq_len=int(at.number_input(key="rob_seq").value))
        methods, sparsities = at.multiselect(key="rob_methods").value, sorted(at.multiselect(key="rob_sparsities").value)
        assert 0.0 in sparsities
        recipes = sorted({r["config"]["recipe"] for r in _rows(path)})
        assert at.selectbox(key="rob_recipe").value in recipes
        for recipe in recipes:
            configs = sweep_spec.attack_grid(task, methods, sparsities, recipes=(recipe,), **kw)
            dense = [c for c in configs if c.dense]
            assert len(dense) == 1 and fresh_app.attack_done(dense[0].key()), f"{recipe}: no dense baseline stored"
            missing = [(c.meta()["method"], c.run.sparsity) for c in configs if not fresh_app.attack_done(c.key())]
            assert not missing, f"{path.name} {recipe}: the page's grid misses {missing}"
            at.selectbox(key="rob_recipe").set_value(recipe)
            at.run()
            assert not at.exception, at.exception
            n = len(configs)
            assert f"{n} attacks in the grid: {n} stored, 0 to compute" in [c.value for c in at.caption]
            assert "rob_run" not in [b.key for b in at.button]
            frame = at.dataframe[0].value
            assert frame["method"].iloc[0] == "dense" and frame["sparsity"].iloc[0] == 0.0
            assert len(frame) == n and (frame["n"] == kw["n"]).all()
            spec = json.loads(at.get("plotly_chart")[0].proto.spec)
            dense_pts = [t for t in spec["data"] if t["name"] == "dense"]
            assert len(dense_pts) == 3 and all(t["x"] == [0.0] for t in dense_pts), "the dense model in each panel"
    assert len(fresh_app.attacks()) == len(shipped)  # nothing was attacked, only read
