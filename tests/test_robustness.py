"""Robustness: real TextAttack attacks on a tiny local model, offline; metrics, cache, resume, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import TEXTS, tiny_model
from pruning_core.cli import main
from pruning_core.core.errors import PrunescopeError
from pruning_core.robustness import AttackConfig, availability, load_attack, recipes, resources, run_attack, summarize
from pruning_core.storage.store import Store

LABELS = [1, 0, 1, 0, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def local_task(tmp_path_factory, tokenizer):
    """A tiny BERT classifier saved as a local model folder, and a local CSV task for it."""
    root = tmp_path_factory.mktemp("robust")
    model_dir = root / "model"
    tiny_model("bert", seed=3).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    csv = root / "task.csv"
    import pandas as pd

    pd.DataFrame({"text": TEXTS[:8], "label": LABELS}).to_csv(csv, index=False)
    return str(model_dir), str(csv)


def _cfg(local_task, recipe="deepwordbug", n=8, **kw) -> AttackConfig:
    model, task = local_task
    return AttackConfig.create(recipe=recipe, n=n, model=model, task=task, device="cpu", **kw)


# ---------------------------------------------------------------------------------- metric arithmetic

def _rec(result, queries=10, words=10, changed=()):
    return {"result": result, "queries": queries, "words": words, "changed": list(changed), "seconds": 0.5}


def test_metrics_arithmetic_on_hand_made_results():
    recs = [_rec("successful", 20, 10, [1, 2]), _rec("successful", 40, 4, [0]), _rec("failed", 90),
            _rec("skipped", 0), _rec("failed", 30)]
    s = summarize(recs)
    assert (s["successful"], s["failed"], s["skipped"], s["examples"]) == (2, 2, 1, 5)
    assert s["clean_accuracy"] == pytest.approx(4 / 5)
    assert s["accuracy_under_attack"] == pytest.approx(2 / 5)  # still correct after the attack, over all
    assert s["attack_success_rate"] == pytest.approx(2 / 4)  # successful over clean-correct
    assert s["avg_perturbed_word_pct"] == pytest.approx((20.0 + 25.0) / 2)  # successful attacks only
    assert s["avg_queries"] == pytest.approx((20 + 40 + 90 + 30) / 4)  # skipped ones are not attacked
    assert s["attack_seconds"] == pytest.approx(2.5)
    # identities that hold for any results
    assert s["clean_accuracy"] * (1 - s["attack_success_rate"]) == pytest.approx(s["accuracy_under_attack"])


def test_metrics_edge_cases():
    s = summarize([_rec("skipped"), _rec("skipped")])
    assert s["clean_accuracy"] == 0 and s["attack_success_rate"] is None and s["avg_queries"] is None
    assert summarize([])["clean_accuracy"] is None
    with pytest.raises(ValueError):
        summarize([_rec("maybe")])


# ---------------------------------------------------------------------------------- configs and keys

def test_attack_keys(local_task):
    base = _cfg(local_task)
    assert base.dense and base.meta()["method"] == "dense"
    # every method at sparsity 0 is the same dense model: one attack, one key
    assert _cfg(local_task, method="wanda").key() == base.key()
    assert _cfg(local_task, method="wanda", sparsity=0.5).key() != base.key()
    for change in ({"recipe": "pruthi"}, {"n": 7}, {"seed": 1}, {"query_budget": 50}, {"visible_only": True}):
        assert base.with_(**change).key() != base.key()
    # the pruned model does not depend on the evaluation subset; the dense one does on the task file
    pruned = _cfg(local_task, method="wanda", sparsity=0.5)
    assert pruned.with_(run=pruned.run.with_(eval_size=5)).key() == pruned.key()
    again = AttackConfig.from_dict(json.loads(json.dumps(base.to_dict())))
    assert again.key() == base.key()
    assert AttackConfig.from_dict(json.loads(json.dumps(base.with_(visible_only=True).to_dict()))).visible_only
    for bad in ({"n": 0}, {"seed": -1}, {"query_budget": 0}, {"recipe": "nope"}, {"visible_only": 1}):
        with pytest.raises(PrunescopeError):
            base.with_(**bad).validate()


def test_visible_text_is_what_the_model_reads(tokenizer):
    """The cut text's tokens are a prefix of the truncated full text's, with no word split, and as many
    whole words as fit; a text the model reads entirely comes back unchanged."""
    from pruning_core.robustness.attack import visible_text

    text = " ".join(TEXTS * 6)
    for length in (8, 13, 32, 64):
        cut = visible_text(tokenizer, text, length)
        full = tokenizer(text, truncation=True, max_length=length)["input_ids"]
        mine = tokenizer(cut)["input_ids"]
        assert len(mine) <= length and mine[:-1] == full[:len(mine) - 1]
        assert text.startswith(cut) and text[len(cut)] == " "  # whole words only
        one_more = text[:text.index(" ", len(cut) + 1)]  # the next whole word no longer fits
        assert len(tokenizer(one_more)["input_ids"]) > length
    assert visible_text(tokenizer, TEXTS[0], 128) == TEXTS[0]


# ---------------------------------------------------------------------------------- end to end

def test_attack_tiny_model_end_to_end(local_task, tmp_path):
    from pruning_core.measure.evaluate import predict
    from pruning_core.model.models import load

    store = Store(tmp_path / "runs.sqlite")
    seen = []
    out = run_attack(_cfg(local_task, query_budget=200), store, on_example=lambda d, t, r: seen.append((d, t)))
    assert seen == [(i + 1, 8) for i in range(8)] and out.computed == 8
    recs = out.examples
    assert [r["idx"] for r in recs] == list(range(8))
    # clean accuracy equals the model's own accuracy on the same texts
    net, tok = load(local_task[0], local_task[1])
    preds = predict(net, tok, [r["text"] for r in recs], 128).argmax(-1).tolist()
    assert [r["original_pred"] for r in recs] == preds
    assert out.summary["clean_accuracy"] == pytest.approx(np.mean([p == r["label"] for p, r in zip(preds, recs)]))
    for r in recs:
        if r["result"] == "skipped":
            assert r["original_pred"] != r["label"] and r["perturbed"] is None
        elif r["result"] == "successful":
            assert r["original_pred"] == r["label"] != r["perturbed_pred"] and r["changed"]
            # the perturbed text really fools the model
            assert predict(net, tok, [r["perturbed"]], 128).argmax(-1).item() == r["perturbed_pred"]
            for (a, b), (c, d) in zip(r["original_spans"], r["perturbed_spans"]):
                assert r["text"][a:b] != r["perturbed"][c:d]
        else:
            assert r["perturbed_pred"] == r["label"]
        assert r["queries"] <= 200
    assert out.summary["successful"] + out.summary["failed"] + out.summary["skipped"] == 8


def test_visible_only_attacks_just_the_words_the_model_reads(local_task, tmp_path, monkeypatch, tokenizer):
    import pruning_core.experiments.experiment as experiment

    monkeypatch.setattr(experiment, "eval_max_length", lambda task: 10)  # the model reads 8 word pieces
    out = run_attack(_cfg(local_task, n=8, visible_only=True), Store(tmp_path / "runs.sqlite"))
    cut = 0
    for rec in out.examples:
        assert any(full.startswith(rec["text"]) for full in TEXTS[:8])
        assert len(tokenizer(rec["text"])["input_ids"]) <= 10
        cut += rec["text"] not in TEXTS
        if rec["perturbed"] is not None:
            assert len(rec["perturbed"].split()) == len(rec["text"].split())  # nothing past the cut was attacked
            assert all(i < len(rec["text"].split()) for i in rec["changed"])
    assert cut >= 3  # the shortcut really shortened texts


def test_cache_hit_does_not_attack_again(local_task, tmp_path, monkeypatch):
    store = Store(tmp_path / "runs.sqlite")
    first = run_attack(_cfg(local_task, n=4), store)
    monkeypatch.setattr(recipes, "build", lambda *a, **k: pytest.fail("a stored attack was recomputed"))
    again = run_attack(_cfg(local_task, n=4), store)
    assert (again.reused, again.computed) == (4, 0)
    assert again.examples == first.examples and again.summary == first.summary
    assert load_attack(store, first.key).summary == first.summary
    rows = store.attacks()
    assert len(rows) == 1 and rows.iloc[0]["complete"] == 1 and rows.iloc[0]["method"] == "dense"


def test_stopped_attack_resumes_with_the_same_results(local_task, tmp_path):
    cfg = _cfg(local_task, n=6)
    whole = run_attack(cfg, Store(tmp_path / "a.sqlite"))
    store = Store(tmp_path / "b.sqlite")

    def stop_after_three(done, total, rec):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_attack(cfg, store, on_example=stop_after_three)
    assert len(store.attack_examples(cfg.key())) == 3 and not store.attack_done(cfg.key())
    resumed = run_attack(cfg, store)
    assert (resumed.reused, resumed.computed) == (3, 3)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.examples]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in whole.examples]


def test_attack_is_reproducible_while_other_threads_draw_random_numbers(local_task, tmp_path):
    """TextAttack draws from global RNGs; a server thread drawing from them too must not change the
    perturbations (the results are cached under a key that promises the same answer)."""
    import random
    import threading

    cfg = _cfg(local_task, n=6)
    quiet = run_attack(cfg, Store(tmp_path / "a.sqlite")).examples
    stop = threading.Event()

    def noise():
        while not stop.is_set():
            np.random.random(8)
            random.random()

    t = threading.Thread(target=noise, daemon=True)
    t.start()
    try:
        noisy = run_attack(cfg, Store(tmp_path / "b.sqlite")).examples
    finally:
        stop.set()
        t.join()
    assert [r["perturbed"] for r in noisy] == [r["perturbed"] for r in quiet]


def test_attack_on_pruned_model(local_task, tmp_path):
    out = run_attack(_cfg(local_task, n=3, recipe="pruthi", method="magnitude", sparsity=0.8, calib_size=8,
                               seq_len=16), Store(tmp_path / "s"))
    assert out.config.meta()["method"] == "magnitude" and out.summary["examples"] == 3
    from pruning_core.robustness.attack import target_model

    net, _ = target_model(out.config.run, "cpu")
    weights = [m.weight for n_, m in net.named_modules() if n_.endswith(("query", "dense")) and "encoder" in n_]
    assert float(torch.cat([(w == 0).float().flatten() for w in weights]).mean()) == pytest.approx(0.8, abs=0.01)


# ---------------------------------------------------------------------------------- offline guarantee

NO_NETWORK = textwrap.dedent("""
    import socket, sys, json
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("network blocked by the test")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    from pruning_core.robustness import AttackConfig, availability, run_attack
    model, task, recipes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    out = {}
    for recipe in recipes:
        cfg = AttackConfig.create(recipe=recipe, n=2, model=model, task=task, device="cpu")
        out[recipe] = run_attack(cfg).summary["examples"]
    print(json.dumps({"attacks": out, "attempts": attempts}))
