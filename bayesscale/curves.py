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
from .intervals import DEFAULT_CI, band_names
from ._validate import positive as _positive
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

    def to_runs(self, convention: str | None = None):
        """The checkpoints as :class:`bayesscale.Runs`, one row per checkpoint, for :func:`bayesscale.fit`.

        ``N`` is the parameter count under ``convention``, ``D`` the tokens
        seen, ``C = 6 N D``, ``S`` the step and ``B`` the batch size in
        tokens; ``run_id`` is ``"run@step"``; ``budget`` is the index of the
        run, so the per-budget offsets of ``offsets="budget"`` are per-run
        offsets and the ``"ar1"`` likelihood links consecutive checkpoints
        of a run.

        Parameters
        ----------
        convention : {"kaplan", "total"}, optional
            ``"kaplan"``: non-embedding parameters (the ``N_nonembed``
            column; Kaplan et al.'s count); ``"total"``: the ``N`` column.
            By default ``"kaplan"`` when the curves have ``N_nonembed``,
            else ``"total"``.  The choice is recorded in the result's
            ``source`` (``"... [N: kaplan]"``).

        Returns
        -------
        bayesscale.Runs
        """
        from .data import Runs

        if convention is None:
            convention = "kaplan" if self.N_nonembed is not None else "total"
        N = self.params(convention)
        run_id = [f"{r}@{s:.0f}" for r, s in zip(self.run, self.step)]
        return Runs(N=N, D=self.tokens, C=FLOPS_PER_PARAM_TOKEN * N * self.tokens, loss=self.loss, run_id=run_id,
                    budget=self.run_index, source=f"{self.source} [N: {convention}]", S=self.step,
                    B=self.batch_tokens)


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


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------

#: Default model sizes of :func:`simulate_curves` (non-embedding parameters; Kaplan's span 768..1.5e9).
SIM_SIZES = (1e6, 3e6, 1e7, 3e7, 1e8, 3e8)
#: Default batch sizes in tokens: 2^17, 2^19, 2^21, on both sides of B_crit(L) ~ 3e5..3e6 tokens.
SIM_BATCHES = (2.0**17, 2.0**19, 2.0**21)
#: Default noise of :func:`simulate_curves`, on log loss.
SIM_NOISE = {"run_sd": 0.01, "sigma": 0.005, "rho": 0.8}


