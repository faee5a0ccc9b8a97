"""The registry at smoke scale (``KAE_SCALE=smoke``): every full entry with its counts shrunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any

from kae_utils.zoo.entries import ZooEntry, make_registry
from kae_utils.zoo.registry import REGISTRY

__all__ = ["entry_paper_counts", "smoke_entry", "smoke_registry"]

# ------------------------------------------------------------------------------ the smoke scale


def _smoke_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A data spec at smoke scale: a stream (``shapes``, ``scenes``) on fewer images (``kae_utils.core.scale``); a
    ``shapes-split`` of the full profile is shrunk by ``load_dataset`` itself under ``KAE_SCALE=smoke``; ``digits``
    is one small split in every profile. Marked ``"scale": "smoke"`` so its config hash is never a shipped one's."""
    from kae_utils.core.scale import shrink_images

    out = {**spec, "scale": "smoke"}
    if spec["source"] in ("shapes", "scenes"):
        out["n"] = shrink_images(spec["n"], spec.get("image_size"), record=False)
    return out


def smoke_entry(e: ZooEntry) -> ZooEntry:
    """A full-profile entry at smoke scale (``KAE_SCALE=smoke``): the same architecture, image size, data source,
    start (``init``) and recipe, trained for one epoch on a few images; a quick entry unchanged.

    Built into a zoo of its own (``KAE_ZOO_DIR``, never ``zoo/``) so that every notebook's full profile can run end to
    end on a CPU; its weights say nothing about the paper-scale model."""
    if e.profile != "full":
        return e
    probe = None if e.probe is None else {part: _smoke_spec(spec) for part, spec in e.probe.items()}
    return dataclasses.replace(e, data=_smoke_spec(e.data), held_out=_smoke_spec(e.held_out), probe=probe,
                               recipe=dataclasses.replace(e.recipe, epochs=1))


def _images(spec: dict[str, Any], written: bool) -> int:
    """How many images a data spec draws before any filter: as written, or at the scale in force."""
    if spec["source"] in ("shapes", "scenes"):
        return int(spec["n"])
    if spec["source"] == "shapes-split":
        from kae_utils.data.registry import OFFLINE_SIZES, offline_sizes

        sizes = OFFLINE_SIZES["shapes"][spec["profile"]] if written else offline_sizes("shapes", spec["profile"])
        return int(sizes[spec["split"]])
    return 1  # digits: the same split at every scale


def entry_paper_counts(e: ZooEntry) -> contextlib.AbstractContextManager:
    """The counts of ``e`` as written (its epochs; its images per image at smoke scale), for the work log."""
    from kae_utils.core.scale import paper_counts

    written = REGISTRY[e.name]
    return paper_counts(epochs=written.recipe.epochs,
                        samples_factor=_images(written.data, True) / max(_images(e.data, False), 1))


@functools.cache
def smoke_registry() -> dict[str, ZooEntry]:
    """:data:`REGISTRY` with every full entry at smoke scale (:func:`smoke_entry`), the quick ones as they are."""
    return make_registry(smoke_entry(e) for e in REGISTRY.values())
