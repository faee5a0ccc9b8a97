# %% [markdown]
# # 06 · Amalgamating filtered knowledge: a task-customised student from multi-task teachers
#
# **Ye, Wang, Ji, Ou & Song (2019). *Amalgamating Filtered Knowledge: Learning Task-customized Student from
# Multi-task Teachers*.** IJCAI 2019, pp. 4128–4134. [arXiv:1905.11569](https://arxiv.org/abs/1905.11569),
# doi [10.24963/ijcai.2019/573](https://doi.org/10.24963/ijcai.2019/573)
#
# Two networks have been trained by others, each on *several* tasks: one tells an object's shape, colour and
# size, the other its position and fill pattern. A user needs only some of these tasks, say **colour and position**
# (or, in the full profile, **shape and fill**), and wants one compact network for exactly those. No labels are available, only unlabeled images. Ye et al.
# build such a **task-customised student**: it learns only the knowledge *filtered* for the chosen tasks, that
# is, it imitates only the chosen tasks' heads of the teachers, and it is trained layer by layer, "entangling"
# each block of the student with the corresponding blocks of the teachers. The abstract reports that the student
# masters the chosen subset and even outperforms the teachers on the customised tasks.
#
# The paper's body could not be read where this repository is built. The method below follows the abstract and
# the authors' public code (KAmalEngine, `examples/knowledge_amalgamation/afk`), and every step taken from the
# code is marked **assumption (authors' code)**. In particular, neither the abstract nor the code has a gate or a
# "filter module": *filtered* means that only the chosen tasks' heads are mimicked.
#
# **What you will see**
#
# 1. The offline `shapes` data: objects with five attributes, standing in for the paper's multi-label photographs.
# 2. Two multi-task teachers from the repository's model zoo, $T_1$ = {shape, colour, size} and
#    $T_2$ = {position, fill}, and their held-out accuracies.
# 3. The student: a shared trunk, re-initialised, and one branch per teacher made of a copy of that teacher's own
#    remaining blocks and *only its chosen heads*; the branch point $k$.
# 4. Layer-wise learning without labels: "block" phases with the copied branches frozen, then "finetune".
# 5. The supervised ceiling, measured first: the same student trained the same way with the true labels, which says
#    which claims this experiment can test.
# 6. Student vs teachers on each chosen task, parameters; the customised student vs a student built for all five
#    tasks; the same architecture trained from scratch by multi-teacher KD; the branch point's trade-off of
#    accuracy and parameters; block-only and finetune-only ablations and the soft-target loss (full profile).
# 7. What differs from notebook 04 (*Student Becoming the Master*), and the paper's claims checked against this run.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 06 -p TASKS shape,colour,fill` or `kae run 06 --profile full`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, about 3 minutes, one seed; "full": wider teachers, more images, 3 seeds, every ablation (GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "shapes"  # "shapes" (generated objects with five attributes); the only data set wired up here
TEACHERS: str = "zoo"  # "zoo": load the trained teachers shipped in zoo/; "train": retrain them with the zoo's recipe
TASKS: str = "auto"  # the customised tasks, comma-separated: shape, colour, size (teacher 1) or position, fill (teacher 2); "auto": colour,position (quick), shape,fill (full)
BRANCH_POINT: int = 3  # k: the student's shared trunk is its first k stages (1 to 4); each teacher's stages after k are copied
LOSS: str = "hard"  # "hard": cross-entropy to the teachers' argmax (the authors' code); "soft": KL at temperature 4
ABLATIONS: str = "auto"  # "auto": extra baselines and the branch-point sweep in the full profile only; "on"; "off"
EPOCH_SCALE: int = 1  # multiplies every student's epochs (block phases and total budget), e.g. 3 for a longer run

# %%
from kae_utils import zoo
from kae_utils.core.params import check_choice, check_common_parameters, check_number
from kae_utils.core.scale import profile_settings

SUPPORTED_DATASETS = ("shapes",)
check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_choice("LOSS", LOSS, ("hard", "soft"))
check_choice("ABLATIONS", ABLATIONS, ("auto", "on", "off"))
check_number("EPOCH_SCALE", EPOCH_SCALE, integer=True, minimum=1)

NOTEBOOK = "06_filtered_amalgamation"
TEACHER_NAMES = zoo.afk_teacher_names(PROFILE)  # {"T1": zoo entry, "T2": zoo entry}
TEACHER_TASKS = {t: zoo.entry(name).tasks for t, name in TEACHER_NAMES.items()}
ALL_TASKS = [task for tasks in TEACHER_TASKS.values() for task in tasks]
NUM_STAGES = len(zoo.entry(TEACHER_NAMES["T1"]).arch_args["widths"])
SETTINGS = {  # the teachers come from the zoo (kae_utils.zoo); these are the students' settings
    # transfer_size: unlabeled images; beyond the training split, more generated ones (load_training_pool)
    # default_tasks: the tasks of TASKS = "auto"; shape and fill need the full profile's budget
    "quick": dict(seeds=[SEED], default_tasks="colour,position", transfer_size=16000, block_epochs=1,
                  total_epochs=6, batch_size=40, lr=3e-3, ablations=False),
    "full": dict(seeds=[SEED, SEED + 1, SEED + 2], default_tasks="shape,fill", transfer_size=20000, block_epochs=4,
                 total_epochs=20, batch_size=256, lr=2e-3, ablations=True),
}
CFG = profile_settings(SETTINGS, PROFILE)  # SETTINGS[PROFILE]; KAE_SCALE=smoke shrinks the full one
CFG["ablations"] = {"auto": CFG["ablations"], "on": True, "off": False}[ABLATIONS]
CFG["block_epochs"] *= EPOCH_SCALE
CFG["total_epochs"] *= EPOCH_SCALE
CHOSEN = [t.strip() for t in str(CFG["default_tasks"] if TASKS == "auto" else TASKS).split(",") if t.strip()]
for task in CHOSEN:
    check_choice("each of TASKS", task, ALL_TASKS)
if not CHOSEN or len(set(CHOSEN)) != len(CHOSEN):
    raise ValueError(f"TASKS must name one or more distinct tasks of {', '.join(ALL_TASKS)}; got {TASKS!r}")
CHOSEN = [t for t in ALL_TASKS if t in CHOSEN]  # in the teachers' order
check_number("BRANCH_POINT", BRANCH_POINT, integer=True, minimum=1, maximum=NUM_STAGES)  # one of the teachers' stages
TEMPERATURE = 4.0  # of the soft-target loss (LOSS = "soft" and its ablation)
if CFG["total_epochs"] <= NUM_STAGES * CFG["block_epochs"]:
    raise ValueError("total_epochs must leave at least one finetune epoch after every block phase")
