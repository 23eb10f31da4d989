"""The bottom layer: errors, file paths and names, fingerprints, the runtime (threads, quiet libraries) and the offline hub probe. Imports nothing of prunescope."""
