"""Process-wide settings shared by every entry point (the CLI, sweep workers): nothing here imports
the rest of the package, so any module may call it without creating an import cycle."""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Keep third-party advice (tokenizer hints, deprecations) out of the output of a command or worker."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
