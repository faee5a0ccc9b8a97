# %% [markdown]
# # 07 · Recombination: combine teachers into one network, then prune and retrain it
#
# **KAmalEngine's recombination** ([zju-vipa/KamalEngine](https://github.com/zju-vipa/KamalEngine)): "build a
# new multi-task model by combining and pruning weight matrices from distinct-task teachers". There is **no
# paper** for this method; the library's README lists it among its features, its figure shows the idea, and its
# code does not run (the bugs are listed in the notes at the end). This notebook implements the corrected
# specification and says which choices are ours.
#
# Two teachers, each an encoder-decoder for one pixel task (segmentation, depth), have encoders of the same
# architecture. Put their convolutions side by side into one **combined encoder**: the first convolution
# stacks the teachers' filters, every later one is block-diagonal, so each block only sees its own teacher's
# channels. That network computes *exactly* what the teachers compute, with one forward pass, but it is as
# large as all the encoders together. Then **prune** it: remove encoder channels with small filter norms,
# round after round, and after each round **retrain** everything to imitate the teachers (no labels). The
# off-diagonal blocks start at zero but are trainable, so the surviving channels can mix the teachers'
# features: the student that remains has one teacher's encoder size and serves every task.
#
# **What you will see**
#
# 1. The zoo's teachers (the same as in notebook 04) and the exact combination of their encoders, checked.
# 2. A shared bottleneck with per-task adaptors in front of the copied decoders, trained to recover the
#    teachers' outputs.
# 3. Iterative pruning with Torch-Pruning (L1 filter norms, encoder channels only), each round followed by
#    retraining against the teachers' maps.
# 4. The metrics through the rounds against the parameter count, the combined weights before and after
#    retraining, which teacher owns each surviving channel, and a same-architecture student trained from
#    scratch for the same budget.
# 5. Claims checked against this run.

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces it when you run, for example,
# `python -m kae_utils.run 07 -p SEED 1` or `python -m kae_utils.run 07 -p IMPORTANCE random`.
# Values that depend on them are derived in the cell after it, which also checks every value.

# %% tags=["parameters"]
PROFILE: str = "quick"  # "quick": CPU, under 2 minutes, 64x64, segmentation + depth; "full": 128x128, + normals (GPU)
SEED: int = 0  # base seed; the full profile uses SEED and SEED + 1
DEVICE: str = "auto"  # "auto", "cpu" or "cuda"
DATASET: str = "scenes"  # "scenes" (rendered rooms with per-pixel labels); the only data set wired up here
TEACHERS: str = "zoo"  # "zoo": load the trained teachers shipped in zoo/; "train": retrain them with the zoo's recipe
IMPORTANCE: str = "l1"  # how encoder channels are ranked for pruning: "l1" (filter L1 norm) or "random" (a control)

# %%
from kae_utils.env import DEVICES, PROFILES, check_choice, check_number
from kae_utils.scale import profile_settings
from kae_utils.zoo import TEACHER_SOURCES

SUPPORTED_DATASETS = ("scenes",)
IMPORTANCES = ("l1", "random")
check_choice("PROFILE", PROFILE, PROFILES)
check_choice("DEVICE", DEVICE, DEVICES)
check_choice("DATASET", DATASET, SUPPORTED_DATASETS)
check_choice("TEACHERS", TEACHERS, TEACHER_SOURCES)
check_choice("IMPORTANCE", IMPORTANCE, IMPORTANCES)
check_number("SEED", SEED, integer=True, minimum=0)

NOTEBOOK = "07_recombination"
SETTINGS = {  # the teachers come from the zoo (kae_utils.zoo)
    "quick": dict(seeds=[SEED], tasks=("segmentation", "depth"), adapt_epochs=2, rounds=3, retrain_epochs=2,
                  batch_size=32, lr=1e-3),
    "full": dict(seeds=[SEED, SEED + 1], tasks=("segmentation", "depth", "normals"), adapt_epochs=5, rounds=4,
                 retrain_epochs=5, batch_size=32, lr=1e-3),
}
CFG = profile_settings(SETTINGS, PROFILE)  # SETTINGS[PROFILE]; KAE_SCALE=smoke shrinks the full one
CFG["budget_epochs"] = CFG["adapt_epochs"] + CFG["rounds"] * CFG["retrain_epochs"]  # the scratch baseline's epochs
for name, value in CFG.items():
    print(f"{name:>14}: {value}")

# %% [markdown]
# ## Set-up
#
# Seeding, the device, and PNG figures. Paths (the zoo, `runs/`) are resolved from the repository root by
# `kae_utils`, so the notebook runs from any working directory.

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch_pruning as tp
from torch import nn

from kae_utils import numerics, zoo
from kae_utils.amalgamation import check_images_only
from kae_utils.data import SCENE_CLASSES, load_dataset
from kae_utils.env import setup_notebook
from kae_utils.models import count_parameters
from kae_utils.results import Claim, check_claims, mean_std, write_metrics
from kae_utils.tasks import DENSE_TASKS, predict_maps
from kae_utils.training import Trainer
from kae_utils.viz import colorize_depth

device = setup_notebook(SEED, DEVICE)
print("device type:", device.type)
print(numerics.describe())  # bf16 autocast where the hardware runs it natively; KAE_PRECISION=fp32 forces float32

