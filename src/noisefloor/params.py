"""Parse and validate ``params.yaml``: the one source of truth of an experiment.

No other module opens the YAML. :func:`load` returns frozen dataclasses, checked
against ``schemas/params.schema.yaml`` plus the rules a schema cannot express
(signal seeds among the noise seeds, the baseline name not reused, ...). Every
problem raises :class:`ParamsError` with one line naming the offending key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from .errors import NoisefloorError
from .vocab import hp_column, inert_sources


#: The sources of randomness a built-in run's seed can vary (see noisefloor.decompose).
SOURCES = ("init", "order", "dropout", "data")
#: What a seed varies unless seeds.sources says otherwise: the data split stays fixed.
DEFAULT_SOURCES = ("init", "order", "dropout")
#: A decomposition's extra source: the reference seed with non-deterministic kernels (CUDA only).
NUMERIC = "numeric"
_FLOAT_LIKE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ParamsError(NoisefloorError, ValueError):
    """A params file is malformed; the message is one line naming the key."""


@dataclass(frozen=True)
class DataParams:
    """Which dataset, and how it is split.

    Attributes
    ----------
    dataset : {"digits", "fashion-mnist", "mnist"}
    root : str or None
        IDX directory (fashion-mnist) or download folder (mnist); None = default.
    cache_dir : str
        Where decompressed files are staged.
    val_fraction, test_fraction : float
        Validation share of the training set; test share for datasets without
        an official test split.
    split_seed : int
        Fixes the splits; never varies with the run's seed.
    train_subset : int or None
        Keep only the first N training images (for quick tests).
    """

    dataset: str = "digits"
    root: str | None = None
    cache_dir: str = "data"
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 0
    train_subset: int | None = None


@dataclass(frozen=True)
class ModelParams:
    """The BiLSTM classifier's shape (see :mod:`noisefloor.models`)."""

    hidden_size: int = 128
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0
    pooling: str = "last"


@dataclass(frozen=True)
class TrainParams:
    """Optimisation settings; the values under ``train:`` are the baseline's."""

    optimizer: str = "adam"
    lr: float = 0.003
    momentum: float = 0.9
    batch_size: int = 100
    epochs: int = 10
    weight_decay: float = 0.0
    grad_clip: float | None = None
    lr_schedule: str = "constant"
    threads: int = 1
    device: str = "auto"
    keep_checkpoint: bool = False
    seed_batch: int = 1


@dataclass(frozen=True)
class StatsParams:
    """Analysis settings (see :func:`noisefloor.stats.analyze`)."""

    metric: str = "val_acc"
    direction: str = "max"
    baseline: str = "baseline"
    alpha: float = 0.05
    correction: str = "sidak"
    confidence_level: float = 0.95
    power: float = 0.8
    equivalence_margin: float | None = None
    n_boot: int = 2000


@dataclass(frozen=True)
class ResourceParams:
    """What each training job asks a scheduler for; never part of a run's identity."""

    mem_mb: int = 2000
    runtime: int = 60
    gpus: int = 0


@dataclass(frozen=True)
class MlflowTarget:
    """``tracking.mlflow``: where the runs go (tracking_uri None: MLflow's default, ``MLFLOW_TRACKING_URI``)."""

    experiment: str = "noisefloor"
    tracking_uri: str | None = None


@dataclass(frozen=True)
class WandbTarget:
    """``tracking.wandb``: the W&B project; ``mode`` offline writes the runs under the results folder's wandb/."""

    project: str = "noisefloor"
    entity: str | None = None
    mode: str = "online"


@dataclass(frozen=True)
class TrackingParams:
    """The experiment trackers that get the runs and the analysis (:mod:`noisefloor.trackers`); None = not used."""

    mlflow: MlflowTarget | None = None
    wandb: WandbTarget | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> "TrackingParams":
        raw = raw or {}
        return cls(mlflow=MlflowTarget(**raw["mlflow"]) if raw.get("mlflow") is not None else None,
                   wandb=WandbTarget(**raw["wandb"]) if raw.get("wandb") is not None else None)

    @property
    def any(self) -> bool:
        return self.mlflow is not None or self.wandb is not None


