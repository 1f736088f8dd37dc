"""Pieces of one particle joined along the long, weak seams texture cuts them along (pure core).

``instances`` splits the foreground between interiors the boundary channel leaves open. Inside a large,
textured particle (the ore grains of ``seed_em``) the boundary channel draws texture too, so the particle
comes out in pieces. Two touching particles meet along a short neck the network outlines; pieces of one
particle meet along a seam that wanders through the texture, as long as the pieces are wide or longer,
where the network is seldom sure of a boundary. Such pieces are joined.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: Pieces are joined when their seam, counted in pixel sides whose boundary probability is below
#: ``DEFAULT_JOIN_BELOW``, is at least this many times the smaller piece's equivalent diameter: a neck
#: between touching particles is shorter than either; a seam through texture wanders (issue 18; chosen
#: on dev_emps' tune half, docs/benchmarks.md "Pieces of one particle joined along long
#: weak seams").
DEFAULT_JOIN_SEAM = 2.0
#: Seam pixel sides where the network's boundary probability reaches this count as an outline it drew.
DEFAULT_JOIN_BELOW = 0.8
#: Joining is repeated until nothing changes, at most this many times (a joined piece has longer seams).
MAX_JOIN_PASSES = 6


def seam_lengths(labels: np.ndarray, boundary: np.ndarray, below: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of touching objects and the length of their seam where ``boundary`` is below ``below``.

    Parameters
    ----------
    labels
        ``(H, W)`` integer labels, 0 background.
    boundary
        ``(H, W)`` boundary probability; a pixel side between two objects counts when the higher of its two
        pixels is below ``below``.

    Returns
    -------
    pairs, lengths
        ``(n, 2)`` object ids (smaller first) and the counted pixel sides of each pair.
    """
    labels = np.asarray(labels)
    boundary = np.asarray(boundary, dtype=np.float32)
    firsts, seconds, weak = [], [], []
    for here, there in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                        ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        a, b = labels[here], labels[there]
        across = (a > 0) & (b > 0) & (a != b)
        firsts.append(np.minimum(a[across], b[across]))
        seconds.append(np.maximum(a[across], b[across]))
        weak.append(np.maximum(boundary[here][across], boundary[there][across]) < below)
    first = np.concatenate(firsts).astype(np.int64)
    second = np.concatenate(seconds).astype(np.int64)
    if first.size == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    span = int(labels.max()) + 1
    keys, which = np.unique(first * span + second, return_inverse=True)
    lengths = np.bincount(which, weights=np.concatenate(weak).astype(np.float64))
    return np.stack([keys // span, keys % span], axis=1), lengths


def join_along_weak_seams(labels: np.ndarray, boundary: np.ndarray, *, min_seam: float = DEFAULT_JOIN_SEAM,
                          below: float = DEFAULT_JOIN_BELOW) -> np.ndarray:
    """``labels`` with touching pieces joined where their weak seam is long (``seam_lengths``).

    Two objects become one when their seam, counted where ``boundary`` is below ``below``, is at least
    ``min_seam`` times the smaller one's equivalent diameter; repeated until nothing joins. Ids are not
    renumbered (a joined object keeps its smallest id); when nothing joins, ``labels`` itself is returned.
    """
    if min_seam <= 0:
        raise ValueError(f"min_seam must be above 0, got {min_seam}")
    labels = np.asarray(labels)
    for _ in range(MAX_JOIN_PASSES):
        pairs, lengths = seam_lengths(labels, boundary, below)
        if not lengths.size:
            break
        diameter = np.sqrt(4.0 * np.bincount(labels.ravel()) / np.pi)
        joined = lengths >= min_seam * np.minimum(diameter[pairs[:, 0]], diameter[pairs[:, 1]])
        if not joined.any():
            break
        labels = _joined(labels, pairs[joined])
    return labels


def _joined(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """``labels`` with each group of ``pairs``-connected ids given the group's smallest id."""
    n = int(labels.max()) + 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    smallest = np.full(group.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, group, np.arange(n))
    return smallest[group].astype(labels.dtype)[labels]

