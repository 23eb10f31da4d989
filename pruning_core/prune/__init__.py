"""Pruning: the layer-by-layer engine, its records, masks and patterns, one module per method (methods/) and structured pruning (structured/)."""
