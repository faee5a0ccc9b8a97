# %% [markdown]
# # 03 · Knowledge amalgamation from heterogeneous networks by common feature learning
#
# **Luo, Wang, Fang, Hu, Tao & Song (2019). *Knowledge Amalgamation from Heterogeneous Networks by Common
# Feature Learning.* IJCAI 2019.** [arXiv:1906.10546](https://arxiv.org/abs/1906.10546)
#
# Notebook 02 amalgamated teachers that share one architecture, layer by layer. Public models rarely
# do: one teacher is a ResNet-18, another a ResNet-34, their feature maps have different widths and mean
# different things. Luo et al. project the last feature map of every network, the student's included, into
# **one common feature space** through per-network adapters and a **shared** extractor. Two losses shape
# that space: a **reconstruction** loss (each teacher's features must be recoverable from its common
# features, so the space keeps what the teacher knows) and an **MMD** loss that pulls the distribution of
# the student's common features onto each teacher's. Together with soft targets from the concatenated
# teacher scores, this trains a student of any architecture on unlabelled images.
#
# **What you will see**
#
# * Two teachers of different families and widths (a plain CNN and a ResNet), each an expert on half of
#   the classes, and a student of a third shape, trained without labels.
# * The common feature block — adapters, shared extractor, decoders — and the multi-bandwidth MMD, each
#   next to its equation.
# * CFL against multi-teacher KD and the teachers' ensemble; ablations without MMD and without reconstruction;
#   the **supervised ceiling** (the student's own architecture trained with the true labels: what any
#   label-free method could at best reach here).
# * The paper's figure: t-SNE of the teachers' features in their own spaces and in the common space, with a
#   widget to change the space and the colouring.
# * A measured alignment score, the claims checked against this run (each only where the ceiling says the
#   experiment can test it), and where they fail.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 03 -p STUDENT_ARCH resnet` or `kae run 03 --profile full`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, under 2 minutes; "full": wider nets, longer training, 3 seeds (for a GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
PRECISION: str = "fp32"  # numerics: "fp32" here (its claims differ between float32 and bf16, see the fidelity notes), "auto" or "bf16"
DATASET: str = "digits"  # "digits" (8x8 handwritten digits, 10 classes) or "shapes" (shape x colour, 48 classes)
STUDENT_ARCH: str = "convnet"  # the student's family: "convnet" or "resnet" (teachers: one of each)
MMD_WEIGHT: float = 10.0  # weight of L_MMD in the total loss L_ST + w_mmd L_MMD + w_rec L_rec (paper: 10)
REC_WEIGHT: float = 10.0  # weight of the reconstruction loss L_rec (paper: 10)
TEMPERATURE: float = 1.0  # temperature of the soft targets (L_ST and the KD baseline; paper: plain softmax)
TEACHERS: str = "zoo"  # "zoo": load the trained teachers shipped in zoo/; "train": retrain them with the zoo's recipe
STUDENT_INIT: str = "pretrained"  # "pretrained": students start from the zoo's backbone (the paper: ImageNet); "scratch"

# %%
from kae_utils.core.params import check_choice, check_common_parameters, check_number
from kae_utils.core.scale import profile_settings

