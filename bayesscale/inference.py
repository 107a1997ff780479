"""NUTS, compiled once, for one data set or thousands.

This module is the only place that knows how sampling is done.  It turns
:class:`~bayesscale.data.Runs` into padded arrays, runs NumPyro's NUTS kernel
(dense mass matrix, windowed adaptation) inside programs that are compiled
once per *shape*, and returns plain NumPy draws and sampler statistics.

How it stays fast
-----------------
* Two jitted programs per configuration: ``init`` (initial point and
  adaptation state) and ``advance`` (a fixed number of NUTS transitions, the
  same program for warm-up and sampling).  ``advance`` is called repeatedly,
  which is what lets a progress bar move without host callbacks.
* Data are padded to a size bucket (:func:`bucket_size`) with a mask, and all
  prior numbers travel as data, so a new data set of a similar size reuses
  the compiled programs.  NumPyro's own ``MCMC.run`` re-traces and
  recompiles its loop on every call (about 2.3 s per fit on a 2-core CPU).
* Every chain of every data set is one element of a batch axis, ``vmap``-ed
  on one device and split across devices with ``jax.shard_map``: CPU host
  devices (see :mod:`bayesscale` for the host device count) or several GPUs.
* JAX's persistent compilation cache is on (see :func:`configure_cache`), so
  a fresh process skips most of the compilation.
"""

from __future__ import annotations

import functools
import json
import math
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import Runs
from .model import ModelSpec, bend_frame, context, numpyro_model

__all__ = ["SamplerSettings", "Draws", "sample", "resume", "Continuation", "bucket_size", "model_data", "configure_cache",
           "compile_count", "round_trip_count", "CacheWarning", "CHUNK"]

#: Transitions per host round trip, about (see :attr:`SamplerSettings.chunk`).
CHUNK = 250



