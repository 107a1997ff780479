"""Reading and validating training runs.

A table of runs has one row per finished training run with the columns

========  ===============================================================
``N``     model parameters
``D``     training tokens (optional when ``C`` is given: ``D = C / (6 N)``)
``C``     training FLOPs (optional: ``C = 6 N D``)
``loss``  final loss (any positive metric that falls as the law says)
``budget``  optional label of the run's sweep or budget group; by default
          runs are grouped by compute, see :func:`budget_groups`
``U``     optional unique training tokens (also read from a column named
          ``unique_tokens``): ``D / U`` is the number of epochs, read by the
          ``data_constrained`` law
========  ===============================================================

With ``load_runs(..., group="dataset")`` a column names the variant (data
mixture, tokenizer, architecture) each run belongs to; :class:`Runs` then
keeps a group index per run and the group names, for grouped (hierarchical)
fits (``bayesscale.fit(runs, groups=True)``, :mod:`bayesscale.groups`).

Checkpoints of training curves (:meth:`bayesscale.Curves.to_runs`) are runs
too: one row per checkpoint, with the optimizer steps ``S`` and the batch
size ``B`` in tokens (read by the ``kaplan_steps`` law), and ``budget`` the
index of the curve, so that per-budget offsets are per-run offsets.

Every problem raises :class:`DataError` naming the row, the column and the
fix.  Nothing is dropped silently: :class:`Runs` holds every row it was given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .laws import FLOPS_PER_PARAM_TOKEN, PARAMETERS

__all__ = ["Runs", "DataError", "DataWarning", "load_runs", "budget_groups", "match_budgets", "as_runs",
           "rolling_folds"]

#: Number of law parameters plus the noise scale: the fewest runs that can be fitted.
MIN_RUNS = len(PARAMETERS) + 1

#: Relative tolerance of the C = 6 N D consistency check.
C_RTOL = 0.05

#: Runs whose compute lies within this many decades of their neighbour share a budget group.
BUDGET_TOL_DEX = 0.05


class DataError(ValueError):
    """A table of runs cannot be used; the message names the row, column and fix."""


class DataWarning(UserWarning):
    """A table of runs is usable but something in it looks wrong."""


def budget_groups(C, tol_dex: float = BUDGET_TOL_DEX) -> np.ndarray:
    """Group runs into compute budgets.

    Runs are sorted by ``log10 C``; a new group starts wherever the gap to
    the previous run exceeds ``tol_dex`` decades, or the group would span
    more than ``3 * tol_dex``.  Groups are numbered from the smallest budget
    upward.

    Parameters
    ----------
    C : array_like
        Training compute of each run.
    tol_dex : float
        Gap, in decades of compute, that separates two budgets.

    Returns
    -------
    numpy.ndarray of int
        Group index of each run, in the input order.
    """
    logc = np.log10(np.asarray(C, dtype=float))
    order = np.argsort(logc, kind="stable")
    labels = np.empty(len(logc), dtype=np.int64)
    g, start, prev = 0, None, None
    for i in order:
        if prev is not None and (logc[i] - prev > tol_dex or logc[i] - start > 3 * tol_dex):
            g += 1
            start = None
        if start is None:
            start = logc[i]
        labels[i] = g
        prev = logc[i]
    return labels


#: A compute value within this many decades of a budget group's geometric-mean compute belongs to it
#: (:func:`match_budgets`): half the widest span a group can have (``3 * BUDGET_TOL_DEX``).
BUDGET_MATCH_DEX = 1.5 * BUDGET_TOL_DEX


def match_budgets(budget_compute, C, tol_dex: float = BUDGET_MATCH_DEX) -> np.ndarray:
    """The budget group each compute value belongs to, or -1 where none is near.

    The one budget matcher of the package: given the groups of a table of
    runs (their geometric-mean compute, :meth:`Runs.budget_compute`), each
    value of ``C`` goes to the nearest group in ``log10`` compute when that
    group lies within ``tol_dex`` decades, and to ``-1`` (a new budget)
    otherwise.  :func:`budget_groups` makes the groups from the runs'
    compute; this function places other compute values (budgets asked for
    in a figure or a prediction) among them.

    Parameters
    ----------
    budget_compute : array_like or Runs
        Geometric-mean compute of each budget group, indexed by group, or a
        :class:`Runs` (its :meth:`Runs.budget_compute`).
    C : array_like
        Positive compute values in FLOPs.
    tol_dex : float
        Largest distance, in decades, to a group's compute.

    Returns
    -------
    numpy.ndarray of int
        Group index of each value of ``C`` (in ``C``'s shape), ``-1`` for none.
    """
    if isinstance(budget_compute, Runs):
        budget_compute = budget_compute.budget_compute()
    logc = np.log10(np.asarray(C, dtype=float))
    logb = np.log10(np.asarray(budget_compute, dtype=float)).ravel()
    if logb.size == 0:
        return np.full(logc.shape, -1, dtype=np.int64)
    dist = np.abs(logc.reshape(-1, 1) - logb[None, :])
    nearest = dist.argmin(axis=1)
    ok = dist[np.arange(nearest.size), nearest] <= tol_dex
    return np.where(ok, nearest, -1).astype(np.int64).reshape(logc.shape)


def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Runs:
    """A validated, immutable table of training runs.

    Use :func:`load_runs` to build one.  Arrays are read-only float64.

    Attributes
    ----------
    N, D, C, loss : numpy.ndarray
        Parameters, tokens, FLOPs and final loss of each run.
    run_id : numpy.ndarray of str
        Row labels, used in every message about a run.
    budget : numpy.ndarray of int
        Budget (or sweep) group of each run, numbered from 0.
    U : numpy.ndarray or None
        Unique training tokens of each run, when the table has them.
    S, B : numpy.ndarray or None
        Optimizer steps and batch size in tokens of each row, for
        checkpoints of training curves (:meth:`bayesscale.Curves.to_runs`);
        rows of one curve are consecutive, in increasing step, and share a
        ``budget`` group.
    group : numpy.ndarray of int or None
        Variant (group) index of each run, numbered from 0, when the table
        was loaded with ``group=`` (see :func:`load_runs`).
    group_names : tuple of str or None
        The group labels, indexed by ``group`` (sorted).
    source : str
        Where the table came from (a path, or ``"<DataFrame>"``).
    sha256 : str
        SHA-256 of the file's bytes (of the table's contents for a
        DataFrame), for reproducibility.
    """

    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    loss: np.ndarray
    run_id: np.ndarray
    budget: np.ndarray
    source: str = "<DataFrame>"
    sha256: str = field(default="")
    U: np.ndarray | None = None
    S: np.ndarray | None = None
    B: np.ndarray | None = None
    group: np.ndarray | None = None
    group_names: tuple | None = None

    def __post_init__(self):
        for name in ("N", "D", "C", "loss") + tuple(k for k in ("U", "S", "B") if getattr(self, k) is not None):
            object.__setattr__(self, name, _readonly(np.asarray(getattr(self, name), dtype=float)))
        object.__setattr__(self, "run_id", _readonly(np.asarray(self.run_id, dtype=str)))
        object.__setattr__(self, "budget", _readonly(np.asarray(self.budget, dtype=np.int64)))
        if (self.group is None) != (self.group_names is None):
            raise ValueError("Runs: group and group_names go together (both or neither)")
        if self.group is not None:
            object.__setattr__(self, "group", _readonly(np.asarray(self.group, dtype=np.int64)))
            object.__setattr__(self, "group_names", tuple(str(g) for g in self.group_names))
            if self.group.shape != self.loss.shape or (len(self) and (self.group.min() < 0 or
                                                                      self.group.max() >= len(self.group_names))):
                raise ValueError("Runs: group must hold one index into group_names per run")
        if not self.sha256:
            object.__setattr__(self, "sha256", _hash_frame(self.to_frame()))

    def __len__(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        groups = f", groups {list(self.group_names)}" if self.group_names is not None else ""
        return (f"Runs({len(self)} runs, {self.n_budgets} budgets{groups}, N {self.N.min():.3g}..{self.N.max():.3g}, "
                f"D {self.D.min():.3g}..{self.D.max():.3g}, C {self.C.min():.3g}..{self.C.max():.3g}, "
                f"source={self.source!r})")

    @property
    def n_budgets(self) -> int:
        """Number of budget groups."""
        return int(self.budget.max()) + 1 if len(self) else 0

    @property
    def n_groups(self) -> int:
        """Number of groups (variants); 0 when the runs carry no groups."""
        return 0 if self.group_names is None else len(self.group_names)

    def group_index(self, name) -> int:
        """The index of the group labelled ``name`` (a :class:`DataError` naming the groups if unknown)."""
        if self.group_names is None:
            raise DataError("these runs carry no groups; load them with load_runs(..., group='column').")
        if str(name) not in self.group_names:
            raise DataError(f"unknown group {name!r}; the groups are {', '.join(self.group_names)}.")
        return self.group_names.index(str(name))

    def select_group(self, name) -> "Runs":
        """The runs of one group, as plain runs (no group column)."""
        sub = self.subset(self.group == self.group_index(name))
        return dataclasses.replace(sub, group=None, group_names=None, sha256="")

    def to_frame(self) -> pd.DataFrame:
        """The runs as a DataFrame with columns N, D, C, loss, budget (and U), indexed by run id."""
        cols = {"N": self.N, "D": self.D, "C": self.C, "loss": self.loss, "budget": self.budget}
        for k in ("U", "S", "B"):
            if getattr(self, k) is not None:
                cols[k] = getattr(self, k)
        if self.group is not None:
            cols["group"] = np.asarray(self.group_names, dtype=object)[self.group]
        return pd.DataFrame(cols, index=pd.Index(self.run_id, name="run"))

    def subset(self, mask) -> "Runs":
        """The runs selected by a boolean mask or an index array.

        Budget groups are renumbered from 0 in the subset; groups (variants)
        keep their names and are renumbered over the groups left.
        """
        idx = np.arange(len(self))[np.asarray(mask)]
        if len(idx) == 0:
            raise DataError("the selection is empty: no run is left to fit. Select at least "
                            f"{MIN_RUNS} runs.")
        _, budget = np.unique(self.budget[idx], return_inverse=True)
        group = names = None
        if self.group is not None:
            kept, group = np.unique(self.group[idx], return_inverse=True)
            names = tuple(self.group_names[k] for k in kept)
        return Runs(N=self.N[idx], D=self.D[idx], C=self.C[idx], loss=self.loss[idx],
                    run_id=self.run_id[idx], budget=budget, source=self.source,
                    U=None if self.U is None else self.U[idx], S=None if self.S is None else self.S[idx],
                    B=None if self.B is None else self.B[idx], group=group, group_names=names)

    @property
    def is_curves(self) -> bool:
        """Whether the rows are checkpoints of training curves (they carry steps ``S``)."""
        return self.S is not None

    def previous_index(self) -> np.ndarray:
        """Index of the previous row of the same budget group (for curves: the same run), -1 for the first.

        Rows are taken in table order; :meth:`bayesscale.Curves.to_runs`
        lists each curve's checkpoints in increasing step.  Read by
        ordered observation models (the ``"ar1"`` likelihood).
        """
        prev = np.full(len(self), -1, dtype=np.int64)
        last: dict[int, int] = {}
        for i, g in enumerate(self.budget.tolist()):
            prev[i] = last.get(g, -1)
            last[g] = i
        return prev

    def budget_compute(self) -> np.ndarray:
        """Geometric-mean compute of each budget group, indexed by group."""
        logc = np.log(self.C)
        return np.exp(np.array([logc[self.budget == g].mean() for g in range(self.n_budgets)]))


def _hash_frame(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(df.reset_index(), index=False).values.tobytes())
    return h.hexdigest()


def _row_label(df: pd.DataFrame, i: int, source: str) -> str:
    if source != "<DataFrame>":
        return f"row {i + 2} of {os.path.basename(source)} (index {df.index[i]!r})"
    return f"row {df.index[i]!r}"


def load_runs(path_or_frame, *, columns: dict | None = None, budget_tol_dex: float = BUDGET_TOL_DEX,
              group: str | None = None) -> Runs:
    """Read and validate a table of training runs.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
        A CSV file, or a DataFrame, with the columns ``N``, ``loss`` and
        ``D`` or ``C`` (or both), and optionally ``budget``.
    columns : dict, optional
        Maps this package's column names to yours, for example
        ``{"N": "params", "D": "tokens", "loss": "eval_loss"}``.
    budget_tol_dex : float
        Used to group runs into budgets when there is no ``budget`` column
        (see :func:`budget_groups`).
    group : str, optional
        A column naming the variant of each run (e.g. ``"dataset"``): the
        runs keep a group index and the sorted group names, for grouped
        fits (``bayesscale.fit(runs, groups=True)``).  Every group needs
        runs at two or more distinct ``N`` and ``D``.

    Returns
    -------
    Runs

    Raises
    ------
    DataError
        On a missing column, a non-numeric, NaN, infinite or non-positive
        value, an empty table, fewer runs than parameters, or a single
        distinct ``N`` or ``D``.  The message names the row and column.

    Warns
    -----
    DataWarning
        When a given ``C`` disagrees with ``6 N D`` by more than 5%, naming
        the runs.
    """
    if isinstance(path_or_frame, pd.DataFrame):
        df, source, file_hash = path_or_frame.copy(), "<DataFrame>", ""
    elif isinstance(path_or_frame, (str, os.PathLike)):
        path = Path(path_or_frame)
        if not path.is_file():
            raise DataError(f"{path}: no such file. Pass the path of a CSV of runs with columns N, D, loss.")
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot be read as CSV ({str(e).strip()}). "
                            "Save the runs as a comma-separated file with a header row.") from None
        except OSError as e:
            raise DataError(f"{path}: cannot be read ({e.strerror or e}). Check the file's permissions.") from None
        _check_delimiter(df, path)
        source = str(path)
        file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        raise DataError(f"expected a CSV path or a pandas DataFrame, got {type(path_or_frame).__name__}")

    columns = dict(columns or {})
    unknown = set(columns) - {"N", "D", "C", "loss", "budget", "U"}
    if unknown:
        raise DataError(f"columns= maps unknown names {sorted(unknown)}; the names are N, D, C, loss, budget, U.")
    where = os.path.basename(source) if source != "<DataFrame>" else "the table"
    _check_mapping(columns, df, where)
    df = df.rename(columns={v: k for k, v in columns.items()})
    if "U" not in df.columns and "unique_tokens" in df.columns:
        df = df.rename(columns={"unique_tokens": "U"})

    if len(df) == 0:
        raise DataError(f"{where} is empty: it has no runs. Add one row per finished training run.")
    for col in ("N", "loss"):
        if col not in df.columns:
            raise DataError(_missing(col, df, where))
    if "D" not in df.columns and "C" not in df.columns:
        raise DataError(_missing("D", df, where) + " (Or give C, the training FLOPs, and D = C / (6 N) is used.)")

    values = {}
    for col in ("N", "D", "C", "loss", "U"):
        if col not in df.columns:
            continue
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        for i in np.flatnonzero(num.isna().to_numpy()):
            what = "is empty (NaN)" if pd.isna(raw.iloc[i]) else f"is not a number ({raw.iloc[i]!r})"
            raise DataError(f"{_row_label(df, i, source)}, column {col!r}: the value {what}. "
                            "Fix or remove that run.")
        arr = num.to_numpy(dtype=float)
        for i in np.flatnonzero(~np.isfinite(arr)):
            raise DataError(f"{_row_label(df, i, source)}, column {col!r}: the value is infinite. "
                            "Fix or remove that run.")
        for i in np.flatnonzero(arr <= 0):
            raise DataError(f"{_row_label(df, i, source)}, column {col!r}: the value {arr[i]:g} is not positive; "
                            f"{col} must be > 0. Fix or remove that run.")
        values[col] = arr

    N, loss = values["N"], values["loss"]
    with np.errstate(over="ignore", under="ignore"):
        D = values["D"] if "D" in values else values["C"] / (FLOPS_PER_PARAM_TOKEN * N)
        NxD = FLOPS_PER_PARAM_TOKEN * N * D
        C = values.get("C", NxD)
        for col, arr in (("C", C), ("D", D), ("6 N D", FLOPS_PER_PARAM_TOKEN * N * D)):
            # derived values can overflow (N = D = 1e200 gives C = inf) or underflow to 0
            for i in np.flatnonzero(~np.isfinite(arr) | (arr <= 0))[:1]:
                raise DataError(f"{_row_label(df, i, source)}: N = {N[i]:g} and D = {D[i]:g} give "
                                f"{col} = {arr[i]:g}, outside the range of floating-point numbers. N and D "
                                "must be counts (parameters, tokens); fix or remove that run.")
    if "D" in values and "C" in values:
        rel = np.abs(C / NxD - 1)
        bad = np.flatnonzero(rel > C_RTOL)
        if len(bad):
            names = ", ".join(_row_label(df, i, source) for i in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            warnings.warn(f"{len(bad)} runs have C more than {C_RTOL:.0%} away from 6 N D: {names}{more}. "
                          "The fit uses N and D; check the C column or the cost model.",
                          DataWarning, stacklevel=2)

    n = len(df)
    if n < MIN_RUNS:
        raise DataError(f"{where} has {n} runs, fewer than the {MIN_RUNS} parameters of the law "
                        "(E, A, B, alpha, beta, sigma). Add runs.")
    for col, arr in (("N", N), ("D", D)):
        if np.unique(arr).size < 2:
            raise DataError(f"column {col!r}: every run has {col} = {arr[0]:g}. The law is not identifiable "
                            f"from a single {col}; add runs at other values of {col}.")

    group_idx = group_names = None
    if group is not None:
        if not isinstance(group, str):
            raise DataError(f"group= must name a column, got {type(group).__name__}")
        if group not in df.columns:
            raise DataError(f"{where} has no column {group!r} to group runs by (columns: "
                            f"{', '.join(map(str, df.columns))}). Pass group= the column that names each "
                            "run's variant, e.g. group='dataset'.")
        glabels = df[group]
        if glabels.isna().any():
            i = int(np.flatnonzero(glabels.isna().to_numpy())[0])
            raise DataError(f"{_row_label(df, i, source)}, column {group!r}: the group label is empty. "
                            "Give every run a group label, or drop the run.")
        names, group_idx = np.unique(glabels.astype(str).to_numpy(), return_inverse=True)
        group_names = tuple(names.tolist())
        for k, name in enumerate(group_names):
            sel = group_idx == k
            for col, arr in (("N", N), ("D", D)):
                if np.unique(arr[sel]).size < 2:
                    raise DataError(f"group {name!r} (column {group!r}): every run has {col} = {arr[sel][0]:g}. "
                                    f"The group's law is not identifiable from a single {col}; add runs at "
                                    f"other values of {col} or drop the group.")

    if "budget" in df.columns:
        labels = df["budget"]
        if labels.isna().any():
            i = int(np.flatnonzero(labels.isna().to_numpy())[0])
            raise DataError(f"{_row_label(df, i, source)}, column 'budget': the label is empty. "
                            "Give every run a budget label, or drop the column to group runs by compute.")
        _, budget = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
    else:
        budget = budget_groups(C, budget_tol_dex)

    run_id = [str(x) for x in df.index] if source == "<DataFrame>" else [f"row {i + 2}" for i in range(n)]
    if "run" in df.columns:
        run_id = df["run"].astype(str).tolist()
    return Runs(N=N, D=D, C=C, loss=loss, run_id=run_id, budget=budget, source=source, sha256=file_hash,
                U=values.get("U"), group=group_idx, group_names=group_names)


def _check_delimiter(df: pd.DataFrame, path: Path) -> None:
    """A file read as one column whose header holds ';', tab or '|' was saved with another delimiter."""
    if df.shape[1] != 1:
        return
    header = str(df.columns[0])
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|' characters")):
        if sep in header:
            raise DataError(f"{path}: the header {header!r} is one column separated by {name}, but the file "
                            "must be comma-separated. Save it as CSV with commas (in pandas: "
                            f"pd.read_csv(path, sep={sep!r}).to_csv(new_path, index=False)).")


def _check_mapping(columns: dict, df: pd.DataFrame, where: str) -> None:
    """Every mapped column exists, and no mapping collides with a column of the same name."""
    have = [str(c) for c in df.columns]
    for name, yours in columns.items():
        if yours == name:
            if yours not in have:
                raise DataError(f"{where} has no column {yours!r} (columns: {', '.join(have) or 'none'}).")
            continue
        if yours not in have:
            raise DataError(f"columns maps {name} to {yours!r}, but {where} has no column {yours!r} "
                            f"(columns: {', '.join(have) or 'none'}). Fix the spelling "
                            f"(CLI: --column {name}=COLUMN).")
        if name in have:
            raise DataError(f"columns maps {name} to {yours!r}, but {where} also has a column {name!r}: "
                            f"the mapping is ambiguous. Drop or rename the column {name!r}, or remove the "
                            "mapping to use it.")


def _missing(col: str, df: pd.DataFrame, where: str) -> str:
    have = ", ".join(map(str, df.columns)) or "none"
    return (f"{where} has no column {col!r} (columns: {have}). Rename the column, or map it with "
            f"columns={{'{col}': 'your_name'}} (CLI: --column {col}=your_name).")


def as_runs(runs, law=None) -> Runs:
    """Accept a :class:`Runs`, a :class:`bayesscale.Curves`, a DataFrame or a path; return :class:`Runs`.

    With a ``law``, check that the runs carry every covariate it reads.
    """
    if not isinstance(runs, Runs) and callable(getattr(runs, "to_runs", None)):
        runs = runs.to_runs()  # bayesscale.Curves
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    if law is not None and ({"logS", "logB"} & set(law.covariates)) and (runs.S is None or runs.B is None):
        raise DataError(f"the law {law.name!r} reads the optimizer steps and batch size of each checkpoint, "
                        f"and the runs ({runs.source}) have none: pass training curves "
                        "(bayesscale.load_curves(...) or bayesscale.simulate_curves(...)) instead of a table of "
                        "final losses.")
    if law is not None and "logU" in law.covariates and runs.U is None:
        raise DataError(f"the law {law.name!r} reads the unique training tokens of each run, and the table "
                        f"({runs.source}) has none: add a column 'U' or 'unique_tokens', or map yours with "
                        "columns={'U': 'your_name'} (CLI: --column U=your_name).")
    return runs


def rolling_folds(runs: Runs, min_train_budgets: int = 3) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Rolling-origin folds over budget groups, from the smallest budget upward.

    Each fold holds out one budget group and trains on every run at a
    smaller compute (by more than the budget tolerance), once at least
    ``min_train_budgets`` groups lie below it.

    Returns
    -------
    list of (label, train mask, test mask)
    """
    Cg = runs.budget_compute()
    folds = []
    for i, g in enumerate(np.argsort(Cg)):
        if i < min_train_budgets:
            continue
        test = runs.budget == g
        train = (runs.C < Cg[g] * 10 ** (-BUDGET_TOL_DEX)) & ~test
        folds.append((f"budget {Cg[g]:.3g}", train, test))
    return folds
