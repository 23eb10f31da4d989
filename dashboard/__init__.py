"""prunescope's Streamlit dashboard: pages call `pruning_core`, charts come from `charts.py`."""
