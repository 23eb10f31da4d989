"""Plotly figure builders (and the escaped HTML of adversarial examples): pure functions of results,
testable without Streamlit.

One module per kind of view (see each module); every name is importable from `dashboard.charts`."""

from __future__ import annotations

from dashboard.charts.common import (  # noqa: F401
    KIND_COLORS,
    CALIB_COLOR,
    HELDOUT_COLOR,
    _sequential,
    METHOD_COLORS,
    OTHER_COLORS,
    DENSE_COLOR,
    PATTERN_SYMBOLS,
    KEEP_SCALE,
    _array,
    _mask_array,
    _own_colour,
    method_colors,
    _keep_grid,
)
from dashboard.charts.accessors import (  # noqa: F401
    run_heldout_error,
    FLOPS_HELP,
    is_structured,
    flops_reduction,
    intermediate_size,
    _flops_value,
)
from dashboard.charts.errors import (  # noqa: F401
    LOCAL_HELP,
    CUM_HELP,
    HELDOUT_HELP,
    LOSS_HELP,
    local_error_bars,
    cumulative_error_line,
    has_refine_loss,
    refine_loss_lines,
)
from dashboard.charts.masks import (  # noqa: F401
    KEEP_HELP,
    ZOOM_HELP,
    PROFILE_HELP,
    HIST_HELP,
    TOY_HELP,
    DEPTH_HELP,
    downsample_mask,
    mask_heatmap,
    mask_zoom,
    keep_profiles,
    weight_histogram,
    toy_masks,
    depth_chart,
    stored_histogram,
)
from dashboard.charts.sweeps import (  # noqa: F401
    _run_label,
    _by_label,
    _style,
    point_runs,
    seed_point,
    sweep_curves,
    heldout_curves,
    prune_time_bars,
    ROBUSTNESS_MEASURES,
    robustness_curves,
    flops_curves,
)
from dashboard.charts.cards import (  # noqa: F401
    HIGHLIGHT_ORIGINAL,
    HIGHLIGHT_PERTURBED,
    highlight_html,
    RESULT_COLORS,
    RESULT_HELP,
    adversarial_example_html,
    log_tables,
)
from dashboard.charts.structure import (  # noqa: F401
    HEAD_HELP,
    NEURON_HELP,
    HIDDEN_HELP,
    STEP_LOSS_HELP,
    head_grid,
    neuron_map,
    hidden_strip,
    kept_per_layer_bars,
    training_loss_line,
)
from dashboard.charts.speed import (  # noqa: F401
    SPEED_PANELS,
    speed_values,
    speed_bars,
    speed_caption,
)
