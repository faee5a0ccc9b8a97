# %% [markdown]
# # 01 · Knowledge distillation
#
# **Hinton, Vinyals & Dean (2015). *Distilling the Knowledge in a Neural Network*.** NIPS Deep Learning
# Workshop. [arXiv:1503.02531](https://arxiv.org/abs/1503.02531)
#
# A large, well-regularised *teacher* is accurate but expensive. Hinton et al. train a small *student* to
# match the teacher's **soft targets**: the teacher's class probabilities computed at a raised
# *temperature* $T$, which expose how the teacher ranks the wrong classes (a "2" that looks a bit like a
# "7"). These relative probabilities, the "dark knowledge", carry much more information per example than
# a one-hot label, so the student generalises better than the same network trained on the labels alone,
# and it can even recognise a class it never saw during distillation.
#
# Every amalgamation notebook in this repository builds on this idea: a student learns from teachers'
# outputs instead of from labels.
#
# **What you will see**
#
# 1. The offline data (scikit-learn's real 8×8 handwritten digits) standing in for MNIST.
# 2. A convolutional teacher trained on jittered images, and soft targets at several temperatures.
# 3. The distillation loss, and a numerical check that at high $T$ it reduces to matching logits.
# 4. The same small MLP trained from labels alone and by distillation.
# 5. A temperature sweep.
# 6. The "missing digit" experiment: a digit removed from the transfer set, recognised anyway after a
#    bias correction.
# 7. The paper's claims checked against this run.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `kae run 01 -p TEMPERATURE 4 -p SEED 1`. Values that depend on them are derived in the
# cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, about a minute; "full": paper scale, 3 seeds (meant for a GPU)
SEED: int = 0  # base seed; the full profile uses SEED, SEED + 1, SEED + 2
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "digits"  # offline data set; "digits": scikit-learn's 8x8 handwritten digits
TEMPERATURE: float = 20.0  # distillation temperature T of the main student (the paper used 20 on MNIST)
ALPHA: float = 0.9  # weight of the soft-target term; (1 - ALPHA) weighs the hard-label term
MISSING_DIGIT: int = 3  # digit left out of the transfer set in the dark-knowledge experiment
BIAS_SHIFT: float = 3.5  # logit bias added to the missing digit afterwards (the paper's value)
TEACHERS: str = "zoo"  # "zoo": load the trained teacher shipped in zoo/; "train": retrain it with the zoo's recipe

# %%
from kae_utils.core.params import check_choice, check_common_parameters, check_number
from kae_utils.core.scale import profile_settings

SUPPORTED_DATASETS = ("digits",)  # the teacher and student sizes below are for 8x8 grey digits
check_common_parameters(PROFILE, DEVICE, SEED, dataset=DATASET, datasets=SUPPORTED_DATASETS, teachers=TEACHERS)
check_choice("MISSING_DIGIT", MISSING_DIGIT, range(10))
check_number("TEMPERATURE", TEMPERATURE, positive=True)
check_number("ALPHA", ALPHA, minimum=0, maximum=1)
check_number("BIAS_SHIFT", BIAS_SHIFT)

