# %% [markdown]
# # 02 · Amalgamating knowledge towards comprehensive classification
#
# **Shen, Wang, Song, Sun & Song (2019). *Amalgamating Knowledge towards Comprehensive Classification*.**
# AAAI 2019. [arXiv:1811.02796](https://arxiv.org/abs/1811.02796)
#
# Several *teachers* have been trained, each on its own set of classes (one knows dog breeds 1–60, another
# breeds 61–120, ...). Their training data and labels are gone; only their weights and some **unlabeled**
# images remain. Can we build one compact *student* that classifies the **union** of all their classes,
# without a single label?
#
# Shen et al. answer in two steps. **Feature amalgamation**: at every layer, the teachers' feature maps on
# the same image are stacked and compressed by a small 1×1-convolution auto-encoder into a compact
# *amalgamated feature* that has the width of the student's layer. **Parameter learning**: the student's
# layers are then trained one by one to map the amalgamated feature of the layer below to that of their
# own layer (a *feature alignment module*, FAM, makes this easier), and finally end to end. The student's
# target scores are the teachers' score vectors put side by side. The paper reports that the student
# handles the comprehensive task and, in most cases, beats each teacher on that teacher's own sub-task.
#
# This is the method the rest of the repository builds on; notebooks 03–06 reuse its ideas and helpers.
#
# **What you will see**
#
# 1. The offline data (`digits`; `shapes` with 48 shape × colour classes in the full profile) and the
#    teachers, each trained on part of the classes.
# 2. Feature amalgamation with 1×1-conv auto-encoders: direct (DFA) and incremental (IFA).
# 3. Score-vector amalgamation, for disjoint and for overlapping class sets, and the score term (KL at
#    T = 1, as in the authors' code; the MSE regression of the logits as an ablation).
# 4. Layer-wise parameter learning with FAM, then joint learning — all without labels (checked in code).
# 5. Baselines (the teachers' ensemble, multi-teacher KD, a student trained with labels), the **supervised
#    ceiling** (the student's own architecture trained with the true labels: what any label-free method could
#    at best reach here) and ablations (no FAM, no layer-wise stage, MSE scores, DFA vs IFA), per-teacher
#    comparisons, size and speed.
# 6. The paper's claims checked against this run, each only where the ceiling says the experiment can test it.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 02 -p SEED 1` or `kae run 02 --profile full -p DATASET shapes`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, under 2 minutes; "full": wider nets, longer training, 3 seeds (for a GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "digits"  # "digits" (8x8 handwritten digits, 10 classes) or "shapes" (shape x colour, 48 classes)
KD_TEMPERATURE: float = 4.0  # temperature of the multi-teacher KD baseline
SCORE_LOSS: str = "kl"  # the KA student's score term: "kl" (KL at temperature 1, the authors' code) or "mse"
TEACHERS: str = "zoo"  # "zoo": load the trained teachers shipped in zoo/; "train": retrain them with the zoo's recipe

# %%
from kae_utils.core.params import check_choice, check_common_parameters, check_number
from kae_utils.core.scale import profile_settings
from kae_utils.methods.distillation import SCORE_LOSSES

SUPPORTED_DATASETS = ("digits", "shapes")
check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_choice("SCORE_LOSS", SCORE_LOSS, SCORE_LOSSES)
check_number("KD_TEMPERATURE", KD_TEMPERATURE, positive=True)

NOTEBOOK = "02_comprehensive_classification"
SETTINGS = {  # the teachers come from the zoo (kae_utils.zoo); these are the students' settings
    "quick": dict(
        seeds=[SEED],
        student_widths=(16, 32, 64), ae_epochs=30, layerwise_epochs=30, joint_epochs=30,
        batch_size=128, lr=3e-3, transfer_size=None,
    ),
    "full": dict(
        seeds=[SEED, SEED + 1, SEED + 2],
        student_widths=(32, 64, 128), ae_epochs=30, layerwise_epochs=40, joint_epochs=40,
        batch_size=128, lr=2e-3, transfer_size=20000,
    ),
}
TEACHER_WIDTH = {"digits": 16, "shapes": 32}  # the zoo's teachers of each data set: ConvNets of this first width
CFG = {**profile_settings(SETTINGS, PROFILE), "teacher_width": TEACHER_WIDTH[DATASET]}  # KAE_SCALE: smoke
for name, value in CFG.items():
    print(f"{name:>16}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the teacher cache, `runs/`) are resolved from the
# repository root by `kae_utils`, so the notebook runs from any working directory.

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import kae_utils.methods.amalgamation
import kae_utils.methods.distillation
from kae_utils import zoo
from kae_utils.data import classification_task
from kae_utils.display.source import show_source
from kae_utils.display.viz import plot_confusion, sample_grid
from kae_utils.evaluation.metrics import accuracy, confusion_matrix
from kae_utils.evaluation.results import Claim, Effect, check_claims, mean_std, median_time, write_metrics
from kae_utils.methods.amalgamation import (
    amalgamate_scores,
    ceiling_reaches,
    check_images_only,
    ensemble_predict,
    restricted_accuracy,
    teacher_accuracy,
    teacher_outputs,
    train_ceiling,
)
from kae_utils.methods.distillation import multi_teacher_kd_loss, score_loss
from kae_utils.models import build_model, count_parameters
from kae_utils.models.seeding import seeded
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics
from kae_utils.training.predict import predict_logits
from kae_utils.training.trainer import Trainer

device = setup_notebook(SEED, DEVICE)
print("device type:", device.type)
print(numerics.describe())  # bf16 autocast where the hardware runs it natively; KAE_PRECISION=fp32 forces float32

# %% [markdown]
# ## Data
#
# The paper splits each of four fine-grained data sets (Stanford Dogs, CUB-200-2011, FGVC-Aircraft,
# Stanford Cars) into class-disjoint parts and trains one teacher per part. Those sets cannot be
# downloaded here. The quick profile uses scikit-learn's `digits` (1,797 real 8×8 digits, split once into
# halves, stratified); the full profile is meant for `shapes` with `DATASET="shapes"`: generated 32×32
# images whose object has one of 8 shapes and 6 colours, i.e. a 48-way task (shape × colour), which is
# closer to the paper's many fine-grained classes.
#
# The **training images, without their labels, are the transfer set** of every student below. The
# labels of the training images are used only to train the teachers (each on its own classes) and the
# "trained with labels" reference; the test labels only to evaluate.

# %%
task = classification_task(DATASET, PROFILE)  # digits: 10 classes; shapes: shape x colour, 48 classes
x_train, y_train, x_test, y_test, CLASS_NAMES = task.x_train, task.y_train, task.x_test, task.y_test, task.classes
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = tuple(x_train.shape[1:])
X_TRANSFER = x_train[:CFG["transfer_size"]]  # the students' transfer set: training images, no labels
Y_TRANSFER = y_train[:CFG["transfer_size"]]  # their labels: used only by the supervised ceiling
print(f"train: {tuple(x_train.shape)}  test: {tuple(x_test.shape)}  classes: {NUM_CLASSES}")
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}")
print("train images per class: min", int(y_train.bincount().min()), "max", int(y_train.bincount().max()))

# %%
first = torch.stack([torch.nonzero(y_train == c)[0, 0] for c in range(min(NUM_CLASSES, 20))])
sample_grid(x_train[first], [CLASS_NAMES[int(c)] for c in y_train[first]], ncols=10, size=0.9)
plt.show()