@dataclass(frozen=True)
class ProgramParams:
    """What a run executes: the user's program (``command`` or ``entry``), or the built-in BiLSTM.

    Attributes
    ----------
    command : str or None
        A command template (see :mod:`noisefloor.program`).
    entry : str or None
        ``module:function`` or ``path/to/file.py:function``.
    deps : tuple of str
        Files or folders whose content shapes the results (relative to ``root``).
    threads : int
        CPU threads a run uses: the scheduler's request, and the thread
        variables the program is started with.
    resumes : bool
        The program continues from its own checkpoints in its output folder.
    keep_outputs : bool
        Keep the program's output folder after its run is recorded.
    check_determinism : bool
        Train the baseline's first noise seed twice and record whether it repeats.
    parse : mapping of str to str
        Metrics read from the program's output: a regular expression with one
        group per metric (the last match is the value; several matches are its
        per-epoch history). With it, ``metrics.json`` and ``{out}`` are optional.
    metrics_file : str or None
        Where under ``{out}`` (the run's working folder) the program writes its
        metrics instead of ``metrics.json``: a JSON object, or a CSV log (its
        last row's numbers; several rows are the history). A glob may match one file.
    root : str
        The params file's folder: the program runs there, and deps and entry
        files are found from there. Not part of a run's identity.
    """

    command: str | None = None
    entry: str | None = None
    deps: tuple[str, ...] = ()
    threads: int = 1
    resumes: bool = False
    keep_outputs: bool = False
    check_determinism: bool = False
    parse: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    metrics_file: str | None = None
    root: str = "."

    @property
    def builtin(self) -> bool:
        """True for the built-in BiLSTM (neither a command nor an entry point)."""
        return self.command is None and self.entry is None

    @property
    def out_optional(self) -> bool:
        """Its metrics are read from its output or from a file it names, so a command need not take ``{out}``."""
        return bool(self.parse) or self.metrics_file is not None

    @property
    def writes_metrics_file(self) -> bool:
        """It writes a metrics file noisefloor reads (an entry point's ``out``, a command's ``{out}``, or
        ``program.metrics_file`` in its working folder)."""
        from .program import placeholders

        return self.command is None or self.metrics_file is not None or "out" in placeholders(self.command)

    @property
    def root_path(self) -> Path:
        return Path(self.root).resolve()

    def identity(self) -> dict[str, Any]:
        """What of the program is part of each run's identity: what runs, and with how many threads."""
        what = {"command": self.command} if self.command is not None else {"entry": self.entry}
        read = {"parse": dict(self.parse)} if self.parse else {}      # how its metrics are read shapes them too
        if self.metrics_file is not None:
            read["metrics_file"] = self.metrics_file
        return {**what, "threads": self.threads, **read}

    def describe(self) -> str:
        """The command template or entry point, as the report names it."""
        return self.command if self.command is not None else f"entry {self.entry}"

    @property
    def fingerprint(self) -> str:
        """The content hash of ``deps`` (see :func:`noisefloor.program.deps_fingerprint`)."""
        from .program import deps_fingerprint

        return deps_fingerprint(self.root_path, self.deps)


