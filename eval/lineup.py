"""The lineup test: does a recogniser pick, among the characters made from ten people's photos, the one made from
this person's photo? Chance is one in the lineup's size.

Ties are shared: when k candidates tie for the top score (within TIE), the person's own candidate among them earns
1/k, the expected value of a uniform random tie-break. So a method that gives everyone the same character (the
neutral face) scores exactly chance, not 1.
"""

from __future__ import annotations

import numpy as np

TIE = 1e-6  # cosines this close count as equal (one render embedded in two batches differs in the last bits)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def lineup_credit(photos: np.ndarray, candidates: np.ndarray, lineups: np.ndarray) -> np.ndarray:
    """Per lineup, the credit (0 to 1) for ranking its own candidate first by cosine to its photo.

    photos: (L, D) embeddings of each lineup's photo; candidates: (L, D) embeddings of the character made from
    lineup k's photo (row k); lineups: (L, C) indices into those rows, column 0 the lineup's own (lineups[k, 0] = k).
    """
    lineups = np.asarray(lineups)
    if not np.array_equal(lineups[:, 0], np.arange(len(lineups))):
        raise ValueError("lineups[k, 0] must be k: each lineup's first candidate is its own")
    scores = np.einsum("kd,kcd->kc", unit(photos), unit(candidates)[lineups])  # (L, C) cosines
    top = scores >= scores.max(1, keepdims=True) - TIE
    return top[:, 0] / top.sum(1)