@dataclass(frozen=True)
class SamplerSettings:
    """Settings of the NUTS run (these shape the compiled program).

    Parameters
    ----------
    chains, warmup, draws : int
        Chains per data set, warm-up (adaptation) iterations and kept draws
        per chain.
    max_tree_depth : int
        NUTS tree depth limit (at most ``2**max_tree_depth - 1`` leapfrog
        steps per draw).
    target_accept : float
        Target acceptance probability of step-size adaptation.
    dense_mass : bool
        Adapt a dense (full covariance) mass matrix.
    """

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    max_tree_depth: int = 10
    target_accept: float = 0.8
    dense_mass: bool = True

    def __post_init__(self):
        for name in ("chains", "draws", "max_tree_depth"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.warmup, (int, np.integer)) or self.warmup < 10:
            raise ValueError(f"warmup must be an integer >= 10, got {self.warmup!r}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must lie in (0, 1), got {self.target_accept!r}")

    @property
    def chunk(self) -> int:
        """Transitions per call of the ``advance`` program.

        About :data:`CHUNK` transitions per host round trip: the total is cut
        into ``ceil(total / CHUNK)`` near-equal chunks, and the last call's
        few surplus transitions (fewer than the number of chunks) run past
        the end and are discarded.  One program serves every data set with
        these settings.
        """
        total = self.warmup + self.draws
        n_chunks = -(-total // CHUNK)
        return -(-total // n_chunks)


@dataclass(frozen=True)
class Draws:
    """Raw output of :func:`sample` for one data set.

    Attributes
    ----------
    samples : dict of str to ndarray
        Sampled variables on their constrained scale, shaped
        ``(chains, draws, ...)``.
    stats : dict of str to ndarray
        Per-draw sampler statistics ``(chains, draws)``: ``diverging``,
        ``num_steps``, ``tree_depth``, ``accept_prob``, ``step_size``,
        ``energy``, ``potential_energy``.
    timing : dict
        Wall-clock seconds of the batch this data set ran in.
    device : str
        The device platform and count.
    """

    samples: dict
    stats: dict
    timing: dict = field(default_factory=dict)
    device: str = ""


def bucket_size(n: int) -> int:
    """Padded size for ``n`` runs: the next of 16, 24, 32, 48, 64, 96, ...

    Data sets whose sizes share a bucket share a compiled program.
    """
    size = 16
    while size < n:
        size = size * 3 // 2 if (size & (size - 1)) == 0 else size * 4 // 3
    return size


def covariate_arrays(runs: Runs, names) -> dict:
    """The covariates a law reads (``logN``, ``logD``, ``logC``, ``logU``, ``logS``, ``logB``) for each run.

    ``logU`` is +inf for runs without a unique-token count (no repetition).
    """
    out = {}
    for c in names:
        if c == "logN":
            out[c] = np.log(runs.N)
        elif c == "logD":
            out[c] = np.log(runs.D)
        elif c == "logC":
            out[c] = np.log(runs.C)
        elif c == "logU":
            out[c] = np.log(runs.U) if runs.U is not None else np.full(len(runs), np.inf)
        elif c in ("logS", "logB"):
            a = runs.S if c == "logS" else runs.B
            if a is None:
                raise ValueError(f"covariate {c!r} needs checkpoints of training curves (Runs.{c[3]}); "
                                 "pass bayesscale.Curves")
            out[c] = np.log(a)
        else:  # pragma: no cover - Law validates its covariates
            raise ValueError(f"unknown covariate {c!r}")
    return out


def prior_leaves(spec: ModelSpec, runs: Runs):
    """The data summary, and the resolved priors flattened to (treedef, leaves) for the compiled model."""
    import jax

    ctx = context(covariate_arrays(runs, spec.law.covariates), runs.loss)
    leaves, treedef = jax.tree.flatten(spec.resolve_priors(ctx))
    return ctx, treedef, leaves


def model_data(runs: Runs, spec: ModelSpec, n_pad: int, g_pad: int, k_pad: int | None = None) -> dict:
    """Padded arrays, the data summary and the prior numbers that the compiled model reads.

    Padding rows repeat the first run and are masked out of the likelihood.
    Ordered observation models (``"ar1"``) also get ``prev``, the index of
    the previous row of the same budget group (-1 for the first and for
    padding; :meth:`bayesscale.Runs.previous_index`).  Grouped models
    (``spec.pooling``) also get ``gid``, the group of each run, and
    ``gid_slots`` (``k_pad`` group slots, :func:`bayesscale.hierarchy.group_slots`).
    """
    n = len(runs)
    if n > n_pad or runs.n_budgets > g_pad:
        raise ValueError("padding smaller than the data")
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], n_pad - n)])  # noqa: E731
    ctx, _, leaves = prior_leaves(spec, runs)
    data = {c: pad(v).astype(np.float32) for c, v in covariate_arrays(runs, spec.law.covariates).items()}
    data.update({
        "y": pad(np.log(runs.loss)).astype(np.float32),
        "mask": np.arange(n_pad) < n,
        "group": pad(runs.budget).astype(np.int32),
        "group_slots": np.zeros(g_pad, np.float32),
    })
    if spec.pooling is not None:
        if runs.group is None:
            raise ValueError("a grouped model needs runs that carry groups (load_runs(..., group='column'))")
        from .hierarchy import group_slots

        k_pad = group_slots(runs.n_groups) if k_pad is None else k_pad
        if runs.n_groups > k_pad:
            raise ValueError("group padding smaller than the data")
        data["gid"] = pad(runs.group).astype(np.int32)
        data["gid_slots"] = (np.arange(k_pad) < runs.n_groups).astype(np.float32)  # 1 where a slot has runs
    if getattr(spec.observation, "ordered", False):
        data["prev"] = np.concatenate([runs.previous_index(), np.full(n_pad - n, -1)]).astype(np.int32)
    data.update({f"ctx:{k}": np.float32(v) for k, v in ctx.items()})
    if spec.bend != "none":
        data["bend_logC"] = pad(np.log(runs.C)).astype(np.float32)
        if spec.pooling is not None:  # grouped: one frame and prior sd per group slot
            from .hierarchy import group_bend_data

            data.update(group_bend_data(runs, spec, data["gid_slots"].shape[0]))
        else:
            center, lo, hi = bend_frame(runs.C)
            data.update(bend_center=np.float32(center), bend_lo=np.float32(lo), bend_hi=np.float32(hi))
            data["bend_scale"] = np.float32(spec.bend_scale(runs))
    if spec.profile != "law":
        data["profile_logC"] = pad(np.log(runs.C)).astype(np.float32)
        data["profile_center"] = np.float32(bend_frame(runs.C)[0])
        data["profile_scale"] = np.float32(spec.priors.profile_scale)
    data.update({f"prior:{i}": np.asarray(v, dtype=np.float32) for i, v in enumerate(leaves)})
    return data


