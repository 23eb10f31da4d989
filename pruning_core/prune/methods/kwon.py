"""Kwon et al.: retraining-free structured pruning of attention heads and FFN neurons.

Woosuk Kwon, Sehoon Kim, Michael W. Mahoney, Joseph Hassoun, Kurt Keutzer, Amir Gholami.
"A Fast Post-Training Pruning Framework for Transformers", NeurIPS 2022.

The pipeline reads as in their `main`: gradients -> search -> rearrange -> rescale (stages 1-3 in
`kwon_search`, stage 4 in `kwon_tuning`).

1. Fisher information of the unit masks: per-example gradients g_n of the cross-entropy loss (with the
   calibration labels) w.r.t. all-ones head and neuron masks. Diagonal I_i = sum_n g_{n,i}^2 ranks the
   units; per layer the full blocks F_l = sum_n g_{n,l} g_{n,l}^T (heads H x H, neurons F x F) give
   the second-order loss increase z^T F_l z of pruning the units marked in z (z = 1 - mask).
2. Mask search (their Algorithm 1): for every number h of heads kept, keep the h heads of largest
   Fisher over the whole model, spend the FLOPs left on the f neurons of largest Fisher, and pick the
   (h, f) whose pruned units carry the least Fisher in total. The FLOPs budget is
   (1 - budget) * dense encoder FLOPs at the calibration set's average length, never exceeded.
3. Mask rearrangement: per layer and unit kind, the number of kept units fixed, swap one kept and one
   pruned unit while the swap lowers z^T F_l z (the best swap each time, its change in closed form:
   F_pp + F_kk - 2 F_pk - 2 (F z)_p + 2 (F z)_k for pruned p becoming kept and kept k becoming pruned).
4. Mask tuning: layer by layer, attention then FFN, real-valued scales s of the kept units minimise
   || x' + b + sum_u s_u c_u(x') - (x + sublayer_dense(x)) ||^2 over real calibration tokens, where x is
   the dense model's input to the sub-layer, x' the pruned-and-tuned model's, b the output bias and
   c_u the unit's contribution to the sub-layer output (head h: ctx_h W_o[:, h]^T, neuron j:
   a_j W_2[:, j]): the LayerNorm input of the pruned sub-layer matches the dense one. Scales are clamped
   to [-10, 10] as in the paper and folded into the columns of the output projection
   (the attention and FFN output projections). A scale vector that would raise the error is not applied.

Deviations from the paper and its code, on purpose:
- per-example gradients (one mask per example in a batched backward), where their code keeps one
  gradient per mini-batch;
- the search starts at h = 0 heads and skips head counts whose FLOPs alone exceed the budget (their
  loop may return a mask over budget); the neuron count is capped at the number of neurons;
- rearrangement by best-improving swaps of one kept and one pruned unit (at most `rearrange_steps`
  per layer and kind); their code does one greedy pass that inserts units in Fisher order and drops
  the unit whose removal leaves the smallest ||sum of pruned gradients||^2 -- the same objective;
- mask tuning solves the normal equations directly with a ridge towards s = 1 of
  `damping * mean(diag)` (their code runs LSMR on the normal equations with damp = 1 around s = 1);
  statistics in float64, pad tokens left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pruning_core.model.arch import arch_of
from pruning_core.prune.methods.base import StructuredMethod, knob
from pruning_core.prune.methods.kwon_search import mask_gradients, pruned_loss, rearrange, search
from pruning_core.prune.methods.kwon_tuning import fold_scales, tune_masks
from pruning_core.prune.structured.structure import StepRecord, Structure, head_flops, neuron_flops


@dataclass(frozen=True)
class KwonOptions:
    rearrange: bool = knob(True, "Mask rearrangement",
                           "per layer, swap kept and pruned units while the swap lowers the second-order loss "
                           "estimate (full Fisher block of the layer)")
    rearrange_steps: int = knob(100, "Swaps per layer and unit kind (at most)", ge=0, ui_max=100_000,
                                shown_when={"rearrange": True})
    rescale: bool = knob(True, "Mask tuning (least-squares rescaling)",
                         "layer by layer, scales of the kept units fitted so each pruned sub-layer's LayerNorm "
                         "input matches the dense one; folded into the output projection")
    damping: float = knob(1e-2, "Tuning ridge (× mean diag)", "ridge of the rescaling towards scale 1",
                          ge=0, ui_max=100.0, format="%.3f", shown_when={"rescale": True})


# -- the method ------------------------------------------------------------------------------------

class Kwon(StructuredMethod):
    name = "kwon"
    paper = "Kwon et al., A Fast Post-Training Pruning Framework for Transformers (NeurIPS 2022)"
    Options = KwonOptions
    colour = "#BCBD22"

    def prune_structured(self, ctx):
        model, opts = ctx.model, ctx.options
        model.eval()
        full = Structure.full(model.config)
        n_layers = full.heads.shape[0]
        d, s = arch_of(model).hidden_size(model), ctx.seq_len
        dense_flops = full.flops(s)
        batches = list(ctx.batches())
        total = 3 + (2 * n_layers if opts.rescale else 0)
        log: list[dict] = []

        fisher = mask_gradients(model, batches, full)
        ctx.report(StepRecord(1, total, f"Fisher information of {len(fisher.heads)} examples", 1.0))

        head_imp, neuron_imp = fisher.diagonal()
        heads, neurons, objective = search(head_imp, neuron_imp, head_flops(d, full.head_dim, s), neuron_flops(d, s),
                                           (1 - ctx.budget) * dense_flops)
        structure = full.replace(heads=heads, neurons=neurons)
        kept = structure.flops(s) / dense_flops
        log.append({"stage": "search", "heads_kept": int(heads.sum()), "neurons_kept": int(neurons.sum()),
                    "pruned_fisher": objective, "flops_kept": kept})
        ctx.report(StepRecord(2, total, f"mask search: {int(heads.sum())} heads, {int(neurons.sum())} neurons kept",
                              kept))

        layers = [{"layer": i, "heads_kept": int(heads[i].sum()), "neurons_kept": int(neurons[i].sum())}
                  for i in range(n_layers)]
        if opts.rearrange:
            for i in range(n_layers):
                for kind, keep in (("heads", heads), ("neurons", neurons)):
                    block = fisher.block(kind, i)
                    before = pruned_loss(keep[i], block)
                    keep[i], swaps = rearrange(keep[i], block, opts.rearrange_steps)
                    layers[i] |= {f"{kind}_swaps": swaps, f"{kind}_fisher_before": before,
                                  f"{kind}_fisher_after": pruned_loss(keep[i], block)}
            structure = full.replace(heads=heads, neurons=neurons)
        ctx.report(StepRecord(3, total, "mask rearrangement", kept))

        if opts.rescale:
            def progress(layer, kind):
                step = 4 + 2 * layer + (kind == "neurons")
                name = "attention" if kind == "heads" else "FFN"
                ctx.report(StepRecord(step, total, f"layer {layer} {name}: mask tuning", kept))

            masks, tuned = tune_masks(model, structure, batches, opts.damping, progress)
            fold_scales(model, masks)
            for entry, extra in zip(layers, tuned):
                entry |= extra
        log.extend(layers)
        return structure, log
