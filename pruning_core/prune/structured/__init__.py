"""Structured pruning: unit masks, FLOPs, physical removal of heads, FFN neurons and hidden channels."""

from transformers import AutoConfig, AutoModelForSequenceClassification

from pruning_core.model.modeling_pruned_bert import PrunedBertConfig, PrunedBertForSequenceClassification
from pruning_core.prune.structured.structure import Structure

# Loadable through the Auto classes in any process that imported prunescope; an exported folder also
# carries the modeling file (trust_remote_code) for processes that did not.
AutoConfig.register(PrunedBertConfig.model_type, PrunedBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification, exist_ok=True)

__all__ = ["PrunedBertConfig", "PrunedBertForSequenceClassification", "Structure"]
