"""Data sets: ``digits`` (scikit-learn, real), class-subset views for teachers."""

from kae_utils.data.digits import DIGITS_CLASSES, DigitsSplit, augment_shifts, load_digits
from kae_utils.data.subsets import ClassSubset, class_subset, split_classes

#: Data sets a notebook's ``DATASET`` parameter may name (the offline-data issue adds more).
DATASETS: tuple[str, ...] = ("digits",)

__all__ = [
    "DATASETS",
    "DIGITS_CLASSES",
    "ClassSubset",
    "DigitsSplit",
    "augment_shifts",
    "class_subset",
    "load_digits",
    "split_classes",
]