print(f"teachers: {TEACHER_NAMES['T1']} {TEACHER_TASKS['T1']}, {TEACHER_NAMES['T2']} {TEACHER_TASKS['T2']}")
print(f"customised tasks: {', '.join(CHOSEN)}; branch point k = {BRANCH_POINT} of {NUM_STAGES}; loss: {LOSS}")
for name, value in CFG.items():
    print(f"{name:>14}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the zoo, the teacher cache, `runs/`) are resolved from the
# repository root by `kae_utils`, so the notebook runs from any working directory.

# %%
import copy
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.patches import FancyBboxPatch
from torch import nn

from kae_utils.data import ATTRIBUTE_VALUES, load_dataset, load_training_pool
from kae_utils.display.viz import sample_grid
from kae_utils.display.widgets import explore
from kae_utils.evaluation.metrics import accuracy
from kae_utils.evaluation.results import Claim, Effect, check_claims, mean_std, median_time, write_metrics
from kae_utils.methods.amalgamation import ceiling_reaches, check_images_only, train_ceiling
from kae_utils.methods.distillation import kd_kl
from kae_utils.models import MultiHeadNet, count_parameters
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
# The authors' code amalgamates two multi-label classifiers of VOC2007 photographs (ten object classes each).
# That data cannot be downloaded here. We use the repository's offline `shapes` set instead: 32×32 images of
# one main object whose **five attributes** are the tasks, namely its shape (8 kinds), colour (6), size
# (3 bins), position (9 cells of a 3×3 grid) and fill pattern (4), on a cluttered background with noise,
# distractor objects and sometimes an occluding bar. Each attribute is a single-label classification task, so a
# multi-task teacher has one softmax head per attribute. The quick profile uses the 4,000 training and 1,000
# test images of `load_dataset("shapes", ..., "quick")`; the full one 50,000 and 10,000.
#
# The **training images, without their labels, are the transfer set** of every student. Amalgamation needs no
# labels, so a student may see as many generated images as its teachers did: the quick profile adds **12,000 more
# unlabeled images of the same generator** (`kae_utils.data.load_training_pool`: the training split, then the images
# that follow the test split in the same stream, so they overlap neither the training nor the test images), 16,000
# transfer images in all; the full profile uses the first 20,000 of its 50,000 training images. The test labels are used only to evaluate, the transfer images' labels only
# by the supervised ceiling (marked as such). The teachers were trained elsewhere, on labelled images of their own
# (below).

# %%
train_split = load_dataset(DATASET, "train", PROFILE)
test_split = load_dataset(DATASET, "test", PROFILE)
x_train, x_test = train_split.x, test_split.x
y_test = {task: test_split.targets[task].long() for task in ALL_TASKS}
IMAGE_SHAPE = tuple(x_train.shape[1:])
# the transfer set: the training split, then more images of the generator after the test split (no overlap)
transfer_pool = load_training_pool(DATASET, PROFILE, CFG["transfer_size"])
n_extra = max(0, len(transfer_pool) - len(x_train))  # the generated images beyond the training split
X_TRANSFER = transfer_pool.x  # the transfer set: images, no labels
# the transfer images' labels: only for the supervised ceiling
Y_TRANSFER = {task: transfer_pool.targets[task].long() for task in ALL_TASKS}
print(f"train: {tuple(x_train.shape)}  test: {tuple(x_test.shape)}")
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}: {min(len(x_train), len(X_TRANSFER))} training images"
      f" and {n_extra} more generated ones")
for task in ALL_TASKS:
    print(f"  {task:>8}: {len(ATTRIBUTE_VALUES[task])} classes ({', '.join(ATTRIBUTE_VALUES[task][:4])}"
          f"{', ...' if len(ATTRIBUTE_VALUES[task]) > 4 else ''})")


# %%
def caption(i: int) -> str:
    """The label of test image `i`: its values of the chosen tasks."""
    return "\n".join(ATTRIBUTE_VALUES[t][int(y_test[t][i])] for t in CHOSEN)


sample_grid(x_test[:10], [caption(i) for i in range(10)], ncols=10, size=1.1)
plt.show()

# %% [markdown]
# ## The teachers: two multi-task networks
#
# Each teacher is a `MultiHeadNet` of `kae_utils.models`: the small ConvNet backbone of the other notebooks
# (stages of conv–BN–ReLU, each but the last followed by 2×2 max-pooling, then global average pooling) with **one
# linear head per attribute** on the pooled features. $T_1$ predicts shape, colour and size; $T_2$ position and
# fill. They share no tasks, and each was trained by someone else with its own labels. Here, the repository's
# **model zoo** (`kae_utils.zoo`) trained each once, from random weights, with the sum of its heads' cross-entropies,
# on `shapes` images of its own stream that no notebook uses (30,000 in the quick profile, 100,000 in the full one,
# 20 or 15 epochs): on the notebook's 4,000 training images alone the shape head stayed near chance. The zoo ships
# the weights in `zoo/` with their hashes; `TEACHERS = "train"` retrains them here from the same recipe. Shape is the
# hard attribute for such small networks (the object can be small, and distractors of other shapes surround it).

# %% tags=["nbval-ignore-output"]
teachers = {t: zoo.obtain(name, TEACHERS, device) for t, name in TEACHER_NAMES.items()}
for teacher in teachers.values():
    teacher.requires_grad_(False)
print("teachers:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
pd.DataFrame(zoo.summary(TEACHER_NAMES.values())).set_index("entry")

# %% [markdown]
# Their learning curves, as the zoo recorded them: the training loss and each head's accuracy on this notebook's
# test split (which no model trains on) after every epoch.

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, len(TEACHER_NAMES), figsize=(4.2 * len(TEACHER_NAMES), 2.8))
for ax, (t, name) in zip(np.atleast_1d(axes), TEACHER_NAMES.items(), strict=True):
    history = zoo.record(name)["history"]
    twin = ax.twinx()
    ax.plot(range(1, len(history["train_loss"]) + 1), history["train_loss"], color="k", lw=1, label="training loss")
    for i, task in enumerate(TEACHER_TASKS[t]):
        values = history[f"val_{task} accuracy"]
        twin.plot(range(1, len(values) + 1), values, color=f"C{i}", label=task)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    twin.set_ylabel("held-out accuracy")
    twin.set_ylim(0, 1)
    twin.legend(fontsize=7, loc="center right")
    ax.set_title(f"{t}: {', '.join(TEACHER_TASKS[t])}", fontsize=9)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()


# %% [markdown]
# Every model below is scored on the test split against the ground truth: one accuracy per attribute. The heads'
# logits come from `kae_utils.training.predict.predict_maps` (batched, in eval mode; a `MultiHeadNet` and the student return a
# dict of logits, one entry per head).

# %% tags=["nbval-ignore-output"]
def scores(logits: dict[str, torch.Tensor]) -> dict[str, float]:
    """Test accuracy of every head present in `logits`."""
    return {task: accuracy(z, y_test[task]) for task, z in logits.items()}


teacher_test_logits = {t: predict_maps(teacher, x_test, batch_size=500) for t, teacher in teachers.items()}
teacher_scores = {task: acc for logits in teacher_test_logits.values() for task, acc in scores(logits).items()}
teacher_of = {task: t for t, tasks in TEACHER_TASKS.items() for task in tasks}
chance = {task: 1 / len(ATTRIBUTE_VALUES[task]) for task in ALL_TASKS}
pd.DataFrame({"teacher": [teacher_of[t] for t in ALL_TASKS], "test accuracy": [teacher_scores[t] for t in ALL_TASKS],
              "chance": [chance[t] for t in ALL_TASKS], "chosen": [t in CHOSEN for t in ALL_TASKS]},
             index=ALL_TASKS).round(4)


# %% [markdown]
# ## The task-customised student
#
# Write a teacher $T_t$ as its $K$ backbone stages followed by global average pooling and one head per task $a$
# of its task set $A_t$:
#
# $$z^{t}_a(x) = H^{t}_a\big(\mathrm{GAP}(S^{t}_K \circ \dots \circ S^{t}_1(x))\big),\qquad a \in A_t .$$
#
# The user chooses a subset $U$ of $A_1 \cup A_2$ (here `TASKS`). The student, as built by the authors' code
# (**assumption, authors' code**: the paper's text could not be checked), has
#
# * a **shared trunk** $S_1, \dots, S_k$: the first $k$ stages, with the architecture of teacher 1's first $k$
#   stages but **re-initialised** (random weights, no teacher weights);
# * for every teacher that owns at least one chosen task, **one branch**: a copy of *that teacher's own*
#   remaining stages $S^t_{k+1}, \dots, S^t_K$ followed by a copy of **only its chosen heads** $H^t_a$,
#   $a \in U \cap A_t$. The other heads are not copied: their knowledge is *filtered* out;
#
# so that the student's answer for a chosen task $a$ of teacher $t$ is
#
# $$f_a(x) = H^{t}_a\Big(\mathrm{GAP}\big(S^{t}_K \circ \dots \circ S^{t}_{k+1}(\underbrace{S_k \circ \dots \circ S_1(x)}_{\text{shared trunk}})\big)\Big).$$
#
# The **branch point** $k$ trades size for sharing: with $k = K$ the branches are only the heads and the student is
# about one teacher's size; with small $k$ each task keeps most of its teacher's network. There is no gate and no
# adapter between trunk and branch: the trunk must learn to produce the features the copied branches expect.
#
# The trunk's stages are re-initialised copies of teacher 1's (the authors' code deep-copies teacher 0's blocks
# and resets them); each stage $i$ is drawn from its own seed, so a trunk grown stage by stage starts from the same
# weights as one built at once.

