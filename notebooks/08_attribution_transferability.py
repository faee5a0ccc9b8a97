# %% [markdown]
# # 08 · Deep model transferability from attribution maps, on a mini-Taskonomy built here
#
# **Song, Chen, Wang, Shen & Song, "Deep Model Transferability from Attribution Maps", NeurIPS 2019**
# ([paper](https://proceedings.neurips.cc/paper/2019/hash/e94fe9ac8dc10dd8b9a239e6abee2848-Abstract.html),
# [code](https://github.com/zju-vipa/TransferbilityFromAttributionMaps)).
#
# Which trained model should a new task start from? Taskonomy (Zamir et al., 2018) answered by brute force:
# transfer every model to every task and measure. Song et al. answer without training anything: take a few
# **unlabeled probe images**, ask each model *which pixels its representation depends on* (an attribution map
# of the sum of its encoder's output with respect to the input), and call two models close when their maps
# agree. The affinity of models $i$ and $j$ is the mean cosine of their maps over $N$ probes,
#
# $$S(m_i, m_j) = \frac{1}{N}\sum_{n=1}^N \cos\big(A_i(x_n), A_j(x_n)\big),$$
#
# and for a target task the sources are ranked by their affinity with the target's model. The paper's claims:
# the ranking recovers Taskonomy's (precision at 1 of about .72<!-- paper --> to .83<!-- paper -->, against .26<!-- paper --> for chance); gradient × input
# is at least as good as saliency; probes from other domains (COCO, indoor scenes) work as well as images of the
# task bank's own domain; and it is orders of magnitude faster than transferring.
#
# We build the whole experiment here, small: a **mini-Taskonomy** of models that share one encoder
# architecture, each trained on one task over the same rendered rooms (the zoo's `taskonomy32-*` entries), a
# **ground truth** computed by the accepted protocol (every frozen encoder transferred to every target task), the
# paper's three attribution methods written with autograd (and checked against Captum), and, beyond the paper,
# the estimators a user would pick today, side by side on the same zoo.
#
# **What you will see**
#
# 1. The mini-Taskonomy: 10 tasks on 32×32 `scenes` (9 targets, colorization source-only), the zoo's models and
#    their held-out metrics; the three probe sets.
# 2. The ground truth: 81 transfers of frozen encoders with small trained heads, timed; and a second, independent
#    run of the same transfers, which measures the ground truth's own noise (the best any estimator can reach).
# 3. Saliency, gradient × input and ε-LRP, by autograd; ε-LRP = gradient × input on this ReLU network (a
#    check); Captum's implementations on the same encoder (and why its LRP needs the sum written as layers).
# 4. The affinity matrices, clustered into a task tree, and attribution maps of probe images.
# 5. RSA and linear CKA; the label-based estimators, each as its authors define it (LogME, H-score, TransRate, GBC,
#    N-LEEP, SFDA, PARC, ETran; their library forms as an ablation) and LEEP; and a **target-agnostic baseline**
#    that ranks each source by how it transferred to the *other* targets, knowing nothing of the target.
# 6. P@K and R@K for every K, per-target Spearman and weighted Kendall τ with 90 %<!-- fixed --> bootstrap intervals (over the
#    probe images and the targets), every estimator against the target-agnostic baseline and beside the ground
#    truth's own ceiling, top-1 regret, random and oracle baselines, the wall-clock ratio against brute force, the
#    paper's numbers side by side; claims checked against this run.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 08 -p PROBE_IMAGES 16` (fewer probes: how few are enough?). Values that depend on
# them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, under 2 minutes, 10 tasks at 32x32; "full": 18 tasks at 64x64 (GPU)
SEED: int = 0  # seed of the transfer heads; a second run with SEED + 1 measures the ground truth's noise
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "scenes"  # "scenes" (rendered rooms with every label); the only data set wired up here
TEACHERS: str = "zoo"  # "zoo": the task models shipped in zoo/; "train": retrain them here with the zoo's recipe
PROBE_IMAGES: int = 0  # probe images per probe set; 0 for the profile's (64 quick, 500 full)
RESAMPLES: int = 300  # bootstrap resamples (of the probe images and of the targets) behind every 90 % interval

# %%
from kae_utils.benchmarks import taskonomy
from kae_utils.core.params import check_common_parameters, check_number

SUPPORTED_DATASETS = ("scenes",)
check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_number("PROBE_IMAGES", PROBE_IMAGES, integer=True, minimum=0)  # 0: the profile's number
check_number("RESAMPLES", RESAMPLES, integer=True, minimum=50)

NOTEBOOK = "08_attribution_transferability"
CFG = taskonomy.settings(PROFILE)  # tasks, sizes, encoder and transfer settings (kae_utils.benchmarks.taskonomy)
CFG["gt_seeds"] = [SEED] if PROFILE == "quick" else [SEED, SEED + 1]
CFG["second_run_seed"] = SEED + 1  # the run that measures the ground truth's noise (the full profile's 2nd seed)
CFG["probes"] = PROBE_IMAGES or CFG["probes"]
SOURCES, TARGETS = list(CFG["sources"]), list(CFG["targets"])
RELEVANT = taskonomy.relevant_count(len(SOURCES) - 1)  # the paper: top 5 of the 19 other models
for name in ("image_size", "sources", "targets", "probes", "target_train", "target_val", "transfer", "gt_seeds",
             "second_run_seed"):
    print(f"{name:>13}: {CFG[name]}")
print(f"     relevant: the best {RELEVANT} of the {len(SOURCES) - 1} other models, per target")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the zoo, `runs/`) are resolved from the repository root by
# `kae_utils`, so the notebook runs from any working directory.

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy.cluster import hierarchy
from threadpoolctl import threadpool_limits
from torch import nn

from kae_utils import zoo
from kae_utils.benchmarks.tasks import TRANSFER_TASKS
from kae_utils.evaluation.results import Claim, Effect, check_claims, mean_std, write_metrics
from kae_utils.methods import transferability as tr
from kae_utils.methods.transferability import ranking as rk
from kae_utils.methods.transferability.harness import (
    ceiling_ranking,
    ci,
    draws_from,
    evaluate_ranking,
    first_picks,
    oracle_curves,
    pair_matrices,
    scores_from,
    table_row,
)
from kae_utils.models import Add, build_task_encoder
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics

device = setup_notebook(SEED, DEVICE)
THREADS = 1 if device.type == "cpu" else None  # torch threads for the transfers (kae_utils.benchmarks.taskonomy.transfer_losses)
BLAS_THREADS = 1 if device.type == "cpu" else None  # NumPy's for the estimators: small matrices, one thread is faster
print("device type:", device.type)
print(numerics.describe())  # bf16 autocast where the hardware runs it natively; KAE_PRECISION=fp32 forces float32

# %% [markdown]
# ## The mini-Taskonomy
#
# Taskonomy's task bank is 20 networks with one encoder architecture (ResNet-50, a 16×16×8 representation of a
# 256×256 image), each trained on one task over the same indoor images; colorization and inpainting are only
# sources (the paper ranks 19 sources for each of 18 targets). Ours is the same construction on the offline
# `scenes` renderer, which gives every label of a rendered room exactly:
#
# | cluster | tasks (quick) | Taskonomy's |
# |---|---|---|
# | 2D | autoencoding, denoising, 2D edges, colorization (source only) | autoencoder, denoise, edge2d, colorization, keypoint2d, inpainting |
# | 3D | occlusion edges, depth, normals, reshading | edge3d, rgb2depth, rgb2sfnorm, reshade, curvature, keypoint3d, ... |
# | semantic | segmentation, largest object class (one label per image) | segmentsemantic, class_1000, class_places |
#
# The full profile adds 2D keypoints, albedo, euclidean depth, curvature, the layout (the camera), foreground,
# the object count and inpainting (18 models, 16 targets). Every model is a `TaskNet` (`kae_utils.models`): an
# encoder of conv–BN–ReLU stages with a residual block, down to an 8×8×8 representation, and a small decoder for
# its task. The representation ends, as Taskonomy's does, with BatchNorm and a ReLU (it is non-negative). The
# ReLUs are separate modules, not in-place, and the residual sum is an `Add` module, so Captum's LRP can run on it. The models are zoo entries, trained with labels on 4,096 scenes of their own (a seed no
# notebook uses) and scored on the next 256.
#
# This notebook's own data (seed 0, never seen by the zoo): a **target set** of 128 labelled scenes for the
# transfers and the label-based estimators, 128 more to score the transfers, and three **probe sets** of 64
# unlabeled images each: held-out scenes of the zoo's domain (`in-domain`, the paper's Taskonomy probes), the same
# scenes rendered in the `textured` domain (`shifted`: other light, colours and surface textures, the same rooms;
# the paper's indoor scenes) and `shapes` images (`out-of-domain`: flat shapes on patterned grounds, no room at
# all; the paper's COCO).

# %%
SIZE = CFG["image_size"]
ranges = taskonomy.notebook_ranges(PROFILE)
target_train, target_val = taskonomy.target_sets(PROFILE)
PROBE_SETS = list(taskonomy.PROBE_SETS)
probes = {name: taskonomy.probe_images(name, PROFILE, n=CFG["probes"]) for name in PROBE_SETS}
print(f"target set: {len(target_train)} scenes to train the transfers on, {len(target_val)} to score them "
      f"({SIZE}x{SIZE}); inputs {sorted(target_train.inputs)}")
print("probe sets:", {name: tuple(x.shape) for name, x in probes.items()})

