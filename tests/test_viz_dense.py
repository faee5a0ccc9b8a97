"""Tests for the dense-map plots of kae_utils.display.viz: colourised labels, depth, normals, a whole scene."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from kae_utils.data.scene_spec import SCENE_TASKS, SceneConfig
from kae_utils.data.scenes import render_scenes
from kae_utils.display.viz import (
    colorize_depth,
    colorize_normals,
    colorize_segmentation,
    plot_scene,
    save_figure,
    segmentation_palette,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("agg_backend")


@pytest.fixture(scope="module")
def batch():
    torch.set_num_threads(1)
    return render_scenes(2, seed=5, config=SceneConfig(image_size=32, domain="textured"))


# ------------------------------------------------------------------------------------ segmentation


def test_palette_is_fixed_distinct_and_extends():
    p7 = segmentation_palette(7)
    assert p7.shape == (7, 3) and p7.dtype == np.float32
    assert np.array_equal(p7, segmentation_palette(7))
    assert np.array_equal(segmentation_palette(30)[:7], p7)  # a longer palette starts the same
    p30 = segmentation_palette(30)
    assert len({tuple(c) for c in p30.round(4)}) == 30
    assert p30.min() >= 0 and p30.max() <= 1
    np.testing.assert_allclose(p7[0], matplotlib.colors.to_rgb("#1f77b4"), atol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        segmentation_palette(0)


def test_colorize_segmentation_shapes_and_colours():
    labels = torch.tensor([[[0, 1], [2, -1]], [[6, 6], [0, 0]]])
    rgb = colorize_segmentation(labels, 7)
    assert rgb.shape == (2, 2, 2, 3) and rgb.dtype == np.float32
    palette = segmentation_palette(7)
    np.testing.assert_array_equal(rgb[0, 0, 0], palette[0])
    np.testing.assert_array_equal(rgb[1, 0, 1], palette[6])
    np.testing.assert_array_equal(rgb[0, 1, 1], np.zeros(3))  # negative = ignored: black
    np.testing.assert_array_equal(colorize_segmentation(labels.numpy(), 7), rgb)
    assert colorize_segmentation(labels[0], 7).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="< num_classes = 7"):
        colorize_segmentation(labels + 1, 7)
    with pytest.raises(ValueError, match="integers"):
        colorize_segmentation(labels.float(), 7)


# ------------------------------------------------------------------------------------ depth, normals


def test_colorize_depth_per_image_min_max():
    depth = torch.stack([torch.linspace(1, 2, 6).reshape(1, 2, 3), torch.linspace(10, 50, 6).reshape(1, 2, 3)])
    rgb = colorize_depth(depth)  # (2, 1, 2, 3) -> (2, 2, 3, 3)
    assert rgb.shape == (2, 2, 3, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    viridis = matplotlib.colormaps["viridis"]
    # each image spans the whole colour map: its nearest pixel is the map's start, its farthest the end
    for i in range(2):
        np.testing.assert_allclose(rgb[i, 0, 0], viridis(0.0)[:3], atol=1e-6)
        np.testing.assert_allclose(rgb[i, 1, 2], viridis(1.0)[:3], atol=1e-6)
    np.testing.assert_array_equal(rgb[0], rgb[1])  # same relative layout, same colours


def test_colorize_depth_given_range_and_edge_cases():
    depth = np.array([[0.0, 5.0], [10.0, np.inf]])
    rgb = colorize_depth(depth, vmin=0.0, vmax=20.0, cmap="magma")
    magma = matplotlib.colormaps["magma"]
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 1], magma(0.25)[:3], atol=1e-6)
    np.testing.assert_allclose(rgb[1, 0], magma(0.5)[:3], atol=1e-6)
    np.testing.assert_array_equal(rgb[1, 1], np.zeros(3))  # non-finite: black
    constant = colorize_depth(torch.full((4, 4), 3.0))
    assert np.isfinite(constant).all()
    with pytest.raises(ValueError, match="vmax must exceed vmin"):
        colorize_depth(depth, vmin=2.0, vmax=1.0)
    with pytest.raises(ValueError, match="depth must be"):
        colorize_depth(torch.zeros(5))


def test_colorize_normals_mapping():
    normals = torch.tensor([[1.0, -1.0], [0.0, 0.0], [0.0, 1.0]]).reshape(3, 1, 2)  # (3, H=1, W=2)
    rgb = colorize_normals(normals)
    assert rgb.shape == (1, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.5, 0.5])  # +x
    np.testing.assert_allclose(rgb[0, 1], [0.0, 0.5, 1.0])  # -x, +z
    assert colorize_normals(torch.zeros(2, 3, 4, 5)).shape == (2, 4, 5, 3)
    assert colorize_normals(torch.full((3, 2, 2), 5.0)).max() == 1.0
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        colorize_normals(torch.zeros(2, 4, 4))


# ----------------------------------------------------------------------------------------- scenes


def test_plot_scene_all_dense_tasks(batch, tmp_path):
    fig = plot_scene(batch, 1)
    assert isinstance(fig, Figure)
    dense = [name for name, spec in SCENE_TASKS.items() if spec.dense and name != "autoencoding"]
    assert len(fig.axes) == 1 + len(dense)
    assert [ax.get_title() for ax in fig.axes] == ["rgb", *dense]
    assert "scene 1" in fig.get_suptitle() and "objects" in fig.get_suptitle()
    path = save_figure(fig, tmp_path / "scene.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_scene_selected_tasks(batch):
    fig = plot_scene(batch, -1, tasks=["depth", "normals", "object_count"])  # per-image tasks: title only
    assert [ax.get_title() for ax in fig.axes] == ["rgb", "depth", "normals"]
    with pytest.raises(ValueError, match="tasks must be among"):
        plot_scene(batch, 0, tasks=["curvature"])
    with pytest.raises(ValueError, match="index"):
        plot_scene(batch, 2)