# %% [markdown]
# ## The teachers and their class sets
#
# Three settings, as in the paper:
#
# * **two teachers** on the two disjoint halves of the classes (the paper's main setting);
# * **four teachers** on four disjoint parts, to compare direct and incremental feature amalgamation;
# * **two overlapping teachers**, each on the first or last 60 %<!-- fixed --> of the classes (for `digits`:
#   {0..5} and {4..9}), so that some classes are known by both.
#
# Every teacher is the same small CNN (three conv–BN–ReLU stages with max-pooling, then global average
# pooling and a linear classifier). As the paper's teachers are fine-tuned from ImageNet weights, ours are
# fine-tuned from a **pretrained backbone**: the same CNN trained first on a broad task of other images
# (`digits`: the shape and size of 8×8 shape silhouettes; `shapes`: size, position and fill of other shapes
# images), then with labels on the training images of its own classes only (plus shifted copies). Both
# steps are recipes of the repository's **model zoo** (`kae_utils.zoo`): the teachers were trained once
# (`make zoo`) and are shipped in `zoo/` with their hashes, so this notebook spends its minutes on the
# method. With `TEACHERS = "train"` they are retrained here from the same recipe instead.

# %%
SETTINGS_CLASSES = zoo.teacher_class_sets(NUM_CLASSES)
for setting, sets in SETTINGS_CLASSES.items():
    print(f"{setting:>14}: " + " | ".join(f"{s[0]}..{s[-1]} ({len(s)})" for s in sets))

# %% tags=["nbval-ignore-output"]
TEACHER_NAMES = {setting: [zoo.classifier_teacher_name(DATASET, "convnet", CFG["teacher_width"], c) for c in sets]
                 for setting, sets in SETTINGS_CLASSES.items()}