SUPPORTED_DATASETS = ("digits", "shapes")
STUDENT_ARCHS = ("convnet", "resnet")
STUDENT_INITS = ("pretrained", "scratch")
check_common_parameters(PROFILE, DEVICE, SEED, precision=PRECISION,
                        dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_choice("STUDENT_ARCH", STUDENT_ARCH, STUDENT_ARCHS)
check_choice("STUDENT_INIT", STUDENT_INIT, STUDENT_INITS)
check_number("MMD_WEIGHT", MMD_WEIGHT, minimum=0)
check_number("REC_WEIGHT", REC_WEIGHT, minimum=0)
check_number("TEMPERATURE", TEMPERATURE, positive=True)

NOTEBOOK = "03_common_feature_learning"
SETTINGS = {  # the students' settings; the teachers and backbones come from the zoo (kae_utils.zoo)
    "quick": dict(
        seeds=[SEED], hidden=32,
        student_epochs=40, batch_size=128, lr=3e-3, transfer_size=None, transfer_copies=1,
        align_images=300, tsne_images=200,
    ),
    "full": dict(
        seeds=[SEED, SEED + 1, SEED + 2], hidden=128,
        student_epochs=40, batch_size=128, lr=2e-3, transfer_size=20000, transfer_copies=0,
        align_images=1000, tsne_images=400,
    ),
}
ARCHITECTURES = {  # the zoo's teachers of each data set, and the width of the students' backbones
    "digits": dict(teachers=(("convnet", (16, 32, 64)), ("resnet", (24, 48, 96))), student_widths=(32, 64, 128)),
    "shapes": dict(teachers=(("convnet", (32, 64, 128)), ("resnet", (48, 96, 192))), student_widths=(64, 128, 256)),
}
CFG = {**profile_settings(SETTINGS, PROFILE), **ARCHITECTURES[DATASET]}  # KAE_SCALE=smoke: scaled
for name, value in CFG.items():
    print(f"{name:>15}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the teacher cache, `runs/`) are resolved from the
# repository root, so the notebook runs from any working directory.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import StratifiedKFold, cross_val_score
from torch import nn

import kae_utils.methods.distillation
from kae_utils import zoo
from kae_utils.data import augment_shifts, classification_task, split_classes
from kae_utils.display.source import show_source
from kae_utils.display.viz import sample_grid
from kae_utils.display.widgets import explore
from kae_utils.evaluation.metrics import accuracy
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
from kae_utils.methods.distillation import CFL_SIGMAS, kd_kl, mmd2
from kae_utils.models import build_model, count_parameters
from kae_utils.models.seeding import seeded
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics
from kae_utils.training.predict import predict_logits
from kae_utils.training.trainer import Trainer

device = setup_notebook(SEED, DEVICE, precision=PRECISION)
print("device type:", device.type)
print(numerics.describe())  # float32 unless PRECISION says otherwise; KAE_PRECISION=fp32/bf16 overrides both

# %% [markdown]
# ## Data
#
# The paper amalgamates a ResNet-18 expert on CUB-200-2011 (birds) and a ResNet-34 expert on Stanford Dogs
# into one 320-way student. Neither set can be downloaded where this repository is built, so the quick
# profile uses scikit-learn's `digits` (8×8 handwritten digits, real images) and the full profile the
# generated `shapes` set (shape × colour = 48 classes at 32×32). Each teacher gets half of the classes —
# two disjoint "data sets" — and the student must answer for all of them. The student's transfer set is
# the training **images** only; their labels are never used after the teachers are trained (except by the
# supervised ceiling below, which is a bound, not a method).
#
# In the quick profile the transfer set also holds one copy of every training image shifted by up to one
# pixel (`transfer_copies`): the teachers were trained on their classes' images plus one such copy each, and
# amalgamation needs no labels, so the student may see as many images as its teachers did. Without the copies
# (898 images) the supervised ceiling did not reach teacher 2 within the claims' tolerance at every seed (see
# "How this experiment was sized" below).

# %%
task = classification_task(DATASET, PROFILE)  # digits: 10 classes; shapes: shape x colour, 48 classes
x_train, y_train, x_test, y_test, CLASS_NAMES = task.x_train, task.y_train, task.x_test, task.y_test, task.classes
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = tuple(x_train.shape[1:])
CLASS_SETS = split_classes(NUM_CLASSES, 2)
# the student's transfer set: training images (no labels) and their shifted copies; Y_TRANSFER, their labels,
# is used only by the supervised ceiling. The shifts are fixed (seed 0): the seeds vary the students.
X_TRANSFER, Y_TRANSFER = augment_shifts(x_train[:CFG["transfer_size"]], y_train[:CFG["transfer_size"]],
                                        copies=CFG["transfer_copies"], max_shift=1, seed=0)
print(f"train: {tuple(x_train.shape)}  test: {tuple(x_test.shape)}  classes: {NUM_CLASSES}")
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}")
print("teacher class sets:", " | ".join(f"{s[0]}..{s[-1]} ({len(s)})" for s in CLASS_SETS))

# %%
first = torch.stack([torch.nonzero(y_train == c)[0, 0] for c in range(min(NUM_CLASSES, 20))])
sample_grid(x_train[first], [CLASS_NAMES[int(c)] for c in y_train[first]], ncols=10, size=0.9)
plt.show()

# %% [markdown]
# ## Heterogeneous teachers
#
# Teacher 1 is a plain CNN (conv–BN–ReLU–max-pool stages, a VGG in miniature) and teacher 2 a ResNet with
# residual basic blocks, of a different width. As the paper's teachers are fine-tuned from ImageNet weights,
# each is fine-tuned from a **pretrained backbone** of its own family (`digits`: trained first on the shape
# and size of 8×8 shape silhouettes; `shapes`: on size, position and fill of other shapes images), then with
# labels on its own classes only (with one-pixel shifts as augmentation), and frozen. Both steps are recipes
# of the repository's **model zoo** (`kae_utils.zoo`): the teachers were trained once (`make zoo`) and are
# shipped in `zoo/` with their hashes; with `TEACHERS = "train"` they are retrained here from the same recipe.

# %% tags=["nbval-ignore-output"]
PREFIX = "digits" if DATASET == "digits" else "shapes"
TEACHER_NAMES = [zoo.classifier_teacher_name(PREFIX, arch, widths[0], c)
                 for (arch, widths), c in zip(CFG["teachers"], CLASS_SETS, strict=True)]
team = [zoo.obtain(name, TEACHERS, device) for name in TEACHER_NAMES]
teachers = {seed: team for seed in CFG["seeds"]}  # one pair of teachers for every seed
print("teachers:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
pd.DataFrame(zoo.summary(TEACHER_NAMES)).set_index("entry")


# %% tags=["nbval-ignore-output"]
teacher_table = pd.DataFrame([
    {"teacher": i + 1, "architecture": f"{arch} {widths}", "classes": f"{c[0]}..{c[-1]}",
     "parameters": count_parameters(teachers[CFG["seeds"][0]][i]),
     "test accuracy (own classes)": np.mean([teacher_accuracy(teachers[s][i], x_test, y_test, c) for s in CFG["seeds"]])}
    for i, ((arch, widths), c) in enumerate(zip(CFG["teachers"], CLASS_SETS, strict=True))
])
teacher_table.round(4)

# %% [markdown]
# ## Step 1: the last feature maps
#
# Common feature learning works on one feature map per network: the output of its last convolutional stage.
# For the teachers that is $F_{T_i}$ with $C_{T_i}$ channels, computed once on the transfer images (the
# teachers are frozen); for the student it is $F_S$, recomputed at every step because the student learns.
# The maps share their spatial size here (both families halve the resolution twice), but not their width.

# %%
TEACHER_TAP = f"stages.{len(CFG['teachers'][0][1]) - 1}"  # the module of the last stage, in both teacher families
TEACHER_FEATURE = f"stage{len(CFG['teachers'][0][1])}"  # the same map, from the teachers' return_features
STUDENT_TAP = f"stage{len(CFG['student_widths'])}"  # the same map, from the student's return_features
show_source(kae_utils.methods.amalgamation.teacher_outputs)


def transfer_targets(x_images: torch.Tensor, teacher_list: list[nn.Module]) -> dict:
    """From unlabelled images: each teacher's last feature map F_Ti and the amalgamated score vector."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    features, logits = teacher_outputs(teacher_list, x, [TEACHER_TAP])
    return {"features": [f[TEACHER_TAP] for f in features],
            "scores": amalgamate_scores(logits, CLASS_SETS, NUM_CLASSES)}


targets = {seed: transfer_targets(X_TRANSFER, teachers[seed]) for seed in CFG["seeds"]}
TEACHER_CHANNELS = [f.shape[1] for f in targets[CFG["seeds"][0]]["features"]]
for i, f in enumerate(targets[CFG["seeds"][0]]["features"], start=1):
    print(f"teacher {i}: F_T{i} {tuple(f.shape)}")
print(f"student ({STUDENT_ARCH} {CFG['student_widths']}): F_S has {CFG['student_widths'][-1]} channels")


# %% [markdown]
# ## Step 2: the common feature block
#
# With $h$ hidden channels ($h = 128$ in the authors' code; {quick: 32, full: 128} here):
#
# * **adapters**, one per network: $a_i(F) = \mathrm{ReLU}(W_i * F)$, a 1×1 convolution $C_{T_i} \to 2h$
#   (and $a_S$: $C_S \to 2h$ for the student);
# * one **shared extractor** $E$, three residual blocks $2h \to h \to h \to h$. Because every network's
#   adapted features go through the *same* weights, its output is one space for all of them:
#   $$H_S = E(a_S(F_S)), \qquad H_i = E(a_i(F_{T_i}));$$
# * **decoders**, one per teacher: $\hat F_{T_i} = D_i(H_i)$ with $D_i$ = 3×3 conv $h \to C_{T_i}$, ReLU,
#   1×1 conv.
#
# The residual blocks have no normalisation layer (as in the authors' code), so running the extractor once on
# the concatenated batch $[a_S(F_S); a_1(F_{T_1}); a_2(F_{T_2})]$ is the same as three separate passes, only faster.

# %%
class ResidualBlock(nn.Module):
    """conv3x3-ReLU-conv3x3 plus a (1x1-projected) shortcut, then ReLU; no normalisation."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class CommonFeatureBlock(nn.Module):
    """Adapters a_S, a_i (1x1 conv + ReLU to 2h), shared extractor E (2h -> h -> h -> h), decoders D_i."""

    def __init__(self, student_channels: int, teacher_channels: list[int], hidden: int) -> None:
        super().__init__()
        def adapter(c: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(c, 2 * hidden, 1, bias=False), nn.ReLU(inplace=True))

        self.adapt_student = adapter(student_channels)
        self.adapt_teachers = nn.ModuleList(adapter(c) for c in teacher_channels)
        self.extractor = nn.Sequential(ResidualBlock(2 * hidden, hidden), ResidualBlock(hidden, hidden),
                                       ResidualBlock(hidden, hidden))
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1))
            for c in teacher_channels)

    def common(self, f_student: torch.Tensor | None, f_teachers: list[torch.Tensor]) -> list[torch.Tensor]:
        """[H_S, H_1, ..., H_N] (H_S left out when f_student is None): one extractor pass over all of them."""
        adapted = [a(f) for a, f in zip(self.adapt_teachers, f_teachers, strict=True)]
        if f_student is not None:
            adapted.insert(0, self.adapt_student(f_student))
        return list(self.extractor(torch.cat(adapted)).split([len(a) for a in adapted]))

    def forward(self, f_student: torch.Tensor, f_teachers: list[torch.Tensor]):
        """Returns H_S, [H_i], [reconstructed F_Ti]."""
        h_student, *h_teachers = self.common(f_student, f_teachers)
        return h_student, h_teachers, [d(h) for d, h in zip(self.decoders, h_teachers, strict=True)]


