"""Which view of a plane the network segments: full size or shrunk by halves (pure numpy).

Inside a particle larger than the network's view it guesses, and its foreground is less sure than where
it sees whole objects; objects too small for a shrunk view blur into doubt as well. So each plane is
also seen shrunk (``PredictionParams.max_shrink``), and the view whose called foreground the network is
surest of, judged on the plane's grid, is kept: ``shrunk_probabilities`` on a whole plane,
``surest_shrink`` on windows of a plane too large to segment whole. The network itself is a
``probabilities`` callable, so this module needs no Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_synthseg.scalebar import cut_box
from napari_synthseg.zoom import zoom_back, zoom_image

#: Shortest side, in pixels, of a shrunk view worth trying: a smaller one holds too little to outline.
MIN_SHRUNK_SIDE = 64


@dataclass(frozen=True)
class ViewChoice:
    """The zoom a plane was segmented at, and the evidence: each view tried with its foreground confidence."""

    zoom: float
    confidences: tuple[tuple[float, float], ...] = ()  # (zoom, confidence), in the order tried

    def to_dict(self) -> dict:
        return {"zoom": self.zoom, "confidences": {f"{zoom:g}": round(confidence, 4)
                                                   for zoom, confidence in self.confidences}}


def describe_views(views: dict) -> str:
    """One line on the zooms planes were segmented at: ``views`` maps a plane to ``ViewChoice.to_dict()``."""
    zooms = [float(view["zoom"]) for view in views.values()]
    shrunk = sorted((zoom for zoom in zooms if zoom != 1.0), reverse=True)
    if not shrunk:
        return f"all {len(zooms)} image(s) segmented at full size"
    counts = ", ".join(f"{_zoom_name(zoom)} {shrunk.count(zoom)}" for zoom in dict.fromkeys(shrunk))
    return f"{len(shrunk)} of {len(zooms)} image(s) segmented shrunk ({counts}), the others at full size"


def _zoom_name(zoom: float) -> str:
    return {0.5: "half size", 0.25: "a quarter"}.get(zoom, f"{zoom:g}x")


def shrink_candidates(shape: tuple[int, int], max_shrink: float) -> list[float]:
    """The zooms ``shrunk_probabilities`` tries: 1, then halves down to ``1 / max_shrink`` while the
    shrunk plane's shorter side keeps ``MIN_SHRUNK_SIDE`` pixels."""
    factors = [1.0]
    while factors[-1] / 2 * max_shrink >= 1.0 and min(shape) * factors[-1] / 2 >= MIN_SHRUNK_SIDE:
        factors.append(factors[-1] / 2)
    return factors


def _called_foreground(foreground: np.ndarray, ignore_box=None) -> tuple[float, int]:
    """Sum and count of the foreground probabilities over 0.5, outside ``ignore_box``."""
    foreground = cut_box(np.array(foreground, dtype=np.float32), ignore_box)
    called = foreground[foreground > 0.5]
    return float(called.sum(dtype=np.float64)), int(called.size)


def foreground_confidence(foreground: np.ndarray, ignore_box=None) -> float:
    """Mean foreground probability where the network calls object (over 0.5), outside ``ignore_box``;
    0 where it calls nothing."""
    total, count = _called_foreground(foreground, ignore_box)
    return total / count if count else 0.0


def _foreground_on_grid(prob: np.ndarray, factor: float, shape) -> np.ndarray:
    """A view's foreground brought back to the grid of the image of ``shape`` it was zoomed from."""
    # judged there: the blur of bringing a view back costs it the sureness it loses on the way
    return prob[..., 0] if factor == 1.0 else zoom_back(prob[..., :1], shape)[..., 0]


def shrunk_probabilities(model, plane: np.ndarray, max_shrink: float, ignore_box,
                         probabilities: Callable[[np.ndarray, tuple[float, float]], np.ndarray],
                         on_view: Callable[[ViewChoice], None] | None = None) -> np.ndarray:
    """``probabilities(image, value_range)`` of a 2D plane at full resolution, from the view the network
    is most confident about (``surest_view``); ``on_view``: called with the ``ViewChoice`` made."""
    prob, choice, _ = surest_view(model, plane, max_shrink, ignore_box, probabilities)
    if on_view is not None:
        on_view(choice)
    return prob


