"""The training budget: steps, epochs or minutes, counted from the end of the first training step.

Building the network, the validation set and the first step's compilation are not counted, so a
budget of minutes buys the same training on a slow and on a fast start. Pure Python (no Keras).
"""

from __future__ import annotations

import math


class TrainingBudget:
    """How far a training run may go, and how much of it is used.

    Parameters
    ----------
    kind, amount
        ``"steps"``, ``"epochs"`` or ``"minutes"`` and how many (``TrainingParams.budget``).
    start_step
        The step the run starts from (a resumed model's steps); step budgets count from it.
    steps_per_epoch
        Steps of one epoch, for an ``"epochs"`` budget.
    """

    def __init__(self, kind: str, amount: float, *, start_step: int = 0, steps_per_epoch: int = 1):
        self.kind, self.amount = kind, amount
        self.start_step = int(start_step)
        per_unit = steps_per_epoch if kind == "epochs" else 1
        #: Last step of a steps or epochs budget; None for minutes.
        self.total_steps = None if kind == "minutes" else self.start_step + int(amount) * per_unit
        #: When the first step ended (on the caller's clock); None before.
        self.started_at: float | None = None
        #: When a minutes budget runs out (infinite before the first step ends, and for step budgets).
        self.deadline = math.inf
        #: Running average of one step's seconds (the first step, mostly compiling, left out).
        self.step_seconds: float | None = None

    def step_done(self, took: float, now: float) -> None:
        """Count a training step that ended at ``now`` after ``took`` seconds; the first one starts the clock."""
        if self.started_at is None:
            self.started_at = now
            if self.kind == "minutes":
                self.deadline = self.started_at + self.amount * 60.0
            return
        self.step_seconds = took if self.step_seconds is None else 0.8 * self.step_seconds + 0.2 * took

    def used(self, step: int, now: float) -> float:
        """Share of the budget used at ``step`` and time ``now`` (0 before the clock starts)."""
        if self.total_steps is None:
            return 0.0 if self.started_at is None else (now - self.started_at) / (self.amount * 60.0)
        return (step - self.start_step) / (self.total_steps - self.start_step)

    def reached(self, step: int, now: float, validation_seconds: float = 0.0) -> bool:
        """Whether to stop before ``step``: the steps are done, or another step (and the
        validation after it) would end past a minutes budget's deadline."""
        if self.total_steps is not None and step >= self.total_steps:
            return True
        return step > self.start_step and now + (self.step_seconds or 0) + validation_seconds > self.deadline


__all__ = ["TrainingBudget"]