# %% [markdown]
# ## Step 3: the losses
#
# **MMD.** The student's common features should be distributed like each teacher's. Over a batch, with
# every sample flattened and scaled to unit length, the squared maximum mean discrepancy between the sets
# $X = \{x_i\}_{i=1}^n$ and $Y = \{y_j\}_{j=1}^m$ is
#
# $$\mathrm{MMD}^2(X, Y) = \frac{1}{n^2}\sum_{i,i'} k(x_i, x_{i'}) + \frac{1}{m^2}\sum_{j,j'} k(y_j, y_{j'})
#  - \frac{2}{nm}\sum_{i,j} k(x_i, y_j), \qquad k(x, y) = \sum_{\sigma} e^{-\|x - y\|^2 / 2\sigma^2},$$
#
# with the authors' bandwidths $\sigma \in \{0.001, 0.01, 0.05, 0.1, 0.2, 1, 2\}$, clamped at 0, and
# $L_{MMD} = \sum_i \mathrm{MMD}^2(H_S, H_i)$. The function lives in `kae_utils.methods.distillation` (with golden-value
# tests) because later notebooks use it too:

# %%
show_source(kae_utils.methods.distillation.mmd2)
print("sigmas:", CFL_SIGMAS)


# %% [markdown]
# **Reconstruction.** $L_{rec} = \sum_i \mathrm{MSE}(\hat F_{T_i}, F_{T_i})$ keeps each teacher's knowledge in
# the common space: without it, the extractor could map everything to one point and make the MMD zero.
#
# **Soft targets.** The teachers' class sets are disjoint, so their logits concatenate into one score
# vector $z_T$ over all classes; the student matches its softmax:
# $L_{ST} = T^2\,\mathrm{KL}\big(\mathrm{softmax}(z_T/T)\,\|\,\mathrm{softmax}(z_S/T)\big)$, which differs
# from the soft cross-entropy only by the teachers' entropy, a constant ($T = 1$ by default).
#
# **Total.** $L = L_{ST} + 10\,(L_{MMD} + L_{rec})$: `MMD_WEIGHT` and `REC_WEIGHT` in the parameters.
# The student, the adapters, the extractor and the decoders are trained together; the teachers are frozen.

# %%
class CFLNet(nn.Module):
    """The student and its training-only common feature block, optimised together."""

    def __init__(self, student: nn.Module, block: CommonFeatureBlock) -> None:
        super().__init__()
        self.student, self.block = student, block


STUDENT_BACKBONE = f"{PREFIX}-pre-{STUDENT_ARCH}{CFG['student_widths'][0]}"  # the zoo's stand-in for ImageNet weights
backbone = zoo.obtain(STUDENT_BACKBONE, TEACHERS, device) if STUDENT_INIT == "pretrained" else None


def new_student(seed: int) -> nn.Module:
    """A student of STUDENT_ARCH; with STUDENT_INIT = "pretrained" it starts from the backbone (its classifier is new)."""
    student = build_model(STUDENT_ARCH, NUM_CLASSES, in_channels=IMAGE_SHAPE[0], widths=CFG["student_widths"],
                          seed=2000 + seed)
    return zoo.copy_backbone(student, backbone) if backbone is not None else student


def new_block(seed: int) -> CommonFeatureBlock:
    """A common feature block whose initial weights depend on `seed` only."""
    with seeded(3000 + seed):  # its weights depend on the seed only
        return CommonFeatureBlock(CFG["student_widths"][-1], TEACHER_CHANNELS, CFG["hidden"])


print(f"students: {STUDENT_ARCH} {CFG['student_widths']}, "
      + (f"starting from the zoo's backbone {STUDENT_BACKBONE}" if backbone is not None else "from random weights"))


# %%
for name in dict.fromkeys([zoo.entry(t).init for t in TEACHER_NAMES] + [STUDENT_BACKBONE]):
    probe = zoo.record(name)["probe"]
    print(f"{name}: a linear probe of its features on all {NUM_CLASSES} classes {probe['features']:.1%} "
          f"(raw pixels {probe['raw pixels']:.1%})")


# %% [markdown]
# The loss of one batch, $L = L_{ST} + w_{MMD} L_{MMD} + w_{rec} L_{rec}$; with both weights at zero it is
# plain multi-teacher KD and the common feature block is not used:

# %%
def cfl_losses(model: CFLNet, batch, mmd_weight: float, rec_weight: float):
    """L = L_ST + w_mmd * sum_i MMD^2(H_S, H_i) + w_rec * sum_i MSE(D_i(H_i), F_Ti)."""
    x, scores, *f_teachers = batch
    logits, features = model.student(x, return_features=True)
    loss_st = kd_kl(logits, scores, TEMPERATURE)
    if mmd_weight == 0 and rec_weight == 0:  # plain multi-teacher KD: the block is not used
        return loss_st, {"st": loss_st.item()}
    h_student, h_teachers, reconstructed = model.block(features[STUDENT_TAP], f_teachers)
    loss_mmd = sum(mmd2(h_student, h) for h in h_teachers)
    loss_rec = sum(F.mse_loss(r, f) for r, f in zip(reconstructed, f_teachers, strict=True))
    loss = loss_st + mmd_weight * loss_mmd + rec_weight * loss_rec
    return loss, {"st": loss_st.item(), "mmd": loss_mmd.item(), "rec": loss_rec.item()}


# %% [markdown]
# ### No labels
#
# The training function takes the transfer **images** and the teachers' outputs on them; an
# `(images, labels)` pair is refused.

