"""The one exception type users see: a short, actionable message, never a traceback."""


class PrunescopeError(ValueError):
    """Bad input or a missing resource. The message says what is wrong and how to fix it."""