team = {setting: [zoo.obtain(name, TEACHERS, device) for name in names] for setting, names in TEACHER_NAMES.items()}
teachers = {(setting, seed): team[setting] for seed in CFG["seeds"] for setting in SETTINGS_CLASSES}  # one team for every seed
print("teachers:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
ALL_TEACHERS = list(dict.fromkeys(name for names in TEACHER_NAMES.values() for name in names))
pd.DataFrame(zoo.summary(ALL_TEACHERS)).set_index("entry")

# %% [markdown]
# **Does the pretraining already solve the task?** It should not: ImageNet does not know the paper's
# bird species either. A logistic regression on the backbone's pooled features, fitted on the training
# images of all classes, is far below the fine-tuned teachers (their accuracies on their own classes are below), and
# even below the same regression on raw pixels: what the backbone brings is generic strokes and blobs,
# not the classes.

# %%
BACKBONE = zoo.entry(ALL_TEACHERS[0]).init
probe = zoo.record(BACKBONE)["probe"]
print(f"backbone {BACKBONE}: {zoo.entry(BACKBONE).task}")
print(f"linear probe, all {NUM_CLASSES} classes: backbone features {probe['features']:.1%}, raw pixels {probe['raw pixels']:.1%}")


# %% tags=["nbval-ignore-output"]
teacher_rows = [
    {"setting": setting, "seed": seed, "teacher": i + 1, "classes": f"{c[0]}..{c[-1]}",
     "test accuracy (own classes)": teacher_accuracy(t, x_test, y_test, c)}
    for (setting, seed), ts in teachers.items() for i, (t, c) in enumerate(zip(ts, SETTINGS_CLASSES[setting], strict=True))
]
teacher_table = pd.DataFrame(teacher_rows)
teacher_table.groupby(["setting", "teacher", "classes"], sort=False)["test accuracy (own classes)"].mean().to_frame()

# %% [markdown]
# ## Feature amalgamation
#
# Feed an image $x$ to every teacher and take the feature maps of the same layer $l$:
# $F_1, \dots, F_N$, each $C_1 \times H \times W$. We take them **before the activation** (the output of
# the conv–BN pair), as the paper's student layers end in a convolution. Stacking them along the
# channels would give a student $N$ times as wide as a teacher; instead an auto-encoder of 1×1
# convolutions compresses the stack to the student's width $C_2$:
#
# $$F_a = E([F_1, \dots, F_N]) \in \mathbb{R}^{C_2 \times H \times W},\qquad
# [\hat F_1, \dots, \hat F_N] = D(F_a),$$
#
# $$L_{FA} = \tfrac{1}{2}\,\big\|[\hat F_1, \dots, \hat F_N] - [F_1, \dots, F_N]\big\|^2 .$$
#
# The encoder output $F_a$, the **amalgamated feature**, is what the student's layer $l$ will learn to
# produce. One auto-encoder per layer; we average the squared error over its elements (a constant factor
# that only rescales the learning rate).
#
# With more than two teachers the paper gives two schemes:
#
# * **DFA** (direct): one auto-encoder over all $N$ stacked teachers, $N C_1 \to C_2$;
# * **IFA** (incremental): two at a time, $F_{a,1} = E_1([F_1, F_2])$, then
#   $F_{a,2} = E_2([F_{a,1}, F_3])$, ...; each step is trained with its own reconstruction loss, with the
#   earlier encoders frozen. A new teacher only costs one more small auto-encoder, while DFA must be
#   retrained from scratch.
#
# A teacher's features and logits on a set of images come from a helper the later notebooks share:

# %%
show_source(kae_utils.methods.amalgamation.teacher_outputs)

# %%
N_LAYERS = len(CFG["student_widths"])
TAPS = [f"stages.{i}.0.1" for i in range(N_LAYERS)]  # the BatchNorm of each conv-BN-ReLU stage: pre-activation


class FeatureAE(nn.Module):
    """1x1-conv auto-encoder of one layer: encoder C_in -> C_code (the amalgamated feature), decoder back."""

    def __init__(self, c_in: int, c_code: int) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(c_in, c_code, 1)
        self.decoder = nn.Conv2d(c_code, c_in, 1)

    def forward(self, stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(stacked)
        return code, self.decoder(code)


class LayerAEs(nn.Module):
    """One FeatureAE per layer; input and output are lists over the layers."""

    def __init__(self, in_widths, code_widths) -> None:
        super().__init__()
        self.aes = nn.ModuleList(FeatureAE(c, k) for c, k in zip(in_widths, code_widths, strict=True))

    @torch.no_grad()
    def encode(self, stacked: list[torch.Tensor]) -> list[torch.Tensor]:
        self.eval()
        return [ae.encoder(f.to(device)).cpu() for ae, f in zip(self.aes, stacked, strict=True)]


# %% [markdown]
# The reconstruction loss $L_{FA}$, and the trainer's step over all layers at once:

# %%
def fa_loss(reconstruction: torch.Tensor, stacked: torch.Tensor) -> torch.Tensor:
    """L_FA = 1/2 ||[F^_1..F^_N] - [F_1..F_N]||^2, averaged over elements."""
    return 0.5 * F.mse_loss(reconstruction, stacked)


def fa_step(model: LayerAEs, batch) -> tuple[torch.Tensor, dict]:
    """The layers' auto-encoders are independent: the sum of their losses trains each on its own."""
    losses = {f"layer{i + 1}": fa_loss(ae(f)[1], f) for i, (ae, f) in enumerate(zip(model.aes, batch, strict=True))}
    return sum(losses.values()), {k: v.detach() for k, v in losses.items()}


# %% [markdown]
# Training the auto-encoders of every layer on the stacked teacher features of the transfer set:

# %%
def train_aes(stacked: list[torch.Tensor], seed: int, desc: str) -> tuple[LayerAEs, dict]:
    """Train one auto-encoder per layer on the stacked teacher features of the transfer set."""
    torch.manual_seed(seed)
    aes = LayerAEs([f.shape[1] for f in stacked], CFG["student_widths"])
    history = Trainer(aes, epochs=CFG["ae_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"], step_fn=fa_step,
                      device=device, seed=seed, desc=desc).fit(tuple(stacked))
    return aes, history.to_dict()


# %% [markdown]
# DFA trains one set of auto-encoders over all the stacked teachers; IFA adds the teachers one at a time,
# each step an auto-encoder of the previous amalgamated feature and the next teacher's:

# %%
def stack(*per_teacher: dict | list) -> list[torch.Tensor]:
    """Concatenate, layer by layer, features given per teacher (dicts by tap name or lists by layer)."""
    as_lists = [[f[t] for t in TAPS] if isinstance(f, dict) else f for f in per_teacher]
    return [torch.cat(layer, dim=1) for layer in zip(*as_lists, strict=True)]


def amalgamate_features(features: list[dict], mode: str, seed: int) -> tuple[list[torch.Tensor], list, list]:
    """F_a of every layer for the transfer set, by DFA or IFA; also the auto-encoders and their histories."""
    check_choice("mode", mode, ("DFA", "IFA"))
    if mode == "DFA" or len(features) == 2:
        aes, history = train_aes(stack(*features), seed, desc=f"{mode} auto-encoders")
        return aes.encode(stack(*features)), [aes], [history]
    current, chain, histories = [features[0][t] for t in TAPS], [], []
    for i, nxt in enumerate(features[1:], start=2):  # F_a <- E([F_a, F_i]), earlier encoders frozen
        aes, history = train_aes(stack(current, nxt), seed + i, desc=f"IFA step {i - 1}")
        current = aes.encode(stack(current, nxt))
        chain.append(aes)
        histories.append(history)
    return current, chain, histories


# %% [markdown]
# ## Score-vector amalgamation
#
# The student's output layer needs a target too. For teachers with **disjoint** classes the paper simply
# **concatenates** their score vectors (logits): teacher 1's classes first, then teacher 2's, and so on.
# For **overlapping** classes the paper describes a rule that we could not check; **assumption**: the
# logits of a class known by several teachers are **averaged**. Both cases are one function in
# `kae_utils.methods.amalgamation` (for disjoint sets it equals `kae_utils.methods.distillation.concat_teacher_logits`):

# %%
show_source(kae_utils.methods.amalgamation.amalgamate_scores)


# %% [markdown]
# ## The student, layer-wise learning with FAM, and joint learning
#
# The student has the teachers' depth and the width of *one* teacher: layer $l$ is a 3×3 convolution
# whose output is the student's feature $\hat F^l$ (pre-activation, like the amalgamated $F_a^l$). Between
# layers come the non-parametric operations: activation and pooling.
#
# **Layer-wise parameter learning.** Layer $l$ is trained on its own, to map the *amalgamated* feature of
# the layer below to the amalgamated feature of its layer (the first layer takes the image):
#
# $$\hat F_a^{\,l} = \mathrm{conv}_l\big(\mathrm{pool}(\mathrm{act}(\mathrm{FAM}_{l-1}(F_a^{\,l-1})))\big),\qquad
# L_{PL}^{l} = \tfrac{1}{2}\,\big\|\hat F_a^{\,l} - F_a^{\,l}\big\|^2 .$$
#
# With the input fixed, this is a (nearly) linear problem per layer, far easier than training the whole
# net. But activation and pooling throw information of $F_a^{l-1}$ away before the convolution sees it.
# The **feature alignment module** FAM, a 1×1 convolution applied first, lets the layer re-mix the
# channels so that what matters survives the activation. We initialise every FAM to the identity, so
# "without FAM" is where training starts. The classifier is learned the same way: global pooling of
# $\mathrm{act}(\mathrm{FAM}(F_a^{L}))$, then a linear layer, trained on the amalgamated scores with the score
# term $L_S$ below.
# Since each layer's input is a fixed target, the layers are independent; we train them in one loop on the
# sum of their losses, which gives every layer exactly its own gradient.
#
# **Joint parameter learning.** Then all parameters are trained end to end on the student's *own*
# features. The paper's joint loss could not be checked; **assumption**: the sum of the layer losses on
# the student's own features plus the score term,
#
# $$L_{joint} = \sum_l \tfrac{1}{2}\,\big\|\hat F^{\,l}(x) - F_a^{\,l}(x)\big\|^2 + L_S\big(z_s(x), z_a(x)\big) .$$
#
# **The score term** $L_S$ compares the student's logits $z_s$ with the amalgamated scores $z_a$. The
# authors' group's code (KAmalEngine, `layerwise_amalgamation.py`) uses the KL divergence at temperature 1,
# with a mean-squared-error line commented out next to it; we follow the code (`SCORE_LOSS = "kl"`):
#
# $$L_S = \mathrm{KL}\big(\mathrm{softmax}(z_a)\,\big\|\,\mathrm{softmax}(z_s)\big)
#       = \sum_c \mathrm{softmax}(z_a)_c \log \frac{\mathrm{softmax}(z_a)_c}{\mathrm{softmax}(z_s)_c},$$
#
# averaged over the batch. The first version of this notebook regressed the raw logits instead,
# $L_S = \tfrac12\|z_s - z_a\|^2$ (`SCORE_LOSS = "mse"`); it is trained below as an ablation. The two
# differ where it matters for the union of the classes: the KL only asks the student to reproduce which
# class wins and by how much in probability, while the MSE spends its effort on every logit, including the
# arbitrary scores a teacher gives to images of classes it never saw. The function is in `kae_utils.methods.distillation`
# (with golden-value tests):
# **Folding FAM.** FAM is linear and sits right after the (linear) convolution of the layer below, before
# the activation, so after training we fold it into that convolution:
# $W' = W_{FAM} W$, $b' = W_{FAM} b + b_{FAM}$. The folded student computes exactly the same function
# (checked below) with exactly the parameters of a plain CNN; we keep FAM during joint learning, so the
# layer losses still compare with $F_a$, and fold it at the end. Sizes and times are those of the folded student.

# %%
show_source(kae_utils.methods.distillation.score_loss)


# %%
class Student(nn.Module):
    """conv_l outputs the pre-activation feature F^l; FAM_l (1x1 conv, identity at start) follows each conv.

    Layer l > 1 computes conv_l(pool(act(FAM_{l-1}(F^{l-1})))), as the paper writes it; pooling follows every
    layer but the last, like the teachers; the head is linear(GAP(act(FAM_L(F^L)))).
    """

    def __init__(self, in_channels: int, widths, num_classes: int, fam: bool = True) -> None:
        super().__init__()
        chans = (in_channels, *widths)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.fams = nn.ModuleList(self._identity_1x1(w) if fam else nn.Identity() for w in widths)
        self.head = nn.Linear(widths[-1], num_classes)
        self.has_fam = fam

    @staticmethod
    def _identity_1x1(width: int) -> nn.Conv2d:
        conv = nn.Conv2d(width, width, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(width)[:, :, None, None])
            conv.bias.zero_()
        return conv

    def block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i (0-based) on its input: the image for i = 0, else FAM(F^{i-1}) of the layer below."""
        if i > 0:
            h = F.max_pool2d(F.relu(h), 2)
        return self.convs[i](h)

    def head_block(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(F.relu(h), 1), 1))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats, h = [], x
        for i in range(len(self.convs)):
            h = self.convs[0](h) if i == 0 else self.block(i, self.fams[i - 1](h))
            feats.append(h)
        logits = self.head_block(self.fams[-1](h))
        return (logits, feats) if return_features else logits


# %% [markdown]
# The losses of the two phases: layer-wise, each layer maps the amalgamated feature of the layer below (through
# its FAM) to its own, and the head maps to the amalgamated scores; jointly, the student's own features and logits
# against the same targets:

# %%
def pl_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_PL = 1/2 ||F^_a - F_a||^2, averaged over elements (the features; the scores have score_loss)."""
    return 0.5 * F.mse_loss(prediction, target)


def layerwise_step(model: Student, batch, score_kind: str = SCORE_LOSS) -> tuple[torch.Tensor, dict]:
    """Every layer maps FAM(F_a^{l-1}) (the image for the first) to F_a^l; the head maps to the scores."""
    x, *amalgamated, scores = batch
    losses = {}
    for i in range(len(model.convs)):
        inputs = x if i == 0 else model.fams[i - 1](amalgamated[i - 1])
        losses[f"layer{i + 1}"] = pl_loss(model.block(i, inputs), amalgamated[i])
    losses["scores"] = score_loss(model.head_block(model.fams[-1](amalgamated[-1])), scores, score_kind)
    return sum(losses.values()), {k: v.detach() for k, v in losses.items()}


def joint_step(model: Student, batch, score_kind: str = SCORE_LOSS) -> tuple[torch.Tensor, dict]:
    """End to end: the student's own features against F_a at every layer, plus its logits against the scores."""
    x, *amalgamated, scores = batch
    logits, feats = model(x, return_features=True)
    losses = {f"layer{i + 1}": pl_loss(f, a) for i, (f, a) in enumerate(zip(feats, amalgamated, strict=True))}
    losses["scores"] = score_loss(logits, scores, score_kind)
    return sum(losses.values()), {k: v.detach() for k, v in losses.items()}


# %% [markdown]
# ### No labels: the transfer set is images only
#
# Every function that trains a student takes the transfer **images** and nothing else, and passes them
# through `check_images_only`, which raises if anything but one floating-point image tensor arrives (an
# `(images, labels)` pair, a label vector, ...). The targets (amalgamated features and scores) are then
# computed *from those images* by the frozen teachers and auto-encoders. The teachers were trained with
# labels of their own classes, as in the paper; no student ever sees a label, except the "trained with
# labels" reference, which is marked as such and is not part of the method.

# %%
def amalgamation_targets(x_images: torch.Tensor, teacher_list: list[nn.Module], class_sets, mode: str, seed: int):
    """From unlabeled images: the teachers' features -> F_a per layer (DFA/IFA), their logits -> scores."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    features, logits = teacher_outputs(teacher_list, x, TAPS)
    amalgamated, aes, ae_histories = amalgamate_features(features, mode, seed)
    scores = amalgamate_scores(logits, class_sets, NUM_CLASSES)
    return {"amalgamated": amalgamated, "scores": scores, "aes": aes, "ae_histories": ae_histories}


def new_student(seed: int, fam: bool = True) -> Student:
    """The KA student before training; its initial weights depend on the seed only, not on what ran before."""
    with seeded(2000 + seed):
        return Student(IMAGE_SHAPE[0], CFG["student_widths"], NUM_CLASSES, fam=fam)


def train_ka_student(x_images: torch.Tensor, targets: dict, seed: int, fam: bool = True, layerwise: bool = True,
                     score_kind: str = SCORE_LOSS, desc: str = "KA student") -> tuple[Student, dict]:
    """Layer-wise learning (optional), then joint learning, on the transfer images and their targets only."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    tensors = (x, *targets["amalgamated"], targets["scores"])
    if any(len(t) != len(x) for t in tensors):
        raise ValueError("the targets must come from the same transfer images")
    student = new_student(seed, fam)
    histories = {}
    common = dict(lr=CFG["lr"], batch_size=CFG["batch_size"], device=device, seed=seed)
    joint_epochs = CFG["joint_epochs"]
    if layerwise:
        histories["layerwise"] = Trainer(student, epochs=CFG["layerwise_epochs"],
                                         step_fn=functools.partial(layerwise_step, score_kind=score_kind),
                                         desc=f"{desc}: layer-wise", **common).fit(tensors).to_dict()
    else:
        joint_epochs += CFG["layerwise_epochs"]  # the same number of epochs in all
    histories["joint"] = Trainer(student, epochs=joint_epochs, step_fn=functools.partial(joint_step, score_kind=score_kind),
                                 desc=f"{desc}: joint", **common).fit(tensors).to_dict()
    return student.eval(), histories


try:
    check_images_only((x_train, y_train), IMAGE_SHAPE)
except ValueError as error:
    print("passing labels is refused:", error)


# %% [markdown]
# ### Baselines
#
# * **The teachers' ensemble**: run every teacher and take the argmax of the amalgamated (concatenated)
#   scores. It needs all the teachers at test time: it is what the student must compress.
# * **Multi-teacher KD** (notebook 01): the same-size CNN trained to match softmax of the concatenated
#   teacher logits at temperature `KD_TEMPERATURE`, images only, for as many epochs as the KA student in all.
# * **A student trained with labels** (reference only: it breaks the setting's rules): the same CNN
#   trained with cross-entropy on the labelled training images.
# * **The supervised ceiling** (uses labels; it is a bound, not a method): the KA student's own
#   architecture (the `Student` above, FAM included, from the same initial weights) trained with
#   cross-entropy on the **true labels of the transfer images**, for the KA student's whole budget
#   (layer-wise + joint epochs, the same learning rate and batch size). It is what any label-free method
#   could at best reach in this experiment. A claim that the student matches its teachers (claims 1 and 2
#   below) can only be tested where the ceiling itself reaches them within the claim's tolerance; the claims
#   cell checks that, from this run's ceiling.

# %%
def student_cnn(seed: int) -> nn.Module:
    """The plain CNN of the baselines (same widths as the KA student, with BatchNorm)."""
    return build_model("convnet", NUM_CLASSES, in_channels=IMAGE_SHAPE[0], widths=CFG["student_widths"],
                       seed=3000 + seed)


def train_kd_student(x_images: torch.Tensor, teacher_list: list[nn.Module], seed: int) -> nn.Module:
    """Multi-teacher KD on unlabeled images: KL to softmax of the concatenated teacher logits."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    logits = [predict_logits(t, x) for t in teacher_list]

    def step(model: nn.Module, batch) -> torch.Tensor:
        xb, *zs = batch
        return multi_teacher_kd_loss(model(xb), zs, temperature=KD_TEMPERATURE)

    model = student_cnn(seed)
    Trainer(model, epochs=CFG["layerwise_epochs"] + CFG["joint_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"],
            step_fn=step, device=device, seed=seed, desc="multi-teacher KD").fit((x, *logits))
    return model.eval()


# %% [markdown]
# The two that use labels: the labelled reference (the training images' labels) and the supervised ceiling
# (the transfer images' labels, the KA student's own network and budget):

# %%
def train_labelled_reference(seed: int) -> nn.Module:
    """Reference only (uses labels): cross-entropy on the labelled training images."""
    model = student_cnn(seed)
    Trainer(model, epochs=CFG["layerwise_epochs"] + CFG["joint_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"],
            device=device, seed=seed, desc="with labels (reference)").fit((x_train, y_train))
    return model.eval()


def train_supervised_ceiling(seed: int) -> Student:
    """The supervised ceiling (uses labels): the KA student's network trained on the transfer images' true labels.

    The KA student's architecture and initial weights, trained with cross-entropy for the KA student's whole budget.
    """
    model, _ = train_ceiling(new_student(seed), X_TRANSFER, Y_TRANSFER, F.cross_entropy,
                             epochs=CFG["layerwise_epochs"] + CFG["joint_epochs"], lr=CFG["lr"],
                             batch_size=CFG["batch_size"], device=device, seed=seed, desc="supervised ceiling")
    return model.eval()


# %% [markdown]
# ## Running the experiments
#
# For every seed:
#
# 1. **two teachers**: the KA student (layer-wise with FAM, then joint) and its ablations, *without FAM*,
#    *joint learning only* (same epochs in all) and with the other score term (MSE when `SCORE_LOSS` is
#    `"kl"`); the KD and labelled baselines, and the supervised ceiling;
# 2. **four teachers**: KA students from DFA and from IFA features;
# 3. **overlapping teachers**: the KA student with averaged scores for the shared classes.
#
# Everything is trained on the transfer images `X_TRANSFER` only (the training images without labels;
# in the full profile the first 20,000 of them, because every teacher's features of every transfer image
# are held in memory).

# %% tags=["nbval-ignore-output"]
MAIN = "KA (layer-wise + FAM + joint)"
OTHER_SCORE = "mse" if SCORE_LOSS == "kl" else "kl"
SCORE_ABLATION = f"KA with {OTHER_SCORE.upper()} on the scores"
CEILING = "supervised ceiling (true labels)"
students, targets_by, histories_by = {}, {}, {}
for seed in CFG["seeds"]:
    two, four, overlap = (teachers[(s, seed)] for s in SETTINGS_CLASSES)
    targets_by[("two", seed)] = t2 = amalgamation_targets(X_TRANSFER, two, SETTINGS_CLASSES["two teachers"], "DFA", seed)
    for name, kwargs in ((MAIN, {}), ("KA without FAM", {"fam": False}), ("KA joint learning only", {"layerwise": False}),
                         (SCORE_ABLATION, {"score_kind": OTHER_SCORE})):
        students[(name, seed)], histories_by[(name, seed)] = train_ka_student(X_TRANSFER, t2, seed, desc=name, **kwargs)
    students[("multi-teacher KD", seed)] = train_kd_student(X_TRANSFER, two, seed)
    students[("trained with labels (reference)", seed)] = train_labelled_reference(seed)
    students[(CEILING, seed)] = train_supervised_ceiling(seed)
    for mode in ("DFA", "IFA"):
        targets_by[(mode, seed)] = t4 = amalgamation_targets(X_TRANSFER, four, SETTINGS_CLASSES["four teachers"], mode, seed)
        students[(f"four teachers, {mode}", seed)], _ = train_ka_student(X_TRANSFER, t4, seed, desc=f"KA {mode}")
    targets_by[("overlap", seed)] = to = amalgamation_targets(X_TRANSFER, overlap, SETTINGS_CLASSES["overlapping"], "DFA", seed)
    students[("overlapping teachers", seed)], _ = train_ka_student(X_TRANSFER, to, seed, desc="KA overlapping")
    for kept in targets_by.values():  # free the targets; only the auto-encoders are kept (for their size)
        kept.pop("amalgamated", None)
        kept.pop("scores", None)


# %% [markdown]
# ### Folding FAM
#
# Each trained FAM is folded into the convolution before it. The folded student must give the same
# logits (up to float rounding) and has the parameters of a plain CNN of the student's widths. The check runs
# in float32 whatever the process's numerics: bf16 autocast rounds each network's logits to 8 bits of mantissa,
# and two networks that compute the same function in a different order then differ by far more than 1e-4.

# %%
@torch.no_grad()
def fold_fam(student: Student) -> Student:
    """A copy of `student` with every FAM folded into the preceding conv: W' = W_FAM W, b' = W_FAM b + b_FAM."""
    folded = Student(IMAGE_SHAPE[0], CFG["student_widths"], NUM_CLASSES, fam=False).to(device)
    folded.load_state_dict({k: v for k, v in student.state_dict().items() if not k.startswith("fams.")})
    if student.has_fam:
        for conv, fam, target in zip(student.convs, student.fams, folded.convs, strict=True):
            w_fam = fam.weight[:, :, 0, 0]
            target.weight.copy_(torch.einsum("oc,cikl->oikl", w_fam, conv.weight))
            target.bias.copy_(w_fam @ conv.bias + fam.bias)
    return folded.eval()


folded = {key: fold_fam(model) if isinstance(model, Student) else model for key, model in students.items()}
with numerics.using("fp32", device):
    fold_gap = max((predict_logits(folded[k], x_test) - predict_logits(students[k], x_test)).abs().max().item()
                   for k in students if isinstance(students[k], Student))
print("folded students give the same logits (max |difference| < 1e-4):", fold_gap < 1e-4)

# %% [markdown]
# ## Results
#
# **Union accuracy**: every model classifies all test images among all classes. The ensemble of a setting
# is the argmax of its teachers' amalgamated scores.

# %% tags=["nbval-ignore-output"]
test_logits = {key: predict_logits(model, x_test) for key, model in folded.items()}
teacher_test_logits = {key: [predict_logits(t, x_test) for t in ts] for key, ts in teachers.items()}
rows = []
for seed in CFG["seeds"]:
    for setting, label in (("two teachers", "ensemble of the two teachers"),
                           ("four teachers", "ensemble of the four teachers"),
                           ("overlapping", "ensemble of the overlapping teachers")):
        pred = ensemble_predict(teacher_test_logits[(setting, seed)], SETTINGS_CLASSES[setting], NUM_CLASSES)
        rows.append({"setting": setting, "model": label, "seed": seed, "accuracy": accuracy(pred, y_test)})
    for (name, s), z in test_logits.items():
        if s == seed:
            setting = ("four teachers" if name.startswith("four") else "overlapping" if name.startswith("overlap")
                       else "two teachers")
            rows.append({"setting": setting, "model": name, "seed": seed, "accuracy": accuracy(z, y_test)})
union = pd.DataFrame(rows)
union_summary = union.groupby(["setting", "model"], sort=False)["accuracy"].agg(["mean", "std", "count"])
union_summary.round(4)

# %% [markdown]
# **Per teacher**: the student is asked each teacher's own question — the argmax over that teacher's
# classes only, on that teacher's test images — and compared with the teacher (paper: the student beats
# the teachers "in most cases").

# %% tags=["nbval-ignore-output"]
per_teacher_rows = []
for seed in CFG["seeds"]:
    for setting, student_name in (("two teachers", MAIN), ("two teachers", SCORE_ABLATION),
                                  ("two teachers", CEILING), ("four teachers", "four teachers, DFA"),
                                  ("four teachers", "four teachers, IFA"), ("overlapping", "overlapping teachers")):
        for i, (teacher, classes) in enumerate(zip(teachers[(setting, seed)], SETTINGS_CLASSES[setting], strict=True), start=1):
            mask = torch.isin(y_test, torch.as_tensor(classes))
            per_teacher_rows.append({
                "setting": setting, "student": student_name, "seed": seed, "teacher": i,
                "classes": f"{classes[0]}..{classes[-1]}",
                "teacher accuracy": teacher_accuracy(teacher, x_test, y_test, classes),
                "student accuracy": restricted_accuracy(test_logits[(student_name, seed)][mask], y_test[mask], classes),
            })
per_teacher = pd.DataFrame(per_teacher_rows)
per_teacher["student - teacher"] = per_teacher["student accuracy"] - per_teacher["teacher accuracy"]
per_teacher.groupby(["student", "teacher", "classes"], sort=False)[
    ["teacher accuracy", "student accuracy", "student - teacher"]].mean().round(4)

# %% [markdown]
# **Where the union errors are.** An image of the union can be misclassified in two ways: the model picks a
# class of the wrong teacher's set, or the right set but the wrong class in it. The first is the decision no
# single teacher was trained for; its rate is shown for the two-teacher models (first seed).

# %% tags=["nbval-ignore-output"]
def wrong_set_rate(pred: torch.Tensor, class_sets) -> float:
    """Share of test images whose predicted class lies in another teacher's class set than the true class."""
    owner = torch.empty(NUM_CLASSES, dtype=torch.long)
    for i, classes in enumerate(class_sets):
        owner[list(classes)] = i
    return (owner[pred.cpu()] != owner[y_test]).float().mean().item()


seed0, two_sets = CFG["seeds"][0], SETTINGS_CLASSES["two teachers"]
ensemble_pred = ensemble_predict(teacher_test_logits[("two teachers", seed0)], two_sets, NUM_CLASSES)
pd.DataFrame(
    [{"model": "ensemble of the two teachers", "union accuracy": accuracy(ensemble_pred, y_test),
      "wrong teacher's set": wrong_set_rate(ensemble_pred, two_sets)}]
    + [{"model": name, "union accuracy": accuracy(test_logits[(name, seed0)], y_test),
        "wrong teacher's set": wrong_set_rate(test_logits[(name, seed0)].argmax(1), two_sets)}
       for name in (MAIN, SCORE_ABLATION, "multi-teacher KD", CEILING)]
).set_index("model").round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [2, 4]})
for ax, student_name in zip(axes, (MAIN, "four teachers, DFA"), strict=True):
    sub = per_teacher[per_teacher.student == student_name].groupby("classes", sort=False)[
        ["teacher accuracy", "student accuracy"]].mean()
    pos = np.arange(len(sub))
    ax.bar(pos - 0.2, sub["teacher accuracy"], 0.4, label="teacher")
    ax.bar(pos + 0.2, sub["student accuracy"], 0.4, label="student")
    ax.set_xticks(pos, [f"classes {c}" for c in sub.index], fontsize=8)
    ax.set_ylim(max(0.0, float(sub.values.min()) - 0.1), 1.0)
    ax.set_title(student_name, fontsize=9)
    ax.set_ylabel("accuracy on the teacher's sub-task")
    ax.grid(alpha=0.3, axis="y")