# %%
def reinitialised(module: nn.Module, seed: int) -> nn.Module:
    """A copy of `module` with every layer's parameters drawn afresh (seeded) and BatchNorm statistics reset."""
    fresh = copy.deepcopy(module)
    with seeded(seed):
        for layer in fresh.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    return fresh.requires_grad_(True)  # the teachers' own copies are frozen


class Branch(nn.Module):
    """Teacher t's own stages k+1..K, global pooling and only its chosen heads: copies, in the student."""

    def __init__(self, teacher: MultiHeadNet, k: int, tasks: Sequence[str]) -> None:
        super().__init__()
        self.stages = copy.deepcopy(teacher.backbone.stages[k:])
        self.heads = nn.ModuleDict({task: copy.deepcopy(teacher.heads[task]) for task in tasks})
        self.requires_grad_(True)  # trainable copies (the teachers themselves stay frozen)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        for stage in self.stages:
            h = stage(h)
        pooled = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        return {task: head(pooled) for task, head in self.heads.items()}


# %%
class AFKStudent(nn.Module):
    """A shared trunk of k re-initialised stages and one Branch per teacher that owns a chosen task.

    forward(x) returns {task: logits} for the chosen tasks. freeze_branches(True) is the "block" phase: the copied
    layers keep the teachers' weights while the trunk trains; their BatchNorm layers still normalise with the batch
    statistics (and update their running statistics), as in the authors' code, unless teacher_bn_statistics is set
    (an ablation: the teachers' statistics are kept, as in notebook 04). grow() adds the next stage.
    """

    def __init__(self, teachers: dict[str, MultiHeadNet], tasks: Sequence[str], k: int, seed: int,
                 teacher_bn_statistics: bool = False) -> None:
        super().__init__()
        base = teachers["T1"].backbone  # the trunk's architecture: teacher 1's first k stages
        self.k, self.tasks, self.seed, self.teacher_bn_statistics = k, list(tasks), seed, teacher_bn_statistics
        self.trunk = nn.ModuleList(reinitialised(base.stages[i], 1000 * seed + i) for i in range(k))
        self.branches = nn.ModuleDict({
            t: Branch(teacher, k, [task for task in tasks if task in teacher.tasks])
            for t, teacher in teachers.items() if set(tasks) & set(teacher.tasks)
        })
        self.branches_frozen = False

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = x
        for stage in self.trunk:
            h = stage(h)
        out: dict[str, torch.Tensor] = {}
        for branch in self.branches.values():
            out.update(branch(h))
        return {task: out[task] for task in self.tasks}

    def freeze_branches(self, frozen: bool) -> "AFKStudent":
        self.branches_frozen = frozen
        freeze(self.branches, frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "AFKStudent":
        super().train(mode)
        # the ablation: frozen copies in eval mode, keeping the teachers' BatchNorm statistics
        hold_statistics(self.branches, self.branches_frozen and self.teacher_bn_statistics)
        return self

    def grow(self, teachers: dict[str, MultiHeadNet]) -> "AFKStudent":
        """The student with branch point k + 1: trunk stages 1..k as trained, stage k + 1 re-initialised,
        the branches copied afresh from the teachers (they start one stage later)."""
        bigger = AFKStudent(teachers, self.tasks, self.k + 1, self.seed, self.teacher_bn_statistics)
        for mine, theirs in zip(self.trunk, bigger.trunk, strict=False):
            theirs.load_state_dict(mine.state_dict())
        return bigger.to(next(self.parameters()).device)


# %% [markdown]
# The student for the chosen tasks at the chosen branch point, module by module with its parameters (the trunk is
# re-initialised; the branch stages and heads are the teachers'):

# %%
def describe(student: AFKStudent) -> pd.DataFrame:
    """The student's parts, where each one's weights come from, and its parameter count."""
    rows = [("trunk", f"stage {i + 1}", "re-initialised", count_parameters(s)) for i, s in enumerate(student.trunk)]
    for t, branch in student.branches.items():
        rows += [(f"branch {t}", f"stage {student.k + j + 1}", f"copy of {t}", count_parameters(s))
                 for j, s in enumerate(branch.stages)]
        rows += [(f"branch {t}", f"head {task}", f"copy of {t}", count_parameters(h)) for task, h in branch.heads.items()]
    return pd.DataFrame(rows, columns=["part", "module", "weights from", "parameters"])


example_student = AFKStudent(teachers, CHOSEN, BRANCH_POINT, seed=SEED)
print(describe(example_student).to_string(index=False))
teachers_params = sum(count_parameters(t) for t in teachers.values())
print(f"student: {count_parameters(example_student):,} parameters; teachers together: {teachers_params:,}")

# %% [markdown]
# The same student as a picture. The dotted lines are the candidate branch points $k = 1, \dots, K$ (after trunk
# stage $k$); the red one is the chosen $k$. Grey: the shared trunk (re-initialised); colours: copies of each
# teacher's layers.

# %%
TEACHER_COLOURS = {"T1": "#f4b183", "T2": "#a9d18e"}


def draw_student(student: AFKStudent, ax: plt.Axes | None = None) -> plt.Axes:
    """Boxes for the trunk stages, each branch's copied stages and heads; lines at the candidate branch points."""
    rows = list(student.branches)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.45 * (NUM_STAGES + 2.6), 0.6 + 1.0 * max(len(rows), 2)))
    middle = (len(rows) - 1) / 2

    def box(x, y, text, colour, width=0.84):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.3), width, 0.6, boxstyle="round,pad=0.02",
                                    fc=colour, ec="k", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=7)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", lw=0.8))

    box(0, middle, "image\n" + "×".join(map(str, IMAGE_SHAPE)), "white")
    for i, stage in enumerate(student.trunk):
        box(i + 1, middle, f"trunk stage {i + 1}\n{count_parameters(stage):,}", "#d9d9d9")
        arrow(i + 0.42, middle, i + 0.58, middle)
    for row, t in enumerate(rows):
        branch, x = student.branches[t], student.k + 1
        arrow(student.k + 0.42, middle, x - 0.42, row)
        for j, stage in enumerate(branch.stages):
            box(x, row, f"{t} stage {student.k + j + 1}\n{count_parameters(stage):,}", TEACHER_COLOURS[t])
            arrow(x + 0.42, row, x + 0.58, row)
            x += 1
        heads = ", ".join(branch.heads)
        box(x + 0.3, row, f"GAP + heads\n{heads}\n{sum(count_parameters(h) for h in branch.heads.values()):,}",
            TEACHER_COLOURS[t], width=1.3)
    for k in range(1, NUM_STAGES + 1):
        chosen = k == student.k
        ax.axvline(k + 0.5, color="r" if chosen else "0.6", ls="-" if chosen else ":", lw=1.2 if chosen else 0.8)
        ax.text(k + 0.5, len(rows) - 0.35 if len(rows) > 1 else 0.75, f"k = {k}", ha="center", fontsize=7,
                color="r" if chosen else "0.4")
    ax.set_xlim(-0.6, NUM_STAGES + 2.1)
    ax.set_ylim(-0.6, max(len(rows) - 0.2, 1.0))
    ax.invert_yaxis()
    ax.axis("off")
    ax.set_title(f"student for {', '.join(student.tasks)}: {count_parameters(student):,} parameters", fontsize=9)
    return ax


draw_student(example_student)
plt.show()


# %% [markdown]
# ## Learning from the teachers' outputs only
#
# The student never sees a label. For every unlabeled transfer image the frozen teachers give their logits
# $z^{t}_a(x)$ on the chosen tasks, and each of the student's heads is pulled towards its teacher's **hard
# pseudo-label** (**assumption, authors' code**: KAmalEngine thresholds the teachers' sigmoid outputs for its
# multi-label VOC tasks and uses binary cross-entropy; our tasks are single-label, so the teacher's argmax and the
# cross-entropy take their place):
#
# $$L_{\text{hard}} = \sum_{a \in U} \mathrm{CE}\big(f_a(x),\ \arg\max_c z^{t(a)}_{a,c}(x)\big).$$
#
# As an ablation (`LOSS = "soft"`, or the extra run of the full profile), the soft targets of Hinton et al.,
# $L_{\text{soft}} = \sum_{a \in U} T^2\,\mathrm{KL}\big(\mathrm{softmax}(z^{t(a)}_a / T)\,\|\,\mathrm{softmax}(f_a / T)\big)$
# with $T = 4$ (`kae_utils.methods.distillation.kd_kl`). The tasks' losses are summed without weights. The teachers' logits of
# the transfer set are computed once; the guard `check_images_only` refuses anything but a plain image tensor, so no
# label can slip in.

