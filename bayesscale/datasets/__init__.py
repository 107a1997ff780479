"""Bundled data sets.

``chinchilla.csv``: 245 training runs from Hoffmann et al. (2022), "Training
Compute-Optimal Large Language Models", digitised from the paper's Figure 4
by Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt"
(Epoch AI).  Columns N (parameters), D (tokens, D = C / (6 N)), C (FLOPs, as
digitised) and loss (final training loss).  See ``PROVENANCE.md`` beside it.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd

from ..data import Runs, load_runs

__all__ = ["chinchilla", "chinchilla_path"]


def chinchilla_path() -> str:
    """Path of the bundled ``chinchilla.csv``."""
    return str(files(__package__) / "chinchilla.csv")


def chinchilla(*, drop_highest_loss: int = 0) -> Runs:
    """The 245 Chinchilla runs digitised by Besiroglu et al. (2024).

    Parameters
    ----------
    drop_highest_loss : int
        Drop this many runs with the highest loss.  ``5`` gives the 240-run
        subset of the published refit (Besiroglu et al. 2024).

    Returns
    -------
    Runs
    """
    runs = load_runs(chinchilla_path())
    if drop_highest_loss:
        order = np.argsort(-runs.loss, kind="stable")
        keep = np.ones(len(runs), bool)
        keep[order[:drop_highest_loss]] = False
        runs = runs.subset(keep)
    return runs


def chinchilla_frame() -> pd.DataFrame:
    """The bundled Chinchilla runs as a plain DataFrame."""
    return pd.read_csv(chinchilla_path())