axes[0].legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Layer-wise learning curves** of the main student (first seed), with and without FAM: each layer's
# $L_{PL}$ and the score regression. Where the curves with FAM lie lower, FAM has recovered information
# that activation and pooling would drop.

# %%
seed0 = CFG["seeds"][0]
keys = [f"layer{i + 1}" for i in range(N_LAYERS)] + ["scores"]
fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), sharex=True)
for ax, key in zip(axes, keys, strict=True):
    for name, style in ((MAIN, "-"), ("KA without FAM", "--")):
        values = histories_by[(name, seed0)]["layerwise"][f"train_{key}"]
        ax.plot(range(1, len(values) + 1), values, style, label="with FAM" if name == MAIN else "without FAM")
    ax.set_yscale("log")
    ax.set_title(f"L_PL, {key}" if key != "scores" else f"score term ({SCORE_LOSS})", fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
cm = confusion_matrix(test_logits[(MAIN, seed0)], y_test, NUM_CLASSES)
names = list(CLASS_NAMES) if NUM_CLASSES <= 12 else None
plot_confusion(cm, names, title="KA student, two teachers (rows: true class)")
plt.show()

# %% [markdown]
# ### Size and speed
#
# Parameters of the folded student vs the teachers it replaces (the auto-encoders and FAMs are needed only
# for training). Inference time: the whole test set, the student once vs every teacher in turn, median of
# five repeats on this machine (noisy; not compared by nbval).

# %%
student_params = count_parameters(folded[(MAIN, seed0)])
two_params = sum(count_parameters(t) for t in teachers[("two teachers", seed0)])
four_params = sum(count_parameters(t) for t in teachers[("four teachers", seed0)])
fam_params = count_parameters(students[(MAIN, seed0)]) - student_params
ae_params = sum(count_parameters(a) for a in targets_by[("two", seed0)]["aes"])
print(f"student (folded):           {student_params:>8,}")
print(f"  FAMs, training only:      {fam_params:>8,}")
print(f"  auto-encoders, training:  {ae_params:>8,}")
print(f"two teachers together:      {two_params:>8,}  (student = {student_params / two_params:.0%})")
print(f"four teachers together:     {four_params:>8,}  (student = {student_params / four_params:.0%})")

# %% tags=["nbval-ignore-output"]
student_time = median_time(lambda: predict_logits(folded[(MAIN, seed0)], x_test))
teachers_time = median_time(lambda: [predict_logits(t, x_test) for t in teachers[("two teachers", seed0)]])
print(f"test set ({len(x_test)} images): student {student_time * 1e3:.1f} ms, two teachers {teachers_time * 1e3:.1f} ms")


# %% [markdown]
# ### Paper vs this run
#
# The paper's numbers are on fine-grained sets of real photographs with VGG/ResNet teachers; ours are on
# `digits` with tiny CNNs, so only the pattern can be compared. A public re-implementation (two ResNet-18
# teachers, Cars / Aircraft, joint training only) reported teacher .750<!-- paper -->/.699<!-- paper -->, scratch .747<!-- paper -->/.688<!-- paper -->,
# KD .766<!-- paper -->/.710<!-- paper --> and layer-wise KA .738<!-- paper -->/.707<!-- paper -->.

# %% tags=["nbval-ignore-output"]
def union_acc(model: str) -> list[float]:
    """The union accuracies of `model` in the results table, one per seed."""
    return union.loc[union.model == model, "accuracy"].tolist()


acc = {m: mean_std(union_acc(m)) for m in union.model.unique()}
main_per_teacher = per_teacher[per_teacher.student == MAIN]
ceiling_per_teacher = per_teacher[per_teacher.student == CEILING]
results_table = pd.DataFrame(
    [
        ("KA student, union of classes", "handles the comprehensive task", *acc[MAIN]),
        ("ensemble of the teachers", "(needs every teacher)", *acc["ensemble of the two teachers"]),
        ("supervised ceiling: the student's architecture, true labels", "(not in the paper; bound)", *acc[CEILING]),
        ("multi-teacher KD", "baseline", *acc["multi-teacher KD"]),
        ("trained with labels (reference)", "baseline", *acc["trained with labels (reference)"]),
        (f"{SCORE_ABLATION} (ablation)", "(not in the paper)", *acc[SCORE_ABLATION]),
        ("KA without FAM", "worse than with FAM", *acc["KA without FAM"]),
        ("KA joint learning only", "worse than layer-wise", *acc["KA joint learning only"]),
        ("four teachers, DFA", "", *acc["four teachers, DFA"]),
        ("four teachers, IFA", "close to DFA, extensible", *acc["four teachers, IFA"]),
        ("overlapping teachers", "handled", *acc["overlapping teachers"]),
        ("student - teacher on own sub-task (mean)", "> 0 in most cases",
         *mean_std(main_per_teacher.groupby("seed")["student - teacher"].mean())),
        ("ceiling - teacher on own sub-task (mean)", "(bound)",
         *mean_std(ceiling_per_teacher.groupby("seed")["student - teacher"].mean())),
    ],
    columns=["quantity", "paper (pattern)", f"this run (mean of {len(CFG['seeds'])})", "std"],
)
results_table.round(4)

# %% [markdown]
# ### What this experiment can test: the supervised ceiling
#
# The ceiling is the student's own architecture trained with the true labels of the same transfer images, for
# the same budget; no label-free student can be expected to beat it. Claims 1 and 2 below ask the student
# to match its teachers, so they are testable only if the ceiling reaches the teachers (the ensemble, and each
# teacher on its own sub-task) within the same tolerance as the claim; claims 3 and 4 compare two label-free
# students with each other and need no ceiling.

# %% tags=["nbval-ignore-output"]
ens_m, ceiling_m = acc["ensemble of the two teachers"][0], acc[CEILING][0]
ceiling_sub = ceiling_per_teacher.groupby("teacher")[["student accuracy", "teacher accuracy"]].mean()
print(f"union of the classes: supervised ceiling {ceiling_m:.1%}, teachers' ensemble {ens_m:.1%}, "
      f"KA student {acc[MAIN][0]:.1%}")
for teacher, row in ceiling_sub.iterrows():
    print(f"teacher {teacher}'s sub-task: supervised ceiling {row['student accuracy']:.1%}, "
          f"teacher {row['teacher accuracy']:.1%}")

# %% [markdown]
# ## Claims
#
# Checked with rules and tolerances fixed before looking at this run's numbers. A tolerance of 2 points
# is about the seed-to-seed spread of small CNNs on ~900 test images (one image is 0.11<!-- fixed --> points):
#
# 1. **A compact student for the union**: the KA student's union accuracy (two teachers) is within
#    2 points of the teachers' ensemble (or above it), and it has fewer parameters than the two teachers together.
# 2. **The student matches the teachers on their own sub-tasks**: on each teacher's sub-task (two-teacher
#    setting), the student's accuracy is at least the teacher's minus 2 points (mean over seeds). The paper
#    says it *beats* them in most cases; we check the weaker "matches or beats" with this tolerance.
# 3. **FAM helps layer-wise learning**: the student learned with FAM is not worse than the one learned
#    without it by more than 1 point of union accuracy.
# 4. **IFA is as good as DFA**: the four-teacher student from incremental amalgamation is within 2 points of
#    the one from direct amalgamation (the paper presents IFA as the extensible alternative, not a better one).

# %%
UNION_TOL, SUBTASK_TOL, FAM_TOL, IFA_TOL = 0.02, 0.02, 0.01, 0.02
ka_m = acc[MAIN][0]
# claims 1 and 2 are testable only where the supervised ceiling reaches the teachers within the claim's tolerance
union_testable = ceiling_reaches(ceiling_m, ens_m, tolerance=UNION_TOL)
subtask_testable = all(ceiling_reaches(row["student accuracy"], row["teacher accuracy"], tolerance=SUBTASK_TOL)
                       for _, row in ceiling_sub.iterrows())
nofam_m, dfa_m, ifa_m = acc["KA without FAM"][0], acc["four teachers, DFA"][0], acc["four teachers, IFA"][0]
gaps = main_per_teacher.groupby("teacher")["student - teacher"].mean()
claims = [
    Claim("one student covers the union of the classes about as well as the teachers' ensemble, with fewer parameters",
          bool(ka_m >= ens_m - UNION_TOL and student_params < two_params),
          f"student {ka_m:.4f} vs ensemble {ens_m:.4f} (tolerance {UNION_TOL}); "
          f"parameters {student_params} vs {two_params}; supervised ceiling {ceiling_m:.4f}",
          untestable="" if union_testable else "the supervised ceiling is below the ensemble by more than the tolerance",
          effect=Effect("student - ensemble, union accuracy (fewer parameters checked too)", ka_m - ens_m, -UNION_TOL)),
    Claim("the student matches or beats every teacher on that teacher's own sub-task",
          bool((gaps >= -SUBTASK_TOL).all()),
          "student - teacher per teacher: " + ", ".join(f"{g:+.4f}" for g in gaps) + f" (tolerance {SUBTASK_TOL}); "
          "supervised ceiling - teacher: "
          + ", ".join(f"{g:+.4f}" for g in ceiling_sub["student accuracy"] - ceiling_sub["teacher accuracy"]),
          untestable="" if subtask_testable else "the supervised ceiling is below a teacher by more than the tolerance",
          effect=Effect("student - teacher on the teacher's sub-task, worst teacher", gaps.min(), -SUBTASK_TOL)),
    Claim("layer-wise learning with FAM is not worse than without FAM",
          bool(ka_m >= nofam_m - FAM_TOL),
          f"with FAM {ka_m:.4f} vs without {nofam_m:.4f} (tolerance {FAM_TOL})",
          effect=Effect("with FAM - without FAM, union accuracy", ka_m - nofam_m, -FAM_TOL)),
    Claim("incremental feature amalgamation (IFA) is as good as direct amalgamation (DFA)",
          bool(abs(ifa_m - dfa_m) <= IFA_TOL),
          f"IFA {ifa_m:.4f} vs DFA {dfa_m:.4f} (tolerance {IFA_TOL})",
          effect=Effect("IFA - DFA, union accuracy of the four-teacher students", ifa_m - dfa_m, IFA_TOL, "within")),
]
report = check_claims(claims)

# %%
metrics = {
    "headline": (f"KA student {ka_m:.1%} vs ensemble {ens_m:.1%} (supervised ceiling {ceiling_m:.1%}) on all "
                 f"{NUM_CLASSES} classes with "
                 f"{student_params / two_params:.0%} of the teachers' parameters; per-teacher gap "
                 f"{gaps.min():+.1%}..{gaps.max():+.1%}"),
    "union_accuracy": {m: {"mean": v[0], "std": v[1], "per_seed": union_acc(m)} for m, v in acc.items()},
    "per_teacher": main_per_teacher[["seed", "teacher", "classes", "teacher accuracy", "student accuracy"]]
        .to_dict(orient="records"),
    "per_teacher_gap": {str(k): float(v) for k, v in gaps.items()},
    "ceiling": {
        "union_accuracy": ceiling_m,
        "per_teacher": {str(k): {"ceiling": float(r["student accuracy"]), "teacher": float(r["teacher accuracy"])}
                        for k, r in ceiling_sub.iterrows()},
        "reaches": {"claim 1 (union vs ensemble)": union_testable, "claim 2 (sub-tasks vs teachers)": subtask_testable},
        "epochs": CFG["layerwise_epochs"] + CFG["joint_epochs"],
        "transfer_images": len(X_TRANSFER),
    },
    "score_loss": SCORE_LOSS,
    "parameters": {"student": student_params, "two_teachers": two_params, "four_teachers": four_params,
                   "fam_training_only": fam_params, "autoencoders_training_only": ae_params},
    "inference_seconds": {"student": student_time, "two_teachers": teachers_time},
    "fold_max_abs_diff": fold_gap,
    "seeds": CFG["seeds"],
    "dataset": DATASET,
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, KD_TEMPERATURE=KD_TEMPERATURE,
                  SCORE_LOSS=SCORE_LOSS)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### What the claims say on this data
#
# On `digits` (quick profile, one seed), with the score term of the authors' code (KL at T = 1), **all four
# claims hold, and all four can be tested here**: the supervised ceiling reaches 95.8 %<!-- m: 100 * ceiling.union_accuracy --> on the union of the
# classes (the ensemble: 95.0 %<!-- m: 100 * union_accuracy["ensemble of the two teachers"].mean -->) and 99.6 %<!-- m: 100 * ceiling.per_teacher[1].ceiling --> and 97.3 %<!-- m: 100 * ceiling.per_teacher[2].ceiling --> on the two teachers' sub-tasks (the teachers: 99.8 %<!-- m: 100 * ceiling.per_teacher[1].teacher -->
# and 98.9 %<!-- m: 100 * ceiling.per_teacher[2].teacher -->), within the 2-point tolerance of claims 1 and 2.
#
# - **Claim 1**: the KA student reaches 94.8 %<!-- m: 100 * union_accuracy["KA (layer-wise + FAM + joint)"].mean --> on all ten classes against the ensemble's 95.0 %<!-- m: 100 * union_accuracy["ensemble of the two teachers"].mean -->, with half the
#   teachers' parameters. It is also one point below the ceiling: a label-free student of this architecture
#   has little room above the teachers' ensemble here.
# - **Claim 2**: on each teacher's own sub-task the student is within about a point of the teacher (0.0<!-- m: 100 * per_teacher_gap[1] --> and
#   −0.9<!-- m: 100 * per_teacher_gap[2] --> points); the ceiling itself is 1.6<!-- m: 100 * (ceiling.per_teacher[2].teacher - ceiling.per_teacher[2].ceiling) --> points below teacher 2.
# - **Claim 3**: FAM helps layer-wise learning (94.8 %<!-- m: 100 * union_accuracy["KA (layer-wise + FAM + joint)"].mean --> with FAM, 92.8 %<!-- m: 100 * union_accuracy["KA without FAM"].mean --> without; the layer-wise curves above
#   show lower losses with FAM from the second layer on).
# - **Claim 4**: incremental amalgamation is as good as direct amalgamation with four teachers (IFA 82.1 %<!-- m: 100 * union_accuracy["four teachers, IFA"].mean -->,
#   DFA 81.3 %<!-- m: 100 * union_accuracy["four teachers, DFA"].mean -->; both above the four teachers' own ensemble, 79.1 %<!-- m: 100 * union_accuracy["ensemble of the four teachers"].mean -->).
#
# **The score term decides claim 1.** With the MSE regression of the logits (the ablation row) the student
# reaches 92.2 %<!-- m: 100 * union_accuracy["KA with MSE on the scores"].mean -->, 2.8<!-- m: 100 * (union_accuracy["ensemble of the two teachers"].mean - union_accuracy["KA with MSE on the scores"].mean) --> points below the ensemble, and claim 1
# fails, with the same ceiling and everything else equal. The table "where the union errors are" shows where
# the difference lies: the MSE student gives more of the test images to a class of the *wrong teacher's*
# set than the KL student (and than the ensemble and the ceiling), by the whole gap between the two students;
# inside the right teacher's classes the two students are within a few tenths of a point (the
# per-teacher table). That decision compares the logits of teachers that never saw each other's classes.
# Our reading (not tested further here): a regression spends its effort on every logit alike, including the
# arbitrary scores a teacher gives to images of classes it never saw, while the KL weighs each class by the
# teachers' probability, so the few large logits that decide the argmax dominate it.
#
# **The ceiling is lower than "trained with labels (reference)"** (98.4 %<!-- m: 100 * union_accuracy["trained with labels (reference)"].mean -->): that reference is the KD baseline's
# CNN, with BatchNorm; the KA student's layers are plain convolutions without normalisation (so that
# layer-wise learning is a near-linear problem and FAM folds exactly), which learn less in 60 epochs on 898
# images. The ceiling, not the reference, bounds what the KA student could reach.
#
# ### How this experiment was sized
#
# The ceiling was measured first, on its own, before the claims, at seeds 0–4: in this configuration (the 898
# training images of `digits` as the transfer set, 30 layer-wise + 30 joint epochs) both "matches the teachers"
# claims were already testable, so the data and budget were kept; the one change was the score term, from MSE
# to the authors' KL. The configurations measured, with their numbers, and how the claims moved when the teachers
# came from the model zoo, are in the [decisions log](../docs/decisions.md#notebook-02-comprehensive-classification).
#
# Not a claim we check, but worth seeing in the table: *joint learning only* reaches about the same union
# accuracy as layer-wise + joint learning here. The layer-wise stage is a good initialisation, but a
# three-layer student on 8×8 images is easy enough to train end to end from scratch; the paper's deeper
# networks are where it is meant to matter.

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **Data and networks**: `digits` (quick) or generated `shapes` (full) with tiny CNNs of three stages,
#   instead of four fine-grained photo sets with VGG/ResNet teachers. Nothing can be downloaded where this
#   repository is built; the pattern of the results, not their size, is comparable.
# - **Teachers**: zoo entries (`kae_utils.zoo`), fine-tuned from a backbone pretrained on another task of
#   other images (the shape and size of 8×8 shape silhouettes for `digits`), our stand-in for ImageNet
#   pretraining; a linear probe shows that the backbone alone does not solve the digits task. One team of
#   teachers serves every seed: the seeds vary the students.
# - **Which features**: we amalgamate each stage's conv–BN output, before the ReLU, because the paper's
#   student layers end in a convolution; the taps copy the tensor because the teachers' ReLU works in place.
# - **Losses**: $\tfrac12\|\cdot\|^2$ is averaged over elements instead of summed (a constant factor).
#   The layer-wise layers are trained in one loop on the sum of their (independent) losses, which gives
#   each layer its own gradient; only the learning-rate schedule is shared.
# - **Student layers**: plain 3×3 convolutions with bias and no BatchNorm, so that layer-wise learning
#   is the near-linear problem the paper describes and FAM folds exactly into the layer before it; the
#   baselines (KD, labels) use the repository's ConvNet of the same widths, with BatchNorm.
# - **FAM**: initialised to the identity, kept during joint learning and folded afterwards (the folded
#   student is checked to give the same logits).
# - **Assumptions** (the paper's text could not be checked): the joint loss (sum of the layer losses on
#   the student's own features plus the score term) and the rule for overlapping classes (average the
#   logits of shared classes).
# - **Score term**: KL at T = 1 from the softmax of the amalgamated scores to the student's, as in the
#   authors' group's code (KAmalEngine, `kamal/amalgamation/layerwise_amalgamation.py`:
#   `kldiv(s_out, cat(t_out))`, with the MSE line commented out). The regression of the raw logits
#   (MSE) is kept as an ablation (`SCORE_LOSS = "mse"`, and a row of the results): 92.2 %<!-- m: 100 * union_accuracy["KA with MSE on the scores"].mean --> union accuracy
#   against 94.8 %<!-- m: 100 * union_accuracy["KA (layer-wise + FAM + joint)"].mean --> with KL in this run, below the ensemble (95.0 %<!-- m: 100 * union_accuracy["ensemble of the two teachers"].mean -->) by more than claim 1's tolerance.
# - **Supervised ceiling** (not in the paper): the KA student's own architecture and initial weights,
#   trained with cross-entropy on the true labels of the transfer images for the KA student's 60 epochs. It
#   decides which claims the run can test (claims 1 and 2); see "How this experiment was sized".
# - **Claims**: the four checks and their tolerances were written before the first run and have not
#   been changed since; all four hold in the stored run, and claim 1 fails with the MSE score term.
# - **Transfer set**: the quick profile uses all ~900 training images of `digits`; the full profile the
#   first 20,000 training images of `shapes` (the teachers are trained on all of theirs), because the
#   teachers' features of the whole transfer set are computed once and kept in memory.
# - **Seeds**: the quick profile is a single seed; the full profile reports mean and standard deviation
#   over three seeds.
#
# ## Exercises
#
# 1. Replace the averaging rule for overlapping classes by "take the more confident teacher's logit".
#    Does the overlapping student change?
# 2. Make the student narrower (`student_widths=(8, 16, 32)`): how small can it get before it falls
#    behind the ensemble, and does FAM matter more then?
# 3. Add a fifth teacher to IFA without retraining the first three auto-encoders. What would DFA need?
# 4. Standardise each teacher's logits (zero mean, unit variance over the transfer set) before
#    concatenating them. Does the ensemble — and the student — improve?
# 5. The score term is KL at T = 1 (`SCORE_LOSS = "kl"`). Soften it with a temperature, as the KD baseline
#    does (`kae_utils.methods.distillation.kd_kl(z_s, z_a, 4.0)` in `layerwise_step` and `joint_step`). Does the union accuracy
#    move towards the ceiling, and does the "wrong teacher's set" rate change?
#
# ## References
#
# - C. Shen, X. Wang, J. Song, L. Sun, M. Song. *Amalgamating Knowledge towards Comprehensive
#   Classification.* AAAI 2019; arXiv:1811.02796.
# - G. Hinton, O. Vinyals, J. Dean. *Distilling the Knowledge in a Neural Network.* arXiv:1503.02531 (notebook 01).
# - A. Romero et al. *FitNets: Hints for Thin Deep Nets.* ICLR 2015 (feature regression to a teacher).
# - KAmalEngine (zju-vipa), the authors' group's knowledge-amalgamation library.