# %%
def train_student(x_images: torch.Tensor, target: dict, seed: int, mmd_weight: float, rec_weight: float,
                  desc: str) -> tuple[nn.Module, CommonFeatureBlock, dict]:
    """Train a student (and its common feature block) on unlabelled images; returns both and the loss history."""
    x = check_images_only(x_images, IMAGE_SHAPE)
    net = CFLNet(new_student(seed), new_block(seed))
    history = Trainer(net, epochs=CFG["student_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"],
                      device=device, seed=seed, desc=desc,
                      step_fn=lambda model, batch: cfl_losses(model, batch, mmd_weight, rec_weight),
                      ).fit((x, target["scores"], *target["features"]))
    return net.student.eval(), net.block.eval(), history.to_dict()


try:
    train_student((x_train, y_train), targets[CFG["seeds"][0]], SEED, MMD_WEIGHT, REC_WEIGHT, "refused")
except ValueError as error:
    print("passing labels is refused:", error)

# %% [markdown]
# ## Training CFL, the baselines and the ablations
#
# For every seed, on the same transfer images and teacher outputs:
#
# | student | loss |
# |---|---|
# | **CFL** | $L_{ST} + w_{mmd} L_{MMD} + w_{rec} L_{rec}$ |
# | **multi-teacher KD** | $L_{ST}$ only (soft targets from the concatenated teacher scores) |
# | **CFL without MMD** | $L_{ST} + w_{rec} L_{rec}$ |
# | **CFL without reconstruction** | $L_{ST} + w_{mmd} L_{MMD}$ |
# | **supervised ceiling** (uses labels) | cross-entropy on the **true labels** of the transfer images |
#
# The **supervised ceiling** is not a method but a bound: the student's own architecture, from the same
# initial weights (the pretrained backbone), trained with the true labels of the same transfer images for the
# same epochs, learning rate and batch size. No label-free student can be expected to beat it; a claim that
# the student matches its teachers is testable only where the ceiling itself reaches them within the claim's
# tolerance (checked in the claims cell, from this run's ceiling).
#
# A remark before the numbers: without the MMD term, nothing connects the student to the common feature
# block ($L_{rec}$ involves only the teachers' adapters, the extractor and the decoders), so the student
# receives exactly the gradients of KD. Trained from the same seed, it should give the same student as KD;
# the table below shows whether it does.
#
# The **teachers' ensemble** (run both teachers, take the argmax of the concatenated scores) needs no training.

# %% tags=["nbval-ignore-output"]
VARIANTS = {  # name: (MMD weight, reconstruction weight)
    "CFL": (MMD_WEIGHT, REC_WEIGHT),
    "multi-teacher KD": (0.0, 0.0),
    "CFL without MMD": (0.0, REC_WEIGHT),
    "CFL without reconstruction": (MMD_WEIGHT, 0.0),
}
CEILING = "supervised ceiling (true labels)"


def train_supervised_ceiling(seed: int) -> nn.Module:
    """The supervised ceiling (uses labels): the student's network trained on the transfer images' true labels.

    The student's architecture and initial weights, trained with cross-entropy for the students' budget.
    """
    model, _ = train_ceiling(new_student(seed), X_TRANSFER, Y_TRANSFER, F.cross_entropy, epochs=CFG["student_epochs"],
                             lr=CFG["lr"], batch_size=CFG["batch_size"], device=device, seed=seed,
                             desc=f"supervised ceiling (seed {seed})")
    return model.eval()


students, blocks, histories = {}, {}, {}
for seed in CFG["seeds"]:
    for name, (w_mmd, w_rec) in VARIANTS.items():
        students[(name, seed)], blocks[(name, seed)], histories[(name, seed)] = train_student(
            X_TRANSFER, targets[seed], seed, w_mmd, w_rec, desc=f"{name} (seed {seed})")
    students[(CEILING, seed)] = train_supervised_ceiling(seed)

# %% tags=["nbval-ignore-output"]
seed0 = CFG["seeds"][0]
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for key, ax in zip(("st", "mmd", "rec"), axes, strict=True):
    for colour, name in zip(("C0", "C1", "C2", "C3"), VARIANTS, strict=True):
        values = histories[(name, seed0)].get(f"train_{key}")
        if values is not None:  # KD does not compute L_MMD and L_rec
            ax.plot(values, label=name, color=colour, linestyle=":" if name == "CFL without MMD" else "-")
    ax.set_title({"st": "$L_{ST}$", "mmd": "$L_{MMD}$", "rec": "$L_{rec}$"}[key])
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# **Union accuracy**: every model classifies each test image among all classes. The ensemble runs both
# teachers; the students are single networks.

# %% tags=["nbval-ignore-output"]
test_logits = {key: predict_logits(model, x_test) for key, model in students.items()}
teacher_test_logits = {seed: [predict_logits(t, x_test) for t in ts] for seed, ts in teachers.items()}
rows = []
for seed in CFG["seeds"]:
    rows.append({"model": "ensemble of the teachers", "seed": seed,
                 "accuracy": accuracy(ensemble_predict(teacher_test_logits[seed], CLASS_SETS, NUM_CLASSES), y_test)})
    rows += [{"model": name, "seed": seed, "accuracy": accuracy(test_logits[(name, seed)], y_test)}
             for name in (*VARIANTS, CEILING)]
union = pd.DataFrame(rows)
union_summary = union.groupby("model", sort=False)["accuracy"].agg(["mean", "std", "count"])
union_summary.round(4)

# %%
same_as_kd = all(torch.equal(test_logits[("CFL without MMD", s)], test_logits[("multi-teacher KD", s)])
                 for s in CFG["seeds"])
print("the student trained without MMD gives the same test logits as KD:", same_as_kd)

# %% [markdown]
# **Per teacher**: each teacher's own question — the argmax over that teacher's classes only, on the test
# images of those classes — for the teacher and for the CFL student.

# %% tags=["nbval-ignore-output"]
per_teacher = pd.DataFrame([
    {"seed": seed, "teacher": i + 1, "classes": f"{c[0]}..{c[-1]}",
     "teacher accuracy": teacher_accuracy(teachers[seed][i], x_test, y_test, c),
     "CFL student": restricted_accuracy(test_logits[("CFL", seed)][mask], y_test[mask], c),
     "KD student": restricted_accuracy(test_logits[("multi-teacher KD", seed)][mask], y_test[mask], c),
     "supervised ceiling": restricted_accuracy(test_logits[(CEILING, seed)][mask], y_test[mask], c)}
    for seed in CFG["seeds"] for i, c in enumerate(CLASS_SETS)
    for mask in [torch.isin(y_test, torch.as_tensor(c))]
])
per_teacher["CFL - teacher"] = per_teacher["CFL student"] - per_teacher["teacher accuracy"]
per_teacher.groupby(["teacher", "classes"])[
    ["teacher accuracy", "CFL student", "KD student", "supervised ceiling", "CFL - teacher"]].mean().round(4)