@dataclass(frozen=True)
class ProgramConfig:
    """One configuration of a user's program: the baseline's hyperparameters with a variant's overrides.

    The same interface as :class:`RunConfig` where the pipeline needs one
    (``name``, ``config_hash``, ``hyperparameters()``, ``threads``,
    ``seed_batch``, ``code_fingerprint``); a run is (config_hash, seed).
    """

    name: str
    program: ProgramParams
    hparams: Mapping[str, Any]
    seed_batch = 1

    def as_dict(self) -> dict[str, Any]:
        return {"program": self.program.identity(), "hyperparameters": dict(self.hparams)}

    @property
    def config_hash(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def threads(self) -> int:
        return self.program.threads

    @property
    def code_fingerprint(self) -> str:
        return self.program.fingerprint

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as flat ``hp.<key>`` columns (lists and mappings as JSON text)."""
        return {hp_column(k): json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in self.hparams.items()}


@dataclass(frozen=True)
class RunConfig:
    """One fully resolved configuration: the baseline with a variant's overrides.

    ``config_hash`` identifies everything that shapes a run's result except the
    seed; a run is (config_hash, seed).
    """

    name: str
    data: DataParams
    model: ModelParams
    train: TrainParams
    #: the sources of randomness the run's seed varies; the others stay at ``held_at`` (the data
    #: split, when held, is the fixed one of ``data.split_seed``)
    sources: tuple[str, ...] = DEFAULT_SOURCES
    held_at: int = 0
    #: added to the seed of every varying stream (the decomposition's all-sources runs: see noisefloor.decompose)
    stream_offset: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = {
            "data": dataclasses.asdict(self.data),
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
        }
        # The default (init, order and dropout follow the seed) leaves hashes as they were before sources existed.
        if self.sources != DEFAULT_SOURCES or self.held_at != 0 or self.stream_offset:
            d["seeds"] = {"sources": list(self.sources), "held_at": self.held_at,
                          **({"stream_offset": self.stream_offset} if self.stream_offset else {})}
        return d

    def stream_seed(self, seed: int, source: str) -> int | None:
        """The seed of ``source``'s random stream in run ``seed``.

        The run's own seed (plus ``stream_offset``) for a source the config
        varies, else ``held_at``; for a held data split, None (the fixed split
        of ``data.split_seed``).
        """
        if source in self.sources:
            return seed + self.stream_offset
        return None if source == "data" else self.held_at

    @property
    def deterministic(self) -> bool:
        """Deterministic kernels (always, but in the decomposition's numeric runs)."""
        return NUMERIC not in self.sources

    @property
    def config_hash(self) -> str:
        # keep_checkpoint only decides what is left on disk, not the result.
        d = self.as_dict()
        d["train"].pop("keep_checkpoint")
        # seed_batch > 1 rounds differently (see noisefloor.batched), so it is
        # part of the identity; the default leaves hashes as they were before it existed.
        if d["train"]["seed_batch"] == 1:
            d["train"].pop("seed_batch")
        if d["train"]["lr_schedule"] == "constant":          # (likewise: the default leaves hashes as they were)
            d["train"].pop("lr_schedule")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def threads(self) -> int:
        return self.train.threads

    @property
    def seed_batch(self) -> int:
        return self.train.seed_batch

    @property
    def code_fingerprint(self) -> str:
        """The content hash of the package code that shapes a run's numbers."""
        from .pipeline import run_code_fingerprint

        return run_code_fingerprint()

    def hyperparameters(self) -> dict[str, Any]:
        """Model and training hyperparameters as flat ``hp.<key>`` columns."""
        skip = {"threads", "device", "keep_checkpoint", "seed_batch"}
        out = {hp_column(k): v for k, v in dataclasses.asdict(self.model).items()}
        out.update({hp_column(k): v for k, v in dataclasses.asdict(self.train).items() if k not in skip})
        return out


MODEL_KEYS = frozenset(f.name for f in dataclasses.fields(ModelParams))
TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainParams))


