"""prunescope's library: load a model and a task, prune it layer by layer, measure, store.

Never imports streamlit; the dashboard is one client of this package, the CLI another.
"""

from pruning_core.core.errors import PrunescopeError

__all__ = ["PrunescopeError"]
__version__ = "0.1.0"
