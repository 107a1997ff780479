"""Training curves: a loss every few steps of each run, as data.

A table of curves has one row per (run, checkpoint) with the columns

================  ==========================================================
``run``           run label (one training run = one curve)
``N``             model parameters (constant within a run)
``N_nonembed``    optional non-embedding parameters (Kaplan's count)
``step``          optimizer step of the checkpoint, increasing within a run
``loss``          loss at that step (any positive metric; need not fall
                  monotonically: evaluation noise makes it wobble)
``batch_tokens``  tokens per optimizer step at that checkpoint
``tokens``        optional tokens seen so far; required when the batch size
                  changes within a run (else ``tokens = step * batch_tokens``)
``lr_schedule``   optional text naming the learning-rate schedule
``warmup_steps``  optional length of the learning-rate warm-up, in steps
``warmup_tokens`` optional length of the warm-up in tokens (used when
                  ``warmup_steps`` is absent: ``warmup_tokens / batch``)
================  ==========================================================

:func:`load_curves` checks all of it, raising :class:`~bayesscale.data.DataError`
naming the run, the row, the column and the fix, drops the warm-up part of
each curve by a stated rule (see :data:`WARMUP_FRACTION`), optionally thins
long curves, and returns an immutable :class:`Curves`.  Everything it drops
is counted per run in :meth:`Curves.run_table`.

:func:`simulate_curves` draws synthetic curves from Kaplan et al.'s
``L(N, S, B)`` (see :mod:`bayesscale.kaplan`) with per-run offsets and AR(1)
noise along each curve.  :func:`envelope` and :func:`approach1` are
Chinchilla's Approach 1 from curves: the lower envelope of all curves
against compute, and power laws for ``N_opt(C)`` and ``D_opt(C)`` fitted to it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import kaplan
from ._validate import check_ci as _check_ci
from .data import DataError, DataWarning, _hash_frame
from .laws import FLOPS_PER_PARAM_TOKEN

__all__ = [
    "Curves",
    "load_curves",
    "simulate_curves",
    "envelope",
    "approach1",
    "Approach1Result",
    "COLUMNS",
    "WARMUP_FRACTION",
    "WARMUP_MULTIPLE",
]

#: The column names :func:`load_curves` knows (map yours with ``columns=``).
COLUMNS = ("run", "N", "N_nonembed", "step", "loss", "batch_tokens", "tokens", "lr_schedule", "warmup_steps",
           "warmup_tokens")
_REQUIRED = ("run", "N", "step", "loss", "batch_tokens")
_NUMERIC = ("N", "N_nonembed", "step", "loss", "batch_tokens", "tokens", "warmup_steps", "warmup_tokens")
_NONNEGATIVE = ("warmup_steps", "warmup_tokens")  # zero means no warm-up

#: Default warm-up rule, part 1: drop checkpoints before this fraction of the run's last step.
WARMUP_FRACTION = 0.05
#: Default warm-up rule, part 2: and before this multiple of the warm-up length, where it is known.
WARMUP_MULTIPLE = 2.0

#: Relative tolerance of the ``tokens = step * batch_tokens`` consistency check.
TOKENS_RTOL = 0.05


def _readonly(a, dtype=None):
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Curves:
    """A validated, immutable table of training curves.

    Build one with :func:`load_curves`.  Row arrays have one entry per kept
    checkpoint, grouped by run in the order the runs first appear and in
    increasing step within a run; they are read-only.

    Attributes
    ----------
    run : numpy.ndarray of str
        Run label of each row.
    run_index : numpy.ndarray of int
        Index of each row's run in ``run_ids`` (for per-run effects).
    N : numpy.ndarray
        Parameters (as given in the ``N`` column).
    N_nonembed : numpy.ndarray or None
        Non-embedding parameters, when the table had them.
    step, loss, batch_tokens, tokens : numpy.ndarray
        Checkpoint step, loss, batch size in tokens and tokens seen.
    lr_schedule : numpy.ndarray of str or None
        Learning-rate schedule name of each row, when given.
    run_ids : numpy.ndarray of str
        The runs, in order.
    n_raw : numpy.ndarray of int
        Checkpoints of each run in the input.
    warmup_cutoff : numpy.ndarray
        Per run, the step below which checkpoints are dropped as warm-up
        (0 with ``warmup=0``).
    n_dropped_warmup, n_dropped_thin : numpy.ndarray of int
        Per run, checkpoints dropped by the warm-up rule and by thinning.
    warmup_rule : str
        The warm-up rule applied, in words.
    thin : int or None
        The most checkpoints kept per run (``None``: no thinning).
    source : str
        A path, or ``"<DataFrame>"``.
    sha256 : str
        SHA-256 of the file's bytes (of the kept rows for a DataFrame).
    """

    run: np.ndarray
    run_index: np.ndarray
    N: np.ndarray
    N_nonembed: np.ndarray | None
    step: np.ndarray
    loss: np.ndarray
    batch_tokens: np.ndarray
    tokens: np.ndarray
    lr_schedule: np.ndarray | None
    run_ids: np.ndarray
    n_raw: np.ndarray
    warmup_cutoff: np.ndarray
    n_dropped_warmup: np.ndarray
    n_dropped_thin: np.ndarray
    warmup_rule: str = "none"
    thin: int | None = None
    source: str = "<DataFrame>"
    sha256: str = field(default="")

    def __post_init__(self):
        for name in ("N", "step", "loss", "batch_tokens", "tokens", "warmup_cutoff"):
            object.__setattr__(self, name, _readonly(getattr(self, name), float))
        for name in ("run_index", "n_raw", "n_dropped_warmup", "n_dropped_thin"):
            object.__setattr__(self, name, _readonly(getattr(self, name), np.int64))
        for name in ("run", "run_ids"):
            object.__setattr__(self, name, _readonly(getattr(self, name), str))
        if self.N_nonembed is not None:
            object.__setattr__(self, "N_nonembed", _readonly(self.N_nonembed, float))
        if self.lr_schedule is not None:
            object.__setattr__(self, "lr_schedule", _readonly(self.lr_schedule, str))
        if not self.sha256:
            object.__setattr__(self, "sha256", _hash_frame(self.to_frame()))

    def __len__(self) -> int:
        return len(self.loss)

    @property
    def n_runs(self) -> int:
        """Number of runs (curves)."""
        return len(self.run_ids)

    def __repr__(self) -> str:
        dropped = int(self.n_dropped_warmup.sum())
        thin = f", thinned to <= {self.thin} per run ({int(self.n_dropped_thin.sum())} dropped)" if self.thin else ""
        return (f"Curves({self.n_runs} runs, {len(self)} checkpoints, N {self.N.min():.3g}..{self.N.max():.3g}, "
                f"steps {self.step.min():.3g}..{self.step.max():.3g}; warm-up: {dropped} checkpoints dropped"
                f"{thin}; source={self.source!r})")

    def to_frame(self) -> pd.DataFrame:
        """The kept checkpoints as a DataFrame that :func:`load_curves` reads back (with ``warmup=0``)."""
        cols = {"run": self.run, "N": self.N}
        if self.N_nonembed is not None:
            cols["N_nonembed"] = self.N_nonembed
        cols.update({"step": self.step, "loss": self.loss, "batch_tokens": self.batch_tokens,
                     "tokens": self.tokens})
        if self.lr_schedule is not None:
            cols["lr_schedule"] = self.lr_schedule
        return pd.DataFrame(cols)

    def run_table(self) -> pd.DataFrame:
        """One row per run: sizes, batch, checkpoints kept and dropped.

        Returns
        -------
        pandas.DataFrame
            Indexed by run: ``N``, ``N_nonembed`` (when known),
            ``batch_tokens`` (at the first kept checkpoint),
            ``batch_varies``, ``n_raw``, ``warmup_cutoff``,
            ``n_dropped_warmup``, ``n_dropped_thin``, ``n_points``,
            ``first_step``, ``last_step``, ``last_tokens``.
        """
        rows = []
        for r, name in enumerate(self.run_ids):
            sel = self.run_index == r
            row = {"run": name, "N": self.N[sel][0]}
            if self.N_nonembed is not None:
                row["N_nonembed"] = self.N_nonembed[sel][0]
            b = self.batch_tokens[sel]
            row.update({"batch_tokens": b[0], "batch_varies": bool(np.any(b != b[0])), "n_raw": int(self.n_raw[r]),
                        "warmup_cutoff": self.warmup_cutoff[r], "n_dropped_warmup": int(self.n_dropped_warmup[r]),
                        "n_dropped_thin": int(self.n_dropped_thin[r]), "n_points": int(sel.sum()),
                        "first_step": self.step[sel][0], "last_step": self.step[sel][-1],
                        "last_tokens": self.tokens[sel][-1]})
            rows.append(row)
        return pd.DataFrame(rows).set_index("run")

    def select(self, runs) -> "Curves":
        """The curves of some runs (a label or a list of labels), as a new :class:`Curves`.

        Raises
        ------
        DataError
            When a label is not a run of these curves.
        """
        names = [runs] if isinstance(runs, str) else list(runs)
        known = {str(r): i for i, r in enumerate(self.run_ids)}
        missing = [n for n in names if str(n) not in known]
        if missing or not names:
            raise DataError(f"no run named {missing or names!r}; the runs are {list(self.run_ids)}. "
                            "Pick runs by these labels.")
        idx = [known[str(n)] for n in names]
        rows = np.concatenate([np.flatnonzero(self.run_index == i) for i in idx])
        remap = np.full(self.n_runs, -1)
        remap[idx] = np.arange(len(idx))

        def pick(a):
            return None if a is None else a[rows]

        return Curves(run=self.run[rows], run_index=remap[self.run_index[rows]], N=self.N[rows],
                      N_nonembed=pick(self.N_nonembed), step=self.step[rows], loss=self.loss[rows],
                      batch_tokens=self.batch_tokens[rows], tokens=self.tokens[rows],
                      lr_schedule=pick(self.lr_schedule), run_ids=self.run_ids[idx], n_raw=self.n_raw[idx],
                      warmup_cutoff=self.warmup_cutoff[idx], n_dropped_warmup=self.n_dropped_warmup[idx],
                      n_dropped_thin=self.n_dropped_thin[idx], warmup_rule=self.warmup_rule, thin=self.thin,
                      source=self.source)

    def curve(self, run: str) -> "Curves":
        """The curve of one run (see :meth:`select`)."""
        return self.select([run])

    def by_run(self):
        """Iterate over ``(run label, Curves of that run)`` in order."""
        for name in self.run_ids:
            yield str(name), self.select([name])

    def params(self, convention: str = "total") -> np.ndarray:
        """Parameter count of each row under a convention.

        Parameters
        ----------
        convention : {"total", "kaplan"}
            ``"total"``: the ``N`` column; ``"kaplan"``: ``N_nonembed``.

        Raises
        ------
        DataError
            For ``"kaplan"`` when the table had no ``N_nonembed`` column.
        """
        kaplan._check_convention(convention)
        if convention == "total":
            return self.N
        if self.N_nonembed is None:
            raise DataError("convention='kaplan' counts non-embedding parameters, but these curves have no "
                            "'N_nonembed' column. Add it (for a transformer, 12 * n_layers * d_model**2), or "
                            "use convention='total'.")
        return self.N_nonembed

    def compute(self, convention: str = "total") -> np.ndarray:
        """Training FLOPs at each checkpoint, ``C = 6 N tokens`` (see :meth:`params`)."""
        return FLOPS_PER_PARAM_TOKEN * self.params(convention) * self.tokens


def _read(path_or_frame):
    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame.copy(), "<DataFrame>", ""
    if isinstance(path_or_frame, (str, os.PathLike)):
        path = Path(path_or_frame)
        if not path.is_file():
            raise DataError(f"{path}: no such file. Pass the path of a CSV of training curves with columns "
                            f"{', '.join(_REQUIRED)}.")
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot be read as CSV ({str(e).strip()}). "
                            "Save the curves as a comma-separated file with a header row.") from None
        return df, str(path), hashlib.sha256(path.read_bytes()).hexdigest()
    raise DataError(f"expected a CSV path or a pandas DataFrame of training curves, got {type(path_or_frame).__name__}")


def _where(df, i, source, run=None):
    loc = (f"row {i + 2} of {os.path.basename(source)}" if source != "<DataFrame>" else f"row {df.index[i]!r}")
    return f"run {run!r}, {loc}" if run is not None else loc


def _warmup_cutoffs(warmup, run_ids, last_step, warm_steps):
    """Per-run step cutoffs and the rule in words."""
    if isinstance(warmup, str):
        if warmup != "auto":
            raise DataError(f"warmup must be 'auto', a number or a mapping of run to step, got {warmup!r}")
        cut = WARMUP_FRACTION * last_step
        known = np.isfinite(warm_steps)
        cut = np.where(known, np.maximum(cut, WARMUP_MULTIPLE * np.where(known, warm_steps, 0.0)), cut)
        rule = (f"auto: dropped checkpoints before max({WARMUP_MULTIPLE:g} x the warm-up steps where known, "
                f"{WARMUP_FRACTION:g} x the run's last step)")
        return cut, rule
    if isinstance(warmup, Mapping):
        unknown = sorted(set(map(str, warmup)) - set(run_ids))
        if unknown:
            raise DataError(f"warmup= names runs {unknown} that are not in the table (runs: {list(run_ids)}). "
                            "Use the run labels of the 'run' column.")
        cut = np.array([float(warmup.get(r, 0.0)) for r in run_ids])
        if not np.all(np.isfinite(cut)) or np.any(cut < 0):
            raise DataError(f"warmup= must map runs to non-negative steps, got {dict(warmup)!r}")
        return cut, "per run: dropped checkpoints before the given steps " + repr({str(k): v for k, v in warmup.items()})
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float, np.integer, np.floating)) \
            or not np.isfinite(warmup) or warmup < 0:
        raise DataError(f"warmup must be 'auto', 0 (keep everything), a fraction in (0, 1) of each run's last "
                        f"step, a step count >= 1, or a mapping of run to step; got {warmup!r}")
    if warmup == 0:
        return np.zeros(len(run_ids)), "none: every checkpoint kept (warmup=0)"
    if warmup < 1:
        return warmup * last_step, f"dropped checkpoints before {warmup:g} x the run's last step"
    return np.full(len(run_ids), float(warmup)), f"dropped checkpoints before step {warmup:g}"


def _thin_indices(step: np.ndarray, k: int) -> np.ndarray:
    """``k`` indices of a sorted step array, nearest to log-spaced targets; first and last always kept."""
    n = len(step)
    if n <= k:
        return np.arange(n)
    x = np.log(step)
    targets = np.linspace(x[0], x[-1], k)
    taken = np.zeros(n, bool)
    out = []
    for t in targets:
        d = np.where(taken, np.inf, np.abs(x - t))
        j = int(np.argmin(d))
        taken[j] = True
        out.append(j)
    return np.sort(np.array(out))


def load_curves(path_or_frame, *, columns: Mapping | None = None, warmup="auto", thin: int | None = None) -> Curves:
    """Read and validate training curves (one row per run and checkpoint).

    Warm-up rule.  No scaling law describes the start of a curve: during the
    learning-rate warm-up, and for a while after it, the loss falls at a rate
    set by the optimiser's transient rather than by ``N`` and ``S``.  The
    default (``warmup="auto"``) drops, in each run, the checkpoints at steps
    below ``max(2 x warm-up steps, 0.05 x the run's last step)``, using the
    warm-up length where a ``warmup_steps`` (or ``warmup_tokens``) column
    gives it.  Twice the warm-up covers the ramp and the transient right
    after it (at the end of the ramp the optimiser has just reached its peak
    step size).  The 5% floor covers tables without a warm-up column:
    schedules are set relative to a run's length (Kaplan et al. 2020 warm up
    for 3000 of 250,000 steps, 1.2%; common recipes use 1-5%).  Measured on
    the OPT curves in ``curves_opt.csv``: a power law ``E + A S^-a`` fitted
    to each run's checkpoints from step 5000 on has an rms residual of
    0.007-0.013 nats, and the first checkpoint (2000 steps; 4000 for 175B)
    lies 0.03-0.28 nats above it, 2-25 times that rms, although for 13B and
    30B it is 21 times their 94-step warm-up: the transient scales with the
    run, not with the warm-up.  The rule drops that checkpoint in every OPT
    run (and 7 of 36 for 125M, whose 5% is step 28,000).  On log-spaced
    checkpoints it drops the first ``log(20) / log(last / first)`` of the
    points; ``warmup=0`` keeps everything.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
        A CSV file or a DataFrame with the columns ``run, N, step, loss,
        batch_tokens`` and optionally ``N_nonembed, tokens, lr_schedule,
        warmup_steps, warmup_tokens`` (see the module docstring).  Other
        columns are ignored.
    columns : mapping, optional
        Maps this package's column names to yours, e.g. ``{"loss":
        "eval_loss", "batch_tokens": "bs"}``.
    warmup : "auto", float or mapping
        ``"auto"`` (the rule above); ``0`` keeps every checkpoint; a number
        in ``(0, 1)`` drops checkpoints before that fraction of each run's
        last step; a number ``>= 1`` drops steps below it; a mapping of run
        label to step sets the cut per run (runs not named keep everything).
    thin : int, optional
        Keep at most this many checkpoints per run (at least 2), those
        nearest to log-spaced steps between the run's first and last kept
        checkpoint (which are always kept).  Applied after the warm-up
        rule.  ``None`` keeps every checkpoint.

    Returns
    -------
    Curves
        With the rule, the thinning and the per-run counts of what was
        dropped (:meth:`Curves.run_table`).

    Raises
    ------
    DataError
        On an unreadable file; a ``columns=`` entry naming an unknown name
        or a column that does not exist; a missing column; a non-numeric,
        empty, infinite or non-positive value (warm-up lengths may be 0); an
        empty run label; ``N`` changing within a run; a duplicated step or
        steps that decrease within a run; a run with a single checkpoint
        (before or after the warm-up rule); a batch size that changes within
        a run when there is no ``tokens`` column; tokens that do not
        increase; and bad ``warmup`` or ``thin`` values.  Each message names
        the run, the row and the column, and says how to fix it.

    Warns
    -----
    DataWarning
        When a ``tokens`` column disagrees with ``step * batch_tokens`` by
        more than 5% in a run with a constant batch.
    """
    df, source, file_hash = _read(path_or_frame)
    where = os.path.basename(source) if source != "<DataFrame>" else "the table"

    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise DataError(f"columns= maps unknown names {unknown}; the names are {', '.join(COLUMNS)}.")
    for ours, theirs in columns.items():
        if theirs not in df.columns:
            have = ", ".join(map(str, df.columns)) or "none"
            raise DataError(f"columns= maps {ours!r} to {theirs!r}, but {where} has no column {theirs!r} "
                            f"(columns: {have}). Fix the name in columns=.")
    df = df.rename(columns={v: k for k, v in columns.items()})
    if len(df) == 0:
        raise DataError(f"{where} is empty: it has no checkpoints. Add one row per run and checkpoint.")
    for col in _REQUIRED:
        if col not in df.columns:
            have = ", ".join(map(str, df.columns)) or "none"
            hint = (" (tokens per optimizer step; for a batch of b sequences of length T, b * T)"
                    if col == "batch_tokens" else "")
            raise DataError(f"{where} has no column {col!r}{hint} (columns: {have}). Rename the column, or map it "
                            f"with columns={{'{col}': 'your_name'}}.")

    runs_raw = df["run"]
    for i in np.flatnonzero(runs_raw.isna().to_numpy()):
        raise DataError(f"{_where(df, i, source)}, column 'run': the run label is empty. "
                        "Give every checkpoint the label of its run.")
    run = runs_raw.astype(str).to_numpy()

    values = {}
    for col in _NUMERIC:
        if col not in df.columns:
            continue
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        for i in np.flatnonzero(num.isna().to_numpy()):
            what = "is empty (NaN)" if pd.isna(raw.iloc[i]) else f"is not a number ({raw.iloc[i]!r})"
            raise DataError(f"{_where(df, i, source, run[i])}, column {col!r}: the value {what}. "
                            "Fix or remove that checkpoint.")
        arr = num.to_numpy(dtype=float)
        for i in np.flatnonzero(~np.isfinite(arr)):
            raise DataError(f"{_where(df, i, source, run[i])}, column {col!r}: the value is infinite. "
                            "Fix or remove that checkpoint.")
        bad = arr < 0 if col in _NONNEGATIVE else arr <= 0
        for i in np.flatnonzero(bad):
            need = ">= 0" if col in _NONNEGATIVE else "> 0"
            extra = (" A step-0 (initialisation) checkpoint has no place on a log-step axis: drop it."
                     if col == "step" else "")
            raise DataError(f"{_where(df, i, source, run[i])}, column {col!r}: the value {arr[i]:g} is not "
                            f"{'non-negative' if col in _NONNEGATIVE else 'positive'}; {col} must be {need}.{extra} "
                            "Fix or remove that checkpoint.")
        values[col] = arr

    run_ids = list(dict.fromkeys(run))  # order of first appearance
    index_of = {r: k for k, r in enumerate(run_ids)}
    run_index = np.array([index_of[r] for r in run])
    has_tokens = "tokens" in values
    sched = df["lr_schedule"].astype(str).to_numpy() if "lr_schedule" in df.columns else None

    rows_by_run, warm_steps = [], np.full(len(run_ids), np.nan)
    for k, name in enumerate(run_ids):
        idx = np.flatnonzero(run_index == k)
        for col in ("N", "N_nonembed", "warmup_steps", "warmup_tokens"):
            if col in values:
                v = values[col][idx]
                j = np.flatnonzero(v != v[0])
                if j.size:
                    i = idx[j[0]]
                    raise DataError(f"{_where(df, i, source, name)}, column {col!r}: {col} changes within the run "
                                    f"({v[0]:g} at its first checkpoint, {v[j[0]]:g} here). A run is one model "
                                    "trained once; give each model its own run label, or fix the value.")
        if idx.size < 2:
            raise DataError(f"{_where(df, idx[0], source, name)}: the run has a single checkpoint (step "
                            f"{values['step'][idx[0]]:g}). A curve needs at least two; add its other checkpoints "
                            "or drop the run.")
        st = values["step"][idx]
        d = np.diff(st)
        for j in np.flatnonzero(d == 0):
            i = idx[j + 1]
            raise DataError(f"{_where(df, i, source, name)}, column 'step': step {st[j + 1]:g} is duplicated "
                            f"(also {_where(df, idx[j], source)}). Keep one loss per step, e.g. the later "
                            "evaluation, or average them.")
        for j in np.flatnonzero(d < 0):
            i = idx[j + 1]
            raise DataError(f"{_where(df, i, source, name)}, column 'step': steps must increase within a run, "
                            f"but step {st[j + 1]:g} follows step {st[j]:g}. Sort the rows by step within each run "
                            "(df.sort_values(['run', 'step'])); if the run restarted from an earlier checkpoint, "
                            "keep only the rows after the restart.")
        b = values["batch_tokens"][idx]
        changes = np.flatnonzero(b != b[0])
        if changes.size and not has_tokens:
            i = idx[changes[0]]
            raise DataError(f"{_where(df, i, source, name)}, column 'batch_tokens': the batch size changes within "
                            f"the run ({b[0]:g} tokens at step {st[0]:g}, {b[changes[0]]:g} at step "
                            f"{st[changes[0]]:g}) and "
                            "there is no 'tokens' column, so the tokens seen are unknown. Add a 'tokens' column "
                            "with the tokens seen up to each checkpoint (or map yours with columns=), or give "
                            "each batch size its own run.")
        if has_tokens:
            tk = values["tokens"][idx]
            for j in np.flatnonzero(np.diff(tk) <= 0):
                i = idx[j + 1]
                raise DataError(f"{_where(df, i, source, name)}, column 'tokens': tokens seen must increase "
                                f"with the step, but {tk[j + 1]:g} follows {tk[j]:g}. Fix the tokens column.")
            if not changes.size:
                rel = np.abs(tk / (st * b[0]) - 1)
                if np.any(rel > TOKENS_RTOL):
                    warnings.warn(f"run {name!r}: the 'tokens' column differs from step * batch_tokens by up to "
                                  f"{rel.max():.0%} (more than {TOKENS_RTOL:.0%}). The tokens column is used; "
                                  "check it, or the batch size.", DataWarning, stacklevel=2)
        if "warmup_steps" in values:
            warm_steps[k] = values["warmup_steps"][idx[0]]
        elif "warmup_tokens" in values:
            warm_steps[k] = values["warmup_tokens"][idx[0]] / b[0]
        rows_by_run.append(idx)

    tokens_all = values["tokens"] if has_tokens else values["step"] * values["batch_tokens"]
    last_step = np.array([values["step"][idx[-1]] for idx in rows_by_run])
    cut, rule = _warmup_cutoffs(warmup, run_ids, last_step, warm_steps)

    if thin is not None and (isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 2):
        raise DataError(f"thin must be an integer >= 2 (checkpoints kept per run) or None, got {thin!r}")

    keep, n_warm, n_thin = [], [], []
    for k, (name, idx) in enumerate(zip(run_ids, rows_by_run)):
        st = values["step"][idx]
        kept = idx[st >= cut[k]]
        n_warm.append(idx.size - kept.size)
        if kept.size < 2:
            raise DataError(f"run {name!r}: the warm-up rule ({rule}) leaves {kept.size} of its {idx.size} "
                            f"checkpoints (steps {st[0]:g}..{st[-1]:g}, cut at step {cut[k]:g}). Pass a smaller "
                            "warmup= (warmup=0 keeps everything), or add later checkpoints.")
        if thin is not None:
            kept = kept[_thin_indices(values["step"][kept], int(thin))]
        n_thin.append(idx.size - n_warm[-1] - kept.size)
        keep.append(kept)
    rows = np.concatenate(keep)
    return Curves(run=run[rows], run_index=run_index[rows], N=values["N"][rows],
                  N_nonembed=values["N_nonembed"][rows] if "N_nonembed" in values else None,
                  step=values["step"][rows], loss=values["loss"][rows], batch_tokens=values["batch_tokens"][rows],
                  tokens=tokens_all[rows], lr_schedule=sched[rows] if sched is not None else None,
                  run_ids=np.array(run_ids), n_raw=[idx.size for idx in rows_by_run],
                  warmup_cutoff=cut,
                  n_dropped_warmup=n_warm, n_dropped_thin=n_thin, warmup_rule=rule,
                  thin=None if thin is None else int(thin), source=source, sha256=file_hash)
