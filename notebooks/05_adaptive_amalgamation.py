# %% [markdown]
# # 05 · Customising a student from heterogeneous teachers by adaptive knowledge amalgamation
#
# **Shen, Xue, Wang, Song, Sun & Song (2019). *Customizing Student Networks From Heterogeneous Teachers via
# Adaptive Knowledge Amalgamation*.** ICCV 2019, pp. 3504–3513. [arXiv:1908.07121](https://arxiv.org/abs/1908.07121)
#
# Many trained networks are published, each for its own task or set of tasks, with different architectures, and
# their training data and labels are not. A user wants one compact network for *their* combination of tasks, say
# "where is the object, and what colour is it". Shen et al. build it from a **pool of heterogeneous source nets**
# and unlabeled images only, in two stages. First, the sources that know one wanted task form its group, and the
# group is amalgamated into a **component net** for that task. Then the component nets are amalgamated into one
# **target net** with a head per task. Because several sources know the same task, and each may be wrong on some
# images, the student learns each image from **one source only: the one whose prediction is least ambiguous**
# (*selective learning*, by the entropy of its prediction). The abstract says the customised student performs even
# better than the teachers.
#
# The paper's body, equations and tables could not be read where this repository is built (only the abstract and
# the introduction). Everything below about the losses, the bridges and the schedule follows the authors' public
# code (KAmalEngine, `customize_attribute.py`) and is marked **assumption (authors' code)**. No paper numbers are
# available here, so only the pattern of the claims is checked.
#
# **What you will see**
#
# 1. A pool of four sources laid out as the paper's Fig. 1: "A", "A & B", "C & D", "D & E", ConvNets and ResNets,
#    each trained (in the repository's model zoo) on images of only two of the four fill patterns.
# 2. Selective learning: the entropy of each source's prediction, how well it marks the correct ones (histograms,
#    AUROC), and which source teaches which images.
# 3. Stage 1: a component net per wanted task, taught through 1×1 *transfer bridges* on both sides at every
#    stage, with a unit-norm regulariser on the source-side bridges, and a KL term on the logits where the authors'
#    code has an MSE (kept as an ablation).
# 4. Stage 2: the target net, a shared trunk with one head per task, taught by every component on every image.
# 5. The supervised ceiling, measured first: each student's architecture trained with the true labels for the same
#    budget, which says which claims this experiment can test.
# 6. Selection ablations (min-entropy, averaging the sources, a random source; in the full profile also one fixed
#    source, an oracle, feature-only and logit-only losses, the authors' logit MSE and the regulariser off),
#    parameters, the claims.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 05 -p TASKS size,colour` or `kae run 05 --profile full`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, about 3 minutes, one seed; "full": wider nets, more images, 3 seeds, every ablation (GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
PRECISION: str = "fp32"  # numerics: "fp32" here (its claims differ between float32 and bf16, see the fidelity notes), "auto" or "bf16"
DATASET: str = "shapes"  # "shapes" (generated objects with five attributes); the only data set wired up here
TEACHERS: str = "zoo"  # "zoo": load the source nets shipped in zoo/; "train": retrain them with the zoo's recipe
TASKS: str = "position,colour"  # the wanted tasks ("A & D"), comma-separated, each known by a source: position, colour, size, shape
LOGIT_LOSS: str = "kl"  # the logit term of stage 1: "kl" (KL at temperature 1, this notebook) or "mse" (the authors' code)
ABLATIONS: str = "auto"  # "auto": the extra selection and loss ablations in the full profile only; "on"; "off"
EPOCH_SCALE: int = 1  # multiplies the epochs of every component and target net, e.g. 3 for a longer run

# %%
from kae_utils import zoo
from kae_utils.core.params import check_choice, check_common_parameters, check_number
from kae_utils.core.scale import profile_settings

