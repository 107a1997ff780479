"""Kaplan's steps-and-batch figures and Chinchilla's Approach 1: now :mod:`bayesscale.plots.steps`.

This module keeps the old import path working (``from bayesscale import
plots_steps``, ``bayesscale.plots_steps.loss_vs_size``); the same functions
are ``bayesscale.plots.<name>``.
"""

from .plots.steps import approach1_envelope, compute_efficient_frontier, excess_compute_steps, loss_vs_size

__all__ = ["compute_efficient_frontier", "loss_vs_size", "excess_compute_steps", "approach1_envelope"]