# %%
@torch.no_grad()
def teacher_targets(x_images: torch.Tensor, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
    """The frozen teachers' logits of the chosen tasks on unlabeled images (computed once, kept in memory)."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    logits = {task: z for t, teacher in teachers.items() for task, z in predict_maps(teacher, x, batch_size=500).items()}
    return {task: logits[task] for task in tasks}


def amalgamation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, loss: str) -> torch.Tensor:
    """One task's loss: CE to the teacher's argmax ("hard") or T^2 KL to its softened distribution ("soft")."""
    if loss == "hard":
        return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))
    return kd_kl(student_logits, teacher_logits, TEMPERATURE)


TEACHER_TARGETS = teacher_targets(X_TRANSFER, ALL_TASKS)  # every head's logits on the transfer set, computed once
try:
    check_images_only((X_TRANSFER, train_split.targets["shape"]), IMAGE_SHAPE)
except ValueError as error:
    print("passing labels is refused:", error)


# %% [markdown]
# ## Layer-wise learning: block phases, then fine-tuning
#
# The abstract calls the method "a layer-wise training strategy, which entangles the student's network block to be
# learned with the corresponding teachers". In the authors' code (**assumption, authors' code**) this is done by
# re-running the training with a growing branch point, each run starting from the last one's weights:
#
# 1. **block, $k = 1$**: the trunk is stage 1 (re-initialised); each branch is its teacher's stages $2, \dots, K$ and
#    chosen heads, **frozen**. Only trunk stage 1 learns, so it must produce what the teachers' own stage 2 expects.
# 2. **block, $k = 2, \dots$**: the trunk grows by one re-initialised stage, the branches start one stage later
#    (fresh copies, frozen); the whole trunk trains. Repeat up to the chosen branch point.
# 3. **finetune**: every parameter, the copied branches included, trains at the chosen branch point.
#
# "Frozen" means, as in the authors' code, that the copied layers' *parameters* do not change; their BatchNorm layers
# stay in training mode, so they normalise the new trunk's features with the batch statistics (and their running
# statistics follow those features). Keeping the teachers' statistics instead (notebook 04's choice) is an ablation.
#
# The KAmalEngine help text says that its "block" phase is "step 2 in the paper" and "finetune" is "step 4"; steps
# 1 and 3 are not described there. Each block phase gets $E_b$ epochs (`block_epochs`) and fine-tuning what is left of
# the budget of `total_epochs`, so every student below trains for the same number of epochs. Adam with a cosine
# schedule in every phase.

# %%
def labels_loss(out: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> torch.Tensor:
    """The supervised ceiling's loss: the sum of the heads' cross-entropies to the true labels."""
    return sum(F.cross_entropy(out[task], y[task]) for task in y)


def train_phase(student: AFKStudent, x: torch.Tensor, targets: dict[str, torch.Tensor], epochs: int, *,
                frozen: bool, loss: str, seed: int, desc: str, labels: bool = False) -> dict[str, list[float]]:
    """Train `student` on the teachers' outputs for `epochs`; frozen=True is a block phase (branches frozen).

    labels=True is the supervised ceiling: `targets` are then the true labels of the images, and the same phase
    trains on them with cross-entropy (kae_utils.methods.amalgamation.train_ceiling)."""
    tasks = student.tasks
    student.freeze_branches(frozen)
    budget = dict(epochs=epochs, lr=CFG["lr"], batch_size=CFG["batch_size"], device=device, seed=seed, desc=desc)
    if labels:
        _, history = train_ceiling(student, x, {task: targets[task] for task in tasks}, labels_loss, **budget)
    else:
        def step(model: AFKStudent, batch):
            xb, *zs = batch
            out = model(xb)
            losses = {task: amalgamation_loss(out[task], z, loss) for task, z in zip(tasks, zs, strict=True)}
            return sum(losses.values()), {task: v.detach() for task, v in losses.items()}

        history = Trainer(student, step_fn=step, **budget).fit((x, *[targets[task] for task in tasks]))
    student.freeze_branches(False)
    return history.to_dict()


# %% [markdown]
# One function builds and trains a student by any of the schedules compared below:
#
# * `"layer-wise"` (**AFK**): block phases $k = 1, \dots, k^{*}$ of $E_b$ epochs each, then fine-tuning;
# * `"block only"`: the same block phases, the remaining epochs as one more block phase at $k^{*}$ (the copies
#   stay the teachers' to the end);
# * `"finetune only"`: the branches are copied at $k^{*}$, the trunk is random, and everything trains from the start;
# * `"scratch"`: **multi-teacher KD from scratch**: the same architecture with *every* weight re-initialised (the
#   branches too), trained end to end on the same loss for the same epochs. What is left of AFK is then only the
#   architecture: the comparison measures what copying the teachers' layers and the layer-wise schedule bring.

# %%
SCHEDULES = ("layer-wise", "block only", "finetune only", "scratch")


def amalgamate(tasks: Sequence[str], k: int, schedule: str, seed: int, loss: str = LOSS,
               teacher_bn_statistics: bool = False, labels: bool = False) -> dict:
    """Build and train a student for `tasks` with branch point k; returns the student and its phases' histories.

    labels=True trains the same student by the same schedule with the true labels instead of the teachers: the
    supervised ceiling."""
    x = check_images_only(X_TRANSFER, IMAGE_SHAPE)
    targets = {task: Y_TRANSFER[task] for task in tasks} if labels else {task: TEACHER_TARGETS[task] for task in tasks}
    eb, total, phases = CFG["block_epochs"], CFG["total_epochs"], []
    if schedule in ("layer-wise", "block only"):
        student = AFKStudent(teachers, tasks, 1, seed, teacher_bn_statistics).to(device)
        for kk in range(1, k + 1):
            if kk > 1:
                student = student.grow(teachers)
            phases.append((f"block k={kk}", train_phase(student, x, targets, eb, frozen=True, loss=loss, seed=seed,
                                                        desc=f"block k={kk} ({', '.join(tasks)}, seed {seed})",
                                                        labels=labels)))
        rest = total - k * eb
        phases.append(("finetune" if schedule == "layer-wise" else f"block k={k}",
                       train_phase(student, x, targets, rest, frozen=schedule == "block only", loss=loss, seed=seed,
                                   desc=f"{'finetune' if schedule == 'layer-wise' else 'block'} (seed {seed})",
                                   labels=labels)))
    else:
        student = AFKStudent(teachers, tasks, k, seed).to(device)
        if schedule == "scratch":  # the trunk is random already; now the branches and heads too
            student.branches = reinitialised(student.branches, 7000 + seed)
        phases.append(("end to end", train_phase(student, x, targets, total, frozen=False, loss=loss, seed=seed,
                                                 desc=f"{schedule} ({', '.join(tasks)}, seed {seed})", labels=labels)))
    return {"student": student.eval(), "phases": phases, "parameters": count_parameters(student)}


# %% [markdown]
# ## The supervised ceiling (uses labels), measured first
#
# Before any student learns from the teachers: the customised student's **own architecture and initialisation**
# (the re-initialised trunk, the copied branches), trained by **the same schedule** (block phases, then
# fine-tuning) for the same budget on the same transfer images, but with their **true labels** instead of the
# teachers' outputs (cross-entropy, `kae_utils.methods.amalgamation.train_ceiling` in every phase). No label-free student
# can be expected to do better. Where the ceiling on a chosen task stays below the teacher by more than the claim's
# tolerance, this experiment cannot test "the student matches its teacher" on that task, and the claims below say so.

# %% tags=["nbval-ignore-output"]
ceiling_logits = {seed: predict_maps(amalgamate(CHOSEN, BRANCH_POINT, "layer-wise", seed, labels=True)["student"], x_test, batch_size=500)
                  for seed in CFG["seeds"]}
ceiling_runs = {seed: scores(logits) for seed, logits in ceiling_logits.items()}  # seed: {task: test accuracy}
ceiling = {task: float(np.mean([ceiling_runs[s][task] for s in CFG["seeds"]])) for task in CHOSEN}
for task in CHOSEN:
    print(f"{task:>8}: supervised ceiling {ceiling[task]:.4f}; teacher {teacher_of[task]} {teacher_scores[task]:.4f}")

# %% [markdown]
# ## The experiments
#
# For every seed:
#
# * **AFK**, the customised student: the chosen tasks, branch point `BRANCH_POINT`, layer-wise;
# * **AFK, all tasks**: the same construction for all five tasks (each branch carries all its teacher's heads),
#   evaluated on the chosen tasks: does customising to a subset help the subset? (the "filtered" claim);
# * **KD from scratch**: the same architecture as the customised student, every weight random, multi-teacher KD;
#
# and with `ablations` (the full profile, or `ABLATIONS = "on"`): **block only**, **finetune only**, the other loss
# (soft if `LOSS` is hard, and vice versa), block phases that keep the teachers' BatchNorm statistics, and the
# customised student at every other branch point.

# %%
OTHER_LOSS = "soft" if LOSS == "hard" else "hard"
EXPERIMENTS = {  # name: (tasks, branch point, schedule, loss, teachers' BatchNorm statistics kept in block phases)
    "AFK": (CHOSEN, BRANCH_POINT, "layer-wise", LOSS, False),
    "AFK, all tasks": (ALL_TASKS, BRANCH_POINT, "layer-wise", LOSS, False),
    "KD from scratch": (CHOSEN, BRANCH_POINT, "scratch", LOSS, False),
}
if CFG["ablations"]:
    EXPERIMENTS |= {
        "block only": (CHOSEN, BRANCH_POINT, "block only", LOSS, False),
        "finetune only": (CHOSEN, BRANCH_POINT, "finetune only", LOSS, False),
        f"AFK, {OTHER_LOSS} loss": (CHOSEN, BRANCH_POINT, "layer-wise", OTHER_LOSS, False),
        "AFK, teachers' BN statistics": (CHOSEN, BRANCH_POINT, "layer-wise", LOSS, True),
    }
    EXPERIMENTS |= {f"AFK, k = {k}": (CHOSEN, k, "layer-wise", LOSS, False)
                    for k in range(1, NUM_STAGES + 1) if k != BRANCH_POINT}
for name, (tasks, k, schedule, loss, teacher_bn) in EXPERIMENTS.items():
    print(f"{name:>28}: tasks {', '.join(tasks)}; k = {k}; {schedule}; {loss} loss"
          + ("; block phases keep the teachers' BatchNorm statistics" if teacher_bn else ""))

# %% tags=["nbval-ignore-output"]
runs = {}
for seed in CFG["seeds"]:
    for name, (tasks, k, schedule, loss, teacher_bn) in EXPERIMENTS.items():
        run = amalgamate(tasks, k, schedule, seed, loss, teacher_bn)
        run["scores"] = scores(predict_maps(run["student"], x_test, batch_size=500))
        runs[(name, seed)] = run

# %% [markdown]
# ## Results
#
# ### Each chosen task: student vs teacher
#
# Test accuracy on every chosen task (mean over seeds; ± the standard deviation over seeds in the full profile).
# "agreement" is the share of test images on which the student's answer equals its teacher's. The supervised
# ceiling (labels, not a method) is the bound on what the students below could reach with this budget.

# %% tags=["nbval-ignore-output"]
CEILING = "supervised ceiling (labels)"
rows = []
for (name, seed), run in runs.items():
    student_logits = predict_maps(run["student"], x_test, batch_size=500)
    for task in CHOSEN:
        agree = (student_logits[task].argmax(1) == teacher_test_logits[teacher_of[task]][task].argmax(1)).float().mean()
        rows.append({"model": name, "seed": seed, "task": task, "accuracy": run["scores"][task],
                     "agreement with the teacher": agree.item()})
rows += [{"model": "teacher", "seed": seed, "task": task, "accuracy": teacher_scores[task],
          "agreement with the teacher": 1.0} for seed in CFG["seeds"] for task in CHOSEN]
rows += [{"model": CEILING, "seed": seed, "task": task, "accuracy": ceiling_runs[seed][task],
          "agreement with the teacher": (logits[task].argmax(1) == teacher_test_logits[teacher_of[task]][task].argmax(1))
          .float().mean().item()} for seed, logits in ceiling_logits.items() for task in CHOSEN]
results_long = pd.DataFrame(rows)
MODELS = ["teacher", CEILING, *EXPERIMENTS]
by_model = results_long.groupby(["task", "model"], sort=False)["accuracy"]
table = by_model.mean().unstack("model")[MODELS].loc[CHOSEN].round(4)
if len(CFG["seeds"]) > 1:
    table = table.astype(str) + " ± " + by_model.std().unstack("model")[MODELS].loc[CHOSEN].round(4).astype(str)
table.T

# %% tags=["nbval-ignore-output"]
mean_acc = results_long.groupby(["model", "task"], sort=False)["accuracy"].mean().unstack("task")[CHOSEN]
fig, ax = plt.subplots(figsize=(2.6 + 0.35 * len(CHOSEN) * len(MODELS), 3.0))
width = 0.8 / len(MODELS)
for i, model in enumerate(MODELS):
    pos = np.arange(len(CHOSEN)) + (i - (len(MODELS) - 1) / 2) * width
    colour = {"teacher": "k", CEILING: "0.6"}.get(model, f"C{i - 2}")
    ax.bar(pos, mean_acc.loc[model], width, label=model, color=colour)
ax.scatter(np.arange(len(CHOSEN)), [chance[t] for t in CHOSEN], marker="_", s=400, color="r", label="chance", zorder=3)
ax.set_xticks(np.arange(len(CHOSEN)), CHOSEN)
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1)
ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.grid(alpha=0.3, axis="y")
ax.set_title("chosen tasks: teachers and students", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Parameters
#
# The students' sizes are fixed by the construction (nothing here depends on training): the customised student
# against both teachers together and against the all-task student, and what the branch point changes.

# %%
params_by_k = {k: count_parameters(AFKStudent(teachers, CHOSEN, k, seed=0)) for k in range(1, NUM_STAGES + 1)}
all_task_params = count_parameters(AFKStudent(teachers, ALL_TASKS, BRANCH_POINT, seed=0))
student_params = params_by_k[BRANCH_POINT]
lines = [(f"teacher {t} ({', '.join(TEACHER_TASKS[t])})", count_parameters(m), "") for t, m in teachers.items()]
lines.append(("teachers together", teachers_params, ""))
lines.append((f"student for all tasks, k = {BRANCH_POINT}", all_task_params, ""))
lines += [(f"customised student, k = {k}", p, "  <- chosen" if k == BRANCH_POINT else "") for k, p in params_by_k.items()]
for label, p, mark in lines:
    print(f"{label:<36}{p:>9,}  ({p / teachers_params:4.0%} of the teachers){mark}")


# %% [markdown]
# ### The branch point: accuracy vs parameters
#
# Each customised student is a point: its parameters and its mean accuracy over the chosen tasks. Without
# `ablations` only the chosen branch point is trained (the others need the full profile or `ABLATIONS = "on"`); its
# point is then the only one, and the parameters of the others are the ticks on the axis. The dashed line is the
# teachers' mean accuracy on the chosen tasks.

# %% tags=["nbval-ignore-output"]
def mean_over_chosen(name: str) -> list[float]:
    """Per seed, a model's mean test accuracy over the chosen tasks."""
    return [float(np.mean([runs[(name, s)]["scores"][t] for t in CHOSEN])) for s in CFG["seeds"]]


k_points = {k: (f"AFK, k = {k}" if k != BRANCH_POINT else "AFK") for k in range(1, NUM_STAGES + 1)}
fig, ax = plt.subplots(figsize=(5.2, 3.2))
for k, name in k_points.items():
    x_k = params_by_k[k] / 1000
    if (name, CFG["seeds"][0]) in runs:
        m, s = mean_std(mean_over_chosen(name))
        ax.errorbar(x_k, m, yerr=s, fmt="o", color="r" if k == BRANCH_POINT else "C0", capsize=3)
        ax.annotate(f"k = {k}", (x_k, m), textcoords="offset points", xytext=(-8, 8), fontsize=8)
    ax.plot([x_k], [0.02], "^", color="0.5", transform=ax.get_xaxis_transform(), clip_on=False)
    ax.text(x_k, 0.06, f"k = {k}", rotation=90, fontsize=7, color="0.4", transform=ax.get_xaxis_transform(),
            ha="center", va="bottom")
ax.axhline(np.mean([teacher_scores[t] for t in CHOSEN]), color="k", ls="--", lw=1, label="teachers (mean)")
ax.axvline(teachers_params / 1000, color="0.5", ls=":", lw=1, label="teachers together")
ax.set_xlabel("parameters (thousands); triangles: every branch point's size")
ax.set_ylabel("mean test accuracy, chosen tasks")
ax.legend(fontsize=7)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The loss of each phase
#
# The training loss (sum over the chosen tasks) epoch by epoch through the phases of the first seed: AFK's block
# phases and fine-tuning, and the end-to-end training of the scratch student. The block phases start high because
# the trunk is random and the copied branches cannot adapt to it.

# %% tags=["nbval-ignore-output"]
seed0 = CFG["seeds"][0]
fig, ax = plt.subplots(figsize=(6.0, 3.0))
for i, name in enumerate(n for n in ("AFK", "AFK, all tasks", "KD from scratch") if (n, seed0) in runs):
    start = 0
    for j, (phase, history) in enumerate(runs[(name, seed0)]["phases"]):
        loss = history["train_loss"]
        epochs = np.arange(start + 1, start + len(loss) + 1)
        ax.plot(epochs, loss, "o-", ms=3, color=f"C{i}", label=name if j == 0 else None)
        if name == "AFK":
            ax.axvline(start + 0.5, color="0.7", lw=0.8)
            ax.text(start + 0.6, 0.97, phase, transform=ax.get_xaxis_transform(), fontsize=7, va="top")
        start += len(loss)
ax.set_xlabel("epoch (all phases)")
ax.set_ylabel("training loss")
ax.set_yscale("log")
ax.legend(fontsize=7)
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Predictions
#
# A few test images with the ground truth and the answers of the teachers and of the customised student on the
# chosen tasks (first seed); in Jupyter the controls below browse the test set.

# %% tags=["nbval-ignore-output"]
afk_logits = predict_maps(runs[("AFK", seed0)]["student"], x_test, batch_size=500)


def show_predictions(start: int = 0, count: int = 6) -> plt.Figure:
    """A grid of test images from `start`, each labelled truth | teacher | student per chosen task."""
    idx = list(range(start, start + count))
    labels = []
    for i in idx:
        lines = []
        for task in CHOSEN:
            answers = (y_test[task][i], teacher_test_logits[teacher_of[task]][task][i].argmax(), afk_logits[task][i].argmax())
            lines.append(" | ".join(ATTRIBUTE_VALUES[task][int(a)] for a in answers))
        labels.append("\n".join(lines))
    fig = sample_grid(x_test[idx], labels, ncols=count, size=2.0)
    fig.suptitle("truth | teacher | AFK student, for " + ", ".join(CHOSEN), fontsize=9, y=1.1)
    return fig


show_predictions()
plt.show()


# %%
def browse(start: int = 0) -> None:
    """Show the predictions of six test images from `start` (the widget's callback)."""
    show_predictions(start)
    plt.show()


explore(browse, start=list(range(0, min(len(x_test), 120), 6)))

# %% [markdown]
# ### Size and speed
#
# Inference time on the whole test set: the customised student once vs both teachers in turn (the teachers compute
# every head, the student only the chosen ones), median of three repeats on this machine (noisy; not compared by
# nbval).

# %% tags=["nbval-ignore-output"]
student_time = median_time(lambda: predict_maps(runs[("AFK", seed0)]["student"], x_test, batch_size=500), repeats=3)
teachers_time = median_time(lambda: [predict_maps(t, x_test, batch_size=500) for t in teachers.values()], repeats=3)
print(f"test set ({len(x_test)} images): student {student_time * 1e3:.0f} ms, teachers together {teachers_time * 1e3:.0f} ms")


# %% [markdown]
# ### Paper vs this run
#
# The paper's numbers (VOC-style multi-label photographs, DenseNet/ResNet teachers) could not be read, and the
# authors' own re-implementation in KAmalEngine says its results are "not as satisfying as" the paper's; so only the
# pattern of the abstract can be compared: the customised student matches or outperforms the teachers on the
# customised tasks, with fewer parameters.

# %% tags=["nbval-ignore-output"]
def chosen_values(name: str, task: str) -> list[float]:
    """The test accuracies of the student `name` on `task`, one per seed."""
    return [runs[(name, s)]["scores"][task] for s in CFG["seeds"]]


results_rows = [(f"{task}: teacher {teacher_of[task]}", "", teacher_scores[task], 0.0) for task in CHOSEN]
results_rows += [(f"{task}: AFK student", "matches or beats the teacher", *mean_std(chosen_values("AFK", task)))
                 for task in CHOSEN]
results_rows += [(f"{task}: supervised ceiling (labels)", "(not in the paper)",
                  *mean_std([ceiling_runs[s][task] for s in CFG["seeds"]])) for task in CHOSEN]
results_rows += [
    ("chosen tasks (mean): AFK", "", *mean_std(mean_over_chosen("AFK"))),
    ("chosen tasks (mean): AFK, all tasks", "(not in the abstract)", *mean_std(mean_over_chosen("AFK, all tasks"))),
    ("chosen tasks (mean): KD from scratch", "(not in the abstract)", *mean_std(mean_over_chosen("KD from scratch"))),
    ("student parameters / teachers together", "< 1", student_params / teachers_params, 0.0),
]
results_table = pd.DataFrame(results_rows, columns=["quantity", "paper (pattern)",
                                                    f"this run (mean of {len(CFG['seeds'])})", "std"])
results_table.round(4)

# %% [markdown]
# ## How this differs from notebook 04 (*Student Becoming the Master*)
#
# Both papers come from the same group and both build the student from the teachers' own layers, with a "block"
# phase (copied layers frozen) and a "finetune" phase. They differ in what is amalgamated and how the student starts:
#
# | | 04 · Student Becoming the Master (CVPR 2019) | 06 · Amalgamating Filtered Knowledge (IJCAI 2019) |
# |---|---|---|
# | teachers | one **single-task** encoder-decoder per pixel task (segmentation, depth, normals) | **multi-task** classifiers, several heads each |
# | what the student learns | **all** the teachers' tasks | a **chosen subset** of the tasks ("filtered"): only those heads are copied and mimicked |
# | shared trunk | a **copy of teacher 0**, trained further | **re-initialised** (architecture of teacher 1, random weights), grown stage by stage |
# | between trunk and branch | a **channel-coding adapter** (squeeze-and-excitation gate) per task | **nothing**: the trunk must produce what the copied branch expects |
# | branch point | **searched** per task (random points during the block phase, the lowest loss kept) | **one given point** $k$ for all branches, reached by growing the trunk one block at a time |
# | one branch per | task | teacher (carrying only its chosen heads) |
# | losses | per pixel: KL, scale-invariant depth, angle | per head: cross-entropy to the teacher's argmax (soft KL as an ablation) |
#
# Why: SbM's student starts from teacher 0, so its trunk already computes teacher 0's features, and the adapters
# only have to re-weight them for the other tasks; the branch point is a real choice per task and is searched. AFK's
# teachers are multi-task networks of the same architecture and its student must fit any subset, so it keeps no
# teacher's trunk at all: a fresh trunk is trained, block by block, against frozen copies of the teachers' later
# layers, which act as fixed "decoders" of what the trunk must compute. The SE adapter of notebook 04 belongs to
# SbM; it is not part of AFK (exercise 4 tries it as an ablation).

# %% [markdown]
# ## Claims
#
# Checked with rules and tolerances fixed before the first run (the research notes' rule for `shapes`: an accuracy
# on $n$ test images has a standard error of $\sqrt{p(1-p)/n}$, about 1.1<!-- fixed -->–1.6<!-- fixed --> points at $n = 1000$ in the quick
# profile and 0.35<!-- fixed -->–0.5<!-- fixed --> at $n = 10\,000$ in the full one; small nets vary 1–2 points between seeds):
#
# 1. **The customised student matches each teacher on the chosen tasks** (quick profile, one line per task): its test
#    accuracy is at least the teacher's minus 2 points. In the **full profile** the paper's stronger claim is checked
#    instead: the student **beats** the teacher, i.e. its mean over the three seeds is above the teacher's and at least
#    2 of the 3 seeds are above it.
# 2. **It has fewer parameters than the teachers together** (deterministic: fixed by the construction).
# 3. **Layer-wise AFK is not worse than the same architecture trained from scratch by multi-teacher KD** for the same
#    number of epochs: its mean accuracy over the chosen tasks is at least the scratch student's minus 1 point (mean
#    over seeds).
# 4. **Filtering helps the chosen tasks**: the customised student's mean accuracy over the chosen tasks is at least the
#    all-task student's minus 1 point (mean over seeds).
#
# **Which claims this run can test** is decided by the supervised ceiling measured above, with the claim's own
# tolerance (`kae_utils.methods.amalgamation.ceiling_reaches`): claim 1 on a task where the ceiling reaches the teacher (in
# the full profile: at least equals it, as "beats" has no tolerance); claims 3 and 4, which compare ways of building
# the student, where the ceiling reaches the teacher on every chosen task, since below it every student is held back
# by the budget rather than by what it learns from the teachers. Claim 2 trains nothing and is always testable. An
# untestable claim is still checked and printed, marked `(untestable here: ...)`.

# %%
MATCH_TOL, SCRATCH_TOL, SUBSET_TOL = 0.02, 0.01, 0.01

afk_task = {task: chosen_values("AFK", task) for task in CHOSEN}
afk_mean = mean_std(mean_over_chosen("AFK"))[0]
scratch_mean = mean_std(mean_over_chosen("KD from scratch"))[0]
all_task_mean = mean_std(mean_over_chosen("AFK, all tasks"))[0]


def beats_or_matches(task: str) -> bool:
    """Claim 1 for one task: the student beats (full profile) or matches (quick) its teacher."""
    values, teacher = afk_task[task], teacher_scores[task]
    if PROFILE == "full":  # beats: the mean above the teacher and at least 2 of 3 seeds above it
        return bool(np.mean(values) > teacher and sum(v > teacher for v in values) >= 2)
    return bool(np.mean(values) >= teacher - MATCH_TOL)


# what the ceiling allows this run to test (the claim's own tolerance; "beats" has none)
testable = {task: ceiling_reaches(ceiling[task], teacher_scores[task], tolerance=0.0 if PROFILE == "full" else MATCH_TOL)
            for task in CHOSEN}
below = [task for task in CHOSEN if not testable[task]]
untestable_comparison = "" if not below else (
    f"the supervised ceiling is below the teacher on {', '.join(below)}, so every student is held back by the budget")
ceiling_text = "; ceiling " + ", ".join(f"{t} {ceiling[t]:.4f}" for t in CHOSEN)

verb = "beats" if PROFILE == "full" else "matches"
claims = [
    Claim(f"the customised student {verb} the {teacher_of[task]} teacher on {task}", beats_or_matches(task),
          f"student {np.mean(afk_task[task]):.4f} (per seed {', '.join(f'{v:.4f}' for v in afk_task[task])}) vs "
          f"teacher {teacher_scores[task]:.4f}" + ("" if PROFILE == "full" else f" (tolerance {MATCH_TOL})")
          + f"; ceiling {ceiling[task]:.4f}",
          untestable="" if testable[task] else f"the supervised ceiling on {task} is below the teacher",
          effect=Effect(f"student - teacher, {task} accuracy" + (" (strictly above, 2 seeds of 3)" if PROFILE == "full" else ""),
                        np.mean(afk_task[task]) - teacher_scores[task], 0.0 if PROFILE == "full" else -MATCH_TOL))
    for task in CHOSEN
]
claims += [
    Claim("the customised student has fewer parameters than the teachers together",
          bool(student_params < teachers_params), f"student {student_params} vs teachers {teachers_params}",
          effect=Effect("student / teachers together, parameters (strictly below)",
                        student_params / teachers_params, 1.0, "at most")),
    Claim("layer-wise AFK is not worse than the same architecture trained from scratch by multi-teacher KD",
          bool(afk_mean >= scratch_mean - SCRATCH_TOL),
          f"AFK {afk_mean:.4f} vs scratch {scratch_mean:.4f} (tolerance {SCRATCH_TOL})" + ceiling_text,
          untestable=untestable_comparison,
          effect=Effect("layer-wise AFK - scratch multi-teacher KD, mean accuracy over the chosen tasks",
                        afk_mean - scratch_mean, -SCRATCH_TOL)),
    Claim("the student customised to the chosen tasks is not worse on them than the student built for all tasks",
          bool(afk_mean >= all_task_mean - SUBSET_TOL),
          f"customised {afk_mean:.4f} vs all-task {all_task_mean:.4f} (tolerance {SUBSET_TOL})" + ceiling_text,
          untestable=untestable_comparison,
          effect=Effect("customised - all-task student, mean accuracy over the chosen tasks",
                        afk_mean - all_task_mean, -SUBSET_TOL)),
]
report = check_claims(claims)

# %%
metrics = {
    "headline": ("; ".join(f"{t} student {np.mean(afk_task[t]):.1%} vs teacher {teacher_scores[t]:.1%}" for t in CHOSEN)
                 + f"; {student_params / teachers_params:.0%} of the teachers' parameters"),
    "chosen_tasks": CHOSEN,
    "branch_point": BRANCH_POINT,
    "teacher_accuracy": teacher_scores,
    "ceiling": ceiling,
    "ceiling_per_seed": {str(seed): vals for seed, vals in ceiling_runs.items()},
    "transfer_images": len(X_TRANSFER),
    "scores": results_long.to_dict(orient="records"),
    "mean_over_chosen": {name: mean_over_chosen(name) for name in EXPERIMENTS},
    "parameters": {"student": student_params, "teachers_together": teachers_params, "all_task_student": all_task_params,
                   "by_branch_point": {str(k): p for k, p in params_by_k.items()},
                   **{f"teacher_{t}": count_parameters(m) for t, m in teachers.items()}},
    "inference_seconds": {"student": student_time, "teachers_together": teachers_time},
    "tolerances": {"match": MATCH_TOL, "scratch": SCRATCH_TOL, "subset": SUBSET_TOL},
    "seeds": CFG["seeds"],
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, TEACHERS=TEACHERS, TASKS=TASKS,
                  BRANCH_POINT=BRANCH_POINT, LOSS=LOSS, ABLATIONS=ABLATIONS, EPOCH_SCALE=EPOCH_SCALE)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### How this experiment was sized
#
# The supervised ceiling was measured first, before the claims. With the customised tasks shape and fill and the
# 4,000 training images as the transfer set, the student trained the same way with the true labels stayed far below
# the teachers, exactly where the AFK student and KD from scratch were: none of claims 1, 3 and 4 could be tested. A
# re-initialised trunk must learn shape, the hardest attribute for these small nets, from the transfer images alone,
# and the zoo's teachers needed 30,000 labelled images and 20 epochs for it. So the quick profile customises
# **colour** (from $T_1$) **and position** (from $T_2$), keeping the paper's structure (two multi-task teachers, a
# chosen subset across both), and shape and fill become the full profile's default. For colour and position the
# ceiling was measured with more unlabeled images and a shorter schedule with more steps per image (one epoch per
# block phase, 6 in all, batch 40); 16,000 images were kept. Every configuration, with its ceiling, claims and wall
# time, and the runs before it, are in the [decisions log](../docs/decisions.md#notebook-06-filtered-amalgamation).
#
# ### What the claims say on this data
#
# On the quick profile (one seed; 16,000 unlabeled transfer images; every student 6 epochs) all five checks hold, and
# all are testable: the ceiling reaches both teachers.
#
# - **The customised student matches its teachers (claim 1 holds on both tasks)**: colour 95.6 %<!-- m: 100 * pick(scores, model="AFK", task="colour")["accuracy"] --> against $T_1$'s
#   96.4 %<!-- m: 100 * teacher_accuracy.colour --> (ceiling 95.4 %<!-- m: 100 * ceiling.colour -->), position 86.4 %<!-- m: 100 * pick(scores, model="AFK", task="position")["accuracy"] --> against $T_2$'s 86.1 %<!-- m: 100 * teacher_accuracy.position --> (ceiling 88.9 %<!-- m: 100 * ceiling.position -->). On position the student is
#   above its teacher, the pattern the paper reports for its customised tasks; on colour it is at its ceiling, so
#   labels would not have done better with this budget. It agrees with its teachers on 94.6 %<!-- m: 100 * pick(scores, model="AFK", task="colour")["agreement with the teacher"] --> and 88.8 %<!-- m: 100 * pick(scores, model="AFK", task="position")["agreement with the teacher"] --> of the test
#   images.
# - **Fewer parameters (claim 2 holds)**, but only 13 %<!-- m: 100 * (1 - parameters.student / parameters.teachers_together) --> fewer: the student has 173,599 parameters, the teachers
#   together 199,230. In these ConvNets the last stage holds most of a teacher's weights, and at $k = 3$ each branch
#   keeps a copy of it; only $k = 4$ halves the size (99,615).
# - **Layer-wise AFK vs multi-teacher KD from scratch (claim 3 holds, narrowly)**: 91.0 %<!-- m: 100 * mean_over_chosen.AFK[0] --> against 91.75 %<!-- m: 100 * mean_over_chosen["KD from scratch"][0] --> mean accuracy
#   on the chosen tasks, inside the 1-point tolerance, with the scratch student ahead (colour 95.6 %<!-- m: 100 * pick(scores, model="AFK", task="colour")["accuracy"] --> vs 95.5 %<!-- m: 100 * pick(scores, model="KD from scratch", task="colour")["accuracy"] -->,
#   position 86.4 %<!-- m: 100 * pick(scores, model="AFK", task="position")["accuracy"] --> vs 88.0 %<!-- m: 100 * pick(scores, model="KD from scratch", task="position")["accuracy"] -->). With this many transfer images, learning every weight from the teachers' answers is as
#   good as starting from copies of their later stages; the copied branches bring no gain here.
# - **The "filtered" claim (claim 4 holds)**: the customised student reaches 91.0 %<!-- m: 100 * mean_over_chosen.AFK[0] -->, the student built for all five
#   tasks 89.8 %<!-- m: 100 * mean_over_chosen["AFK, all tasks"][0] --> on the same two tasks (colour 94.3 %<!-- m: 100 * pick(scores, model="AFK, all tasks", task="colour")["accuracy"] -->, position 85.3 %<!-- m: 100 * pick(scores, model="AFK, all tasks", task="position")["accuracy"] -->): customising helps the chosen tasks by
#   1.2<!-- m: 100 * (mean_over_chosen.AFK[0] - mean_over_chosen["AFK, all tasks"][0]) --> points, besides making the student smaller (173,599 vs 175,534 parameters).
#
# The claims, their tolerances and the branch point were written before the first run and have not been changed;
# the quick profile's default tasks changed from shape and fill to colour and position (above).

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **The paper's body could not be read.** The method is taken from the abstract and from the authors' public code
#   in KAmalEngine (`examples/knowledge_amalgamation/afk`, whose README says its results are below the paper's). Every
#   step from the code is an **assumption**: the student construction (a re-initialised trunk of teacher 0's
#   architecture, one branch per teacher made of copies of its own later blocks and chosen heads), the phases
#   ("block" with the copied branches frozen, then "finetune") and the loss (the teachers' hard pseudo-labels).
# - **No gate or filter module.** Neither the abstract nor the code has one; "filtered" is read as "only the chosen
#   tasks' heads are copied and mimicked". The SE adapter of notebook 04 is SbM's, not AFK's (an exercise below).
# - **Data and networks**: `shapes` attributes (single-label tasks, softmax heads, cross-entropy to the argmax)
#   instead of VOC2007 multi-label classification with thresholded sigmoid heads and binary cross-entropy; tiny
#   ConvNet teachers of a few stages instead of DenseNets. Nothing can be downloaded where this repository is built;
#   only the pattern of the results is comparable.
# - **Teachers' data**: the zoo trains the teachers with labels on `shapes` images of their own stream (30,000 in the
#   quick profile), not on the images the student later sees without labels, as KAmalEngine does with VOC trainval.
#   On the 4,000 training images of the quick profile the shape head stayed close to chance; with images of their own
#   the teachers are stronger, and their pseudo-labels on the transfer set are as good as on any new image.
# - **Block by block**: KAmalEngine re-runs its script with growing branch indices, resuming from the last
#   checkpoint; here one loop grows the trunk. A newly added trunk stage starts from random weights, the earlier ones
#   keep training, and the branches are fresh copies from the teachers at every growth (their weights were frozen,
#   so they equal the teachers' anyway; their BatchNorm running statistics start again from the teachers').
# - **BatchNorm in the block phases**: the copied layers' parameters are frozen but their BatchNorm layers use batch
#   statistics, as in the authors' code (which only sets `requires_grad = False`). Keeping the teachers' statistics (eval
#   mode, as notebook 04 does) is the ablation of the full profile; the [decisions log](../docs/decisions.md#notebook-06-filtered-amalgamation)
#   has the first run that used it.
# - **One branch point for all teachers**: the code takes one index per teacher and its default gives them the same;
#   we use one $k$. The figure in KAmalEngine's documentation shows tasks leaving the trunk at different depths.
# - **Budgets**: every student trains for the same number of epochs (`total_epochs`), with Adam and a cosine schedule
#   in every phase; the authors' code uses SGD for 90 epochs per run. The quick profile: one epoch per block phase and
#   6 in all, batch 40, on 16,000 unlabeled transfer images (its 4,000 training images and 12,000 generated beyond
#   them; the code uses the teachers' own training images); the full profile: 4 per block phase, 20 in all, on
#   20,000 of its training images.
# - **The customised tasks of the quick profile are colour and position**, not shape and fill: the student's
#   architecture trained with labels could not reach the shape teacher at a quick budget (see "How this experiment
#   was sized"). Shape and fill, the harder pair, are the full profile's default (`TASKS = "auto"`); any pair can be
#   chosen with `-p TASKS`.
# - **The supervised ceiling** (the same student and schedule trained with the true labels) is not in the paper; it
#   decides which claims a run can test.
# - **Seeds**: the quick profile is a single seed; the full profile reports mean and standard deviation over three
#   seeds of the students (the zoo's teachers are one seed each).
#
# ## Exercises
#
# 1. Choose other tasks: `-p TASKS colour,position` or a task set of one teacher only (`-p TASKS shape,colour,size`).
#    When does the student need both branches, and what does it cost?
# 2. Sweep the branch point (`-p ABLATIONS on`). Where does the trade-off between parameters and accuracy turn?
# 3. Replace the hard pseudo-labels by soft targets (`-p LOSS soft`). Which tasks gain?
# 4. Ablation, not AFK: put notebook 04's channel-coding adapter between the trunk and each branch. Does it help the
#    fresh trunk fit the frozen branches in the block phase?
# 5. Give each teacher its own branch point (a dict of $k$ per teacher), as the figure in KAmalEngine's documentation
#    shows. Which task wants to leave the trunk early?
#
# ## References
#
# - J. Ye, X. Wang, Y. Ji, K. Ou, M. Song. *Amalgamating Filtered Knowledge: Learning Task-customized Student from
#   Multi-task Teachers.* IJCAI 2019, pp. 4128–4134; arXiv:1905.11569; doi 10.24963/ijcai.2019/573.
# - KAmalEngine, `examples/knowledge_amalgamation/afk` (the authors' re-implementation: `train.py`, `JointDenseNet`):
#   https://github.com/zju-vipa/KamalEngine
# - J. Ye, Y. Ji, X. Wang, K. Ou, D. Tao, M. Song. *Student Becoming the Master: Knowledge Amalgamation for Joint Scene
#   Parsing, Depth Estimation, and More.* CVPR 2019 (notebook 04).
# - G. Hinton, O. Vinyals, J. Dean. *Distilling the Knowledge in a Neural Network.* 2015 (the soft-target loss).
# - M. Everingham et al. *The PASCAL Visual Object Classes (VOC) Challenge.* IJCV 2010.
