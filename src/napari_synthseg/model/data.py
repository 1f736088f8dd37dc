"""Streamed synthetic training data and fixed validation sets.

Scenes are made on the fly by ``napari_synthseg.synthesis.synthesize_scene`` from the object
bank and the background source; nothing is written to disk. Every batch is a pure function of
``(seed, batch index)``, so a run is reproducible and a resumed run sees new scenes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
from scipy import ndimage

from napari_synthseg.model.params import TrainingParams
from napari_synthseg.model.targets import labels_to_targets, with_known
from napari_synthseg.normalize import NORMALIZATIONS, normalize_image, percentile_normalize

# Distinct random streams for training batches, the synthetic validation set and backgrounds
# (3 was the real validation crops; the others keep their numbers so seeded scenes stay the same).
_TRAIN_STREAM, _VALIDATION_STREAM, _BACKGROUND_STREAM = 1, 2, 4
_CURATED_VALIDATION_STREAM = 6
#: The stream's defaults are the training's (``TrainingParams``), written there once.
_DEFAULT = TrainingParams()


def resolve_bank(bank):
    """Return ``(bank_for_synthesis, size, content_hash)`` for an ObjectBank, a bank path or objects.

    Raises
    ------
    ValueError
        When the bank holds no objects.
    TypeError
        When ``bank`` is none of the accepted kinds.
    """
    if isinstance(bank, (str, os.PathLike)):
        from napari_synthseg.bank import ObjectBank

        bank = ObjectBank(bank, create=False)
    if hasattr(bank, "objects") and hasattr(bank, "content_hash"):
        size, digest = len(bank), bank.content_hash()
        where = f"bank {getattr(bank, 'path', '')}"
    elif isinstance(bank, Sequence) and not isinstance(bank, (str, bytes)):
        bank = list(bank)
        bad = [type(obj).__name__ for obj in bank if not (hasattr(obj, "image") and hasattr(obj, "mask"))]
        if bad:
            raise TypeError(f"bank list must hold BankObject items (with .image and .mask), got {bad[0]}")
        size = len(bank)
        digest = hashlib.sha1("\n".join(sorted(str(getattr(o, "id", i)) for i, o in enumerate(bank)))
                              .encode()).hexdigest()[:16]
        where = "the bank list"
    else:
        raise TypeError(f"bank must be an ObjectBank, a bank folder path or a list of BankObject, "
                        f"got {type(bank).__name__}")
    if size == 0:
        raise ValueError(f"{where} holds no objects; add objects (auto-segment or curate) before training")
    return bank, size, digest


def resolve_backgrounds(backgrounds, seed: int = _DEFAULT.seed):
    """None, a ``BackgroundSource``, or a list of images / image paths (made into a source once)."""
    if backgrounds is None:
        return None
    if isinstance(backgrounds, (list, tuple)):
        if not backgrounds:
            return None
        from napari_synthseg.image_io import read_image, to_gray
        from napari_synthseg.synthesis import BackgroundSource

        images = [to_gray(read_image(item)) if isinstance(item, (str, os.PathLike)) else np.asarray(item)
                  for item in backgrounds]
        rng = np.random.default_rng([seed, _BACKGROUND_STREAM])
        return BackgroundSource.from_images(images, rng=rng)
    return backgrounds


def _default_synthesize():
    from napari_synthseg.synthesis import synthesize_scene

    return synthesize_scene


def augment(image: np.ndarray, rng: np.random.Generator, gamma: tuple[float, float] = (0.6, 1.6)) -> np.ndarray:
    """Gray-level changes a real image may show (gamma, blur, noise); polarity is never inverted."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    image = image ** np.float32(np.exp(rng.uniform(np.log(gamma[0]), np.log(gamma[1]))))
    if rng.random() < 0.3:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        image = image + rng.normal(0.0, rng.uniform(0.005, 0.04), image.shape).astype(np.float32)
    return image