# ---------------------------------------------------------------------------
# compilation cache

_CACHE_STATE = {"configured": False, "dir": None}


class CacheWarning(UserWarning):
    """The compilation cache directory is unsafe or unusable; the cache is off for this process."""


def _unsafe_dir(path: Path) -> str | None:
    """Why ``path`` must not hold programs that this process loads and runs, or None when it is safe.

    Compiled programs are native code: a directory that another user can
    write to (or replace, through a writable parent without the sticky bit)
    would let them run code as this user.
    """
    if not hasattr(os, "getuid"):
        return None  # no POSIX owners (Windows): nothing to check
    st = path.stat()
    if st.st_uid != os.getuid():
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"other users can write to it (mode {stat.filemode(st.st_mode)})"
    parent = path.parent.stat()
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX and parent.st_uid != os.getuid():
        return f"its parent {path.parent} is writable by other users, who could replace it"
    return None


def configure_cache(path: str | os.PathLike | None | bool = None) -> Path | None:
    """Turn on JAX's persistent compilation cache.

    Parameters
    ----------
    path : path, None or False
        The cache directory.  ``None`` uses ``$BAYESSCALE_CACHE_DIR`` or else
        ``$XDG_CACHE_HOME/bayesscale/jax`` (``~/.cache/bayesscale/jax``).
        ``False``, or ``BAYESSCALE_CACHE_DIR=off``, turns the cache off.

    Returns
    -------
    pathlib.Path or None
        The directory in use, or None when the cache is off.

    Warns
    -----
    CacheWarning
        When the directory is owned by another user or writable by other
        users (group or other write permission): the cache holds native code
        that this process runs, so it is refused, the warning says how to
        fix it (``chmod go-w DIR``, or another directory), and this process
        runs without the cache (fits still work, they only compile afresh).
        New directories are created with mode 0700.
    """
    import jax

    env = os.environ.get("BAYESSCALE_CACHE_DIR")
    if path is False or (path is None and env is not None and env.lower() in ("off", "0", "false", "")):
        jax.config.update("jax_compilation_cache_dir", None)
        _CACHE_STATE.update(configured=True, dir=None)
        return None
    if path is None:
        path = env or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bayesscale" / "jax"
    path = Path(path).expanduser()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        unsafe = _unsafe_dir(path) or (_unsafe_dir(path / "programs") if (path / "programs").is_dir() else None)
    except OSError:
        unsafe = None
        path = None
    if unsafe:
        import warnings

        warnings.warn(f"the compilation cache {path} is not used: {unsafe}. It holds compiled native code that "
                      f"bayesscale runs, so only you may write to it. Fix it with 'chmod go-w {path}' (and its "
                      "programs/ folder), or set BAYESSCALE_CACHE_DIR to a directory of your own; this process "
                      "compiles without the cache.", CacheWarning, stacklevel=3)
        path = None
    if path is None:
        jax.config.update("jax_compilation_cache_dir", None)
        _CACHE_STATE.update(configured=True, dir=None)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _CACHE_STATE.update(configured=True, dir=path)
    return path


def _ensure_cache():
    if not _CACHE_STATE["configured"]:
        configure_cache()


# ---------------------------------------------------------------------------
# compiled programs

_COMPILES = {"count": 0, "round_trips": 0}


def compile_count() -> int:
    """How many sampler programs this process has traced (for tests)."""
    return _COMPILES["count"]


def round_trip_count() -> int:
    """How many ``advance`` calls (host round trips) this process has made (for tests)."""
    return _COMPILES["round_trips"]


#: Most chains (data sets x chains) that ``device=None`` runs on the CPU where JAX's default is a GPU.
#: NUTS on a GPU is latency bound (every leapfrog step is a few small kernels in while loops), so a
#: GPU pays off only for many chains at once.  Measured on an H100 against a 2-core CPU
#: (benchmarks/RESULTS.md, batch_speed): 10 data sets x 4 chains took 17.6 s on the GPU and 3.1 s on
#: the CPU; 100 x 4 took 49 s and 81 s.
AUTO_CPU_CHAINS = 256


