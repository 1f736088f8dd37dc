"""The model's settings as checked, frozen objects: the one place their defaults live.

``TrainingParams`` holds ``train_model``'s tunable keywords, ``PredictionParams`` ``predict``'s;
their ``as_dict()`` gives those keywords and ``from_dict`` checks a dict of them. A bad value
raises ``ValueError`` naming the setting, the value and what it accepts. This module loads no
Keras, so the command line, the docks and the sidecar readers use it freely.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from napari_synthseg.instances import DEFAULT_MIN_AREA, DEFAULT_THRESHOLD, probabilities_to_instances
from napari_synthseg.instances import METHODS as INSTANCE_METHODS
from napari_synthseg.normalize import NORMALIZATIONS
from napari_synthseg.scalebar import check_ignore_box

#: Default U-Net size: small, so a CPU fits many more training steps into the same minutes,
#: which scored higher than a wider network (docs/benchmarks.md, "Why these defaults").
DEFAULT_BASE_FILTERS = 8
DEFAULT_DEPTH = 3
#: Deepest U-Net ``build_unet`` makes (the tiles of a deeper one get too coarse for a CPU).
MAX_DEPTH = 6


def receptive_field(depth: int) -> int:
    """Side, in pixels, of the input window one output pixel of ``build_unet(depth=depth)`` depends on.

    Each level's two 3x3 convolutions widen it by 4 steps of that level's stride on the way down and
    again on the way up, each pooling by one, the bottom's two convolutions by 4: 96 pixels at depth 3.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    return 1 + 9 * (2 ** depth - 1) + 4 * 2 ** depth


#: Learning-rate schedules over the training budget (``train_model(lr_schedule=...)``,
#: ``--lr-schedule``). ``"cosine"`` falls from the learning rate to 5 % of it along half a cosine,
#: so the last validated models come from small steps rather than from wherever the last noisy
#: batches left the weights (docs/benchmarks.md, "Why these defaults").
LR_SCHEDULES = ("cosine", "constant")
DEFAULT_LR_SCHEDULE = "cosine"
#: Where the cosine schedule ends, as a fraction of the learning rate.
LR_FLOOR = 0.05

#: XLA compilation of the training step (``train_model(xla=...)``, ``--xla``). Keras leaves XLA
#: off on CPU-only machines, where it makes the steps faster (docs/benchmarks.md, "Why these defaults");
#: compiling takes seconds, so ``"auto"`` turns it on only for budgets that repay it.
XLA_CHOICES = ("auto", "on", "off")
#: What real crops teach inside an object judged a clump by shape (``TrainingParams.real_clumps``).
REAL_CLUMPS = ("outline", "labels")
#: Smallest step budget for which ``"auto"`` compiles with XLA (minutes budgets: 1 minute).
XLA_MIN_STEPS = 100

#: ``synthesize_scene`` settings the trainer uses unless ``scene_params`` overrides them.
#: A bank from thresholds holds mostly bright objects; shifting each pasted object's gray
#: level by up to +-0.7 (and its contrast by up to 60 %) teaches the network mid-gray and
#: dark objects too (docs/benchmarks.md, "Why these defaults").
DEFAULT_SCENE_PARAMS = {"brightness": 0.7, "contrast": 0.6}

#: The most ``predict`` shrinks a plane to find the view the network is most confident about (full size,
#: half, a quarter; docs/benchmarks.md, "The network chooses the scale it sees objects at").
MAX_SHRINK = 4.0

#: Momentum of the weight average that is validated and saved; off by default: it held pixel
#: IoU late in training but cost object F1 (docs/benchmarks.md, "Why these defaults").
DEFAULT_WEIGHT_AVERAGE = 0.0

#: Share of the budget after which validations choose the model to keep; before it the best
#: model is only a fallback for an early Stop. Early on, an untrained network can score as high
#: on the synthetic validation as a trained one (docs/benchmarks.md, "Why these defaults").
DEFAULT_SELECT_AFTER = 0.6

#: The checkpoints validated while selecting are averaged and the average is the model kept: single
#: checkpoints carry the last batches' noise (docs/benchmarks.md, "Why these defaults").
DEFAULT_AVERAGE_CHECKPOINTS = True