def scene_to_sample(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator | None = None,
                    normalization: str = "percentile", known: np.ndarray | bool | None = None,
                    shape_known: np.ndarray | bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(P, P, 1)`` and targets ``(P, P, 3)`` from one scene.

    With ``known`` (a bool mask of the pixels the loss counts, or True for all) the targets
    get the fourth, ``known`` channel: ``(P, P, 4)``; with ``shape_known`` too (a mask of
    the pixels whose distance and boundary targets count, or True) the fifth: ``(P, P, 5)``.

    With ``rng`` the scene is augmented: gray levels, a random flip/rotation and a small
    scale/offset after normalisation (tiles of a big image are normalised with the whole
    image's range, which differs a little from a patch's own). ``"percentile"`` normalises
    the scene by its own percentiles; ``"anchored"`` takes it as it is: made from images
    already normalised by ``anchored_range``, it keeps their background and object levels.
    """
    labels = np.asarray(labels)
    if shape_known is not None and known is None:
        raise ValueError("shape_known needs known (True for every pixel) as well")
    mask = np.asarray(known, dtype=bool) if known is not None and known is not True else None
    shape_mask = np.asarray(shape_known, dtype=bool) if shape_known is not None and shape_known is not True else None
    anchored = normalization == "anchored"
    if rng is not None:
        image = augment(image, rng, gamma=(0.8, 1.25) if anchored else (0.6, 1.6))
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        image, labels = np.rot90(image, k), np.rot90(labels, k)
        mask = np.rot90(mask, k) if mask is not None else None
        shape_mask = np.rot90(shape_mask, k) if shape_mask is not None else None
        if flip:
            image, labels = image[:, ::-1], labels[:, ::-1]
            mask = mask[:, ::-1] if mask is not None else None
            shape_mask = shape_mask[:, ::-1] if shape_mask is not None else None
    x = np.asarray(image, dtype=np.float32) if anchored else percentile_normalize(image)
    if rng is not None:
        x = x * np.float32(rng.uniform(0.85, 1.15)) + np.float32(rng.uniform(-0.08, 0.08))
    targets = labels_to_targets(np.ascontiguousarray(labels))
    if known is not None:
        shape_channel = None if shape_known is None else (
            np.ascontiguousarray(shape_mask) if shape_mask is not None else True)
        targets = with_known(targets, np.ascontiguousarray(mask) if mask is not None else None, shape_channel)
    return np.ascontiguousarray(x[..., None], dtype=np.float32), targets


class SyntheticScenes(keras.utils.PyDataset):
    """Endless stream of synthetic training batches as a Keras ``PyDataset``.

    Parameters
    ----------
    bank : ObjectBank, path or list of BankObject
        Objects pasted into the scenes.
    backgrounds : None, BackgroundSource or list of images
        Passed to ``synthesize_scene`` (a list is turned into one ``BackgroundSource`` here).
    patch : int
        Scene height and width.
    batch_size : int
        Scenes per batch.
    steps_per_epoch : int
        Length of one Keras epoch; batches keep changing across epochs.
    seed : int
        Seeds every batch: batch ``i`` depends only on ``(seed, i)``.
    scene_params : dict, optional
        Extra keyword arguments for ``synthesize_scene`` (e.g. ``n_objects``); they
        override ``synthesis.TRAINING_SCENE_PARAMS``.
    augment : bool
        Apply gray-level and geometric augmentation.
    synthesize : callable, optional
        Replaces ``synthesize_scene`` (same signature); for experiments.
    real : sequence of (image, labels), optional
        Real images with instance labels (e.g. auto-segmented ones, the "pseudo-labels");
        a random crop of one of them replaces a synthetic scene with probability
        ``real_fraction``. Crops bring the real images' look (noise, texture, shading) that
        synthetic scenes only imitate; scenes bring touching objects with known identities.
    real_fraction : float
        Share of batch samples drawn from ``real`` (ignored without ``real``).
    curated : sequence of (image, Curation or (labels, known)), optional
        Real images with what a person said about them (``napari_synthseg.curation``); a
        crop centred near their known pixels replaces a sample with probability
        ``curated_fraction``. With ``curated`` every target has the fourth, ``known``
        channel (synthetic scenes and ``real`` crops are known everywhere), so the loss
        counts only the curated images' known pixels.
    curated_fraction : float
        Share of batch samples cropped from ``curated`` (ignored without it); ``real``
        crops take ``real_fraction`` of the rest.
    ring_px : int, optional
        Width of the known background ring outside each curated object (``Curation.known``).
    normalization : {"percentile", "anchored"}
        How samples are scaled for the network (see ``scene_to_sample``). With
        ``"anchored"`` the bank and backgrounds must already be cut from anchored images
        (``napari_synthseg.pipeline.network_images``); ``real`` images are normalised here.
    **kwargs
        ``workers``, ``use_multiprocessing``, ``max_queue_size`` for ``PyDataset``.
    """

    def __init__(self, bank, backgrounds=None, *, patch: int = _DEFAULT.patch, batch_size: int = _DEFAULT.batch_size,
                 steps_per_epoch: int = _DEFAULT.steps_per_epoch, seed: int = _DEFAULT.seed,
                 scene_params: dict | None = None, augment: bool = True, synthesize: Callable | None = None,
                 real=None, real_fraction: float = _DEFAULT.real_fraction,
                 normalization: str = _DEFAULT.normalization, curated=None,
                 curated_fraction: float = _DEFAULT.curated_fraction, ring_px: int | None = None,
                 real_clumps: str = _DEFAULT.real_clumps, **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        self.normalization = normalization
        if not 0.0 <= float(real_fraction) <= 1.0:
            raise ValueError(f"real_fraction must be between 0 and 1, got {real_fraction!r}")
        for name, value in (("patch", patch), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.bank, self.bank_size, self.bank_hash = resolve_bank(bank)
        self.backgrounds = resolve_backgrounds(backgrounds, seed)
        self.patch = int(patch)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        from napari_synthseg.synthesis import TRAINING_SCENE_PARAMS

        # the training recipe's scene settings, overridden by the caller's
        self.scene_params = {**TRAINING_SCENE_PARAMS, **(scene_params or {})}
        self.augment = bool(augment)
        if synthesize is None:
            from napari_synthseg.synthesis import prepare_objects

            self.synthesize = _default_synthesize()
            self._scene_bank = prepare_objects(self.bank)  # decoded once, not per scene
        else:
            self.synthesize, self._scene_bank = synthesize, self.bank
        self.real = RealCrops(real, self.patch, normalization, clumps=real_clumps) if real else None
        self.real_fraction = float(real_fraction) if real else 0.0
        if not 0.0 <= float(curated_fraction) <= 1.0:
            raise ValueError(f"curated_fraction must be between 0 and 1, got {curated_fraction!r}")
        self.curated = CuratedCrops(curated, self.patch, normalization, ring_px) if curated else None
        self.curated_fraction = float(curated_fraction) if curated else 0.0
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batch(self.epoch * self.steps_per_epoch + int(index))

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def scene(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One raw scene ``(image float32 [0, 1], labels uint32)`` of ``patch x patch``."""
        image, labels = self.synthesize(self._scene_bank, (self.patch, self.patch), rng,
                                        backgrounds=self.backgrounds, **self.scene_params)
        return image, labels

    def _extra_channels(self) -> tuple[bool | None, bool | None]:
        """``known`` and ``shape_known`` for samples known everywhere: True to add the channel, None not to.

        Every sample of a stream has the same channels: the fourth with curated images, the
        fourth and fifth when the real crops hold clumps (``RealCrops.clump_pixels``).
        """
        shape_known = True if self.real is not None and self.real.clump_pixels else None
        known = True if self.curated is not None or shape_known else None
        return known, shape_known

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The training batch number ``index`` (any non-negative integer): ``x (B,P,P,1), y (B,P,P,3)``."""
        rng = np.random.default_rng([self.seed, _TRAIN_STREAM, int(index)])
        samples = []
        # without curated images the random draws are those of before, so seeded runs repeat
        known, shape_known = self._extra_channels()
        for _ in range(self.batch_size):
            if self.curated is not None and self.curated_fraction > 0 and rng.random() < self.curated_fraction:
                image, labels, mask = self.curated.crop(rng)
                samples.append(scene_to_sample(image, labels, rng if self.augment else None, self.normalization,
                                               known=mask, shape_known=shape_known))
                continue
            if self.real is not None and rng.random() < self.real_fraction:
                image, labels, clumps = self.real.crop_with_clumps(rng)
                samples.append(scene_to_sample(image, labels, rng if self.augment else None, self.normalization,
                                               known=known, shape_known=~clumps if shape_known else None))
                continue
            samples.append(scene_to_sample(*self.scene(rng), rng if self.augment else None, self.normalization,
                                           known=known, shape_known=shape_known))
        return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])

    def validation_set(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A fixed set of ``n`` un-augmented scenes, the same for every call with this seed."""
        if int(n) < 1:
            raise ValueError(f"validation_scenes must be >= 1, got {n}")
        rng = np.random.default_rng([self.seed, _VALIDATION_STREAM])
        n_curated = int(round(int(n) * self.curated_fraction)) if self.curated is not None else 0
        known, shape_known = self._extra_channels()
        samples = [scene_to_sample(*self.scene(rng), None, self.normalization, known=known, shape_known=shape_known)
                   for _ in range(int(n) - n_curated)]
        # curated crops of their own stream: the synthetic part stays the set it was
        curated_rng = np.random.default_rng([self.seed, _CURATED_VALIDATION_STREAM])
        for _ in range(n_curated):
            image, labels, mask = self.curated.crop(curated_rng)
            samples.append(scene_to_sample(image, labels, None, self.normalization, known=mask,
                                           shape_known=shape_known))
        return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])


