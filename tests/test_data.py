"""Tests for kae_utils.data: the digits split, shift augmentation, class-subset views."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from kae_utils.data import (
    DIGITS_CLASSES,
    OFFLINE_DATASETS,
    ClassSubset,
    DigitsSplit,
    augment_shifts,
    class_subset,
    load_digits,
    split_classes,
)


@pytest.fixture(scope="module")
def digits() -> DigitsSplit:
    return load_digits()


# ------------------------------------------------------------------------------------- load_digits


def test_constants():
    assert OFFLINE_DATASETS == ("digits", "shapes", "scenes")
    assert DIGITS_CLASSES == tuple("0123456789")


def test_load_digits_sizes_and_types(digits):
    # 1797 images; test_fraction 0.5 -> sklearn rounds the test set up: ceil(898.5) = 899, train 898
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert (len(digits.x_train), len(digits.x_test)) == (898, 899)
    assert digits.x_train.shape == (898, 1, 8, 8) and digits.x_test.shape == (899, 1, 8, 8)
    assert digits.y_train.shape == (898,) and digits.y_test.shape == (899,)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.num_classes == 10
    assert digits.image_shape == (1, 8, 8)
    assert digits.classes == DIGITS_CLASSES


def test_load_digits_values_in_unit_interval_and_use_full_range(digits):
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0.0 and x.max() == 1.0  # raw pixels 0..16, divided by 16


def test_load_digits_split_is_stratified(digits):
    train_counts = torch.bincount(digits.y_train, minlength=10)
    total = train_counts + torch.bincount(digits.y_test, minlength=10)
    assert total.sum() == 1797 and (total > 170).all()  # every class has ~180 images
    assert ((train_counts.double() - total.double() / 2).abs() <= 1).all()


def rows_with_counts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The multiset of (image, label) rows, as sorted unique rows and their counts."""
    return torch.unique(torch.cat([x.flatten(1), y[:, None].float()], 1), dim=0, return_counts=True)


def test_load_digits_split_is_a_partition_of_the_originals(digits):
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    originals = rows_with_counts(torch.tensor(bunch.images, dtype=torch.float32) / 16, torch.tensor(bunch.target))
    split = rows_with_counts(
        torch.cat([digits.x_train, digits.x_test]), torch.cat([digits.y_train, digits.y_test])
    )
    # every original image (with its label) lands exactly once in train or test, none lost or duplicated
    assert torch.equal(split[0], originals[0]) and torch.equal(split[1], originals[1])


def test_load_digits_other_test_fraction():
    quarter = load_digits(test_fraction=0.25)
    assert len(quarter.x_test) == 450 and len(quarter.x_train) == 1347  # ceil(0.25 * 1797) = ceil(449.25)


def test_load_digits_deterministic_per_seed(digits):
    again = load_digits(seed=0)
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_test, digits.y_test)
    other = load_digits(seed=1)
    assert other.x_train.shape == digits.x_train.shape
    assert not torch.equal(other.x_train, digits.x_train)


def test_load_digits_resize(digits):
    big = load_digits(size=16)
    assert big.x_train.shape == (898, 1, 16, 16) and big.x_test.shape == (899, 1, 16, 16)
    assert big.image_shape == (1, 16, 16)
    assert big.x_train.min() >= 0.0 and big.x_train.max() <= 1.0
    assert torch.equal(big.y_train, digits.y_train)  # same split whatever the size
    # it is a bilinear resize of the same images
    expected = F.interpolate(digits.x_train[:5], size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(big.x_train[:5], expected.clamp(0, 1))


@pytest.mark.parametrize("size", [7, 4, 0, 8.0, 16.5, "16"])
def test_load_digits_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_digits(size=size)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_load_digits_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=fraction)


def test_digits_split_datasets(digits):
    train, test = digits.train_set(), digits.test_set()
    assert len(train) == 898 and len(test) == 899
    x0, y0 = train[0]
    assert torch.equal(x0, digits.x_train[0]) and y0 == digits.y_train[0]


# ---------------------------------------------------------------------------------- augment_shifts