def surest_view(model, plane: np.ndarray, max_shrink: float, ignore_box,
                probabilities: Callable[[np.ndarray, tuple[float, float]], np.ndarray]
                ) -> tuple[np.ndarray, ViewChoice, list[tuple[float, np.ndarray]]]:
    """The probabilities of the view the network is most confident about, the choice, and what the
    coarser views call foreground.

    The plane is seen at full size and shrunk by halves (``shrink_candidates``); the view with the
    highest ``foreground_confidence`` on the plane's grid is kept (the first of equals).
    Inside a particle larger than its view the network guesses, and its foreground is less sure than
    where it sees whole objects; objects too small for a shrunk view blur into doubt as well. The value
    range is always the whole plane's (a shrunk copy's own could flip an anchored polarity). ``plane``:
    finite values (``finite_plane``); ``ignore_box``: in the plane's pixels, left out of the judgement.

    Returns
    -------
    probabilities, choice, coarser
        ``(Y, X, 3)`` probabilities at full resolution, the ``ViewChoice``, and ``(zoom, called)`` for
        each view smaller than the one kept, finest first: ``called`` is where it calls foreground, on
        the plane's grid (``fill_from_smaller_views`` completes objects larger than the view from it).
    """
    value_range = model.value_range(plane)
    best, tried, called = None, [], []
    for factor in shrink_candidates(plane.shape, max_shrink):
        prob = probabilities(zoom_image(plane, factor), value_range)
        foreground = _foreground_on_grid(prob, factor, plane.shape)
        confidence = foreground_confidence(foreground, ignore_box)
        tried.append((factor, confidence))
        called.append((factor, foreground > 0.5))
        if best is None or confidence > best[0]:
            best = (confidence, factor, prob, foreground)
    _, factor, prob, foreground = best
    choice = ViewChoice(factor, tuple(tried))
    coarser = [(zoom, mask) for zoom, mask in called if zoom < factor]
    if factor != 1.0:
        # the foreground is on the plane's grid already; the other channels follow it there
        prob = np.concatenate([foreground[..., None], zoom_back(prob[..., 1:], plane.shape)], axis=-1)
    return prob, choice, coarser


def sure_foreground(prob: np.ndarray, threshold: float, min_confidence: float) -> np.ndarray:
    """Where the kept view is sure of foreground: above both the threshold and the confidence its objects are
    held to (``seen`` of ``fill_from_smaller_views``); a faint object it dropped may be a wide one's inside."""
    return prob[..., 0] > max(threshold, min_confidence)


def fill_from_smaller_views(labels: np.ndarray, plane: np.ndarray, ignore_box, choice: ViewChoice,
                            coarser: list[tuple[float, np.ndarray]], view_radius: float,
                            seen: np.ndarray | None = None) -> np.ndarray:
    """``labels`` of the view ``surest_view`` kept, with objects wider than the network sees (``view_radius``
    pixels of the view, so ``view_radius / choice.zoom`` of the plane) filled from the ``coarser`` views
    (``coarse_fill.fill_from_coarse_views``), and such objects that it outlined only in pieces or not at all
    taken whole from them (``coarse_fill.add_from_coarse_views``; ``seen``: where the kept view was sure of
    foreground, never taken back); nothing is taken from ``ignore_box``."""
    from napari_synthseg.coarse_fill import add_from_coarse_views, fill_from_coarse_views

    smaller = [cut_box(mask, ignore_box) for _, mask in coarser]
    reach = view_radius / choice.zoom
    filled = fill_from_coarse_views(labels, smaller, plane, reach)[0]
    return add_from_coarse_views(filled, smaller, plane, reach, seen)[0]


def surest_shrink(windows, max_shrink: float, probabilities: Callable[[np.ndarray], np.ndarray]) -> float:
    """The zoom at which the network is surest of the objects in ``windows``: how a plane too large
    to segment whole chooses its view (``shrunk_probabilities`` judges a whole plane).

    ``windows``: pieces of one plane at full resolution, each ``(image, ignore_box)`` with the box in
    the piece's pixels (or None); ``probabilities(image)``: the network on one view, normalised with the
    plane's range. The foreground each view calls is pooled over the windows and judged on their grid,
    as ``shrunk_probabilities`` does; the candidates are ``shrink_candidates`` of the smallest window.
    """
    side = min(min(np.shape(image)) for image, _ in windows)
    best = None
    for factor in shrink_candidates((side, side), max_shrink):
        total = count = 0
        for image, box in windows:
            prob = probabilities(zoom_image(image, factor))
            called_sum, called = _called_foreground(_foreground_on_grid(prob, factor, np.shape(image)), box)
            total, count = total + called_sum, count + called
        confidence = total / count if count else 0.0
        if best is None or confidence > best[0]:
            best = (confidence, factor)
    return best[1]


__all__ = ["MIN_SHRUNK_SIDE", "ViewChoice", "describe_views", "fill_from_smaller_views", "foreground_confidence",
           "shrink_candidates", "shrunk_probabilities", "sure_foreground", "surest_shrink", "surest_view"]