#: Pixels of the real images scored at each validation: enough images to choose a good checkpoint
#: reliably, few enough to keep each validation short (docs/benchmarks.md, "Why these defaults").
REAL_VALIDATION_PIXELS = 8_000_000

# Prediction (``model.prediction.predict``, ``--tile``, ``--batch-size``, ``--min-confidence``):
# large tiles overlap less and call the network less often; batch 2 keeps memory low and
# still batches on a GPU; overlap 96 makes tiled probabilities match untiled ones even for a
# network that uses its whole receptive field (docs/benchmarks.md, "Why these defaults").
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 96
DEFAULT_BATCH = 2
#: Objects whose mean foreground probability is below this are dropped (specks of noisy
#: backgrounds, which otherwise halve object precision; docs/benchmarks.md, "Why these defaults").
DEFAULT_MIN_CONFIDENCE = 0.8
#: The instance step's own defaults (``probabilities_to_instances``), which ``predict`` passes on unless told.
_INSTANCE_DEFAULTS = {name: parameter.default
                      for name, parameter in inspect.signature(probabilities_to_instances).parameters.items()}
#: Inference precisions understood by ``predict``.
PRECISIONS = ("auto", "float32", "bfloat16")

#: Budgets ``train_model`` understands, in the order its error messages name them.
BUDGET_KINDS = ("steps", "epochs", "minutes")