def auto_device(n_chains: int) -> str | None:
    """The platform ``device=None`` means for ``n_chains`` chains: the CPU for few chains, else JAX's default."""
    import jax

    if jax.default_backend() == "cpu" or n_chains > AUTO_CPU_CHAINS:
        return None
    try:
        jax.devices("cpu")
    except RuntimeError:  # a JAX without its CPU backend
        return None
    return "cpu"


def _devices(device: str | None):
    import jax

    try:
        return jax.devices(device) if device else jax.devices()
    except RuntimeError as e:
        raise ValueError(f"device={device!r} is not available to JAX ({e}). Available: "
                           f"{sorted({d.platform for d in jax.devices()})}. Install bayesscale[cuda12] or "
                           "[cuda13] for GPUs, or pass device='cpu'.") from None


def init_strategy():
    """Where each chain starts: the median of 15 prior draws of every site (a different 15 per chain).

    Inside the prior's bulk, and a little apart across chains.  NumPyro's
    default, uniform in (-2, 2) on the unconstrained scale, started the noise
    scale up to 150 times its prior scale and exponents up to 7.
    """
    from numpyro.infer import init_to_median

    return init_to_median(num_samples=15)


@functools.lru_cache(maxsize=32)
def _traced_programs(structure: tuple, settings: SamplerSettings, devices: tuple):
    """Jitted ``init(ids, data) -> leaves`` and ``advance(leaves, data) -> (leaves, out)``.

    ``ids`` holds ``(seed, data set, chain)`` per batch element.

    The NUTS state crosses the program boundary as its flat list of leaves:
    the host never needs its structure, and flat programs can be exported.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P
    from numpyro.infer import NUTS

    law, observation, offsets, bend, profile, grouping, prior_def = structure
    if grouping is None:
        model = functools.partial(numpyro_model, law=law, observation=observation, offsets=offsets,
                                  prior_def=prior_def, bend=bend, profile=profile)
    else:
        from .hierarchy import grouped_model

        model = functools.partial(grouped_model, law=law, observation=observation, offsets=offsets,
                                  prior_def=prior_def, pooling=grouping[0], centering=grouping[1], bend=bend)
    kernel = NUTS(model, dense_mass=settings.dense_mass, target_accept_prob=settings.target_accept,
                  max_tree_depth=settings.max_tree_depth, init_strategy=init_strategy())
    # the draws keep every site but a law's sampler-only coordinates (such as log_L0)
    hidden = set(getattr(law.sample_sites, "hidden", ()))
    chunk = settings.chunk
    treedef = {}

    def init_one(ids, data):
        _COMPILES["count"] += 1  # runs at trace time only
        # the chain's key, derived in the program from (seed, data set, chain): no host-side key ops
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(ids[0]), ids[1]), ids[2])
        state = kernel.init(key, settings.warmup, model_args=(data,), model_kwargs={})
        leaves, treedef["state"] = jax.tree.flatten(state)
        return leaves

    def advance_one(leaves, data):
        state = jax.tree.unflatten(treedef["state"], leaves)  # init is always traced first
        post = kernel.postprocess_fn((data,), {})

        def with_step(s, f):
            return s._replace(adapt_state=s.adapt_state._replace(step_size=s.adapt_state.step_size * f))

        def step(s, _):
            # after warm-up (adaptation frozen) the step is scaled by data["step_scale"] (1 but in a
            # continuation, see resume); x * 1 / 1 is exact, so ordinary fits are unchanged bit for bit
            f = jnp.where(s.i >= settings.warmup, data["step_scale"], 1.0).astype(s.adapt_state.step_size.dtype)
            s = kernel.sample(with_step(s, f), (data,), {})
            out = {"z": {k: v for k, v in post(s.z).items() if k not in hidden}, "diverging": s.diverging,
                   "num_steps": s.num_steps,
                   "accept_prob": s.accept_prob, "step_size": s.adapt_state.step_size,
                   "energy": s.energy, "potential_energy": s.potential_energy}
            return with_step(s, 1.0 / f), out

        state, out = jax.lax.scan(step, state, None, length=chunk)
        return jax.tree.leaves(state), out

    def batched(fn):
        if devices[0].platform == "cpu":
            # Sequential within a device: under vmap, NUTS's data-dependent
            # branches become selects that run both sides (measured 2-4x
            # slower per chain on CPU).  Devices still run in parallel.
            one = fn
            fn = lambda *args: jax.lax.map(lambda a: one(*a), args)  # noqa: E731
        else:
            fn = jax.vmap(fn)
        if len(devices) > 1:
            mesh = Mesh(np.array(devices), ("b",))
            fn = jax.shard_map(fn, mesh=mesh, in_specs=P("b"), out_specs=P("b"), check_vma=False)
        return jax.jit(fn)

    return batched(init_one), batched(advance_one)


def _code_version() -> str:
    """Hash of everything that shapes the programs: this package's model code and the libraries."""
    import hashlib

    import jax
    import numpyro

    from . import hierarchy, laws, model, observation

    h = hashlib.sha256(f"{jax.__version__} {numpyro.__version__}".encode())
    for mod in (laws, model, observation, hierarchy, sys.modules[__name__]):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


