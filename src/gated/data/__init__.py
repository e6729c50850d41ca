"""Synthetic memory tasks, seeded and small, for watching gates learn to remember.

``adding_problem`` asks a model to carry two numbers across a long sequence and
add them; ``copy_task`` asks it to hold a string of symbols through a long
stretch of blanks and then reproduce it. Each comes with the loss of a model
that has no memory at all, the bar a trained model has to clear.
"""

from .memory import ADDING_BASELINE_MSE, adding_problem, copy_baseline_cross_entropy, copy_task

__all__ = ["ADDING_BASELINE_MSE", "adding_problem", "copy_task", "copy_baseline_cross_entropy"]
