"""Tests for kae_utils.data.shapes: rendering, labels, determinism, difficulty knobs, splits and views."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from kae_utils.data.shapes import (
    ShapesBatch,
    ShapesClassView,
    ShapesSplit,
    composite_class_names,
    composite_labels,
    generate_shapes,
    make_shapes_split,
)
from kae_utils.data.shapes_config import (
    ATTRIBUTE_VALUES,
    ATTRIBUTES,
    COLOUR_RGB,
    SHAPES_PRESETS,
    ShapesConfig,
)
from kae_utils.data.subsets import ClassSubset

#: Easy images without pixel noise or background clutter: every attribute can be read off exactly.
CLEAN = ShapesConfig.easy(noise=0.0, clutter=0.0)
PALETTE = torch.tensor([COLOUR_RGB[c] for c in ATTRIBUTE_VALUES["colour"]])
CENTRES = torch.arange(32, dtype=torch.float32) + 0.5


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Module fixtures run before conftest's per-test one-thread fixture; a busy machine needs it too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def default_batch() -> ShapesBatch:
    with one_thread():
        return generate_shapes(2000, seed=0)


@pytest.fixture(scope="module")
def clean_batch() -> ShapesBatch:
    with one_thread():
        return generate_shapes(768, seed=1, config=CLEAN, return_masks=True)


@pytest.fixture(scope="module")
def split() -> ShapesSplit:
    with one_thread():
        return make_shapes_split(300, 200, seed=2)


def areas_and_centroids(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    area = masks.sum((1, 2))
    cx = (masks.sum(1) * CENTRES).sum(1) / area
    cy = (masks.sum(2) * CENTRES).sum(1) / area
    return area, cx, cy


# -------------------------------------------------------------------------------------- constants


def test_attributes_and_values():
    assert ATTRIBUTES == ("shape", "colour", "size", "position", "fill")
    assert tuple(ATTRIBUTE_VALUES) == ATTRIBUTES
    counts = {a: len(v) for a, v in ATTRIBUTE_VALUES.items()}
    assert counts == {"shape": 8, "colour": 6, "size": 3, "position": 9, "fill": 4}
    assert ATTRIBUTE_VALUES["size"] == ("small", "medium", "large")
    assert ATTRIBUTE_VALUES["position"][0] == "top-left" and ATTRIBUTE_VALUES["position"][4] == "centre"
    assert ATTRIBUTE_VALUES["fill"][0] == "solid"
    for values in ATTRIBUTE_VALUES.values():
        assert len(set(values)) == len(values) and all("/" not in v for v in values)


def test_colours_are_far_apart_in_rgb():
    assert tuple(COLOUR_RGB) == ATTRIBUTE_VALUES["colour"]
    assert ((PALETTE >= 0) & (PALETTE <= 1)).all()
    dist = torch.cdist(PALETTE, PALETTE) + 10 * torch.eye(len(PALETTE))
    assert dist.min() > 0.5  # several noise standard deviations (0.08) apart, per pixel


# ---------------------------------------------------------------------------------------- batches


def test_batch_shapes_dtypes_and_range(default_batch):
    b = default_batch
    assert len(b) == 2000 and b.masks is None
    assert b.images.shape == (2000, 3, 32, 32) and b.images.dtype == torch.float32
    assert b.images.min() >= 0.0 and b.images.max() <= 1.0
    assert tuple(b.labels) == ATTRIBUTES
    for a, y in b.labels.items():
        assert y.shape == (2000,) and y.dtype == torch.int64
        assert y.min() >= 0 and y.max() < len(ATTRIBUTE_VALUES[a])


def test_other_image_sizes_and_masks():
    b = generate_shapes(5, config=ShapesConfig(image_size=48), return_masks=True)
    assert b.images.shape == (5, 3, 48, 48) and b.masks is not None and b.masks.shape == (5, 48, 48)
    assert b.masks.min() >= 0.0 and b.masks.max() <= 1.0 and (b.masks.sum((1, 2)) > 10).all()
    empty = generate_shapes(0)
    assert len(empty) == 0 and empty.images.shape == (0, 3, 32, 32)


def test_labels_are_roughly_uniform(default_batch):
    n = len(default_batch)
    for a, y in default_batch.labels.items():
        k = len(ATTRIBUTE_VALUES[a])
        counts = torch.bincount(y, minlength=k).double()
        chi2 = ((counts - n / k) ** 2 / (n / k)).sum().item()
        # the 99.9 % quantile of chi-square with k-1 <= 8 degrees of freedom is <= 26.2
        assert chi2 < 27.0, (a, counts.tolist())
        assert counts.min() > 0.7 * n / k
    composite, _ = composite_labels(default_batch.labels)
    assert torch.bincount(composite, minlength=48).min() > 15  # about 42 of each of the 48 classes


def test_subset_with_positions_mask_and_slice(clean_batch):
    idx = [5, 0, 7]
    sub = clean_batch.subset(idx)
    assert len(sub) == 3 and torch.equal(sub.images, clean_batch.images[idx])
    assert sub.masks is not None and torch.equal(sub.masks, clean_batch.masks[idx])
    assert all(torch.equal(sub.labels[a], clean_batch.labels[a][idx]) for a in ATTRIBUTES)
    red = clean_batch.labels["colour"] == 0
    assert (clean_batch.subset(red).labels["colour"] == 0).all() and len(clean_batch.subset(red)) == red.sum()
    assert torch.equal(clean_batch.subset(slice(10, 20)).images, clean_batch.images[10:20])
    assert generate_shapes(3).subset([1]).masks is None


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_same_images_other_seed_other_images():
    a, b = generate_shapes(40, seed=7), generate_shapes(40, seed=7)
    assert torch.equal(a.images, b.images)
    assert all(torch.equal(a.labels[k], b.labels[k]) for k in ATTRIBUTES)
    c = generate_shapes(40, seed=8)
    assert (a.images - c.images).abs().amax((1, 2, 3)).min() > 0.1  # every image differs
    assert sum(int((a.labels[k] != c.labels[k]).sum()) for k in ATTRIBUTES) > 100


def test_chunks_equal_the_whole_across_block_borders():
    whole = generate_shapes(600, seed=3, return_masks=True)
    for cut in (50, 256, 300):
        first = generate_shapes(cut, seed=3, return_masks=True)
        second = generate_shapes(600 - cut, seed=3, start=cut, return_masks=True)
        assert torch.equal(torch.cat([first.images, second.images]), whole.images)
        assert torch.equal(torch.cat([first.masks, second.masks]), whole.masks)
        for k in ATTRIBUTES:
            assert torch.equal(torch.cat([first.labels[k], second.labels[k]]), whole.labels[k])
    offset = generate_shapes(10, seed=3, start=590)
    assert torch.equal(offset.images, whole.images[590:])


def test_labels_do_not_depend_on_the_difficulty_knobs():
    a, b = generate_shapes(100, seed=4), generate_shapes(100, seed=4, config=ShapesConfig.hard())
    assert all(torch.equal(a.labels[k], b.labels[k]) for k in ATTRIBUTES)
    assert not torch.equal(a.images, b.images)


# ------------------------------------------------------------------------------ composite labels


def test_composite_golden_values_and_names():
    labels = {"shape": torch.tensor([2, 0, 7, 3]), "colour": torch.tensor([5, 0, 5, 1])}
    y, names = composite_labels(labels)
    assert y.tolist() == [17, 0, 47, 19] and y.dtype == torch.int64
    assert len(names) == 48 and names[17] == "triangle/cyan"
    assert (names[0], names[19], names[47]) == ("circle/red", "diamond/green", "ring/cyan")
    assert names == composite_class_names(("shape", "colour"))
    reverse, reverse_names = composite_labels(labels, ("colour", "shape"))
    assert reverse.tolist() == [5 * 8 + 2, 0, 5 * 8 + 7, 1 * 8 + 3] and reverse_names[42] == "cyan/triangle"


def test_composite_three_attributes_and_single_attribute():
    labels = {
        "size": torch.tensor([2, 0, 1]),
        "fill": torch.tensor([3, 0, 1]),
        "position": torch.tensor([8, 0, 4]),
    }
    y, names = composite_labels(labels, ("size", "fill", "position"))
    assert y.tolist() == [(2 * 4 + 3) * 9 + 8, 0, (1 * 4 + 1) * 9 + 4] and len(names) == 3 * 4 * 9
    assert names[y[0]] == "large/dots/bottom-right" and names[y[2]] == "medium/stripes/centre"
    single, single_names = composite_labels(labels, "fill")
    assert torch.equal(single, labels["fill"]) and single_names == ATTRIBUTE_VALUES["fill"]


def test_composite_decomposes_back(default_batch):
    y, _ = composite_labels(default_batch.labels, ("shape", "colour"))
    assert torch.equal(y // 6, default_batch.labels["shape"]) and torch.equal(
        y % 6, default_batch.labels["colour"]
    )


def test_composite_errors():
    labels = {"shape": torch.tensor([0]), "colour": torch.tensor([1])}
    with pytest.raises(ValueError, match="'shape', 'colour', 'size', 'position', 'fill'"):
        composite_labels(labels, ("shape", "texture"))
    with pytest.raises(ValueError, match="distinct"):
        composite_labels(labels, ("shape", "shape"))
    with pytest.raises(ValueError, match="empty"):
        composite_labels(labels, ())
    with pytest.raises(ValueError, match="not in these labels; allowed: 'shape', 'colour'"):
        composite_labels(labels, ("shape", "size"))


# ------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_size", 8),
        ("image_size", 32.0),
        ("image_size", True),
        ("noise", -0.1),
        ("noise", "high"),
        ("clutter", 1.5),
        ("distractors", 5),
        ("distractors", -1),
        ("distractors", 1.5),
        ("occlusion", 1.01),
        ("rotation_jitter", 181.0),
        ("scale_jitter", 0.6),
        ("position_jitter", -0.5),
        ("colour_jitter", 0.7),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"ShapesConfig.{field} must be"):
        ShapesConfig(**{field: value})


def test_config_presets_and_frozen():
    assert SHAPES_PRESETS == ("easy", "default", "hard")
    assert ShapesConfig.preset("default") == ShapesConfig()
    easy = ShapesConfig.preset("easy")
    assert easy == ShapesConfig.easy() and easy.distractors == 0 and easy.occlusion == 0.0
    assert easy.noise < ShapesConfig().noise < ShapesConfig.hard().noise
    assert (
        ShapesConfig.easy(noise=0.0).noise == 0.0
        and ShapesConfig.preset("hard", image_size=64).image_size == 64
    )
    assert ShapesConfig().as_dict()["distractors"] == 2
    with pytest.raises(ValueError, match="'easy', 'default', 'hard'"):
        ShapesConfig.preset("medium")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ShapesConfig().noise = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 2, "seed": -1}, "seed must be"),
        ({"n": 2, "start": -3}, "start must be"),
        ({"n": 2, "start": 2**32}, "start \\+ n"),
        ({"n": 2, "config": "easy"}, "config must be a ShapesConfig"),
    ],
)
def test_generate_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_shapes(**kwargs)


# ------------------------------------------------------------------------ what the labels measure


def test_object_colour_is_measurable(clean_batch):
    b = clean_batch
    inside = b.masks == 1.0  # fully covered, no anti-aliased edge
    assert (inside.sum((1, 2)) > 0).all()
    mean = (b.images * inside[:, None]).sum((2, 3)) / inside.sum((1, 2))[:, None]
    assert torch.equal(torch.cdist(mean, PALETTE).argmin(1), b.labels["colour"])  # every fill pattern
    solid = inside & (b.labels["fill"] == 0)[:, None, None]  # no colour jitter: solid objects are exact
    expected = PALETTE[b.labels["colour"]][:, :, None, None].expand_as(b.images)
    assert torch.allclose(b.images.permute(0, 2, 3, 1)[solid], expected.permute(0, 2, 3, 1)[solid], atol=1e-5)


def test_colour_jitter_moves_the_colour_but_not_the_label():
    jittered = generate_shapes(
        256, seed=1, config=dataclasses.replace(CLEAN, colour_jitter=0.1), return_masks=True
    )
    solid = (jittered.masks == 1.0) & (jittered.labels["fill"] == 0)[:, None, None]
    deviation = (
        jittered.images.permute(0, 2, 3, 1)[solid]
        - PALETTE[jittered.labels["colour"]][:, None, None, :].expand(-1, 32, 32, -1)[solid]
    ).abs()
    assert 0.05 < deviation.max() <= 0.1 + 1e-5
    inside = jittered.masks == 1.0
    mean = (jittered.images * inside[:, None]).sum((2, 3)) / inside.sum((1, 2))[:, None]
    correct = torch.cdist(mean, PALETTE).argmin(1) == jittered.labels["colour"]
    assert correct[jittered.labels["fill"] == 0].all()  # jitter <= 0.1 per channel: < half the gaps
    assert correct.float().mean() > 0.95  # dim patterned cyan can land near blue or green


def test_size_label_orders_mask_areas(clean_batch):
    area, _, _ = areas_and_centroids(clean_batch.masks)
    size, shape = clean_batch.labels["size"], clean_batch.labels["shape"]
    means = [area[size == s].mean().item() for s in range(3)]
    assert means[0] < means[1] < means[2] and means[2] > 2.5 * means[0]
    for k in range(8):  # the same order within every shape
        per_shape = [area[(size == s) & (shape == k)].mean().item() for s in range(3)]
        assert per_shape[0] < per_shape[1] < per_shape[2], (k, per_shape)


def test_position_label_matches_the_mask_centroid(clean_batch):
    _, cx, cy = areas_and_centroids(clean_batch.masks)
    cell = (cy // (32 / 3)).clamp(max=2).long() * 3 + (cx // (32 / 3)).clamp(max=2).long()
    assert (cell == clean_batch.labels["position"]).float().mean() > 0.95


# ------------------------------------------------------------------------------ difficulty knobs


def test_noise_changes_pixels_only_by_the_noise():
    clean, noisy = (
        generate_shapes(256, seed=5, config=CLEAN),
        generate_shapes(256, seed=5, config=dataclasses.replace(CLEAN, noise=0.1)),
    )
    diff = noisy.images - clean.images
    interior = (clean.images > 0.3) & (clean.images < 0.7)  # where clipping to [0, 1] is rare
    assert 0.08 < diff[interior].std() < 0.12 and diff[interior].mean().abs() < 0.01


def test_clutter_zero_gives_flat_grey_backgrounds():
    flat = generate_shapes(256, seed=6, config=CLEAN, return_masks=True)
    busy = generate_shapes(256, seed=6, config=dataclasses.replace(CLEAN, clutter=1.0), return_masks=True)
    background = (flat.masks == 0)[:, None].expand_as(flat.images)
    for b, (lo, hi) in ((flat, (0.0, 1e-6)), (busy, (0.05, 1.0))):
        x = b.images.masked_fill(~background, float("nan")).flatten(1)
        spread = (x.nan_to_num(-1.0).amax(1) - x.nan_to_num(2.0).amin(1)).median()  # max - min per image
        assert lo <= spread <= hi


def test_distractors_stay_behind_the_main_object():
    alone = generate_shapes(256, seed=7, config=CLEAN, return_masks=True)
    crowded = generate_shapes(
        256, seed=7, config=dataclasses.replace(CLEAN, distractors=3), return_masks=True
    )
    assert torch.equal(alone.masks, crowded.masks)
    inside = (alone.masks == 1.0)[:, None].expand_as(alone.images)
    assert torch.equal(alone.images[inside], crowded.images[inside])
    changed = (crowded.images - alone.images).abs().amax(1) > 0.05
    assert (changed.sum((1, 2)) > 3).float().mean() > 0.95  # distractors are visible in (nearly) every image


def test_occlusion_probability_and_occluded_pixels():
    plain = generate_shapes(256, seed=8, config=CLEAN, return_masks=True)
    for p in (0.0, 0.5, 1.0):
        occluded = generate_shapes(
            256, seed=8, config=dataclasses.replace(CLEAN, occlusion=p), return_masks=True
        )
        assert (occluded.masks <= plain.masks).all()
        changed = (occluded.images != plain.images).flatten(1).any(1).float().mean().item()
        hidden = (occluded.masks.sum((1, 2)) < plain.masks.sum((1, 2)) - 1.0).float().mean().item()
        if p == 0.0:
            assert changed == 0.0 and torch.equal(occluded.masks, plain.masks)
        else:  # a bar in about p of the images (binomial sd ~0.03), nearly always across the object
            assert abs(changed - p) < 0.12 and hidden > 0.9 * changed


def test_rotation_jitter_turns_squares():
    def fill_ratio(config: ShapesConfig) -> float:
        b = generate_shapes(512, seed=9, config=config, return_masks=True)
        keep = (b.labels["shape"] == 1) & (b.labels["position"] == 4)  # squares in the middle, never cut
        ratios = []
        for m in b.masks[keep] > 0.5:
            rows, cols = m.any(1).nonzero(), m.any(0).nonzero()
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            ratios.append(m.sum().item() / box.item())
        return sum(ratios) / len(ratios)

    upright = fill_ratio(dataclasses.replace(CLEAN, rotation_jitter=0.0))
    turned = fill_ratio(dataclasses.replace(CLEAN, rotation_jitter=90.0))
    assert upright > 0.95 and turned < 0.85  # a square turned by t fills 1 / (1 + sin 2t) of its box


def test_scale_jitter_spreads_the_areas_within_a_size_bin():
    def spread(scale_jitter: float) -> float:
        config = dataclasses.replace(CLEAN, scale_jitter=scale_jitter, position_jitter=0.0)
        b = generate_shapes(768, seed=10, config=config, return_masks=True)
        keep = (b.labels["shape"] == 0) & (b.labels["size"] == 0)  # small circles at cell centres: never cut
        area = b.masks[keep].sum((1, 2))
        return (area.std() / area.mean()).item()

    assert spread(0.0) < 0.03 and spread(0.3) > 0.15  # radius * U(0.7, 1.3): area spread ~0.35


# ---------------------------------------------------------------------------------- learnability


def test_default_task_is_neither_trivial_nor_impossible(default_batch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x, labels = default_batch.images, default_batch.labels
    train, test = slice(0, 1500), slice(1500, 2000)
    pooled = F.avg_pool2d(x, 4).flatten(1).numpy()  # an 8x8 grid of mean colours, 192 features
    scaler = StandardScaler().fit(pooled[train])
    y = labels["colour"].numpy()
    with threadpool_limits(1):  # BLAS threads on a busy 2-core machine make the fit 30x slower
        clf = LogisticRegression(C=0.1, max_iter=200).fit(scaler.transform(pooled[train]), y[train])
    colour_acc = (clf.predict(scaler.transform(pooled[test])) == y[test]).mean()
    assert colour_acc > 2 * (1 / 6)  # chance is 1/6; the object's colour is visible in the mean colours

    flat, shape = x.flatten(1), labels["shape"]
    means = torch.stack([flat[train][shape[train] == k].mean(0) for k in range(8)])
    ncm_acc = (torch.cdist(flat[test], means).argmin(1) == shape[test]).float().mean().item()
    assert (
        ncm_acc < 0.4
    )  # chance is 1/8: position, colour, rotation and clutter hide the shape from templates


# ----------------------------------------------------------------------------------------- splits


def test_split_sizes_and_disjoint_indices(split):
    assert split.x_train.shape == (300, 3, 32, 32) and split.x_test.shape == (200, 3, 32, 32)
    assert split.attributes == ATTRIBUTES and split.image_shape == (3, 32, 32)
    assert split.config == ShapesConfig() and split.seed == 2
    assert torch.equal(split.x_train, generate_shapes(300, seed=2).images)
    assert torch.equal(split.x_test, generate_shapes(200, seed=2, start=300).images)
    assert (
        split.num_classes(("shape", "colour")) == 48 and split.class_names("size") == ATTRIBUTE_VALUES["size"]
    )
    y_train, y_test = split.targets(("shape", "colour"))
    assert y_train.shape == (300,) and y_test.shape == (200,)
    xs, ys = split.train_set("fill")[3]
    assert torch.equal(xs, split.x_train[3]) and ys == split.labels_train["fill"][3]
    assert len(split.test_set(("shape", "colour"))) == 200
    with pytest.raises(ValueError, match="n_test must be"):
        make_shapes_split(10, 0)


def test_attribute_view_keeps_images_and_some_labels(split):
    view = split.attribute_view(("colour", "size"))
    assert isinstance(view, ShapesSplit) and view.attributes == ("colour", "size")
    assert view.x_train is split.x_train and view.x_test is split.x_test
    assert torch.equal(view.labels_test["size"], split.labels_test["size"])
    assert tuple(split.attribute_view("shape").labels_train) == ("shape",)
    with pytest.raises(ValueError, match="not in this split; allowed: 'colour', 'size'"):
        view.attribute_view("shape")
    with pytest.raises(ValueError, match="unknown attribute"):
        split.attribute_view("hue")


def test_class_view_of_an_attribute_relabels_and_maps_back(split):
    view = split.class_view("shape", range(4))
    assert isinstance(view, ShapesClassView) and isinstance(view.train, ClassSubset)
    assert view.class_names == ("circle", "square", "triangle", "diamond") and view.num_classes == 4
    assert view.attributes == ("shape",) and view.global_class_names == ATTRIBUTE_VALUES["shape"]
    for sub, x, labels in (
        (view.train, split.x_train, split.labels_train),
        (view.test, split.x_test, split.labels_test),
    ):
        keep = labels["shape"] < 4
        assert len(sub) == keep.sum() and torch.equal(sub.x, x[keep])
        assert sub.y.min() == 0 and sub.y.max() == 3
        assert torch.equal(sub.to_global(sub.y), labels["shape"][keep])


def test_class_view_of_a_composite_by_name(split):
    view = split.class_view(("shape", "colour"), ["triangle/cyan", "circle/red", 47])
    assert view.train.classes == (17, 0, 47) and view.class_names == (
        "triangle/cyan",
        "circle/red",
        "ring/cyan",
    )
    y, _ = composite_labels(split.labels_train)
    keep = (y == 17) | (y == 0) | (y == 47)
    assert torch.equal(view.train.to_global(view.train.y), y[keep])
    assert torch.equal(view.train.y, torch.tensor([{17: 0, 0: 1, 47: 2}[int(g)] for g in y[keep]]))


@pytest.mark.parametrize(
    ("attributes", "classes", "match"),
    [
        ("shape", ["hexagon", "oval"], "unknown class 'oval'"),
        ("shape", [0, 8], "outside \\[0, 7\\]"),
        ("shade", [0], "unknown attribute"),
        ("shape", [1, 1], "distinct"),
    ],
)
def test_class_view_errors(split, attributes, classes, match):
    with pytest.raises(ValueError, match=match):
        split.class_view(attributes, classes)


def test_every_pair_of_attributes_has_its_own_composite(split):
    for pair in itertools.combinations(ATTRIBUTES, 2):
        y, names = composite_labels(split.labels_train, pair)
        assert len(names) == len(ATTRIBUTE_VALUES[pair[0]]) * len(ATTRIBUTE_VALUES[pair[1]])
        assert 0 <= y.min() and y.max() < len(names)