# %% [markdown]
# **CFL vs KD over seeds.** The paper's gains over KD are under one point (e.g. .7721<!-- paper --> vs .7684<!-- paper --> for a
# ResNet-34 student), so one seed cannot tell them apart. With several seeds (full profile) we report the
# mean and standard deviation of the paired difference and a paired t-test; with one seed the test is not
# defined.

# %% tags=["nbval-ignore-output"]
def per_seed(model: str) -> np.ndarray:
    """The union accuracies of `model`, ordered by seed."""
    return union[union.model == model].sort_values("seed")["accuracy"].to_numpy()


cfl_minus_kd = per_seed("CFL") - per_seed("multi-teacher KD")
if len(cfl_minus_kd) > 1:
    t_stat, p_value = stats.ttest_rel(per_seed("CFL"), per_seed("multi-teacher KD"))
    significance = f"paired t-test over {len(cfl_minus_kd)} seeds: t = {t_stat:.2f}, p = {p_value:.3f}"
else:
    p_value, significance = float("nan"), "one seed: no significance test (run the full profile)"
print(f"CFL - KD per seed: {np.round(cfl_minus_kd, 4).tolist()}  mean {cfl_minus_kd.mean():+.4f}")
print(significance)


# %% [markdown]
# ## Does the common space align the teachers?
#
# The teachers' own feature maps live in different spaces: different widths, and no correspondence between
# channel $c$ of one network and channel $c$ of the other. To put them side by side we flatten each map,
# scale it to unit length and pad the shorter with zeros (**raw spaces**). In the **common space** we take
# $H_i = E(a_i(F_{T_i}))$ from the trained CFL block; as a control, the same block **before training**.
#
# Two alignment scores on test images (each image gives one feature vector per teacher):
#
# * **domain accuracy**: 5-fold cross-validated accuracy of a logistic regression that tells teacher 1's
#   features from teacher 2's (50%<!-- fixed --> = indistinguishable, 100%<!-- fixed --> = separate spaces);
# * $\mathrm{MMD}^2(H_1, H_2)$ with the kernel above.

# %% tags=["nbval-ignore-output"]
@torch.no_grad()
def raw_features(models: list[nn.Module], x: torch.Tensor, taps: list[str]) -> list[torch.Tensor]:
    """Each model's map at its tap, flattened, unit length, zero-padded to the longest (CPU)."""
    out = []
    for model, tap in zip(models, taps, strict=True):
        _, feats = model(x.to(device), return_features=True)
        out.append(F.normalize(feats[tap].flatten(1).float(), dim=1).cpu())
    width = max(f.shape[1] for f in out)
    return [F.pad(f, (0, width - f.shape[1])) for f in out]


@torch.no_grad()
def common_space(block: CommonFeatureBlock, student: nn.Module, teacher_list: list[nn.Module],
                 x: torch.Tensor) -> list[torch.Tensor]:
    """[H_S, H_1, ..., H_N] on x, flattened and unit length (CPU)."""
    x = x.to(device)
    f_teachers = [t(x, return_features=True)[1][TEACHER_FEATURE] for t in teacher_list]
    f_student = student(x, return_features=True)[1][STUDENT_TAP]
    return [F.normalize(h.flatten(1), dim=1).cpu() for h in block.to(device).common(f_student, f_teachers)]


