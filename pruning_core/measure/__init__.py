"""Measures: error metrics, accuracy evaluation and timing/memory profiling. Sits under pruning so the engine can measure."""
