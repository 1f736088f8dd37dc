"""The learned model: network, training data, training, prediction and the child-process runner.

Importing this package does not import Keras or TensorFlow; its modules do.
"""

#: Default U-Net size. On 2 CPU cores base 8 runs about 2.2 times the training steps of
#: base 16 in the same minutes, and after 12 minutes it scored higher on dev_emps
#: (docs/benchmarks.md, "Network size").
DEFAULT_BASE_FILTERS = 8
DEFAULT_DEPTH = 3

#: Learning-rate schedules over the training budget (``train_model(lr_schedule=...)``,
#: ``--lr-schedule``). ``"cosine"`` falls from the learning rate to 5 % of it along half a cosine,
#: so the last validated models come from small steps rather than from wherever the last noisy
#: batches left the weights (docs/benchmarks.md, "Learning-rate schedule").
LR_SCHEDULES = ("cosine", "constant")
DEFAULT_LR_SCHEDULE = "cosine"
#: Where the cosine schedule ends, as a fraction of the learning rate.
LR_FLOOR = 0.05