def domain_accuracy(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cross-validated accuracy of a linear classifier telling the rows of a from those of b."""
    features = torch.cat([a, b]).double().numpy()
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return float(cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=folds).mean())


x_align = x_test[:CFG["align_images"]]
spaces, align_rows = {}, []
for seed in CFG["seeds"]:
    ts, student = teachers[seed], students[("CFL", seed)]
    raw = raw_features([student, *ts], x_align, [STUDENT_TAP, TEACHER_FEATURE, TEACHER_FEATURE])
    trained = common_space(blocks[("CFL", seed)], student, ts, x_align)
    untrained = common_space(new_block(seed), student, ts, x_align)
    spaces[seed] = {"raw (zero-padded)": raw, "common, before training": untrained, "common (trained CFL)": trained}
    for space, (h_s, h_1, h_2) in spaces[seed].items():
        align_rows.append({"seed": seed, "space": space, "domain accuracy": domain_accuracy(h_1, h_2),
                           "MMD^2(teacher 1, teacher 2)": mmd2(h_1, h_2).item(),
                           "MMD^2(student, teachers)": (mmd2(h_s, h_1) + mmd2(h_s, h_2)).item()})
alignment = pd.DataFrame(align_rows).groupby("space", sort=False).mean(numeric_only=True).drop(columns="seed")
alignment.round(4)

# %% [markdown]
# ### The paper's figure: t-SNE of the features
#
# t-SNE (scikit-learn) of the same test images' features from teacher 1, teacher 2 and the CFL student, in
# the raw spaces and in the common space. Coloured by class, a well-amalgamated space shows one cluster per
# class; coloured by network, an aligned space mixes the networks inside each cluster, separate spaces keep
# them apart.

# %%
N_TSNE = CFG["tsne_images"]
NETWORKS = ("student", "teacher 1", "teacher 2")
tsne_labels = {"class": np.tile(y_test[:N_TSNE].numpy(), 3), "network": np.repeat(np.arange(3), N_TSNE)}
embeddings = {
    space: TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(
        torch.cat([h[:N_TSNE] for h in feats]).double().numpy())
    for space, feats in spaces[seed0].items()
}


def plot_tsne(space: str, colour: str, ax=None):
    """One t-SNE panel: `space` is a key of `embeddings`, `colour` "class" or "network"."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    points, labels = embeddings[space], tsne_labels[colour]
    if colour == "class":
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10" if NUM_CLASSES <= 10 else "tab20",
                             s=6, alpha=0.8)
        if NUM_CLASSES <= 10:
            ax.legend(*scatter.legend_elements(), fontsize=6, ncol=2, title="class", title_fontsize=7)
    else:
        for k, name in enumerate(NETWORKS):
            ax.scatter(*points[labels == k].T, s=6, alpha=0.7, label=name, marker="os^"[k])
        ax.legend(fontsize=7, markerscale=2)
    ax.set_title(f"{space}, by {colour}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(2, 2, figsize=(9, 8))
for row, space in enumerate(("raw (zero-padded)", "common (trained CFL)")):
    for col, colour in enumerate(("network", "class")):
        plot_tsne(space, colour, axes[row, col])
fig.tight_layout()
plt.show()


# %% [markdown]
# The figure above is stored with the notebook. Running it in Jupyter gives controls to redraw one panel
# with any space (the untrained block included) and either colouring:

# %%
def show_tsne(space: str, colour: str) -> None:
    """Draw the t-SNE of one feature space, coloured by `colour` (the widget's callback)."""
    plot_tsne(space, colour)
    plt.show()


explore(show_tsne, space=list(embeddings), colour=["network", "class"]);

# %% [markdown]
# ### Size and speed
#
# The common feature block is used only in training; the deployed student is one network. The student is
# compared with the two teachers it replaces.

# %%
student_params = count_parameters(students[("CFL", seed0)])
teachers_params = sum(count_parameters(t) for t in teachers[seed0])
block_params = count_parameters(blocks[("CFL", seed0)])
print(f"student ({STUDENT_ARCH}):       {student_params:>9,}")
print(f"  common block, training: {block_params:>9,}")
print(f"two teachers together:    {teachers_params:>9,}  (student = {student_params / teachers_params:.0%})")

# %% tags=["nbval-ignore-output"]
student_time = median_time(lambda: predict_logits(students[("CFL", seed0)], x_test))
teachers_time = median_time(lambda: [predict_logits(t, x_test) for t in teachers[seed0]])
print(f"test set ({len(x_test)} images): student {student_time * 1e3:.1f} ms, two teachers {teachers_time * 1e3:.1f} ms")

# %% [markdown]
# ### Paper vs this run
#
# The paper's numbers are on CUB-200 + Stanford Dogs with ResNet teachers (ResNet-18 on CUB: .7411<!-- paper -->,
# ResNet-34 on Dogs: .8663<!-- paper -->) and 320-way students; only the pattern can be compared.

# %% tags=["nbval-ignore-output"]
acc = {m: mean_std(per_seed(m)) for m in union.model.unique()}
gaps = per_teacher.groupby("teacher")["CFL - teacher"].mean()
ceiling_sub = per_teacher.groupby("teacher")[["supervised ceiling", "teacher accuracy"]].mean()
ceiling_gaps = ceiling_sub["supervised ceiling"] - ceiling_sub["teacher accuracy"]
domain = alignment["domain accuracy"]
results_table = pd.DataFrame(
    [
        ("CFL student, union accuracy", "ResNet-34 .7721 / ResNet-50 .7997 / DenseNet-121 .7815", *acc["CFL"]),
        ("multi-teacher KD", ".7684 / .7965 / .7769", *acc["multi-teacher KD"]),
        ("ensemble of the teachers", "(not reported)", *acc["ensemble of the teachers"]),
        ("supervised ceiling: the student's architecture, true labels", "(not in the paper; bound)", *acc[CEILING]),
        ("CFL without MMD", "(ablation)", *acc["CFL without MMD"]),
        ("CFL without reconstruction", "(ablation)", *acc["CFL without reconstruction"]),
        ("CFL - KD", "+0.3 to +0.5 points", *mean_std(cfl_minus_kd)),
        ("CFL student - teacher on own classes (mean)", "matches or beats", *mean_std(gaps)),
        ("ceiling - teacher on own classes (mean)", "(bound)", *mean_std(ceiling_gaps)),
        ("domain accuracy, raw spaces", "(figure: separate)", domain["raw (zero-padded)"], 0.0),
        ("domain accuracy, common space", "(figure: aligned)", domain["common (trained CFL)"], 0.0),
    ],
    columns=["quantity", "paper", f"this run (mean of {len(CFG['seeds'])})", "std"],
)
results_table.round(4)

# %% [markdown]
# ### What this experiment can test: the supervised ceiling
#
# Claims 1 and 3 below ask the CFL student to match its teachers (their ensemble on all classes, each teacher on
# its own classes), so they are testable only if the supervised ceiling reaches the teachers within the same
# tolerance; claims 2 and 4 compare two label-free students, or the feature spaces, and need no ceiling.

# %% tags=["nbval-ignore-output"]
ceiling_m = acc[CEILING][0]
print(f"union of the classes: supervised ceiling {ceiling_m:.1%}, teachers' ensemble {acc['ensemble of the teachers'][0]:.1%}, "
      f"CFL {acc['CFL'][0]:.1%}, KD {acc['multi-teacher KD'][0]:.1%}")
for teacher, row in ceiling_sub.iterrows():
    print(f"teacher {teacher}'s classes: supervised ceiling {row['supervised ceiling']:.1%}, "
          f"teacher {row['teacher accuracy']:.1%}")

# %% [markdown]
# ## Claims
#
# Checked with rules and tolerances fixed before looking at this run's numbers. A tolerance of 2 points
# is about the seed-to-seed spread of small CNNs on ~900 test images (one image is 0.11<!-- fixed --> points):
#
# 1. **The student amalgamates heterogeneous teachers**: the CFL student's union accuracy is within
#    2 points of the teachers' ensemble (or above it).
# 2. **CFL is at least as good as KD**: CFL's union accuracy (mean over seeds) is at least KD's minus
#    1 point. The paper's gains are below one point, so this checks "not worse", not the gain; the full
#    profile's t-test above says whether a difference is significant.
# 3. **The student matches the teachers on their own tasks**: on each teacher's classes, the CFL student is
#    at least the teacher's accuracy minus 2 points (mean over seeds).
# 4. **The common space aligns the teachers**: the domain accuracy (telling teacher 1's features from
#    teacher 2's) in the trained common space is at least 5 points lower than in the raw spaces.

# %%
UNION_TOL, KD_TOL, SUBTASK_TOL, ALIGN_MARGIN = 0.02, 0.01, 0.02, 0.05
cfl_m, kd_m, ens_m = acc["CFL"][0], acc["multi-teacher KD"][0], acc["ensemble of the teachers"][0]
raw_domain, common_domain = domain["raw (zero-padded)"], domain["common (trained CFL)"]
# claims 1 and 3 are testable only where the supervised ceiling reaches the teachers within the claim's tolerance
union_testable = ceiling_reaches(ceiling_m, ens_m, tolerance=UNION_TOL)
subtask_testable = all(ceiling_reaches(row["supervised ceiling"], row["teacher accuracy"], tolerance=SUBTASK_TOL)
                       for _, row in ceiling_sub.iterrows())
claims = [
    Claim("one student amalgamates the heterogeneous teachers about as well as their ensemble",
          bool(cfl_m >= ens_m - UNION_TOL),
          f"CFL {cfl_m:.4f} vs ensemble {ens_m:.4f} (tolerance {UNION_TOL}); supervised ceiling {ceiling_m:.4f}",
          untestable="" if union_testable else "the supervised ceiling is below the ensemble by more than the tolerance",
          effect=Effect("CFL - ensemble, union accuracy", cfl_m - ens_m, -UNION_TOL)),
    Claim("common feature learning is at least as good as multi-teacher KD",
          bool(cfl_m >= kd_m - KD_TOL),
          f"CFL {cfl_m:.4f} vs KD {kd_m:.4f} (tolerance {KD_TOL}); {significance}",
          effect=Effect("CFL - multi-teacher KD, union accuracy", cfl_m - kd_m, -KD_TOL)),
    Claim("the student matches or beats every teacher on that teacher's own classes",
          bool((gaps >= -SUBTASK_TOL).all()),
          "student - teacher per teacher: " + ", ".join(f"{g:+.4f}" for g in gaps) + f" (tolerance {SUBTASK_TOL}); "
          "supervised ceiling - teacher: " + ", ".join(f"{g:+.4f}" for g in ceiling_gaps),
          untestable="" if subtask_testable else "the supervised ceiling is below a teacher by more than the tolerance",
          effect=Effect("student - teacher on the teacher's classes, worst teacher", gaps.min(), -SUBTASK_TOL)),
    Claim("the common space aligns the teachers' features",
          bool(common_domain <= raw_domain - ALIGN_MARGIN),
          f"domain accuracy common {common_domain:.4f} vs raw {raw_domain:.4f} (margin {ALIGN_MARGIN})",
          effect=Effect("domain accuracy, raw - common space", raw_domain - common_domain, ALIGN_MARGIN)),
]
report = check_claims(claims)

# %%
metrics = {
    "headline": (f"CFL student {cfl_m:.1%} vs KD {kd_m:.1%} vs ensemble {ens_m:.1%} (supervised ceiling "
                 f"{ceiling_m:.1%}) on all {NUM_CLASSES} classes; "
                 f"domain accuracy {raw_domain:.0%} raw -> {common_domain:.0%} common"),
    "union_accuracy": {m: {"mean": v[0], "std": v[1], "per_seed": per_seed(m).tolist()} for m, v in acc.items()},
    "cfl_minus_kd": {"per_seed": cfl_minus_kd.tolist(), "paired_t_test_p": p_value},
    "per_teacher": per_teacher.drop(columns="CFL - teacher").to_dict(orient="records"),
    "per_teacher_gap": {str(k): float(v) for k, v in gaps.items()},
    "ceiling": {
        "union_accuracy": ceiling_m,
        "per_teacher": {str(k): {"ceiling": float(r["supervised ceiling"]), "teacher": float(r["teacher accuracy"])}
                        for k, r in ceiling_sub.iterrows()},
        "reaches": {"claim 1 (union vs ensemble)": union_testable, "claim 3 (own classes vs teachers)": subtask_testable},
        "epochs": CFG["student_epochs"],
        "transfer_images": len(X_TRANSFER),
    },
    "alignment": alignment.reset_index().to_dict(orient="records"),
    "without_mmd_equals_kd": same_as_kd,
    "parameters": {"student": student_params, "teachers": teachers_params, "common_block_training_only": block_params},
    "inference_seconds": {"student": student_time, "teachers": teachers_time},
    "seeds": CFG["seeds"],
    "dataset": DATASET,
    "student_arch": STUDENT_ARCH,
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, STUDENT_ARCH=STUDENT_ARCH,
                  MMD_WEIGHT=MMD_WEIGHT, REC_WEIGHT=REC_WEIGHT, TEMPERATURE=TEMPERATURE)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### What the claims say on this data
#
# On `digits` (quick profile, one seed, the paper's weights $w_{mmd} = w_{rec} = 10$, students starting from
# the zoo's pretrained backbone, 1,796 transfer images) **all four claims hold, and all four can be
# tested here**: the supervised ceiling reaches 98.3 %<!-- m: 100 * ceiling.union_accuracy --> on all ten classes (the ensemble: 91.9 %<!-- m: 100 * union_accuracy["ensemble of the teachers"].mean -->) and 99.8 %<!-- m: 100 * ceiling.per_teacher[1].ceiling --> and
# 98.7 %<!-- m: 100 * ceiling.per_teacher[2].ceiling --> on the teachers' own classes (the teachers: 99.8 %<!-- m: 100 * ceiling.per_teacher[1].teacher --> each), within the 2-point tolerance of claims 1
# and 3.
#
# * **The common space aligns the teachers** (claim 4). A linear classifier tells teacher 1's features from
#   teacher 2's perfectly in the raw spaces and in the untrained block, and only 69.5 %<!-- m: 100 * alignment[2]["domain accuracy"] --> of the time in the
#   trained common space (50 %<!-- fixed --> is chance); the MMD between the teachers drops from 0.27<!-- m: alignment[0]["MMD^2(teacher 1, teacher 2)"] --> to 0.07<!-- m: alignment[2]["MMD^2(teacher 1, teacher 2)"] -->. The t-SNE
#   shows the same: separate islands in the raw spaces; in the common space the three networks share one
#   region, though each still keeps small clusters of its own inside it (hence the domain accuracy above chance).
# * **One student for both teachers** (claims 1 and 3). The CFL student reaches 91.9 %<!-- m: 100 * union_accuracy["CFL"].mean --> on all ten classes,
#   against 91.9 %<!-- m: 100 * union_accuracy["ensemble of the teachers"].mean --> for the teachers' ensemble, and is within a point of each teacher on its own classes
#   (−0.9<!-- m: 100 * per_teacher_gap[1] --> and −0.4<!-- m: 100 * per_teacher_gap[2] --> points).
# * **CFL is about as good as KD here: claim 2 holds**, within its one-point tolerance. The CFL student is
#   0.6<!-- m: -100 * cfl_minus_kd.per_seed[0] --> point (5 of 899 test images) behind multi-teacher KD (92.4 %<!-- m: 100 * union_accuracy["multi-teacher KD"].mean -->). This claim compares two
#   label-free students, so the ceiling does not limit it. The two students differ only by the common-feature
#   terms; without the MMD term the student is bit-for-bit the KD student, as argued above (the reconstruction
#   loss never reaches the student), and without reconstruction it reaches 92.0 %<!-- m: 100 * union_accuracy["CFL without reconstruction"].mean -->. At the paper's weight 10
#   the MMD term costs this student about half a point. The margin is small: with bf16 autocast, which the other
#   notebooks use on this CPU, the same run puts CFL 9 test images behind KD, just over the tolerance, and the
#   claim fails (see the notes on fidelity). The paper's gain over KD is +0.3<!-- paper --> to +0.5<!-- paper --> points on 320-way tasks, far
#   below what one seed resolves here (one test image is 0.11<!-- fixed --> points); how often the claim holds over seeds
#   0–4 is in the README (`make seeds`), and the full profile's paired t-test over three seeds is the test
#   of the gain itself.
# * **The ceiling, not the ensemble, is the bound.** Every label-free student sits at the teachers'
#   ensemble (91.9<!-- m: 100 * min(union_accuracy[k].mean for k in ("ensemble of the teachers", "CFL", "multi-teacher KD", "CFL without MMD", "CFL without reconstruction")) -->–92.4 %<!-- m: 100 * max(union_accuracy[k].mean for k in ("ensemble of the teachers", "CFL", "multi-teacher KD", "CFL without MMD", "CFL without reconstruction")) -->), 5.9<!-- m: 100 * (ceiling.union_accuracy - max(union_accuracy[k].mean for k in ("ensemble of the teachers", "CFL", "multi-teacher KD", "CFL without MMD", "CFL without reconstruction"))) --> to 6.5<!-- m: 100 * (ceiling.union_accuracy - min(union_accuracy[k].mean for k in ("ensemble of the teachers", "CFL", "multi-teacher KD", "CFL without MMD", "CFL without reconstruction"))) --> points below the ceiling. They learn the teachers' concatenated scores,
#   and with them the ensemble's errors in deciding *which* teacher's classes an image belongs to (notebook
#   02 shows where those errors are); the ceiling learns that decision from the labels. With the 898
#   images of the first design KD and CFL were *above* the ensemble
#   ([decisions log](../docs/decisions.md#notebook-03-common-feature-learning)); with the 1,796
#   images the teachers themselves saw, both follow the ensemble more closely, errors included.
#
# ### How this experiment was sized
#
# The ceiling was measured first, on its own, before the claims, at seeds 0–4. On the 898 training images of
# `digits` alone it did not reach teacher 2 within the tolerance at every seed, so the transfer set is the
# 1,796 images the teachers were trained on (each its own classes plus one shifted copy; amalgamation needs no
# labels for them), with which the ceiling reaches both teachers at every seed with a margin of about a point.
# Every configuration measured, with its ceiling, claims and time, and why the students start from the zoo's
# pretrained backbone (the first version trained everything from random weights), is in the
# [decisions log](../docs/decisions.md#notebook-03-common-feature-learning).
#
# Claim 2 sits close to its tolerance: the same configuration and seed on one thread and on two, or in bf16 and
# in float32, differ by a few test images per student (the order and the precision of floating-point sums
# change), and the claim flips between them. The stored run is the one `make outputs` made, in float32 on two
# threads (the notes on fidelity say why float32).

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **Data and networks**: `digits` (quick) or generated `shapes` (full) with small CNNs and ResNets of three
#   stages, instead of CUB-200 and Stanford Dogs with ResNet-18/34 teachers and ResNet/DenseNet students.
#   Nothing can be downloaded where this repository is built; the pattern of the results, not their size,
#   is comparable. The two "data sets" are the two halves of one set's classes.
# - **Pretraining**: the paper's networks are ImageNet-initialised; ours start from the zoo's backbones
#   (`kae_utils.zoo`), pretrained on the shape and size of 8×8 shape silhouettes (`digits`) or on other
#   attributes of other `shapes` images (full profile): other images, other labels. A linear probe shows
#   that they do not solve the target task on their own. The teachers are fine-tuned from them; the
#   students start from them with `STUDENT_INIT = "pretrained"` (default) or from random weights with
#   `"scratch"`, which changes the outcome (discussed above). One pair of teachers serves every seed.
# - **Common feature block**: as specified (adapters to $2h$, three residual blocks $2h \to h \to h \to h$,
#   decoders 3×3 conv–ReLU–1×1 conv); the residual blocks and adapters have no normalisation, as in the
#   authors' code, which lets one extractor pass serve all networks. $h$ = 32 in the quick profile
#   (the maps have 64–128 channels), 128 (the authors' value) in the full profile.
# - **Soft targets**: $T^2\,\mathrm{KL}$ instead of the soft cross-entropy (same gradient), at $T = 1$;
#   the KD baseline is exactly $L_{ST}$, so CFL and KD differ only by the common-feature terms.
# - **Alignment score**: the paper shows the alignment only as a t-SNE figure; the domain-classifier
#   accuracy and the MMD between the teachers' common features are our measurable stand-ins. The raw
#   spaces are compared after zero-padding to one length (an arbitrary embedding, which is the point:
#   the raw spaces have no common coordinates).
# - **Transfer set**: in the quick profile the 898 training images of `digits` plus one copy of each shifted
#   by up to one pixel (1,796 images, no labels), the images the teachers were trained on; chosen from the
#   supervised ceiling, which did not reach teacher 2 within tolerance at every seed with the 898 images alone
#   ("How this experiment was sized"). The full profile uses the first 20,000 training images of `shapes`.
# - **Supervised ceiling** (not in the paper): the student's own architecture and initial weights (the
#   pretrained backbone), trained with cross-entropy on the true labels of the transfer images for the
#   students' 40 epochs. It decides which claims the run can test (claims 1 and 3).
# - **Claims**: the four checks and their tolerances were written before the first run and have not been
#   changed since. Claim 2 (CFL at least as good as KD, within a point) failed in the bf16 run stored before
#   this one, by less than one test image; it holds in this float32 run.
# - **Numerics: float32** (`PRECISION = "fp32"`), where most notebooks use bf16 autocast on a CPU that runs it
#   natively. `make bench-precision` ran this notebook both ways from a cold cache: in bf16 claim 2 fails
#   (CFL 9 test images behind KD), in float32 it holds (5 images behind), and every other number moves by a
#   few test images (`results/precision_quick.tsv` has both runs' headlines). A verdict that depends on the
#   reader's CPU would make the stored outputs fail `make test` on a machine without bf16, so this notebook
#   computes in float32 everywhere; the choice was made after that measurement, for every notebook whose
#   stored outputs differed between the two (03 and 05; 07 differed only in a table of the teachers' scores).
#   It costs little here (the cold-cache quick profile takes about as long in either).
# - **Seeds**: the quick profile is a single seed; the full profile reports mean and standard deviation over
#   three seeds and a paired t-test of CFL against KD.
#
# ## Exercises
#
# 1. Sweep `MMD_WEIGHT` (0.1<!-- fixed -->, 1, 10) with `kae run 03 -p MMD_WEIGHT 1`. Where does the union
#    accuracy peak, and does the domain accuracy follow?
# 2. Change `STUDENT_ARCH` to `resnet`: is the ranking of CFL and KD the same for the other family?
# 3. The MMD here matches the student's distribution to each teacher's on *all* images. Restrict it to the
#    images a teacher is confident about (max softmax above 0.9<!-- fixed -->). Does that help?
# 4. Why does removing the reconstruction loss let the MMD collapse? Plot $\|H_i\|$ statistics during
#    training with and without it.
#
# ## References
#
# - S. Luo, X. Wang, G. Fang, Y. Hu, D. Tao, M. Song. *Knowledge Amalgamation from Heterogeneous Networks by
#   Common Feature Learning.* IJCAI 2019; arXiv:1906.10546.
# - A. Gretton, K. Borgwardt, M. Rasch, B. Schölkopf, A. Smola. *A Kernel Two-Sample Test.* JMLR 13, 2012 (MMD).
# - G. Hinton, O. Vinyals, J. Dean. *Distilling the Knowledge in a Neural Network.* arXiv:1503.02531 (notebook 01).
# - C. Shen, X. Wang, J. Song, L. Sun, M. Song. *Amalgamating Knowledge towards Comprehensive Classification.*
#   AAAI 2019 (notebook 02).
# - L. van der Maaten, G. Hinton. *Visualizing Data using t-SNE.* JMLR 9, 2008.
# - KAmalEngine (zju-vipa), the authors' group's knowledge-amalgamation library.