def check_pairs(pairs, what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """2D gray images and integer labels of the same shape, from (image, labels) pairs."""
    from napari_synthseg.image_io import to_gray

    checked = []
    for i, pair in enumerate(pairs):
        try:
            image, labels = pair
        except (TypeError, ValueError):
            raise TypeError(f"{what} item {i} must be an (image, labels) pair") from None
        image = to_gray(np.asarray(image))
        labels = np.asarray(labels)
        if image.ndim != 2 or labels.shape != image.shape:
            raise ValueError(f"{what} item {i}: image {image.shape} and labels {labels.shape} "
                             "must be 2D with the same height and width")
        if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
            labels = np.rint(labels).astype(np.int64)
        checked.append((image, labels.astype(np.int64).clip(min=0)))
    return checked


class RealCrops:
    """Random ``patch`` x ``patch`` crops of real images with labels, for training.

    Each image is normalised as a whole first (``normalize_image``, as prediction normalises a
    whole image) and clipped to [0, 1], so a crop keeps its place in the image's gray levels. Images smaller than
    a patch are mirrored out to the patch size; the mirrored objects get new ids.
    """

    def __init__(self, pairs, patch: int, normalization: str = "percentile", clumps: str = _DEFAULT.real_clumps):
        from napari_synthseg.model.params import REAL_CLUMPS
        from napari_synthseg.shapes import clump_interiors

        if clumps not in REAL_CLUMPS:
            raise ValueError(f"clumps must be one of {', '.join(REAL_CLUMPS)}, got {clumps!r}")
        self.patch = int(patch)
        self.images, self.labels, self.clumps = [], [], []
        for image, labels in check_pairs(pairs, "real"):
            x = np.clip(normalize_image(image, normalization), 0.0, 1.0)
            if x.shape[0] < self.patch or x.shape[1] < self.patch:
                x, labels = _mirror_to(x, labels, self.patch)
            self.images.append(x)
            self.labels.append(labels)
            self.clumps.append(clump_interiors(labels) if clumps == "outline" else np.zeros(labels.shape, bool))
        #: Pixels inside clumps, whose distance and boundary targets are not counted.
        self.clump_pixels = int(sum(int(c.sum()) for c in self.clumps))
        if not self.images:
            raise ValueError("real is empty; give (image, labels) pairs or None")
        # larger images are drawn more often, so every pixel has about the same chance
        areas = np.array([x.size for x in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def _window(self, rng: np.random.Generator) -> tuple[int, tuple[slice, slice]]:
        i = int(rng.choice(len(self.images), p=self.weights))
        y0 = int(rng.integers(0, self.images[i].shape[0] - self.patch + 1))
        x0 = int(rng.integers(0, self.images[i].shape[1] - self.patch + 1))
        return i, (slice(y0, y0 + self.patch), slice(x0, x0 + self.patch))

    def crop(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One crop ``(image float32 [0, 1], labels)`` of a randomly chosen image."""
        i, window = self._window(rng)
        return self.images[i][window], self.labels[i][window]

    def crop_with_clumps(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`crop` with its clump-interior mask (True: distance and boundary not known there)."""
        i, window = self._window(rng)
        return self.images[i][window], self.labels[i][window], self.clumps[i][window]


def check_curated(pairs, ring_px: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(image, labels, known)`` triples from ``(image, Curation or (labels, known))`` pairs."""
    from napari_synthseg.image_io import to_gray

    checked = []
    for i, pair in enumerate(pairs):
        try:
            image, curation = pair
        except (TypeError, ValueError):
            raise TypeError(f"curated item {i} must be an (image, curation) pair") from None
        image = to_gray(np.asarray(image))
        if hasattr(curation, "objects") and hasattr(curation, "known"):
            labels = np.asarray(curation.objects)
            known = curation.known() if ring_px is None else curation.known(ring_px=int(ring_px))
        else:
            try:
                labels, known = curation
            except (TypeError, ValueError):
                raise TypeError(f"curated item {i}: the curation must be a Curation or a (labels, known) "
                                "pair") from None
            labels, known = np.asarray(labels), np.asarray(known) > 0
        if image.ndim != 2 or labels.shape != image.shape or known.shape != image.shape:
            raise ValueError(f"curated item {i}: image {image.shape}, labels {labels.shape} and known {known.shape} "
                             "must be 2D with the same height and width")
        if not known.any():
            continue  # nothing said about this image: it has nothing to teach
        checked.append((image, labels.astype(np.int64).clip(min=0), known))
    return checked


class CuratedCrops:
    """Crops of curated real images centred near their known pixels, with the known mask.

    Each image is normalised as a whole (``normalize_image``, as prediction does) and
    clipped to [0, 1], as ``RealCrops`` does. A crop's centre is a random known pixel
    shifted by up to a quarter of the patch, so the known pixels sit anywhere in the crop.
    Each curated image is drawn equally often, and a crop is centred on a known object or on
    known background with even odds (when the image has both): a rejected background region
    is often far larger than the picked objects, and crops drawn by pixel count would teach
    little but "background" and lower the model's confidence everywhere.
    """

    def __init__(self, pairs, patch: int, normalization: str = "percentile", ring_px: int | None = None):
        self.patch = int(patch)
        self.images, self.labels, self.known, self.points = [], [], [], []  # points: (object, background)
        for image, labels, known in check_curated(pairs, ring_px):
            x = np.clip(normalize_image(image, normalization), 0.0, 1.0)
            if x.shape[0] < self.patch or x.shape[1] < self.patch:
                pad = ((0, max(self.patch - x.shape[0], 0)), (0, max(self.patch - x.shape[1], 0)))
                x, labels = _mirror_to(x, labels, self.patch)
                known = np.pad(known, pad, mode="symmetric")
            self.images.append(x)
            self.labels.append(labels)
            self.known.append(known)
            kinds = (np.argwhere(known & (labels > 0)), np.argwhere(known & (labels == 0)))
            self.points.append([p for p in kinds if len(p)])
        if not self.images:
            raise ValueError("the curated images hold no known pixel; pick, reject or add objects first")

    def crop(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One crop ``(image float32 [0, 1], labels, known)`` of a randomly chosen image."""
        i = int(rng.integers(len(self.images)))
        image, kinds = self.images[i], self.points[i]
        points = kinds[int(rng.integers(len(kinds)))]
        centre = points[int(rng.integers(len(points)))] + rng.integers(-(self.patch // 4), self.patch // 4 + 1, 2)
        y0 = int(np.clip(centre[0] - self.patch // 2, 0, image.shape[0] - self.patch))
        x0 = int(np.clip(centre[1] - self.patch // 2, 0, image.shape[1] - self.patch))
        window = (slice(y0, y0 + self.patch), slice(x0, x0 + self.patch))
        return image[window], self.labels[i][window], self.known[i][window]


def _mirror_to(image: np.ndarray, labels: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    pad = ((0, max(patch - image.shape[0], 0)), (0, max(patch - image.shape[1], 0)))
    mirrored = np.pad(np.zeros(labels.shape, dtype=bool), pad, constant_values=True)
    new_labels = np.pad(labels, pad, mode="symmetric")
    # a mirrored copy is another object, not a continuation of the original
    offset = int(labels.max()) + 1
    new_labels[mirrored & (new_labels > 0)] += offset
    return np.pad(image, pad, mode="symmetric"), new_labels

