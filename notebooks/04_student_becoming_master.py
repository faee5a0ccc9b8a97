# %% [markdown]
# # 04 · Student becoming the master: amalgamating pixel-task teachers
#
# **Ye, Ji, Wang, Ou, Tao & Song (2019). *Student Becoming the Master: Knowledge Amalgamation for Joint Scene
# Parsing, Depth Estimation, and More*.** CVPR 2019. [arXiv:1904.10167](https://arxiv.org/abs/1904.10167)
#
# Two networks have been trained by others: one parses a scene into semantic classes, the other estimates
# its depth. Each is an encoder-decoder, each costs memory and time, and their labelled training data is not
# ours. Can one **compact student** do both jobs, learning from the two teachers' *outputs* on unlabeled
# images only, and do each of them as well as its teacher?
#
# Ye et al. build the student, the **TargetNet**, from the teachers themselves. It starts as a copy of one
# teacher's encoder-decoder. At some layer of the decoder, the **branch point**, each task leaves the shared
# trunk: a small **channel-coding adapter** (a squeeze-and-excitation gate) re-weights the shared features,
# and the task continues through a copy of *its own* teacher's remaining decoder layers. The adapters are
# first trained with the copied branches frozen ("block" learning), then everything is fine-tuned. The losses
# compare the student with the teachers only, never with ground truth. Which branch point is best is not
# known in advance; it is searched. The paper reports that the student beats the teachers on their own tasks,
# is on par with fully supervised multi-task networks, and is smaller than the teachers together.
#
# **What you will see**
#
# 1. The offline `scenes` data (rendered rooms with per-pixel labels) standing in for NYUv2.
# 2. One encoder-decoder teacher per task (segmentation and depth; surface normals too in the full profile).
# 3. The TargetNet: shared trunk, branch points, the channel-coding adapter, the teacher-only losses.
# 4. The branch-point search and the per-task loss-vs-branch-point curve.
# 5. Student vs each teacher on its own task, vs a supervised multi-task network of the same size;
#    parameters and inference time; predicted maps side by side, and a scene browser.
# 6. The paper's claims checked against this run.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 04 -p SEED 1` or `kae run 04 --profile full`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, under 3 minutes, 64x64, seg + depth; "full": 128x128, + normals, 3 seeds (GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "scenes"  # "scenes" (rendered rooms with per-pixel labels); the only data set wired up here
SI_LAMBDA: float = 0.5  # lambda of the student's scale-invariant depth loss (0: squared log error, 1: fully scale-invariant)
TEACHERS: str = "zoo"  # "zoo": load the trained teachers shipped in zoo/; "train": retrain them with the zoo's recipe

# %%
from kae_utils.core.params import check_common_parameters, check_number
from kae_utils.core.scale import profile_settings

SUPPORTED_DATASETS = ("scenes",)
check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_number("SI_LAMBDA", SI_LAMBDA, minimum=0, maximum=1)

NOTEBOOK = "04_student_becoming_master"
SETTINGS = {  # the teachers and the supervised reference come from the zoo (kae_utils.zoo)
    "quick": dict(
        seeds=[SEED], tasks=("segmentation", "depth"), widths=(16, 32, 64), trunk_widths=(16, 32, 80),
        transfer_images=2048, block_epochs=4, finetune_epochs=4, batch_size=32, student_lr=1e-3,
    ),
    "full": dict(
        seeds=[SEED, SEED + 1, SEED + 2], tasks=("segmentation", "depth", "normals"), widths=(32, 64, 128, 256),
        trunk_widths=(32, 64, 128, 320), transfer_images=8000, block_epochs=15, finetune_epochs=15, batch_size=32,
        student_lr=1e-3,
    ),
}
CFG = profile_settings(SETTINGS, PROFILE)  # SETTINGS[PROFILE]; KAE_SCALE=smoke shrinks the full one
for name, value in CFG.items():
    print(f"{name:>15}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the teacher cache, `runs/`) are resolved from the
# repository root by `kae_utils`, so the notebook runs from any working directory.

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from kae_utils import zoo
from kae_utils.benchmarks.tasks import (
    DENSE_TASKS,
    ceiling_within_tolerance,
    tolerance_effect,
    within_tolerance,
)
from kae_utils.data import SCENE_CLASSES, load_scene_tasks
from kae_utils.display.progress import progress
from kae_utils.display.source import show_source
from kae_utils.display.viz import colorize_depth, colorize_normals, colorize_segmentation, plot_scene
from kae_utils.display.widgets import explore
from kae_utils.evaluation.metrics import iou_per_class
from kae_utils.evaluation.results import Claim, Effect, check_claims, mean_std, median_time, write_metrics
from kae_utils.methods.amalgamation import check_images_only, train_ceiling
from kae_utils.methods.dense import angular_loss, pixel_kl_loss, scale_invariant_loss
from kae_utils.models import EncoderDecoder, build_encdec, count_parameters
from kae_utils.models.frozen import freeze, hold_statistics
from kae_utils.models.seeding import seeded
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics
from kae_utils.training.predict import predict_maps
from kae_utils.training.trainer import Trainer

device = setup_notebook(SEED, DEVICE)
print("device type:", device.type)
print(numerics.describe())  # bf16 autocast where the hardware runs it natively; KAE_PRECISION=fp32 forces float32

# %% [markdown]
# ## Data
#
# The paper uses NYUv2: indoor photographs with semantic labels and depth from a Kinect. It cannot be
# downloaded here, so we use the repository's offline `scenes` set: a small ray caster renders the corner of
# a room (floor, two walls) with a few objects of five shapes under one light, and returns each picture with
# its exact semantic segmentation (7 classes: floor, wall, sphere, box, cylinder, cone, torus), depth and
# surface normals. The quick profile renders 512 training and 128 test scenes at 64×64; the full one
# 8,000 and 1,000 at 128×128.
#
# The **training images, without their labels, are the transfer set** of the student. It is as large as the
# set each teacher was trained on (2,048 scenes in the quick profile, 8,000 in the full one): the training
# split and, in the quick profile, 1,536 more scenes of the same stream rendered after the test split
# (`kae_utils.data.load_training_pool`). Rendered scenes cost no labels, and the renderer makes hundreds per
# second. The labels of the transfer images are used only by the **supervised ceiling** (below), the
# student's architecture trained with them; the test labels only to evaluate.

# %%
TASK_LIST = list(CFG["tasks"])
scenes = load_scene_tasks(DATASET, PROFILE, CFG["transfer_images"], TASK_LIST)  # training split, then more scenes
x_train, x_test = scenes.x_transfer, scenes.x_test
gt_train, gt_test = scenes.gt_transfer, scenes.gt_test  # gt_train: for the supervised ceiling only
IMAGE_SHAPE = scenes.image_shape
NUM_CLASSES = len(SCENE_CLASSES)
X_TRANSFER = x_train  # the student's transfer set: the training images, no labels
split_size = scenes.train_split_size
print(f"train: {tuple(x_train.shape)} ({split_size} of the training split, {len(x_train) - split_size} more "
      f"rendered after the test split)  test: {tuple(x_test.shape)}  tasks: {', '.join(TASK_LIST)}")
for task in TASK_LIST:
    print(f"  {task:>12} target: {tuple(gt_train[task].shape)} {str(gt_train[task].dtype).replace('torch.', '')}")
print(f"classes: {', '.join(SCENE_CLASSES)}")
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}")

# %%
from kae_utils.data import SceneConfig, render_scenes

example = render_scenes(1, seed=0, config=SceneConfig(image_size=IMAGE_SHAPE[-1]))
plot_scene(example, 0, tasks=["segmentation", "depth", "normals"])
plt.show()