# %% tags=["nbval-ignore-output"]
scene = taskonomy.transfer_split(SOURCES, ranges["target-train"][0], 1, image_size=SIZE)
fig, axes = plt.subplots(2, max(6, (len(SOURCES) + 3) // 2), figsize=(13, 4.6))
for ax in axes.flat:
    ax.axis("off")
for ax, task in zip(axes.flat, ["input", *SOURCES], strict=False):
    if task == "input":
        ax.imshow(scene.inputs["clean"][0].permute(1, 2, 0).numpy())
        ax.set_title("image", fontsize=8)
        continue
    spec, label = TRANSFER_TASKS[task], scene.labels[task]
    if spec.dense:
        ax.imshow(spec.colorize(label)[0], interpolation="nearest")
    else:
        ax.text(0.5, 0.5, f"{int(label[0])}: {('floor', 'wall', 'sphere', 'box', 'cylinder', 'cone', 'torus')[int(label[0])]}"
                if task == "largest_class" else str(label[0].tolist()), ha="center", va="center", fontsize=9)
    corruption = taskonomy.TASKONOMY_TASKS[task].corruption
    ax.set_title(f"{task}" + (f"\n(input {corruption})" if corruption != "clean" else ""), fontsize=8)
fig.suptitle("one scene of the target set and every task's label", fontsize=10)
fig.tight_layout()
plt.show()

fig, axes = plt.subplots(len(PROBE_SETS), 8, figsize=(10, 4.2))
for row, name in enumerate(PROBE_SETS):
    for col in range(8):
        axes[row, col].imshow(probes[name][col].permute(1, 2, 0).numpy())
        axes[row, col].axis("off")
    axes[row, 0].set_title(name, fontsize=9, loc="left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The task models (the zoo)
#
# Loaded from the zoo (hash-checked; `TEACHERS = "train"` retrains them here with the same recipe, a few minutes
# on a CPU). Their held-out metrics are on the zoo's own 256 held-out scenes, under each task's input corruption.

# %% tags=["nbval-ignore-output"]
NAMES = {task: taskonomy.zoo_name(task, PROFILE) for task in SOURCES}
models = {task: zoo.obtain(name, TEACHERS, device) for task, name in NAMES.items()}
encoders = {task: model.encoder for task, model in models.items()}
print("task models:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
rows = []
for row in zoo.summary(NAMES.values()):
    task = next(t for t, n in NAMES.items() if n == row["entry"])
    metric = next(k for k in row if k.startswith("held-out"))
    rows.append({"task": task, "cluster": taskonomy.TASKONOMY_TASKS[task].cluster,
                 "role": "target" if task in TARGETS else "source only", "entry": row["entry"],
                 "held-out metric": f"{metric[len('held-out '):]} = {row[metric]:.3f}" if row[metric] is not None else "",
                 "parameters": row["parameters"]})
print(f"encoder parameters (every model): {sum(p.numel() for p in encoders[SOURCES[0]].parameters()):,}")
pd.DataFrame(rows).set_index("task")

# %% [markdown]
# ## The ground truth: every encoder transferred to every task
#
# Taskonomy's protocol, the one its authors point users to (StanfordVL/taskonomy#6): freeze each source encoder,
# train a small **transfer function** on its representation with a little labelled data of the target task, and
# rank the sources of each target by the held-out loss (lower is better). Our transfer function is a 3×3
# convolution (16 channels), a ReLU and a 1×1 convolution on the 8×8 representation, predicting the labels at that
# grid (area-averaged; class maps by nearest neighbour, edges by max-pooling; for an image-level target: global
# average pooling, then a linear layer), trained full-batch with Adam for 150 steps on the 128 target scenes, and
# scored on the other 128 with the target task's own loss. On a CPU they run on one thread (small tensors: faster). Every source of a target starts from the same initial head;
# the heads of one source are trained in one loop on the sum of their losses (Adam updates each parameter from
# its own gradient, so this is exactly independent training: tested in `tests/test_taskonomy.py`). A model is
# not transferred to its own task: 10 sources × 9 targets − 9 = 81 transfers.
#
# As a reference (not a candidate), the same transfers from an encoder with **random weights** show what a
# transfer achieves without any training of the encoder.

# %% tags=["nbval-ignore-output"]
# every encoder transferred to every other task, once per seed of the transfer heads; GT = the mean loss
GT, gt_runs = taskonomy.ground_truth(encoders, TARGETS, target_train, target_val, CFG["transfer"], CFG["gt_seeds"],
                                     device, threads=THREADS)
GT_SECONDS = gt_runs[0].total_seconds  # the cost of one ground truth: every transfer once
print(f"ground truth: the mean of {len(gt_runs)} runs of the transfers (seeds {CFG['gt_seeds']})")
random_encoder = build_task_encoder(CFG["widths"], CFG["code_channels"], CFG["blocks"], seed=999).to(device)
reference = taskonomy.transfer_losses({"random weights": random_encoder}, TARGETS, target_train, target_val,
                                      taskonomy.TransferSetting(**CFG["transfer"], seed=SEED), device,
                                      desc="random-weights reference", threads=THREADS)
print(f"{sum(len(v) for v in GT.values())} transfers per seed, {GT_SECONDS:.1f} s for one seed "
      f"({GT_SECONDS / sum(len(v) for v in GT.values()) * 1000:.0f} ms per transfer)")

# %% [markdown]
# Per target: the best source by the held-out loss, its loss, the worst source's, and the random-weights
# encoder's (the table's columns are sorted per target, best first).

# %% tags=["nbval-ignore-output"]
best_rows = []
for t in TARGETS:
    order = sorted(GT[t], key=GT[t].get)
    best_rows.append({"target": t, "best source": order[0], "2nd": order[1], "3rd": order[2], "worst": order[-1],
                      "loss of best": GT[t][order[0]], "loss of worst": GT[t][order[-1]],
                      "random weights": reference.losses[t]["random weights"]})
gt_table = pd.DataFrame(best_rows).set_index("target")
gt_table.round(4)

# %%
beats_random = {t: min(GT[t].values()) < reference.losses[t]["random weights"] for t in TARGETS}
print(f"targets whose best source transfers better than random weights: {sum(beats_random.values())} of {len(TARGETS)}")

# %% [markdown]
# ### The ground truth's own noise
#
# The transfers are trained from random initial heads, and a different seed gives somewhat different held-out
# losses: the ranking an estimator is scored against is itself noisy. A **second, independent run** of every
# transfer (the heads seeded with `SEED + 1`; the full profile's ground truth averages both runs) measures how
# much: per target, the Spearman correlation between the two runs' rankings. It is the **ceiling** of this
# experiment: no estimator can be expected to agree with one run better than another run of the same transfers
# does. It is shown beside every estimator's score below, as the amalgamation notebooks show their supervised
# ceiling.

# %% tags=["nbval-ignore-output"]
ceiling = taskonomy.transfer_ceiling(gt_runs, encoders, TARGETS, target_train, target_val, CFG["transfer"],
                                     CFG["second_run_seed"], device, threads=THREADS)  # run 2 scored against run 1
second_run, FIRST_RUN, CEILING_SCORES, CEILING = ceiling.second_run, ceiling.first_run, ceiling.scores, ceiling.spearman
print("Spearman between two independent runs of the transfers, per target:", {t: round(v, 2) for t, v in CEILING.items()})
print(f"mean {np.mean(list(CEILING.values())):.2f}; the second run's first pick is among the first run's best "
      f"{RELEVANT} for {rk.precision_recall_at_k(CEILING_SCORES, FIRST_RUN, RELEVANT, [1])[1][0] * len(TARGETS):.0f} "
      f"of {len(TARGETS)} targets")


# %% [markdown]
# ## The paper's method: attribution maps of the encoder
#
# For a model with encoder $E$ and a probe image $x$, Song et al. attribute the scalar $S(x) = \sum E(x)$ (the
# sum of every element of the representation: what DeepExplain differentiates when it is handed a tensor) to
# the input pixels, with three methods, and average the map over the colour channels:
#
# - **saliency**: $A(x) = \left|\partial S / \partial x\right|$;
# - **gradient × input**: $A(x) = x \odot \partial S / \partial x$;
# - **ε-LRP**: layer-wise relevance propagation with the ε-rule, $\varepsilon = 10^{-4}$. DeepExplain (which the
#   authors used) computes it as gradient × input with every nonlinearity's derivative $f'(z)$ replaced by
#   $f(z) / (z + \varepsilon\,\mathrm{sign}\,z)$ (Ancona et al., 2018). For a ReLU, $f(z)/z$ is 1 for $z > 0$ and 0
#   otherwise, which *is* its derivative: on a ReLU network ε-LRP equals gradient × input up to ε. The paper's
#   ε-LRP and gradient × input curves coincide for that reason, and we show it as a check, not as a finding.
#
# The three, with autograd, on an encoder in eval mode (BatchNorm with its running statistics, so the images of a
# batch do not interact, and the gradient of the batch's total is each image's own gradient):

# %%
def input_gradient(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """dS/dx for S = the sum of the encoder's output, per image."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(encoder(x).sum(), x)
    return grad


def saliency(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Saliency: the magnitude of dS/dx, averaged over the colour channels."""
    return input_gradient(encoder, x).abs().mean(dim=1)


def gradient_x_input(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Gradient × input: dS/dx times x, averaged over the colour channels."""
    return (input_gradient(encoder, x) * x).mean(dim=1)


# %% [markdown]
# ε-LRP, as DeepExplain computes it: gradient × input through a copy of the encoder whose ReLUs pass the
# gradient back with the ε-rule:

# %%
class EpsilonReLU(torch.autograd.Function):
    """A ReLU whose backward pass is the epsilon rule: grad * relu(z) / (z + eps sign z)."""
    @staticmethod
    def forward(ctx, z, eps):
        ctx.save_for_backward(z)
        ctx.eps = eps
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        sign = torch.where(z >= 0, 1.0, -1.0)
        return grad * z.clamp_min(0) / (z + ctx.eps * sign), None


def epsilon_lrp(encoder: nn.Module, x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Gradient x input through a copy of the encoder whose ReLUs use the epsilon rule."""
    modified = copy.deepcopy(encoder)
    for module in modified.modules():
        if isinstance(module, nn.ReLU):
            module.forward = lambda z: EpsilonReLU.apply(z, eps)
    return (input_gradient(modified, x) * x).mean(dim=1)


METHODS = {"saliency": saliency, "gradient*input": gradient_x_input, "epsilon-lrp": epsilon_lrp}
for encoder in encoders.values():
    encoder.eval()


# %% [markdown]
# Two checks on the zoo's encoders and the in-domain probes: the notebook's functions give the same maps as
# `kae_utils.benchmarks.taskonomy.attribution_maps` (which notebook 09 uses), and ε-LRP equals gradient × input.

# %%
def map_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The cosine similarity of the maps `a` and `b`, per image (in float64)."""
    return nn.functional.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)


x_check = probes["in-domain"][:16].to(device)
same_as_library = all(
    torch.allclose(METHODS[m](enc, x_check), taskonomy.attribution_maps(enc, x_check, m), rtol=1e-4, atol=1e-7)
    for enc in encoders.values() for m in METHODS)
elrp_cosines = {eps: torch.cat([map_cosines(epsilon_lrp(enc, x_check, eps), gradient_x_input(enc, x_check))
                                  for enc in encoders.values()]) for eps in (1e-4, 1e-9)}
elrp_vs_gi = {eps: c.min().item() for eps, c in elrp_cosines.items()}
print("the notebook's maps equal kae_utils.benchmarks.taskonomy.attribution_maps:", same_as_library)
print("epsilon-LRP with eps = 1e-9 is gradient x input (every map's cosine > 0.99999):", elrp_vs_gi[1e-9] > 0.99999)
print("epsilon-LRP with eps = 1e-4 (the paper's) is close to it (every map's cosine > 0.99):", elrp_vs_gi[1e-4] > 0.99)

# %% tags=["nbval-ignore-output"]
print("smallest cosine between an epsilon-LRP map and its gradient x input map:",
      {eps: round(v, 6) for eps, v in elrp_vs_gi.items()})
print("median cosine:", {eps: round(c.median().item(), 6) for eps, c in elrp_cosines.items()},
      f"over {len(elrp_cosines[1e-4])} maps ({len(encoders)} models x {len(x_check)} probes)")

# %% [markdown]
# At $\varepsilon = 10^{-9}$ the two are the same maps. At the paper's $\varepsilon = 10^{-4}$ the check above
# (every map's cosine above 0.99<!-- fixed -->) does **not** hold: the median map is still the same (the cosines are printed above), but
# the worst of the 160, one probe of the normals model, is at 0.92<!-- m: checks.elrp_vs_gi_min_cosine["0.0001"] -->. The ε-rule damps a ReLU's gradient by
# $z / (z + \varepsilon)$, which matters only for pre-activations within a few ε of zero; likely the large flat regions of a
# rendered room, where a first-layer convolution gives values that small, and on a map whose total is small a
# few such units are enough to turn it. It changes little in the rankings (ε-LRP and gradient × input have nearly the
# same P@K and Spearman in the results below); "ε-LRP = gradient × input on a ReLU network" holds in the limit
# ε → 0, and only approximately at the paper's ε.

# %% [markdown]
# ### Captum as a cross-check
#
# Captum (pinned in `constraints.txt`) implements the three on the same encoder: `Saliency`, `InputXGradient`,
# and `LRP` with an ε-rule of $10^{-4}$ set on every layer (Captum's default ε is $10^{-9}$). Its LRP hooks every
# leaf module and has rules for convolutions, BatchNorm, pooling and its `Addition_Module`; our `Add` module gets
# the ε-rule by hand. It refuses in-place ReLUs and modules used twice, which the `TaskNet` encoder avoids.
#
# Two traps:
#
# 1. Captum's LRP starts the relevance at **one output neuron** and multiplies the propagated, normalised relevance
#    by that neuron's value. Handed `sum(encoder(x))` as a tensor operation after the last layer, it starts every
#    element of the representation at the *total*, and the maps come out wrong. Written as layers (a 1×1
#    convolution of ones and an average pool: the sum up to a constant, which a cosine ignores), LRP starts from
#    the sum itself.
# 2. **Where ε goes.** DeepExplain's ε-LRP (the paper's) adds ε only at the nonlinearities; Captum's `EpsilonRule`
#    adds it in every linear layer's denominator (convolutions, BatchNorm, pooling, the residual sum). With
#    $\varepsilon \to 0$ both are exactly gradient × input; at $\varepsilon = 10^{-4}$ each absorbs relevance where
#    its own layers' pre-activations are tiny, and the two maps differ somewhat.

# %%
from captum.attr import LRP, InputXGradient, Saliency
from captum.attr._utils.lrp_rules import EpsilonRule


class SumAsTensorOp(nn.Module):
    """The encoder followed by the sum of its output as a tensor operation.

    Captum's LRP cannot see that sum as a layer, so its rules stop at the encoder's output.
    """
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1).sum(1)


class SumAsLayers(nn.Module):
    """The encoder followed by its sum written as layers: sum(E(x)) = h * w * mean over the grid of a 1x1 convolution of ones."""
    def __init__(self, encoder: nn.Module, channels: int) -> None:
        super().__init__()
        self.encoder, self.ones, self.pool = encoder, nn.Conv2d(channels, 1, 1, bias=False), nn.AdaptiveAvgPool2d(1)
        nn.init.ones_(self.ones.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.ones(self.encoder(x)))


def captum_lrp(wrapper: nn.Module, x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Captum's epsilon-LRP of the wrapped encoder's sum, averaged over the colour channels."""
    wrapper = copy.deepcopy(wrapper).eval()
    for module in wrapper.modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, Add)):
            module.rule = EpsilonRule(epsilon=eps)
    return LRP(wrapper).attribute(x.clone().requires_grad_(True)).mean(dim=1)


captum_rows = []
for task, enc in encoders.items():
    x = x_check.clone().requires_grad_(True)
    ours = {m: METHODS[m](enc, x_check) for m in METHODS}
    layers = SumAsLayers(enc, CFG["code_channels"])
    captum_rows.append({
        "model": task,
        "Saliency vs saliency": map_cosines(Saliency(SumAsTensorOp(enc)).attribute(x, abs=True).mean(1), ours["saliency"]).min().item(),
        "InputXGradient vs gradient*input": map_cosines(InputXGradient(SumAsTensorOp(enc)).attribute(x).mean(1), ours["gradient*input"]).min().item(),
        "LRP, sum as a tensor op, vs epsilon-LRP": map_cosines(captum_lrp(SumAsTensorOp(enc), x_check), ours["epsilon-lrp"]).mean().item(),
        "LRP (eps 1e-9) vs gradient*input": map_cosines(captum_lrp(layers, x_check, 1e-9), ours["gradient*input"]).min().item(),
        "LRP (eps 1e-4) vs epsilon-LRP (eps 1e-4)": map_cosines(captum_lrp(layers, x_check, 1e-4), ours["epsilon-lrp"]).min().item(),
    })
captum_table = pd.DataFrame(captum_rows).set_index("model")
print("Captum's Saliency and InputXGradient equal the notebook's (every map's cosine > 0.9999):",
      bool((captum_table.iloc[:, :2] > 0.9999).all().all()))
print("Captum's LRP with the sum as a tensor op is not the sum's LRP (mean cosine < 0.5 on every model):",
      bool((captum_table["LRP, sum as a tensor op, vs epsilon-LRP"] < 0.5).all()))
print("Captum's LRP with the sum as layers and eps = 1e-9 is gradient x input (every map's cosine > 0.9999):",
      bool((captum_table["LRP (eps 1e-9) vs gradient*input"] > 0.9999).all()))

# %% [markdown]
# Per model, the smallest cosine over 16 probes (the tensor-op column: the mean). The last column is where the two
# ε placements part.

# %% tags=["nbval-ignore-output"]
captum_table.round(4)


# %% [markdown]
# ### Affinities and rankings
#
# Every model's maps on every probe set, by each method; then the affinity of every pair (the mean cosine,
# `kae_utils.methods.transferability.label_free.attribution_affinity`). For a target, the estimator's score of a source is its
# affinity with the target's model. Each method's time on a probe set covers the attribution of every model and
# every pair: the whole estimate. These estimates take a fraction of a second, so each is timed three times and
# the median kept (a single run is at the mercy of whatever else this shared CPU is doing at that moment); the
# brute-force transfers are timed once.

# %% tags=["nbval-ignore-output"]
def timed(fn, *args, repeats: int = 1):
    """`fn(*args)` and its wall-clock seconds: the median of `repeats` runs (the output is the first run's)."""
    seconds, out = [], None
    for r in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        seconds.append(time.perf_counter() - start)
        out = result if r == 0 else out
    return out, float(np.median(seconds))


REPEATS = 3  # the cheap estimates are timed three times (the median): one hiccup of this shared CPU is not their cost


def all_maps(attribute, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The attribution maps of every model on the images `x`."""
    return {task: attribute(enc, x).cpu() for task, enc in encoders.items()}


MAPS, AFFINITY, TIMES, SCORES = {}, {}, {}, {}
for probe_set, x in probes.items():
    x = x.to(device)
    for method, attribute in METHODS.items():
        maps, t_maps = timed(all_maps, attribute, x, repeats=REPEATS)
        (matrix,), t_pairs = timed(pair_matrices, maps, SOURCES, tr.attribution_affinity, repeats=REPEATS)
        MAPS[probe_set, method], AFFINITY[probe_set, method] = maps, matrix
        TIMES[method, probe_set], SCORES[method, probe_set] = t_maps + t_pairs, scores_from(matrix, SOURCES, TARGETS)
print({k: f"{v:.2f} s" for k, v in TIMES.items()})

# %% [markdown]
# ### Resampling the probes
#
# How much of a ranking comes from the particular 64 probe images? For a bootstrap, each of `RESAMPLES` resamples
# draws 64 probes with replacement (seeded; the same draws for every estimator on a probe set, so that their
# comparisons are paired) and recomputes every pair's affinity on them. It is vectorised
# (`kae_utils.methods.transferability.label_free.resampled_affinity`: the per-probe cosines are computed once and each resample is a
# weighted mean of them) and costs a fraction of a second. The results section resamples the targets as well
# (`kae_utils.methods.transferability.ranking.ranking_bootstrap`), and every score gets a 90 %<!-- fixed --> interval: the 5th and the 95th percentile of
# its value over the resamples.

# %% tags=["nbval-ignore-output"]
PROBE_INDEX = {p: rk.bootstrap_indices(len(x), RESAMPLES, seed=SEED + 1000 + i) for i, (p, x) in enumerate(probes.items())}

DRAWS = {}
start = time.perf_counter()
for (probe_set, method), maps in MAPS.items():
    DRAWS[method, probe_set] = draws_from(tr.resampled_affinity([maps[s] for s in SOURCES], PROBE_INDEX[probe_set]),
                                          SOURCES, TARGETS)
print(f"{RESAMPLES} resamples of the probes for {len(DRAWS)} estimators in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ### The affinity matrix as a task tree
#
# Gradient × input on the in-domain probes, the tasks ordered by average-linkage clustering of $1 - S$ (Taskonomy
# draws its task tree the same way), next to the ground truth: for each target (row), the rank of each source's
# transfer (1 = best).

# %% tags=["nbval-ignore-output"]
A = AFFINITY["in-domain", "gradient*input"]
tree = hierarchy.linkage(1 - A[np.triu_indices(len(A), 1)], method="average")
order = hierarchy.leaves_list(tree)
ordered = [SOURCES[i] for i in order]
CLUSTER_COLOURS = {"2D": "tab:blue", "3D": "tab:green", "semantic": "tab:red"}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1.0, 1.2, 1.2]})
hierarchy.dendrogram(tree, labels=SOURCES, ax=axes[0], orientation="left", color_threshold=0,
                     above_threshold_color="k")
for label in axes[0].get_yticklabels():
    label.set_color(CLUSTER_COLOURS[taskonomy.TASKONOMY_TASKS[label.get_text()].cluster])
axes[0].set_title("task tree: 1 - affinity (gradient x input)", fontsize=9)
im = axes[1].imshow(A[np.ix_(order, order)], cmap="viridis")
axes[1].set_xticks(range(len(ordered)), ordered, rotation=90, fontsize=7)
axes[1].set_yticks(range(len(ordered)), ordered, fontsize=7)
axes[1].set_title("affinity S (in-domain probes), clustered", fontsize=9)
fig.colorbar(im, ax=axes[1], fraction=0.046)
ranks = np.full((len(TARGETS), len(SOURCES)), np.nan)
for r, t in enumerate(TARGETS):
    for k, s in enumerate(sorted(GT[t], key=GT[t].get)):
        ranks[r, SOURCES.index(s)] = k + 1
targets_ordered = [t for t in ordered if t in TARGETS]
im = axes[2].imshow(ranks[np.ix_([TARGETS.index(t) for t in targets_ordered], order)], cmap="viridis_r")
axes[2].set_xticks(range(len(ordered)), ordered, rotation=90, fontsize=7)
axes[2].set_yticks(range(len(targets_ordered)), targets_ordered, fontsize=7)
axes[2].set_xlabel("source", fontsize=8)
axes[2].set_ylabel("target", fontsize=8)
axes[2].set_title("ground truth: rank of each source's transfer", fontsize=9)
fig.colorbar(im, ax=axes[2], fraction=0.046)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Attribution maps of a few probes
#
# Gradient × input of five models on one probe of each set (red: the pixel raises the sum of the representation,
# blue: it lowers it; each map scaled to its own largest magnitude). Models of one cluster should look alike.

# %% tags=["nbval-ignore-output"]
SHOWN = [t for t in ("autoencoding", "edges2d", "depth", "normals", "segmentation", "colorization") if t in SOURCES][:5]
fig, axes = plt.subplots(len(PROBE_SETS), 1 + len(SHOWN), figsize=(1.9 * (1 + len(SHOWN)), 5.6))
for row, probe_set in enumerate(PROBE_SETS):
    index = 3
    axes[row, 0].imshow(probes[probe_set][index].permute(1, 2, 0).numpy())
    axes[row, 0].set_ylabel(probe_set, fontsize=9)
    for col, task in enumerate(SHOWN, start=1):
        m = MAPS[probe_set, "gradient*input"][task][index].numpy()
        top = np.abs(m).max() or 1.0
        axes[row, col].imshow(m, cmap="bwr", vmin=-top, vmax=top)
        if row == 0:
            axes[row, col].set_title(task, fontsize=9)
    for ax in axes[row]:
        ax.set_xticks([])
        ax.set_yticks([])
fig.tight_layout()
plt.show()


# %% [markdown]
# ## Beyond the paper: the estimators a user would pick today
#
# Two families, implemented in `kae_utils.methods.transferability` (none is on PyPI under its own name):
#
# - **model to model, no labels**, like the paper's: **RSA** (Spearman correlation of the two models'
#   dissimilarity matrices over the probes; Dwivedi & Roig 2019) and **linear CKA** (Kornblith et al. 2019), on
#   the representations of the same probe images, resampled with the probes as above
#   (`kae_utils.methods.transferability.label_free.resampled_rsa`, `resampled_linear_cka`).
# - **label-based** (next cells): they need no target *model* but labelled target data (here the 128 scenes the
#   transfers train on), and score a source's representation of them.

# %% tags=["nbval-ignore-output"]
def all_features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The encoder features of every model on the images `x`."""
    return {task: taskonomy.encoder_features(enc, x) for task, enc in encoders.items()}


RESAMPLED = {"RSA": tr.resampled_rsa, "linear CKA": tr.resampled_linear_cka}
for probe_set, x in probes.items():  # representations of the probes, then every pair
    feats, t_feats = timed(all_features, x, repeats=REPEATS)
    for name, fn in (("RSA", tr.rsa), ("linear CKA", tr.linear_cka)):
        (matrix,), t_pairs = timed(pair_matrices, feats, SOURCES, fn, repeats=REPEATS)
        AFFINITY[probe_set, name], TIMES[name, probe_set] = matrix, t_feats + t_pairs
        SCORES[name, probe_set] = scores_from(matrix, SOURCES, TARGETS)
        DRAWS[name, probe_set] = draws_from(RESAMPLED[name]([feats[s] for s in SOURCES], PROBE_INDEX[probe_set]),
                                            SOURCES, TARGETS)
print({f"{m} ({p})": f"{TIMES[m, p]:.2f} s" for m, p in TIMES if m in RESAMPLED})

# %% [markdown]
# ### The label-based estimators, each as its authors define it
#
# Each default is what the authors' released code computes (the docstrings in `kae_utils.methods.transferability` name
# the repository, file and commit; `tests/test_transferability.py` checks each against values computed with
# that code on tiny fixtures, degenerate ones included). Every estimator counts only the classes present in the
# labels, and higher means more transferable. With $f$ the features, $y$ the labels, $N$ samples and $D$
# dimensions:
#
# | estimator | what it computes (the authors' form, used in the tables) | reference code | other forms (ablation below) |
# |---|---|---|---|
# | **LogME** (You et al., ICML 2021) | $\frac1N \max_{\alpha,\beta} \log p(y \mid F, \alpha, \beta)$ of a Bayesian linear model, per indicator column of each class present (or per regression column), mean over columns; MacKay's updates (at most 11, stopped at 1 %<!-- fixed --> change of $\alpha/\beta$), the exact $\log\lvert\alpha I + \beta F^\top F\rvert$ | thuml/LogME `LogME.py` `_fit_icml` @56551ca | the later fixed point, the repository's default (drops $\frac{D-k}{2}\log\alpha$ when rank $k < D$); the same updates run to convergence (this project's earlier loop); one column per label value $0..\max y$ (this project's earlier bug) |
# | **H-score** (Bao et al. 2019; shrinkage of Ibrahim et al. 2022) | $\operatorname{tr}\big(\Sigma_a^{-1}(1-a)\operatorname{cov}(\mathbb E[f \mid y])\big)$, $\Sigma_a = (1-a)\Sigma + a\frac{\operatorname{tr}\Sigma}{D}I$, $a$ the Ledoit–Wolf coefficient | TLlib `tllib/ranking/hscore.py` `regularized_h_score` @efe6e33 | $a = 0.1$ fixed (this project's earlier form), $a = 0$ (Bao et al.) |
# | **TransRate** (Huang et al., ICML 2022) | $R(Z) - \sum_c \frac{n_c}{n} R(Z_c)$, $R(Z) = \frac{1}{2r}\sum_i \log(1 + \lambda_i/\varepsilon)$ over the eigenvalues of $Z^\top Z/n$, rows of the centred features scaled to norm 1, $r$ the rank, $\varepsilon = 10^{-4}$ | Long-Kai/TransRate `transrate.py` + `extract_result_utils.py` @247d41a | TLlib's: unnormalised, $\frac12\log\det(I + Z^\top Z/(n\varepsilon))$, classes averaged (this project's earlier form) |
# | **GBC** (Pándy et al., CVPR 2022) | $-\sum_{i \ne j} e^{-D_B(c_i, c_j)}$ between **spherical** class Gaussians after PCA to 64 dimensions, variances floored at $10^{-4}$ | google-research `stable_transfer/transferability/gbc.py` @1d4d2f1 + its config | diagonal Gaussians (this project's earlier form) |
# | **N-LEEP** (Li et al., CVPR 2021) | LEEP with the posteriors of a **full-covariance** Gaussian mixture of $5C$ components on the PCA (80 %<!-- fixed --> of the variance) of the features | google-research `stable_transfer/transferability/nleep.py` @4963f32 | diagonal covariances, $C$ components (this project's earlier form) |
# | **SFDA** (Shao et al., ECCV 2022) | mean true-class posterior of a shrunk Fisher discriminant, after ConfMix moves each sample towards the other classes' mean by the first discriminant's doubt | TencentARC/SFDA `metrics.py` `SFDA_Score` @3b7edf7 | — |
# | **PARC** (Bolya et al., NeurIPS 2021) | $100 \cdot$ Spearman between the samples' dissimilarities $1 - \operatorname{corr}$ in the feature space (PCA to 32, standardised) and in the one-hot label space | dbolya/parc `methods.py` @ddfca43 | — |
# | **ETran** (Gholami et al., ICCV 2023) | $0.15 \cdot \operatorname{minmax}(S_{en}) + 0.85 \cdot \operatorname{minmax}(S_{lda})$ over the candidates: the mean $\log\sum_d e^{f_d}$ of the 0.5 %<!-- fixed --> lowest samples, and the mean true-class posterior of the code's discriminant (the class-mean classifier) | mgholamikn/ETran `metrics.py`, `tw.py` @d4551ed | its two terms alone |
#
# LogME applies to every target (regression and classification); the others to the three categorical targets
# (segmentation, occlusion edges, largest class). For a dense target every location of the 8×8 representation
# is a sample (its 3×3 window of codes, what the transfer head's first convolution sees; labels taken at that
# grid; 8,192 of them drawn at random), as in pixel-level transferability studies; for an image-level target, the
# flattened representation (128 samples of 512 dimensions: more dimensions than samples). N-LEEP's mixture and
# PARC's $N \times N$ matrices are fitted on the first 2,048 and 1,024 of those samples (their cost grows as
# $N \cdot 5C \cdot d^2$ and $N^2$); PARC's own code subsamples above 15,000.

# %% tags=["nbval-ignore-output"]
CATEGORICAL = [t for t in TARGETS if taskonomy.categorical(t)]
NLEEP_SAMPLES, PARC_SAMPLES = 2048, 1024


def on_first(n: int, estimator):
    """The estimator on the first n samples (the samples are already a random draw of the pixels)."""
    return lambda f, y: estimator(f[:n], y[:n])


def logme_per_label_value(f, y):
    """LogME with the earlier bug: one indicator column per value 0 .. max(y), empty columns included."""
    return float(np.mean([tr.logme(f, column, classification=False) for column in np.eye(int(y.max()) + 1)[y].T]))


LABEL_BASED = {  # name -> (estimator of (samples, labels), the targets it applies to): the authors' forms
    "LogME": (tr.logme, TARGETS),
    "H-score": (tr.h_score, CATEGORICAL),
    "TransRate": (tr.transrate, CATEGORICAL),
    "GBC": (tr.gbc, CATEGORICAL),
    "N-LEEP": (on_first(NLEEP_SAMPLES, lambda f, y: tr.nleep(f, y, seed=SEED)), CATEGORICAL),
    "SFDA": (tr.sfda, CATEGORICAL),
    "PARC": (on_first(PARC_SAMPLES, tr.parc), CATEGORICAL),
    "ETran: energy": (lambda f, y: tr.etran_energy(f), CATEGORICAL),  # ETran's two terms, combined below
    "ETran: LDA": (tr.etran_lda, CATEGORICAL),
}
VARIANTS = {  # the library forms and this project's earlier forms: an ablation, not candidates
    "LogME, fixed point": (lambda f, y: tr.logme(f, y, variant="fixed-point"), TARGETS),
    "LogME, run to convergence": (lambda f, y: tr.logme(f, y, variant="converged"), TARGETS),
    "LogME, a column per label value": (logme_per_label_value, CATEGORICAL),
    "H-score, shrinkage 0.1": (lambda f, y: tr.h_score(f, y, shrinkage=0.1), CATEGORICAL),
    "H-score, no shrinkage": (lambda f, y: tr.h_score(f, y, shrinkage=0.0), CATEGORICAL),
    "TransRate, TLlib's": (lambda f, y: tr.transrate(f, y, variant="tllib"), CATEGORICAL),
    "GBC, diagonal": (lambda f, y: tr.gbc(f, y, gaussian="diagonal"), CATEGORICAL),
    "N-LEEP, diagonal, C components": (on_first(NLEEP_SAMPLES, lambda f, y: tr.nleep(
        f, y, components=len(np.unique(y)), covariance="diag", seed=SEED)), CATEGORICAL),
}
features_seconds = 0.0
every = LABEL_BASED | VARIANTS
label_scores = {name: {t: {} for t in targets} for name, (_, targets) in every.items()}
label_seconds = dict.fromkeys(every, 0.0)
with threadpool_limits(limits=BLAS_THREADS):
    for source, enc in encoders.items():
        start = time.perf_counter()
        z = {c: taskonomy.encoder_features(enc, x) for c, x in target_train.inputs.items()}
        features_seconds += time.perf_counter() - start
        for t in TARGETS:
            if t == source:
                continue
            samples, labels = taskonomy.estimator_samples(z[taskonomy.TASKONOMY_TASKS[t].corruption],
                                                          target_train.labels[t], t, seed=SEED)
            for name, (estimator, targets) in every.items():
                if t in targets:
                    value, seconds = timed(estimator, samples, labels)
                    label_scores[name][t][source], label_seconds[name] = value, label_seconds[name] + seconds
print({name: f"{label_seconds[name] + features_seconds:.2f} s" for name in every})

# %% [markdown]
# ETran's two terms are scaled over the candidate sources of each target before they are mixed (its code does
# this over the model pool, `tw.py`), so its score of a source depends on the other candidates: $S = 0.15 \cdot
# \frac{S_{en} - \min S_{en}}{\max S_{en} - \min S_{en}} + 0.85 \cdot \frac{S_{lda} - \min S_{lda}}{\max S_{lda} -
# \min S_{lda}}$.

# %%
label_scores["ETran"] = {t: tr.etran(label_scores["ETran: energy"][t], label_scores["ETran: LDA"][t]) for t in CATEGORICAL}
label_seconds["ETran"] = label_seconds["ETran: energy"] + label_seconds["ETran: LDA"]
ESTIMATORS_LABEL = ["LogME", "H-score", "TransRate", "GBC", "N-LEEP", "SFDA", "PARC", "ETran"]
ABLATION = {"LogME": ["LogME, fixed point", "LogME, run to convergence", "LogME, a column per label value"],
            "H-score": ["H-score, shrinkage 0.1", "H-score, no shrinkage"], "TransRate": ["TransRate, TLlib's"],
            "GBC": ["GBC, diagonal"], "N-LEEP": ["N-LEEP, diagonal, C components"],
            "ETran": ["ETran: energy", "ETran: LDA"]}
for name in ESTIMATORS_LABEL:
    SCORES[name, "target set"] = label_scores[name]
    TIMES[name, "target set"] = label_seconds[name] + features_seconds
print("label-based estimators:", ESTIMATORS_LABEL, "| ablation:", [v for vs in ABLATION.values() for v in vs])

# %% [markdown]
# ### A target-agnostic baseline
#
# Recent studies of transferability benchmarks (Agostinelli et al., ECCV 2022; "Back to the basics", 2024; "How
# not to benchmark your SITE metric", 2025) found that rankings flip with small changes of the set-up and that
# heuristics which ignore the target often match the estimators. The simplest such heuristic here: **rank each
# source by how well it transferred to the other targets**. For target $t$ and source $s$, with $\rho_{t'}(s) \in
# [0, 1]$ the place of $s$ among the candidates of another target $t'$ in the ground truth (0 = best, 1 = worst;
# losses of different tasks are not comparable, places are),
#
# $$\text{score}_t(s) = -\frac{1}{\lvert T_s \setminus \{t\} \rvert} \sum_{t' \in T_s \setminus \{t\}} \rho_{t'}(s),$$
#
# over the targets $T_s$ that $s$ was transferred to, leaving $t$ out (`kae_utils.methods.transferability.ranking.target_agnostic_scores`).
# It reads nothing of the target: no probe, no label, no model of it, and none of its transfers (a test perturbs a
# target's data and checks that its ranking stays the same). It is not free, since it needs the other targets'
# transfers, but it says how much of a ranking is "some sources are good for everything". Every estimator is
# compared with it below, on the targets the estimator covers.

# %% tags=["nbval-ignore-output"]
start = time.perf_counter()
SCORES["target-agnostic", "other targets"] = rk.target_agnostic_scores(GT)
TIMES["target-agnostic", "other targets"] = time.perf_counter() - start
BASELINE = SCORES["target-agnostic", "other targets"]
print("target-agnostic first picks:", {t: max(v, key=v.get) for t, v in BASELINE.items()})

# %% [markdown]
# LEEP and NCE where they apply: a source with a categorical head (its softmax, or the sigmoid of a binary map,
# averaged over the cells of the target's 8×8 grid, or over the image for an image-level target) and a categorical
# target, on the target set. Higher is better; each row compares only the two sources that have such a head.

# %% tags=["nbval-ignore-output"]
HEADED = [s for s in SOURCES if taskonomy.categorical(s)]


@torch.no_grad()
def source_probabilities(source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The source's class probabilities on the target set, per sample of the target's labels."""
    model, spec_s, spec_t = models[source].eval(), TRANSFER_TASKS[source], TRANSFER_TASKS[target]
    out = model(target_train.x(target).to(device)).cpu()
    p = torch.cat([1 - torch.sigmoid(out), torch.sigmoid(out)], dim=1) if spec_s.output == "binary" else out.softmax(dim=1)
    grid = SIZE // model.encoder.factor
    y = taskonomy.labels_at(target_train.labels[target], target, grid)
    if spec_t.output == "binary":
        y = (y > 0.5).long()[:, 0]
    if spec_t.dense:
        p = nn.functional.adaptive_avg_pool2d(p, grid) if spec_s.dense else p[:, :, None, None].expand(-1, -1, grid, grid)
        p, y = p.permute(0, 2, 3, 1).reshape(-1, p.shape[1]), y.reshape(-1)
    else:
        p = p.mean(dim=(2, 3)) if spec_s.dense else p
    keep = y >= 0
    return p[keep].double().numpy(), y[keep].numpy()


leep_rows = []
for t in CATEGORICAL:
    for s in HEADED:
        if s != t:
            p, y = source_probabilities(s, t)
            leep_rows.append({"target": t, "source": s, "LEEP": tr.leep(p / p.sum(1, keepdims=True), y),
                              "NCE": tr.nce(p.argmax(1), y), "ground-truth rank": 1 + sorted(GT[t], key=GT[t].get).index(s)})
pd.DataFrame(leep_rows).set_index(["target", "source"]).round(4)

# %% [markdown]
# ## Results
#
# For every estimator, on the targets it covers: **P@K** and **R@K** for every K (Song et al.'s protocol: per
# target, the relevant set is the best `RELEVANT` sources of the ground truth; P@K = hits / (targets · K), R@K =
# hits / (targets · relevant)), the mean per-target **Spearman** correlation of its scores with the transfers, the
# mean per-target **weighted Kendall τ** (`scipy.stats.weightedtau`: hyperbolic weights, so that an error among
# the best sources costs more than one among the worst; what SFDA and the papers after it report), the **top-1
# regret** (how much worse, relatively, the first pick transfers than the best source) and the **wall-clock
# ratio** (every brute-force transfer over the estimator's own time; for the label-based ones, the transfers to
# the targets they cover).
#
# **Intervals.** P@1, Spearman and weighted τ come with a 90 %<!-- fixed --> bootstrap interval (`kae_utils.methods.transferability.ranking`): each of
# the `RESAMPLES` resamples draws the targets with replacement and, for the estimators computed from probe images,
# uses the probe resample of the same index (above); the label-based estimators' scores are taken as fixed (their
# 128 target scenes are not resampled, so their intervals are narrower than they should be). With 9 targets, or 3
# for most label-based estimators, these intervals are wide: **two estimators whose intervals overlap are not
# ranked by this run.**
#
# **Against the target-agnostic baseline**: the difference of the mean Spearman, estimator minus baseline on the
# same targets, with a *paired* interval (the same resamples for both, so that what the two share cancels); an
# interval that contains 0 means the estimator is not shown to beat ranking the sources by their record elsewhere.
# **Ceiling**: the second transfer run's mean Spearman with the first on the same targets. The random ranking's P@K
# is relevant / sources for every K; the oracle is the ground truth itself.

# %% tags=["nbval-ignore-output"]
N_CANDIDATES = len(SOURCES) - 1
RANDOM_P = rk.random_precision(N_CANDIDATES, RELEVANT)
KS = list(range(1, N_CANDIDATES + 1))
INTERVAL = dict(resamples=RESAMPLES, seed=SEED)  # the same draws of the targets for every row


start = time.perf_counter()
RESULTS = {key: evaluate_ranking(scores, GT, RELEVANT, KS, draws=DRAWS.get(key), baseline=BASELINE,
                                 ceiling_scores=CEILING_SCORES, ceiling_truth=FIRST_RUN, **INTERVAL)
           for key, scores in SCORES.items()}  # (kae_utils.methods.transferability.harness)
for key, res in RESULTS.items():
    res["gt seconds"] = sum(gt_runs[0].seconds.values()) * res["targets"] / len(TARGETS)  # the transfers it replaces
    res["seconds"] = TIMES[key]
    res["speed-up"] = res["gt seconds"] / TIMES[key] if key[0] != "target-agnostic" else float("nan")
CEILING_RESULT = ceiling_ranking(CEILING_SCORES, FIRST_RUN, RELEVANT, KS, **INTERVAL)
ORACLE = oracle_curves(RELEVANT, KS)
print(f"{len(RESULTS)} estimators scored with {RESAMPLES} resamples in {time.perf_counter() - start:.1f} s")

# %%
print(f"{len(TARGETS)} targets, {N_CANDIDATES} candidate sources each, relevant = best {RELEVANT}; "
      f"random P@K = {RANDOM_P:.3f}")
summary_rows = [{"estimator": method, "data": data, "targets": res["targets"], **table_row(res, KS),
                 "ceiling": round(res["ceiling"]["spearman"]["value"], 2), "speed-up": res["speed-up"]}
                for (method, data), res in RESULTS.items()]  # table_row: kae_utils.methods.transferability.harness
summary_rows.append({"estimator": "ceiling: a 2nd transfer run", "data": f"seed {CFG['second_run_seed']}",
                     "targets": len(TARGETS), **table_row(CEILING_RESULT, KS)})
summary_rows.append({"estimator": "random", "data": "", "targets": len(TARGETS), "P@1 [90 %]": f"{RANDOM_P:.2f}",
                     **{f"P@{k}": RANDOM_P for k in KS[1:5]}, "Spearman [90 %]": "0 (expected)"})
summary_rows.append({"estimator": "oracle (the ground truth)", "data": "", "targets": len(TARGETS), "P@1 [90 %]": "1",
                     **{f"P@{k}": ORACLE["P@K"][k] for k in KS[1:5]}, "Spearman [90 %]": "1", "top-1 regret": 0.0})

# %% tags=["nbval-ignore-output"]
pd.DataFrame(summary_rows).set_index(["estimator", "data"]).round(3)

# %% [markdown]
# **The paper's numbers side by side** (read from the authors' figure, ±.01<!-- paper -->; their zoo: 18 targets, 19 candidates,
# relevant = 5, random .263<!-- paper -->; ours: 9 targets, 9 candidates, relevant = 2, random .222<!-- m: random_precision -->). P@K at K = 1..5, and the
# per-target Spearman of the released affinities as recomputed by the DDS authors (about .61<!-- paper --> for saliency and .68<!-- paper -->
# for gradient × input, Taskonomy probes).

# %% tags=["nbval-ignore-output"]
PAPER = {("saliency", "in-domain"): ([.667, .583, .593, .528, .522], .605),
         ("gradient*input", "in-domain"): ([.722, .833, .722, .736, .667], .682),
         ("gradient*input", "out-of-domain"): ([.833, .750, .759, .750, .744], None),
         ("gradient*input", "shifted"): ([.833, .889, .815, .722, .689], None)}
PAPER_PROBES = {"in-domain": "Taskonomy", "shifted": "indoor", "out-of-domain": "COCO"}
side = []
for (method, probe_set), (p_at_k, spearman) in PAPER.items():
    side.append({"estimator": method, "probes": f"{probe_set} (paper: {PAPER_PROBES[probe_set]})", "who": "paper",
                 **{f"P@{k}": v for k, v in enumerate(p_at_k, 1)}, "Spearman": spearman})
    res = RESULTS[method, probe_set]
    side.append({"estimator": method, "probes": f"{probe_set} (paper: {PAPER_PROBES[probe_set]})", "who": "this run",
                 **{f"P@{k}": res["P@K"][k] for k in range(1, 6)}, "Spearman": res["spearman mean"]})
pd.DataFrame(side).set_index(["estimator", "probes", "who"]).round(3)

# %% [markdown]
# **Precision–recall curves** (K = 1 .. 9 along each curve) of the attribution methods on the three probe sets,
# of RSA, CKA, LogME and the target-agnostic baseline, against random and the oracle.

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(7, 4.6))
curves = [(("gradient*input", p), "-", "o") for p in PROBE_SETS] + [
    (("saliency", "in-domain"), "--", "s"), (("RSA", "in-domain"), "-.", "^"), (("linear CKA", "in-domain"), "-.", "v"),
    (("LogME", "target set"), ":", "d"), (("target-agnostic", "other targets"), "--", "x")]
for (key, style, marker) in curves:
    res = RESULTS[key]
    ax.plot([res["R@K"][k] for k in KS], [res["P@K"][k] for k in KS], style, marker=marker, ms=4, label=f"{key[0]} ({key[1]})")
ax.plot([ORACLE["R@K"][k] for k in KS], [ORACLE["P@K"][k] for k in KS], "k-", lw=1, label="oracle")
ax.plot([k / N_CANDIDATES for k in KS], [RANDOM_P] * len(KS), "k:", lw=1, label="random")
ax.set_xlabel("R@K")
ax.set_ylabel("P@K")
ax.set_ylim(0, 1.05)
ax.legend(fontsize=7)
ax.grid(alpha=0.3)
ax.set_title("precision-recall over K = 1..9", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Every estimator with its 90 %<!-- fixed --> interval**, mean per-target Spearman (left) and weighted Kendall τ (right). For
# each, on the same targets: the target-agnostic baseline (grey ×) and the ceiling, a second run of the transfers
# (black |). Blue: the paper's attribution methods; orange: the other label-free estimators; green: label-based.

# %% tags=["nbval-ignore-output"]
keys = [k for k in RESULTS if k[0] != "target-agnostic"]
colours = ["C0" if k[0] in METHODS else "C1" if k[1] != "target set" else "C2" for k in keys]
fig, axes = plt.subplots(1, 2, figsize=(13, 0.32 * len(keys) + 1.2), sharey=True)
for ax, metric, label in zip(axes, ("spearman", "weighted tau"), ("Spearman", "weighted Kendall τ"), strict=True):
    values = np.array([RESULTS[k]["interval"][metric]["value"] for k in keys])
    low = values - np.array([RESULTS[k]["interval"][metric]["low"] for k in keys])
    high = np.array([RESULTS[k]["interval"][metric]["high"] for k in keys]) - values
    for i, colour in enumerate(colours):
        ax.errorbar(values[i], i, xerr=[[low[i]], [high[i]]], fmt="o", ms=4, color=colour, elinewidth=2, capsize=3)
    baseline = [RESULTS[k]["interval"][metric]["value"] - RESULTS[k]["vs target-agnostic"][metric]["value"] for k in keys]
    ax.scatter(baseline, range(len(keys)), marker="x", color="grey", zorder=3, label="target-agnostic, same targets")
    ax.scatter([RESULTS[k]["ceiling"][metric]["value"] for k in keys], range(len(keys)), marker="|", s=120,
               color="k", zorder=3, label="ceiling (2nd transfer run), same targets")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"mean per-target {label} with the transfers, 90 % interval")
    ax.grid(alpha=0.3, axis="x")
axes[0].set_yticks(range(len(keys)), [f"{m} ({p}, {RESULTS[m, p]['targets']} targets)" for m, p in keys], fontsize=7)
axes[0].invert_yaxis()
axes[1].legend(fontsize=7, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Per target**: each estimator's Spearman correlation with the transfers (attribution and model-to-model
# estimators on the in-domain probes), the target-agnostic baseline's, and the ceiling (the second run's).

# %% tags=["nbval-ignore-output"]
per_target = pd.DataFrame({f"{m} ({p})": RESULTS[m, p]["spearman"] for m, p in RESULTS
                           if p in ("in-domain", "target set", "other targets")})
per_target["ceiling (2nd run)"] = pd.Series(CEILING)
per_target.round(2)

# %% [markdown]
# ### The authors' forms against the library forms and this project's earlier ones
#
# The same samples, the same targets: each estimator as its authors define it (the row the tables above use) and
# the other forms in circulation, which this notebook used before (the mean Spearman and weighted τ over the
# targets with their 90 %<!-- fixed --> intervals over the targets, and the Spearman on each categorical target).

# %% tags=["nbval-ignore-output"]
ablation_rows = []
for name, variants in ABLATION.items():
    for form in (name, *variants):
        scores = label_scores[form]
        iv = rk.ranking_bootstrap(scores, GT, RELEVANT, **INTERVAL)
        spearman = rk.per_target_spearman(scores, {t: GT[t] for t in scores})
        ablation_rows.append({"estimator": name, "form": "the authors' (used above)" if form == name else form,
                              "P@1 [90 %]": ci(iv["P@1"]), "Spearman [90 %]": ci(iv["spearman"]),
                              "weighted τ [90 %]": ci(iv["weighted tau"]),
                              **{f"Spearman, {t}": spearman.get(t, np.nan) for t in CATEGORICAL}})
ABLATION_TABLE = pd.DataFrame(ablation_rows).set_index(["estimator", "form"])
ABLATION_TABLE.round(2)


# %% [markdown]
# **First picks**: per target, each estimator's top-scored source and its score, marked `*` when it is among the
# best `RELEVANT` transfers (what P@1 counts); the first column is the ground truth's best two.

# %% tags=["nbval-ignore-output"]
picks = {"ground truth: best two": {t: ", ".join(sorted(GT[t], key=GT[t].get)[:RELEVANT]) for t in TARGETS}}
picks |= {f"{m} ({p})": first_picks(SCORES[m, p], GT, RELEVANT) for m, p in [("gradient*input", "in-domain"), ("saliency", "in-domain"),
                                                          ("RSA", "in-domain"), ("linear CKA", "in-domain"),
                                                          ("target-agnostic", "other targets")]}
pd.DataFrame(picks)

# %% [markdown]
# **Time**: brute force against each estimator (seconds, this run, this machine).

# %% tags=["nbval-ignore-output"]
print(f"brute force: {GT_SECONDS:.1f} s for {sum(len(v) for v in GT.values())} transfers (one seed)")
speed = pd.DataFrame([{"estimator": m, "data": p, "seconds": RESULTS[m, p]["seconds"],
                       "speed-up over brute force": RESULTS[m, p]["speed-up"]} for m, p in RESULTS])
speedup_gi = RESULTS["gradient*input", "in-domain"]["speed-up"]
print(f"gradient x input on the in-domain probes: x{speedup_gi:.0f}")
speed.set_index(["estimator", "data"]).round(3)

# %% [markdown]
# ## Claims
#
# Tolerances fixed before the first run (the paper reports its results on 18 targets, ours has 9, so each
# target is worth .11<!-- m: 1 / len(targets) --> of P@1):
#
# 1. **Gradient × input beats random by a wide margin at P@1** (in-domain probes): P@1 at least random + 0.25<!-- m: tolerances.p1_margin -->
#    (paper: .72<!-- paper --> against .26<!-- paper -->).
# 2. **Gradient × input is not worse than saliency**: its mean per-target Spearman is at least saliency's − 0.05<!-- m: tolerances.saliency -->
#    (in-domain probes; paper: .68<!-- paper --> against .61<!-- paper -->).
# 3. **Shifted-domain probes are not much worse than in-domain ones**: gradient × input's mean Spearman on the
#    `shifted` probes at least its in-domain value − 0.10<!-- m: tolerances.probes --> (the paper's indoor probes did as well as Taskonomy's).
# 4. **Out-of-domain probes are not much worse than in-domain ones**: the same on the `shapes` probes (the
#    paper's COCO).
# 5. **The estimate is at least 100 times faster than brute-force transfer**, measured in this run: the time of
#    every transfer of one ground truth over the time of gradient × input on the in-domain probes (maps of every
#    model and every pair).
#
# Which of the modern estimators does best is a result (above), not a claim.

# %%
P1_MARGIN, SALIENCY_TOL, PROBE_TOL, SPEEDUP_MIN = 0.25, 0.05, 0.10, 100.0
gi = {p: RESULTS["gradient*input", p] for p in PROBE_SETS}
sal = RESULTS["saliency", "in-domain"]
claims = [
    Claim("gradient x input beats random by a wide margin at P@1", bool(gi["in-domain"]["P@K"][1] >= RANDOM_P + P1_MARGIN),
          f"P@1 {gi['in-domain']['P@K'][1]:.3f} vs random {RANDOM_P:.3f} (margin {P1_MARGIN})",
          effect=Effect("gradient x input P@1 - random P@1", gi["in-domain"]["P@K"][1] - RANDOM_P, P1_MARGIN)),
    Claim("gradient x input is not worse than saliency",
          bool(gi["in-domain"]["spearman mean"] >= sal["spearman mean"] - SALIENCY_TOL),
          f"mean Spearman {gi['in-domain']['spearman mean']:.3f} vs saliency {sal['spearman mean']:.3f} (tolerance {SALIENCY_TOL})",
          effect=Effect("gradient x input - saliency, mean per-target Spearman",
                        gi["in-domain"]["spearman mean"] - sal["spearman mean"], -SALIENCY_TOL)),
    Claim("shifted-domain probes are not much worse than in-domain ones",
          bool(gi["shifted"]["spearman mean"] >= gi["in-domain"]["spearman mean"] - PROBE_TOL),
          f"mean Spearman shifted {gi['shifted']['spearman mean']:.3f} vs in-domain {gi['in-domain']['spearman mean']:.3f} (tolerance {PROBE_TOL})",
          effect=Effect("shifted - in-domain probes, mean per-target Spearman",
                        gi["shifted"]["spearman mean"] - gi["in-domain"]["spearman mean"], -PROBE_TOL)),
    Claim("out-of-domain probes are not much worse than in-domain ones",
          bool(gi["out-of-domain"]["spearman mean"] >= gi["in-domain"]["spearman mean"] - PROBE_TOL),
          f"mean Spearman out-of-domain {gi['out-of-domain']['spearman mean']:.3f} vs in-domain {gi['in-domain']['spearman mean']:.3f} (tolerance {PROBE_TOL})",
          effect=Effect("out-of-domain - in-domain probes, mean per-target Spearman",
                        gi["out-of-domain"]["spearman mean"] - gi["in-domain"]["spearman mean"], -PROBE_TOL)),
    Claim("the estimate is at least 100 times faster than brute-force transfer", bool(speedup_gi >= SPEEDUP_MIN),
          f"{GT_SECONDS:.1f} s of transfers vs {TIMES['gradient*input', 'in-domain']:.3f} s: x{speedup_gi:.0f}",
          effect=Effect("speed-up over brute-force transfer (ratio)", speedup_gi, SPEEDUP_MIN)),
]
report = check_claims(claims)

# %%
best_modern = max((k for k in RESULTS if k[0] not in METHODS and k[0] != "target-agnostic"
                   and RESULTS[k]["targets"] == len(TARGETS)), key=lambda k: RESULTS[k]["spearman mean"])
baseline_sp, ceiling_sp = RESULTS["target-agnostic", "other targets"]["spearman mean"], float(np.mean(list(CEILING.values())))
metrics = {
    "headline": (f"gradient x input P@1 {gi['in-domain']['P@K'][1]:.2f} (random {RANDOM_P:.2f}), per-target Spearman "
                 f"{gi['in-domain']['spearman mean']:.2f} (saliency {sal['spearman mean']:.2f}; paper .68 / .61); "
                 f"shifted / out-of-domain probes {gi['shifted']['spearman mean']:.2f} / {gi['out-of-domain']['spearman mean']:.2f}; "
                 f"x{speedup_gi:.0f} faster than transferring; best other estimator on every target: "
                 f"{best_modern[0]} ({RESULTS[best_modern]['spearman mean']:.2f}); target-agnostic baseline "
                 f"{baseline_sp:.2f}; ceiling (a second transfer run) {ceiling_sp:.2f}"),
    "results": {f"{m} | {p}": {k: v for k, v in res.items()} for (m, p), res in RESULTS.items()},
    "ablation": {f"{name} | {form}": rk.ranking_scores(label_scores[form], GT, RELEVANT, KS)
                 for name, forms in ABLATION.items() for form in (name, *forms)},
    "ceiling": {"per_target_spearman": CEILING, **CEILING_RESULT, "second_run_seed": CFG["second_run_seed"]},
    "resamples": RESAMPLES,
    "random_precision": RANDOM_P,
    "relevant": RELEVANT,
    "ground_truth": GT,
    "ground_truth_seconds": GT_SECONDS,
    "ground_truth_seeds": CFG["gt_seeds"],
    "second_run": second_run.losses,
    "random_weights_reference": reference.losses,
    "best_beats_random_weights": beats_random,
    "checks": {"same_as_library": same_as_library, "elrp_vs_gi_min_cosine": {str(k): v for k, v in elrp_vs_gi.items()},
               "captum": captum_table.to_dict(orient="index")},
    "affinity": {f"{p} | {m}": AFFINITY[p, m] for p, m in AFFINITY},
    "sources": SOURCES,
    "targets": TARGETS,
    "tolerances": {"p1_margin": P1_MARGIN, "saliency": SALIENCY_TOL, "probes": PROBE_TOL, "speedup": SPEEDUP_MIN},
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, TEACHERS=TEACHERS, PROBE_IMAGES=PROBE_IMAGES,
                  RESAMPLES=RESAMPLES)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### What the claims say on this data
#
# All five checks hold in the quick profile, but they hold narrowly or in a weak sense. With the intervals
# (90 %<!-- fixed -->, bootstrap over the nine targets and, for the estimators computed from probe images, the 64 probes) and
# the two new references, a second run of the transfers and a baseline that ignores the target, the picture is
# sharper than the points alone: the paper's method is far weaker here than in the paper, it is not shown to beat
# ranking the sources by their record on other targets, and only the model-to-model comparisons of whole
# representations (RSA, CKA) are.
#
# - **P@1.** Gradient × input's first pick is among the best two transfers for 5 of the 9 targets: P@1
#   0.56<!-- m: results["gradient*input | in-domain"].interval["P@1"].value --> [0.22<!-- m: results["gradient*input | in-domain"].interval["P@1"].low -->, 0.78<!-- m: results["gradient*input | in-domain"].interval["P@1"].high -->] against 0.22<!-- m: random_precision --> for random (the paper: 0.72<!-- paper --> against 0.26<!-- paper -->). The claim's margin of 0.25<!-- m: tolerances.p1_margin --> is met by one
#   target (four hits would give 0.44<!-- m: 4 / len(targets) -->), and the interval's lower end is the random level. The hits differ in
#   weight: autoencoding and denoising pick each other or colorization, the one strong block of the affinity matrix;
#   for every other target the best affinity is small and the pick rests on differences of a few hundredths (the
#   first-picks table). P@2–P@5 fall to 0.56<!-- m: results["gradient*input | in-domain"]["P@K"][2] -->–0.31<!-- m: results["gradient*input | in-domain"]["P@K"][5] --> (paper 0.83<!-- paper -->–0.67<!-- paper -->).
# - **Per-target Spearman** is 0.30<!-- m: results["gradient*input | in-domain"].interval["spearman"].value --> [−0.00<!-- m: results["gradient*input | in-domain"].interval["spearman"].low -->, 0.52<!-- m: results["gradient*input | in-domain"].interval["spearman"].high -->] (paper 0.68<!-- paper -->): 0.70<!-- m: min(results["gradient*input | in-domain"].spearman.autoencoding, results["gradient*input | in-domain"].spearman.denoising, results["gradient*input | in-domain"].spearman.reshading, results["gradient*input | in-domain"].spearman.largest_class) -->–0.88<!-- m: max(results["gradient*input | in-domain"].spearman.autoencoding, results["gradient*input | in-domain"].spearman.denoising, results["gradient*input | in-domain"].spearman.reshading, results["gradient*input | in-domain"].spearman.largest_class) --> for autoencoding, denoising, reshading
#   and the largest class, 0.55<!-- m: results["gradient*input | in-domain"].spearman.occlusion_edges --> for occlusion edges, about 0 for 2D edges (−0.07<!-- m: results["gradient*input | in-domain"].spearman.edges2d -->) and normals (0.07<!-- m: results["gradient*input | in-domain"].spearman.normals -->), and negative
#   for segmentation (−0.38<!-- m: results["gradient*input | in-domain"].spearman.segmentation -->) and depth (−0.47<!-- m: results["gradient*input | in-domain"].spearman.depth -->), where the ground truth's best sources are the other 3D and
#   semantic models. Its top-1 regret is 0.51<!-- m: results["gradient*input | in-domain"].regret -->: the first pick's held-out loss is on average 51 %<!-- m: 100 * results["gradient*input | in-domain"].regret --> above the best
#   source's.
# - **Saliency and the probe sets** (claims 2–4). Gradient × input 0.30<!-- m: results["gradient*input | in-domain"]["spearman mean"] --> against saliency 0.21<!-- m: results["saliency | in-domain"].interval["spearman"].value --> [−0.00<!-- m: results["saliency | in-domain"].interval["spearman"].low -->, 0.39<!-- m: results["saliency | in-domain"].interval["spearman"].high -->] (the
#   paper's order), shifted probes 0.35<!-- m: results["gradient*input | shifted"].interval["spearman"].value --> [0.12<!-- m: results["gradient*input | shifted"].interval["spearman"].low -->, 0.63<!-- m: results["gradient*input | shifted"].interval["spearman"].high -->] and out-of-domain (`shapes`) probes 0.27<!-- m: results["gradient*input | out-of-domain"].interval["spearman"].value --> [0.00<!-- m: results["gradient*input | out-of-domain"].interval["spearman"].low -->, 0.48<!-- m: results["gradient*input | out-of-domain"].interval["spearman"].high -->]. The
#   intervals overlap almost entirely: the claims say "not worse", and this run cannot order these estimates in
#   either direction.
# - **Speed**: the maps of all 10 models and every pair take a small fraction of the time of the 81 transfers (the
#   ratio is printed above; the claim's threshold is ×100, a ratio of two wall-clock times on this shared CPU, which
#   moves from run to run). Our transfers are cheap (about a quarter of a second each: a 16-channel head, 150
#   full-batch steps), so the ratio is small next to Taskonomy's; RSA and linear CKA on the same probes cost about as
#   little.
# - **The ground truth's ceiling.** Two independent runs of the 81 transfers agree closely: mean per-target
#   Spearman 0.95<!-- m: ceiling.interval["spearman"].value --> [0.92<!-- m: ceiling.interval["spearman"].low -->, 0.97<!-- m: ceiling.interval["spearman"].high -->] (0.87<!-- m: min(ceiling.per_target_spearman[t] for t in targets) -->–1.00<!-- m: max(ceiling.per_target_spearman[t] for t in targets) --> per target), and the second run's first pick is among the first run's
#   best two for 7 of the 9 targets. The transfers' own noise leaves room for a Spearman near 0.95<!-- m: ceiling["spearman mean"] -->; gradient ×
#   input's 0.30<!-- m: results["gradient*input | in-domain"]["spearman mean"] --> is not held down by it.
# - **The target-agnostic baseline**, which ranks each source by its places among the candidates of the other
#   targets, picks segmentation for every target but segmentation (and depth there) and reaches P@1 0.56<!-- m: results["target-agnostic | other targets"].interval["P@1"].value --> [0.22<!-- m: results["target-agnostic | other targets"].interval["P@1"].low -->, 0.78<!-- m: results["target-agnostic | other targets"].interval["P@1"].high -->],
#   Spearman 0.48<!-- m: results["target-agnostic | other targets"].interval["spearman"].value --> [0.21<!-- m: results["target-agnostic | other targets"].interval["spearman"].low -->, 0.75<!-- m: results["target-agnostic | other targets"].interval["spearman"].high -->] and weighted τ 0.37<!-- m: results["target-agnostic | other targets"].interval["weighted tau"].value --> [0.09<!-- m: results["target-agnostic | other targets"].interval["weighted tau"].low -->, 0.63<!-- m: results["target-agnostic | other targets"].interval["weighted tau"].high -->]. None of the paper's three methods, on any
#   probe set, is ahead of it: gradient × input on the in-domain probes is −0.18<!-- m: results["gradient*input | in-domain"]["vs target-agnostic"]["spearman"].value --> [−0.74<!-- m: results["gradient*input | in-domain"]["vs target-agnostic"]["spearman"].low -->, +0.27<!-- m: results["gradient*input | in-domain"]["vs target-agnostic"]["spearman"].high -->] in Spearman
#   (paired interval). The two fail in opposite places: the baseline is negative on the image-to-image targets
#   (autoencoding, denoising, reshading: −0.22<!-- m: results["target-agnostic | other targets"].spearman.reshading --> to −0.25<!-- m: results["target-agnostic | other targets"].spearman.autoencoding -->), where gradient × input is at 0.70<!-- m: min(results["gradient*input | in-domain"].spearman.autoencoding, results["gradient*input | in-domain"].spearman.denoising, results["gradient*input | in-domain"].spearman.reshading) -->–0.88<!-- m: max(results["gradient*input | in-domain"].spearman.autoencoding, results["gradient*input | in-domain"].spearman.denoising, results["gradient*input | in-domain"].spearman.reshading) -->, and at 0.82<!-- m: min(results["target-agnostic | other targets"].spearman.depth, results["target-agnostic | other targets"].spearman.normals, results["target-agnostic | other targets"].spearman.segmentation) -->–0.96<!-- m: max(results["target-agnostic | other targets"].spearman.depth, results["target-agnostic | other targets"].spearman.normals, results["target-agnostic | other targets"].spearman.segmentation) -->
#   on depth, normals and segmentation, where gradient × input is at −0.47<!-- m: min(results["gradient*input | in-domain"].spearman.depth, results["gradient*input | in-domain"].spearman.normals, results["gradient*input | in-domain"].spearman.segmentation) --> to 0.07<!-- m: max(results["gradient*input | in-domain"].spearman.depth, results["gradient*input | in-domain"].spearman.normals, results["gradient*input | in-domain"].spearman.segmentation) -->.
# - **Beyond the paper.** On the same 64 unlabeled in-domain probes, RSA and linear CKA reach P@1 0.78<!-- m: results["RSA | in-domain"].interval["P@1"].value --> [0.56<!-- m: results["RSA | in-domain"].interval["P@1"].low -->, 1.00<!-- m: results["RSA | in-domain"].interval["P@1"].high -->],
#   Spearman 0.75<!-- m: results["RSA | in-domain"].interval["spearman"].value --> [0.63<!-- m: results["RSA | in-domain"].interval["spearman"].low -->, 0.83<!-- m: results["RSA | in-domain"].interval["spearman"].high -->] and 0.76<!-- m: results["linear CKA | in-domain"].interval["spearman"].value --> [0.67<!-- m: results["linear CKA | in-domain"].interval["spearman"].low -->, 0.82<!-- m: results["linear CKA | in-domain"].interval["spearman"].high -->], top-1 regret 0.06<!-- m: results["RSA | in-domain"].regret --> and 0.08<!-- m: results["linear CKA | in-domain"].regret -->, and keep most of it on
#   the shifted and out-of-domain probes (0.51<!-- m: min(results[f"{e} | {p}"]["spearman mean"] for e in ("RSA", "linear CKA") for p in ("shifted", "out-of-domain")) -->–0.69<!-- m: max(results[f"{e} | {p}"]["spearman mean"] for e in ("RSA", "linear CKA") for p in ("shifted", "out-of-domain")) -->). Against the baseline they are ahead by +0.28<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["spearman"].value --> [−0.08<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["spearman"].low -->, +0.59<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["spearman"].high -->]
#   and +0.29<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["spearman"].value --> [−0.04<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["spearman"].low -->, +0.58<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["spearman"].high -->] in Spearman, intervals that touch 0, and by +0.33<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["weighted tau"].value --> [+0.02<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["weighted tau"].low -->, +0.65<!-- m: results["RSA | in-domain"]["vs target-agnostic"]["weighted tau"].high -->] and +0.32<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["weighted tau"].value --> [+0.05<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["weighted tau"].low -->, +0.60<!-- m: results["linear CKA | in-domain"]["vs target-agnostic"]["weighted tau"].high -->]
#   in weighted τ, which weighs the best sources most: the only estimators of this notebook shown to beat
#   it, by that measure and on these probes. LogME, the one label-based estimator that covers all nine targets,
#   reaches 0.50<!-- m: results["LogME | target set"].interval["spearman"].value --> [0.27<!-- m: results["LogME | target set"].interval["spearman"].low -->, 0.73<!-- m: results["LogME | target set"].interval["spearman"].high -->], +0.02<!-- m: results["LogME | target set"]["vs target-agnostic"]["spearman"].value --> [−0.16<!-- m: results["LogME | target set"]["vs target-agnostic"]["spearman"].low -->, +0.19<!-- m: results["LogME | target set"]["vs target-agnostic"]["spearman"].high -->] against the baseline: no difference.
# - **The label-based estimators on the three categorical targets** (the authors' forms): ETran 0.83<!-- m: results["ETran | target set"].interval["spearman"].value --> [0.69<!-- m: results["ETran | target set"].interval["spearman"].low -->, 0.97<!-- m: results["ETran | target set"].interval["spearman"].high -->],
#   TransRate 0.67<!-- m: results["TransRate | target set"]["spearman mean"] -->, N-LEEP 0.67<!-- m: results["N-LEEP | target set"]["spearman mean"] -->, GBC 0.63<!-- m: results["GBC | target set"]["spearman mean"] -->, SFDA 0.58<!-- m: results["SFDA | target set"]["spearman mean"] -->, PARC 0.58<!-- m: results["PARC | target set"]["spearman mean"] --> and H-score 0.48<!-- m: results["H-score | target set"].interval["spearman"].value --> [0.02<!-- m: results["H-score | target set"].interval["spearman"].low -->, 0.94<!-- m: results["H-score | target set"].interval["spearman"].high -->]. The baseline
#   reaches 0.78<!-- m: sum(results["target-agnostic | other targets"].spearman[t] for t in ("largest_class", "occlusion_edges", "segmentation")) / 3 --> on the same three targets, and none of them is shown to be ahead of it; GBC and PARC are behind
#   it in weighted τ (−0.11<!-- m: results["GBC | target set"]["vs target-agnostic"]["weighted tau"].value --> [−0.21<!-- m: results["GBC | target set"]["vs target-agnostic"]["weighted tau"].low -->, −0.01<!-- m: results["GBC | target set"]["vs target-agnostic"]["weighted tau"].high -->] and −0.28<!-- m: results["PARC | target set"]["vs target-agnostic"]["weighted tau"].value --> [−0.49<!-- m: results["PARC | target set"]["vs target-agnostic"]["weighted tau"].low -->, −0.07<!-- m: results["PARC | target set"]["vs target-agnostic"]["weighted tau"].high -->]). Three targets, and 128 labelled scenes that are not
#   resampled, make these intervals too narrow rather than too wide: they rank none of these estimators above
#   another.
# - **The definitions decided the earlier conclusions** (the ablation table, same samples and targets). H-score
#   with this notebook's earlier fixed shrinkage of 0.1<!-- fixed --> reaches 0.94<!-- m: ablation["H-score | H-score, shrinkage 0.1"]["spearman mean"] --> (largest class 0.97<!-- m: ablation["H-score | H-score, shrinkage 0.1"].spearman.largest_class -->); with the Ledoit–Wolf
#   shrinkage of Ibrahim et al., its authors' form, 0.48<!-- m: ablation["H-score | H-score"]["spearman mean"] --> (largest class −0.40<!-- m: ablation["H-score | H-score"].spearman.largest_class -->): "H-score ranks best" was a
#   property of the fixed shrinkage. GBC with diagonal Gaussians is at −0.39<!-- m: ablation["GBC | GBC, diagonal"]["spearman mean"] -->, with the authors' spherical ones at
#   0.63<!-- m: ablation["GBC | GBC"]["spearman mean"] -->: "GBC is negative" belonged to the diagonal form. TransRate goes from 0.24<!-- m: ablation["TransRate | TransRate, TLlib's"]["spearman mean"] --> (TLlib's form) to 0.67<!-- m: ablation["TransRate | TransRate"]["spearman mean"] --> (the
#   authors'), N-LEEP from 0.19<!-- m: ablation["N-LEEP | N-LEEP, diagonal, C components"]["spearman mean"] --> (diagonal, C components) to 0.67<!-- m: ablation["N-LEEP | N-LEEP"]["spearman mean"] --> (full covariance, 5C). LogME's absent classes: one
#   column per label value, two of them empty, gives −0.42<!-- m: ablation["LogME | LogME, a column per label value"].spearman.largest_class --> on the largest class; one column per class present gives
#   0.25<!-- m: ablation["LogME | LogME"].spearman.largest_class --> with the authors' 11-step loop, 0.77<!-- m: ablation["LogME | LogME, run to convergence"].spearman.largest_class --> run to convergence and −0.75<!-- m: ablation["LogME | LogME, fixed point"].spearman.largest_class --> with the later fixed point. The sources'
#   LogME values on that target are close together, and the stopping rule reorders them.
#
# The likely reason for the attribution maps' weakness, a hypothesis this run does not test: the gradient × input
# map of the *sum* of an 8×8×8 representation is a narrow view of a small encoder. Two encoders whose
# representations CKA finds close (depth and segmentation, 0.83<!-- m: affinity["in-domain | linear CKA"][4][7] -->) can still have nearly orthogonal signed maps of
# their sums (−0.02<!-- m: affinity["in-domain | gradient*input"][4][7] --> here), because the sum weighs every unit alike, whatever the unit encodes and however the
# units of the two models correspond, while CKA and RSA compare the whole representation up to a rotation. On
# Taskonomy's ResNet-50 encoders of 256×256 images the maps are dominated by image structure shared across tasks,
# and the cosines are graded rather than near zero. Saliency's maps, unsigned, do agree (their affinity matrix above)
# but rank worse still. The full profile (64×64, wider encoders, 18 tasks, two ground-truth seeds) and exercise 2
# (attribute the L2 norm instead of the sum) test parts of this.

# %% [markdown]
# ## Notes on fidelity
#
# - **The zoo** is ours, not Taskonomy's task bank: 10 small `TaskNet`s (24k-parameter encoders, an 8×8×8
#   representation of a 32×32 image) trained for 20 epochs on 4,096 rendered rooms, against ResNet-50 encoders on
#   four million indoor images. Our tasks follow Taskonomy's where `scenes` has the label (autoencoding, denoising,
#   2D and occlusion edges, depth, normals, reshading, segmentation, colorization; curvature, 2D keypoints and the
#   layout are derived here from the rendered maps in the full profile), and two clusters' tasks are closer to each
#   other than Taskonomy's (2D edges and occlusion edges of a rendered room share many pixels).
# - **One initialisation for all.** Every model of the zoo starts from the same initial weights (the entries'
#   seed 0, the same encoder architecture), so their encoders begin identical and part by training only;
#   Taskonomy's networks were trained separately. A shared start may make related tasks' representations more
#   alike than independent starts would, which could favour the model-to-model estimators (attribution, RSA,
#   CKA) over the label-based ones; it is not measured here.
# - **The ground truth** is computed here by Taskonomy's protocol, not read from Taskonomy's affinity file: frozen
#   encoder + a small trained head on 128 labelled scenes, ranked by the held-out loss of one seed (quick; the full
#   profile averages two seeds). A second run with the next seed gives the ceiling; in the full profile, where the
#   ground truth averages both runs, one run against the other understates what an estimator could reach against
#   their mean. The paper compared with the
#   affinities Taskonomy derived by AHP from win rates over many transfer functions; within one target, ranking
#   by held-out loss is what those affinities encode. The target "model" the estimator compares with is the
#   zoo's fully trained model of the target task, as in the paper, not a model trained only on the small target set.
# - **The relevant set** is the best 2 of 9 candidates (the paper's 5 of 19, scaled): random P@K is .222<!-- m: random_precision --> here
#   against .263<!-- paper --> there, and P@1 moves in steps of 1/9.
# - **Attribution**: the paper's `sum(encoder output)` with DeepExplain (TensorFlow); ours with autograd, checked
#   against Captum. The paper's ε-LRP is DeepExplain's modified-gradient version; Captum's LRP is genuine
#   relevance propagation, equal to it on this network only once the sum is written as layers (above).
# - **Probe sets**: 64 images each (paper: about 1,000); the `shifted` probes are the in-domain scenes re-rendered
#   in another visual domain (a controlled shift: same geometry), and `shapes` stands in for COCO: images from
#   no room at all.
# - **Speed**: the paper only says "several orders of magnitude faster than Taskonomy" (no figure could be
#   verified); we measure our own ratio, on a CPU, against our own (small) transfers. Taskonomy's transfers were
#   far more expensive than ours, so the ratio there is larger.
# - **Beyond the paper**: the label-based estimators need labelled target data and no target model; the paper's
#   method needs a target model and no labels. They answer slightly different questions (survey authors class the
#   paper's method with Taskonomy-style task maps, not with target-dataset estimators:
#   YuheD/awesome-model-transferability-estimation#1). The modern estimators are applied pixel-wise to dense
#   targets, a choice of ours (as in pixel-level transferability studies), not of their papers.
# - **The label-based estimators** are their authors' code's definitions (table above), with five departures, each
#   where that code fails or is undefined: every estimator counts the classes present (several codes build one
#   entry per label value up to the largest, which breaks or biases them when a class is absent); TransRate leaves a
#   row of norm 0 at 0 (the code divides by it); SFDA and ETran's discriminant use a pseudo-inverse (the code's
#   eigen-solvers fail on identical features); PARC ties its two label distances exactly (the code's
#   `np.corrcoef` splits them by rounding errors) and scores a constant dissimilarity 0; ETran's energy term keeps
#   at least one sample. N-LEEP's mixture and PARC run on subsets of the pixels (2,048 and 1,024), for time.
# - **Intervals**: the bootstrap resamples the targets (nine, or three) and the probe images, not the labelled
#   target scenes of the label-based estimators, nor the ground truth's own noise (the ceiling shows it is small).
#   With so few targets a percentile interval is a rough guide: a difference inside it is not a ranking, and one
#   outside it is one run's evidence.
#
# ## Exercises
#
# 1. How few probes are enough? Re-run with `-p PROBE_IMAGES 8` and `-p PROBE_IMAGES 16` and compare P@1 and the
#    Spearman correlations.
# 2. Attribute something else: the L2 norm of the representation (what KAmalEngine attributes), or one channel
#    only. Does the ranking change?
# 3. The ground truth depends on the transfer function: give the heads 64 hidden channels or 600 steps
#    (`taskonomy.TransferSetting`) and see how much the ranking moves, and which estimator follows.
# 4. Replace the in-domain probes with pure noise images. What is left of the affinities?
#
# ## References
#
# - J. Song, Y. Chen, X. Wang, C. Shen, M. Song. Deep Model Transferability from Attribution Maps. NeurIPS 2019.
#   Code: https://github.com/zju-vipa/TransferbilityFromAttributionMaps
# - A. Zamir, A. Sax, W. Shen, L. Guibas, J. Malik, S. Savarese. Taskonomy: Disentangling Task Transfer Learning.
#   CVPR 2018.
# - M. Ancona, E. Ceolini, C. Öztireli, M. Gross. Towards better understanding of gradient-based attribution
#   methods for deep neural networks. ICLR 2018 (ε-LRP = gradient × input for ReLU networks).
# - N. Kokhlikyan et al. Captum: A unified and generic model interpretability library for PyTorch. 2020.
# - K. Dwivedi, G. Roig. Representation Similarity Analysis for Efficient Task taxonomy & Transfer Learning.
#   CVPR 2019. K. Dwivedi, J. Huang, R. M. Cichy, G. Roig. Duality Diagram Similarity. ECCV 2020.
# - S. Kornblith, M. Norouzi, H. Lee, G. Hinton. Similarity of Neural Network Representations Revisited. ICML 2019.
# - K. You, Y. Liu, J. Wang, M. Long. LogME: Practical Assessment of Pre-trained Models for Transfer Learning.
#   ICML 2021.
# - Y. Bao, Y. Li, S.-L. Huang, L. Zhang, L. Zheng, A. Zamir, L. Guibas. An Information-Theoretic Approach to
#   Transferability in Task Transfer Learning. ICIP 2019 (H-score).
# - L.-K. Huang, J. Huang, Y. Rong, Q. Yang, Y. Wei. Frustratingly Easy Transferability Estimation. ICML 2022
#   (TransRate).
# - M. Pándy, A. Agostinelli, J. Uijlings, V. Ferrari, T. Mensink. Transferability Estimation using Bhattacharyya
#   Class Separability. CVPR 2022 (GBC).
# - C. Nguyen, T. Hassner, M. Seeger, C. Archambeau. LEEP: A New Measure to Evaluate Transferability of Learned
#   Representations. ICML 2020. Y. Li et al. Ranking Neural Checkpoints. CVPR 2021 (N-LEEP). A. T. Tran, C. V.
#   Nguyen, T. Hassner. Transferability and Hardness of Supervised Classification Tasks. ICCV 2019 (NCE).
# - S. Ibrahim, N. Ponomareva, R. Mazumder. Newer is not always better: Rethinking transferability metrics, their
#   peculiarities, stability and performance. ECML PKDD 2022 (H-score with shrinkage).
# - W. Shao, X. Zhao, Y. Ge, Z. Zhang, L. Yang, X. Wang, Y. Shan, P. Luo. Not All Models Are Equal: Predicting Model
#   Transferability in a Self-challenging Fisher Space. ECCV 2022 (SFDA). Code: https://github.com/TencentARC/SFDA
# - D. Bolya, R. Mittapalli, J. Hoffman. Scalable Diverse Model Selection for Accessible Transfer Learning.
#   NeurIPS 2021 (PARC). Code: https://github.com/dbolya/parc
# - M. Gholami, M. Akbari, X. Wang, B. Kamranian, Y. Zhang. ETran: Energy-Based Transferability Estimation. ICCV
#   2023. Code: https://github.com/mgholamikn/ETran
# - A. Agostinelli, M. Pándy, J. Uijlings, T. Mensink, V. Ferrari. How stable are Transferability Metrics
#   evaluations? ECCV 2022 (the target-agnostic view of transferability benchmarks).
# - S. Vigna. A weighted correlation index for rankings with ties. WWW 2015 (the weighted Kendall τ of
#   `scipy.stats.weightedtau`).
