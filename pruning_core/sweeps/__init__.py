"""Sweeps: sweep files, grids, running many experiments through executors, background sweeps and estimates."""
