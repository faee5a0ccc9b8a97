"""NYU Depth v2, labelled subset (Silberman et al., ECCV 2012): RGB, 13-class segmentation, depth, normals.

Inputs (all four are needed):

* ``nyu_depth_v2_labeled.mat``: MATLAB v7.3, i.e. HDF5 (read with ``h5py``, imported lazily). Its
  datasets are stored transposed with respect to MATLAB: ``images`` ``(1449, 3, 640, 480)`` uint8
  (N, C, W, H), ``depths`` ``(1449, 640, 480)`` float metres (N, W, H), ``labels`` ``(1449, 640, 480)``
  uint16 ids of the 894 raw classes, 0 = unlabelled.
* ``splits.mat`` (official split): ``trainNdxs`` (795) and ``testNdxs`` (654), 1-based.
* ``classMapping40.mat`` (Gupta et al. 2013): ``mapClass``, 894 entries mapping raw id -> 1..40.
* ``class13Mapping.mat`` (Couprie et al. 2013): struct ``classMapping13`` whose first field
  (``labels13``; some copies name it ``labelsIndex``) maps the **40** classes -> 1..13. A copy whose
  field has 894 entries is taken as a direct raw -> 13 map. 0 stays "unlabelled" throughout.

Surface normals are *computed* here from the depth maps, as an approximation of the precomputed
normals usually distributed with NYUv2 (those come from a plane fit on the raw, unfilled depth):
each pixel is back-projected with the Kinect RGB intrinsics (fx=518.857901, fy=519.469611,
cx=325.582449, cy=253.736166), the normal is the cross product of the central differences of the
3-D points along the image columns and rows, normalised, and flipped to face the camera. Frame:
x right, y down, z forward (away from the camera), so a wall seen head-on has normal (0, 0, -1).

Everything is computed at the full 480x640 resolution, then resized to ``size`` (default
:data:`kae_utils.data.real.NYUV2_DEFAULT_SIZE` = 96x128, keeping the 3:4 aspect ratio): RGB, depth
and normals with antialiased bilinear filtering (normals renormalised), labels with nearest
neighbour. The white border of the labelled images is kept (crop it in the notebook if wanted).

Output: ``<out_dir>/{train,test}.pt`` with ``rgb`` uint8 ``(N, 3, H, W)``, ``seg13`` int64
``(N, H, W)``, ``depth`` float32 ``(N, 1, H, W)``, ``normals`` float32 ``(N, 3, H, W)``, plus
``classes``, ``index`` (0-based positions in the .mat) and ``intrinsics`` (scaled to ``size``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from data_scripts.common import DataScriptError
from kae_utils.data.real import NYU13_CLASSES, NYUV2_DEFAULT_SIZE

__all__ = [
    "NYU_INTRINSICS",
    "convert_nyuv2",
    "convert_nyuv2_arrays",
    "nyu13_lookup",
    "normals_from_depth",
    "read_splits",
]

#: Intrinsics of the NYUv2 Kinect's RGB camera (the labelled depths are registered to it), in
#: pixels of the 640x480 images: fx, fy, cx, cy.
NYU_INTRINSICS: dict[str, float] = {"fx": 518.857901, "fy": 519.469611, "cx": 325.582449, "cy": 253.736166}
_FULL_HW = (480, 640)


def normals_from_depth(
    depth: torch.Tensor, fx: float, fy: float, cx: float, cy: float, eps: float = 1e-8
) -> torch.Tensor:
    """Unit surface normals ``(..., 3, H, W)`` from depth maps ``(..., H, W)`` in metres.

    Back-projects pixel ``(u, v)`` (column, row) to ``P = ((u - cx) Z / fx, (v - cy) Z / fy, Z)``,
    takes ``n = dP/du x dP/dv`` with central differences (one-sided at the borders), normalises it
    and flips it so that ``n . P < 0`` (facing the camera). Pixels with depth <= 0 get ``(0, 0, 0)``.
    This approximates, it does not reproduce, the usual precomputed NYUv2 normals.
    """
    z = depth.to(torch.float64)
    h, w = z.shape[-2:]
    v = torch.arange(h, dtype=z.dtype, device=z.device).view(h, 1)
    u = torch.arange(w, dtype=z.dtype, device=z.device).view(1, w)
    points = torch.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], dim=-3)  # (..., 3, H, W)
    du = torch.gradient(points, dim=-1)[0] if w > 1 else torch.zeros_like(points)
    dv = torch.gradient(points, dim=-2)[0] if h > 1 else torch.zeros_like(points)
    n = torch.linalg.cross(du, dv, dim=-3)
    facing_away = (n * points).sum(dim=-3, keepdim=True) > 0
    n = torch.where(facing_away, -n, n)
    n = n / n.norm(dim=-3, keepdim=True).clamp_min(eps)
    n = torch.where((z > 0).unsqueeze(-3), n, torch.zeros_like(n))
    return n.to(torch.float32)


def _mat_vector(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    while arr.dtype == object and arr.size == 1:
        arr = np.asarray(arr.reshape(-1)[0])
    return arr.astype(np.int64).reshape(-1)


def _struct_fields(struct: Any) -> list[tuple[str, Any]]:
    arr = np.asarray(struct)
    while arr.dtype == object and arr.size == 1 and arr.dtype.names is None:
        arr = np.asarray(arr.reshape(-1)[0])
    if arr.dtype.names is None:
        raise DataScriptError("class13Mapping.mat: classMapping13 is not a struct")
    rec = arr.reshape(-1)[0]
    return [(name, rec[name]) for name in arr.dtype.names]


def nyu13_lookup(class40_mat: str | Path, class13_mat: str | Path) -> np.ndarray:
    """Look-up table ``(895,)`` int64: raw NYUv2 label id (0..894) -> 13-class id (0 = unlabelled).

    Composes ``classMapping40.mat``'s ``mapClass`` (894 -> 40) with ``class13Mapping.mat``'s
    ``classMapping13`` (40 -> 13); if the latter already has 894 entries it is used directly.
    """
    from scipy.io import loadmat

    m13 = loadmat(str(class13_mat))
    if "classMapping13" not in m13:
        raise DataScriptError(f"{class13_mat} has no variable 'classMapping13'")
    fields = _struct_fields(m13["classMapping13"])
    preferred = [v for k, v in fields if k in ("labels13", "labelsIndex")]
    numeric = [v for _, v in fields if np.asarray(v).dtype != object or np.asarray(v).size == 1]
    candidates = preferred or numeric
    if not candidates:
        raise DataScriptError(f"{class13_mat}: classMapping13 has no numeric mapping field")
    to13 = _mat_vector(candidates[0])
    if to13.size == 894:
        raw_to13 = to13
    elif to13.size == 40:
        m40 = loadmat(str(class40_mat))
        if "mapClass" not in m40:
            raise DataScriptError(f"{class40_mat} has no variable 'mapClass'")
        raw_to40 = _mat_vector(m40["mapClass"])
        if raw_to40.size != 894 or raw_to40.min() < 1 or raw_to40.max() > 40:
            raise DataScriptError(f"{class40_mat}: mapClass should map 894 ids to 1..40")
        raw_to13 = to13[raw_to40 - 1]
    else:
        raise DataScriptError(f"{class13_mat}: the 13-class map has {to13.size} entries, expected 40 or 894")
    if raw_to13.min() < 1 or raw_to13.max() > 13:
        raise DataScriptError(f"{class13_mat}: 13-class ids outside 1..13")
    return np.concatenate([[0], raw_to13]).astype(np.int64)


def read_splits(splits_mat: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The official split of ``splits.mat`` as 0-based ``(train_indices, test_indices)``."""
    from scipy.io import loadmat

    m = loadmat(str(splits_mat))
    for key in ("trainNdxs", "testNdxs"):
        if key not in m:
            raise DataScriptError(f"{splits_mat} has no variable {key!r}")
    train = np.asarray(m["trainNdxs"], dtype=np.int64).reshape(-1) - 1
    test = np.asarray(m["testNdxs"], dtype=np.int64).reshape(-1) - 1
    if (train < 0).any() or (test < 0).any():
        raise DataScriptError(f"{splits_mat}: indices must be 1-based (MATLAB)")
    if np.intersect1d(train, test).size:
        raise DataScriptError(f"{splits_mat}: train and test indices overlap")
    return train, test


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _convert_one(
    image: np.ndarray, depth: np.ndarray, label: np.ndarray, lookup: np.ndarray, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    rgb = torch.from_numpy(np.ascontiguousarray(np.asarray(image).transpose(0, 2, 1)))  # (3, H, W)
    z = torch.from_numpy(np.ascontiguousarray(np.asarray(depth, dtype=np.float32).T))  # (H, W)
    raw = np.asarray(label).T.astype(np.int64)
    if raw.min() < 0 or raw.max() >= len(lookup):
        raise DataScriptError(f"raw label ids outside 0..{len(lookup) - 1}")
    seg = torch.from_numpy(lookup[raw])
    h, w = z.shape
    fx, fy = NYU_INTRINSICS["fx"] * w / _FULL_HW[1], NYU_INTRINSICS["fy"] * h / _FULL_HW[0]
    cx = (NYU_INTRINSICS["cx"] + 0.5) * w / _FULL_HW[1] - 0.5
    cy = (NYU_INTRINSICS["cy"] + 0.5) * h / _FULL_HW[0] - 0.5
    normals = normals_from_depth(z, fx, fy, cx, cy)
    rgb_s = _resize(rgb[None].float(), size, "bilinear").round_().clamp_(0, 255).to(torch.uint8)[0]
    depth_s = _resize(z[None, None], size, "bilinear")[0]
    normals_s = F.normalize(_resize(normals[None], size, "bilinear"), dim=1)[0]
    seg_s = _resize(seg[None, None].float(), size, "nearest")[0, 0].long()
    return rgb_s, seg_s, depth_s, normals_s


def _scaled_intrinsics(size: tuple[int, int]) -> dict[str, float]:
    sy, sx = size[0] / _FULL_HW[0], size[1] / _FULL_HW[1]
    return {
        "fx": NYU_INTRINSICS["fx"] * sx,
        "fy": NYU_INTRINSICS["fy"] * sy,
        "cx": (NYU_INTRINSICS["cx"] + 0.5) * sx - 0.5,
        "cy": (NYU_INTRINSICS["cy"] + 0.5) * sy - 0.5,
    }


def convert_nyuv2_arrays(
    images: Any,
    depths: Any,
    labels: Any,
    lookup: np.ndarray,
    splits: tuple[Sequence[int], Sequence[int]],
    out_dir: str | Path,
    size: tuple[int, int] = NYUV2_DEFAULT_SIZE,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Core of :func:`convert_nyuv2` on array-likes in the .mat's HDF5 layout (h5py datasets or NumPy).

    ``images`` ``(N, 3, W, H)``, ``depths`` and ``labels`` ``(N, W, H)``; ``splits`` = 0-based
    ``(train, test)`` indices. Reads one image at a time, so h5py datasets are not loaded whole.
    """
    h, w = size
    if h < 1 or w < 1:
        raise DataScriptError(f"size must be positive; got {size}")
    n = len(images)
    if len(depths) != n or len(labels) != n:
        raise DataScriptError(f"images, depths and labels differ in length ({n}, {len(depths)}, {len(labels)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, indices in zip(("train", "test"), splits, strict=True):
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise DataScriptError(f"{split} split refers to images {bad[:5]} outside 0..{n - 1}")
        rgb = torch.empty((len(idx), 3, h, w), dtype=torch.uint8)
        seg = torch.empty((len(idx), h, w), dtype=torch.int64)
        depth = torch.empty((len(idx), 1, h, w), dtype=torch.float32)
        normals = torch.empty((len(idx), 3, h, w), dtype=torch.float32)
        for k, i in enumerate(idx):
            rgb[k], seg[k], depth[k], normals[k] = _convert_one(images[i], depths[i], labels[i], lookup, size)
            if log is not None and (k + 1) % 100 == 0:
                log(f"  {split}: {k + 1}/{len(idx)}")
        torch.save(
            {
                "rgb": rgb,
                "seg13": seg,
                "depth": depth,
                "normals": normals,
                "classes": list(NYU13_CLASSES),
                "index": torch.tensor(idx, dtype=torch.int64),
                "intrinsics": _scaled_intrinsics(size),
            },
            out / f"{split}.pt",
        )
        counts[split] = len(idx)
    return counts


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataScriptError(
            "reading nyu_depth_v2_labeled.mat (MATLAB v7.3, i.e. HDF5) needs the h5py package, which is "
            "not installed: install it (pip install h5py) and run the command again"
        ) from exc
    return h5py


def convert_nyuv2(
    labeled_mat: str | Path,
    splits_mat: str | Path,
    class40_mat: str | Path,
    class13_mat: str | Path,
    out_dir: str | Path,
    size: tuple[int, int] = NYUV2_DEFAULT_SIZE,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Convert the labelled NYUv2 .mat (+ split and class maps) to ``out_dir/{train,test}.pt``.

    Needs ``h5py`` (imported here, lazily: a clear :class:`DataScriptError` says so when missing).
    Returns ``{"train": 795, "test": 654}`` for the real data.
    """
    h5py = _import_h5py()
    lookup = nyu13_lookup(class40_mat, class13_mat)
    splits = read_splits(splits_mat)
    with h5py.File(str(labeled_mat), "r") as f:
        missing = [k for k in ("images", "depths", "labels") if k not in f]
        if missing:
            raise DataScriptError(f"{labeled_mat} lacks the datasets {missing}: not nyu_depth_v2_labeled.mat?")
        return convert_nyuv2_arrays(f["images"], f["depths"], f["labels"], lookup, splits, out_dir, size, log)
