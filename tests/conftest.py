"""Shared fixtures: tiny random encoders of each supported family, a tokenizer, calibration text."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# never touch the user's results store from tests
import tempfile

_TMP = tempfile.mkdtemp(prefix="prunescope-test-")
os.environ["PRUNESCOPE_DB"] = os.path.join(_TMP, "runs.sqlite")
os.environ.pop("PRUNESCOPE_PASSWORD", None)  # a developer's own classroom password would lock the app tests
# attack resources (stop words, WordNet copy, TextAttack cache) in a temporary folder too
os.environ["PRUNESCOPE_NLTK_DATA"] = os.path.join(_TMP, "nltk_data")
# pools started by tests end soon after their last job; no page warms a pool unasked (tests that count
# jobs would see the warm-up job; tests/test_warm.py turns it on)
os.environ.setdefault("PRUNESCOPE_JOB_IDLE", "10")
os.environ.setdefault("PRUNESCOPE_WARM", "off")

import pytest
import torch
import transformers

# transformers' own handler keeps the stderr of the first test that logged, which pytest closes
# afterwards; let its records go to the root logger (captured by pytest) instead.
transformers.logging.disable_default_handler()
transformers.logging.enable_propagation()

from pruning_core.data import calibration
from pruning_core.core.paths import minilm_dir

TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate clichés from start to finish,",
    "an utterly charming and hilarious film that reminded me of the best of the genre",
    "dull",
    "it's a charming and often affecting journey.",
    "unflinchingly bleak and desperate",
    "the acting, costumes, music, cinematography and sound are all astounding given the production's "
    "austere locales.",
    "a sour little movie at its core; an exploration of the emptiness that underlay the relentless gaiety",
] * 4


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())


def tiny_model(family: str = "bert", hidden: int = 128, inter: int = 256, layers: int = 2, labels: int = 2,
               seed: int = 0):
    """A randomly initialised classifier of the given family (vocab of the MiniLM tokenizer)."""
    from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                              DistilBertForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification)

    torch.manual_seed(seed)
    if family == "bert":
        cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                         intermediate_size=inter, num_labels=labels)
        return BertForSequenceClassification(cfg).eval()
    if family == "roberta":
        cfg = RobertaConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                            intermediate_size=inter, num_labels=labels, pad_token_id=0,
                            max_position_embeddings=600)
        return RobertaForSequenceClassification(cfg).eval()
    cfg = DistilBertConfig(vocab_size=30522, dim=hidden, n_layers=layers, n_heads=4, hidden_dim=inter,
                           num_labels=labels)
    return DistilBertForSequenceClassification(cfg).eval()


@pytest.fixture
def bert():
    return tiny_model("bert")


@pytest.fixture(scope="session")
def calib(tokenizer):
    return calibration.build(tokenizer, TEXTS, seq_len=24, batch_size=8)


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """The dashboard on an empty store (its cached store, demo imports and loaded runs and attacks reset around
    the test); yields that Store."""
    from dashboard import common
    from pruning_core.storage.store import Store

    def reset():
        for f in (common.get_store, common.demo_imported, common.demo_attacks_imported, common.load_attack_row,
                  common.load_attack_examples, common.load_run):
            f.clear()

    monkeypatch.setenv("PRUNESCOPE_DB", str(tmp_path / "runs.sqlite"))
    reset()
    yield Store(tmp_path / "runs.sqlite")
    reset()


@pytest.fixture(scope="session")
def shipped():
    """The shipped rotten_tomatoes model (dense; do not mutate: deep-copy)."""
    from pruning_core.experiments.experiment import load_dense

    return load_dense("default", "rotten_tomatoes", "cpu")


def calib_logits(model, calib, masks=None):
    """Logits on every calibration batch, with unit `masks` applied (pruning_core.prune.structured.units.masked)
    when given."""
    from pruning_core.prune.structured.units import masked

    out = []
    with torch.no_grad():
        for ids, mask in calib.batches:
            if masks is None:
                out.append(model(input_ids=ids, attention_mask=mask).logits)
            else:
                with masked(model, masks):
                    out.append(model(input_ids=ids, attention_mask=mask).logits)
    return torch.cat(out)