def simulate_curves(*, sizes=SIM_SIZES, batch_sizes=SIM_BATCHES, steps=250_000, checkpoints: int = 30,
                    first_fraction: float = 0.01, noise=None, seed: int = 0, **constants) -> pd.DataFrame:
    """Training curves drawn from Kaplan et al.'s ``L(N, S, B)``, one run per size and batch size.

    The noise-free loss is :func:`bayesscale.kaplan.loss_steps`:
    ``L = (N_c / N)^alpha_N + (S_c / S_min)^alpha_S`` with ``S_min = S / (1 +
    B_crit(L) / B)`` and ``B_crit(L) = B_* / L^(1 / alpha_B)``.  ``S_min``
    depends on ``L``, so each point solves that fixed point: Newton's method
    in ``log L``, started from the loss at ``S_min = S`` (a lower bound), which
    rises monotonically to the root (residual below 1e-14 in four
    iterations; see :mod:`bayesscale.kaplan`).  The observed loss is::

        log loss[r, t] = log L[r, t] + u[r] + e[r, t]
        u[r] ~ Normal(0, run_sd)                       one offset per run (seed, data order)
        e[r, 0] ~ Normal(0, sigma)
        e[r, t] = rho e[r, t-1] + sqrt(1 - rho^2) Normal(0, sigma)

    a per-run offset plus stationary AR(1) noise along the curve, in
    checkpoint order (with log-spaced checkpoints, an Ornstein-Uhlenbeck
    process in log step).  This is what makes the checkpoints of one run
    dependent: a fit that treats them as independent is overconfident.
    There is no warm-up phase: the law holds from the first step.

    Parameters
    ----------
    sizes : sequence of float
        Non-embedding parameter counts (the law's ``N``).
    batch_sizes : sequence of float
        Batch sizes in tokens; every size is trained at every batch size.
    steps : float or sequence of float
        A number: the last step of every run, with ``checkpoints``
        checkpoints log-spaced from ``first_fraction * steps`` to it.  A
        sequence: the checkpoint steps of every run.  Steps are rounded to
        integers.
    checkpoints : int
        Checkpoints per run when ``steps`` is a number.
    first_fraction : float
        First checkpoint as a fraction of ``steps``.
    noise : mapping or 0, optional
        ``run_sd``, ``sigma`` (log-loss units) and ``rho`` (AR(1)
        coefficient in ``[0, 1)``); missing keys take :data:`SIM_NOISE`.
        ``0`` gives noise-free curves.
    seed : int
        Random seed.
    **constants
        Overrides of :data:`bayesscale.kaplan.KAPLAN_STEPS` (``N_c,
        alpha_N, S_c, alpha_S, B_star, alpha_B``).

    Returns
    -------
    pandas.DataFrame
        Columns ``run, N, N_nonembed, step, loss, batch_tokens, tokens,
        lr_schedule, loss_law`` (the noise-free loss).  ``N`` and
        ``N_nonembed`` are both the law's non-embedding count (the
        simulator has no embeddings).  ``attrs["params"]`` and
        ``attrs["noise"]`` hold the truth.  :func:`load_curves` reads it.

    Raises
    ------
    ValueError
        On unknown constants or bad sizes, steps or noise.
    """
    unknown = sorted(set(constants) - set(kaplan.PARAMETERS))
    if unknown:
        raise ValueError(f"unknown constants {unknown}; the law's constants are {', '.join(kaplan.PARAMETERS)}")
    params = {**kaplan.KAPLAN_STEPS, **{k: float(v) for k, v in constants.items()}}
    for k, v in params.items():
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"constant {k} must be positive and finite, got {v!r}")
    sizes = _positive(sizes, "sizes")
    batch_sizes = _positive(batch_sizes, "batch_sizes", unit=" (tokens)")
    if np.ndim(steps) == 0:
        last = float(steps)
        if not (np.isfinite(last) and last >= 2):
            raise ValueError(f"steps must be a last step >= 2 or a sequence of checkpoint steps, got {steps!r}")
        if not (isinstance(checkpoints, (int, np.integer)) and checkpoints >= 2):
            raise ValueError(f"checkpoints must be an integer >= 2, got {checkpoints!r}")
        if not 0 < first_fraction < 1:
            raise ValueError(f"first_fraction must lie in (0, 1), got {first_fraction!r}")
        grid = np.unique(np.round(np.geomspace(max(1.0, first_fraction * last), last, checkpoints)))
    else:
        grid = np.unique(np.round(_positive(steps, "steps")))
    if grid.size < 2 or grid[0] < 1:
        raise ValueError(f"the checkpoint steps must hold at least two distinct steps >= 1, got {grid!r}")
    if noise is None or (isinstance(noise, (int, float)) and noise == 0):
        nz = dict(SIM_NOISE) if noise is None else {"run_sd": 0.0, "sigma": 0.0, "rho": 0.0}
    elif isinstance(noise, Mapping):
        bad = sorted(set(noise) - set(SIM_NOISE))
        if bad:
            raise ValueError(f"unknown noise keys {bad}; use {', '.join(SIM_NOISE)}")
        nz = {**SIM_NOISE, **{k: float(v) for k, v in noise.items()}}
    else:
        raise ValueError(f"noise must be a mapping with keys {', '.join(SIM_NOISE)}, 0 or None, got {noise!r}")
    if nz["run_sd"] < 0 or nz["sigma"] < 0 or not 0 <= nz["rho"] < 1:
        raise ValueError(f"noise needs run_sd >= 0, sigma >= 0 and 0 <= rho < 1, got {nz}")

    rng = np.random.default_rng(seed)
    frames = []
    for N in sizes:
        for B in batch_sizes:
            law = kaplan.loss_steps(params, N, grid, B)
            u = rng.normal(0.0, nz["run_sd"]) if nz["run_sd"] > 0 else 0.0
            z = rng.standard_normal(grid.size)
            e = np.empty(grid.size)
            e[0] = nz["sigma"] * z[0]
            innov = np.sqrt(1.0 - nz["rho"] ** 2) * nz["sigma"]
            for t in range(1, grid.size):
                e[t] = nz["rho"] * e[t - 1] + innov * z[t]
            frames.append(pd.DataFrame({
                "run": f"N={N:.3g},B={B:.6g}", "N": N, "N_nonembed": N, "step": grid, "loss": law * np.exp(u + e),
                "batch_tokens": B, "tokens": grid * B, "lr_schedule": "simulated (the law has no schedule)",
                "loss_law": law}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["params"] = dict(params)
    out.attrs["noise"] = dict(nz)
    return out


# ---------------------------------------------------------------------------------------------
# Chinchilla Approach 1 from curves
# ---------------------------------------------------------------------------------------------

def _costs(curves: Curves, convention: str, cost) -> np.ndarray:
    if cost is None:
        return curves.compute(convention)
    if callable(cost):
        c = np.asarray(cost(curves), dtype=float)
    else:
        c = np.asarray(cost, dtype=float)
    if c.shape != (len(curves),) or not np.all(np.isfinite(c) & (c > 0)):
        raise ValueError(f"cost must give one positive finite FLOP count per checkpoint ({len(curves)}), "
                         f"got shape {c.shape}")
    for name, cur in curves.by_run():
        cc = c[curves.run == name]
        if np.any(np.diff(cc) <= 0):
            raise ValueError(f"cost must increase along each run; it does not in run {name!r}")
    return c


def envelope(curves, *, n_bins: int = 60, convention: str = "total", cost=None, min_runs: int = 2) -> pd.DataFrame:
    """The per-FLOP lower envelope of all curves (Chinchilla's Approach 1).

    Each curve is interpolated, linearly in ``(log C, log loss)``, at
    ``n_bins`` compute values log-spaced from the smallest to the largest
    checkpoint compute; only runs whose checkpoints span a value take part
    there (no extrapolation).  At each value the run with the lowest loss
    wins.  Consecutive values won by the same run form a *segment*.

    Parameters
    ----------
    curves : Curves, pandas.DataFrame or path
        Curves (loaded with :func:`load_curves` if not already).
    n_bins : int
        Number of compute values.
    convention : {"total", "kaplan"}
        Parameter count in ``C = 6 N tokens`` (see :meth:`Curves.compute`).
    cost : callable or array_like, optional
        FLOPs per checkpoint instead of ``6 N tokens``: an array with one
        value per row of ``curves``, or a function of the ``Curves``.
    min_runs : int
        Compute values spanned by fewer runs are left out (one run has no
        competitor).

    Returns
    -------
    pandas.DataFrame
        One row per compute value kept: ``C``, ``loss`` (the envelope),
        ``run`` (the winner), ``N_opt`` (its size in the chosen
        convention), ``D_opt`` (its interpolated tokens), ``n_runs`` (runs
        spanning ``C``), ``at_edge`` (the winner is the smallest or largest
        of those runs: the optimum may lie beyond them) and ``segment``.
    """
    c = curves if isinstance(curves, Curves) else load_curves(curves)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 3:
        raise ValueError(f"n_bins must be an integer >= 3, got {n_bins!r}")
    if isinstance(min_runs, bool) or not isinstance(min_runs, (int, np.integer)) or min_runs < 1:
        raise ValueError(f"min_runs must be a positive integer, got {min_runs!r}")
    C = _costs(c, convention, cost)
    Np = c.params(convention)
    grid = np.linspace(np.log(C.min()), np.log(C.max()), n_bins)
    n_r = c.n_runs
    ll = np.full((n_r, n_bins), np.inf)
    ld = np.full((n_r, n_bins), np.nan)
    size = np.empty(n_r)
    for r in range(n_r):
        sel = c.run_index == r
        x = np.log(C[sel])
        inside = (grid >= x[0] - 1e-12) & (grid <= x[-1] + 1e-12)
        ll[r, inside] = np.interp(grid[inside], x, np.log(c.loss[sel]))
        ld[r, inside] = np.interp(grid[inside], x, np.log(c.tokens[sel]))
        size[r] = Np[sel][0]
    cover = np.isfinite(ll)
    n_cover = cover.sum(axis=0)
    win = np.argmin(ll, axis=0)
    rows = []
    for j in np.flatnonzero(n_cover >= min_runs):
        r = win[j]
        sizes_here = size[cover[:, j]]
        rows.append({"C": np.exp(grid[j]), "loss": np.exp(ll[r, j]), "run": str(c.run_ids[r]), "N_opt": size[r],
                     "D_opt": np.exp(ld[r, j]), "n_runs": int(n_cover[j]),
                     "at_edge": bool(size[r] <= sizes_here.min() or size[r] >= sizes_here.max())})
    env = pd.DataFrame(rows, columns=["C", "loss", "run", "N_opt", "D_opt", "n_runs", "at_edge"])
    if len(env):
        env["segment"] = np.concatenate([[0], np.cumsum(env["run"].to_numpy()[1:] != env["run"].to_numpy()[:-1])])
    else:
        env["segment"] = pd.Series(dtype=np.int64)
    return env


def _linear_posterior(x, y, S, rng):
    """Exact draws of ``y = c0 + c1 (x - xbar) + Normal(0, sigma^2)`` under ``p(c, sigma^2) ∝ 1 / sigma^2``.

    The marginal posterior of the coefficients is Student-t with ``n - 2``
    degrees of freedom (needs ``n >= 3``).  Returns ``coef (S, 2)``,
    ``sigma (S,)`` and ``xbar``.
    """
    xbar = x.mean()
    X = np.stack([np.ones_like(x), x - xbar], axis=1)
    V = np.linalg.inv(X.T @ X)
    m = V @ (X.T @ y)
    resid = y - X @ m
    n = len(y)
    sig2 = 0.5 * (resid @ resid) / rng.gamma((n - 2) / 2, 1.0, size=S)
    L = np.linalg.cholesky(0.5 * (V + V.T))
    coef = m[None, :] + np.sqrt(sig2)[:, None] * (rng.standard_normal((S, 2)) @ L.T)
    return coef, np.sqrt(sig2), xbar


@dataclass(frozen=True, eq=False)
class Approach1Result:
    """The result of :func:`approach1`.

    Attributes
    ----------
    envelope : pandas.DataFrame
        The envelope (see :func:`envelope`) with a column ``used``.
    points : pandas.DataFrame
        The points fitted, one per segment of the envelope: ``segment,
        run, C`` (geometric mid-point of the segment), ``N_opt, D_opt,
        loss, n_values, used`` and ``reason`` (why a segment was left out).
    exponent : pandas.DataFrame
        Index ``a, b, log_k_N, log_k_D`` for ``N_opt = k_N C^a`` and
        ``D_opt = k_D C^b`` (natural logs; C in FLOPs); columns ``median,
        lo80, hi80, mean, sd`` (the suffix is the level ``ci``).
    draws : dict of str to numpy.ndarray
        ``a, b, log_k_N, log_k_D, sigma_N, sigma_D``, each ``(S,)``.
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    convention : str
        Parameter count used for ``C = 6 N tokens``.
    """

    envelope: pd.DataFrame
    points: pd.DataFrame
    exponent: pd.DataFrame
    draws: dict = field(repr=False)
    ci: float = DEFAULT_CI
    convention: str = "total"

    def __post_init__(self):
        frozen = {}
        for k, v in self.draws.items():
            a = np.array(v)
            a.setflags(write=False)
            frozen[k] = a
        object.__setattr__(self, "draws", frozen)

    @property
    def a(self) -> float:
        """Posterior median of ``a`` in ``N_opt ∝ C^a``."""
        return float(self.exponent.loc["a", "median"])

    def predict(self, C) -> dict:
        """Posterior draws of ``N_opt`` and ``D_opt`` at compute ``C`` (FLOPs): arrays ``(S, len(C))``."""
        lc = np.log(np.atleast_1d(np.asarray(C, dtype=float)))[None, :]
        d = self.draws
        return {"N_opt": np.exp(d["log_k_N"][:, None] + d["a"][:, None] * lc),
                "D_opt": np.exp(d["log_k_D"][:, None] + d["b"][:, None] * lc)}

    def table(self, C=None, *, ci: float | None = None) -> pd.DataFrame:
        """Rows ``a``, ``b`` and ``N_opt`` at each ``C``, in the layout of :func:`bayesscale.isoflop.compare_approaches`.

        Parameters
        ----------
        C : array_like, optional
            Budgets for the ``N_opt`` rows; default the fitted points' ``C``.
        ci : float, optional
            Interval mass; default the result's.

        Returns
        -------
        pandas.DataFrame
            Columns ``quantity, C, approach1, approach1_lo80, approach1_hi80``
            (the suffix is the level ``ci``), to merge on ``quantity, C`` with the other approaches' columns.
        """
        ci = self.ci if ci is None else _check_ci(ci)
        C = self.points.loc[self.points["used"], "C"].to_numpy() if C is None else np.atleast_1d(C).astype(float)
        qs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
        a_lo, a_hi = band_names("approach1", ci)
        rows = []
        for name in ("a", "b"):
            m, lo, hi = np.quantile(self.draws[name], qs)
            rows.append({"quantity": name, "C": np.nan, "approach1": m, a_lo: lo, a_hi: hi})
        n = self.predict(C)["N_opt"]
        for j, cj in enumerate(C):
            m, lo, hi = np.quantile(n[:, j], qs)
            rows.append({"quantity": "N_opt", "C": cj, "approach1": m, a_lo: lo, a_hi: hi})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        e = self.exponent
        lo, hi = band_names("", self.ci)
        return (f"Approach1Result({int(self.points['used'].sum())} envelope segments fitted of {len(self.points)}; "
                f"a = {e.loc['a', 'median']:.3f} [{e.loc['a', lo]:.3f}, {e.loc['a', hi]:.3f}], "
                f"b = {e.loc['b', 'median']:.3f} [{e.loc['b', lo]:.3f}, {e.loc['b', hi]:.3f}] at ci={self.ci:g})")


def approach1(curves, *, n_bins: int = 60, convention: str = "total", cost=None, min_runs: int = 2,
              exclude_edges: bool = True, draws: int = 4000, ci: float | None = None, seed: int = 0) -> Approach1Result:
    """Chinchilla's Approach 1 from curves: power laws ``N_opt ∝ C^a``, ``D_opt ∝ C^b`` on the envelope.

    The envelope (:func:`envelope`) is a staircase: ``N_opt`` only takes the
    sizes of the runs, and the compute values within one run's winning
    stretch are not independent observations of ``N_opt(C)``; a regression
    on all of them would have bands that shrink as ``n_bins`` grows.  So
    each *segment* (a stretch won by one run) gives one point: the winner's
    ``N`` at the geometric mid-point of the stretch, where that size is
    closest to optimal, and the winner's interpolated tokens there.
    Segments whose winner is the smallest or largest run spanning them, or
    that touch either end of the envelope (their stretch is cut short), are
    left out when ``exclude_edges`` (their optimum may lie beyond the sizes
    trained).  ``log N_opt`` and ``log D_opt`` are each regressed on ``log
    C`` with the conjugate reference prior ``p(c, sigma^2) ∝ 1 / sigma^2``,
    sampled exactly (Student-t with ``n - 2`` degrees of freedom), as
    :mod:`bayesscale.isoflop` does for its profiles.  With ``C = 6 N D``,
    ``a + b = 1`` up to the interpolation.

    Parameters
    ----------
    curves : Curves, pandas.DataFrame or path
        The curves.
    n_bins, convention, cost, min_runs
        See :func:`envelope`.
    exclude_edges : bool
        Leave out censored segments (see above).
    draws : int
        Posterior draws.
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    seed : int
        Random seed.

    Returns
    -------
    Approach1Result

    Raises
    ------
    ValueError
        When fewer than three segments can be fitted (the message lists
        them), or on bad arguments.
    """
    ci = _check_ci(ci)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 2:
        raise ValueError(f"draws must be an integer >= 2, got {draws!r}")
    c = curves if isinstance(curves, Curves) else load_curves(curves)
    env = envelope(c, n_bins=n_bins, convention=convention, cost=cost, min_runs=min_runs)
    pts = []
    n_seg = int(env["segment"].max()) + 1 if len(env) else 0
    for s in range(n_seg):
        g = env[env["segment"] == s]
        lc = np.log(g["C"].to_numpy())
        mid = 0.5 * (lc[0] + lc[-1])
        reason = ""
        if g["at_edge"].any():
            reason = "the winner is the smallest or largest run spanning this compute"
        elif s == 0 or s == n_seg - 1:
            reason = "touches the end of the envelope (stretch cut short)"
        ld = np.log(g["D_opt"].to_numpy())
        pts.append({"segment": s, "run": g["run"].iloc[0], "C": np.exp(mid), "N_opt": g["N_opt"].iloc[0],
                    "D_opt": np.exp(np.interp(mid, lc, ld)), "loss": np.exp(np.interp(mid, lc, np.log(g["loss"]))),
                    "n_values": len(g), "used": not (exclude_edges and reason),
                    "reason": reason if exclude_edges else ""})
    points = pd.DataFrame(pts, columns=["segment", "run", "C", "N_opt", "D_opt", "loss", "n_values", "used",
                                        "reason"])
    used = points[points["used"]]
    if len(used) < 3:
        detail = "; ".join(f"segment {p['segment']} ({p['run']}, C = {p['C']:.3g}): {p['reason'] or 'used'}"
                           for _, p in points.iterrows()) or "none"
        raise ValueError(f"Approach 1 needs at least three envelope segments to fit a power law with a noise scale; "
                         f"{len(used)} qualify. Segments: {detail}. Add runs at more sizes, or pass "
                         "exclude_edges=False to use censored segments too.")
    rng = np.random.default_rng(seed)
    x = np.log(used["C"].to_numpy())
    out = {}
    for q, col in (("N", "N_opt"), ("D", "D_opt")):
        coef, sig, xbar = _linear_posterior(x, np.log(used[col].to_numpy()), int(draws), rng)
        out[f"log_k_{q}"] = coef[:, 0] - coef[:, 1] * xbar
        out["a" if q == "N" else "b"] = coef[:, 1]
        out[f"sigma_{q}"] = sig
    qs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
    lo_name, hi_name = band_names("", ci)
    tab = {}
    for k in ("a", "b", "log_k_N", "log_k_D"):
        d = out[k]
        m, lo, hi = np.quantile(d, qs)
        tab[k] = {"median": m, lo_name: lo, hi_name: hi, "mean": d.mean(), "sd": d.std(ddof=1)}
    env = env.copy()
    env["used"] = env["segment"].isin(used["segment"])
    return Approach1Result(envelope=env, points=points, exponent=pd.DataFrame.from_dict(tab, orient="index"),
                           draws=out, ci=ci, convention=convention)
