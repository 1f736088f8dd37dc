"""The learned model: network, training data, training, prediction and the child-process runner.

Importing this package does not import Keras or TensorFlow; its modules do. It holds the model's
defaults, so the command line and the headless modules read them without loading Keras.
"""

#: Default U-Net size: small, so a CPU fits many more training steps into the same minutes,
#: which scored higher than a wider network (docs/benchmarks.md, "Why these defaults").
DEFAULT_BASE_FILTERS = 8
DEFAULT_DEPTH = 3

#: Learning-rate schedules over the training budget (``train_model(lr_schedule=...)``,
#: ``--lr-schedule``). ``"cosine"`` falls from the learning rate to 5 % of it along half a cosine,
#: so the last validated models come from small steps rather than from wherever the last noisy
#: batches left the weights (docs/benchmarks.md, "Why these defaults").
LR_SCHEDULES = ("cosine", "constant")
DEFAULT_LR_SCHEDULE = "cosine"
#: Where the cosine schedule ends, as a fraction of the learning rate.
LR_FLOOR = 0.05

#: XLA compilation of the training step (``train_model(xla=...)``, ``--xla``). Keras leaves XLA
#: off on CPU-only machines, where it makes the steps faster (docs/benchmarks.md, "Why these defaults"); compiling
#: takes seconds, so ``"auto"`` turns it on only for budgets that repay it.
XLA_CHOICES = ("auto", "on", "off")
#: Smallest step budget for which ``"auto"`` compiles with XLA (minutes budgets: 1 minute).
XLA_MIN_STEPS = 100

# Prediction (``model.prediction.predict``, ``--tile``, ``--batch-size``, ``--min-confidence``):
# large tiles overlap less and call the network less often; batch 2 keeps memory low and
# still batches on a GPU; overlap 96 makes tiled probabilities match untiled ones even for a
# network that uses its whole receptive field (benchmarks/bench_predict.py;
# docs/benchmarks.md, "Why these defaults").
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 96
DEFAULT_BATCH = 2
#: Objects whose mean foreground probability is below this are dropped (specks of noisy
#: backgrounds, which otherwise halve object precision; docs/benchmarks.md, "Why these defaults").
DEFAULT_MIN_CONFIDENCE = 0.8