# %% [markdown]
# ## The teachers: one encoder-decoder per task
#
# Every teacher is the same small encoder-decoder from `kae_utils.models.EncoderDecoder`: an **encoder** of
# conv–BN–ReLU stages that halve the resolution, a **decoder** of blocks that double it back
# (nearest-neighbour upsampling, conv–BN–ReLU), and a task **head** (a 1×1 convolution): class logits for
# segmentation, a positive depth $y = e^{z}$ from a predicted log-depth $z$, or unit normals. There are no skip
# connections, so the network can be cut after the encoder or after any decoder block — the candidate
# **branch points** $b = 0, 1, \dots, D$ of the TargetNet. The paper's teachers are full-size encoder-decoders
# trained on NYUv2; ours are small.
#
# The teachers were trained by others, on their own labelled data: here, the repository's **model zoo**
# (`kae_utils.zoo`) trained each once with ground truth on its own task (cross-entropy; the scale-invariant
# loss below with $\lambda = 0.5$; the angular loss), on 2,048 rendered scenes of its own that no notebook uses,
# for 30 epochs with a cosine schedule, and ships the weights in `zoo/` with their hashes. A depth head starts
# with its bias at the mean log-depth of its training labels. With `TEACHERS = "train"` they are retrained here
# from the same recipe. The student below sees only this notebook's training images, without their labels.

# %%
print(build_encdec("segmentation", NUM_CLASSES, widths=CFG["widths"]))

# %% tags=["nbval-ignore-output"]
TEACHER_NAMES = {task: f"scenes{IMAGE_SHAPE[-1]}-{task}" for task in TASK_LIST}
team = {task: zoo.obtain(name, TEACHERS, device) for task, name in TEACHER_NAMES.items()}
teachers = {seed: team for seed in CFG["seeds"]}  # one set of teachers for every seed
print("teachers:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
pd.DataFrame(zoo.summary(TEACHER_NAMES.values())).set_index("entry")

# %% [markdown]
# Their learning curves, as the zoo recorded them: the training loss and the held-out metric (on this
# notebook's test split, which no model trains on) after every epoch. The zoo's third teacher of this size,
# for surface normals, is shown too: the full profile amalgamates it, and notebook 07 uses it.

# %% tags=["nbval-ignore-output"]
CURVES = {task: f"scenes{IMAGE_SHAPE[-1]}-{task}" for task in DENSE_TASKS}  # every dense teacher of this size
fig, axes = plt.subplots(1, len(CURVES), figsize=(3.6 * len(CURVES), 2.8))
for ax, (task, name) in zip(np.atleast_1d(axes), CURVES.items(), strict=True):
    history, metric = zoo.record(name)["history"], DENSE_TASKS[task].headline
    ax.plot(range(1, len(history["train_loss"]) + 1), history["train_loss"], color="C0")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="C0")
    twin = ax.twinx()
    twin.plot(range(1, len(history[f"val_{metric}"]) + 1), history[f"val_{metric}"], color="C1")
    twin.set_ylabel(f"held-out {metric}", color="C1")
    ax.set_title(f"teacher: {task} (held-out {metric} {zoo.record(name)['metrics'][metric]:.3g})", fontsize=9)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()


# %% [markdown]
# We evaluate every model against the **ground truth of the test split**: mean IoU and pixel accuracy for
# segmentation; RMSE, absolute relative error and $\delta < 1.25$ (the share of pixels whose depth ratio is
# below 1.25<!-- fixed -->) for depth; mean angle and the share within 11.25°<!-- fixed --> for normals.
# The models train under the process's numerics, but every map here — the teachers' targets, the curves, the
# scores — is predicted in float32 with plain (NCHW) inputs: `predict_maps` (`kae_utils.training.predict`) with
# `precision=FLOAT32`.

# %% tags=["nbval-ignore-output"]
FLOAT32 = numerics.resolve_numerics("fp32", device, channels_last=False)  # how every map of this notebook is predicted