# --------------------------------------------------------------------------- checks
def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(name: str, value, low: int, *, integral_floats: bool = False, what: str = "") -> int:
    """``value`` as an int, or a ValueError naming ``name``, the value and the lowest allowed."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if integral_floats and _is_number(value) and math.isfinite(value) and int(value) == value:
        ok = True
    if not ok or value < low:
        kind = what or ("a positive integer" if low == 1 else f"an integer >= {low}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def _share(name: str, value, *, upper_open: bool = False, lower_open: bool = False) -> float:
    """``value`` as a float in [0, 1] (ends open as asked), or a ValueError naming it."""
    ok = (
        _is_number(value)
        and (0.0 < value if lower_open else 0.0 <= value)
        and (value < 1.0 if upper_open else value <= 1.0)
    )
    if not ok:
        bounds = f"{'(' if lower_open else '['}0, 1{')' if upper_open else ']'}"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return float(value)


def _choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(name: str, value) -> bool:
    # numpy booleans and 0/1 are flags too (they compare equal to True/False)
    if isinstance(value, str) or value not in (True, False):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class _Params:
    """``from_dict``/``as_dict``/``replace`` shared by the parameter objects."""

    _what = "setting"

    @classmethod
    def from_dict(cls, params: Mapping):
        """Settings from keywords; a key that is no setting is an error naming the settings."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls._what}(s) {', '.join(map(repr, unknown))}; use {', '.join(names)}")
        return cls(**params)

    def as_dict(self) -> dict:
        """The keywords of the function these settings are for."""
        return asdict(self)

    def replace(self, **changes):
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainingParams(_Params):
    """The settings of :func:`~napari_synthseg.model.training.train_model`, checked when made.

    ``train_model``'s signature, the command line and the Train dock read their defaults here,
    and a model's sidecar records them (``training.params``). ``as_dict()`` gives ``train_model``'s
    keywords. The budget may be left out here; ``train_model`` needs exactly one.

    Attributes
    ----------
    steps, epochs, minutes : int, int, float
        The budget: ``epochs`` means ``epochs * steps_per_epoch`` steps; ``minutes`` is wall time
        checked between batches. It counts from the end of the first training step, also when
        resuming: building the model, the validation set and the first step's compilation are not counted.
    patch, batch_size : int
        Scene size (a multiple of ``2**depth``) and scenes per step.
    steps_per_epoch : int
        Steps between two validations.
    validation_scenes : int
        Size of the fixed, seeded synthetic validation set.
    base_filters, depth : int
        Network size (ignored when resuming: the saved network is used).
    learning_rate : float
        Adam learning rate (also applied to a resumed model's optimizer); the schedule scales it.
    seed : int
        Seeds Keras, the scenes and the validation set.
    scene_params : dict, optional
        Keyword arguments for ``synthesize_scene``, on top of ``DEFAULT_SCENE_PARAMS``.
    real_fraction : float
        Share of training samples cropped from ``train_model``'s ``real_training`` (0 to 1).
    normalization : {"percentile", "anchored"}
        The network's input scaling, recorded in the sidecar so prediction repeats it.
        ``"anchored"``: the bank, backgrounds and real images were normalised with
        ``anchored_range`` (background at 0.25, objects at 0.75, bright objects whatever the
        image's polarity); prediction then anchors every image the same way.
    weight_average : float
        Momentum of a moving average of the weights that is validated and saved instead of
        the raw weights (``WeightAverage``, e.g. 0.99; 0: the raw weights), in [0, 1).
    lr_schedule : {"cosine", "constant"}
        ``"cosine"`` lowers the learning rate along half a cosine to ``LR_FLOOR`` of it at the end
        of the budget (a resumed run starts the schedule again); ``"constant"`` keeps it.
    xla : {"auto", "on", "off"}
        Compile the training step with XLA (``use_xla``). ``"auto"``: on with TensorFlow for
        budgets of at least ``XLA_MIN_STEPS`` steps or 1 minute.
    select_after : float
        Share of the budget (0 to 1) from which validations choose the saved model. Before
        it, the best model by the synthetic IoU is saved as a fallback (so Stop always leaves
        a model) and the real images are not scored; the first validation after it replaces
        the fallback. 0 selects from the first validation on.
    average_checkpoints : bool
        Average the weights of the checkpoints validated from ``select_after`` on (equal
        weights, ``CheckpointAverage``) and keep the average instead of the best of them at the
        end of the run (a resumed run: when it beats the resumed model). A run stopped early
        keeps the best checkpoint.
    real_validation_pixels : int
        Pixels of ``real_validation`` scored at each validation (images in a seeded order;
        larger images by a centred 1024 x 1024 window).
    curated_fraction : float
        Share of training (and validation) samples cropped from ``curated`` (0 to 1).
    curated_ring_px : int, optional
        Width of the known background ring outside each curated object (``Curation.known``).
    real_clumps : {"outline", "labels"}
        What the real crops teach inside an object whose shape says "several particles"
        (``shapes.clump_interiors``): ``"outline"`` only its outline (the distance and boundary
        targets inside it are not counted, so the synthetic scenes teach where touching
        particles meet); ``"labels"`` the object as labelled, one particle.
    """

    _what = "training setting"

    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    patch: int = 256
    batch_size: int = 4
    steps_per_epoch: int = 50
    validation_scenes: int = 16
    base_filters: int = DEFAULT_BASE_FILTERS
    depth: int = DEFAULT_DEPTH
    learning_rate: float = 1e-3
    seed: int = 0
    scene_params: dict | None = None
    real_fraction: float = 0.5
    normalization: str = "percentile"
    weight_average: float = DEFAULT_WEIGHT_AVERAGE
    lr_schedule: str = DEFAULT_LR_SCHEDULE
    xla: str = "auto"
    select_after: float = DEFAULT_SELECT_AFTER
    average_checkpoints: bool = DEFAULT_AVERAGE_CHECKPOINTS
    real_validation_pixels: int = REAL_VALIDATION_PIXELS
    curated_fraction: float = 0.5
    curated_ring_px: int | None = None
    real_clumps: str = "outline"

    def __post_init__(self) -> None:
        checked = self._checked_budget()
        for name in ("patch", "batch_size", "steps_per_epoch", "validation_scenes", "real_validation_pixels"):
            checked[name] = _integer(name, getattr(self, name), 1)
        for name in ("base_filters", "depth"):
            checked[name] = _integer(name, getattr(self, name), 1, what="an integer >= 1")
        if self.depth > MAX_DEPTH:
            raise ValueError(f"depth={self.depth} is too deep for this CPU network; use 1..{MAX_DEPTH}")
        if not (_is_number(self.learning_rate) and math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a number > 0, got {self.learning_rate!r}")
        checked["learning_rate"] = float(self.learning_rate)
        checked["seed"] = _integer("seed", self.seed, 0)
        if self.scene_params is not None:
            if not isinstance(self.scene_params, Mapping) or not all(isinstance(k, str) for k in self.scene_params):
                raise ValueError(f"scene_params must be a dict of synthesize_scene keywords, got {self.scene_params!r}")
            checked["scene_params"] = dict(self.scene_params)
        checked["real_fraction"] = _share("real_fraction", self.real_fraction)
        checked["curated_fraction"] = _share("curated_fraction", self.curated_fraction)
        _choice("normalization", self.normalization, NORMALIZATIONS)
        checked["weight_average"] = _share("weight_average", self.weight_average, upper_open=True)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("real_clumps", self.real_clumps, REAL_CLUMPS)
        _choice("xla", self.xla, XLA_CHOICES)
        if not (_is_number(self.select_after) and 0.0 <= self.select_after <= 1.0):
            raise ValueError(f"select_after must be a share of the budget between 0 and 1, got {self.select_after!r}")
        checked["select_after"] = float(self.select_after)
        checked["average_checkpoints"] = _flag("average_checkpoints", self.average_checkpoints)
        if self.curated_ring_px is not None:
            checked["curated_ring_px"] = _integer("curated_ring_px", self.curated_ring_px, 0)
        for name, value in checked.items():  # plain Python numbers: the sidecar records them as JSON
            object.__setattr__(self, name, value)

    def _checked_budget(self) -> dict:
        given = [name for name in BUDGET_KINDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(
                f"give exactly one training budget: steps=N, epochs=N or minutes=M (got {', '.join(given)})"
            )
        checked = {}
        if self.minutes is not None:
            if not (_is_number(self.minutes) and math.isfinite(self.minutes) and self.minutes > 0):
                raise ValueError(f"minutes must be a number > 0, got {self.minutes!r}")
            checked["minutes"] = float(self.minutes)
        for name in ("steps", "epochs"):
            if getattr(self, name) is not None:
                checked[name] = _integer(name, getattr(self, name), 1)
        return checked

    @classmethod
    def from_sidecar(cls, info: Mapping) -> TrainingParams:
        """The settings a model was trained with, from its sidecar (``read_sidecar``'s dict).

        A sidecar from before ``training.params`` gives what it recorded (budget, sizes, rates,
        scene settings, network, normalisation); the settings it did not record keep their defaults.
        """
        training = info.get("training") or {}
        if isinstance(training.get("params"), Mapping):
            return cls.from_dict(training["params"])
        names = {f.name for f in fields(cls)}
        # the recorded "steps" is the kept model's step, not the budget
        found = {key: value for key, value in training.items() if key in names and key not in BUDGET_KINDS}
        found.update(training.get("budget") or {})
        network = info.get("network") or {}
        found.update({key: network[key] for key in ("base_filters", "depth") if key in network})
        mode = (info.get("normalization") or {}).get("mode")
        if mode is not None:
            found["normalization"] = mode
        if isinstance(found.get("xla"), bool):  # recorded as whether the step was compiled
            found["xla"] = "on" if found["xla"] else "off"
        if not found.get("real_validation_pixels"):  # 0: no real images were scored
            found.pop("real_validation_pixels", None)
        return cls.from_dict(found)

    @property
    def budget(self) -> tuple[str, float]:
        """``(kind, amount)`` of the one budget given, e.g. ``("minutes", 3.0)``."""
        given = [(name, getattr(self, name)) for name in BUDGET_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one training budget: steps=N, epochs=N or minutes=M (got none)")
        return given[0]

    @property
    def scenes(self) -> dict:
        """``synthesize_scene`` keywords of the training scenes: ``DEFAULT_SCENE_PARAMS`` under ``scene_params``."""
        return {**DEFAULT_SCENE_PARAMS, **(self.scene_params or {})}


# --------------------------------------------------------------------------- prediction
@dataclass(frozen=True)
class PredictionParams(_Params):
    """The settings of :func:`~napari_synthseg.model.prediction.predict`, checked when made.

    ``predict``'s signature, the command line and the Segment dock read their defaults here;
    ``as_dict()`` gives ``predict``'s keywords.

    Attributes
    ----------
    tile, overlap : int, int or None
        Tile side (rounded up to a multiple of ``2 ** depth``; tiles then shrink to share
        the image evenly) and overlap in pixels (rounded up to a multiple of ``2 ** depth``;
        ``None``: ``DEFAULT_OVERLAP``, at most a quarter of the tile).
    batch_size : int
        Tiles per network call (memory grows with it).
    threshold, min_area, fill_holes, method, fill_contours, min_confidence
        Passed to ``probabilities_to_instances`` (``fill_contours`` fills regions the
        foreground encloses, seen from the image border: the curation step's contour filling;
        ``min_confidence`` drops objects whose mean foreground probability is lower).
    precision : {"auto", "float32", "bfloat16"}
        See ``SegmentationModel.compute_model``.
    augment : bool
        Average the network's answers over the 8 flips and transposes of each plane
        (test-time augmentation): smoother outlines and fewer specks, 8 times slower.
    ignore_box : "auto", (y0, y1, x0, x1) or None
        Region of each plane that holds no objects, as in ``autosegment``: ``"auto"`` detects
        a scale-bar / info box in a corner (``find_scale_bar``), a tuple gives it, None keeps
        everything. Its foreground probability is set to 0, so no object lies in it.
    drop_overlays : bool
        Leave out objects drawn on the image (scale bars, boxes, lettering: noise-free and
        shaped like a bar, a box or a stroke; ``drawn.drop_drawn_overlays``) and the support
        (a region over three tenths of the image with no gray step across its outline: a film or
        matrix), replaced by the particles found on it (``substrate.replace_support``; not judged
        block by block in images tiled from disk).
    max_shrink : float
        The most a plane is shrunk before the network sees it. The plane is segmented at full size
        and shrunk by halves down to ``1 / max_shrink``; the view whose foreground the network is most
        confident about is kept (``views.shrunk_probabilities``) and its probabilities are
        brought back to full resolution. The network sees about a hundred pixels around each pixel:
        inside a larger particle it sees neither its outline nor the line along which it touches the
        next. 1: never shrink.
    """

    _what = "prediction setting"

    tile: int = DEFAULT_TILE
    overlap: int | None = None
    batch_size: int = DEFAULT_BATCH
    threshold: float = DEFAULT_THRESHOLD
    min_area: int = DEFAULT_MIN_AREA
    fill_holes: bool = _INSTANCE_DEFAULTS["fill_holes"]
    method: str = _INSTANCE_DEFAULTS["method"]
    fill_contours: bool = _INSTANCE_DEFAULTS["fill_contours"]
    precision: str = "auto"
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    augment: bool = False
    ignore_box: str | tuple[int, int, int, int] | None = "auto"
    drop_overlays: bool = True
    max_shrink: float = MAX_SHRINK

    def __post_init__(self) -> None:
        _integer("tile", self.tile, 1, integral_floats=True)
        if self.overlap is not None:
            overlap = _integer("overlap", self.overlap, 0, integral_floats=True, what="a non-negative integer")
            if overlap >= self.tile:
                raise ValueError(f"overlap must be smaller than the tile ({self.tile}), got {self.overlap!r}")
        _integer("batch_size", self.batch_size, 1, integral_floats=True)
        _share("threshold", self.threshold)
        _integer("min_area", self.min_area, 0, integral_floats=True)
        _choice("method", self.method, INSTANCE_METHODS)
        _choice("precision", self.precision, PRECISIONS)
        _share("min_confidence", self.min_confidence)
        for name in ("fill_holes", "fill_contours", "augment", "drop_overlays"):
            object.__setattr__(self, name, _flag(name, getattr(self, name)))
        object.__setattr__(self, "ignore_box", check_ignore_box(self.ignore_box))
        shrink = self.max_shrink
        if isinstance(shrink, bool) or not isinstance(shrink, numbers.Real) or not math.isfinite(shrink) \
                or shrink < 1.0:
            raise ValueError(f"max_shrink must be a number >= 1 (1: never shrink), got {shrink!r}")
        object.__setattr__(self, "max_shrink", float(shrink))


__all__ = [
    "BUDGET_KINDS",
    "DEFAULT_BASE_FILTERS",
    "DEFAULT_BATCH",
    "DEFAULT_DEPTH",
    "DEFAULT_LR_SCHEDULE",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_OVERLAP",
    "DEFAULT_SCENE_PARAMS",
    "DEFAULT_SELECT_AFTER",
    "DEFAULT_TILE",
    "DEFAULT_WEIGHT_AVERAGE",
    "LR_FLOOR",
    "LR_SCHEDULES",
    "MAX_DEPTH",
    "MAX_SHRINK",
    "PRECISIONS",
    "PredictionParams",
    "REAL_VALIDATION_PIXELS",
    "TrainingParams",
    "XLA_CHOICES",
    "XLA_MIN_STEPS",
    "receptive_field",
]
