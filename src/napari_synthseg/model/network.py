"""A small U-Net for CPUs (Keras 3 only, so any Keras backend works)."""

from __future__ import annotations

import keras
from keras import layers

from napari_synthseg.model.params import DEFAULT_BASE_FILTERS, DEFAULT_DEPTH, MAX_DEPTH


def build_unet(base_filters: int = DEFAULT_BASE_FILTERS, depth: int = DEFAULT_DEPTH, n_outputs: int = 3,
               input_channels: int = 1) -> keras.Model:
    """Fully convolutional U-Net with sigmoid outputs.

    Each level is two 3x3 conv-BatchNorm-ReLU blocks; the encoder halves the size with max
    pooling and doubles the filters, the decoder upsamples (nearest) and concatenates the skip
    connection.

    Parameters
    ----------
    base_filters : int
        Filters at full resolution (level ``k`` has ``base_filters * 2**k``).
    depth : int
        Number of poolings. Input height and width must be divisible by ``2**depth``
        (prediction pads tiles to such sizes).
    n_outputs : int
        Sigmoid output channels (3: foreground, distance, boundary).
    input_channels : int
        Channels of the input image (1 for gray).

    Returns
    -------
    keras.Model
        Input ``(None, None, input_channels)``, output ``(None, None, n_outputs)`` float32.
    """
    for name, value, low in (("base_filters", base_filters, 1), ("depth", depth, 1),
                             ("n_outputs", n_outputs, 1), ("input_channels", input_channels, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth={depth} is too deep for this CPU network; use 1..{MAX_DEPTH}")

    inputs = keras.Input(shape=(None, None, input_channels), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottom")
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, base_filters * 2**level, f"dec{level}")
    # float32 outputs even under a mixed-precision policy: the losses take logs of them
    outputs = layers.Conv2D(n_outputs, 1, activation="sigmoid", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"unet_b{base_filters}_d{depth}")


def _conv_block(x, filters: int, name: str):
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x