def zero_filled_shift(img: torch.Tensor, dr: int, dc: int) -> torch.Tensor:
    """img (C, H, W) moved down by dr and right by dc pixels, zeros entering."""
    out = torch.zeros_like(img)
    _, h, w = img.shape
    src_r = slice(max(0, -dr), h - max(0, dr))
    dst_r = slice(max(0, dr), h - max(0, -dr))
    src_c = slice(max(0, -dc), w - max(0, dc))
    dst_c = slice(max(0, dc), w - max(0, -dc))
    out[:, dst_r, dst_c] = img[:, src_r, src_c]
    return out


def test_augment_shifts_originals_first_and_labels_repeated():
    x = torch.rand(4, 1, 8, 8)
    y = torch.tensor([3, 1, 4, 1])
    ax, ay = augment_shifts(x, y, copies=2, seed=0)
    assert ax.shape == (12, 1, 8, 8)
    assert torch.equal(ax[:4], x)
    assert torch.equal(ay, torch.tensor([3, 1, 4, 1] * 3))


def test_augment_shifts_zero_copies_is_identity():
    x = torch.rand(3, 1, 5, 5)
    y = torch.tensor([0, 1, 2])
    ax, ay = augment_shifts(x, y, copies=0)
    assert torch.equal(ax, x) and torch.equal(ay, y)


def test_augment_shifts_max_shift_zero_copies_unchanged():
    x = torch.rand(3, 1, 5, 5)
    ax, _ = augment_shifts(x, torch.zeros(3, dtype=torch.long), copies=2, max_shift=0)
    assert torch.equal(ax, torch.cat([x, x, x]))


def test_augment_shifts_single_pixel_stays_single_and_visits_all_nine_positions():
    # a 3x3 image with a 1 in the centre: any shift in [-1, 1]^2 keeps it inside the image
    img = torch.zeros(1, 1, 3, 3)
    img[0, 0, 1, 1] = 1.0
    ax, _ = augment_shifts(img, torch.tensor([0]), copies=200, max_shift=1, seed=0)
    copies = ax[1:]
    assert torch.equal(copies.flatten(1).sum(1), torch.ones(200))  # exactly one pixel, value 1
    assert set(copies.flatten(1).unique().tolist()) == {0.0, 1.0}
    positions = {int(i) for i in copies.flatten(1).argmax(1)}
    # P(one of the 9 positions missing in 200 uniform draws) <= 9 * (8/9)**200 ~ 5e-10
    assert positions == set(range(9))


def test_augment_shifts_copies_are_zero_filled_shifts_of_the_original():
    # non-square, two channels: catches swapped axes or channels mixed up by the gather
    torch.manual_seed(0)
    x = torch.rand(6, 2, 4, 5) + 0.1  # strictly positive, so a shifted-in zero is recognisable
    ax, _ = augment_shifts(x, torch.arange(6), copies=3, max_shift=1, seed=3)
    for k in range(1, 4):
        for i in range(6):
            copy = ax[k * 6 + i]
            matches = [
                (dr, dc) for dr, dc in itertools.product((-1, 0, 1), repeat=2)
                if torch.equal(copy, zero_filled_shift(x[i], dr, dc))
            ]
            assert len(matches) == 1, (k, i)


def test_augment_shifts_deterministic_for_seed():
    x = torch.rand(20, 1, 6, 6)
    y = torch.arange(20)
    a, _ = augment_shifts(x, y, copies=2, seed=5)
    b, _ = augment_shifts(x, y, copies=2, seed=5)
    c, _ = augment_shifts(x, y, copies=2, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_shifts_does_not_touch_global_rng():
    torch.manual_seed(1)
    augment_shifts(torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), copies=3, seed=9)
    after = torch.rand(3)
    torch.manual_seed(1)
    torch.rand(2, 1, 4, 4)
    assert torch.equal(torch.rand(3), after)


