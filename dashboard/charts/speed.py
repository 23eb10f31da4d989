"""Measured speed of a run against its dense model: bars and a caption."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.accessors import flops_reduction, is_structured
from dashboard.charts.common import DENSE_COLOR, method_colors
from dashboard.charts.common import tidy_builders


SPEED_PANELS = (("weights removed", "fraction of weights that are zero or removed"),
                ("FLOPs executed<br>(× dense)", "multiply-adds the kernels actually run, relative to the dense model"),
                ("latency (ms)<br>batch {b0}", "median time of one forward pass; lower is faster"),
                ("throughput (seq/s)<br>batch {b1}", "sequences per second at the larger batch; higher is faster"))


def speed_values(measurement: dict, record: dict) -> dict[str, tuple[float | None, float | None]]:
    """(dense, pruned) per panel of `speed_bars`: achieved sparsity, FLOPs executed relative to dense
    (structured: the smaller model's count; unstructured and N:M zeros run on dense kernels: 1, None where
    semi-structured kernels ran), latency (ms) and throughput (sequences/s)."""
    dense, run = measurement["rows"][0], measurement["rows"][1]
    if dense.get("flops") and run.get("flops") is not None:
        flops = run["flops"] / dense["flops"]
    else:
        flops = None if measurement.get("semi_structured") else 1.0
    sparsity = run.get("sparsity")
    if sparsity is None:
        sparsity = record.get("achieved_sparsity")
    return {"sparsity": (0.0, sparsity), "flops": (1.0, flops), "latency": (dense["latency_ms"], run["latency_ms"]),
            "throughput": (dense["throughput"], run["throughput"])}


def speed_bars(measurement: dict, record: dict) -> go.Figure:
    """Dense vs pruned side by side: weights removed, FLOPs executed, latency and throughput, from a
    `speed.measure_run` measurement and the run's record. Dense is gray, the pruned model its method's colour."""
    values = speed_values(measurement, record)
    b0, b1 = measurement["batch_sizes"]
    method = record["config"]["method"]
    color = method_colors([method])[method]
    titles = [t.format(b0=b0, b1=b1) for t, _ in SPEED_PANELS]
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.07)
    fmts = (".3f", ".3f", ".1f", ".0f")
    for i, ((name, (d, p)), (_, help_), fmt) in enumerate(zip(values.items(), SPEED_PANELS, fmts), start=1):
        fig.add_bar(x=["dense", method], y=[d, p], marker_color=[DENSE_COLOR, color], showlegend=False,
                    name=titles[i - 1], text=[None if v is None else format(v, fmt) for v in (d, p)],
                    textposition="auto", row=1, col=i,
                    hovertemplate=f"%{{x}}: %{{y:{fmt}}}<extra>{help_}</extra>")
    fig.update_layout(title=f"Sparsity is not speed: dense vs {method}, measured on {measurement['device']} "
                            f"({measurement['threads']} threads, {measurement['seq_len']} tokens)",
                      margin=dict(t=100, b=30), height=380)
    return fig


def speed_caption(measurement: dict, record: dict) -> str:
    """One sentence on what the measurement shows: speed follows removed FLOPs, not zeros."""
    v = speed_values(measurement, record)
    (d_lat, p_lat), (d_thr, p_thr) = v["latency"], v["throughput"]
    sparsity = v["sparsity"][1] or 0.0
    speed = f"speed-up ×{d_lat / p_lat:.2f} in latency, ×{p_thr / d_thr:.2f} in throughput"
    if is_structured(record):
        return (f"**Sparsity is not speed.** This model is physically smaller: {flops_reduction(record):.0%} of the "
                f"FLOPs removed and {sparsity:.0%} of the encoder weights, so it runs on smaller dense matrices "
                f"({speed}).")
    if measurement.get("semi_structured"):
        return (f"**Sparsity is not speed.** {sparsity:.0%} of the weights are zero in a 2:4 pattern, run here on "
                f"semi-structured sparse kernels ({speed}).")
    return (f"**Sparsity is not speed.** {sparsity:.0%} of the weights are zero, but the zeros are still stored and "
            f"multiplied by dense kernels, so the model does the same work ({speed}, i.e. within measurement "
            "noise). Removing whole heads, neurons or channels (kprune, kwon, pat) makes the matrices smaller, and "
            "that is what runs faster.")


tidy_builders(globals())  # every figure: wrapped titles, tooltips inside their box, 1e-15 ticks