# %% [markdown]
# ## Data and teachers
#
# The offline `scenes` set (rendered rooms with exact per-pixel labels, as in notebook 04): the training
# images, **without their labels**, are the transfer set; the test split is used only to evaluate.
#
# The teachers are the zoo's encoder-decoders of notebook 04, one per task, trained once with labels on
# scenes of their own (`make zoo`; with `TEACHERS = "train"` they are retrained here from the same recipe).

# %% tags=["nbval-ignore-output"]
TASK_LIST = list(CFG["tasks"])
train_split, test_split = load_dataset(DATASET, "train", PROFILE), load_dataset(DATASET, "test", PROFILE)
X_TRANSFER, x_test = train_split.x, test_split.x  # the transfer set: training images, no labels
gt_test = {task: test_split.targets[task] for task in TASK_LIST}
IMAGE_SHAPE = tuple(X_TRANSFER.shape[1:])
TEACHER_NAMES = {task: f"scenes{IMAGE_SHAPE[-1]}-{task}" for task in TASK_LIST}
teachers = {task: zoo.obtain(name, TEACHERS, device) for task, name in TEACHER_NAMES.items()}
print(f"transfer set (images only): {tuple(X_TRANSFER.shape)}  test: {tuple(x_test.shape)}  tasks: {', '.join(TASK_LIST)}")
print("teachers:", "loaded from the zoo (hash-checked)" if TEACHERS == "zoo" else "retrained here with the zoo's recipe")

# %%
pd.DataFrame(zoo.summary(TEACHER_NAMES.values())).set_index("entry")


# %%
def evaluate(model) -> dict[str, dict[str, float]]:
    # each task's metrics against the test split's ground truth (kae_utils.tasks)
    maps = predict_maps(model, x_test)
    return {task: DENSE_TASKS[task].metrics(maps[task], gt_test[task]) for task in TASK_LIST}


teacher_scores = evaluate(teachers)
pd.DataFrame([{"task": t, "metric": k, "teacher": v} for t, m in teacher_scores.items() for k, v in m.items()]
             ).set_index(["task", "metric"]).round(4)


# %% [markdown]
# ## Step 1: combine the encoders, exactly
#
# Every teacher's encoder is a chain of conv–BN–ReLU stages with the same kernel sizes and strides
# (`kae_utils.models.EncoderDecoder`); teacher $i$'s stage $l$ has weights $W_i^{(l)}$ of shape
# $C_i^{(l)} \times C_i^{(l-1)} \times k \times k$. The combined encoder has, at each stage,
#
# $$W^{(1)} = \begin{bmatrix} W_1^{(1)} \\ \vdots \\ W_N^{(1)} \end{bmatrix},\qquad
# W^{(l)} = \begin{bmatrix} W_1^{(l)} & & 0 \\ & \ddots & \\ 0 & & W_N^{(l)} \end{bmatrix}\ (l > 1),$$
#
# the first stage stacking the filters (every teacher reads the same image), every later one block-diagonal,
# stored as an ordinary dense convolution whose off-diagonal blocks are zero. BatchNorm acts per channel, so its
# scale, shift and running statistics are simply concatenated. Output channel block $i$ of the combined encoder
# is then exactly teacher $i$'s encoder output, and each teacher's own decoder can run on its slice.
# Only layers this rule covers are accepted: anything else raises an error that names it.

# %%
def combine_conv(convs: list[nn.Conv2d], first: bool) -> nn.Conv2d:
    # W = [W_1; ...; W_N] for the first stage, blockdiag(W_1, ..., W_N) (dense, groups = 1) after it
    ref = convs[0]
    for c in convs:
        if c.groups != 1:
            raise ValueError(f"cannot combine {c}: only ordinary convolutions (groups = 1) are supported")
        if (c.kernel_size, c.stride, c.padding, c.dilation) != (ref.kernel_size, ref.stride, ref.padding, ref.dilation):
            raise ValueError(f"cannot combine {c} with {ref}: kernel, stride, padding and dilation must agree")
    c_in = ref.in_channels if first else sum(c.in_channels for c in convs)
    out = nn.Conv2d(c_in, sum(c.out_channels for c in convs), ref.kernel_size, stride=ref.stride,
                    padding=ref.padding, dilation=ref.dilation, bias=ref.bias is not None)
    with torch.no_grad():
        out.weight.zero_()
        row = col = 0
        for c in convs:
            cols = slice(None) if first else slice(col, col + c.in_channels)
            out.weight[row:row + c.out_channels, cols] = c.weight
            if c.bias is not None:
                out.bias[row:row + c.out_channels] = c.bias
            row, col = row + c.out_channels, col + c.in_channels
    return out