SUPPORTED_DATASETS = ("shapes",)
check_common_parameters(PROFILE, DEVICE, SEED, precision=PRECISION,
                        dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_choice("ABLATIONS", ABLATIONS, ("auto", "on", "off"))
check_choice("LOGIT_LOSS", LOGIT_LOSS, ("kl", "mse"))
check_number("EPOCH_SCALE", EPOCH_SCALE, integer=True, minimum=1)

NOTEBOOK = "05_adaptive_amalgamation"
SOURCE_NAMES = zoo.adaptive_source_names(PROFILE)  # the pool, in the order of the paper's Fig. 1
SOURCE_TASKS = {name: zoo.entry(name).tasks for name in SOURCE_NAMES}
POOL_TASKS = list(dict.fromkeys(t for tasks in SOURCE_TASKS.values() for t in tasks))
WANTED = [t.strip() for t in str(TASKS).split(",") if t.strip()]
for task in WANTED:
    check_choice("each of TASKS", task, POOL_TASKS)
if not WANTED or len(set(WANTED)) != len(WANTED):
    raise ValueError(f"TASKS must name one or more distinct tasks of {', '.join(POOL_TASKS)}; got {TASKS!r}")
GROUPS = {task: [name for name in SOURCE_NAMES if task in SOURCE_TASKS[name]] for task in WANTED}
TASK_A = WANTED[0]  # the selection and loss ablations run on the first wanted task
REFERENCE = zoo.adaptive_reference_name(PROFILE) if tuple(WANTED) == zoo.ADAPTIVE_REFERENCE_TASKS else None

SETTINGS = {  # the sources come from the zoo (kae_utils.zoo); these are the students' settings
    # transfer_size: unlabeled images; beyond the training split, more generated ones (load_training_pool)
    # quick: component_epochs 4 and the authors' logit MSE in the full profile only, for the 180 s budget (the
    # component's supervised ceiling still reaches the best source at 4 epochs; "How this experiment was sized")
    "quick": dict(seeds=[SEED], transfer_size=8000, component_widths=(12, 24, 48), target_widths=(15, 30, 60),
                  component_epochs=4, target_epochs=6, batch_size=64, lr=3e-3, ablations=False,
                  precompute=True),
    "full": dict(seeds=[SEED, SEED + 1, SEED + 2], transfer_size=20000, component_widths=(32, 64, 128),
                 target_widths=(40, 80, 160), component_epochs=10, target_epochs=10, batch_size=256, lr=2e-3,
                 ablations=True, precompute=False),
}
CFG = profile_settings(SETTINGS, PROFILE)  # SETTINGS[PROFILE]; KAE_SCALE=smoke shrinks the full one
CFG["ablations"] = {"auto": CFG["ablations"], "on": True, "off": False}[ABLATIONS]
CFG["component_epochs"] *= EPOCH_SCALE
CFG["target_epochs"] *= EPOCH_SCALE
CFG["bridge_widths"] = tuple(w // 2 for w in CFG["component_widths"])  # the common space: half a component's width
OTHER_LOSS = {"kl": "mse", "mse": "kl"}[LOGIT_LOSS]  # the ablation of the logit term (with `ablations`)
if REFERENCE is not None and tuple(zoo.entry(REFERENCE).arch_args["widths"]) != CFG["target_widths"]:
    raise ValueError(f"the zoo's reference {REFERENCE} must have the target net's widths {CFG['target_widths']}")
print("wanted tasks:", " & ".join(WANTED))
for task, names in GROUPS.items():
    print(f"  group of {task}: {', '.join(names)}")
for name, value in CFG.items():
    print(f"{name:>16}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the zoo, `runs/`) are resolved from the repository root by
# `kae_utils`, so the notebook runs from any working directory.

# %%
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

import kae_utils.methods.adaptive
from kae_utils.data import ATTRIBUTE_VALUES, load_dataset, load_training_pool
from kae_utils.display.source import show_source
from kae_utils.display.viz import sample_grid
from kae_utils.evaluation.metrics import accuracy
from kae_utils.evaluation.results import Claim, Effect, check_claims, mean_std, write_metrics
from kae_utils.methods.adaptive import (
    bridge_row_norms,
    feature_mse_per_image,
    logit_loss_per_image,
    min_entropy_choice,
    preactivation_features,
    prediction_entropy,
    transfer_bridges,
    unit_norm_penalty,
)
from kae_utils.methods.amalgamation import ceiling_reaches, check_images_only, train_ceiling
from kae_utils.models import MultiHeadNet, build_multihead, count_parameters
from kae_utils.models.seeding import seeded
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics
from kae_utils.training.predict import Batches, predict_maps
from kae_utils.training.trainer import Trainer

device = setup_notebook(SEED, DEVICE, precision=PRECISION)
print("device type:", device.type)
print(numerics.describe())  # float32 unless PRECISION says otherwise; KAE_PRECISION=fp32/bf16 overrides both

# %% [markdown]
# ## Data
#
# The paper's attribute experiment uses CelebA (face attributes such as hair colour, from sources that each know
# a few attributes). Nothing can be downloaded here. We use the repository's offline `shapes` set: 32×32 images of
# one main object whose **five attributes** are the tasks, namely its shape (8 kinds), colour (6), size (3 bins),
# position (9 cells of a 3×3 grid) and fill pattern (4: solid, stripes, checker, dots), on a cluttered background
# with noise, distractor objects and sometimes an occluding bar. Each attribute is a single-label task, so a source
# has one softmax head per attribute it knows. The quick profile uses the 4,000 training and 1,000 test images of
# `load_dataset("shapes", ..., "quick")`; the full one 50,000 and 10,000.
#
# The **training images, without their labels, are the transfer set** of every student, as in the authors' code
# (whose component stage reuses the sources' training images). Amalgamation needs no labels, so the quick profile
# adds **4,000 more unlabeled images of the same generator** (`kae_utils.data.load_training_pool`: the training
# split, then the images that follow the test split in the same stream, so they overlap neither the training nor the
# test images): 8,000 transfer images in all. The full profile
# uses the first 20,000 of its 50,000 training images. Test labels are used only to evaluate; the transfer images'
# labels only by the supervised ceiling, the supervised reference and the oracle selection, all marked as such.

# %%
train_split = load_dataset(DATASET, "train", PROFILE)
test_split = load_dataset(DATASET, "test", PROFILE)
x_train, x_test = train_split.x, test_split.x
y_test = {task: test_split.targets[task].long() for task in (*POOL_TASKS, "fill")}
IMAGE_SHAPE = tuple(x_train.shape[1:])
# the transfer set: the training split, then more images of the generator after the test split (no overlap)
transfer_pool = load_training_pool(DATASET, PROFILE, CFG["transfer_size"])
n_extra = max(0, len(transfer_pool) - len(x_train))  # the generated images beyond the training split
X_TRANSFER = transfer_pool.x  # the transfer set: images, no labels
# the transfer images' labels: only for the supervised ceiling, the oracle selection and to *describe* the selection
Y_TRANSFER = {task: transfer_pool.targets[task].long() for task in (*POOL_TASKS, "fill")}
FILL_TRANSFER = Y_TRANSFER["fill"]
FILLS = ATTRIBUTE_VALUES["fill"]
print(f"train: {tuple(x_train.shape)}  test: {tuple(x_test.shape)}")
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}: {min(len(x_train), len(X_TRANSFER))} training images"
      f" and {n_extra} more generated ones")
for task in (*POOL_TASKS, "fill"):
    print(f"  {task:>8}: {len(ATTRIBUTE_VALUES[task])} classes ({', '.join(ATTRIBUTE_VALUES[task][:4])}"
          f"{', ...' if len(ATTRIBUTE_VALUES[task]) > 4 else ''})")


# %%
def caption(i: int) -> str:
    """The label of test image `i`: its values of the wanted tasks and its fill pattern."""
    return "\n".join(ATTRIBUTE_VALUES[t][int(y_test[t][i])] for t in (*WANTED, "fill"))


sample_grid(x_test[:10], [caption(i) for i in range(10)], ncols=10, size=1.1)
plt.show()

# %% [markdown]
# ## The source pool
#
# Four source nets, laid out as the paper's Fig. 1 (sources "A", "A & B", "C & D", "D & E" → components A and D →
# target "A & D"): A = position, B = size, C = shape, D = colour and E = size again (`shapes` has five attributes,
# and the fifth, fill, is used to split the data). Each source is a `MultiHeadNet` of `kae_utils.models`: a small
# ConvNet (conv–BN–ReLU stages with max-pooling) or ResNet (residual basic blocks) backbone, global average pooling
# and one linear head per task it knows. They differ in architecture, width and co-tasks: *heterogeneous*.
#
# **Our addition, not the paper's:** each source was trained with labels on the training images of **only two of the
# four fill patterns**, different for each source. So every source has a reason to be unreliable on some images, and
# choosing a teacher per image can matter. The repository's **model zoo** (`kae_utils.zoo`) trained them once (30
# epochs in the quick profile) and ships the weights in `zoo/` with their hashes; `TEACHERS = "train"` retrains them
# here from the same recipe. Their held-out accuracies are on the test split, all four fills.

# %% tags=["nbval-ignore-output"]
sources = {name: zoo.obtain(name, TEACHERS, device) for name in SOURCE_NAMES}
for source in sources.values():
    source.requires_grad_(False).eval()
print("sources:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
SOURCE_FILLS = {name: zoo.entry(name).data["where"]["fill"] for name in SOURCE_NAMES}
SOURCE_ARCH = {name: zoo.entry(name).arch_args["backbone"] for name in SOURCE_NAMES}
SHORT = {name: f"S{i + 1}" for i, name in enumerate(SOURCE_NAMES)}  # S1..S4, as in the figures below
pool_table = pd.DataFrame(zoo.summary(SOURCE_NAMES)).set_index("entry")
pool_table.insert(0, "source", [SHORT[n] for n in pool_table.index])
pool_table.insert(1, "trained on fills", [", ".join(FILLS[f] for f in SOURCE_FILLS[n]) for n in pool_table.index])
pool_table


# %% [markdown]
# The logits of every model below come from `kae_utils.training.predict.predict_maps` (batched, eval mode; a `MultiHeadNet`
# returns a dict with one entry per head). Each source's accuracy on its tasks, per fill pattern of the test images
# (the fills it was trained on marked with \*): the fill split makes some sources weaker on the fills they never
# saw, more so for some tasks than for others.

# %%
def per_fill(correct: torch.Tensor, fills: torch.Tensor) -> list[float]:
    """The share of correct predictions among the images of each fill pattern."""
    return [correct[fills == f].float().mean().item() for f in range(len(FILLS))]


source_test_logits = {name: predict_maps(m, x_test, batch_size=500) for name, m in sources.items()}
rows = []
for name in SOURCE_NAMES:
    for task in SOURCE_TASKS[name]:
        correct = source_test_logits[name][task].argmax(1) == y_test[task]
        row = {"source": SHORT[name], "task": task, "architecture": SOURCE_ARCH[name], "all fills": correct.float().mean().item()}
        for f, acc in enumerate(per_fill(correct, y_test["fill"])):
            row[FILLS[f] + ("*" if f in SOURCE_FILLS[name] else "")] = acc
        rows.append(row)
pd.DataFrame(rows).round(3).astype(object).fillna("")

# %% [markdown]
# ## Selective learning: learn each image from the least ambiguous source
#
# For a wanted task $a$, its **group** $G_a$ is the set of sources that have a head for $a$. For every unlabeled
# image $x$ and every source $t \in G_a$, take the softmax of **that task's logits only**, $p^t = \mathrm{softmax}(z^t_a(x))$,
# and its entropy
#
# $$H^t(x) = -\sum_c p^t_c \log p^t_c .$$
#
# The image is taught **only by the source with the lowest entropy** (ties: the first source):
#
# $$t^*(x) = \arg\min_{t \in G_a} H^t(x).$$
#
# As in the authors' code (**assumption**), this is done **once, before training**, with the sources frozen; the
# transfer set is split into one subset per source. Here is the code (`kae_utils.methods.adaptive`):

# %%
show_source(kae_utils.methods.adaptive.prediction_entropy)
show_source(kae_utils.methods.adaptive.min_entropy_choice)

# %% [markdown]
# Every selection rule compared below gives each image a **weight per source**, $w_{x,t} \ge 0$ with
# $\sum_t w_{x,t} = 1$: the min-entropy rule a one-hot weight on $t^*(x)$; **averaging** $1/|G_a|$ for every source
# (every source teaches every image); a **random source** a one-hot weight on a source drawn uniformly (seeded);
# a **fixed source** all weight on one source; the **oracle** (it uses the labels: an upper bound, not a method)
# the first source whose prediction is correct, falling back to the min-entropy source when none is. The same weights
# also define a prediction *without any training*: the chosen source's answer (for averaging: the mean of the
# sources' softmax probabilities).

# %%
SELECTIONS = ("min-entropy", "average", "random", "fixed S1", "oracle (labels)")


def selection_weights(logits: Sequence[torch.Tensor], rule: str, seed: int = 0,
                      labels: torch.Tensor | None = None) -> torch.Tensor:
    """(N, T) weights of the T sources of one task's group on N images, by a selection rule."""
    n, num = len(logits[0]), len(logits)
    if rule == "average":
        return torch.full((n, num), 1.0 / num)
    if rule == "min-entropy":
        choice = min_entropy_choice(logits)
    elif rule == "random":
        choice = torch.randint(num, (n,), generator=torch.Generator().manual_seed(10_000 + seed))
    elif rule == "fixed S1":
        choice = torch.zeros(n, dtype=torch.long)
    elif rule == "oracle (labels)":
        correct = torch.stack([z.argmax(1) == labels for z in logits], dim=1)  # (N, T)
        choice = torch.where(correct.any(1), correct.float().argmax(1), min_entropy_choice(logits))
    else:
        raise ValueError(f"unknown selection rule {rule!r}; one of {SELECTIONS}")
    return F.one_hot(choice, num).float()


def selected_prediction(logits: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """The pool's answer under a selection: the weighted mean of the sources' softmax probabilities."""
    probs = torch.stack([z.softmax(1) for z in logits], dim=1)  # (N, T, C)
    return (weights.unsqueeze(-1) * probs).sum(1)


# %% [markdown]
# ### Does low entropy mark correct predictions?
#
# On the test images, the entropy of each source's prediction for each wanted task, split by whether the prediction
# is right. If selective learning is to work, right answers should have low entropy. The AUROC of $-H$ as a score
# for "this prediction is right" summarises it: 0.5<!-- fixed --> is chance, 1.0<!-- fixed --> a perfect separation.

# %%
entropy_rows, auroc = [], {}
for task, names in GROUPS.items():
    for name in names:
        z = source_test_logits[name][task]
        correct = (z.argmax(1) == y_test[task]).numpy()
        auroc[(task, name)] = float(roc_auc_score(correct, -prediction_entropy(z).numpy()))
        entropy_rows.append({"task": task, "source": SHORT[name], "accuracy": correct.mean(),
                             "AUROC(-H -> correct)": auroc[(task, name)]})
pd.DataFrame(entropy_rows).round(3)

# %%
pairs = [(task, name) for task, names in GROUPS.items() for name in names]
fig, axes = plt.subplots(1, len(pairs), figsize=(3.0 * len(pairs), 2.5), squeeze=False)
for ax, (task, name) in zip(axes[0], pairs, strict=True):
    z = source_test_logits[name][task]
    h, correct = prediction_entropy(z).numpy(), (z.argmax(1) == y_test[task]).numpy()
    bins = np.linspace(0, np.log(z.shape[1]), 25)
    ax.hist(h[correct], bins=bins, alpha=0.6, density=True, label="correct", color="C2")
    ax.hist(h[~correct], bins=bins, alpha=0.6, density=True, label="wrong", color="C3")
    ax.set_title(f"{SHORT[name]} on {task}: AUROC {auroc[(task, name)]:.2f}", fontsize=9)
    ax.set_xlabel("entropy H (nats)")
    ax.legend(fontsize=7)
axes[0][0].set_ylabel("density")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Which source teaches which images
#
# The selection on the transfer set (unlabeled: the fill pattern is used only to *describe* it here). For each
# wanted task, the share of the images of each fill that each source is chosen for; the fills a source was trained
# on are marked \* in the legend. If entropy tracks reliability, a source should be chosen mostly on its own fills.

# %%
transfer_logits = {name: predict_maps(m, check_images_only(X_TRANSFER, IMAGE_SHAPE), batch_size=500) for name, m in sources.items()}
choice = {task: min_entropy_choice([transfer_logits[n][task] for n in names]) for task, names in GROUPS.items()}

fig, axes = plt.subplots(1, len(GROUPS), figsize=(3.8 * len(GROUPS), 2.8), squeeze=False)
share_rows = []
for ax, (task, names) in zip(axes[0], GROUPS.items(), strict=True):
    bottom = np.zeros(len(FILLS))
    for i, name in enumerate(names):
        share = np.array([(choice[task][FILL_TRANSFER == f] == i).float().mean().item() for f in range(len(FILLS))])
        trained = ", ".join(FILLS[f] + "*" for f in SOURCE_FILLS[name])
        ax.bar(FILLS, share, bottom=bottom, label=f"{SHORT[name]} ({trained})", color=f"C{i}")
        bottom += share
        share_rows += [{"task": task, "source": SHORT[name], "fill": FILLS[f], "share chosen": share[f]}
                       for f in range(len(FILLS))]
    ax.set_title(f"{task}: who teaches each image", fontsize=9)
    ax.set_ylabel("share of the transfer images")
    ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
plt.show()
print("share of the transfer set per source:",
      "; ".join(f"{task}: " + ", ".join(f"{SHORT[n]} {(choice[task] == i).float().mean():.0%}" for i, n in enumerate(names))
                for task, names in GROUPS.items()))

# %% [markdown]
# ### The selection alone, before any training
#
# Each rule's prediction on the test images (the pool's answer: the chosen source's, or the average of the sources'
# probabilities), against each single source. This is what stage 1 has to distil into one component net.

# %%
pool_rules = {}
for task, names in GROUPS.items():
    logits = [source_test_logits[n][task] for n in names]
    pool_rules[task] = {f"source {SHORT[n]}": accuracy(z, y_test[task]) for n, z in zip(names, logits, strict=True)}
    for rule in SELECTIONS:
        weights = selection_weights(logits, rule, seed=SEED, labels=y_test[task])
        pool_rules[task][rule] = accuracy(selected_prediction(logits, weights), y_test[task])
best_source = {task: max(accuracy(source_test_logits[n][task], y_test[task]) for n in names)
               for task, names in GROUPS.items()}
pd.DataFrame(pool_rules).round(4)

# %% [markdown]
# ## Stage 1: a component net per task, through transfer bridges
#
# The component net of task $a$ is a new network (here a `MultiHeadNet` with a ConvNet backbone, widths
# `component_widths`, and one head) trained on the transfer images. Each image is taught by the source(s) the
# selection weights give it. A source and the component have different architectures and widths, so their features
# are compared in a common space of $c_b$ channels through **transfer bridges**, 1×1 convolutions, one pair per
# source and tap (**assumption, authors' code**):
#
# * $B^{t}_{b}: C^{\text{src}}_b \to c_b$ on the source's side and $B^{s,t}_{b}: C^{\text{comp}}_b \to c_b$ on the
#   component's side, with $c_b$ half the component's width at tap $b$ (as in the code);
# * the taps $F_b$ are the **pre-activation** features of every stage: the input of its last ReLU (the code hooks
#   the conv output before BN at the stem and each layer's last block before its ReLU; our backbones have no
#   separate stem tap, so the taps are the three stages).
#
# The loss of source $t$ on its own images (weights $w_{x,t}$) is the feature MSE at every tap plus a term on the
# task's logits, and the **unit-norm regulariser** on its source-side bridges, added **once per source** (the code's
# class variant adds it inside the tap loop, a bug; its attribute variant, followed here, once):
#
# $$L_t = \frac{1}{|\mathcal{B}|}\sum_{x \in \mathcal{B}} w_{x,t}\Big[\sum_b \mathrm{MSE}\big(B^{s,t}_b(F^{\text{comp}}_b(x)),\ B^{t}_b(F^{t}_b(x))\big)
#   + \ell\big(z^{\text{comp}}_a(x),\ z^{t}_a(x)\big)\Big] + R(B^{t}),\qquad
#   R(B) = \sum_b \operatorname{mean}_o\Big(\sum_i W_{b,oi}^2 - 1\Big)^2 .$$
#
# **The logit term $\ell$ is where this notebook departs from the authors' code.** The code uses the MSE of the
# logits, $\ell = \frac{1}{C}\sum_c (z^{\text{comp}}_c - z^t_c)^2$. Combined with the min-entropy selection this
# favours the wrong thing: the source chosen for an image is the most *confident* one, whose logits are the largest,
# so the MSE pulls the component hardest towards the largest logits rather than towards the right answer. We use
# the KL divergence at temperature 1 instead (`LOGIT_LOSS = "kl"`), as the authors' layer-wise amalgamation matches
# scores (notebook 02): $\ell = \mathrm{KL}\big(\mathrm{softmax}(z^t)\,\|\,\mathrm{softmax}(z^{\text{comp}})\big)$, which
# depends only on the source's distribution. The authors' MSE is kept as an ablation (`LOGIT_LOSS = "mse"` makes it
# the main loss; with `ablations`, the full profile or `ABLATIONS = "on"`, one component is trained with the other
# term, and the results compare the two; the quick profile leaves it out for its time budget).
#
# and the component minimises $\sum_{t \in G_a} L_t$ with one Adam step over the component and all bridges. The source
# features are trained through the source-side bridge only (the sources stay frozen). Without $R$, both sides
# could shrink their bridges towards zero and make the feature loss vanish; $R$ keeps every row of a source-side
# bridge at unit norm. $\mathcal{B}$ is a batch of transfer images: each image's loss counts once, under the source(s)
# its weights name (the code instead draws each source's images from a loader of its own; see the notes on fidelity).
# The pieces, from `kae_utils.methods.adaptive`:

# %%
show_source(kae_utils.methods.adaptive.preactivation_features)
show_source(kae_utils.methods.adaptive.transfer_bridges)
show_source(kae_utils.methods.adaptive.unit_norm_penalty)
show_source(kae_utils.methods.adaptive.logit_loss_per_image)

# %% [markdown]
# The sources are frozen and in eval mode, so what they teach (their task logits and tap features on each transfer
# image) is fixed. In the quick profile it is computed once and kept in memory; in the full profile, on a GPU, batch
# by batch. The numbers are the same either way.

# %%
N_TAPS = len(CFG["component_widths"])


def stage_widths(net: MultiHeadNet) -> list[int]:
    """The channel widths of the network's backbone stages."""
    return list(net.backbone.widths)


NUMERICS = numerics.current(device)
# the kept features in the numerics' precision (bfloat16 halves their memory); logits always in float32
FEATURE_DTYPE = torch.bfloat16 if NUMERICS.precision == "bf16" else torch.float32


@torch.no_grad()
def teacher_signals(net: MultiHeadNet, task: str, x: torch.Tensor) -> list[torch.Tensor]:
    """What a frozen net teaches on images x: [its logits of `task`, F_1, ..., F_K] (eval mode, batched)."""
    net.eval()
    parts = []
    for (xb,) in Batches([x], batch_size=500):
        with NUMERICS.autocast():
            z, feats = preactivation_features(net, NUMERICS.prepare_input(xb.to(device)))
        parts.append([z[task].float(), *[f.to(FEATURE_DTYPE) for f in feats]])
    return [torch.cat(p) for p in zip(*parts, strict=True)]


# %% [markdown]
# A component net and its bridges, one pair per source of its group:

# %%
class ComponentAmalgamation(nn.Module):
    """A component net for one task and, per source of its group, a pair of bridges (source side, component side)."""

    def __init__(self, task: str, group: Sequence[str], seed: int) -> None:
        super().__init__()
        self.task, self.group = task, list(group)
        self.net = build_multihead("convnet", {task: len(ATTRIBUTE_VALUES[task])}, in_channels=IMAGE_SHAPE[0],
                                   widths=CFG["component_widths"], seed=seed)
        c = CFG["bridge_widths"]
        with seeded(seed + 1):
            self.source_bridges = nn.ModuleList(transfer_bridges(stage_widths(sources[n]), c) for n in self.group)
        with seeded(seed + 2):
            self.component_bridges = nn.ModuleList(transfer_bridges(CFG["component_widths"], c) for _ in self.group)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(x)


# %% [markdown]
# The stage-1 loss terms on a batch: each source's feature and logit terms weighted image by image by the
# selection, and the regulariser $R$ of its bridges; the switches turn terms off for the ablations:

# %%
def stage1_losses(model: ComponentAmalgamation, x: torch.Tensor, w: torch.Tensor, signals: Sequence[Sequence[torch.Tensor]],
                  *, features: bool = True, logits: bool = True, regulariser: bool = True,
                  logit_loss: str = LOGIT_LOSS) -> dict[str, torch.Tensor]:
    """The stage-1 loss terms on a batch, summed over the group's sources: feature MSE, logit term (KL or MSE), R.

    signals[t] = [z_t, F_1, ..., F_K] of source t on the batch; w[:, t] the images' weights for source t."""
    z_comp, f_comp = preactivation_features(model.net, x)
    z_comp = z_comp[model.task]
    terms = {"feature": x.new_zeros(()), "logit": x.new_zeros(()), "R": x.new_zeros(())}
    for t, (z_src, *f_src) in enumerate(signals):
        weight = w[:, t]  # each image's weights sum to 1 over the group
        if features:
            per_image = sum(
                feature_mse_per_image(b_c(fc), b_s(fs))
                for b_c, b_s, fc, fs in zip(model.component_bridges[t], model.source_bridges[t], f_comp, f_src,
                                            strict=True))
            terms["feature"] = terms["feature"] + (weight * per_image).mean()
        if logits:
            terms["logit"] = terms["logit"] + (weight * logit_loss_per_image(z_comp, z_src, logit_loss)).mean()
        if regulariser:
            terms["R"] = terms["R"] + unit_norm_penalty(model.source_bridges[t])  # once per source, not per tap
    return terms


# %% [markdown]
# Stage 1 for one task: the selection weights once, before training, then the component and its bridges
# trained on them:

# %%
def train_component(task: str, rule: str, seed: int, signals: dict[str, list[torch.Tensor]] | None = None,
                    **loss_switches: bool | str) -> dict:
    """Stage 1 for one task: select (once, before training), then train the component and its bridges.

    signals: the group's precomputed teaching signals on the transfer set (None: computed batch by batch)."""
    names = GROUPS[task]
    x = check_images_only(X_TRANSFER, IMAGE_SHAPE)  # images only: no label can reach the student
    labels = Y_TRANSFER[task] if rule == "oracle (labels)" else None  # the upper bound only
    w = selection_weights([transfer_logits[n][task] for n in names], rule, seed=seed, labels=labels)
    model = ComponentAmalgamation(task, names, seed=100 * seed + 1).to(device)
    per_source = 1 + N_TAPS  # logits and one feature map per tap

    def step(m: ComponentAmalgamation, batch):
        xb, wb, *pre = batch
        sig = ([pre[i * per_source:(i + 1) * per_source] for i in range(len(names))] if pre
               else [teacher_signals(sources[n], task, xb) for n in names])
        terms = stage1_losses(m, xb, wb, sig, **loss_switches)
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    data = (x, w, *[t for n in names for t in signals[n]]) if signals else (x, w)
    history = Trainer(model, epochs=CFG["component_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"],
                      step_fn=step, device=device, seed=seed, desc=f"component {task}, {rule} (seed {seed})").fit(data)
    return {"model": model.eval(), "history": history.to_dict(), "weights": w}


# %% [markdown]
# ## Stage 2: the target net, from every component on every image
#
# The target net has a **shared trunk** (a ConvNet, widths `target_widths`: wider than one component, smaller
# than all of them together) and **one head per wanted task**. Every component net teaches every transfer image (no
# selection: each component is the only teacher of its task). The bridges sit **only on the target side**, one per
# component and tap, $B^{k}_b: C^{\text{target}}_b \to C^{k}_b$, mapping the target's features into component $k$'s
# own feature space; there is no regulariser (**assumption, authors' code**: `cal_wn_loss` exists there but is not
# called in this stage):
#
# $$L = \sum_k \Big[\sum_b \mathrm{MSE}\big(B^{k}_b(F^{\text{target}}_b(x)),\ F^{k}_b(x)\big)
#   + \mathrm{MSE}\big(z^{\text{target}}_{a_k}(x),\ z^{k}_{a_k}(x)\big)\Big].$$

# %%
class TargetAmalgamation(nn.Module):
    """The target net (one trunk, a head per wanted task) and, per component, bridges on the target side."""

    def __init__(self, tasks: Sequence[str], seed: int) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.net = build_multihead("convnet", {t: len(ATTRIBUTE_VALUES[t]) for t in self.tasks},
                                   in_channels=IMAGE_SHAPE[0], widths=CFG["target_widths"], seed=seed)
        with seeded(seed + 1):
            self.bridges = nn.ModuleDict({t: transfer_bridges(CFG["target_widths"], CFG["component_widths"])
                                          for t in self.tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(x)


def train_target(components: dict[str, MultiHeadNet], seed: int) -> dict:
    """Stage 2: the target net and its bridges, taught by every component on every transfer image."""
    x = check_images_only(X_TRANSFER, IMAGE_SHAPE)
    model = TargetAmalgamation(list(components), seed=100 * seed + 7).to(device)
    for component in components.values():
        component.requires_grad_(False).eval()
    signals = ({t: [s.cpu() for s in teacher_signals(c, t, x)] for t, c in components.items()}
               if CFG["precompute"] else None)
    per_component = 1 + len(CFG["component_widths"])

    def step(m: TargetAmalgamation, batch):
        xb, *pre = batch
        z_t, f_t = preactivation_features(m.net, xb)
        feature, logit = xb.new_zeros(()), xb.new_zeros(())
        for i, (task, component) in enumerate(components.items()):
            z_k, *f_k = pre[i * per_component:(i + 1) * per_component] if pre else teacher_signals(component, task, xb)
            feature = feature + sum(F.mse_loss(b(ft), fk) for b, ft, fk in zip(m.bridges[task], f_t, f_k, strict=True))
            logit = logit + F.mse_loss(z_t[task], z_k)
        return feature + logit, {"feature": feature.detach(), "logit": logit.detach()}

    data = (x, *[s for t in components for s in signals[t]]) if signals else (x,)
    history = Trainer(model, epochs=CFG["target_epochs"], lr=CFG["lr"], batch_size=CFG["batch_size"], step_fn=step,
                      device=device, seed=seed, desc=f"target {' & '.join(components)} (seed {seed})").fit(data)
    return {"model": model.eval(), "history": history.to_dict()}


# %% [markdown]
# ## The supervised ceiling (uses labels), measured first
#
# Before any student is trained: each student's **own architecture, initialised as the student is, trained with the
# true labels of the same transfer images for the same budget** (epochs, batch size, learning rate, schedule), with
# cross-entropy (`kae_utils.methods.amalgamation.train_ceiling`): one per component (its task's labels) and one for the target
# net (the sum of its heads' cross-entropies). No label-free student can be expected to do better, so where a ceiling
# stays below the teacher it is compared with (within the claim's own tolerance), the experiment cannot test that
# claim, and the claims below say so instead of reporting a failure of the method.

# %% tags=["nbval-ignore-output"]
def labels_loss(out: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> torch.Tensor:
    """The supervised loss: the sum of the tasks' cross-entropies against the true labels `y`."""
    return sum(F.cross_entropy(out[task], y[task]) for task in y)


def supervised_ceiling(tasks: Sequence[str], widths: Sequence[int], epochs: int, net_seed: int, seed: int,
                       desc: str) -> dict[str, float]:
    """The supervised ceiling of a student with a head per task: its test accuracy per task.

    The student is a ConvNet of `widths`, its weights drawn from `net_seed` and its batches from `seed`, as the
    student's are.
    """
    net = build_multihead("convnet", {t: len(ATTRIBUTE_VALUES[t]) for t in tasks}, in_channels=IMAGE_SHAPE[0],
                          widths=widths, seed=net_seed)
    net, _ = train_ceiling(net, X_TRANSFER, {t: Y_TRANSFER[t] for t in tasks}, labels_loss, epochs=epochs, lr=CFG["lr"],
                           batch_size=CFG["batch_size"], device=device, seed=seed, desc=desc)
    logits = predict_maps(net, x_test, batch_size=500)
    return {t: accuracy(logits[t], y_test[t]) for t in tasks}


ceiling_runs = {}  # (name, seed): {task: test accuracy}; the seeds of the networks are the students' (below)
for seed in CFG["seeds"]:
    for task in WANTED:
        ceiling_runs[(f"component {task}", seed)] = supervised_ceiling(
            [task], CFG["component_widths"], CFG["component_epochs"], 100 * seed + 1, seed, f"ceiling: component {task}")
    ceiling_runs[("target", seed)] = supervised_ceiling(WANTED, CFG["target_widths"], CFG["target_epochs"],
                                                        100 * seed + 7, seed, "ceiling: target")
ceiling = {"components": {t: float(np.mean([ceiling_runs[(f"component {t}", s)][t] for s in CFG["seeds"]])) for t in WANTED},
           "target": {t: float(np.mean([ceiling_runs[("target", s)][t] for s in CFG["seeds"]])) for t in WANTED}}
for task in WANTED:
    print(f"{task:>8}: ceiling of its component {ceiling['components'][task]:.4f}, of the target {ceiling['target'][task]:.4f}"
          f"; best source {best_source[task]:.4f}")

# %% [markdown]
# ### A supervised reference with a longer budget (uses labels)
#
# Also not part of the method: the target net's architecture trained with the **labels** of the 4,000 training
# images, all fills, for 30 epochs (a zoo entry, trained once with the sources' recipe). It shows what the
# architecture reaches with a long budget; it is defined for the tasks position & colour only.

# %% tags=["nbval-ignore-output"]
reference_scores = {}
if REFERENCE is not None:
    reference = zoo.obtain(REFERENCE, TEACHERS, device)
    reference_logits = predict_maps(reference, x_test, batch_size=500)
    reference_scores = {task: accuracy(reference_logits[task], y_test[task]) for task in WANTED}
    print(f"{REFERENCE}: " + ", ".join(f"{t} {v:.4f}" for t, v in reference_scores.items()))
else:
    print(f"no supervised reference in the zoo for the tasks {', '.join(WANTED)}")

# %% [markdown]
# ## The experiments
#
# For every seed:
#
# * **stage 1** for every wanted task with the **min-entropy** selection, then **stage 2**, the target net;
# * on the first task (`TASK_A`): the component with the **average** of the sources and with a **random source**
#   per image;
#
# and with `ablations` (the full profile, or `ABLATIONS = "on"`), on the first task: the min-entropy component and
# averaging with the other logit term (the authors' MSE when `LOGIT_LOSS = "kl"`), one **fixed source** (S1 of its group) for every image, the **oracle** selection (labels), **features only**,
# **logits only** and the **regulariser off**.

# %%
LOSS_NAME = {"kl": "KL logits", "mse": "MSE logits (authors')"}
COMPONENT_RUNS = {  # name: (task, selection rule, loss switches)
    **{f"component {task}": (task, "min-entropy", {}) for task in WANTED},
    f"component {TASK_A}, average": (TASK_A, "average", {}),
    f"component {TASK_A}, random source": (TASK_A, "random", {}),
}
if CFG["ablations"]:
    COMPONENT_RUNS |= {
        f"component {TASK_A}, {LOSS_NAME[OTHER_LOSS]}": (TASK_A, "min-entropy", {"logit_loss": OTHER_LOSS}),
        f"component {TASK_A}, average, {LOSS_NAME[OTHER_LOSS]}": (TASK_A, "average", {"logit_loss": OTHER_LOSS}),
        f"component {TASK_A}, fixed S1": (TASK_A, "fixed S1", {}),
        f"component {TASK_A}, oracle (labels)": (TASK_A, "oracle (labels)", {}),
        f"component {TASK_A}, features only": (TASK_A, "min-entropy", {"logits": False}),
        f"component {TASK_A}, logits only": (TASK_A, "min-entropy", {"features": False}),
        f"component {TASK_A}, R off": (TASK_A, "min-entropy", {"regulariser": False}),
    }
print(f"logit term: {LOSS_NAME[LOGIT_LOSS]} (its ablation: {LOSS_NAME[OTHER_LOSS]})")
for name, (task, rule, switches) in COMPONENT_RUNS.items():
    print(f"{name:>52}: task {task}; selection {rule}"
          + "".join(f"; {LOSS_NAME[v]}" if k == "logit_loss" else f"; {k} off" for k, v in switches.items()))

# %% tags=["nbval-ignore-output"]
signals = ({task: {n: [t.cpu() for t in teacher_signals(sources[n], task, check_images_only(X_TRANSFER, IMAGE_SHAPE))]
                   for n in names} for task, names in GROUPS.items()} if CFG["precompute"] else {})
runs, scores = {}, {}
for seed in CFG["seeds"]:
    for name, (task, rule, switches) in COMPONENT_RUNS.items():
        runs[(name, seed)] = train_component(task, rule, seed, signals.get(task), **switches)
        scores[(name, seed)] = {task: accuracy(predict_maps(runs[(name, seed)]["model"].net, x_test, batch_size=500)[task], y_test[task])}
    components = {task: runs[(f"component {task}", seed)]["model"].net for task in WANTED}
    runs[("target", seed)] = train_target(components, seed)
    target_logits = predict_maps(runs[("target", seed)]["model"].net, x_test, batch_size=500)
    scores[("target", seed)] = {task: accuracy(target_logits[task], y_test[task]) for task in WANTED}
del signals


# %% [markdown]
# ## Results
#
# ### Sources, selections, components, target
#
# Test accuracy per wanted task (mean over seeds; ± the standard deviation over seeds in the full profile). The
# sources and the selection rules without training are deterministic; the components, the target, the ceilings and
# the reference are trained (the last two with labels).

# %% tags=["nbval-ignore-output"]
def values(name: str, task: str) -> list[float]:
    """The test accuracies of the student `name` on `task`, one per seed."""
    return [scores[(name, s)][task] for s in CFG["seeds"]]


def cell(vals: list[float]) -> str:
    """A table cell: the mean of `vals`, with the standard deviation when there are several seeds."""
    m, s = mean_std(vals)
    return f"{m:.4f}" + (f" ± {s:.4f}" if len(vals) > 1 else "")


MODEL_NAMES = list(dict.fromkeys(name for name, _ in scores))
table = {}
for task in WANTED:
    column = {f"pool: {k}": f"{v:.4f}" for k, v in pool_rules[task].items()}
    column |= {name: cell(values(name, task)) for name in MODEL_NAMES if task in scores[(name, CFG["seeds"][0])]}
    column |= {f"supervised ceiling: component {task}": cell([ceiling_runs[(f"component {task}", s)][task] for s in CFG["seeds"]]),
               "supervised ceiling: target": cell([ceiling_runs[("target", s)][task] for s in CFG["seeds"]])}
    if reference_scores:
        column["supervised reference (labels, zoo, 30 epochs)"] = f"{reference_scores[task]:.4f}"
    table[task] = column
pd.DataFrame(table).fillna("")

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, len(WANTED), figsize=(4.6 * len(WANTED), 3.4), squeeze=False)
for ax, task in zip(axes[0], WANTED, strict=True):
    labels, heights, errors, colours = [], [], [], []
    for n in GROUPS[task]:
        labels.append(f"source {SHORT[n]}")
        heights.append(pool_rules[task][f"source {SHORT[n]}"])
        errors.append(0.0)
        colours.append("0.55")
    for rule in ("min-entropy", "average"):
        labels.append(f"pool, {rule}")
        heights.append(pool_rules[task][rule])
        errors.append(0.0)
        colours.append("0.8")
    for name in MODEL_NAMES:
        if task in scores[(name, CFG["seeds"][0])]:
            m, s = mean_std(values(name, task))
            labels.append(name.replace(f"component {task}", "component").replace(" (labels)", "\n(labels)"))
            heights.append(m)
            errors.append(s)
            colours.append("C0" if name.startswith("component") else "C3")
    for label, name in (("ceiling:\ncomponent (labels)", f"component {task}"), ("ceiling:\ntarget (labels)", "target")):
        m, s = mean_std([ceiling_runs[(name, seed)][task] for seed in CFG["seeds"]])
        labels.append(label)
        heights.append(m)
        errors.append(s)
        colours.append("C2")
    if reference_scores:
        labels.append("supervised\nreference (labels)")
        heights.append(reference_scores[task])
        errors.append(0.0)
        colours.append("C2")
    ax.bar(range(len(labels)), heights, yerr=errors, color=colours, capsize=2)
    ax.axhline(best_source[task], color="k", ls="--", lw=0.8, label="best source")
    ax.axhline(1 / len(ATTRIBUTE_VALUES[task]), color="r", ls=":", lw=0.8, label="chance")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Training curves
#
# The stage-1 loss terms of the min-entropy components and the stage-2 loss of the target net, per epoch (first
# seed). The regulariser $R$ starts high (the bridges start with random rows, far from unit norm) and is driven to
# almost zero within the first epochs.

# %% tags=["nbval-ignore-output"]
seed0 = CFG["seeds"][0]
curves = {f"component {task}": runs[(f"component {task}", seed0)]["history"] for task in WANTED}
curves["target"] = runs[("target", seed0)]["history"]
fig, axes = plt.subplots(1, len(curves), figsize=(3.3 * len(curves), 2.6), squeeze=False)
for ax, (name, history) in zip(axes[0], curves.items(), strict=True):
    for key in ("train_feature", "train_logit", "train_R"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], "o-", ms=3, label=key.removeprefix("train_"))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
plt.show()
for name, history in curves.items():
    print(f"{name:>20}, last epoch: " + ", ".join(f"{k.removeprefix('train_')} {v[-1]:.4f}" for k, v in history.items()
                                                    if k.startswith("train_")))

# %% [markdown]
# ### The regulariser: bridge-row norms with and without $R$
#
# The squared norm of every output row of the source-side bridges of the first task's component, for each tap,
# after training with $R$ and, with `ablations` (the full profile or `ABLATIONS = "on"`), without it. With $R$ the rows
# sit near 1; without it nothing holds them there.

# %% tags=["nbval-ignore-output"]
bridge_runs = {"with R": f"component {TASK_A}", "R off": f"component {TASK_A}, R off"}
norms = {label: [torch.cat([bridge_row_norms(b[i]) for b in runs[(name, seed0)]["model"].source_bridges]
                           ).detach().cpu().numpy() for i in range(N_TAPS)]
         for label, name in bridge_runs.items() if (name, seed0) in runs}
fig, ax = plt.subplots(figsize=(5.2, 2.8))
for j, (label, per_tap) in enumerate(norms.items()):
    for i, v in enumerate(per_tap):
        pos = i + (j - 0.5) * 0.35
        ax.scatter(np.full(len(v), pos) + np.linspace(-0.08, 0.08, len(v)), v, s=6, color=f"C{j}",
                   label=label if i == 0 else None)
ax.axhline(1.0, color="k", lw=0.8, ls="--")
ax.set_xticks(range(len(CFG["bridge_widths"])), [f"tap {i + 1}" for i in range(len(CFG["bridge_widths"]))])
ax.set_ylabel("squared row norm")
ax.set_yscale("log")
ax.legend(fontsize=7)
ax.set_title(f"source-side bridges of the {TASK_A} component", fontsize=9)
fig.tight_layout()
plt.show()
row_norm_summary = {label: {"median": float(np.median(np.concatenate(v))), "min": float(np.min(np.concatenate(v))),
                            "max": float(np.max(np.concatenate(v)))} for label, v in norms.items()}
print("squared row norms:", "; ".join(f"{k}: median {v['median']:.2f} (min {v['min']:.2f}, max {v['max']:.2f})"
                                      for k, v in row_norm_summary.items()))

# %% [markdown]
# ### Parameters
#
# Fixed by the construction (nothing here depends on training): the sources, each component, the components together
# and the target net. The bridges are used only in training and are not part of any deployed network.

# %%
component_params = {task: count_parameters(ComponentAmalgamation(task, GROUPS[task], seed=0).net) for task in WANTED}
target_params = count_parameters(TargetAmalgamation(WANTED, seed=0).net)
components_params = sum(component_params.values())
group_sources = list(dict.fromkeys(n for task in WANTED for n in GROUPS[task]))
sources_params = sum(count_parameters(sources[n]) for n in group_sources)
param_lines = [(f"source {SHORT[n]} ({' & '.join(SOURCE_TASKS[n])}, {SOURCE_ARCH[n]})", count_parameters(sources[n]))
               for n in group_sources]
param_lines += [("sources used, together", sources_params)]
param_lines += [(f"component {task}", p) for task, p in component_params.items()]
param_lines += [("components together", components_params), (f"target {' & '.join(WANTED)}", target_params)]
for label, p in param_lines:
    print(f"{label:<44}{p:>9,}")
print(f"target / components together: {target_params / components_params:.0%}; widths: component "
      f"{CFG['component_widths']}, target {CFG['target_widths']}")

# %% [markdown]
# ### Paper vs this run
#
# The paper's numbers could not be read (and the authors' code reports none), so only the pattern of the abstract is
# compared: a student customised from heterogeneous teachers, better than the teachers on their own tasks.

# %% tags=["nbval-ignore-output"]
results_rows = []
for task in WANTED:
    results_rows += [
        (f"{task}: best source", "", best_source[task], 0.0),
        (f"{task}: pool, min-entropy (no training)", "", pool_rules[task]["min-entropy"], 0.0),
        (f"{task}: component (min-entropy)", "better than the teachers", *mean_std(values(f"component {task}", task))),
        (f"{task}: target", "better than the teachers", *mean_std(values("target", task))),
        (f"{task}: supervised ceiling, component (labels)", "(not in the paper)",
         *mean_std([ceiling_runs[(f"component {task}", s)][task] for s in CFG["seeds"]])),
        (f"{task}: supervised ceiling, target (labels)", "(not in the paper)",
         *mean_std([ceiling_runs[("target", s)][task] for s in CFG["seeds"]])),
    ]
    if reference_scores:
        results_rows.append((f"{task}: supervised reference (labels)", "(not in the abstract)", reference_scores[task], 0.0))
results_rows.append(("target parameters / components together", "(not in the abstract)",
                     target_params / components_params, 0.0))
pd.DataFrame(results_rows, columns=["quantity", "paper (pattern)", f"this run (mean of {len(CFG['seeds'])})",
                                    "std"]).round(4)

# %% [markdown]
# ## Claims
#
# Checked with rules and tolerances fixed before the first run, from the research notes' rule for `shapes`: an
# accuracy on $n$ test images has a standard error of $\sqrt{p(1-p)/n}$, about 1.1<!-- fixed -->–1.6<!-- fixed --> points at $n = 1000$ (quick)
# and 0.35<!-- fixed -->–0.5<!-- fixed --> at $n = 10\,000$ (full); small nets vary 1–2 points between seeds. "Matches" means at least the
# reference minus 2 points (quick, one seed) or minus 1 point on the mean over seeds (full); "beats" (full only)
# means the mean over three seeds is above the reference and at least 2 of 3 seeds are.
#
# 1. **Low entropy marks correct predictions**: AUROC($-H$ → correct) ≥ 0.70<!-- m: tolerances.auroc_min --> for every source of every wanted task.
# 2. **The min-entropy selection is at least as good as the best single source** (per task, the pool's answer
#    without training; "matches").
# 3. **The component matches the best source on its task** (quick), **beats** it (full).
# 4. **Selective learning is not worse than averaging the sources** (first task): the min-entropy component is at
#    least the averaging component minus 1 point (mean over seeds). This may fail, and is reported either way.
# 5. **Selective learning is not worse than a random source per image** (first task), with the same 1-point tolerance.
# 6. **The target net matches each component on its task.**
# 7. **The target has fewer parameters than the components together** (deterministic).
# 8. Full profile only, the abstract's headline: **the target beats the best source on every wanted task** ("beats").
#
# **Which claims this run can test** is decided by the supervised ceilings measured above, with each claim's own
# tolerance (`kae_utils.methods.amalgamation.ceiling_reaches`): claim 3 where the component's ceiling reaches the best source
# (in the full profile: at least equals it, as "beats" has no tolerance); claims 4 and 5, which compare ways of
# teaching the first task's component, where that component's ceiling reaches the best source, since below it every
# component is held back by the budget, not by what it is taught; claim 6 where the target's ceiling reaches the
# component; claim 8 where the target's ceiling at least equals the best source. Claims 1, 2 and 7 train nothing and
# are always testable. An untestable claim is still checked and printed, marked `(untestable here: ...)`.

# %%
MATCH_TOL = 0.02 if PROFILE == "quick" else 0.01  # "matches": at least the reference minus this
AUROC_MIN = 0.70  # claim 1
SELECTION_TOL = 0.01  # claims 4 and 5: min-entropy vs averaging and vs a random source


def matches(vals: list[float], reference: float) -> bool:
    """Whether the mean of `vals` is at least `reference` minus the match tolerance."""
    return bool(np.mean(vals) >= reference - MATCH_TOL)


def beats(vals: list[float], reference: float) -> bool:
    """Whether the mean of `vals` is above `reference` and at least two seeds are."""
    return bool(np.mean(vals) > reference and sum(v > reference for v in vals) >= 2)


def seeds_text(vals: list[float]) -> str:
    """The mean of `vals` in words, with the per-seed values when there are several."""
    return f"{np.mean(vals):.4f}" + (f" (per seed {', '.join(f'{v:.4f}' for v in vals)})" if len(vals) > 1 else "")


component = {task: values(f"component {task}", task) for task in WANTED}
target = {task: values("target", task) for task in WANTED}
averaging, random_source = values(f"component {TASK_A}, average", TASK_A), values(f"component {TASK_A}, random source", TASK_A)
# what the ceilings allow this run to test (each with the claim's own tolerance; "beats" has none)
component_tol = 0.0 if PROFILE == "full" else MATCH_TOL
component_testable = {task: ceiling_reaches(ceiling["components"][task], best_source[task], tolerance=component_tol)
                      for task in WANTED}
target_testable = {task: ceiling_reaches(ceiling["target"][task], float(np.mean(component[task])), tolerance=MATCH_TOL)
                   for task in WANTED}
untestable_component = {task: "" if component_testable[task] else
                        f"the supervised ceiling of the {task} component is below the best source" for task in WANTED}
untestable_selection = "" if component_testable[TASK_A] else (
    f"the supervised ceiling of the {TASK_A} component is below the best source, so every way of teaching it is held "
    "back by the budget")
untestable_target = {task: "" if target_testable[task] else
                     f"the target's supervised ceiling on {task} is below the component" for task in WANTED}
ceiling_text = {task: f"; ceilings: component {ceiling['components'][task]:.4f}, target {ceiling['target'][task]:.4f}"
                for task in WANTED}
claims = [
    Claim("low entropy marks correct predictions for every source", bool(min(auroc.values()) >= AUROC_MIN),
          "AUROC " + ", ".join(f"{SHORT[n]} on {t} {v:.3f}" for (t, n), v in auroc.items()) + f" (needs >= {AUROC_MIN})",
          effect=Effect("AUROC of low entropy for a correct prediction, worst source", min(auroc.values()), AUROC_MIN)),
]
claims += [
    Claim(f"the min-entropy selection is at least as good as the best single source on {task}",
          bool(pool_rules[task]["min-entropy"] >= best_source[task] - MATCH_TOL),
          f"min-entropy {pool_rules[task]['min-entropy']:.4f} vs best source {best_source[task]:.4f} (tolerance {MATCH_TOL})",
          effect=Effect(f"min-entropy selection - best source, {task} accuracy",
                        pool_rules[task]["min-entropy"] - best_source[task], -MATCH_TOL))
    for task in WANTED
]
verb = "beats" if PROFILE == "full" else "matches"
claims += [
    Claim(f"the {task} component {verb} the best source on {task}",
          beats(component[task], best_source[task]) if PROFILE == "full" else matches(component[task], best_source[task]),
          f"component {seeds_text(component[task])} vs best source {best_source[task]:.4f}"
          + ("" if PROFILE == "full" else f" (tolerance {MATCH_TOL})") + ceiling_text[task],
          untestable=untestable_component[task],
          effect=Effect(f"component - best source, {task} accuracy" + (" (strictly above, 2 seeds of 3)" if PROFILE == "full" else ""),
                        np.mean(component[task]) - best_source[task], 0.0 if PROFILE == "full" else -MATCH_TOL))
    for task in WANTED
]
claims += [
    Claim(f"selective learning is not worse than averaging the sources on {TASK_A}",
          bool(np.mean(component[TASK_A]) >= np.mean(averaging) - SELECTION_TOL),
          f"min-entropy {seeds_text(component[TASK_A])} vs average {seeds_text(averaging)} (tolerance {SELECTION_TOL})"
          + ceiling_text[TASK_A], untestable=untestable_selection,
          effect=Effect(f"min-entropy - averaging, {TASK_A} component accuracy",
                        np.mean(component[TASK_A]) - np.mean(averaging), -SELECTION_TOL)),
    Claim(f"selective learning is not worse than a random source per image on {TASK_A}",
          bool(np.mean(component[TASK_A]) >= np.mean(random_source) - SELECTION_TOL),
          f"min-entropy {seeds_text(component[TASK_A])} vs random {seeds_text(random_source)} (tolerance {SELECTION_TOL})"
          + ceiling_text[TASK_A], untestable=untestable_selection,
          effect=Effect(f"min-entropy - random source, {TASK_A} component accuracy",
                        np.mean(component[TASK_A]) - np.mean(random_source), -SELECTION_TOL)),
]
claims += [
    Claim(f"the target net matches the {task} component on {task}", matches(target[task], np.mean(component[task])),
          f"target {seeds_text(target[task])} vs component {np.mean(component[task]):.4f} (tolerance {MATCH_TOL})"
          + ceiling_text[task], untestable=untestable_target[task],
          effect=Effect(f"target - component, {task} accuracy", np.mean(target[task]) - np.mean(component[task]), -MATCH_TOL))
    for task in WANTED
]
claims.append(Claim("the target net has fewer parameters than the components together",
                    bool(target_params < components_params), f"target {target_params} vs components {components_params}",
                    effect=Effect("target / components together, parameters (strictly below)",
                                  target_params / components_params, 1.0, "at most")))
if PROFILE == "full":
    claims += [
        Claim(f"the target net beats the best source on {task}", beats(target[task], best_source[task]),
              f"target {seeds_text(target[task])} vs best source {best_source[task]:.4f}" + ceiling_text[task],
              untestable="" if ceiling_reaches(ceiling["target"][task], best_source[task], tolerance=0.0) else
              f"the target's supervised ceiling on {task} is below the best source",
              effect=Effect(f"target - best source, {task} accuracy (strictly above, 2 seeds of 3)",
                            np.mean(target[task]) - best_source[task], 0.0))
        for task in WANTED
    ]
report = check_claims(claims)

# %%
metrics = {
    "headline": ("; ".join(f"{t} target {np.mean(target[t]):.1%} vs component {np.mean(component[t]):.1%} vs best source "
                           f"{best_source[t]:.1%}" for t in WANTED)
                 + f"; target {target_params / components_params:.0%} of the components' parameters"),
    "wanted_tasks": WANTED,
    "groups": {task: [SHORT[n] + " " + n for n in names] for task, names in GROUPS.items()},
    "auroc": {f"{SHORT[n]} {t}": v for (t, n), v in auroc.items()},
    "pool_rules": pool_rules,
    "best_source": best_source,
    "ceiling": ceiling,
    "ceiling_per_seed": [{"model": name, "seed": seed, **vals} for (name, seed), vals in ceiling_runs.items()],
    "supervised_reference": reference_scores,
    "scores": [{"model": name, "seed": seed, **vals} for (name, seed), vals in scores.items()],
    "selection_share": share_rows,
    "bridge_row_norms": row_norm_summary,
    "parameters": {"components": component_params, "components_together": components_params, "target": target_params,
                   **{f"source {SHORT[n]}": count_parameters(sources[n]) for n in group_sources}},
    "tolerances": {"match": MATCH_TOL, "auroc_min": AUROC_MIN, "selection": SELECTION_TOL},
    "transfer_images": len(X_TRANSFER),
    "logit_loss": LOGIT_LOSS,
    "seeds": CFG["seeds"],
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, TEACHERS=TEACHERS, TASKS=TASKS,
                  LOGIT_LOSS=LOGIT_LOSS, ABLATIONS=ABLATIONS, EPOCH_SCALE=EPOCH_SCALE)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### How this experiment was sized
#
# The supervised ceilings were measured first, before the claims, and the experiment was changed until they
# reached the teachers within each claim's tolerance: on the 4,000 training images alone, the position component's
# architecture trained with labels stayed far below the best source, so claims 3–6 could not be tested. Three
# changes followed: **8,000 transfer images** (4,000 generated beyond the training split; amalgamation needs no
# labels), **batch 64** (twice the steps per epoch) and the **KL logit term** (below and in the notes on fidelity).
# With 6 + 6 epochs the notebook took over the 180 s budget of the quick profile, so the cheaper budgets were
# measured on the ceilings alone, without looking at the claims, and the cheapest one whose ceilings still reach
# the teachers was kept: **4 epochs per component, 6 for the target**, with the authors'-MSE component moved to the
# ablations of the full profile. Every configuration tried, with its ceilings, claims and wall time, is in the
# [decisions log](../docs/decisions.md#notebook-05-adaptive-amalgamation).
#
# The position component's ceiling sits on its bound. In this run (float32) it reaches 69.2 %<!-- m: 100 * ceiling.components.position -->, against the
# 69.2 %<!-- m: 100 * (best_source.position - tolerances.match) --> it needs, and falls short of it in the unrounded values, so claim 3 on position and the two
# selection claims are untestable here; in the bf16 run stored before, it cleared the bound by a hair and they were
# testable (the notes on fidelity say why this notebook now computes in float32).
#
# ### What the claims say on this data
#
# On the quick profile (one seed; 8,000 unlabeled transfer images; 4 epochs per component and 6 for the target)
# seven of the ten checks hold; three, those that need the position component's ceiling, are untestable here (above).
# The selection behaves as the paper says and selective learning is about as good as learning from all the sources;
# what fails is the target net, which stays well below its components although its architecture could reach them
# with labels in the same budget.
#
# - **Entropy marks correct predictions (claim 1 holds)**: AUROC 0.72<!-- m: auroc["S1 position"] --> (S1) and 0.77<!-- m: auroc["S2 position"] --> (S2) on position, 0.88<!-- m: auroc["S3 colour"] --> (S3) and
#   0.88<!-- m: auroc["S4 colour"] --> (S4) on colour.
# - **The min-entropy choice, without training, is as good as the best source (claim 2 holds)**: 72.1 %<!-- m: 100 * pool_rules.position["min-entropy"] --> on position
#   (best source S2: 71.2 %<!-- m: 100 * best_source.position -->) and 90.3 %<!-- m: 100 * pool_rules.colour["min-entropy"] --> on colour (S4: 88.5 %<!-- m: 100 * best_source.colour -->). Averaging the sources' probabilities does a little
#   better (73.1 %<!-- m: 100 * pool_rules.position["average"] -->, 91.1 %<!-- m: 100 * pool_rules.colour["average"] -->), and the oracle (labels) shows the room that entropy does not find (82.0 %<!-- m: 100 * pool_rules.position["oracle (labels)"] -->, 94.0 %<!-- m: 100 * pool_rules.colour["oracle (labels)"] -->). The
#   choice follows the fill split, partly: S1 is chosen on 12 %<!-- m: 100 * pick(selection_share, task="position", source="S1", fill="solid")["share chosen"] --> and 9 %<!-- m: 100 * pick(selection_share, task="position", source="S1", fill="stripes")["share chosen"] --> of the images of its own fills (solid,
#   stripes) and on 3 %<!-- m: 100 * pick(selection_share, task="position", source="S1", fill="checker")["share chosen"] --> of the others; S3 on 63 %<!-- m: 100 * pick(selection_share, task="colour", source="S3", fill="solid")["share chosen"] --> and 24 %<!-- m: 100 * pick(selection_share, task="colour", source="S3", fill="checker")["share chosen"] --> of its fills (solid, checker) and on 15 %<!-- m: 100 * pick(selection_share, task="colour", source="S3", fill="stripes")["share chosen"] --> and 13 %<!-- m: 100 * pick(selection_share, task="colour", source="S3", fill="dots")["share chosen"] --> of the
#   others. But the ResNet S2 is confident everywhere and teaches most of the position images; the fill split hardly
#   hurt it, so on position there is little to select.
# - **The colour component matches the best source, the position component does not (claim 3: one of two)**: colour
#   88.6 %<!-- m: 100 * pick(scores, model="component colour")["colour"] --> against 88.5 %<!-- m: 100 * best_source.colour -->, position 67.5 %<!-- m: 100 * pick(scores, model="component position")["position"] --> against 71.2 %<!-- m: 100 * best_source.position --> (needs 69.2 %<!-- m: 100 * (best_source.position - tolerances.match) -->). The position component is 1.7<!-- m: 100 * (ceiling.components.position - pick(scores, model="component position").position) --> points below
#   its own ceiling (69.2 %<!-- m: 100 * ceiling.components.position -->), which is itself 2.0<!-- m: 100 * (best_source.position - ceiling.components.position) --> points below the best source: at this budget the claim
#   is untestable (the ceiling misses the bound), and the student is further below. With 6 epochs it reached the best source (the decisions log).
# - **Selective learning is not worse than averaging or a random source (claims 4 and 5 hold, untestable here)**: on position the
#   min-entropy component reaches 67.5 %<!-- m: 100 * pick(scores, model="component position")["position"] -->, the one taught by both sources on every image 68.4 %<!-- m: 100 * pick(scores, model="component position, average")["position"] -->, the one taught by a
#   random source per image 67.1 %<!-- m: 100 * pick(scores, model="component position, random source")["position"] -->. With the KL logit term the large gaps of the earlier runs with MSE (min-entropy
#   several points behind averaging and behind a random source) are gone; averaging stays ahead by less than a point
#   (see the notes on fidelity).
# - **The target net does not match its components (claim 6 fails on both tasks)**: 62.4 %<!-- m: 100 * pick(scores, model="target")["position"] --> against 67.5 %<!-- m: 100 * pick(scores, model="component position")["position"] --> on
#   position and 86.0 %<!-- m: 100 * pick(scores, model="target")["colour"] --> against 88.6 %<!-- m: 100 * pick(scores, model="component colour")["colour"] --> on colour, while the target's architecture trained with labels in the same
#   6 epochs reaches 69.7 %<!-- m: 100 * ceiling.target.position --> and 90.7 %<!-- m: 100 * ceiling.target.colour -->. This is a finding about stage 2 here, not about the budget. Stage 2 keeps the
#   authors' MSE on the components' logits and regresses every component's features through target-side bridges
#   only; hypothesis (not tested here): the same weakness of a logit MSE that held back stage 1 (see the notes) holds
#   back stage 2, whose teachers are the components' logits.
# - **Fewer parameters (claim 7 holds)**: the target has 21,780 parameters, the two components together 27,639
#   (79 %<!-- m: 100 * parameters.target / parameters.components_together -->); the four sources used hold 101,444.
# - **The regulariser** keeps the source-side bridge rows at unit norm (median squared norm 0.98<!-- m: bridge_row_norms["with R"].median -->). Without it
#   (`-p ABLATIONS on`, not run here) the rows collapsed towards zero in an earlier run, without costing accuracy
#   (the [decisions log](../docs/decisions.md#notebook-05-adaptive-amalgamation) has its numbers).
#
# The claims and their tolerances were written before the first run and have not been changed; how the notebook's
# nets, epochs and loss normalisation changed before that sizing is in the decisions log as well.

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **The paper's body could not be read.** Only its abstract and introduction were available. The method is taken
#   from them and from the authors' public code in KAmalEngine (`kamal/amalgamation/customize_attribute.py`,
#   `examples/amalgamation/customize_ka`). Every loss and schedule detail is an **assumption (authors' code)**: the
#   1×1 bridges on both sides per source in stage 1 and on the target side only in stage 2, the pre-activation taps,
#   MSE on features, MSE on logits in stage 2 (stage 1: see the next note), the unit-norm regulariser on the source-side bridges in stage 1 only,
#   the selection done once before training on the task's own logits. No paper numbers are available here.
# - **KL instead of the authors' MSE on the logits of stage 1** (a deviation, `LOGIT_LOSS = "kl"`; `"mse"` restores
#   the code's loss). With MSE, the least ambiguous source's logits are the largest, so the selection rules differ
#   mostly in the size of the targets; in audits on position (the numbers are in the
#   [decisions log](../docs/decisions.md#notebook-05-adaptive-amalgamation)) KL gave every rule a better component
#   than MSE, and the min-entropy rule no longer fell behind averaging. In the quick profile stored here the
#   MSE component is not run (time budget); the full profile and `-p ABLATIONS on` run it beside the KL one. Stage 2
#   keeps the code's MSE.
# - **Bugs of the code not copied**: the regulariser is added once per source, not once per tap (the code's class
#   variant); the learning-rate schedule is stepped per epoch (the code's MultiStepLR is stepped per iteration); one
#   optimiser per stage (the code's attribute stage 2 schedules the stage-1 optimiser); every component is trained (the
#   code's `range(3, ...)` trains only the fourth).
# - **Not used**: the learnable logit scale $m$ of the code's attribute variant (initialised to 1, learning rate
#   $10^{-6}$, so it barely moves); the code's class variant does not use it either.
# - **One loader with per-image weights** instead of one loader per source: each image's loss counts once in the batch
#   mean, under the source its weights name. In the code each source draws a batch of its own images, so a source
#   chosen for few images weighs as much per step as one chosen for many; an earlier version of this notebook copied
#   that (each source's term normalised by its share of the batch), with the same outcome of the claims (decisions log).
#   The same machinery gives the averaging, random, fixed and oracle baselines (not in the code).
# - **Data and networks**: `shapes` attributes instead of CelebA attributes (single-label softmax tasks on both) and
#   the Stanford Dogs / CUB / Cars / Aircraft class splits; tiny ConvNets and ResNets of three stages instead of
#   ImageNet-pretrained ResNet-18s; three taps (the stages) instead of five (stem and four layers); bridge width half
#   the component's width at each tap, as in the code.
# - **The fill split is our addition**: the paper's sources differ by task set and architecture; ours also see only
#   two of the four fill patterns each, so that their reliability varies per image. A pool without the split is left
#   as an exercise.
# - **Sources' data**: the zoo trains the sources with labels on the training split of `shapes` (their two fills),
#   which is also the students' transfer set without labels, as the code reuses the sources' training images.
# - **Transfer set**: the code's component stage reuses the sources' training images; the quick profile adds 4,000
#   generated images beyond its 4,000 training images (8,000, unlabeled), because with 4,000 no training of the
#   component's architecture, even with labels, reached the best source (see "How this experiment was sized").
# - **Budgets**: Adam with a cosine schedule, the same learning rate for networks and bridges (the code uses Adam with
#   separate rates, batch 64, and 50 epochs per stage); the quick profile trains each component for 4 epochs and the
#   target for 6, at batch 64, and leaves the authors'-MSE component and the other ablations to the full profile
#   (`ABLATIONS = "on"` runs them here).
# - **The supervised ceiling** (the students' architectures trained with labels for the same budget) is not in the
#   paper; it decides which claims a run can test.
# - **Numerics: float32** (`PRECISION = "fp32"`), where most notebooks use bf16 autocast on a CPU that runs it
#   natively. `make bench-precision` ran this notebook both ways from a cold cache: the verdicts were the same (7 of
#   10), but the position component's ceiling cleared its bound by a hair in bf16 and missed it in float32, so three
#   claims were testable in one and untestable in the other, and the sources' accuracies moved in the third decimal.
#   Stored outputs that depend on the reader's CPU would fail `make test` on a machine without bf16, so this notebook
#   computes in float32 everywhere; the choice was made after that measurement, by the rule applied to every notebook
#   whose claims block differed (03 and 05). The bf16 run's numbers are in `results/precision_quick.tsv` and the
#   [decisions log](../docs/decisions.md#notebook-05-adaptive-amalgamation).
# - **Seeds**: the quick profile is one seed; the full profile reports the mean and standard deviation over three seeds
#   of the students (the zoo's sources are one seed each). The full profile needs the zoo's full-profile sources,
#   built on a GPU by `make zoo` first.
#
# ## Exercises
#
# 1. Customise other tasks: `-p TASKS size,colour` (size is known by S2 and S4) or `-p TASKS position,colour,size`.
# 2. Remove the fill split from the pool (a zoo entry without `where`): does selection still matter when every source
#    saw every kind of image?
# 3. Select per image *and* per batch: weight the sources by $\mathrm{softmax}(-H/\tau)$ instead of the hard argmin.
#    Where between min-entropy ($\tau \to 0$) and averaging ($\tau \to \infty$) is the best $\tau$?
# 4. Put the regulariser on both sides of the stage-1 bridges, or drop it (`R off`): what happens to the feature loss
#    and to the component's accuracy?
# 5. Add the learnable logit scale $m$ of the code's attribute variant with a normal learning rate.
#
# ## References
#
# - C. Shen, M. Xue, X. Wang, J. Song, L. Sun, M. Song. *Customizing Student Networks From Heterogeneous Teachers via
#   Adaptive Knowledge Amalgamation.* ICCV 2019, pp. 3504–3513; arXiv:1908.07121.
# - KAmalEngine (the authors' code: `kamal/amalgamation/customize_class.py`, `customize_attribute.py`,
#   `examples/amalgamation/customize_ka`): https://github.com/zju-vipa/KamalEngine
# - C. Shen, X. Wang, J. Song, L. Sun, M. Song. *Amalgamating Knowledge towards Comprehensive Classification.*
#   AAAI 2019 (notebook 02: feature amalgamation with 1×1 convolutions).
# - Z. Liu, P. Luo, X. Wang, X. Tang. *Deep Learning Face Attributes in the Wild.* ICCV 2015 (CelebA).
