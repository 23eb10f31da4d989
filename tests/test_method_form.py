"""Each method owns its knobs: the option metadata drives both the checks (`Method.options`) and the Prune
page's form (`dashboard.method_form`), so a method registered anywhere shows up with its knobs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from pruning_core.prune import methods
from pruning_core.core.errors import PrunescopeError
from pruning_core.prune.methods.base import Method, knob

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
WIDGETS = ("number_input", "radio", "selectbox", "slider", "toggle", "checkbox", "text_input")


def _widget(at, key):
    for kind in WIDGETS:
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def _keys(at) -> set[str]:
    return {w.key for kind in WIDGETS for w in getattr(at, kind)}


def _all_forms():
    """Every registered method's form on one page (keys apart by method name)."""
    import streamlit as st

    from dashboard.method_form import method_form
    from pruning_core.prune import methods

    st.session_state["forms"] = {name: method_form(name, key_prefix="t_") for name in methods.METHODS}


def _forms_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_all_forms, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------------------------ metadata and checks

def _fields():
    return [(name, f) for name, cls in methods.METHODS.items() for f in dataclasses.fields(cls.Options)]


@pytest.mark.parametrize("name,field", _fields(), ids=lambda x: getattr(x, "name", x))
def test_every_knob_is_described_and_its_default_passes_its_own_checks(name, field):
    meta = field.metadata
    assert meta.get("label"), f"{name}.{field.name} has no label"
    kind = type(field.default)
    if kind in (int, float):  # "-1" is refused for every number (the bad-input corpus): a lower bound says why
        assert {"ge", "gt"} & set(meta), f"{name}.{field.name} has no lower bound"
    if kind is str:
        assert field.default in meta["choices"]
    for other in meta.get("shown_when", {}):
        assert other in {f.name for f in dataclasses.fields(methods.METHODS[name].Options)}
    m = methods.get(name)
    assert getattr(m.options({field.name: field.default}), field.name) == field.default


def _outside(meta, kind):
    """(value just outside each bound of the knob, the bound's name)."""
    delta = {int: 1, float: 1e-6}[kind]
    out = []
    for bound, sign in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
        if bound in meta:
            out.append((kind(meta[bound] + sign * delta), bound))
    return out


def _bounded():
    return [(name, f, value, bound) for name, f in _fields() if type(f.default) in (int, float)
            for value, bound in _outside(f.metadata, type(f.default))]


@pytest.mark.parametrize("name,field,value,bound", _bounded(),
                         ids=lambda x: x if isinstance(x, str) else getattr(x, "name", repr(x)))
def test_central_validation_refuses_every_value_out_of_range(name, field, value, bound):
    """Generated from the metadata: a value just past each bound is refused, naming the option and the value;
    the bound itself is accepted where it is inclusive."""
    m = methods.get(name)
    with pytest.raises(PrunescopeError, match=rf"\b{field.name}\b.*got {value!r}"):
        m.options({field.name: value})
    if bound in ("ge", "le"):
        assert getattr(m.options({field.name: field.metadata[bound]}), field.name) == field.metadata[bound]


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_nan_infinity_and_bad_choices_are_refused_centrally(name):
    m = methods.get(name)
    for f in dataclasses.fields(m.Options):
        if type(f.default) is float:
            for bad in (math.nan, math.inf, -math.inf):
                with pytest.raises(PrunescopeError, match=rf"\b{f.name}\b.*finite"):
                    m.options({f.name: bad})
        if type(f.default) is str:
            with pytest.raises(PrunescopeError, match=rf"{name} {f.name} must be .* or .*; got 'planet'"):
                m.options({f.name: "planet"})


def test_method_declarations():
    """Colour (distinct), what it removes, extra calibration: declared by the methods themselves."""
    colours = [cls.colour for cls in methods.METHODS.values()]
    assert all(colours) and len(set(colours)) == len(colours)
    assert {n: c.removes for n, c in methods.METHODS.items() if c.structured} == {
        "kprune": "heads and FFN neurons", "kwon": "heads and FFN neurons", "pat": "hidden channels"}
    assert all(c.removes == "weights" for c in methods.METHODS.values() if not c.structured)
    rec = methods.get("reconstruction")
    assert rec.extra_calibration_texts(rec.options({"self_generated": 8})) == 8
    assert rec.extra_calibration_texts(rec.options({})) == 0
    assert all(methods.get(n).extra_calibration_texts(methods.get(n).options({})) == 0 for n in methods.METHODS)
    with pytest.raises(PrunescopeError, match=r"prune_start \+ decay < prune_end"):  # a cross-field check()
        methods.get("pat").options({"prune_start": 0.6, "decay": 0.2, "prune_end": 0.7})


