"""kae_utils.benchmarks.taskonomy (the mini-Taskonomy of notebooks 08 and 09) and its TaskNet: tasks, corruptions, derived
labels, probe sets disjoint from the zoo's scenes, attribution maps (epsilon-LRP = gradient x input on a ReLU
network; Captum agrees), brute-force transfers (one loop = independent training), samples for the estimators."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from kae_utils import zoo
from kae_utils.benchmarks import taskonomy as tk
from kae_utils.benchmarks.tasks import OUTPUT_KINDS, TRANSFER_TASKS, transfer_task
from kae_utils.data.scene_spec import SceneConfig
from kae_utils.data.scenes import render_scenes
from kae_utils.models import HEAD_OUTPUTS, Add, build_task_encoder, build_tasknet


@pytest.fixture(scope="module")
def batch():
    return render_scenes(6, seed=3, config=SceneConfig(image_size=32))


def _hashes(x: torch.Tensor) -> set[str]:
    x = (x.float() * 255).round().to(torch.uint8).contiguous()
    return {hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in x}


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return nn.functional.cosine_similarity(a.flatten(1).double(), b.flatten(1).double())


# ------------------------------------------------------------------------------------------- tasks


def test_every_taskonomy_task_has_a_transfer_task_and_a_label(batch):
    assert set(tk.TASKONOMY_TASKS) <= set(TRANSFER_TASKS)
    assert OUTPUT_KINDS == HEAD_OUTPUTS
    for name, task in tk.TASKONOMY_TASKS.items():
        spec = transfer_task(name)
        assert task.corruption in tk.CORRUPTIONS and task.cluster in ("2D", "3D", "semantic")
        y = tk.scene_target(batch, name)
        assert len(y) == 6, name
        if spec.dense:
            assert y.shape[-2:] == (32, 32), name
            if spec.output != "classes":
                assert y.shape[1] == spec.channels, name
        elif spec.output == "image-regression":
            assert y.reshape(6, -1).shape[1] == spec.channels, name
    with pytest.raises(ValueError, match="task must be one of"):
        tk.scene_target(batch, "instances")


def test_derived_labels(batch):
    curvature, keypoints = tk.scene_target(batch, "curvature"), tk.scene_target(batch, "keypoints2d")
    for y in (curvature, keypoints):
        assert y.min() >= 0 and y.max() <= 1 and y.mean() > 0
    floor, objects = batch.segmentation == 0, batch.segmentation >= 2
    assert curvature[:, 0][objects].mean() > 10 * curvature[:, 0][floor].mean(), "planes barely bend, objects do"
    layout = tk.scene_target(batch, "layout")
    torch.testing.assert_close(layout[:, :3] * 5, batch.camera["position"].float())
    for name in ("denoising", "colorization", "inpainting"):
        assert torch.equal(tk.scene_target(batch, name), batch.rgb), "the clean image is the label"


def test_corruptions(batch):
    x = batch.rgb
    assert tk.corrupt(x, "clean") is x
    noisy = tk.corrupt(x, "noisy", seed=5)
    assert torch.equal(noisy, tk.corrupt(x, "noisy", seed=5)) and not torch.equal(noisy, tk.corrupt(x, "noisy", seed=6))
    inside = (x > 0.3) & (x < 0.7)
    assert 0.08 < (noisy - x)[inside].std() < 0.12 and noisy.min() >= 0 and noisy.max() <= 1
    grey = tk.corrupt(x, "grey")
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    masked = tk.corrupt(x, "masked")
    assert (masked[..., 8:24, 8:24] == 0.5).all() and torch.equal(masked[..., :8, :], x[..., :8, :])
    with pytest.raises(ValueError, match="corruption must be one of"):
        tk.corrupt(x, "blur")


def test_profiles_names_and_relevant_sets():
    quick, full = tk.settings("quick"), tk.settings("full")
    assert len(quick["sources"]) == 10 and len(quick["targets"]) == 9 and "colorization" not in quick["targets"]
    assert len(full["sources"]) == 18 and len(full["targets"]) == 16
    assert {"colorization", "inpainting"} == set(full["sources"]) - set(full["targets"])
    assert tk.zoo_name("occlusion_edges", "quick") == "taskonomy32-occlusion-edges"
    assert tk.zoo_name("depth", "full") == "taskonomy64-depth"
    assert tk.relevant_count(19) == 5 and tk.relevant_count(9) == 2 and tk.relevant_count(17) == 4
    for profile in ("quick", "full"):
        for task in tk.settings(profile)["tasks"]:
            e = zoo.entry(tk.zoo_name(task, profile))
            assert e.kind == "transfer" and e.tasks == (task,) and e.profile == profile
            assert e.data["seed"] == tk.ZOO_SEED != 0 and e.data["input"] == tk.TASKONOMY_TASKS[task].corruption
            assert set(e.used_by) == {"08", "09"}
    with pytest.raises(ValueError, match="PROFILE must be one of"):
        tk.settings("medium")


# ---------------------------------------------------------------------------------------- data


def test_probe_sets_and_target_sets_are_disjoint_from_the_zoo_scenes():
    e = zoo.entry(tk.zoo_name("depth", "quick"))
    x_zoo, _ = zoo.entry_data({**e.data, "n": 512})
    ranges = tk.notebook_ranges("quick")
    assert ranges["target-train"] == (0, 128) and ranges["target-val"] == (128, 128) and ranges["probes"] == (256, 64)
    train = tk.transfer_split(["depth"], *ranges["target-train"], image_size=32)
    notebook = _hashes(train.inputs["clean"])
    for name in tk.PROBE_SETS:
        probes = tk.probe_images(name, "quick", n=16)
        assert probes.shape == (16, 3, 32, 32)
        notebook |= _hashes(probes)
    assert not _hashes(x_zoo) & notebook


def test_target_sets_are_the_notebook_ranges():
    train, val = tk.target_sets("quick")
    assert len(train) == 128 and len(val) == 128 and set(train.labels) == set(tk.settings("quick")["targets"])
    assert train.info["start"] == 0 and val.info["start"] == 128 and train.info["image_size"] == 32
    assert not _hashes(train.inputs["clean"]) & _hashes(val.inputs["clean"])


def test_probe_sets_in_domain_and_shifted_share_their_scenes():
    flat, textured = tk.probe_images("in-domain", "quick", n=4), tk.probe_images("shifted", "quick", n=4)
    assert not torch.equal(flat, textured)
    start = tk.notebook_ranges("quick")["probes"][0]
    geometry = [render_scenes(4, seed=0, config=SceneConfig(image_size=32, domain=d), start=start).segmentation
                for d in ("flat", "textured")]
    assert torch.equal(*geometry), "the same rooms, objects and cameras"
    assert tk.probe_images("out-of-domain", "full", n=2).shape == (2, 3, 64, 64)
    torch.testing.assert_close(tk.probe_images("in-domain", "quick", n=4), flat)
    with pytest.raises(ValueError, match="probe set must be one of"):
        tk.probe_images("coco", "quick")


def test_transfer_split_holds_each_corruption_once():
    split = tk.transfer_split(["denoising", "depth", "colorization"], 0, 5, image_size=32, seed=2)
    assert set(split.inputs) == {"clean", "noisy", "grey"} and len(split) == 5
    assert torch.equal(split.x("depth"), split.inputs["clean"]) and torch.equal(split.x("denoising"), split.inputs["noisy"])


def test_labels_at_the_head_resolution(batch):
    seg = tk.labels_at(batch.segmentation, "segmentation", 8)
    assert seg.shape == (6, 8, 8) and seg.dtype == torch.long
    assert set(seg.unique().tolist()) <= set(batch.segmentation.unique().tolist())
    edges = tk.labels_at(batch.occlusion_edges, "occlusion_edges", 8)
    assert edges.sum() >= batch.occlusion_edges.sum() / 16 and set(edges.unique().tolist()) <= {0.0, 1.0}
    normals = tk.labels_at(batch.normals, "normals", 8)
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(6, 8, 8), atol=1e-4, rtol=0)
    depth = tk.labels_at(batch.depth, "depth", 16)
    torch.testing.assert_close(depth.mean(), batch.depth.mean(), atol=1e-4, rtol=1e-4)
    layout = tk.scene_target(batch, "layout")
    assert tk.labels_at(layout, "layout", 8) is layout


# --------------------------------------------------------------------------------------- TaskNet


@pytest.mark.parametrize("output", HEAD_OUTPUTS)
def test_tasknet_outputs(output):
    channels = {"depth": 1, "normals": 3, "classes": 7, "image-classes": 7}.get(output, 2)
    net = build_tasknet(output, channels, widths=(4, 8), code_channels=3, seed=1).eval()
    x = torch.rand(2, 3, 16, 16)
    out = net(x)
    assert net.features(x).shape == (2, 3, 4, 4)
    assert out.shape == ((2, channels, 16, 16) if net.dense else (2, channels))
    if output == "depth":
        assert (out > 0).all()
    if output == "normals":
        torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 16, 16), atol=1e-5, rtol=0)
    again = build_tasknet(output, channels, widths=(4, 8), code_channels=3, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))


def test_the_representation_is_non_negative_as_taskonomy_s():
    x = torch.randn(3, 3, 16, 16)
    assert (build_task_encoder(widths=(4, 8), code_channels=3, seed=2)(x) >= 0).all()
    signed = build_task_encoder(widths=(4, 8), code_channels=3, seed=2, code_relu=False).eval()
    assert (signed(x) < 0).any()
    for task in tk.settings("quick")["tasks"]:
        assert zoo.entry(tk.zoo_name(task, "quick")).arch_args["code_relu"] is True


def test_tasknet_is_captum_friendly_and_checks_its_arguments():
    net = build_tasknet("regression", 3, widths=(4, 8, 8), blocks=2, seed=0)
    leaves = [m for m in net.encoder.modules() if not list(m.children())]
    assert len({id(m) for m in leaves}) == len(leaves)
    assert {type(m) for m in leaves} == {nn.Conv2d, nn.BatchNorm2d, nn.ReLU, Add}
    assert not any(m.inplace for m in leaves if isinstance(m, nn.ReLU))
    assert net.encoder.factor == 8 and net(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 3, 12, 12))
    with pytest.raises(ValueError, match="output must be one of"):
        build_tasknet("ranking", 1)
    with pytest.raises(ValueError, match="a depth head has 1"):
        build_tasknet("depth", 2)


# ---------------------------------------------------------------------------------- attribution


def _trained_encoder(seed: int = 1) -> nn.Module:
    """A small encoder with non-trivial BatchNorm statistics and weights."""
    enc = build_task_encoder(widths=(4, 8), code_channels=3, blocks=1, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    return enc.eval()


def test_the_attribution_names_are_the_transferability_packages():
    """The attribution maps are defined in kae_utils.methods.transferability.attribution; the mini-Taskonomy
    re-exports the same objects (notebooks 08 and 09 call them as ``taskonomy.attribution_maps``)."""
    from kae_utils.methods import transferability as tr
    from kae_utils.methods.transferability import attribution

    for name in attribution.__all__:
        assert getattr(tk, name) is getattr(attribution, name) is getattr(tr, name), name
        assert name in tk.__all__ and name in tr.__all__, name
    assert tk.attribution_maps.__module__ == "kae_utils.methods.transferability.attribution"


def test_attribution_maps_are_the_documented_gradients():
    enc = _trained_encoder()
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(enc(xr).sum(), xr)
    torch.testing.assert_close(tk.attribution_maps(enc, x, "gradient*input"), (grad * x).mean(dim=1))
    torch.testing.assert_close(tk.attribution_maps(enc, x, "saliency"), grad.abs().mean(dim=1))
    absolute = tk.attribution_maps(enc, x, "gradient*input", absolute=True)  # DEPARA's layer selection
    torch.testing.assert_close(absolute, (grad * x).abs().mean(dim=1))
    assert (absolute >= tk.attribution_maps(enc, x, "gradient*input").abs()).all()
    one_by_one = torch.cat([tk.attribution_maps(enc, x[i:i + 1], "gradient*input") for i in range(5)])
    torch.testing.assert_close(one_by_one, tk.attribution_maps(enc, x, "gradient*input", batch_size=2))
    enc.train()
    tk.attribution_maps(enc, x)
    assert enc.training, "the encoder's mode is restored"
    with pytest.raises(ValueError, match="attribution method must be one of"):
        tk.attribution_maps(enc, x, "deeplift")


def test_epsilon_lrp_equals_gradient_times_input_on_a_relu_network():
    enc = _trained_encoder(2)
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    gi, elrp = tk.attribution_maps(enc, x, "gradient*input"), tk.attribution_maps(enc, x, "epsilon-lrp")
    assert not torch.equal(gi, elrp), "the rule changes the backward pass"
    assert _cos(gi, elrp).min() > 0.999
    big = tk.attribution_maps(enc, x, "epsilon-lrp", eps=10.0)
    assert _cos(gi, big).min() < 0.999, "a large epsilon absorbs relevance"
    with tk.epsilon_lrp_relus(enc):
        pass
    assert all("forward" not in vars(m) for m in enc.modules()), "the ReLUs are restored"


def test_captum_lrp_agrees_once_the_sum_is_written_as_layers():
    captum = pytest.importorskip("captum.attr")
    from captum.attr._utils.lrp_rules import EpsilonRule

    enc = _trained_encoder(3)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    ours = tk.attribution_maps(enc, x, "epsilon-lrp")

    class SumAsLayers(nn.Module):  # sum(encoder(x)) = h w * mean over the grid of a 1x1 convolution of ones
        def __init__(self, encoder: nn.Module) -> None:
            super().__init__()
            self.encoder, self.ones, self.pool = encoder, nn.Conv2d(3, 1, 1, bias=False), nn.AdaptiveAvgPool2d(1)
            nn.init.ones_(self.ones.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(self.ones(self.encoder(x)))

    wrapped = SumAsLayers(copy.deepcopy(enc)).eval()
    for m in wrapped.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, Add)):
            m.rule = EpsilonRule(epsilon=1e-4)
    lrp = captum.LRP(wrapped).attribute(x.clone().requires_grad_(True)).mean(dim=1)
    assert _cos(lrp, ours).min() > 0.99
    saliency = captum.Saliency(lambda v: enc(v).flatten(1).sum(1)).attribute(x.clone().requires_grad_(True))
    torch.testing.assert_close(saliency.mean(dim=1), tk.attribution_maps(enc, x, "saliency"))


# ------------------------------------------------------------------------------------- transfers


def _tiny_transfer_data(tasks):
    return (tk.transfer_split(tasks, 0, 12, image_size=16, seed=4), tk.transfer_split(tasks, 12, 8, image_size=16, seed=4))


def test_transfer_losses_rank_every_source_for_every_target_but_itself():
    tasks = ["depth", "segmentation", "largest_class", "denoising"]
    train, val = _tiny_transfer_data(tasks)
    encoders = {"depth": _trained_encoder(1), "segmentation": _trained_encoder(2), "colorization": _trained_encoder(3)}
    setting = tk.TransferSetting(hidden=4, steps=5, label_size=8)
    result = tk.transfer_losses(encoders, tasks, train, val, setting)
    assert set(result.losses) == set(tasks)
    assert set(result.losses["depth"]) == {"segmentation", "colorization"}, "no source transfers to its own task"
    assert set(result.losses["denoising"]) == set(encoders)
    assert all(np.isfinite(v) for row in result.losses.values() for v in row.values())
    assert set(result.seconds) == set(encoders) and result.total_seconds > 0
    assert result.ranking("denoising")[0] == min(result.losses["denoising"], key=result.losses["denoising"].get)
    threads = torch.get_num_threads()
    again = tk.transfer_losses(encoders, tasks, train, val, setting, threads=1)
    for t in tasks:
        assert again.losses[t] == pytest.approx(result.losses[t], rel=1e-4), "deterministic, whatever the threads"
    assert torch.get_num_threads() == threads, "the thread count is restored"


def test_training_the_heads_together_is_training_them_apart():
    tasks = ["depth", "normals", "occlusion_edges"]
    train, val = _tiny_transfer_data(tasks)
    encoders = {"colorization": _trained_encoder(5)}
    setting = tk.TransferSetting(hidden=4, steps=8, label_size=8)
    together = tk.transfer_losses(encoders, tasks, train, val, setting).losses
    for t in tasks:
        alone = tk.transfer_losses(encoders, [t], train, val, setting).losses
        assert alone[t]["colorization"] == pytest.approx(together[t]["colorization"], rel=1e-4)


def test_every_source_starts_from_the_same_head():
    setting = tk.TransferSetting(hidden=4)
    a, b = tk.transfer_head("depth", (3, 4, 4), setting), tk.transfer_head("depth", (3, 4, 4), setting)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = tk.transfer_head("reshading", (3, 4, 4), setting)
    assert not torch.equal(a.body[0].weight, c.body[0].weight), "targets get their own initial heads"
    assert tk.transfer_head("layout", (3, 4, 4), setting)(torch.rand(2, 3, 4, 4)).shape == (2, 4)


# ---------------------------------------------------------------------------- estimator samples


def test_estimator_samples(batch):
    feats = torch.randn(6, 3, 8, 8)
    x, y = tk.estimator_samples(feats, batch.segmentation, "segmentation", max_samples=100)
    assert x.shape == (100, 27) and y.dtype == np.int64 and y.max() < 7
    x, y = tk.estimator_samples(feats, batch.occlusion_edges, "occlusion_edges", neighbourhood=1)
    assert x.shape == (6 * 64, 3) and set(np.unique(y)) <= {0, 1}
    x, y = tk.estimator_samples(feats, batch.normals, "normals", neighbourhood=1)
    assert y.shape == (6 * 64, 3) and y.dtype == np.float64
    x, y = tk.estimator_samples(feats, batch.largest_class, "largest_class")
    assert x.shape == (6, 192) and y.dtype == np.int64
    x, y = tk.estimator_samples(feats, tk.scene_target(batch, "layout"), "layout")
    assert y.shape == (6, 4) and y.dtype == np.float64
    x, y = tk.estimator_samples(feats, batch.object_count, "object_count")
    assert y.shape == (6, 1) and y.dtype == np.float64
    assert tk.categorical("segmentation") and tk.categorical("occlusion_edges") and tk.categorical("largest_class")
    assert not tk.categorical("depth") and not tk.categorical("layout")


def test_the_estimators_samples_are_re_exported_and_the_features_are_predict_maps():
    """benchmarks.samples defines the labels and samples; the mini-Taskonomy re-exports the same objects.
    encoder_features is batched eval-mode inference: a plain forward pass in float32, the mode restored."""
    from kae_utils.benchmarks import samples

    for name in samples.__all__:
        assert getattr(tk, name) is getattr(samples, name) and name in tk.__all__, name
    encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).train()
    x = torch.randn(5, 3, 8, 8)
    from kae_utils.training.numerics import using

    with using("fp32", "cpu", channels_last=False):
        features = tk.encoder_features(encoder, x, batch_size=2)
    assert encoder.training
    with torch.no_grad():  # the same batches, one plain forward pass each
        assert torch.equal(features, torch.cat([encoder.eval()(x[i:i + 2]) for i in range(0, 5, 2)]))


def test_ground_truth_is_the_mean_of_one_transfer_run_per_seed():
    tasks = ["depth", "largest_class"]
    train, val = _tiny_transfer_data(tasks)
    encoders = {"segmentation": _trained_encoder(2), "colorization": _trained_encoder(3)}
    transfer = {"hidden": 4, "steps": 5, "label_size": 8}
    truth, runs = tk.ground_truth(encoders, tasks, train, val, transfer, seeds=[0, 1])
    assert len(runs) == 2
    for seed, run in zip([0, 1], runs, strict=True):
        alone = tk.transfer_losses(encoders, tasks, train, val, tk.TransferSetting(**transfer, seed=seed)).losses
        for t in tasks:
            assert run.losses[t] == pytest.approx(alone[t], rel=1e-4)
    for t in tasks:
        for src in encoders:
            assert truth[t][src] == pytest.approx((runs[0].losses[t][src] + runs[1].losses[t][src]) / 2, rel=1e-9)
    assert runs[0].losses["depth"] != runs[1].losses["depth"], "the seed changes the transfer heads"
    with pytest.raises(ValueError, match="at least one seed"):
        tk.ground_truth(encoders, tasks, train, val, transfer, seeds=[])


# ------------------------------------------------------------------------------------- the ground truth's second run
def test_second_run_reuses_the_ground_truths_second_seed_and_otherwise_trains_one(monkeypatch):
    first = tk.TransferResult(losses={"depth": {"a": 1.0, "b": 2.0}}, metrics={}, seconds={})
    second = tk.TransferResult(losses={"depth": {"a": 3.0, "b": 0.5}}, metrics={}, seconds={})
    calls = []

    def fake_transfer_losses(encoders, targets, train, val, setting, device, desc, threads):
        calls.append(setting.seed)
        return second

    monkeypatch.setattr(tk, "transfer_losses", fake_transfer_losses)
    assert tk.second_run([first, second], {}, ["depth"], None, None, {}, 7) is second and calls == []
    assert tk.second_run([first], {}, ["depth"], None, None, {"steps": 5}, 7) is second and calls == [7]
    with pytest.raises(ValueError, match="at least one"):
        tk.second_run([], {}, ["depth"], None, None, {}, 7)
    assert tk.loss_scores(second, ["depth"]) == {"depth": {"a": -3.0, "b": -0.5}}


def test_transfer_ceiling_scores_the_second_run_against_the_first():
    """With two ground-truth runs nothing is trained: run 2 is scored against run 1 per target (golden values)."""
    run1 = tk.TransferResult({"depth": {"a": 1.0, "b": 2.0, "c": 3.0}, "edges": {"a": 1.0, "b": 2.0, "c": 3.0}}, {}, {})
    run2 = tk.TransferResult({"depth": {"a": 1.5, "b": 2.5, "c": 3.5}, "edges": {"a": 3.0, "b": 2.0, "c": 1.0}}, {}, {})
    ceiling = tk.transfer_ceiling([run1, run2], {}, ["depth", "edges"], None, None, {}, seed=1)
    assert ceiling.second_run is run2 and ceiling.first_run == run1.losses
    assert ceiling.scores["depth"] == {"a": -1.5, "b": -2.5, "c": -3.5}
    assert ceiling.spearman == pytest.approx({"depth": 1.0, "edges": -1.0})