NOTEBOOK = "01_knowledge_distillation"
SETTINGS = {
    "quick": dict(
        seeds=[SEED],
        teacher="digits-kd-convnet32",  # a zoo entry
        student_widths=(128, 128), student_epochs=100,
        temperatures=(1, 2, 4, 8, 20),
    ),
    "full": dict(
        seeds=[SEED, SEED + 1, SEED + 2],
        teacher="digits-kd-convnet64",
        student_widths=(128, 128), student_epochs=300,
        temperatures=(1, 2, 3, 4, 6, 8, 12, 20, 40),
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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import kae_utils.methods.distillation
from kae_utils import zoo
from kae_utils.data import load_digits
from kae_utils.display.progress import progress
from kae_utils.display.source import show_source
from kae_utils.display.viz import plot_confusion, plot_curves, sample_grid
from kae_utils.evaluation.metrics import accuracy, confusion_matrix
from kae_utils.evaluation.results import Claim, Effect, check_claims, write_metrics
from kae_utils.methods.distillation import kd_loss, soft_targets
from kae_utils.models import build_model, count_parameters
from kae_utils.notebook import setup_notebook
from kae_utils.training import numerics
from kae_utils.training.predict import predict_logits
from kae_utils.training.trainer import Trainer

device = setup_notebook(SEED, DEVICE)
print("device type:", device.type)
print(numerics.describe())  # bf16 autocast where the hardware runs it natively; KAE_PRECISION=fp32 forces float32

# %% [markdown]
# ## Data: `digits` stands in for MNIST
#
# The paper distils on MNIST (60,000 training images of 28×28 pixels). MNIST cannot be downloaded here, so
# we use scikit-learn's `digits`: 1,797 real handwritten digits of 8×8 pixels with 16 grey levels, split
# once, stratified by class, into halves for training and testing (the split does not depend on `SEED`).
#
# What is lost: about 1/70 of the training data and much lower resolution. The training set is also the
# **transfer set** on which the student is distilled, so the student sees ~900 images instead of 60,000;
# expect the effects to be smaller and noisier than in the paper (one test image is 0.11 %<!-- fixed -->).

# %%
data = load_digits(size=8, test_fraction=0.5, seed=0)
NUM_CLASSES = data.num_classes
print(f"train: {tuple(data.x_train.shape)}  test: {tuple(data.x_test.shape)}  classes: {NUM_CLASSES}")
print("train images per class:", data.y_train.bincount().tolist())

# %%
first_of_each = torch.stack([torch.nonzero(data.y_train == c)[:4, 0] for c in range(NUM_CLASSES)], 1).flatten()
sample_grid(data.x_train[first_of_each], data.y_train[first_of_each], ncols=10, size=0.8)
plt.show()

# %% [markdown]
# ## The teacher
#
# The paper's teacher was a large MLP (two hidden layers of 1,200 units) regularised with dropout and
# trained on images jittered by up to two pixels; it made 67 test errors on MNIST. Ours is a small
# convolutional net (three conv–BN–ReLU stages) trained from random weights on the training images plus
# randomly shifted copies (±1 pixel on 8×8 images). What matters for distillation is the same: a teacher that
# is more accurate than the student can be on its own.
#
# The teacher is an entry of the repository's **model zoo** (`kae_utils.zoo`): trained once from the recipe
# below (`make zoo`) and shipped in `zoo/` with its hash, so the notebook spends its minutes on distillation.
# With `TEACHERS = "train"` it is retrained here from the same recipe (the learning curve shown below is
# the zoo's record of the shipped teacher).

# %% tags=["nbval-ignore-output"]
teacher = zoo.obtain(CFG["teacher"], TEACHERS, device)
teachers = {seed: teacher for seed in CFG["seeds"]}  # one teacher; the seeds vary the students
history = zoo.record(CFG["teacher"])["history"]  # per epoch: training loss, held-out (test) accuracy
teacher_histories = {seed: {"train_loss": history["train_loss"], "val_acc": history["val_accuracy"]}
                     for seed in CFG["seeds"]}
print("teacher:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
pd.DataFrame(zoo.summary([CFG["teacher"]])).set_index("entry")

# %% tags=["nbval-ignore-output"]
teacher_logits_test = {s: predict_logits(t, data.x_test) for s, t in teachers.items()}
teacher_acc = {s: accuracy(z, data.y_test) for s, z in teacher_logits_test.items()}
print(f"teacher parameters: {count_parameters(teachers[CFG['seeds'][0]]):,}")
pd.DataFrame({"seed": list(teacher_acc), "test accuracy": list(teacher_acc.values()),
              "test errors": [round((1 - a) * len(data.y_test)) for a in teacher_acc.values()]})

# %% [markdown]
# ## Soft targets
#
# The teacher's logits $z_i$ become probabilities with a temperature:
#
# $$q_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}.$$
#
# At $T = 1$ a confident teacher puts almost all mass on one class; raising $T$ reveals the ratios
# between the small probabilities, i.e. which wrong classes the teacher finds plausible.

# %%
show_source(soft_targets)

# %%
example = 0
z_example = teacher_logits_test[CFG["seeds"][0]][example]
fig, axes = plt.subplots(1, 4, figsize=(12, 2.4), gridspec_kw={"width_ratios": [0.6, 1, 1, 1]})
axes[0].imshow(data.x_test[example, 0], cmap="gray_r")
axes[0].set_title(f"label {data.y_test[example].item()}")
axes[0].axis("off")
for ax, T in zip(axes[1:], (1, 4, 20), strict=True):
    ax.bar(range(NUM_CLASSES), soft_targets(z_example, T).numpy())
    ax.set_title(f"T = {T}")
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_ylim(0, 1)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The distillation loss
#
# The student's logits $v_i$ give $p_i = \mathrm{softmax}(v / T)_i$ at the same temperature. The loss mixes
# the soft-target term and the usual cross-entropy with the labels:
#
# $$L = \alpha\, T^2\, \mathrm{KL}\big(q \,\|\, p\big) + (1 - \alpha)\, \mathrm{CE}\big(y, \mathrm{softmax}(v)\big).$$
#
# The soft term's gradients scale as $1/T^2$, hence the factor $T^2$ that keeps the two terms balanced
# when $T$ changes. The paper found a low weight on the hard labels best; we use `ALPHA` (0.9<!-- fixed -->).
# The loss lives in `kae_utils.methods.distillation` because the amalgamation notebooks reuse it:

# %%
show_source(kae_utils.methods.distillation.kd_kl)
show_source(kae_utils.methods.distillation.kd_loss)


# %% [markdown]
# ### At high temperature, distillation is logit matching
#
# For the soft cross-entropy $C = -\sum_i q_i \log p_i$ the gradient is
# $\partial C / \partial v_i = \frac{1}{T}(p_i - q_i)$. If $T$ is large compared with the logits and both
# sets of logits have zero mean over the $N$ classes, a first-order expansion gives
#
# $$\frac{\partial C}{\partial v_i} \approx \frac{1}{N T^2}\,(v_i - z_i),$$
#
# the gradient of $\frac{1}{2 N T^2}\sum_i (v_i - z_i)^2$: matching logits (Caruana's approach) is the
# high-temperature limit of distillation. We check it with autograd on the teacher's logits and those of an
# untrained student; the difference should shrink like $1/T$.

# %%
def soft_ce_gradient(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """dC/dv for C = -sum_i q_i log p_i, summed over the batch (autograd)."""
    v = student_logits.clone().requires_grad_(True)
    c = -(soft_targets(teacher_logits, temperature) * torch.log_softmax(v / temperature, dim=-1)).sum()
    (grad,) = torch.autograd.grad(c, v)
    return grad


z_teacher = teacher_logits_test[CFG["seeds"][0]]
untrained = build_model("mlp", NUM_CLASSES, widths=CFG["student_widths"], image_size=8, seed=123).to(device)
v_student = predict_logits(untrained, data.x_test) * 10  # spread the logits so the test is not trivial
z0, v0 = z_teacher - z_teacher.mean(1, keepdim=True), v_student - v_student.mean(1, keepdim=True)

GRAD_TEMPERATURES = (1, 3, 10, 30, 100, 300, 1000)
relative_gap = []
for T in GRAD_TEMPERATURES:
    exact = soft_ce_gradient(v0, z0, T)
    logit_matching = (v0 - z0) / (NUM_CLASSES * T**2)
    relative_gap.append(((exact - logit_matching).norm() / exact.norm()).item())

fig, ax = plt.subplots(figsize=(4.5, 3))
ax.loglog(GRAD_TEMPERATURES, relative_gap, "o-")
ax.set_xlabel("temperature T")
ax.set_ylabel("relative gradient difference")
ax.set_title("distillation vs logit matching")
ax.grid(alpha=0.3, which="both")
plt.show()


# %% [markdown]
# ## The student, trained from labels alone and by distillation
#
# The student is a small MLP (two hidden layers of 128 units, about a quarter of the teacher's parameters),
# like the paper's student (two layers of 800 units on MNIST). We train it twice from **the same initial
# weights** and on the same transfer set (the training images), once with the labels only and once with
# the distillation loss. The teacher's logits on the transfer set are computed once.

# %% tags=["nbval-ignore-output"]
def new_student(seed: int) -> torch.nn.Module:
    """The small MLP student; the same `seed` gives the same initial weights."""
    return build_model("mlp", NUM_CLASSES, widths=CFG["student_widths"], image_size=8, seed=1000 + seed)


def distillation_step(temperature: float, alpha: float):
    """A training step for the Trainer: batches are (images, labels, teacher logits)."""

    def step(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y, z_teacher = batch
        return kd_loss(model(x), z_teacher, y, temperature=temperature, alpha=alpha)

    return step


def train_student(seed: int, transfer: tuple[torch.Tensor, ...], step=None, desc: str = "student",
                  validate: bool = True, show: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train a fresh student on `transfer` with `step` (default: cross-entropy with the labels)."""
    model = new_student(seed)
    trainer = Trainer(model, epochs=CFG["student_epochs"], lr=3e-3, batch_size=64, step_fn=step,
                      device=device, seed=seed, progress=show, desc=desc)
    history = trainer.fit(transfer, (data.x_test, data.y_test) if validate else None)
    return model, history.to_dict()


transfer_logits = {s: predict_logits(t, data.x_train) for s, t in teachers.items()}
students = {}
for seed in CFG["seeds"]:
    transfer = (data.x_train, data.y_train, transfer_logits[seed])
    students[("scratch", seed)] = train_student(seed, transfer, desc=f"scratch (seed {seed})")
    students[("distilled", seed)] = train_student(
        seed, transfer, distillation_step(TEMPERATURE, ALPHA), desc=f"distilled T={TEMPERATURE:g} (seed {seed})")


# %% tags=["nbval-ignore-output"]
def test_errors(acc: float) -> int:
    """The number of test images a model with accuracy `acc` gets wrong."""
    return round((1 - acc) * len(data.y_test))


rows = []
for seed in CFG["seeds"]:
    for kind in ("scratch", "distilled"):
        model, _ = students[(kind, seed)]
        rows.append({"seed": seed, "model": f"student, {kind}",
                     "test accuracy": accuracy(predict_logits(model, data.x_test), data.y_test)})
    rows.append({"seed": seed, "model": "teacher", "test accuracy": teacher_acc[seed]})
main_results = pd.DataFrame(rows)
main_results["test errors"] = main_results["test accuracy"].map(test_errors)
summary = main_results.groupby("model", sort=False)["test accuracy"].agg(["mean", "std", "count"])
summary["paper (MNIST test errors)"] = pd.Series({"student, scratch": 146, "student, distilled": 74, "teacher": 67})
summary

# %%
seed0 = CFG["seeds"][0]
plot_curves(
    {"teacher": teacher_histories[seed0], "student, scratch": students[("scratch", seed0)][1],
     "student, distilled": students[("distilled", seed0)][1]},
    keys=("train_loss", "val_acc"), titles=("training loss (own objective)", "test accuracy"),
)
plt.show()

# %%
teacher_params = count_parameters(teachers[seed0])
student_params = count_parameters(students[("scratch", seed0)][0])
print(f"teacher parameters: {teacher_params:,}")
print(f"student parameters: {student_params:,} ({student_params / teacher_params:.0%} of the teacher)")

# %% [markdown]
# ## The effect of the temperature
#
# The same student distilled at several temperatures (same `ALPHA`, same initial weights). At $T = 1$ the
# soft targets are nearly one-hot for a confident teacher; higher temperatures pass on more of the
# teacher's similarity structure. The dashed lines are the scratch student and the teacher.

# %% tags=["nbval-ignore-output"]
sweep = []
runs = [(seed, T) for seed in CFG["seeds"] for T in CFG["temperatures"]]
for seed, T in progress(runs, desc="temperature sweep"):
    transfer = (data.x_train, data.y_train, transfer_logits[seed])
    model, _ = train_student(seed, transfer, distillation_step(T, ALPHA), validate=False, show=False)
    sweep.append({"seed": seed, "T": T, "test accuracy": accuracy(predict_logits(model, data.x_test), data.y_test)})
sweep = pd.DataFrame(sweep)
sweep_mean = sweep.groupby("T")["test accuracy"].agg(["mean", "std"])
sweep_mean

# %%
scratch_mean = main_results.loc[main_results.model == "student, scratch", "test accuracy"].mean()
teacher_mean = float(np.mean(list(teacher_acc.values())))
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.errorbar(sweep_mean.index, sweep_mean["mean"], yerr=sweep_mean["std"].fillna(0), marker="o", label="distilled")
ax.axhline(scratch_mean, ls="--", color="gray", label="scratch")
ax.axhline(teacher_mean, ls="--", color="black", label="teacher")
ax.set_xscale("log")
ax.set_xticks(list(CFG["temperatures"]), [str(t) for t in CFG["temperatures"]])
ax.set_xlabel("temperature T")
ax.set_ylabel("student test accuracy")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## Dark knowledge: a digit the student never sees
#
# The paper removed every "3" from MNIST's transfer set and distilled the student on the rest. The student
# then never saw a 3, nor a label 3; everything it knows about 3s comes from the soft targets of *other*
# digits (how much a 5 or an 8 looks like a 3 to the teacher). Still, it made only 206 test errors, 133 of
# them on the 1,010 threes; its logit for 3 was merely too low, and **raising the bias of class 3 by 3.5<!-- paper -->**
# brought it to 109 errors, 14 of them on threes.
#
# We repeat it with `MISSING_DIGIT` (3) and `BIAS_SHIFT` (3.5<!-- m: missing_digit.bias_shift -->), distilling at `TEMPERATURE`.

# %% tags=["nbval-ignore-output"]
missing = {}
for seed in CFG["seeds"]:
    keep = data.y_train != MISSING_DIGIT
    transfer = (data.x_train[keep], data.y_train[keep], transfer_logits[seed][keep])
    model, _ = train_student(seed, transfer, distillation_step(TEMPERATURE, ALPHA), validate=False,
                             desc=f"without digit {MISSING_DIGIT} (seed {seed})")
    missing[seed] = predict_logits(model, data.x_test)

# %%
print(f"transfer-set images of digit {MISSING_DIGIT}: {int((data.y_train[data.y_train != MISSING_DIGIT] == MISSING_DIGIT).sum())}")
print(f"test images of digit {MISSING_DIGIT}: {int((data.y_test == MISSING_DIGIT).sum())}")


# %% tags=["nbval-ignore-output"]
def with_bias(logits: torch.Tensor, shift: float) -> torch.Tensor:
    """Add `shift` to the logit of the missing digit (a change of its output bias)."""
    shifted = logits.clone()
    shifted[:, MISSING_DIGIT] += shift
    return shifted


is_missing = data.y_test == MISSING_DIGIT
missing_rows = []
for seed, logits in missing.items():
    for label, shift in (("before", 0.0), ("after", BIAS_SHIFT)):
        z = with_bias(logits, shift)
        missing_rows.append({
            "seed": seed, "bias correction": label,
            f"accuracy on digit {MISSING_DIGIT}": accuracy(z[is_missing], data.y_test[is_missing]),
            "overall accuracy": accuracy(z, data.y_test),
            "test errors": test_errors(accuracy(z, data.y_test)),
        })
missing_results = pd.DataFrame(missing_rows)
missing_results.groupby("bias correction", sort=False).mean(numeric_only=True).drop(columns="seed")

# %%
shifts = np.linspace(0, 8, 33)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for seed, logits in missing.items():
    on_digit = [accuracy(with_bias(logits, s)[is_missing], data.y_test[is_missing]) for s in shifts]
    overall = [accuracy(with_bias(logits, s), data.y_test) for s in shifts]
    ax.plot(shifts, on_digit, color="C3", alpha=0.8, label=f"on digit {MISSING_DIGIT}" if seed == seed0 else None)
    ax.plot(shifts, overall, color="C0", alpha=0.8, label="all digits" if seed == seed0 else None)
ax.axvline(BIAS_SHIFT, ls="--", color="gray", label=f"shift {BIAS_SHIFT:g} (paper)")
ax.axhline(0.1, ls=":", color="gray", label="chance")
ax.set_xlabel(f"bias added to class {MISSING_DIGIT}")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Where do the corrected student's mistakes go? The confusion matrix of the student distilled without the
# missing digit, after the bias correction (rows: true digit).

# %%
corrected = with_bias(missing[seed0], BIAS_SHIFT)
plot_confusion(confusion_matrix(corrected, data.y_test, NUM_CLASSES), title=f"no {MISSING_DIGIT} in the transfer set, bias +{BIAS_SHIFT:g}")
plt.show()


# %% [markdown]
# ## Results
#
# Paper (MNIST, test errors out of 10,000) vs this run (`digits`, out of 899 test images). Counts are not
# comparable across the two data sets; the ordering and the size of the effects are.

# %% tags=["nbval-ignore-output"]
from kae_utils.evaluation.results import (
    mean_std,  # mean and sample standard deviation over the seeds (0 for one seed)
)


def by_model(name: str) -> list[float]:
    """The test accuracies of the model `name` in the main results table, one per seed."""
    return main_results.loc[main_results.model == name, "test accuracy"].tolist()


teacher_m, teacher_s = mean_std(teacher_acc.values())
scratch_m, scratch_s = mean_std(by_model("student, scratch"))
kd_m, kd_s = mean_std(by_model("student, distilled"))
before = missing_results[missing_results["bias correction"] == "before"]
after = missing_results[missing_results["bias correction"] == "after"]
digit_col = f"accuracy on digit {MISSING_DIGIT}"

results_table = pd.DataFrame(
    [
        ("teacher", "67 errors", teacher_m, teacher_s),
        ("student from labels", "146 errors", scratch_m, scratch_s),
        (f"student distilled (T={TEMPERATURE:g})", "74 errors", kd_m, kd_s),
        ("share of the teacher-scratch gap closed", "91 %", (kd_m - scratch_m) / (teacher_m - scratch_m), float("nan")),
        (f"no {MISSING_DIGIT} in transfer set: accuracy on {MISSING_DIGIT}", "87 %", *mean_std(before[digit_col])),
        (f"  ... after bias +{BIAS_SHIFT:g}", "98.6 %", *mean_std(after[digit_col])),
        (f"no {MISSING_DIGIT} in transfer set: overall accuracy", "97.9 %", *mean_std(before["overall accuracy"])),
        (f"  ... after bias +{BIAS_SHIFT:g}", "98.9 %", *mean_std(after["overall accuracy"])),
    ],
    columns=["quantity", "paper (MNIST)", f"this run (mean of {len(CFG['seeds'])})", "std"],
)
results_table.round(4)

# %% [markdown]
# ## Claims
#
# Each claim of the paper is checked with an explicit rule fixed before looking at this run's numbers:
#
# 1. **Distillation beats training from labels**: the distilled student's mean test accuracy is higher than
#    that of the same student trained from labels alone (from the same initial weights).
# 2. **Softer targets help**: the best temperature of the sweep is above $T = 1$, and beats $T = 1$.
# 3. **High-temperature limit**: the relative difference between the distillation gradient and the
#    logit-matching gradient is below 5 %<!-- fixed --> at $T = 1000$, and it shrinks like $1/T$ there: from $T = 100$
#    to $T = 1000$ it falls by a factor between 5 and 20 (the first-order expansion predicts 10).
# 4. **Dark knowledge**: a student that never saw the missing digit recognises it far above chance after
#    the bias correction: at least 5× chance (50 %<!-- fixed --> of that digit's test images).
# 5. **The bias correction helps overall**: raising the missing digit's bias by the paper's 3.5<!-- paper --> reduces the
#    student's overall test errors.

# %%
best_T = float(sweep_mean["mean"].idxmax())
gap = dict(zip(GRAD_TEMPERATURES, relative_gap, strict=True))
claims = [
    Claim("the distilled student is more accurate than the same student trained from labels",
          bool(kd_m > scratch_m),
          f"distilled {kd_m:.4f} vs scratch {scratch_m:.4f} (mean of {len(CFG['seeds'])} seeds)",
          effect=Effect("distilled - scratch, test accuracy (strictly above)", kd_m - scratch_m, 0.0)),
    Claim("softened targets (T > 1) distil better than T = 1",
          bool(best_T > 1 and sweep_mean["mean"].max() > sweep_mean.loc[1, "mean"]),
          f"best T = {best_T:g} ({sweep_mean['mean'].max():.4f}) vs T = 1 ({sweep_mean.loc[1, 'mean']:.4f})",
          effect=Effect("best T - (T = 1), test accuracy (strictly above)",
                        sweep_mean["mean"].max() - sweep_mean.loc[1, "mean"], 0.0)),
    Claim("at high temperature the distillation gradient approaches logit matching, with a gap shrinking like 1/T",
          bool(gap[1000] < 0.05 and 0.05 <= gap[1000] / gap[100] <= 0.2),
          "relative gap by T: " + ", ".join(f"{T}: {g:.3g}" for T, g in gap.items()),
          effect=Effect("relative gradient gap at T = 1000 (its 1/T decay checked too)", gap[1000], 0.05, "at most")),
    Claim(f"the student recognises digit {MISSING_DIGIT}, absent from its transfer set, far above chance after the bias correction",
          bool(after[digit_col].mean() >= 0.5),
          f"accuracy on {MISSING_DIGIT}: {before[digit_col].mean():.3f} before, {after[digit_col].mean():.3f} after (chance 0.1)",
          effect=Effect("accuracy on the missing digit after the bias correction", after[digit_col].mean(), 0.5)),
    Claim("raising the missing digit's bias reduces the overall test errors",
          bool(after["test errors"].mean() < before["test errors"].mean()),
          f"test errors {before['test errors'].mean():.1f} before, {after['test errors'].mean():.1f} after",
          effect=Effect("overall test accuracy after - before the bias correction (strictly above)",
                        after["overall accuracy"].mean() - before["overall accuracy"].mean(), 0.0)),
]
report = check_claims(claims)

# %%
metrics = {
    "headline": (f"distilled {kd_m:.1%} vs scratch {scratch_m:.1%} (teacher {teacher_m:.1%}), closing "
                 f"{(kd_m - scratch_m) / (teacher_m - scratch_m):.0%} of the gap (paper: 91%); unseen digit "
                 f"{MISSING_DIGIT}: {before[digit_col].mean():.0%} -> {after[digit_col].mean():.0%} after the bias "
                 f"correction (paper: 87% -> 99%)"),
    "teacher_acc": {"mean": teacher_m, "std": teacher_s, "per_seed": teacher_acc},
    "scratch_acc": {"mean": scratch_m, "std": scratch_s, "per_seed": by_model("student, scratch")},
    "distilled_acc": {"mean": kd_m, "std": kd_s, "per_seed": by_model("student, distilled")},
    "gap_closed": (kd_m - scratch_m) / (teacher_m - scratch_m),
    "temperature_sweep": {str(T): row["mean"] for T, row in sweep_mean.iterrows()},
    "gradient_gap": {str(T): g for T, g in gap.items()},
    "missing_digit": {
        "digit": MISSING_DIGIT, "bias_shift": BIAS_SHIFT,
        "acc_on_digit_before": before[digit_col].mean(), "acc_on_digit_after": after[digit_col].mean(),
        "overall_acc_before": before["overall accuracy"].mean(), "overall_acc_after": after["overall accuracy"].mean(),
    },
    "parameters": {"teacher": teacher_params, "student": student_params},
    "seeds": CFG["seeds"],
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, TEMPERATURE=TEMPERATURE,
                  ALPHA=ALPHA, MISSING_DIGIT=MISSING_DIGIT, BIAS_SHIFT=BIAS_SHIFT)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ## Notes on fidelity
#
# Where this notebook differs from the paper, and why:
#
# - **Data**: scikit-learn's `digits` (1,797 real 8×8 digits, ~900 for training) instead of MNIST (60,000
#   28×28 digits), because nothing can be downloaded on the machines this repository is built on. The
#   transfer set is therefore ~70 times smaller, which limits how much dark knowledge the soft targets of
#   the other digits can carry (see the missing-digit results).
# - **Teacher**: a small CNN trained on ±1-pixel jittered copies, instead of an MLP with two layers of 1,200
#   units, dropout and ±2-pixel jitter. Both are "a more accurate, better regularised model".
# - **Student**: an MLP with two layers of 128 units instead of 800 (the images have 64 pixels, not 784),
#   trained with Adam (cosine learning-rate schedule) instead of SGD. Students with too little capacity or
#   too few epochs do *not* benefit from distillation on this data (an MLP with one layer of 32 units got
#   worse in our trials; so did the students trained for 30 epochs): the soft targets are a harder
#   objective than the labels and need capacity and steps to be fitted.
# - **Loss weight**: the paper says only that a low weight on the hard targets worked best; we use
#   α = 0.9<!-- fixed -->. The transfer set is the training set, with labels, as in the paper's MNIST experiment.
# - **Bias correction**: the shift 3.5<!-- paper --> is the paper's value, kept fixed; it was not tuned on this data.
# - **Gradient check**: a first version of claim 3 also required the gap to fall at every step of the
#   grid from $T = 1$. It rose slightly from $T = 1$ to $T = 3$, where the expansion does not apply (the
#   logits are larger than $T$), so the check now covers only the high-temperature regime the paper speaks
#   of, with the rate the expansion predicts. We state this because the rule was revised after a run.
# - **Seeds**: the quick profile uses one seed, so its numbers are single runs; the full profile reports
#   the mean and standard deviation over three seeds of the students, all distilled from one teacher (the
#   zoo's, trained once with seed 0).
#
# ## Exercises
#
# 1. Set `ALPHA = 1.0` (no labels at all). Does the distilled student still beat the scratch student?
# 2. Shrink the student (`student_widths=(32,)` in `SETTINGS`) and re-run: when does distillation stop helping?
# 3. Change `MISSING_DIGIT` to 8 or 1. Which digits are easiest to learn from dark knowledge alone, and
#    does the confusion matrix of the teacher tell you why?
# 4. Instead of the paper's fixed bias, choose the shift without labels so that the student predicts the
#    missing digit for 10 %<!-- fixed --> of the test images. How close does it get to the best shift on the curve above?
#
# ## References
#
# - G. Hinton, O. Vinyals, J. Dean. *Distilling the Knowledge in a Neural Network.* NIPS 2014 Deep Learning
#   Workshop; arXiv:1503.02531 (2015).
# - C. Buciluǎ, R. Caruana, A. Niculescu-Mizil. *Model Compression.* KDD 2006 (logit matching).
# - scikit-learn's `digits`: the UCI "Optical Recognition of Handwritten Digits" data set (test part).