#: First line of a stored program file; a JSON header line follows, then the serialized program.
_MAGIC = b"bayesscale-program 1\n"

#: Programs of this process, by their arguments (see :func:`_programs`).
_LOADED: dict = {}


@dataclass(frozen=True)
class _Programs:
    init: object
    advance: object
    source: str  # "traced" (this process traced it) or "disk" (read from the export cache)
    files: tuple = ()


def _read_program(f: Path, key: str, name: str) -> bytes | None:
    """The serialized program in ``f`` if its header names ``key`` and ``name`` and its hash matches."""
    import hashlib

    try:
        raw = f.read_bytes()
    except OSError:
        return None
    if not raw.startswith(_MAGIC):
        return None
    try:
        end = raw.index(b"\n", len(_MAGIC))
        header = json.loads(raw[len(_MAGIC):end])
    except ValueError:
        return None
    payload = raw[end + 1:]
    ok = (isinstance(header, dict) and header.get("key") == key and header.get("name") == name
          and header.get("size") == len(payload) and header.get("sha256") == hashlib.sha256(payload).hexdigest())
    return payload if ok else None


def _write_program(f: Path, key: str, name: str, payload: bytes) -> None:
    import hashlib

    header = {"key": key, "name": name, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    tmp = f.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_bytes(_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        os.replace(tmp, f)
    finally:
        tmp.unlink(missing_ok=True)


def _programs(structure: tuple, settings: SamplerSettings, devices: tuple, keys_spec, data_spec, *,
              fresh: bool = False) -> _Programs:
    """``init`` and ``advance`` for one shape, from the export cache when possible.

    Tracing NUTS takes seconds of Python; with the persistent cache on, the
    traced programs are exported (``jax.export``) next to the compiled
    ones, so a fresh process deserialises them instead of tracing again.

    Each stored program starts with a header naming its key (a hash of this
    package's model code, the library versions, the model structure, the
    settings, the devices and the input shapes) and the SHA-256 of the
    serialized program; a file whose header does not match is ignored and
    replaced.  ``fresh=True`` skips the cache (after a stored program failed
    on first use, see :func:`sample`) and replaces its entry.
    """
    import hashlib

    import jax
    from jax import export

    args = (structure, settings, devices, keys_spec, data_spec)
    if not fresh and args in _LOADED:
        return _LOADED[args]

    def compiled(e):
        if len(devices) == 1:
            return jax.jit(e.call)
        # every input and output is split along its leading (batch) axis
        batch = _placement(devices)
        return jax.jit(e.call, in_shardings=batch, out_shardings=batch)

    law, observation, offsets, bend, profile, grouping, prior_def = structure
    # a law whose code cannot be identified is compiled in memory only
    cache = _CACHE_STATE["dir"] if law.source_key else None
    key = hashlib.sha256(repr((_code_version(), law.source_key, observation, offsets, bend, profile, grouping,
                               str(prior_def),
                               settings,
                               devices[0].platform, len(devices), keys_spec, data_spec)).encode()).hexdigest()[:32]
    names = ("init", "advance")
    files = tuple(cache / "programs" / f"{key}-{n}.jaxexport" for n in names) if cache else ()
    if files and not fresh:
        payloads = [_read_program(f, key, n) for f, n in zip(files, names)]
        if all(p is not None for p in payloads):
            try:
                exported = [export.deserialize(bytearray(p)) for p in payloads]
                out = _Programs(*(compiled(e) for e in exported), source="disk", files=files)
                _LOADED[args] = out
                return out
            except Exception:  # noqa: BLE001 - a stale or corrupt entry: trace again, and replace it
                pass
    init, advance = _traced_programs(structure, settings, devices)
    out = _Programs(init, advance, source="traced")
    if files:
        keys = jax.ShapeDtypeStruct(*keys_spec)
        data = {k: jax.ShapeDtypeStruct(*v) for k, v in data_spec}
        try:
            # lowered for the devices' platform, not JAX's default one (a GPU machine asked for the CPU)
            platforms = (_export_platform(devices[0]),)
            e_init = export.export(init, platforms=platforms)(keys, data)
            leaves = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in e_init.out_avals]
            e_adv = export.export(advance, platforms=platforms)(leaves, data)
            files[0].parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for f, n, e in zip(files, names, (e_init, e_adv)):
                _write_program(f, key, n, bytes(e.serialize()))
            out = _Programs(compiled(e_init), compiled(e_adv), source="traced", files=files)
        except Exception:  # noqa: BLE001 - export is an optimisation; the traced programs always work
            pass
    _LOADED[args] = out
    while len(_LOADED) > 32:  # like the lru_cache of the traced programs: the oldest go first
        _LOADED.pop(next(iter(_LOADED)))
    return out


def _placement(devices: tuple):
    """Where a program's inputs live: the one device, or split along the batch axis over several."""
    import jax

    if len(devices) == 1:
        return devices[0]
    return jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("b",)), jax.sharding.PartitionSpec("b"))


