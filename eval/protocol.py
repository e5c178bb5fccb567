"""The 3DMM-CNN verification protocol (paper Table 3) and Table 6's occlusion masks.

Per test fold: PCA fitted on the other folds' descriptors (no dimension reduction), signed element-wise square
root sign(x) * sqrt(|x|) (parameters can be negative), cosine similarity, and the threshold with the best
accuracy on the other folds applied to the test fold. The result is the mean and std of the fold accuracies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import roc_curve
from sklearn.preprocessing import normalize

from game.framing import TEMPLATE

# Table 6: a 60 (wide) x 40 (high) black rectangle on the 256 px aligned photo, centred on the face's vertical
# axis at our template's eye row (upper), nose-tip row (middle) and mouth-corner row (lower); scaled with the size.
MASK_SIZE = (60 / 256, 40 / 256)
MASK_ROWS = {"upper": TEMPLATE[0, 1], "middle": TEMPLATE[2, 1], "lower": TEMPLATE[3, 1]}
MASKS = tuple(MASK_ROWS)


def signed_sqrt(x: np.ndarray) -> np.ndarray:
    """sign(x) * sqrt(|x|), element-wise."""
    return np.sign(x) * np.sqrt(np.abs(x))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (P, D) arrays."""
    return (normalize(a) * normalize(b)).sum(1)


def best_threshold(scores: np.ndarray, is_same: np.ndarray) -> float:
    """The threshold t (same where score >= t) with the highest accuracy on these pairs.

    Every t between the best score cut and the next lower score scores alike here; the midpoint is taken, so a
    test pair just below the lowest training "same" score is not lost to a threshold placed on that score.
    """
    is_same = np.asarray(is_same, bool)
    if is_same.all() or not is_same.any():  # one class only: call everything that class
        return -np.inf if is_same.all() else np.inf
    fpr, tpr, thresholds = roc_curve(is_same, scores, drop_intermediate=False)  # thresholds: distinct, falling
    positives = is_same.sum()
    best = int(np.argmax(tpr * positives + (1 - fpr) * (len(is_same) - positives)))
    if best == 0 or not np.isfinite(thresholds[best]):  # "nothing is same": any t above the top score
        return float(thresholds[best])
    lower = thresholds[best + 1] if best + 1 < len(thresholds) else thresholds[best] - 1.0
    return float((thresholds[best] + lower) / 2)


@dataclass
class Verification:
    """Accuracy over folds: mean, std (population, as the LFW protocol reports), and per fold."""

    accuracy: float
    std: float
    fold_accuracy: list[float]
    fold_threshold: list[float]

    def as_dict(self) -> dict:
        """Plain JSON-ready values (an infinite threshold, "call every pair one class", becomes None)."""
        d = asdict(self)
        d["fold_threshold"] = [t if np.isfinite(t) else None for t in self.fold_threshold]
        return d


def pair_scores(a: np.ndarray, b: np.ndarray, pca: PCA | None = None, sqrt: bool = True) -> np.ndarray:
    """Cosine scores of pairs (P, D) x 2 after the fitted `pca` (if any) and the signed square root."""
    if pca is not None:
        a, b = pca.transform(a), pca.transform(b)
    if sqrt:
        a, b = signed_sqrt(a), signed_sqrt(b)
    return cosine(a, b)


def verify(
    desc_a: np.ndarray, desc_b: np.ndarray, is_same: np.ndarray, folds: np.ndarray, pca: bool = True, sqrt: bool = True
) -> Verification:
    """The 3DMM-CNN protocol on pair descriptors (P, D) x 2 with labels and fold indices (P,)."""
    desc_a, desc_b = np.asarray(desc_a, np.float64), np.asarray(desc_b, np.float64)
    is_same, folds = np.asarray(is_same, bool), np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        # PCA sees the training folds' descriptors only, so nothing of the test fold leaks into it.
        model = PCA().fit(np.concatenate([desc_a[train], desc_b[train]])) if pca else None
        threshold = best_threshold(pair_scores(desc_a[train], desc_b[train], model, sqrt), is_same[train])
        test_scores = pair_scores(desc_a[test], desc_b[test], model, sqrt)
        accuracies.append(float(((test_scores >= threshold) == is_same[test]).mean()))
        thresholds.append(threshold)
    return Verification(float(np.mean(accuracies)), float(np.std(accuracies)), accuracies, thresholds)


def mask_rectangle(name: str, size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive pixels, of Table 6's `name` mask on a `size` px aligned photo."""
    if name not in MASK_ROWS:
        raise ValueError(f"mask must be one of {MASKS}, got {name!r}")
    width, height = round(MASK_SIZE[0] * size), round(MASK_SIZE[1] * size)
    x0, y0 = round(0.5 * size - width / 2), round(MASK_ROWS[name] * size - height / 2)
    return x0, y0, x0 + width, y0 + height


def apply_mask(images: torch.Tensor, name: str | None) -> torch.Tensor:
    """A copy of aligned images (B, 3, S, S) with Table 6's `name` rectangle black (unchanged for None)."""
    if name is None:
        return images
    x0, y0, x1, y1 = mask_rectangle(name, images.shape[-1])
    images = images.clone()
    images[..., y0:y1, x0:x1] = 0
    return images