def evaluate(predictions: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """The paper's metrics of every task against ground truth (kae_utils.benchmarks.tasks)."""
    return {task: DENSE_TASKS[task].metrics(predictions[task], gt_test[task]) for task in TASK_LIST}


teacher_preds = {seed: predict_maps(ts, x_test, precision=FLOAT32) for seed, ts in teachers.items()}
teacher_scores = {seed: evaluate(p) for seed, p in teacher_preds.items()}
pd.DataFrame([{"task": task, "metric": k, f"seed {seed}": v}
              for seed, s in teacher_scores.items() for task, m in s.items() for k, v in m.items()]
             ).groupby(["task", "metric"], sort=False).first().round(4)


# %% [markdown]
# ## The TargetNet
#
# **Trunk.** The student starts as a copy of teacher 0 (segmentation): its encoder and decoder blocks form the
# shared **trunk**. With $D$ decoder blocks there are $D + 1$ candidate branch points: $b = 0$ after the
# encoder, $b = d$ after decoder block $d$.
#
# **Branches.** Task $t$ leaves the trunk at its branch point $b_t$: the trunk's activation $h_{b_t}$ goes
# through a channel-coding adapter $A_t$, then through a copy of **teacher $t$'s own** decoder blocks
# $b_t + 1, \dots, D$ and its head. Branching at $b = 0$ keeps only the encoder shared; branching at $b = D$
# shares everything but the adapter and the head. Every task, teacher 0's included, has its own branch.
#
# **Channel coding.** The adapter is a squeeze-and-excitation gate: global average pooling squeezes each
# channel to one number, two fully connected layers turn those numbers into one weight per channel in
# $(0, 1)$, and the features are re-weighted:
#
# $$A(h) = h \odot \sigma\big(W_2\, \mathrm{ReLU}(W_1\, \mathrm{GAP}(h))\big),\qquad
# W_1 \in \mathbb{R}^{r \times C},\ W_2 \in \mathbb{R}^{C \times r},\ r = \max(C/4,\, 16).$$
#
# It lets the shared features, which serve several tasks, be re-weighted into what each copied teacher branch
# expects. The paper does not say how the gate is initialised; **assumption**: $W_2 = 0$ and its bias $4$, so
# every gate starts at $\sigma(4) \approx 0.98$, close to the identity, and the TargetNet starts close to the
# teachers.
#
# **A wider trunk (ours).** The paper's trunk has one teacher's widths. Here the last encoder stage of the trunk
# is a quarter wider than a teacher's (80 channels instead of 64 in the quick profile; `trunk_widths`): one
# small encoder's features are asked to carry two tasks, and with a teacher's widths even the supervised
# ceiling below, trained *with labels*, did not reach the depth teacher within the claim's tolerance (see "How
# this experiment was sized"). The student stays smaller than the teachers together. The widening keeps the
# TargetNet's starting function, so it still starts as the paper's: the teacher's channels keep the teacher's
# weights and read no new channel; the new channels are fresh (random) conv–BN pairs; and a layer that reads the
# widened activation reads the new channels through a separate convolution that starts at zero
# (`WidenedInput`). That convolution is new, not copied: it trains in both phases.

# %%
class ChannelCoding(nn.Module):
    """SE-style adapter: h * sigmoid(W2 ReLU(W1 GAP(h))), W1: C -> max(C / 4, 16), W2: back to C."""

    def __init__(self, channels: int, gate_bias: float = 4.0) -> None:
        super().__init__()
        hidden = max(channels // 4, 16)
        self.w1 = nn.Linear(channels, hidden)
        self.w2 = nn.Linear(hidden, channels)
        nn.init.zeros_(self.w2.weight)  # every gate starts at sigmoid(gate_bias), the same for all images
        nn.init.constant_(self.w2.bias, gate_bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        squeezed = h.mean(dim=(2, 3))  # GAP: (N, C)
        gate = torch.sigmoid(self.w2(F.relu(self.w1(squeezed))))
        return h * gate[:, :, None, None]


# %% [markdown]
# Widening the trunk: a copied convolution that reads more input channels than the teacher's (the new ones
# through a convolution that starts at zero), a decoder block that reads the wider encoder output, and the
# teacher's encoder widened stage by stage with the teacher's channels unchanged:

# %%
class WidenedInput(nn.Module):
    """A copied convolution that reads `extra` more input channels: copy(h[:, :C]) + new(h[:, C:]); `new` starts at 0."""

    def __init__(self, conv: nn.Conv2d, extra: int) -> None:
        super().__init__()
        self.copy, self.split = conv, conv.in_channels
        self.new = nn.Conv2d(extra, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                             bias=False)
        nn.init.zeros_(self.new.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.copy(h[:, :self.split]) + self.new(h[:, self.split:])


def widen_block(block: nn.Module, channels: int) -> nn.Module:
    """A copy of a decoder block whose convolution reads `channels` inputs (the extra ones through `WidenedInput`)."""
    block = copy.deepcopy(block)
    conv = block.conv[0]
    if channels > conv.in_channels:
        block.conv[0] = WidenedInput(conv, channels - conv.in_channels)
    return block


def widen_encoder(encoder: nn.Sequential, widths: tuple[int, ...]) -> nn.Sequential:
    """A copy of a teacher's encoder with `widths` channels per stage, computing the teacher's channels unchanged."""
    stages, c_in = [], encoder[0][0].in_channels
    for stage, width in zip(encoder, widths, strict=True):
        conv, bn = stage[0], stage[1]
        wide = nn.Conv2d(c_in, width, 3, stride=conv.stride, padding=conv.padding, bias=False)  # new rows: random
        wide_bn = nn.BatchNorm2d(width, eps=bn.eps, momentum=bn.momentum)
        with torch.no_grad():
            wide.weight[:conv.out_channels] = 0  # the teacher's channels read no new channel ...
            wide.weight[:conv.out_channels, :conv.in_channels] = conv.weight  # ... and keep the teacher's filters
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(wide_bn, name)[:bn.num_features] = getattr(bn, name)
        stages.append(nn.Sequential(wide, wide_bn, nn.ReLU(inplace=True)))
        c_in = width
    return nn.Sequential(*stages)


# %% [markdown]
# A branch: the adapter, then copies of the teacher's own decoder blocks after the branch point and its head:

# %%
class Branch(nn.Module):
    """Task t from branch point b: adapter, then copies of teacher t's decoder blocks b+1..D and its head."""

    def __init__(self, teacher: EncoderDecoder, point: int, channels: int) -> None:
        super().__init__()
        self.point = point
        self.adapter = ChannelCoding(channels)
        self.blocks = copy.deepcopy(teacher.decoder[point:])
        if point == 0:  # the first block reads the trunk's (wider) encoder output
            self.blocks[0] = widen_block(self.blocks[0], channels)
        self.head = copy.deepcopy(teacher.head)

    def copied_from_teacher(self) -> list[nn.Module]:
        return [self.blocks, self.head]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.adapter(h)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


# %%
class TargetNet(nn.Module):
    """The search network: a shared trunk and, per task, one branch per candidate branch point.

    The trunk is teacher 0's encoder, widened to `trunk_widths`, and decoder blocks.

    forward(x, choice) runs the trunk as far as the deepest chosen point and returns {task: output},
    each task through the branch of its chosen point (choice defaults to self.choice, set by fix()).
    """

    def __init__(self, teachers: dict[str, EncoderDecoder], base_task: str,
                 candidates: dict[str, list[int]], trunk_widths: tuple[int, ...]) -> None:
        super().__init__()
        base = teachers[base_task]
        self.encoder = widen_encoder(base.encoder, trunk_widths)
        self.decoder = copy.deepcopy(base.decoder)
        self.decoder[0] = widen_block(base.decoder[0], trunk_widths[-1])
        channels = {b: trunk_widths[-1] if b == 0 else base.branch_channels(b) for b in range(base.num_branch_points)}
        self.branches = nn.ModuleDict({
            task: nn.ModuleDict({str(b): Branch(teachers[task], b, channels[b]) for b in points})
            for task, points in candidates.items()
        })
        self.choice: dict[str, int] | None = None
        self.frozen_copies = False

    def forward(self, x: torch.Tensor, choice: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
        choice = choice or self.choice
        if choice is None:
            raise ValueError("no branch points chosen: pass choice={task: point} or call fix() first")
        h = self.encoder(x)
        at_point = {0: h}
        for d in range(max(choice.values())):
            h = self.decoder[d](h)
            at_point[d + 1] = h
        return {task: self.branches[task][str(b)](at_point[b]) for task, b in choice.items()}

    def freeze_copies(self, frozen: bool) -> None:
        """'block' phase: the copied teacher layers of every branch are frozen (adapters, trunk and the new inputs
        of WidenedInput train)."""
        self.frozen_copies = frozen
        for part in self.copied_parts():
            freeze(part, frozen)
            for module in part.modules():
                if isinstance(module, WidenedInput):
                    freeze(module.new, False)
        self.train(self.training)

    def copied_parts(self) -> list[nn.Module]:
        """The layers of every branch that are copies of a teacher's."""
        return [part for branches in self.branches.values() for branch in branches.values()
                for part in branch.copied_from_teacher()]

    def train(self, mode: bool = True) -> "TargetNet":
        super().train(mode)
        if self.frozen_copies:  # frozen copies keep the teachers' BatchNorm statistics
            hold_statistics(self.copied_parts())
        return self

    def fix(self, choice: dict[str, int]) -> "TargetNet":
        """A compact copy with one branch per task (at `choice`) and the trunk cut after the deepest point."""
        fixed = copy.deepcopy(self)
        for task, branches in fixed.branches.items():
            for key in [k for k in branches if int(k) != choice[task]]:
                del branches[key]
        fixed.decoder = fixed.decoder[:max(choice.values())]
        fixed.choice = dict(choice)
        fixed.freeze_copies(False)
        return fixed


# %% [markdown]
# ## Losses against the teachers only
#
# The student never sees a label. For an unlabeled image the frozen teachers produce their maps, and each
# task's branch is pulled towards its teacher's map:
#
# * **segmentation**: the KL divergence from the teacher's class distribution to the student's, per pixel,
#   averaged over the $P$ pixels,
#   $L_{seg} = \frac{1}{P}\sum_p \mathrm{KL}\big(\mathrm{softmax}(z^{T}_p)\,\|\,\mathrm{softmax}(z^{S}_p)\big)$
#   (the paper also allows the NLL of the teacher's argmax, `kae_utils.methods.dense.pixel_nll_loss`);
# * **depth**: the scale-invariant loss of Eigen et al. on log-depths, with $d_p = \log y_p - \log y^{*}_p$ over
#   the $n$ pixels of an image and $y^{*}$ the teacher's depth,
#   $L_{depth} = \frac{1}{n}\sum_p d_p^2 - \frac{\lambda}{n^2}\big(\sum_p d_p\big)^2,\ \lambda = 0.5$
#   (`SI_LAMBDA`): the first term penalises every log-error, the second forgives the part that is a common
#   scale of the whole image;
# * **normals**: the angle between the L2-normalised vectors,
#   $L_{normals} = \frac{1}{P}\sum_p \arccos\langle \hat n_p, \hat n^{*}_p \rangle$.
#
# The student's loss is the sum over tasks, $L = \sum_t L_t$. The dense losses are shared with later
# notebooks, so they live in `kae_utils.methods.dense`; the depth loss, for example:

# %%
show_source(scale_invariant_loss)


# %%
def amalgamation_loss(task: str, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """L_t: the student's map of task t against its teacher's map (no ground truth)."""
    if task == "segmentation":
        return pixel_kl_loss(student_out, teacher_out)
    if task == "depth":
        return scale_invariant_loss(student_out, teacher_out, lam=SI_LAMBDA)
    return angular_loss(student_out, teacher_out)


@torch.no_grad()
def teacher_targets(x_images: torch.Tensor, teacher_set: dict[str, EncoderDecoder]) -> list[torch.Tensor]:
    """The frozen teachers' maps of the transfer images, in TASK_LIST order (computed once, kept in memory)."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    maps = predict_maps(teacher_set, x, precision=FLOAT32)
    return [maps[task] for task in TASK_LIST]


try:
    check_images_only((x_train, gt_train["segmentation"]), IMAGE_SHAPE)
except ValueError as error:
    print("passing labels is refused:", error)


# %% [markdown]
# ## Block learning with the branch-point search, then fine-tuning
#
# The paper could not be checked on how the branch point is chosen; **assumption** (following the authors'
# released code): during the first half of training, the **block** phase, every step draws a branch point per
# task uniformly at random, $b_t \sim \mathcal{U}\{0, \dots, D\}$, and trains the trunk and the adapters on
# $L = \sum_t L_t(b_t)$ while the copied teacher layers stay frozen. Every candidate branch of every task thus
# gets trained on a share of the steps, all on the same shared trunk. Then, per task, the branch point with the
# lowest loss is kept,
#
# $$\hat b_t = \arg\min_b \bar L_t(b),$$
#
# where $\bar L_t(b)$ is the mean of task $t$'s loss over the steps of the second half of the block phase that
# drew $b$ (the first half is mostly the adapters settling). The other branches are dropped, the trunk is cut
# after the deepest chosen point, and in the **finetune** phase all parameters, the copied layers included,
# are trained with the branch points fixed.

# %%
def block_phase(net: TargetNet, x: torch.Tensor, targets: list[torch.Tensor], seed: int) -> pd.DataFrame:
    """Train trunk + adapters with a random branch point per task each step; return one row per (step, task)."""
    records: list[dict] = []
    points = {task: sorted(int(b) for b in net.branches[task]) for task in TASK_LIST}
    draw = torch.Generator().manual_seed(seed)

    def step(model: TargetNet, batch):
        xb, *maps = batch
        choice = {t: points[t][int(torch.randint(len(points[t]), (1,), generator=draw))] for t in TASK_LIST}
        out = model(xb, choice)
        losses = {t: amalgamation_loss(t, out[t], m) for t, m in zip(TASK_LIST, maps, strict=True)}
        step_index = len(records) // len(TASK_LIST)
        records.extend({"step": step_index, "task": t, "point": choice[t], "loss": v.item()} for t, v in losses.items())
        return sum(losses.values())

    net.freeze_copies(True)
    Trainer(net, epochs=CFG["block_epochs"], lr=CFG["student_lr"], batch_size=CFG["batch_size"], step_fn=step,
            device=device, seed=seed, desc=f"block phase + branch search (seed {seed})").fit((x, *targets))
    net.freeze_copies(False)
    return pd.DataFrame(records)


def choose_branch_points(records: pd.DataFrame) -> tuple[dict[str, int], pd.DataFrame]:
    """Per task, the point with the lowest mean loss over the second half of the block phase."""
    late = records[records.step >= records.step.max() / 2]
    mean_loss = late.groupby(["task", "point"])["loss"].mean().unstack("point")
    return {task: int(mean_loss.loc[task].idxmin()) for task in TASK_LIST}, mean_loss


def finetune_phase(net: TargetNet, x: torch.Tensor, targets: list[torch.Tensor], seed: int) -> dict:
    """All parameters trainable, branch points fixed."""
    def step(model: TargetNet, batch):
        xb, *maps = batch
        out = model(xb)
        losses = {t: amalgamation_loss(t, out[t], m) for t, m in zip(TASK_LIST, maps, strict=True)}
        return sum(losses.values()), {t: v.detach() for t, v in losses.items()}

    return Trainer(net, epochs=CFG["finetune_epochs"], lr=CFG["student_lr"], batch_size=CFG["batch_size"],
                   step_fn=step, device=device, seed=seed, desc=f"finetune (seed {seed})").fit((x, *targets)).to_dict()


# %% [markdown]
# **The loss-vs-branch-point curve.** To see whether the choice is where it should be, we also measure, right
# after the block phase, every candidate branch of every task on **held-out images** — the test images, with
# the teachers' maps as targets (no labels; this only draws the curve and never feeds back into training).
# The check at the end asks whether the branch point the search picked is the minimum of this curve.

# %%
@torch.no_grad()
def held_out_curve(net: TargetNet, x_images: torch.Tensor, teacher_set: dict[str, EncoderDecoder]) -> pd.DataFrame:
    """Loss of every (task, branch point) against the teachers' maps on held-out images."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    targets = dict(zip(TASK_LIST, teacher_targets(x, teacher_set), strict=True))
    net.eval()
    rows = []
    for point in range(len(net.decoder) + 1):
        preds = predict_maps(lambda xb, p=point: net(xb, {t: p for t in TASK_LIST}), x, precision=FLOAT32, device=device)
        rows += [{"task": t, "point": point, "loss": amalgamation_loss(t, preds[t], targets[t]).item()}
                 for t in TASK_LIST]
    return pd.DataFrame(rows).pivot(index="task", columns="point", values="loss").loc[TASK_LIST]


def initial_targetnet(teacher_set: dict[str, EncoderDecoder], seed: int) -> TargetNet:
    """The TargetNet before training, with every candidate branch (its new weights depend on the seed only)."""
    points = teacher_set[TASK_LIST[0]].num_branch_points
    with seeded(4000 + seed):
        return TargetNet(teacher_set, TASK_LIST[0], {t: list(range(points)) for t in TASK_LIST}, CFG["trunk_widths"])


def amalgamate(x_images: torch.Tensor, teacher_set: dict[str, EncoderDecoder], seed: int) -> dict:
    """The whole method on unlabeled images: TargetNet from teacher 0, block phase + search, fine-tune."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    targets = teacher_targets(x, teacher_set)
    net = initial_targetnet(teacher_set, seed)
    records = block_phase(net, x, targets, seed)
    choice, search_loss = choose_branch_points(records)
    curve = held_out_curve(net, x_test, teacher_set)
    student = net.fix(choice)
    history = finetune_phase(student, x, targets, seed)
    return {"student": student.eval(), "choice": choice, "search_loss": search_loss, "curve": curve,
            "history": history, "search_params": count_parameters(net)}


# %% [markdown]
# ### The supervised multi-task reference
#
# The paper compares its student with multi-task networks trained on the labelled data ("on par with fully
# supervised"). Our reference is the classic multi-task encoder-decoder of the zoo
# (`kae_utils.models.MultiTaskEncoderDecoder`): one shared encoder with the student's trunk widths and one
# decoder and head per task with the teachers' widths — the student's layout when every task branches right
# after the encoder, without the adapters. It is trained from random weights with the ground-truth losses of all
# tasks on the teachers' labelled scenes, with the teachers' recipe (same epochs, schedule and learning rate),
# so it had as much training as a teacher. It breaks the setting's rule (it sees labels) and is a reference
# only.

# %%
SUPERVISED_NAME = f"scenes{IMAGE_SHAPE[-1]}-multitask"
supervised_net = zoo.obtain(SUPERVISED_NAME, TEACHERS, device)
if tuple(zoo.entry(SUPERVISED_NAME).arch_args["encoder_widths"]) != tuple(CFG["trunk_widths"]):
    raise ValueError(f"the zoo's {SUPERVISED_NAME} does not have the student's trunk {CFG['trunk_widths']}")
pd.DataFrame(zoo.summary([SUPERVISED_NAME])).set_index("entry")

# %% [markdown]
# ### The supervised ceiling
#
# What could *any* method reach with this student's architecture, these images and this budget? The
# **supervised ceiling** is the student's own network — the TargetNet cut at the branch points the search chose,
# initialised exactly as the student was (the same copies of the teachers, the same new weights) — trained with
# the **true labels** of the same transfer images for the same budget (the block and fine-tuning epochs together,
# every parameter trainable), with the teachers' supervised losses (cross-entropy; the scale-invariant loss;
# the angle). A label-free student cannot be expected to beat it. Where the ceiling itself does not reach a
# teacher within the claim's tolerance, the claim "the student matches that teacher" cannot be tested here, and
# the claims cell says so (`kae_utils.methods.amalgamation.train_ceiling`, `ceiling_reaches`).

# %%
def supervised_loss(outputs: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over tasks of the loss against ground truth (kae_utils.benchmarks.tasks: the teachers' training losses)."""
    return sum(DENSE_TASKS[t].supervised_loss(outputs[t], labels[t]) for t in TASK_LIST)


def supervised_ceiling(teacher_set: dict[str, EncoderDecoder], choice: dict[str, int], seed: int) -> nn.Module:
    """The student's architecture and initialisation, trained with the labels of the transfer images."""
    net = initial_targetnet(teacher_set, seed).fix(choice)
    train_ceiling(net, X_TRANSFER, {t: gt_train[t] for t in TASK_LIST}, supervised_loss,
                  epochs=CFG["block_epochs"] + CFG["finetune_epochs"], lr=CFG["student_lr"],
                  batch_size=CFG["batch_size"], device=device, seed=seed, desc=f"supervised ceiling (seed {seed})")
    return net.eval()

# %% [markdown]
# ## Running the experiments
#
# For every seed: amalgamate the student from that seed's teachers (block phase with the search, then
# fine-tuning), then train the supervised ceiling at the branch points the student chose.

# %% tags=["nbval-ignore-output"]
runs = {}
for seed in CFG["seeds"]:
    runs[seed] = amalgamate(X_TRANSFER, teachers[seed], seed)
    runs[seed]["ceiling"] = supervised_ceiling(teachers[seed], runs[seed]["choice"], seed)
    runs[seed]["supervised"] = supervised_net  # the same reference for every seed

# %% [markdown]
# ## Results
#
# ### Where the tasks branch off
#
# The chosen branch point of each task (what it costs in parameters follows under "Size and speed"):

# %%
D = teachers[CFG["seeds"][0]][TASK_LIST[0]].num_branch_points - 1
point_names = {b: "after the encoder" if b == 0 else f"after decoder block {b}" for b in range(D + 1)}
for seed, run in runs.items():
    print(f"seed {seed}: " + "; ".join(f"{t} branches {point_names[b]} (b = {b})" for t, b in run["choice"].items()))

# %% [markdown]
# **The loss-vs-branch-point curve** of each task: the search's own estimate (mean training loss of the steps
# that drew the point, second half of the block phase) and the held-out loss of every candidate after the
# block phase. The circle marks the chosen point. Sharing more of the trunk (larger $b$) saves parameters; the
# curve shows what it costs each task.

# %% tags=["nbval-ignore-output"]
seed0 = CFG["seeds"][0]
fig, axes = plt.subplots(1, len(TASK_LIST), figsize=(3.6 * len(TASK_LIST), 3.0))
for ax, task in zip(np.atleast_1d(axes), TASK_LIST, strict=True):
    for seed, run in runs.items():
        alpha = 1.0 if seed == seed0 else 0.35
        curve, search = run["curve"].loc[task], run["search_loss"].loc[task]
        ax.plot(curve.index, curve.values, "o-", color="C0", alpha=alpha, label="held-out" if seed == seed0 else None)
        ax.plot(search.index, search.values, "s--", color="C1", alpha=alpha,
                label="search (training)" if seed == seed0 else None)
        chosen = run["choice"][task]
        ax.plot([chosen], [curve[chosen]], "o", ms=13, mfc="none", mec="k", alpha=alpha,
                label="chosen" if seed == seed0 else None)
    ax.set_xticks(range(D + 1), ["b = 0\nencoder"] + [f"b = {b}\ndecoder {b}" for b in range(1, D + 1)], fontsize=7)
    ax.set_title(f"{task}: loss vs branch point", fontsize=9)
    ax.set_ylabel("loss against the teacher")
    ax.grid(alpha=0.3)
np.atleast_1d(axes)[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Student vs teachers vs the ceiling and the supervised reference
#
# Each model on the test split, against ground truth (mean over seeds; the standard deviation over seeds in
# the full profile). Higher is better for mIoU, pixel accuracy, $\delta < 1.25$ and "within 11.25<!-- fixed -->";
# lower for RMSE, abs rel and mean angle. The supervised ceiling is the student's architecture trained with the
# labels of the transfer images for the student's budget; the supervised reference is the zoo's multi-task
# network, trained with labels for a teacher's budget.

# %% tags=["nbval-ignore-output"]
rows = []
for seed, run in runs.items():
    run["preds"] = predict_maps(run["student"], x_test, precision=FLOAT32)
    sup_preds = predict_maps(run["supervised"], x_test, precision=FLOAT32)
    for model, scores in (("teacher (own task)", teacher_scores[seed]), ("KA student", evaluate(run["preds"])),
                          ("supervised ceiling", evaluate(predict_maps(run["ceiling"], x_test, precision=FLOAT32))),
                          ("supervised multi-task (reference)", evaluate(sup_preds))):
        for task, values in scores.items():
            rows += [{"seed": seed, "task": task, "model": model, "metric": k, "value": v} for k, v in values.items()]
scores_long = pd.DataFrame(rows)
MODELS = list(scores_long.model.unique())
by_model = scores_long.groupby(["task", "metric", "model"], sort=False)["value"]
summary = by_model.mean().unstack("model")[MODELS].round(4)
if len(CFG["seeds"]) > 1:  # the full profile: mean ± std over seeds
    summary = summary.astype(str) + " ± " + by_model.std().unstack("model")[MODELS].round(4).astype(str)
summary

# %% [markdown]
# Mean IoU averages over the classes; per class (first seed) it shows where the models differ: the floor and
# the walls cover most pixels and are easy, the five object shapes are small and hard to tell apart.

# %% tags=["nbval-ignore-output"]
sup_preds0 = predict_maps(runs[seed0]["supervised"], x_test, precision=FLOAT32)
per_class = pd.DataFrame({
    model: iou_per_class(preds["segmentation"], gt_test["segmentation"], NUM_CLASSES).numpy()
    for model, preds in (("teacher", teacher_preds[seed0]), ("KA student", runs[seed0]["preds"]),
                         ("supervised ceiling", predict_maps(runs[seed0]["ceiling"], x_test, precision=FLOAT32)),
                         ("supervised (reference)", sup_preds0))
}, index=list(SCENE_CLASSES))
per_class["share of test pixels"] = torch.bincount(gt_test["segmentation"].flatten(), minlength=NUM_CLASSES
                                                   ).numpy() / gt_test["segmentation"].numel()
per_class.round(3)

# %% [markdown]
# **Distance to the teachers.** The student learns the teachers' maps, not the ground truth; the ceiling learns
# the ground truth. Each model's metrics against the *teachers' maps* of the test images (the teacher's argmax as
# the segmentation target), first seed: how closely each one reproduces the teachers.

# %% tags=["nbval-ignore-output"]
teacher_as_target = {t: teacher_preds[seed0][t].argmax(1) if t == "segmentation" else teacher_preds[seed0][t]
                     for t in TASK_LIST}
to_teacher = {model: {f"{t} {k}": v for t in TASK_LIST
                      for k, v in DENSE_TASKS[t].metrics(preds[t], teacher_as_target[t]).items()}
              for model, preds in (("KA student", runs[seed0]["preds"]),
                                   ("supervised ceiling", predict_maps(runs[seed0]["ceiling"], x_test, precision=FLOAT32)),
                                   ("supervised (reference)", sup_preds0))}
pd.DataFrame(to_teacher).round(4)

# %% [markdown]
# ### Size and speed
#
# Parameters of the compact student vs the teachers it replaces (the search network with every candidate
# branch is needed only during the block phase). Inference time: the whole test set, the student once vs
# every teacher in turn, median of three repeats on this machine (noisy; not compared by nbval).

# %%
student_params = {seed: count_parameters(run["student"]) for seed, run in runs.items()}
teachers_params = sum(count_parameters(t) for t in teachers[seed0].values())
adapter_params = sum(count_parameters(b.adapter) for bs in runs[seed0]["student"].branches.values() for b in bs.values())
print(f"each teacher:                {count_parameters(teachers[seed0][TASK_LIST[0]]):>9,}")
print(f"teachers together:           {teachers_params:>9,}")
for seed in CFG["seeds"]:
    print(f"student, seed {seed}:             {student_params[seed]:>9,}  ({student_params[seed] / teachers_params:.0%})")
print(f"  of which adapters (seed {seed0}): {adapter_params:>9,}")
print(f"search network (all branches): {runs[seed0]['search_params']:>7,}  (block phase only)")
print(f"supervised reference:        {count_parameters(supervised_net):>9,}")

# %% tags=["nbval-ignore-output"]
student_time = median_time(lambda: predict_maps(runs[seed0]["student"], x_test, precision=FLOAT32), repeats=3)
teachers_time = median_time(lambda: predict_maps(teachers[seed0], x_test, precision=FLOAT32), repeats=3)
print(f"test set ({len(x_test)} images): student {student_time * 1e3:.0f} ms, "
      f"teachers together {teachers_time * 1e3:.0f} ms")


# %% [markdown]
# ### Predicted maps
#
# Four test scenes (first seed): for each task, the teacher's map, the student's and the ground truth.

# %%
def render_map(task: str, value: torch.Tensor, reference: torch.Tensor | None = None) -> np.ndarray:
    """An RGB picture of one map; depth uses the range of `reference` (the ground truth) for all columns."""
    if task == "segmentation":
        labels = value.argmax(0) if value.ndim == 3 else value
        return colorize_segmentation(labels, NUM_CLASSES)
    if task == "depth":
        ref = reference if reference is not None else value
        return colorize_depth(value, vmin=float(ref.min()), vmax=float(ref.max()))
    return colorize_normals(value)


def show_scenes(indices, tasks=TASK_LIST, seed=seed0) -> plt.Figure:
    """Rows: scenes; columns: input, then teacher | student | ground truth for each task."""
    columns = [("input", None, None)] + [(task, who, task) for task in tasks
                                         for who in ("teacher", "student", "ground truth")]
    fig, axes = plt.subplots(len(indices), len(columns), figsize=(1.55 * len(columns), 1.6 * len(indices)),
                             squeeze=False)
    for row, i in enumerate(indices):
        for col, (title, who, task) in enumerate(columns):
            ax = axes[row, col]
            if task is None:
                ax.imshow(x_test[i].permute(1, 2, 0).numpy())
            else:
                source = {"teacher": teacher_preds[seed], "student": runs[seed]["preds"], "ground truth": gt_test}[who]
                ax.imshow(render_map(task, source[task][i], gt_test[task][i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title if task is None else f"{task}\n{who}", fontsize=8)
        axes[row, 0].set_ylabel(f"scene {i}", fontsize=8)
    fig.tight_layout()
    return fig


show_scenes([0, 1, 2, 3])
plt.show()


# %% [markdown]
# In Jupyter, the controls below redraw the figure for any test scene and task; in a batch run they print
# one line instead.

# %%
def browse(scene: int = 0, task: str = TASK_LIST[0]) -> None:
    """Show one test scene with its maps for one task (the widget's callback)."""
    show_scenes([scene], tasks=[task])
    plt.show()


explore(browse, scene=list(range(min(32, len(x_test)))), task=TASK_LIST)


# %% [markdown]
# ### Paper vs this run
#
# The paper's numbers are on NYUv2 with full-size teachers; ours on rendered 64×64 rooms with tiny
# networks, so only the pattern can be compared. The paper reports the student *above* both teachers on
# their own tasks (e.g. higher mIoU and lower depth error than the single-task teachers) and close to
# supervised multi-task networks, with fewer parameters than the teachers together.

# %% tags=["nbval-ignore-output"]
def metric_values(task: str, metric: str, model: str) -> list[float]:
    """The values of one metric of one task for `model`, ordered by seed."""
    sel = scores_long[(scores_long.task == task) & (scores_long.metric == metric) & (scores_long.model == model)]
    return sel.sort_values("seed")["value"].tolist()


HEADLINE = {task: DENSE_TASKS[task].headline for task in TASK_LIST}
TEACHER, STUDENT, SUPERVISED = "teacher (own task)", "KA student", "supervised multi-task (reference)"
CEILING = "supervised ceiling"
results_rows = []
for task in TASK_LIST:
    metric = HEADLINE[task]
    for model, pattern in ((TEACHER, ""), (STUDENT, "better than the teacher"),
                           (CEILING, "(ours: the bound of a label-free student here)"),
                           (SUPERVISED, "on par with the student")):
        results_rows.append((f"{task} {metric}: {model}", pattern, *mean_std(metric_values(task, metric, model))))
results_rows.append(("student parameters / teachers together", "< 1",
                     *mean_std(p / teachers_params for p in student_params.values())))
results_table = pd.DataFrame(results_rows,
                             columns=["quantity", "paper (pattern)", f"this run (mean of {len(CFG['seeds'])})", "std"])
results_table.round(4)

# %% [markdown]
# ## Claims
#
# Checked with rules and tolerances fixed before looking at this run's numbers:
#
# 1. **The student matches or beats each teacher on the teacher's own task** (mean over seeds): segmentation
#    mIoU at least the teacher's minus 0.02<!-- m: tolerances.miou -->; depth RMSE at most 5 %<!-- m: 100 * tolerances.rmse_relative --> above the teacher's; normals (full
#    profile) mean angle at most 1° above the teacher's. The paper says the student is *better*; we check the
#    weaker "matches or beats" within these tolerances, which are about the seed-to-seed spread we expect of
#    such small networks on a few hundred test images. One line per task.
# 2. **The student is smaller than the teachers together** (every seed).
# 3. **The search picks the branch point the curve says**: for every task and seed, the point chosen from the
#    training losses of the block phase is the minimum of the held-out loss-vs-branch-point curve.
# 4. **On par with fully supervised multi-task learning**: on every task, the student is within the same
#    tolerances of the supervised multi-task reference (about the student's size; see above) or better.
#
# Claims 1 and 4 compare a label-free student with a model of the same tolerance; each is testable only where
# the supervised ceiling (the student's architecture trained with labels for its budget) reaches that model
# within the claim's own tolerance (`ceiling_reaches`). Where it does not, the claim is still checked and
# printed, marked untestable with the reason.

# %%
MIOU_TOL, RMSE_REL_TOL, ANGLE_TOL = 0.02, 0.05, 1.0
TOLERANCES = {"segmentation": MIOU_TOL, "depth": RMSE_REL_TOL, "normals": ANGLE_TOL}  # (kae_utils.benchmarks.tasks)
headline = {(task, model): mean_std(metric_values(task, HEADLINE[task], model))[0]
            for task in TASK_LIST for model in (TEACHER, STUDENT, CEILING, SUPERVISED)}
choice_matches = {(seed, task): run["choice"][task] == int(run["curve"].loc[task].idxmin())
                  for seed, run in runs.items() for task in TASK_LIST}
ceiling_below = {model: [t for t in TASK_LIST
                         if not ceiling_within_tolerance(t, headline[(t, CEILING)], headline[(t, model)], TOLERANCES)]
                 for model in (TEACHER, SUPERVISED)}
claims = [
    Claim(f"the student matches or beats the {task} teacher on its own task",
          bool(within_tolerance(task, headline[(task, STUDENT)], headline[(task, TEACHER)], TOLERANCES)),
          f"{HEADLINE[task]}: student {headline[(task, STUDENT)]:.4f} vs teacher {headline[(task, TEACHER)]:.4f} "
          f"(supervised ceiling {headline[(task, CEILING)]:.4f})",
          untestable="" if task not in ceiling_below[TEACHER] else
          "the supervised ceiling does not reach the teacher within the tolerance",
          effect=tolerance_effect(task, "student - teacher", headline[(task, STUDENT)], headline[(task, TEACHER)], TOLERANCES))
    for task in TASK_LIST
]
claims += [
    Claim("the student has fewer parameters than the teachers together",
          bool(max(student_params.values()) < teachers_params),
          f"student {max(student_params.values())} vs teachers {teachers_params}",
          effect=Effect("student / teachers together, parameters (strictly below)",
                        max(student_params.values()) / teachers_params, 1.0, "at most")),
    Claim("the branch point chosen for every task is the minimum of its loss-vs-branch-point curve",
          bool(all(choice_matches.values())),
          "; ".join(f"seed {s} {t}: chosen {runs[s]['choice'][t]}, curve minimum "
                    f"{int(runs[s]['curve'].loc[t].idxmin())}" for (s, t) in choice_matches)),
    Claim("the student is on par with the supervised multi-task network of the same size on every task",
          bool(all(within_tolerance(t, headline[(t, STUDENT)], headline[(t, SUPERVISED)], TOLERANCES) for t in TASK_LIST)),
          "; ".join(f"{t} {HEADLINE[t]}: student {headline[(t, STUDENT)]:.4f} vs supervised "
                    f"{headline[(t, SUPERVISED)]:.4f} (ceiling {headline[(t, CEILING)]:.4f})" for t in TASK_LIST),
          untestable="" if not ceiling_below[SUPERVISED] else
          f"the supervised ceiling does not reach the reference within the tolerance on {', '.join(ceiling_below[SUPERVISED])}",
          effect=tolerance_effect(TASK_LIST[0], "student - supervised multi-task (other tasks checked too)",
                                  headline[(TASK_LIST[0], STUDENT)], headline[(TASK_LIST[0], SUPERVISED)], TOLERANCES)),
]
report = check_claims(claims)

# %%
metrics = {
    "headline": ("; ".join(f"{t} {HEADLINE[t]} student {headline[(t, STUDENT)]:.3f} vs teacher "
                           f"{headline[(t, TEACHER)]:.3f}" for t in TASK_LIST)
                 + f"; {np.mean(list(student_params.values())) / teachers_params:.0%} of the teachers' parameters"),
    "scores": scores_long.to_dict(orient="records"),
    "headline_metrics": {f"{t}|{m}": v for (t, m), v in headline.items()},
    "ceiling": {t: {"ceiling": headline[(t, CEILING)], "teacher": headline[(t, TEACHER)],
                    "supervised_reference": headline[(t, SUPERVISED)], "metric": HEADLINE[t],
                    "reaches_teacher": t not in ceiling_below[TEACHER],
                    "reaches_reference": t not in ceiling_below[SUPERVISED]} for t in TASK_LIST},
    "transfer_images": len(X_TRANSFER),
    "trunk_widths": list(CFG["trunk_widths"]),
    "branch_points": {str(seed): run["choice"] for seed, run in runs.items()},
    "held_out_curve": {str(seed): {t: run["curve"].loc[t].tolist() for t in TASK_LIST} for seed, run in runs.items()},
    "search_loss": {str(seed): {t: run["search_loss"].loc[t].tolist() for t in TASK_LIST} for seed, run in runs.items()},
    "parameters": {"students": {str(s): p for s, p in student_params.items()}, "teachers_together": teachers_params,
                   "search_network": runs[seed0]["search_params"]},
    "inference_seconds": {"student": student_time, "teachers_together": teachers_time},
    "tolerances": {"miou": MIOU_TOL, "rmse_relative": RMSE_REL_TOL, "angle_degrees": ANGLE_TOL},
    "seeds": CFG["seeds"],
    "tasks": TASK_LIST,
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, SI_LAMBDA=SI_LAMBDA)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### What the claims say on this data
#
# On the quick profile (64×64 rooms, one seed, teachers of about 47,000 parameters from the zoo, the student
# trained for 4 + 4 epochs on 2,048 unlabeled scenes with a trunk whose last encoder stage is a quarter wider than
# a teacher's) four of the five checks pass, and all five can be tested: the supervised ceiling (the student's
# network trained with the labels of the same scenes for the same 8 epochs) reaches mIoU 0.756<!-- m: headline_metrics["segmentation|supervised ceiling"] --> and depth RMSE
# 0.643<!-- m: headline_metrics["depth|supervised ceiling"] -->, at or above both teachers (0.737<!-- m: headline_metrics["segmentation|teacher (own task)"] --> and 0.641<!-- m: headline_metrics["depth|teacher (own task)"] -->).
#
# - **Segmentation: matched.** The student's mIoU is its teacher's (0.737<!-- m: headline_metrics["segmentation|KA student"] --> against 0.737<!-- m: headline_metrics["segmentation|teacher (own task)"] -->).
# - **Depth: not matched (FAIL), and this time the experiment could have matched it.** The student's depth RMSE is
#   0.693<!-- m: headline_metrics["depth|KA student"] --> against its teacher's 0.641<!-- m: headline_metrics["depth|teacher (own task)"] -->, 8 %<!-- m: 100 * (headline_metrics["depth|KA student"] / headline_metrics["depth|teacher (own task)"] - 1) --> higher where the tolerance is 5 %<!-- m: 100 * tolerances.rmse_relative --> ($\delta < 1.25$ 0.919<!-- m: pick(scores, model="KA student", metric="delta<1.25").value --> against
#   0.933<!-- m: pick(scores, model="teacher (own task)", metric="delta<1.25").value -->). The same network trained with labels gets 0.643<!-- m: headline_metrics["depth|supervised ceiling"] --> from the same images and epochs, so the gap is not
#   the budget or the architecture: it is what this student learns from the teachers' maps in that budget. Both
#   tasks branch right after the encoder, so the depth branch is a copy of the depth teacher's whole decoder, fed
#   by a trunk that starts as the *segmentation* teacher's encoder; with labels the trunk learns depth features
#   within 8 epochs, from the depth teacher's maps (scale-invariant loss against a teacher with RMSE 0.64<!-- m: headline_metrics["depth|teacher (own task)"] --> to the
#   truth) it does not. A smaller design (512 scenes, a teacher's trunk) could not tell these apart, since its
#   ceiling would not have reached the teacher either (see "How this experiment was sized"). The paper's student,
#   trained far longer on NYUv2, beats its teachers; the full profile (not yet run on a GPU) is where a longer
#   budget can be checked.
# - **Smaller than the teachers together**: 90,560 parameters against 93,800 (97 %<!-- m: 100 * parameters.students[0] / parameters.teachers_together -->). The wider trunk costs part of
#   the margin (see the [decisions log](../docs/decisions.md#notebook-04-student-becoming-master)).
# - **The search.** The branch point chosen from the block phase's training losses is the minimum of the
#   held-out curve for both tasks ($b = 0$): every decoder block that depth shares with segmentation costs it,
#   and the reverse.
# - **Supervised multi-task learning: on par.** The supervised reference (the student's trunk widths, one
#   decoder per task, trained with labels for the teachers' whole budget: 30 epochs on 2,048 labelled scenes)
#   has mIoU 0.740<!-- m: headline_metrics["segmentation|supervised multi-task (reference)"] --> and RMSE 0.669<!-- m: headline_metrics["depth|supervised multi-task (reference)"] -->; the student is within the tolerances of both (0.737<!-- m: headline_metrics["segmentation|KA student"] -->; 0.693<!-- m: headline_metrics["depth|KA student"] -->, 3.6 %<!-- m: 100 * (headline_metrics["depth|KA student"] / headline_metrics["depth|supervised multi-task (reference)"] - 1) --> above).
#
# With the tiny teachers of the first version (trained inside the notebook) all five checks passed, because a weak
# teacher is easy to match; with the zoo's teachers, which segment the objects, the same method and the same
# tolerances find the depth gap above (the [decisions log](../docs/decisions.md#notebook-04-student-becoming-master)
# has the numbers of then).

# %% [markdown]
# ### How this experiment was sized
#
# The design was chosen from the supervised ceiling alone, before the claims were run: one-thread experiments on
# the quick data with the student's network cut at branch point 0 (both tasks branch after the encoder, as the
# search chose before), initialised from the teachers as here, trained with the labels of the transfer scenes
# (512 or 2,048 scenes, a teacher's trunk or the wider one, 1 to 16 epochs; the table of those ceilings is in the
# [decisions log](../docs/decisions.md#notebook-04-student-becoming-master)). The quick profile uses the smallest
# design whose ceiling reaches the depth teacher within the tolerance: as many unlabeled scenes as a teacher was
# trained on, the wider trunk (the student stays smaller than the teachers together, so the parameter claim stays
# testable), 4 + 4 epochs. Then the claims were run once; the run stored here is that run, and its own ceiling is
# in the results table above.

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **Data and networks**: rendered `scenes` (64×64 in the quick profile, 128×128 in the full one) instead of
#   NYUv2 photographs, and encoder-decoders of about 47,000 (quick) or 780,000 (full) parameters instead of
#   the paper's full-size teachers. Nothing can be downloaded where this repository is built;
#   the pattern of the results, not their size, is comparable.
# - **Teachers**: zoo entries (`kae_utils.zoo`), trained once with labels on 2,048 (quick) or 8,000 (full)
#   rendered scenes of their own, which no notebook uses, and scored on this notebook's test split. The
#   student's transfer set is this notebook's training images, which the teachers never saw: as in a real
#   amalgamation, where the teachers were trained by others on their own data. One set of teachers serves
#   every seed.
# - **Transfer set and budget**: as many unlabeled scenes as each teacher was trained on (2,048 in the quick
#   profile: the 512 of the training split and 1,536 more rendered after the test split; 8,000 in the full one),
#   for 4 + 4 epochs in the quick profile; see "How this experiment was sized".
# - **Wider trunk (ours)**: the paper's trunk has one teacher's widths; ours widens the last encoder stage by a
#   quarter (64 → 80 channels quick, 256 → 320 full), function-preserving (the teacher's channels keep its
#   weights and read no new channel; layers that read the new channels do so through new weights that start at
#   zero), so that the student starts where the paper's does. It was chosen from the supervised ceiling,
#   before the claims were run; the student stays smaller than the teachers together.
# - **No skip connections or pooling indices** in the encoder-decoder: a branch then only needs the trunk's
#   activation at its branch point. Decoders of the SegNet family reuse the encoder's pooling indices; a
#   branch of such a network would need them as well.
# - **Branch-point search (assumption, from the authors' code)**: a random branch point per task each step
#   during the first half of training (the block phase), then per task the point with the lowest mean
#   training loss over the second half of that phase, fixed for fine-tuning. The paper's text could not be
#   checked on this rule. The held-out curve is our addition, to check the choice; it is measured on the
#   test images against the teachers' maps (no labels) and never used for training or for the choice.
# - **Every task has its own branch**, teacher 0's task included; the trunk is initialised from teacher 0
#   (segmentation). In the paper the first teacher's own decoder may continue as the trunk.
# - **Adapter initialisation (assumption)**: $W_2 = 0$ with bias 4, so the gates start near 1.
# - **Depth head**: predicts a log-depth whose bias starts at the mean log-depth of the training labels
#   (teachers and supervised reference); without it the depth of the networks trained from scratch was
#   still at the wrong scale after the quick profile's few epochs.
# - **Block phase**: the copied teacher layers are frozen *and* keep the teachers' BatchNorm statistics
#   (eval mode); the trunk and the adapters train. Fine-tuning then trains everything.
# - **Losses**: KL at temperature 1 for segmentation (the NLL of the teacher's argmax is available in
#   `kae_utils.methods.dense`); the scale-invariant loss with $\lambda = 0.5$ for depth; the angle for normals. The
#   task losses are summed without weights.
# - **Three or more tasks**: the full profile amalgamates three teachers *online* (all at once). The paper's
#   incremental scheme (the two-task student becomes a teacher for the third task) is not implemented.
# - **Supervised reference**: a zoo entry, the multi-task encoder-decoder with one shared encoder of the
#   student's trunk widths and one decoder per task (the student's layout when every task branches after the
#   encoder, without the adapters), trained from random weights with ground truth with the teachers' recipe and
#   data — not the paper's published multi-task baselines. It was rebuilt when the trunk was widened, so that
#   it keeps the student's architecture.
# - **Supervised ceiling (ours)**: the student's network at the chosen branch points, initialised as the
#   student was, trained with the labels of the transfer images for the student's budget (every parameter
#   trainable for all its epochs, no block phase). It decides which "matches" claims this run can test.
# - **Seeds**: the quick profile is a single seed; the full profile reports mean and standard deviation over
#   three seeds of the student (one set of teachers).
#
# ## Exercises
#
# 1. Force both tasks to branch at the same point (every point in turn) and plot the student's test metrics
#    against the point. Does the held-out curve predict them?
# 2. Replace the KL loss by `pixel_nll_loss` (the teacher's argmax as a hard label). What changes for the
#    small object classes?
# 3. Set `SI_LAMBDA = 1.0`. The student's depth is then free in scale: what happens to RMSE and to
#    $\delta < 1.25$, and why?
# 4. Remove the adapters (replace `ChannelCoding` by `nn.Identity`). How much do they matter here?
# 5. Implement the incremental scheme: amalgamate segmentation and depth, then use the student as the teacher
#    of a third task's amalgamation with the normals teacher.
#
# ## References
#
# - J. Ye, Y. Ji, X. Wang, K. Ou, D. Tao, M. Song. *Student Becoming the Master: Knowledge Amalgamation for
#   Joint Scene Parsing, Depth Estimation, and More.* CVPR 2019; arXiv:1904.10167.
# - D. Eigen, C. Puhrsch, R. Fergus. *Depth Map Prediction from a Single Image using a Multi-Scale Deep
#   Network.* NeurIPS 2014 (the scale-invariant loss).
# - J. Hu, L. Shen, G. Sun. *Squeeze-and-Excitation Networks.* CVPR 2018 (the channel gate of the adapter).
# - V. Badrinarayanan, A. Kendall, R. Cipolla. *SegNet: A Deep Convolutional Encoder-Decoder Architecture for
#   Image Segmentation.* TPAMI 2017.
# - N. Silberman, D. Hoiem, P. Kohli, R. Fergus. *Indoor Segmentation and Support Inference from RGBD Images*
#   (NYUv2). ECCV 2012.