def _export_platform(device) -> str:
    """``jax.export``'s name for a device's platform (a CUDA device's platform is "gpu", its export "cuda")."""
    import jax
    from jax import export

    if device.platform == jax.default_backend():
        return export.default_export_platform()
    return device.client.platform


def _auto_batch(K: int, n_pad: int, g_pad: int, settings: SamplerSettings, devices, n_sites: int) -> int:
    """Most data sets per call that fit in a quarter of device memory (2 GiB on CPU).

    Per chain, a call holds the NUTS state (a dense mass matrix and its
    adaptation windows, O(d^2)), the padded data, and one chunk of outputs.
    """
    d = n_sites + g_pad
    per_chain = 4 * (8 * d * d + 4 * n_pad + settings.chunk * (d + 8)) * 2  # x2: double-buffered outputs
    budget = 2 << 30
    stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        budget = stats["bytes_limit"] // 4
    per_set = per_chain * settings.chains
    return max(1, min(K, budget * len(devices) // per_set))


def _progress_bar(total: int, enabled: bool | None, desc: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="it", leave=False, file=sys.stderr)


def sample(datasets: list[Runs], spec: ModelSpec, settings: SamplerSettings, *, seed: int = 0,
           device: str | None = None, batch_size: int | None = None,
           progress: bool | None = None, pad_like: list[Runs] | None = None,
           desc: str | None = None, keep_state: bool = False):
    """Run NUTS on each data set and return its draws.

    Parameters
    ----------
    datasets : list of Runs
        The data sets; all are padded to the bucket of the largest.
    spec : ModelSpec
        The model.
    settings : SamplerSettings
        The sampler.
    seed : int
        Chain ``c`` of data set ``k`` uses the key
        ``fold_in(fold_in(PRNGKey(seed), k), c)``, so a data set's draws do
        not depend on the others in the batch.  They are bit-for-bit
        reproducible for the same seed, data, settings, platform, library
        versions and device count; and the same on any number of devices
        from 2 up (measured on CPU host devices: 2 and 4 devices, 1 or 2
        chains per device, identical draws).  One device gives different,
        equally valid draws: without partitioning, XLA compiles the log
        density's gradient with another summation order (float32 round-off,
        about 1e-6 relative), and NUTS trajectories amplify that within a
        few transitions.  Compare fits across device counts by their
        posteriors, not draw by draw.
    device : {"cpu", "gpu", None}
        JAX platform.  None: the CPU for at most :data:`AUTO_CPU_CHAINS`
        chains in all (data sets x chains), where a single fit is many
        times faster than on a GPU, else JAX's default.  All devices of
        the platform are used.
    batch_size : int, optional
        Most data sets per program call (memory bound); the default runs
        them all at once.
    progress : bool, optional
        Show a progress bar; None shows one when stderr is a terminal.
    pad_like : list of Runs, optional
        Pad at least as much as for these data sets (subsets of them then
        share their compiled program).  With ``batch_size``, every call is
        padded to ``batch_size`` data sets for the same reason.
    desc : str, optional
        Label of the progress bar.
    keep_state : bool
        Also return a :class:`Continuation`: the chains' final states, from
        which :func:`resume` continues them.

    Returns
    -------
    list of Draws, or (list of Draws, Continuation) with ``keep_state``
    """
    import jax

    _ensure_cache()
    K = len(datasets)
    devices = tuple(_devices(auto_device(K * settings.chains) if device is None else device))
    like = list(datasets) + list(pad_like or [])
    n_pad = bucket_size(max(len(r) for r in like))
    g_pad = bucket_size(max(r.n_budgets for r in like))
    k_pad = None
    n_dims = len(spec.sites)
    if spec.pooling is not None:
        from .hierarchy import group_slots, vector_sites

        k_pad = group_slots(max(r.n_groups for r in like))
        n_dims += (k_pad - 1) * len(vector_sites(spec.pooling, spec.centering, spec.bend != "none"))
    per_call = _auto_batch(K, n_pad, g_pad, settings, devices, n_dims) if batch_size is None else max(1, int(batch_size))
    n_calls = math.ceil(K / per_call)
    chains = settings.chains
    # the batch axis (data sets x chains) must split evenly across devices
    slots = per_call * chains
    slots += (-slots) % len(devices)

    placement = _placement(devices)
    total = settings.warmup + settings.draws
    n_chunks = math.ceil(total / settings.chunk)
    desc = desc or f"NUTS {K} data set{'s' * (K > 1)} x {chains} chains"
    bar = _progress_bar(n_chunks * settings.chunk * n_calls, progress, desc)
    results: list[Draws] = []
    calls: list = []
    t_start = time.perf_counter()

    def stage(what: str):
        if bar is not None:
            bar.set_description(f"{desc}: {what}")

    def run_call(programs, keys, data, compiling=False):
        """All chunks of one call; returns the kept chunk outputs and the final states."""
        states = programs.init(keys, data)
        outs = []
        for i in range(n_chunks):
            if not (compiling and i == 0):  # the first advance call compiles it
                stage("warm-up" if i * settings.chunk < settings.warmup else "sampling")
            states, out = programs.advance(states, data)
            out = jax.device_get(out)
            _COMPILES["round_trips"] += 1
            if (i + 1) * settings.chunk > settings.warmup:
                outs.append((i, out))
            if bar is not None:
                bar.update(settings.chunk)
        return outs, states

    try:
        for c in range(n_calls):
            ks = list(range(c * per_call, min(K, (c + 1) * per_call)))
            elems = [(k, ch) for k in ks for ch in range(chains)]
            elems += [elems[-1]] * (slots - len(elems))  # padding slots repeat the last chain
            cache: dict[int, dict] = {}
            per = [cache.setdefault(k, model_data(datasets[k], spec, n_pad, g_pad, k_pad)) for k, _ in elems]
            data = {name: np.stack([d[name] for d in per]) for name in per[0]}
            data["step_scale"] = np.ones(slots, dtype=np.float32)  # see resume
            keys = np.array([(seed, k, ch) for k, ch in elems], dtype=np.uint32)
            if c == 0:
                spec_args = (spec.structure + (prior_leaves(spec, datasets[0])[1],), settings, devices,
                             (keys.shape, keys.dtype), tuple((k, (v.shape, v.dtype)) for k, v in sorted(data.items())))
            # committed to the chosen devices: a single-device program would otherwise run on JAX's
            # default device (the GPU, on a GPU machine asked for device="cpu"), and the data cross once
            keys, data = jax.device_put((keys, data), placement)
            t0 = time.perf_counter()
            if c == 0:
                new = spec_args not in _LOADED
                if new:  # tracing and compiling take seconds: say so, the bar would sit at 0%
                    stage("compiling (once per data size and settings)")
                programs = _programs(*spec_args)
                try:
                    outs, states = run_call(programs, keys, data, compiling=new)
                except Exception:
                    if programs.source != "disk":
                        raise
                    # a stored program that loads but fails to run (a damaged or foreign cache entry):
                    # trace and compile afresh, replace the entry, and start this call again
                    if bar is not None:
                        bar.reset(total=bar.total)
                    stage("compiling (the cached program failed; replacing it)")
                    programs = _programs(*spec_args, fresh=True)
                    outs, states = run_call(programs, keys, data, compiling=True)
            else:
                outs, states = run_call(programs, keys, data)
            elapsed = time.perf_counter() - t0
            results.extend(_split(outs, ks, chains, settings, settings.warmup, elapsed, devices))
            if keep_state:
                calls.append((ks, programs, states, data))
    finally:
        if bar is not None:
            bar.close()
    for d in results:
        d.timing["total"] = time.perf_counter() - t_start
    if keep_state:
        return results, Continuation(tuple(calls), settings, chains, devices, progress, desc)
    return results


@dataclass(frozen=True)
class Continuation:
    """The final states of a :func:`sample` run (``keep_state=True``), to continue with :func:`resume`."""

    calls: tuple  # per program call: (data set indices, programs, states, data)
    settings: SamplerSettings
    chains: int
    devices: tuple
    progress: bool | None
    desc: str


def resume(cont: Continuation, *, step_scale: float) -> list[Draws]:
    """Continue every chain of a finished run for ``settings.draws`` more draws, with a scaled step size.

    The chains go on from their last states with the adapted mass matrix
    and ``step_scale`` times the adapted step size (NUTS with any fixed
    step size leaves the posterior invariant), on the same compiled
    program.  :func:`bayesscale.fit` uses it for the retry of a fit whose
    only failed check is divergent transitions: it costs the sampling
    phase alone, where a fresh run repeats the warm-up.

    Returns
    -------
    list of Draws
        The new draws, in the order of the original data sets.
    """
    import jax

    settings, chunk = cont.settings, cont.settings.chunk
    n_chunks = math.ceil(settings.draws / chunk)
    desc = f"{cont.desc}: continuing with {step_scale:g} x the step size"
    bar = _progress_bar(n_chunks * chunk * len(cont.calls), cont.progress, desc)
    results: list[Draws] = []
    try:
        for ks, programs, states, data in cont.calls:
            data = dict(data, step_scale=np.full_like(data["step_scale"], step_scale))
            t0 = time.perf_counter()
            outs = []
            for i in range(n_chunks):
                states, out = programs.advance(states, data)
                outs.append((i, jax.device_get(out)))
                _COMPILES["round_trips"] += 1
                if bar is not None:
                    bar.update(chunk)
            results.extend(_split(outs, ks, cont.chains, settings, 0, time.perf_counter() - t0, cont.devices))
    finally:
        if bar is not None:
            bar.close()
    return results


def _split(outs, ks, chains, settings: SamplerSettings, lo: int, elapsed: float, devices) -> list[Draws]:
    """Cut ``settings.draws`` draws from transition ``lo`` on out of the chunk outputs, per data set."""
    chunk, hi = settings.chunk, lo + settings.draws

    def keep(get):
        parts = []
        for i, out in outs:
            a = np.asarray(get(out))
            s, e = max(lo - i * chunk, 0), min(hi - i * chunk, chunk)
            parts.append(a[:, s:e])
        return np.concatenate(parts, axis=1)

    z = {name: keep(lambda o, n=name: o["z"][n]) for name in outs[0][1]["z"]}
    stats = {name: keep(lambda o, n=name: o[n]) for name in
             ("diverging", "num_steps", "accept_prob", "step_size", "energy", "potential_energy")}
    stats["tree_depth"] = np.floor(np.log2(np.maximum(stats["num_steps"], 1))).astype(np.int64) + 1
    stats["reached_max_depth"] = stats["num_steps"] >= 2 ** settings.max_tree_depth - 1
    device = f"{devices[0].platform} x{len(devices)}"
    draws = []
    for j, _ in enumerate(ks):
        sl = slice(j * chains, (j + 1) * chains)
        draws.append(Draws(samples={k: v[sl] for k, v in z.items()},
                           stats={k: v[sl] for k, v in stats.items()},
                           timing={"sampling": elapsed}, device=device))
    return draws
