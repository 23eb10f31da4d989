"""One experiment end to end: its config (the cache key), prune + evaluate, fine-tuning the dense model, export and speed of an exported model."""