def combine_bn(bns: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    # per-channel: concatenate scale, shift and running statistics
    if len({(b.eps, b.momentum) for b in bns}) != 1:
        raise ValueError("cannot combine BatchNorm layers with different eps or momentum")
    out = nn.BatchNorm2d(sum(b.num_features for b in bns), eps=bns[0].eps, momentum=bns[0].momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(out, name).copy_(torch.cat([getattr(b, name) for b in bns]))
        out.num_batches_tracked.copy_(bns[0].num_batches_tracked)
    return out


def combine_encoders(encoders: list[nn.Sequential]) -> nn.Sequential:
    # stage by stage: conv, BatchNorm and ReLU of every teacher into one conv-BN-ReLU
    stages = []
    for index, parts in enumerate(zip(*encoders, strict=True)):
        kinds = [[type(m) for m in part] for part in parts]
        if any(k != [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] for k in kinds):
            raise ValueError(f"stage {index}: only conv-BatchNorm-ReLU stages can be combined; got {kinds[0]}")
        conv = combine_conv([part[0] for part in parts], first=index == 0)
        stages.append(nn.Sequential(conv, combine_bn([part[1] for part in parts]), nn.ReLU()))
    return nn.Sequential(*stages)


# %% [markdown]
# The combined network keeps a copy of each teacher's decoder and head, and feeds each the slice of the
# combined encoder's output that belongs to its teacher. Later (step 2) the slices are replaced by a shared
# bottleneck and one adaptor per task.

# %%
class Recombined(nn.Module):
    # combined encoder -> (bottleneck, adaptor of task t) or slice t -> teacher t's copied decoder and head

    def __init__(self, teacher_set: dict[str, nn.Module]) -> None:
        super().__init__()
        self.tasks = list(teacher_set)
        self.encoder = combine_encoders([t.encoder for t in teacher_set.values()])
        self.widths = [t.widths[-1] for t in teacher_set.values()]  # each teacher's encoder output channels
        self.decoders = nn.ModuleDict({k: copy.deepcopy(t.decoder) for k, t in teacher_set.items()})
        self.heads = nn.ModuleDict({k: copy.deepcopy(t.head) for k, t in teacher_set.items()})
        self.bottleneck: nn.Module | None = None
        self.adaptors: nn.ModuleDict | None = None
        self.frozen = False

    def copied(self) -> list[nn.Module]:
        # the parts that come from the teachers: the combined encoder and the copied decoders and heads
        return [self.encoder, self.decoders, self.heads]

    def freeze_copies(self, frozen: bool) -> "Recombined":
        # frozen copies take no gradient and keep the teachers' BatchNorm statistics (eval mode)
        self.frozen = frozen
        for part in self.copied():
            part.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "Recombined":
        super().train(mode)
        if self.frozen:
            for part in self.copied():
                part.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(x)
        if self.bottleneck is None:
            inputs = dict(zip(self.tasks, torch.split(h, self.widths, dim=1), strict=True))
        else:
            shared = self.bottleneck(h)
            inputs = {t: self.adaptors[t](shared) for t in self.tasks}
        out = {}
        for task, z in inputs.items():
            for block in self.decoders[task]:
                z = block(z)
            out[task] = self.heads[task](z)
        return out


def encoder_parameters(model: nn.Module) -> int:
    return count_parameters(model.encoder)


recombined = Recombined(teachers).to(device).eval()
combined_out = predict_maps(recombined, x_test)
teacher_out = predict_maps(teachers, x_test)
relative = {t: ((combined_out[t] - teacher_out[t]).abs().max() / teacher_out[t].abs().max()).item() for t in TASK_LIST}
EXACT_TOL = 1e-4
print(f"every task's output equals its teacher's (max relative difference <= {EXACT_TOL:g}):",
      all(v <= EXACT_TOL for v in relative.values()))
teacher_encoders = sum(count_parameters(t.encoder) for t in teachers.values())
print(f"encoder parameters: teachers together {teacher_encoders:,}; combined (dense, zeros included) "
      f"{encoder_parameters(recombined):,}; one teacher {count_parameters(teachers[TASK_LIST[0]].encoder):,}")

# %% tags=["nbval-ignore-output"]
print("max relative difference per task:", {t: f"{v:.1e}" for t, v in relative.items()})

# %% [markdown]
# A layer the rule does not cover is refused with its name, not combined wrongly (KAmalEngine's version
# silently dropped the groups of grouped convolutions):

# %%
try:
    combine_conv([nn.Conv2d(8, 8, 3, groups=2), nn.Conv2d(8, 8, 3, groups=2)], first=False)
except ValueError as error:
    print("refused:", error)


# %% [markdown]
# ## Step 2: a shared bottleneck and per-task adaptors
#
# The combined encoder's output has $\sum_i C_i$ channels, one block per teacher. A shared **bottleneck**
# $A$ (a 1×1 convolution $\sum_i C_i \to c_b$, BatchNorm, ReLU, with $c_b$ one teacher's width) mixes them, and
# one **adaptor** $P_t$ per task (1×1 convolution $c_b \to C_t$, BatchNorm, ReLU) feeds teacher $t$'s copied
# decoder. They start random, so the exactness is lost here; they are trained with everything else frozen,
# by matching the teachers' maps on the unlabelled transfer images:
#
# $$L = \sum_t L_t\big(D_t(P_t(A(E(x)))),\ T_t(x)\big),$$
#
# with the losses of notebook 04 (`kae_utils.tasks`): per-pixel KL to the teacher's softmax for segmentation,
# the scale-invariant log-depth loss ($\lambda = 0.5$) for depth, the angle for normals.

# %%
def kd_loss(outputs: dict[str, torch.Tensor], targets: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
    # sum over tasks of the loss of the output against the teacher's map (no ground truth)
    losses = {t: DENSE_TASKS[t].distill_loss(outputs[t], y) for t, y in zip(TASK_LIST, targets, strict=True)}
    return sum(losses.values()), {t: v.detach() for t, v in losses.items()}


def kd_train(model: nn.Module, targets: list[torch.Tensor], epochs: int, seed: int, desc: str) -> dict:
    # every trainable parameter, a fresh Adam, against the teachers' maps of the transfer images
    x = check_images_only(X_TRANSFER, IMAGE_SHAPE)
    return Trainer(model, epochs=epochs, lr=CFG["lr"], batch_size=CFG["batch_size"], device=device, seed=seed,
                   step_fn=lambda m, batch: kd_loss(m(batch[0]), batch[1:]), desc=desc).fit((x, *targets)).to_dict()


def add_adaptors(model: Recombined, seed: int) -> Recombined:
    c_sum, c_b = sum(model.widths), model.widths[0]
    with torch.random.fork_rng(devices=[]):  # their initial weights depend on the seed only
        torch.manual_seed(7000 + seed)
        model.bottleneck = nn.Sequential(nn.Conv2d(c_sum, c_b, 1), nn.BatchNorm2d(c_b), nn.ReLU())
        model.adaptors = nn.ModuleDict({t: nn.Sequential(nn.Conv2d(c_b, c, 1), nn.BatchNorm2d(c), nn.ReLU())
                                        for t, c in zip(model.tasks, model.widths, strict=True)})
    return model.to(device)


teacher_maps = predict_maps(teachers, X_TRANSFER)  # computed once: the teachers are frozen
TARGETS = [teacher_maps[t] for t in TASK_LIST]


# %% tags=["nbval-ignore-output"]
def adapt(seed: int) -> tuple[Recombined, dict]:
    # the bottleneck and adaptors learn; the combined encoder and the copied decoders stay frozen (and in eval mode)
    model = add_adaptors(Recombined(teachers), seed)
    at_start = evaluate(model)
    model.freeze_copies(True)
    history = kd_train(model, TARGETS, CFG["adapt_epochs"], seed, desc=f"adapt (seed {seed})")
    model.freeze_copies(False)
    return model, {"at_start": at_start, "after": evaluate(model), "history": history}


adapted = {seed: adapt(seed) for seed in CFG["seeds"]}

# %% tags=["nbval-ignore-output"]
HEADLINE = {t: DENSE_TASKS[t].headline for t in TASK_LIST}
pd.DataFrame([{"task": t, "metric": HEADLINE[t], "teacher": teacher_scores[t][HEADLINE[t]],
               "adaptors at initialisation": info["at_start"][t][HEADLINE[t]],
               "after adapting": info["after"][t][HEADLINE[t]], "seed": seed}
              for seed, (_, info) in adapted.items() for t in TASK_LIST]).set_index(["seed", "task"]).round(4)

# %% [markdown]
# ## Step 3: prune and retrain, round after round
#
# Each round removes a share of the **encoder's** channels, those whose filters have the smallest L1 norm
# $\|W_{c,:,:,:}\|_1$ (Li et al., 2017), and then retrains the whole network against the teachers' maps with a
# fresh optimiser. Removing output channel $c$ of a convolution also removes the BatchNorm entries of $c$ and
# input channel $c$ of every layer that reads it (the next stage, or the bottleneck): **Torch-Pruning**
# (`torch-pruning`, Fang et al. 2023) finds these dependencies from a traced forward pass. The bottleneck,
# adaptors, decoders and heads are never pruned (the bottleneck's *input* shrinks with the encoder).
#
# After $R$ rounds the encoder keeps a share $1 - p$ of its channels with $p = 1 - 1/N$ for $N$ teachers, so
# its parameters, which grow with the square of the width, fall to about one teacher's encoder:
# $N^2 \cdot |E| \cdot (1/N)^2 = |E|$. Which teacher each surviving channel came from is tracked through the rounds.

# %%
PRUNE_RATIO = 1 - 1 / len(TASK_LIST)
IMPORTANCE_FN = {"l1": tp.importance.MagnitudeImportance(p=1, group_reduction="first", normalizer=None),
                 "random": tp.importance.RandomImportance()}[IMPORTANCE]


def channel_owners(model: Recombined) -> list[np.ndarray]:
    # per encoder conv, the teacher (index in TASK_LIST) each output channel came from
    stages = zip(*[t.encoder for t in teachers.values()], strict=True)  # stage by stage, one part per teacher
    return [np.concatenate([np.full(part[0].out_channels, i) for i, part in enumerate(parts)]) for parts in stages]


def prune_and_retrain(model: Recombined, seed: int, importance=IMPORTANCE_FN, rounds: int = CFG["rounds"],
                      epochs: int = CFG["retrain_epochs"]) -> tuple[Recombined, list[dict], list[np.ndarray]]:
    # R rounds: prune encoder channels (Torch-Pruning), then retrain everything against the teachers
    owners = channel_owners(model)
    convs = [stage[0] for stage in model.encoder]
    ignored = [model.bottleneck, *model.adaptors.values(), *model.decoders.values(), *model.heads.values()]
    example = X_TRANSFER[:2].to(device)
    pruner = tp.pruner.BasePruner(model, example, importance=importance, pruning_ratio=PRUNE_RATIO,
                                  iterative_steps=rounds, ignored_layers=ignored,
                                  output_transform=lambda out: sum(v.sum() for v in out.values()))
    rows = [{"round": 0, "encoder parameters": encoder_parameters(model), **flat_scores(evaluate(model))}]
    torch.manual_seed(8000 + seed)  # the random importance, if chosen
    for round_index in range(1, rounds + 1):
        for group in pruner.step(interactive=True):
            root, removed = group[0]
            layer = convs.index(root.target.module)
            owners[layer] = np.delete(owners[layer], removed)
            group.prune()
        model.train()  # tracing leaves the model in eval mode
        kd_train(model, TARGETS, epochs, seed + round_index, desc=f"round {round_index} (seed {seed})")
        rows.append({"round": round_index, "encoder parameters": encoder_parameters(model),
                     **flat_scores(evaluate(model))})
    return model.eval(), rows, owners


def flat_scores(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{t} {k}": v for t, m in scores.items() for k, v in m.items()}


# %% tags=["nbval-ignore-output"]
recombined_runs = {}
for seed, (model, _) in adapted.items():
    before = copy.deepcopy(model.encoder[1][0].weight.detach().cpu())  # a combined conv, for the figure below
    pruned, rows, owners = prune_and_retrain(copy.deepcopy(model), seed)
    recombined_runs[seed] = {"model": pruned, "rounds": pd.DataFrame(rows), "owners": owners, "weight_before": before}


# %% [markdown]
# ### The baseline: the same architecture from scratch
#
# Is the recombination worth it, or would the final architecture learn as much from the teachers without
# starting from them? The pruned network's architecture, every weight re-initialised (the depth head's bias at
# the mean log-depth of the teacher's maps, as the teachers started), trained by the same KD losses on the same
# images for the same number of epochs in all (adapting + every round's retraining).

# %% tags=["nbval-ignore-output"]
def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9000 + seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    if "depth" in TASK_LIST:
        nn.init.constant_(fresh.heads["depth"].proj.bias, teacher_maps["depth"].log().mean().item())
    return fresh


scratch = {}
for seed, run in recombined_runs.items():
    scratch[seed] = reinitialised(run["model"], seed).train()
    kd_train(scratch[seed], TARGETS, CFG["budget_epochs"], seed, desc=f"scratch KD, same architecture (seed {seed})")

# %% [markdown]
# ### Ablations (full profile)
#
# The full profile also asks what each choice is worth, on the first seed: channels ranked at random instead
# of by L1 norm; one-shot pruning (one round with all the retraining epochs) instead of iterative; and the
# plain multi-task encoder-decoder (one teacher's encoder, one decoder per task: about the pruned network's
# size) trained by the same KD losses from scratch for the same budget. In the quick profile this cell only
# says so.

# %% tags=["nbval-ignore-output"]
ablations = {}
if PROFILE == "full":
    from kae_utils.models import build_multitask_encdec

    seed0 = CFG["seeds"][0]
    model0 = adapted[seed0][0]
    variants = {"random importance": dict(importance=tp.importance.RandomImportance()),
                "one-shot pruning": dict(rounds=1, epochs=CFG["rounds"] * CFG["retrain_epochs"])}
    for name, options in variants.items():
        ablations[name] = evaluate(prune_and_retrain(copy.deepcopy(model0), seed0, **options)[0])
    plain = build_multitask_encdec({t: DENSE_TASKS[t].channels for t in TASK_LIST},
                                   widths=teachers[TASK_LIST[0]].widths, seed=9500 + seed0).to(device)
    kd_train(plain, TARGETS, CFG["budget_epochs"], seed0, desc="plain multi-task, scratch KD")
    ablations[f"plain multi-task encoder-decoder ({count_parameters(plain):,} parameters)"] = evaluate(plain)
    print(pd.DataFrame({name: {t: s[t][HEADLINE[t]] for t in TASK_LIST} for name, s in ablations.items()}).round(4))
else:
    print("ablations: full profile only (PROFILE = 'full')")

# %% [markdown]
# ## Results
#
# Every model on the test split, against ground truth; the recombined network after the last round, its
# architecture from scratch, and the teachers (mean over seeds; one seed in the quick profile).

# %% tags=["nbval-ignore-output"]
rows = []
for seed, run in recombined_runs.items():
    for model, scores in (("teacher", teacher_scores), ("recombined (pruned + retrained)", evaluate(run["model"])),
                          ("same architecture, scratch KD", evaluate(scratch[seed]))):
        rows += [{"seed": seed, "task": t, "metric": k, "model": model, "value": v}
                 for t, m in scores.items() for k, v in m.items()]
scores_long = pd.DataFrame(rows)
MODELS = list(scores_long.model.unique())
scores_long.groupby(["task", "metric", "model"], sort=False)["value"].mean().unstack("model")[MODELS].round(4)

# %%
seed0 = CFG["seeds"][0]
final = recombined_runs[seed0]["model"]
one_teacher_encoder = count_parameters(teachers[TASK_LIST[0]].encoder)
print(f"encoder parameters: combined {encoder_parameters(recombined):,} -> pruned {encoder_parameters(final):,} "
      f"(one teacher's encoder: {one_teacher_encoder:,})")
print(f"whole network: pruned {count_parameters(final):,} vs teachers together {sum(count_parameters(t) for t in teachers.values()):,}")
print("encoder widths after pruning:", [stage[0].out_channels for stage in final.encoder],
      "| one teacher:", list(teachers[TASK_LIST[0]].widths))

# %% [markdown]
# **Through the rounds**: each task's metric against the encoder's parameter count, with the teacher as a
# line and the scratch baseline as a cross.

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, len(TASK_LIST), figsize=(3.8 * len(TASK_LIST), 3.0))
for ax, task in zip(np.atleast_1d(axes), TASK_LIST, strict=True):
    column = f"{task} {HEADLINE[task]}"
    for seed, run in recombined_runs.items():
        r = run["rounds"]
        ax.plot(r["encoder parameters"], r[column], "o-", color="C0", alpha=1.0 if seed == seed0 else 0.4,
                label="recombined, by round" if seed == seed0 else None)
        ax.plot([encoder_parameters(run["model"])], [evaluate(scratch[seed])[task][HEADLINE[task]]], "x", ms=10,
                color="C3", label="scratch KD, same architecture" if seed == seed0 else None)
    ax.axhline(teacher_scores[task][HEADLINE[task]], color="k", linestyle="--", label="teacher")
    ax.set_xscale("log")
    ax.set_xlabel("encoder parameters")
    ax.set_ylabel(f"{task} {HEADLINE[task]}")
    ax.grid(alpha=0.3)
np.atleast_1d(axes)[0].legend(fontsize=7)
fig.tight_layout()
plt.show()


# %% [markdown]
# **The combined weights**: $|W|$ of the second encoder stage (summed over the 3×3 kernel), rows = output
# channels, columns = input channels, before any training (block-diagonal: each teacher only reads its own
# channels) and after the last round (the surviving channels, sorted by the teacher they came from). Non-zero
# off-diagonal blocks are channels that now mix the teachers' features.

# %% tags=["nbval-ignore-output"]
def owner_order(owners: np.ndarray) -> np.ndarray:
    return np.argsort(owners, kind="stable")


after = final.encoder[1][0].weight.detach().cpu()
rows_order = owner_order(recombined_runs[seed0]["owners"][1])
cols_order = owner_order(recombined_runs[seed0]["owners"][0])
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (title, w) in zip(axes, (("combined, before training", recombined_runs[seed0]["weight_before"]),
                                 ("after pruning and retraining", after[rows_order][:, cols_order])), strict=True):
    ax.imshow(w.abs().sum(dim=(2, 3)).numpy(), cmap="viridis", aspect="auto")
    ax.set_title(f"{title}: {tuple(w.shape[:2])}", fontsize=9)
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
fig.tight_layout()
plt.show()

# %% tags=["nbval-ignore-output"]
mixing = after[rows_order][:, cols_order].abs().sum(dim=(2, 3))
row_owner, col_owner = np.sort(recombined_runs[seed0]["owners"][1]), np.sort(recombined_runs[seed0]["owners"][0])
cross = torch.as_tensor(row_owner[:, None] != col_owner[None, :])
share = (mixing[cross].sum() / mixing.sum()).item()
print(f"share of the second stage's |W| in blocks that connect different teachers, after retraining: {share:.1%} (0% before)")

# %% [markdown]
# **Which teacher owns the surviving channels**, per encoder stage (first seed): the pruning is free to keep
# more of one teacher than of another.

# %% tags=["nbval-ignore-output"]
owners = recombined_runs[seed0]["owners"]
counts = np.array([[int((o == i).sum()) for i in range(len(TASK_LIST))] for o in owners])
fig, ax = plt.subplots(figsize=(5, 2.8))
bottom = np.zeros(len(owners))
for i, task in enumerate(TASK_LIST):
    ax.bar(range(len(owners)), counts[:, i], bottom=bottom, label=f"from the {task} teacher")
    bottom += counts[:, i]
ax.set_xticks(range(len(owners)), [f"stage {s + 1}" for s in range(len(owners))])
ax.set_ylabel("surviving channels")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
print(pd.DataFrame(counts, columns=TASK_LIST, index=[f"stage {s + 1}" for s in range(len(owners))]).to_string())

# %% [markdown]
# ### Predicted maps
#
# Four test scenes: each task's teacher map, the recombined network's, and the ground truth.

# %% tags=["nbval-ignore-output"]
final_maps = predict_maps(final, x_test)


def show(task: str, value: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    if task == "depth":
        return colorize_depth(value, vmin=float(reference.min()), vmax=float(reference.max()))
    return DENSE_TASKS[task].colorize(value[None])[0]


columns = [(task, who) for task in TASK_LIST for who in ("teacher", "recombined", "ground truth")]
fig, axes = plt.subplots(4, 1 + len(columns), figsize=(1.55 * (1 + len(columns)), 6.4), squeeze=False)
for row in range(4):
    axes[row, 0].imshow(x_test[row].permute(1, 2, 0).numpy())
    for col, (task, who) in enumerate(columns, start=1):
        source = {"teacher": teacher_out, "recombined": final_maps, "ground truth": gt_test}[who][task][row]
        axes[row, col].imshow(show(task, source, gt_test[task][row]), interpolation="nearest")
        if row == 0:
            axes[row, col].set_title(f"{task}\n{who}", fontsize=8)
    for ax in axes[row]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_title("input", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Claims
#
# KAmalEngine states the method's promise in words only; we check it with rules and tolerances fixed before
# looking at this run's numbers (the scenes tolerances of notebook 04):
#
# 1. **The combined network reproduces every teacher exactly**: before any training, each task's output
#    equals its teacher's within a relative difference of $10^{-4}$.
# 2. **Pruned to about one teacher's encoder**: the final encoder has at most 105 % of one teacher's encoder
#    parameters.
# 3. **At that size each task matches its teacher**: segmentation mIoU at least the teacher's minus 0.02;
#    depth RMSE at most 5 % above the teacher's; normals (full profile) mean angle at most 1° above. One line
#    per task (mean over seeds).
# 4. **Recombination is not worse than the same architecture trained from scratch by KD for the same budget**,
#    on every task, within the same tolerances.

# %%
MIOU_TOL, RMSE_REL_TOL, ANGLE_TOL, SIZE_TOL = 0.02, 0.05, 1.0, 1.05


def within_tolerance(task: str, value: float, reference: float) -> bool:
    # whether `value` matches or beats `reference` on the task's headline metric, within its tolerance
    if task == "segmentation":
        return value >= reference - MIOU_TOL
    if task == "depth":
        return value <= reference * (1 + RMSE_REL_TOL)
    return value <= reference + ANGLE_TOL


def headline_mean(model: str, task: str) -> float:
    sel = scores_long[(scores_long.model == model) & (scores_long.task == task) & (scores_long.metric == HEADLINE[task])]
    return mean_std(sel["value"])[0]


RECOMBINED, SCRATCH = "recombined (pruned + retrained)", "same architecture, scratch KD"
final_sizes = [encoder_parameters(run["model"]) for run in recombined_runs.values()]
claims = [
    Claim("the combined network reproduces every teacher exactly", bool(all(v <= EXACT_TOL for v in relative.values())),
          "; ".join(f"{t}: max relative difference {v:.2e}" for t, v in relative.items()) + f" (tolerance {EXACT_TOL:g})"),
    Claim("the pruned encoder has about one teacher's encoder size", bool(max(final_sizes) <= SIZE_TOL * one_teacher_encoder),
          f"final encoders {final_sizes} vs one teacher's {one_teacher_encoder} (tolerance x{SIZE_TOL})"),
]
claims += [
    Claim(f"at that size the recombined network matches the {task} teacher",
          bool(within_tolerance(task, headline_mean(RECOMBINED, task), teacher_scores[task][HEADLINE[task]])),
          f"{HEADLINE[task]}: recombined {headline_mean(RECOMBINED, task):.4f} vs teacher {teacher_scores[task][HEADLINE[task]]:.4f}")
    for task in TASK_LIST
]
claims.append(Claim(
    "recombination is not worse than the same architecture trained from scratch by KD for the same budget",
    bool(all(within_tolerance(t, headline_mean(RECOMBINED, t), headline_mean(SCRATCH, t)) for t in TASK_LIST)),
    "; ".join(f"{t} {HEADLINE[t]}: recombined {headline_mean(RECOMBINED, t):.4f} vs scratch {headline_mean(SCRATCH, t):.4f}"
              for t in TASK_LIST)))
report = check_claims(claims)

# %%
metrics = {
    "headline": ("; ".join(f"{t} {HEADLINE[t]} recombined {headline_mean(RECOMBINED, t):.3f} vs teacher "
                           f"{teacher_scores[t][HEADLINE[t]]:.3f} vs scratch KD {headline_mean(SCRATCH, t):.3f}"
                           for t in TASK_LIST)
                 + f"; encoder {np.mean(final_sizes) / one_teacher_encoder:.0%} of one teacher's"),
    "exactness": relative,
    "scores": scores_long.to_dict(orient="records"),
    "rounds": {str(s): run["rounds"].to_dict(orient="records") for s, run in recombined_runs.items()},
    "owners": {str(s): [np.bincount(o, minlength=len(TASK_LIST)).tolist() for o in run["owners"]]
               for s, run in recombined_runs.items()},
    "adapt": {str(s): {"at_start": info["at_start"], "after": info["after"]} for s, (_, info) in adapted.items()},
    "ablations": ablations,
    "parameters": {"combined_encoder": encoder_parameters(recombined), "final_encoders": final_sizes,
                   "one_teacher_encoder": one_teacher_encoder},
    "tolerances": {"exact": EXACT_TOL, "size": SIZE_TOL, "miou": MIOU_TOL, "rmse_relative": RMSE_REL_TOL,
                   "angle_degrees": ANGLE_TOL},
    "seeds": CFG["seeds"],
    "tasks": TASK_LIST,
}
parameters = dict(PROFILE=PROFILE, SEED=SEED, DEVICE=DEVICE, DATASET=DATASET, TEACHERS=TEACHERS, IMPORTANCE=IMPORTANCE)
path = write_metrics(NOTEBOOK, metrics, claims=report, profile=PROFILE, parameters=parameters)
print("metrics written to runs/" + path.parent.name + "/" + path.name)

# %% [markdown]
# ### What the claims say on this data
#
# On the quick profile (two 64×64 teachers of the zoo, one seed, 2 epochs of adapting and 3 rounds of 2
# epochs of retraining on 512 unlabeled scenes) three of the five checks pass:
#
# - **The combination is exact.** Before anything is trained, the combined network's segmentation and depth
#   equal the teachers' to the last bit (the largest difference is 0), with one encoder of 93,472 parameters,
#   four times one teacher's 23,696 (the zeros of the off-diagonal blocks count).
# - **The random bottleneck costs a lot, and two epochs do not buy it back.** With the bottleneck and adaptors
#   at their random start the maps are useless (mIoU 0.03, depth RMSE 2.1); two epochs of adapting with the
#   rest frozen bring them to mIoU 0.38 and RMSE 0.90, far from the teachers (0.74 and 0.64). The first round
#   of retraining, with everything trainable, does more (mIoU 0.63).
# - **Pruned to exactly one teacher's encoder size, neither task matches its teacher (FAIL, FAIL).** After the
#   last round the recombined network has mIoU 0.603 (teacher 0.737) and depth RMSE 0.804 (teacher 0.641).
#   The ownership figure shows one reason: ranked by the L1 norms of their filters, *all* of the depth
#   teacher's channels in the last encoder stage are pruned (64 of 64 survivors come from the segmentation
#   teacher). A filter's norm before BatchNorm says little about its importance, since BatchNorm rescales it,
#   and the two teachers' filters have different scales; the depth decoder must then be fed from the
#   segmentation teacher's features through the bottleneck. Retraining mixes the teachers (13 % of the second
#   stage's weight mass ends up in blocks that connect them) but, in six epochs, not enough.
# - **Better than the same architecture from scratch (PASS).** Trained by the same KD losses for the same
#   8 epochs from random weights, the final architecture reaches only mIoU 0.300 and RMSE 0.826: starting
#   from the teachers' weights is worth a lot, on segmentation above all.
#
# So, at this budget, the method's premise (reuse the teachers' weights, then compress) clearly beats learning
# the compact network afresh, but pruning by filter norm across teachers loses a whole task's features in the
# last stage. `-p IMPORTANCE random` (exercise 1) and longer retraining are the first things to try; the full
# profile (5 epochs of adapting, 4 rounds of 5 epochs, 8,000 scenes, not yet run on a GPU) gives the
# retraining more room.

# %% [markdown]
# ## Notes on fidelity
#
# There is no paper; this is KAmalEngine's method as its README and figure describe it, with the library's
# code corrected. What is ours, and what the library got wrong:
#
# - **Combination**: the first convolution stacked along its outputs (no input repeat), every later one
#   block-diagonal and stored dense (`groups = 1`) so that the pruning may keep different numbers of channels
#   per teacher and retraining may mix them; BatchNorm parameters and running statistics concatenated. The
#   library's `combine` never advanced its input offset (`ci_offset += ci_offset` leaves it at 0), so its
#   combined network did not reproduce the teachers past the first layer; it also dropped `groups` and
#   `dilation`. Here the exactness is checked before anything is trained, and unsupported layers are refused.
# - **Adaptation (ours, from the library's deleted example)**: a shared 1×1 bottleneck to one teacher's width
#   and a 1×1 adaptor per task in front of each copied decoder, trained first with the rest frozen (and the
#   frozen parts in eval mode, keeping the teachers' BatchNorm statistics). The library's current code has no
#   such stage.
# - **Pruning**: Torch-Pruning's `BasePruner` with the classic L1 filter-norm importance
#   (`MagnitudeImportance(p=1, group_reduction="first", normalizer=None)`), linear schedule over the rounds,
#   encoder channels only. The library's pruner called the removed 0.2 API of Torch-Pruning and discarded the
#   pruned model.
# - **Retraining**: after every round, a fresh Adam over all parameters and teacher-only KD with the dense
#   losses of notebook 04. No labels anywhere: the library's deleted example used ground-truth labels as hard
#   targets.
# - **Data and networks**: the zoo's 64×64 (quick) or 128×128 (full) `scenes` teachers of notebook 04; the
#   library's example used CamVid with an image-compression and a segmentation auto-encoder.
# - **Budget**: the quick profile adapts for 2 epochs and prunes in 3 rounds of 2 epochs each on 512 scenes;
#   the scratch baseline gets the same 8 epochs.
# - **Ablations**: the full profile runs random importance, one-shot pruning and a plain multi-task
#   encoder-decoder of about the pruned size on the first seed; they have not run yet (no GPU has been lent),
#   and a "masked" variant that keeps the teachers' channels apart is left as exercise 3.
# - **Claims**: the checks and their tolerances were written before the first run.
#
# ## Exercises
#
# 1. Run with `-p IMPORTANCE random`. How much of the result is the L1 criterion?
# 2. Prune in one round instead of three (set `rounds` to 1 in `SETTINGS` and give it all the epochs). Is
#    iterative pruning worth it here?
# 3. Keep the off-diagonal blocks at zero during retraining (mask their gradients): can the recombined network
#    still match the teachers without mixing their channels?
# 4. Combine the three teachers of the zoo (segmentation, depth, normals) and prune to one teacher's size.
#    Which task suffers first?
#
# ## References
#
# - KAmalEngine (zju-vipa): the knowledge-amalgamation library whose recombination this notebook corrects;
#   https://github.com/zju-vipa/KamalEngine.
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning Filters for Efficient ConvNets.* ICLR 2017
#   (the L1 filter norm).
# - G. Fang, X. Ma, M. Song, M. B. Mi, X. Wang. *DepGraph: Towards Any Structural Pruning.* CVPR 2023
#   (Torch-Pruning).
# - J. Ye, Y. Ji, X. Wang, K. Ou, D. Tao, M. Song. *Student Becoming the Master.* CVPR 2019 (notebook 04; the
#   dense losses and the teachers).