# ---------------------------------------------------------------------------------------------- the form

def test_every_methods_form_starts_at_its_options_defaults():
    at = _forms_app()
    forms = at.session_state["forms"]
    assert set(forms) == set(methods.METHODS)
    for name, cls in methods.METHODS.items():
        defaults = dataclasses.asdict(cls.Options())
        assert forms[name] == defaults, name  # every knob drawn at the defaults (no shown_when fails there)
        for option, value in forms[name].items():
            assert type(value) is type(defaults[option]), (name, option)
            widget = _widget(at, f"t_{name}_{option}")
            assert widget.value == pytest.approx(value) if isinstance(value, float) else widget.value == value
            assert widget.label == dataclasses.fields(cls.Options)[list(defaults).index(option)].metadata["label"]


def test_a_knob_whose_condition_fails_is_hidden_and_left_at_its_default():
    """For every `shown_when` (generated from the metadata): set the knob it depends on to a value that hides
    it; the widget disappears and the form leaves the option out (so the run key is the default's)."""
    at = _forms_app()
    cases = [(name, f) for name, f in _fields() if f.metadata.get("shown_when")]
    assert cases
    for name, f in cases:
        (other, allowed), = f.metadata["shown_when"].items()
        control = next(g for g in dataclasses.fields(methods.METHODS[name].Options) if g.name == other)
        hiding = (not allowed[0]) if type(control.default) is bool else \
            next(c for c in control.metadata["choices"] if c not in allowed)
        _widget(at, f"t_{name}_{other}").set_value(hiding)
        at.run()
        assert not at.exception, at.exception
        assert f"t_{name}_{f.name}" not in _keys(at), (name, f.name)
        assert f.name not in at.session_state["forms"][name] and at.session_state["forms"][name][other] == hiding
        _widget(at, f"t_{name}_{other}").set_value(control.default)
        at.run()
        assert f"t_{name}_{f.name}" in _keys(at)


@dataclass(frozen=True)
class DummyOptions:
    strength: float = knob(0.25, "Dummy strength", "how hard the dummy prunes", ge=0.0, le=1.0, step=0.05)
    flavour: str = knob("plain", "Dummy flavour", choices=("plain", "fancy"))


class Dummy(Method):
    name = "dummy"
    paper = "Nobody 2025, A method that exists only in this test"
    Options = DummyOptions


def test_a_method_registered_anywhere_appears_on_the_prune_page_with_its_knobs(monkeypatch):
    """One registry line and no dashboard code: the Prune page offers the method, draws its knobs from the
    metadata, and Prune submits exactly the values set there (as a queued job: no pool is started, the
    dummy method exists only in this process)."""
    from streamlit.testing.v1 import AppTest

    from pruning_core import jobs
    from pruning_core.experiments.config import ExperimentConfig
    from pruning_core.storage.store import Store

    monkeypatch.setitem(methods.METHODS, "dummy", Dummy)
    monkeypatch.setenv("PRUNESCOPE_JOB_POOL", "off")  # the tests' store (conftest), which the page caches
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert "dummy" in at.selectbox(key="method").options
    assert not {"dummy_strength", "dummy_flavour"} & _keys(at)
    at.selectbox(key="method").set_value("dummy")
    at.run()
    assert not at.exception, at.exception
    strength, flavour = at.number_input(key="dummy_strength"), _widget(at, "dummy_flavour")
    assert (strength.label, strength.value, strength.min, strength.max, strength.step) == \
        ("Dummy strength", 0.25, 0.0, 1.0, 0.05)
    assert (flavour.label, flavour.value, list(flavour.options)) == ("Dummy flavour", "plain", ["plain", "fancy"])
    strength.set_value(0.5)
    flavour.set_value("fancy")
    for key, value in {"calib": 4, "seq_len": 16, "eval": 8}.items():
        at.number_input(key=key).set_value(value)
    at.button(key="prune_go").click()
    at.run()
    assert not at.exception, at.exception
    queued = [j for j in jobs.list_jobs(Store()) if j.spec.get("config", {}).get("method") == "dummy"]
    assert [j.kind for j in queued] == ["prune"]  # a pool left by another test may already have failed it
    cfg = ExperimentConfig.from_dict(queued[0].spec["config"])
    assert cfg.method == "dummy" and cfg.options_dict() == {"strength": 0.5, "flavour": "fancy"}
    assert queued[0].key == cfg.key()
