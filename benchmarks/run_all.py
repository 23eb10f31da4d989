"""Run every benchmark and print its table: `make bench`."""

import runpy
import sys

for name in ("bench_sst2", "bench_methods", "bench_sparsity", "bench_dashboard", "bench_robustness",
             "bench_reconstruction"):
    print(f"\n=== {name} ===", flush=True)
    sys.argv = [name]
    runpy.run_module(f"benchmarks.{name}", run_name="__main__")