@dataclass(frozen=True)
class Params:
    """A validated params file.

    Attributes
    ----------
    data, model, train : the built-in model's sections (train = the baseline); None with a program
    stats, resources : the sections as dataclasses
    program : what a run executes (the built-in model unless a command or entry is given)
    hyperparameters : with a program, the baseline's hyperparameters (read-only); else None
    configs : mapping of variant name -> overrides (read-only)
    noise_seeds : seeds of the baseline's runs (noise condition)
    signal_seeds : seeds at which every variant runs (signal condition); a
        subset of ``noise_seeds`` so every comparison can be paired by seed
    source : path the params were read from
    """

    data: DataParams | None
    model: ModelParams | None
    train: TrainParams | None
    stats: StatsParams
    resources: ResourceParams
    configs: Mapping[str, Mapping[str, Any]]
    noise_seeds: tuple[int, ...]
    signal_seeds: tuple[int, ...]
    source: str = field(default="params.yaml")
    program: ProgramParams = field(default_factory=ProgramParams)
    hyperparameters: Mapping[str, Any] | None = None
    sweep: Any = None     # noisefloor.sweep.SweepParams or None
    sweep_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: seeds.sources: what every config's seed varies (the built-in model)
    sources: tuple[str, ...] = DEFAULT_SOURCES
    decompose: Any = None     # DecomposeParams or None
    #: the decomposition's configs: name -> the sources its seed varies
    decompose_configs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    adaptive: Any = None      # AdaptiveParams or None
    tracking: TrackingParams = field(default_factory=TrackingParams)

    @property
    def baseline(self) -> str:
        return self.stats.baseline

    @property
    def config_names(self) -> tuple[str, ...]:
        """The baseline first, then the named variants in file order, the sweep's configs, the decomposition's."""
        return (self.baseline, *self.configs, *self.sweep_configs, *self.decompose_configs)

    @property
    def same_configs(self) -> list[list[str]]:
        """Groups of configs that are one config under several names (the same config hash: the same runs),
        each in :attr:`config_names` order (the baseline first when among them)."""
        groups: dict[str, list[str]] = {}
        for name in self.config_names:
            if name not in self.decompose_configs:
                groups.setdefault(self.resolve(name).config_hash, []).append(name)
        return [names for names in groups.values() if len(names) > 1]

    def resolve(self, name: str) -> RunConfig | ProgramConfig:
        """The full configuration of ``name`` (baseline or a variant)."""
        if name == self.baseline:
            overrides: Mapping[str, Any] = {}
        elif name in self.configs:
            overrides = self.configs[name]
        elif name in self.sweep_configs:
            overrides = self.sweep_configs[name]
        elif name in self.decompose_configs:
            from .decompose import ALL, ALL_OFFSET, config_name

            return dataclasses.replace(self.resolve(self.baseline), name=name, sources=self.decompose_configs[name],
                                       held_at=self.decompose.reference,
                                       stream_offset=ALL_OFFSET if name == config_name(ALL) else 0)
        else:
            known = ", ".join(self.config_names)
            raise ParamsError(f"{self.source}: unknown config {name!r} (known: {known})")
        if not self.program.builtin:
            return ProgramConfig(name, self.program, MappingProxyType({**self.hyperparameters, **overrides}))
        model = dataclasses.replace(self.model, **{k: v for k, v in overrides.items() if k in MODEL_KEYS})
        train = dataclasses.replace(self.train, **{k: v for k, v in overrides.items() if k in TRAIN_KEYS})
        return RunConfig(name=name, data=self.data, model=model, train=train, sources=self.sources)

    def seeds_for(self, name: str) -> tuple[int, ...]:
        """Seeds at which config ``name`` runs."""
        if name == self.baseline:
            return self.noise_seeds
        if name in self.decompose_configs:
            return self.decompose.seeds
        return self.sweep.seeds if name in self.sweep_configs else self.signal_seeds

    def runs(self) -> list[tuple[str, int]]:
        """Every (config, seed) training run the experiment needs, in a stable order."""
        return [(name, seed) for name in self.config_names for seed in self.seeds_for(name)]

    def seed_batches(self) -> list[tuple[str, tuple[int, ...]]]:
        """(config, seeds) of each batched training job: a config with ``train.seed_batch`` K > 1 trains its
        seeds in blocks of ``seed // K`` (one job, one stacked model, per block)."""
        batches = []
        for name in self.config_names:
            k = self.resolve(name).seed_batch
            if k > 1:
                blocks: dict[int, list[int]] = {}
                for s in sorted(self.seeds_for(name)):
                    blocks.setdefault(s // k, []).append(s)
                batches += [(name, tuple(seeds)) for _, seeds in sorted(blocks.items())]
        return batches


# --------------------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def schema() -> dict:
    """The params JSON schema (shared by every engine)."""
    text = resources.files("noisefloor").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error, source: str) -> str:
    """One line for a jsonschema error, naming the key and what is expected."""
    where = _key_path(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{source}: {where}: unknown key {', '.join(map(repr, extra))} (allowed: {allowed})"
    if (v == "propertyNames" or "propertyNames" in error.schema_path) and where == "hyperparameters":
        return (f"{source}: hyperparameters: name {error.instance!r} is not allowed (letters, digits and _, "
                "not starting with a digit: it is also a placeholder and a column name)")
    if v == "propertyNames" or "propertyNames" in error.schema_path:
        return (f"{source}: {where}: config name {error.instance!r} is not allowed "
                "(use letters, digits and _ only)")
    if v == "required":
        return f"{source}: {where}: {error.message}"
    if v == "type" and isinstance(error.instance, str) and _FLOAT_LIKE.match(error.instance.strip()):
        return (f"{source}: {where}: {error.instance!r} was read as text, not a number "
                "(it is quoted: write 0.0001 or 1.0e-4 without quotes)")
    if v == "enum":
        opts = ", ".join(map(repr, error.validator_value))
        return f"{source}: {where}: {error.instance!r} is not one of {opts}"
    if v == "minItems" and error.instance == []:
        return f"{source}: {where}: must not be empty"
    if v == "minItems":
        return f"{source}: {where}: needs at least {error.validator_value} entries (got {len(error.instance)})"
    if v == "uniqueItems":
        dup = sorted({x for x in error.instance if error.instance.count(x) > 1})
        return f"{source}: {where}: duplicated seeds {dup}"
    return f"{source}: {where}: {error.message}"


def _validate(raw: Any, source: str) -> None:
    import jsonschema

    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        # The deepest-first ordering of best_match picks the most specific key.
        best = jsonschema.exceptions.best_match(errors)
        raise ParamsError(_describe(best, source))


def from_dict(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping and build :class:`Params`."""
    _validate(raw, source)
    stats = StatsParams(**raw.get("stats") or {})
    configs = raw.get("configs") or {}
    from . import decompose as D, sweep as S

    # Names the pipeline keeps for itself: its folders, and the prefixes of the configs it makes (their runs
    # live in those folders, so a named config or a baseline taking one would lose its runs).
    for name in (*configs, stats.baseline):
        where = f"configs.{name}" if name in configs else "stats.baseline"
        for prefix, folder, whose in ((S.PREFIX, S.FOLDER, "a sweep's"), (D.PREFIX, D.FOLDER, "the decomposition's")):
            if name.startswith(prefix) or name == folder:
                raise ParamsError(f"{source}: {where}: names starting with {prefix} (and {folder!r}) are "
                                  f"{whose}; name the config otherwise")
    if stats.baseline in configs:
        raise ParamsError(f"{source}: configs.{stats.baseline}: the baseline is the train/model sections; "
                          "do not list it among the variants")
    noise, signal = raw["seeds"]["noise"], raw["seeds"]["signal"]
    missing = [s for s in signal if s not in noise]
    if missing:
        raise ParamsError(f"{source}: seeds.signal: {missing} not in seeds.noise "
                          "(the baseline must run at every signal seed so comparisons pair by seed)")
    program = ProgramParams(**{**(raw.get("program") or {}), "root": str(Path(source).parent)})
    program = dataclasses.replace(program, deps=tuple(program.deps), parse=MappingProxyType(dict(program.parse)))
    _check_program(raw, program, source)
    if program.builtin:
        from .runfiles import BUILTIN_METRICS

        if stats.metric not in BUILTIN_METRICS:
            raise ParamsError(f"{source}: stats.metric: {stats.metric!r} is not a number the built-in model records "
                              f"({', '.join(BUILTIN_METRICS)})")
    if program.parse and stats.metric not in program.parse and not program.writes_metrics_file:
        raise ParamsError(f"{source}: stats.metric: {stats.metric!r} is not in program.parse (it has: "
                          f"{', '.join(program.parse)}) and the command has no {{out}} to write metrics.json into")
    builtin = program.builtin
    params = Params(
        data=DataParams(**raw["data"]) if builtin else None,
        model=ModelParams(**raw.get("model") or {}) if builtin else None,
        train=TrainParams(**raw.get("train") or {}) if builtin else None,
        program=program,
        hyperparameters=None if builtin else MappingProxyType(dict(raw["hyperparameters"])),
        stats=stats,
        resources=ResourceParams(**raw.get("resources") or {}),
        tracking=TrackingParams.from_raw(raw.get("tracking")),
        configs=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in configs.items()}),
        noise_seeds=tuple(noise),
        signal_seeds=tuple(signal),
        source=source,
    )
    params = _with_sources(params, raw, source)
    if "sweep" in raw:
        params = _with_sweep(params, raw, source)
    for name in params.configs:   # every variant must resolve to a valid whole
        params.resolve(name)
    if "adaptive" in raw:
        params = _with_adaptive(params, raw, source)
    _check_rendering(params)
    if params.program.check_determinism and params.program.builtin and any(
            params.resolve(c).seed_batch > 1 for c in params.config_names):
        raise ParamsError(f"{source}: program.check_determinism: not with train.seed_batch > 1 (a batched run "
                          "and its repeat alone round differently); run `noisefloor check-determinism` instead")
    return params


def _check_rendering(params: Params) -> None:
    """Every config's command line can be filled in (a ``{lr:.0e}`` of a text value fails here, not in a run)."""
    from .program import check_rendering

    if params.program.command is None:
        return
    for name in params.config_names:
        problem = check_rendering(params.program.command, params.resolve(name).hparams)
        if problem:
            where = "hyperparameters" if name == params.baseline else f"configs.{name}"
            raise ParamsError(f"{params.source}: {where}: {problem}")


@dataclass(frozen=True)
class DecomposeParams:
    """The ``decompose`` section: the seeds each source runs at, the sources, the reference seed."""

    seeds: tuple[int, ...]
    sources: tuple[str, ...]
    reference: int
    #: sources asked for that nothing in this model varies, each with why (dropout with no dropout)
    left_out: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class AdaptiveParams:
    """The ``adaptive`` section (see the schema): the cap, the step, the budget and how the error is spent."""

    max_seeds: int
    step: int
    max_runs: int | None = None
    grow_baseline: bool = False
    spending: str = "obrien_fleming"
    futility: bool = True


def _with_adaptive(params: Params, raw: dict, source: str) -> Params:
    """``params`` with its adaptive section; one line naming the key on a problem."""
    section = raw["adaptive"]
    n_signal = len(params.signal_seeds)
    adaptive = AdaptiveParams(**{"step": n_signal, **section})
    if not params.configs:
        raise ParamsError(f"{source}: adaptive: no variant under configs to give more seeds to")
    if adaptive.max_seeds < n_signal:
        raise ParamsError(f"{source}: adaptive.max_seeds: {adaptive.max_seeds} is below the {n_signal} seeds.signal "
                          "every variant starts with")
    if params.sweep is not None or params.decompose is not None:
        which = "sweep" if params.sweep is not None else "decompose"
        raise ParamsError(f"{source}: adaptive: not with a {which} section yet (adaptive seeds grow the named "
                          "configs); remove one of the two")
    if params.program.builtin and any(params.resolve(c).seed_batch > 1 for c in params.config_names):
        raise ParamsError(f"{source}: adaptive: not with train.seed_batch > 1 (a batch job's seeds are fixed "
                          "before the rounds choose them); use seed_batch 1")
    first = len(params.noise_seeds) + n_signal * len(params.configs)
    if adaptive.max_runs is not None and adaptive.max_runs < first:
        raise ParamsError(f"{source}: adaptive.max_runs: {adaptive.max_runs} is below the first round's {first} "
                          "runs (the baseline's noise seeds and every variant's signal seeds)")
    return dataclasses.replace(params, adaptive=adaptive)


def _with_sources(params: Params, raw: dict, source: str) -> Params:
    """``params`` with seeds.sources and the decomposition's configs (one line naming the key on a problem)."""
    from . import decompose as D

    given = raw["seeds"].get("sources") or DEFAULT_SOURCES
    sources = tuple(s for s in SOURCES if s in given)          # in one order, however written
    section = raw.get("decompose")
    if not params.program.builtin:
        if sources != DEFAULT_SOURCES:
            raise ParamsError(f"{source}: seeds.sources: the built-in model's setting; a program's seed varies "
                              "whatever the program makes it vary")
        if section is not None:
            raise ParamsError(f"{source}: decompose: only for the built-in model, whose sources of randomness "
                              "noisefloor controls one by one; a program owns its randomness")
        return params
    batched = params.train.seed_batch > 1 or any(int(v.get("seed_batch", 1)) > 1 for v in params.configs.values())
    if batched and sources != DEFAULT_SOURCES:
        raise ParamsError(f"{source}: seeds.sources: not with train.seed_batch > 1 (a batch shares one data "
                          "split and one set of streams); use seed_batch 1")
    if batched and section is not None:
        raise ParamsError(f"{source}: decompose: not with train.seed_batch > 1 yet; use seed_batch 1")
    params = dataclasses.replace(params, sources=sources)
    if section is None:
        return params
    order = (*SOURCES, NUMERIC)
    chosen = tuple(s for s in order if s in (section.get("sources") or SOURCES))
    # A source nothing varies in this model is left out (its runs would all be the reference run), with why.
    left_out = {k: why for k, why in inert_sources(params.model.dropout, params.model.num_layers).items()
                if k in chosen}
    if left_out:
        chosen = tuple(s for s in chosen if s not in left_out)
        if not chosen:
            raise ParamsError(f"{source}: decompose.sources: dropout is all it names, and {left_out['dropout']}")
    seeds = tuple(section["seeds"])
    # (the default reference is a seed none of the runs varies with, so no run of one source is the reference run)
    decompose = DecomposeParams(seeds=seeds, sources=chosen, reference=section.get("reference", max(seeds) + 1),
                                left_out=MappingProxyType(left_out))
    configs = {D.config_name(s): (s,) for s in chosen}
    varied = tuple(s for s in chosen if s != NUMERIC)
    if len(varied) > 1:
        configs[D.config_name(D.ALL)] = varied
    return dataclasses.replace(params, decompose=decompose, decompose_configs=MappingProxyType(configs))


def _with_sweep(params: Params, raw: dict, source: str) -> Params:
    """``params`` with its sweep expanded (see :mod:`noisefloor.sweep`); one line naming the key on a problem."""
    from . import sweep as S

    section = raw["sweep"]
    problem = S.problem(section)
    if problem:
        raise ParamsError(f"{source}: sweep.{problem}")
    # Keys that say how a run executes, not what it learns, are not searched.
    execution = {"threads", "device", "keep_checkpoint", "seed_batch"}
    known = set(params.hyperparameters) if not params.program.builtin else (MODEL_KEYS | TRAIN_KEYS) - execution
    for name in section["parameters"]:
        if name in execution and params.program.builtin:
            raise ParamsError(f"{source}: sweep.parameters.{name}: how a run executes, not a hyperparameter "
                              "to search")
        if name not in known:
            what = "a hyperparameter" if not params.program.builtin else "a model or train key"
            raise ParamsError(f"{source}: sweep.parameters.{name}: not {what} (known: {', '.join(sorted(known))})")
    seeds = tuple(section.get("seeds") or params.signal_seeds[:1])
    missing = [s for s in seeds if s not in params.noise_seeds]
    if missing:
        raise ParamsError(f"{source}: sweep.seeds: {missing} not in seeds.noise "
                          "(the baseline must run at every seed a config runs at)")
    confirm = section.get("confirm") or {}
    if confirm:
        missing = [s for s in confirm["seeds"] if s not in params.noise_seeds]
        if missing:
            raise ParamsError(f"{source}: sweep.confirm.seeds: {missing} not in seeds.noise "
                              "(the baseline must run at every seed a config runs at)")
        reused = [s for s in confirm["seeds"] if s in seeds]
        if reused:
            raise ParamsError(f"{source}: sweep.confirm.seeds: {reused} already searched (sweep.seeds); "
                              "a confirmation needs fresh seeds")
    sweep = S.SweepParams(method=section["method"], count=section.get("count"), seed=section.get("seed", 0),
                          seeds=seeds, parameters=MappingProxyType(dict(section["parameters"])),
                          confirm_top_k=confirm.get("top_k"), confirm_seeds=tuple(confirm.get("seeds", ())))
    configs = S.expand(sweep)
    if confirm and params.program.builtin and params.train.seed_batch > 1:
        raise ParamsError(f"{source}: sweep.confirm: not with train.seed_batch > 1 yet (batched jobs are fixed "
                          "before the search picks its best configs); confirm with seed_batch 1")
    if confirm and confirm["top_k"] > len(configs):
        raise ParamsError(f"{source}: sweep.confirm.top_k: {confirm['top_k']} is more than the sweep's "
                          f"{len(configs)} configs")
    if not params.program.builtin:
        for values in configs.values():
            for key, value in values.items():
                _require_plain(value, f"{source}: sweep.parameters.{key}")
    if params.program.builtin:
        # Drawn values must be valid overrides (an integer hidden size, a dropout below 1, ...).
        try:
            _validate({**{k: v for k, v in raw.items() if k != "sweep"}, "configs": configs}, source)
        except ParamsError as exc:
            raise ParamsError(f"{exc} (a value the sweep drew: fix sweep.parameters)") from None
    return dataclasses.replace(params, sweep=sweep, sweep_configs=MappingProxyType(
        {k: MappingProxyType(v) for k, v in configs.items()}))


def _require_plain(value: Any, where: str, hint: str = "") -> None:
    """One line naming ``where`` unless ``value`` is plain YAML (what a program's command line and JSON carry)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ParamsError(f"{where}: {value!r} is not a plain YAML value (a number, text, true/false, null or "
                          f"a list or mapping of them{hint})") from None


def _check_program(raw: dict, program: ProgramParams, source: str) -> None:
    """The rules of the program section that a schema cannot express (one line naming the key)."""
    from .program import check_command, check_entry, check_pattern

    if program.builtin:
        if "hyperparameters" in raw:
            raise ParamsError(f"{source}: hyperparameters: only with program.command or program.entry "
                              "(the built-in model's are under model: and train:)")
        for key in ("deps", "resumes", "keep_outputs", "threads", "parse", "metrics_file"):
            if key in (raw.get("program") or {}):
                raise ParamsError(f"{source}: program.{key}: only with program.command or program.entry "
                                  "(the built-in model's code, threads and checkpoints are its own)")
        return
    if program.command is not None and program.entry is not None:
        raise ParamsError(f"{source}: program: give command or entry, not both")
    for section in ("data", "model", "train"):
        if section in raw:
            raise ParamsError(f"{source}: {section}: applies to the built-in model only; with a program, "
                              "its settings are under hyperparameters:")
    from .program import RESERVED

    hparams = raw["hyperparameters"]
    if not hparams:
        raise ParamsError(f"{source}: hyperparameters: must not be empty (the baseline's values)")
    for name in hparams:
        if name in RESERVED:
            raise ParamsError(f"{source}: hyperparameters.{name}: the name is reserved for {RESERVED[name]} "
                              f"({{{name}}}); rename the hyperparameter")
    for where, values in [("hyperparameters", hparams),
                          *((f"configs.{c}", o) for c, o in (raw.get("configs") or {}).items())]:
        for key, value in values.items():
            _require_plain(value, f"{source}: {where}.{key}", "; quote a date")
    for name, overrides in (raw.get("configs") or {}).items():
        unknown = [k for k in overrides if k not in hparams]
        if unknown:
            raise ParamsError(f"{source}: configs.{name}.{unknown[0]}: not a hyperparameter "
                              f"(hyperparameters: {', '.join(hparams)})")
    if program.metrics_file is not None and (Path(program.metrics_file).is_absolute()
                                             or ".." in Path(program.metrics_file).parts):
        raise ParamsError(f"{source}: program.metrics_file: {program.metrics_file!r} must be a path inside the "
                          "run's working folder ({out}), e.g. metrics.csv or logs/*/metrics.csv")
    for metric, pattern in program.parse.items():
        problem = check_pattern(pattern)
        if problem:
            raise ParamsError(f"{source}: program.parse.{metric}: {problem}")
    if program.command is not None:
        problem = check_command(program.command, hparams, out_optional=program.out_optional)
        if problem:
            raise ParamsError(f"{source}: program.command: {problem}")
        # (every config's values are filled in once the sweep is expanded too: see _check_rendering)
    else:
        problem = check_entry(program.entry, program.root_path)
        if problem:
            raise ParamsError(f"{source}: program.entry: {problem}")
    for i, dep in enumerate(program.deps):
        if not (program.root_path / dep).exists():
            raise ParamsError(f"{source}: program.deps[{i}]: {dep!r} not found (paths are relative to the "
                              f"params file's folder, {program.root_path})")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's float syntax.

    YAML 1.1 (PyYAML, and Snakemake's ``configfile:``) reads ``1e-4`` and
    ``1e-05`` as text; YAML 1.2 (DVC, which writes ``dvc exp run -S
    x=0.00001`` back as ``1e-05``) reads them as numbers. This loader is the
    only reader of params for every engine, so it takes the 1.2 reading and
    both engines agree. A quoted ``'1e-4'`` stays text and is refused.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def tracking(path: str | os.PathLike) -> TrackingParams:
    """The tracking section of a params file, validated (none: no tracker); any params file may be quoted by a
    report, so only one with a tracking section has to be a whole valid experiment."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or not raw.get("tracking"):
        return TrackingParams()
    return load(path).tracking


def load(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate a params file.

    Raises
    ------
    ParamsError
        One line naming the file and the offending key.
    """
    return from_dict(_read_yaml(path), source=str(Path(path)))


def _read_yaml(path: str | os.PathLike) -> Any:
    """The params file's YAML, as the loader reads it (one line naming the file when it cannot)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}: malformed YAML{where}: {problem}") from None