@pytest.mark.parametrize(("copies", "max_shift"), [(-1, 1), (1, -1)])
def test_augment_shifts_rejects_negative(copies, max_shift):
    with pytest.raises(ValueError, match=">= 0"):
        augment_shifts(torch.zeros(1, 1, 3, 3), torch.tensor([0]), copies=copies, max_shift=max_shift)


# ----------------------------------------------------------------------------------- class_subset


def toy_labels() -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.tensor([0, 7, 2, 7, 5, 2, 9, 7])
    x = torch.arange(8, dtype=torch.float32)[:, None] * 10  # x[i] identifies sample i
    return x, y


def test_class_subset_relabels_in_the_order_given():
    x, y = toy_labels()
    sub = class_subset(x, y, (7, 2))
    assert isinstance(sub, ClassSubset)
    assert sub.classes == (7, 2) and sub.num_classes == 2 and len(sub) == 5
    # samples 1, 2, 3, 5, 7 (labels 7, 2, 7, 2, 7) keep their order; local 0 means global 7
    assert torch.equal(sub.x[:, 0], torch.tensor([10.0, 20.0, 30.0, 50.0, 70.0]))
    assert torch.equal(sub.y, torch.tensor([0, 1, 0, 1, 0]))
    assert sub.y.dtype == torch.int64
    assert torch.equal(sub.to_global(sub.y), torch.tensor([7, 2, 7, 2, 7]))
    xs, ys = sub.dataset()[1]
    assert xs.item() == 20.0 and ys.item() == 1


def test_class_subset_accepts_numpy_like_ints_and_lists():
    x, y = toy_labels()
    sub = class_subset(x, y, [torch.tensor(5), 0])
    assert sub.classes == (5, 0)
    assert torch.equal(sub.y, torch.tensor([1, 0]))  # samples 0 (label 0) then 4 (label 5)


def test_to_global_to_local_round_trip():
    x, y = toy_labels()
    sub = class_subset(x, y, (9, 0, 5))
    local = torch.tensor([2, 0, 1, 1, 2])
    assert torch.equal(sub.to_global(local), torch.tensor([5, 9, 0, 0, 5]))
    assert torch.equal(sub.to_local(sub.to_global(local)), local)
    glob = torch.tensor([0, 5, 9, 9])
    assert torch.equal(sub.to_global(sub.to_local(glob)), glob)


@pytest.mark.parametrize("foreign", [[7], [10], [-1], [0, 3]])
def test_to_local_of_foreign_class_raises(foreign):
    x, y = toy_labels()
    sub = class_subset(x, y, (9, 0, 5))
    with pytest.raises(ValueError, match="outside"):
        sub.to_local(torch.tensor(foreign))


def test_class_subset_errors():
    x, y = toy_labels()
    with pytest.raises(ValueError, match="empty"):
        class_subset(x, y, ())
    with pytest.raises(ValueError, match="distinct"):
        class_subset(x, y, (2, 7, 2))
    with pytest.raises(ValueError, match=r"\[3\]") as info:
        class_subset(x, y, (2, 3))
    assert "present" in str(info.value)


# ---------------------------------------------------------------------------------- split_classes


def test_split_classes_golden():
    assert split_classes(10, 2) == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    # bounds round(0), round(3.33), round(6.67), round(10) = 0, 3, 7, 10
    assert split_classes(10, 3) == [(0, 1, 2), (3, 4, 5, 6), (7, 8, 9)]
    assert split_classes(10, 1) == [tuple(range(10))]
    assert split_classes(3, 3) == [(0,), (1,), (2,)]


@pytest.mark.parametrize(("n", "parts"), [(10, 2), (10, 3), (10, 4), (7, 5), (100, 7), (5, 5)])
def test_split_classes_cover_disjoint_contiguous_near_equal(n, parts):
    groups = split_classes(n, parts)
    assert len(groups) == parts
    assert [c for g in groups for c in g] == list(range(n))  # disjoint, complete, in order
    sizes = [len(g) for g in groups]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(("n", "parts"), [(10, 0), (10, 11), (10, -1), (0, 1)])
def test_split_classes_bad_parts(n, parts):
    with pytest.raises(ValueError, match="parts"):
        split_classes(n, parts)
