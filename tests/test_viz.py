"""Tests for kae_utils.display.viz: training curves, confusion heat map, sample grid, PNG saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from kae_utils.display.viz import plot_confusion, plot_curves, sample_grid, save_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("agg_backend")


HISTORIES = {
    "teacher": {"train_loss": [1.0, 0.5, 0.25], "val_acc": [0.8, 0.9, 0.95]},
    "student": {"train_loss": [1.2, 0.7]},  # no val_acc: skipped in that panel
}


# ------------------------------------------------------------------------------------- plot_curves


def test_plot_curves_one_panel_per_key_one_line_per_history():
    fig = plot_curves(HISTORIES)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "train_loss" and acc_ax.get_title() == "val_acc"
    assert [line.get_label() for line in loss_ax.get_lines()] == ["teacher", "student"]
    assert [line.get_label() for line in acc_ax.get_lines()] == ["teacher"]
    # epochs are numbered from 1
    teacher = loss_ax.get_lines()[0]
    assert list(teacher.get_xdata()) == [1, 2, 3] and list(teacher.get_ydata()) == [1.0, 0.5, 0.25]
    assert loss_ax.get_legend() is not None


def test_plot_curves_custom_keys_and_titles():
    fig = plot_curves(HISTORIES, keys=("train_loss",), titles=("Loss",))
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Loss"
    fig = plot_curves({"a": {"x": [1], "y": [2], "z": [3]}}, keys=("x", "y", "z"))
    assert len(fig.axes) == 3


def test_plot_curves_errors():
    with pytest.raises(ValueError, match="no histories"):
        plot_curves({})
    with pytest.raises(ValueError):  # one title per key
        plot_curves(HISTORIES, keys=("train_loss", "val_acc"), titles=("only one",))


# ---------------------------------------------------------------------------------- plot_confusion


def test_plot_confusion_row_normalised():
    cm = torch.tensor([[3, 1], [0, 4]])
    fig = plot_confusion(cm, class_names=["cat", "dog"], title="cm")
    assert isinstance(fig, Figure) and len(fig.axes) == 1  # no colour bar
    ax = fig.axes[0]
    assert ax.get_title() == "cm" and ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    shown = np.asarray(ax.collections[0].get_array()).reshape(2, 2)
    np.testing.assert_allclose(shown, [[0.75, 0.25], [0.0, 1.0]])  # rows: 3/4, 1/4 and 0/4, 4/4


def test_plot_confusion_counts_and_empty_row():
    cm = np.array([[2, 0, 0], [0, 0, 0], [1, 0, 5]])
    shown = np.asarray(plot_confusion(cm, normalize=False).axes[0].collections[0].get_array()).reshape(3, 3)
    np.testing.assert_array_equal(shown, cm)
    # an all-zero row (class absent) stays zero instead of dividing by zero
    normed = np.asarray(plot_confusion(cm).axes[0].collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(normed, [[1, 0, 0], [0, 0, 0], [1 / 6, 0, 5 / 6]])
    assert [t.get_text() for t in plot_confusion(cm).axes[0].get_yticklabels()] == ["0", "1", "2"]


def test_plot_confusion_draws_on_a_given_axis(agg_backend):
    plt = agg_backend
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_confusion(np.eye(2), ax=b) is fig
    assert len(b.collections) == 1 and len(a.collections) == 0


@pytest.mark.parametrize("shape", [(2, 3), (4,), (2, 2, 2)])
def test_plot_confusion_rejects_non_square(shape):
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros(shape))


# ------------------------------------------------------------------------------------- sample_grid


def test_sample_grid_layout_and_captions():
    images = torch.rand(12, 1, 8, 8)
    labels = torch.arange(12)
    fig = sample_grid(images, labels, ncols=5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 15  # ceil(12 / 5) = 3 rows of 5
    assert [ax.get_title() for ax in fig.axes[:12]] == [str(i) for i in range(12)]
    assert all(len(ax.images) == 1 for ax in fig.axes[:12])
    assert all(len(ax.images) == 0 for ax in fig.axes[12:])  # padding cells stay empty
    np.testing.assert_allclose(fig.axes[3].images[0].get_array(), images[3, 0].numpy())


def test_sample_grid_fewer_images_than_columns_and_string_labels():
    fig = sample_grid(torch.rand(3, 1, 4, 4), ["a", "b", "c"], ncols=10)
    assert len(fig.axes) == 3  # ncols shrinks to the number of images
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert all(ax.get_title() == "" for ax in sample_grid(torch.rand(2, 1, 4, 4)).axes)


def test_sample_grid_rgb_is_channels_last():
    images = torch.rand(2, 3, 5, 6)
    fig = sample_grid(images)
    shown = np.asarray(fig.axes[1].images[0].get_array())
    assert shown.shape == (5, 6, 3)
    np.testing.assert_allclose(shown, images[1].permute(1, 2, 0).numpy())


@pytest.mark.parametrize("shape", [(2, 2, 8, 8), (2, 4, 8, 8), (2, 8, 8), (8, 8)])
def test_sample_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="N, 1\\|3, H, W"):
        sample_grid(torch.rand(*shape))


# ------------------------------------------------------------------------------------- save_figure


def test_save_figure_writes_png(tmp_path):
    fig = plot_curves(HISTORIES)
    path = save_figure(fig, tmp_path / "figs" / "curves.png")  # parent folder created
    assert path == tmp_path / "figs" / "curves.png"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    assert save_figure(fig, str(tmp_path / "UPPER.PNG")).read_bytes()[:8] == PNG_SIGNATURE


def test_save_figure_is_reproducible(tmp_path):
    # no timestamp or software metadata: the same figure gives the same bytes
    fig = sample_grid(torch.linspace(0, 1, 2 * 16).reshape(2, 1, 4, 4))
    a = save_figure(fig, tmp_path / "a.png").read_bytes()
    b = save_figure(fig, tmp_path / "b.png").read_bytes()
    assert a == b
    assert b"matplotlib" not in a.lower()


@pytest.mark.parametrize("name", ["fig.svg", "fig.pdf", "fig", "fig.png.jpg"])
def test_save_figure_rejects_other_formats(tmp_path, name):
    fig = plot_curves(HISTORIES)
    with pytest.raises(ValueError, match="PNG"):
        save_figure(fig, tmp_path / name)
    assert not (tmp_path / name).exists()