""")


def test_offline_recipes_open_no_network_connection(local_task, tmp_path):
    """Every offline recipe, in a fresh process (TextAttack's first import included) with sockets
    blocked: the attacks finish and not one connection was tried."""
    offline = [r for r in recipes.OFFLINE if availability()[r] is None]
    assert {"deepwordbug", "pruthi", "glove-word-swap"} <= set(offline)
    import os

    env = dict(os.environ, PRUNESCOPE_DB=str(tmp_path / "net.sqlite"))
    proc = subprocess.run([sys.executable, "-c", NO_NETWORK, *local_task, ",".join(offline)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["attempts"] == [] and res["attacks"] == {r: 2 for r in offline}


def test_nltk_download_never_goes_online():
    resources.textattack()
    import nltk

    assert nltk.download("stopwords") is True  # present locally: answered without the network
    with pytest.raises(PrunescopeError, match="never downloads"):
        nltk.download("averaged_perceptron_tagger_eng")


# ---------------------------------------------------------------------------------- resources

def test_wordnet_copy_and_lexnames(tmp_path):
    assert resources.install_wordnet(tmp_path / "empty", source=tmp_path / "nowhere") is False
    if not resources.DEBIAN_WORDNET.exists():
        pytest.skip("Debian wordnet-base not installed")
    assert resources.install_wordnet(tmp_path / "nltk")
    folder = tmp_path / "nltk" / "corpora" / "wordnet"
    assert not any(p.is_symlink() for p in folder.iterdir())
    lex = (folder / "lexnames").read_text().splitlines()
    assert len(lex) == 45 and lex[0] == "00\tadj.all\t3" and lex[3] == "03\tnoun.Tops\t1" and lex[44] == "44\tadj.ppl\t3"


def test_antonym_guard_and_glove_neighbours():
    from pruning_core.robustness import glove

    if availability()["pwws"] is not None:
        pytest.skip("WordNet not installed")
    assert "bad" in glove.antonyms("good") and "good" in glove.antonyms("bad")
    assert "uninteresting" in glove.antonyms("interesting")
    from textattack.shared import AttackedText

    guard = glove.not_antonym_constraint()
    ref = AttackedText("a good movie")
    assert guard._check_constraint(ref.replace_word_at_index(1, "bad"), ref) is False
    assert guard._check_constraint(ref.replace_word_at_index(1, "great"), ref) is True
    emb = glove.glove_embedding()
    m = emb.embedding_matrix
    i = emb.word2index("movie")
    brute = [int(j) for j in np.argsort(-(m @ m[i]))[:11] if j != i][:10]  # cosine on normalised rows
    assert emb.nearest_neighbours(i, 10) == brute
    assert np.allclose(np.linalg.norm(m[:100], axis=1), 1.0, atol=1e-5)


def test_unavailable_recipe_says_why():
    why = availability()
    for name in ("textfooler", "bert-attack", "bae", "textbugger"):
        if why[name]:
            with pytest.raises(PrunescopeError, match=f"recipe '{name}' is unavailable here"):
                recipes.check(name)


# ---------------------------------------------------------------------------------- CLI

def test_cli_attack_json_and_cache(local_task, tmp_path, capsys):
    model, task = local_task
    out = tmp_path / "attack.json"
    argv = ["attack", "--model", model, "--task", task, "--n", "3", "--recipe", "deepwordbug", "--json", str(out)]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "accuracy under attack" in first.out
    data = json.loads(out.read_text())
    assert len(data["examples"]) == 3 and data["summary"]["examples"] == 3
    assert main(argv) == 0
    assert "stored attack" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["attack", "--n", "0"], "positive integer"),
    (["attack", "--recipe", "textfoolr"], "unknown attack recipe"),
    (["attack", "--query-budget", "0"], "query budget"),
    (["attack", "--run", "0123456789abcdef"], "no stored run"),
    (["attack", "--sparsity", "1.5"], "sparsity must be in"),
])
def test_cli_attack_bad_input(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_cli_attack_list(capsys):
    assert main(["attack", "--list"]) == 0
    text = capsys.readouterr().out
    assert "deepwordbug" in text and "glove-word-swap" in text and "textfooler" in text


def test_demo_attacks_export_import_and_delete(local_task, tmp_path):
    from pruning_core.storage.demo import export_demo_attacks, import_demo_attacks

    src = Store(tmp_path / "src.sqlite")
    out = run_attack(_cfg(local_task, n=3), src)
    path = tmp_path / "robustness_demo.jsonl"
    export_demo_attacks([out], path)
    dst = Store(tmp_path / "dst.sqlite")
    assert import_demo_attacks(dst, [path]) == 1 and import_demo_attacks(dst, [path]) == 0
    back = load_attack(dst, out.key)
    assert back.summary == out.summary and back.examples == out.examples
    assert back.config.key() == out.key  # the key survives the round trip through JSON
    assert dst.delete_attack(out.key) and dst.attack_examples(out.key) == []  # examples go with it


def test_dense_attack_key_follows_the_task_file(tmp_path, local_task):
    import shutil

    csv = tmp_path / "copy.csv"
    shutil.copy(local_task[1], csv)
    cfg = AttackConfig.create(model=local_task[0], task=str(csv), device="cpu")
    before = cfg.key()
    csv.write_text(csv.read_text() + "an extra review,1\n")
    assert cfg.key() != before  # an edited file never reuses the attack on its old texts


def test_textattack_import_keeps_the_users_caches():
    import os

    before = {k: os.environ.get(k) for k in ("HF_HOME", "XDG_CACHE_HOME", "TOKENIZERS_PARALLELISM")}
    resources.textattack()
    import datasets

    assert {k: os.environ.get(k) for k in before} == before
    assert "textattack_cache" not in str(datasets.config.HF_DATASETS_CACHE)
