"""Robustness under real TextAttack attacks, offline: recipes, the attack runner, and its measures.

Importing this package is cheap; TextAttack (about 10 s to import) loads on the first attack.
"""

from pruning_core.robustness.attack import AttackConfig, AttackOutcome, load_attack, run_attack
from pruning_core.robustness.metrics import summarize
from pruning_core.robustness.recipes import OFFLINE, RECIPES, availability

__all__ = ["AttackConfig", "AttackOutcome", "run_attack", "load_attack", "summarize", "RECIPES", "OFFLINE",
           "availability"]
