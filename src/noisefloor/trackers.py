"""MLflow and W&B, both ways: read runs from them, log an experiment's runs and analysis to them.

Reading (``noisefloor analyze --mlflow EXPERIMENT`` / ``--wandb ENTITY/PROJECT``)
goes through the trackers' own clients and yields the table their exports
would, which :func:`noisefloor.runs_table.normalize` then reads like any other.

Logging (the params file's ``tracking`` section, done by ``noisefloor report``
and by ``noisefloor track``) sends every finished run (its params, seed,
stage, config hash, per-epoch history and final metrics) and the analysis (the
noise floor with its interval, each variant's verdict and interval, the
report) to each tracker named. A tracker never fails or loses a run: the
results are written before anything is logged, a tracker that is down or
refuses is reported in one line, and the next ``noisefloor track`` logs what
is still missing. A run is logged once: its key (config, seed, config hash,
code fingerprint) is a tag in MLflow and the run id in W&B, and runs whose key
the tracker already has are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import NoisefloorError
from .params import MlflowTarget, WandbTarget
from .vocab import hp_name, is_hp_column

#: Tags and names noisefloor sets, so that its runs can be found and told apart.
KIND_TAG, KEY_TAG, CONFIG_TAG = "noisefloor.kind", "noisefloor.key", "noisefloor.config"
RUN_KIND, ANALYSIS_KIND = "run", "analysis"
STAGE_TAG = "noisefloor.stage"
#: The runs table's columns logged as a run's tags (config and stage: not hyperparameters, so not params).
_TAG_COLUMNS = ("config_hash", "code_fingerprint", "sources", "device")
#: The runs table's numbers that describe a run rather than measure it: not logged as metrics.
_BOOKKEEPING = ("seed", "threads", "slurm_job_id", "n_train", "n_val", "n_test", "epochs_run", "best_epoch",
                "diverged_at_epoch")
#: W&B's local record of the runs noisefloor logged (and finished) from a results folder.
WANDB_LEDGER = "noisefloor-logged.txt"
#: A tracker that does not answer: how long one request waits and how often it is retried, unless the user
#: has set MLflow's own variables.
_MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                # one line per tracker from noisefloor instead of two of MLflow's per run
                "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


class TrackerError(NoisefloorError):
    """A tracker that cannot be read (one line: which, where, why, and what to do)."""


# --------------------------------------------------------------------------- reading


def _first_line(exc: BaseException) -> str:
    """Why a tracker's call failed, short: a server that is not there is "cannot connect"."""
    text = str(exc).strip() or type(exc).__name__
    if any(w in text for w in ("Connection refused", "NewConnectionError", "Max retries exceeded",
                               "Failed to establish a new connection")):
        return "cannot connect: no server answers there"
    return text.splitlines()[0][:300]


def _as_exported(table: pd.DataFrame) -> pd.DataFrame:
    """The table as its CSV export reads back (MLflow's params are text; a CSV's numbers are numbers)."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    buffer.seek(0)
    return pd.read_csv(buffer, keep_default_na=False, na_values=[""])


def _import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise TrackerError("MLflow's client is not installed: pip install 'noisefloor[mlflow]'") from None
    return mlflow


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise TrackerError("W&B's client is not installed: pip install 'noisefloor[wandb]'") from None
    return wandb


@contextlib.contextmanager
def _environ(defaults: dict[str, str], **forced: str):
    """Environment variables for one call, restored after: ``defaults`` where the user set none, ``forced``
    always (MLflow reads its settings and the tracking URI from there)."""
    saved = {k: os.environ.get(k) for k in (*defaults, *forced)}
    os.environ.update({k: v for k, v in defaults.items() if k not in os.environ})
    os.environ.update(forced)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _safe(name: str) -> str:
    """A config's name as an MLflow key may spell it (``lr=0.003,bs=64`` -> ``lr_0.003_bs_64``)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", str(name))


def read_mlflow(experiment: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every run of an MLflow experiment, as ``mlflow.search_runs`` exports it (noisefloor's analyses left out).

    Runs noisefloor logged carry their config's name and stage as tags
    (``noisefloor.config``, ``noisefloor.stage``), which become the ``config``
    and ``stage`` columns.
    """
    mlflow = _import_mlflow()
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    missing = _missing_local_store(uri)
    if missing is not None:        # reading must not create an empty store (MLflow would, then find nothing)
        raise TrackerError(f"--mlflow: no MLflow store at {uri} ({missing} does not exist); give the store's "
                           "--tracking-uri (a server's http://..., or sqlite:///path/to/mlflow.db)")
    with _environ(_MLFLOW_HTTP, MLFLOW_TRACKING_URI=uri):
        try:
            found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
            if found is None:
                raise TrackerError(f"--mlflow: no experiment named {experiment!r} at {uri}")
            runs = mlflow.search_runs(experiment_ids=[found.experiment_id], output_format="pandas")
        except TrackerError:
            raise
        except Exception as exc:          # the client's errors: an unreachable server, a refused request, a bad URI
            raise TrackerError(f"--mlflow: cannot read {uri} ({_first_line(exc)})") from None
    kind = f"tags.{KIND_TAG}"
    if kind in runs.columns:
        runs = runs[runs[kind].fillna("") != ANALYSIS_KIND]
    if not len(runs):
        raise TrackerError(f"--mlflow: experiment {experiment!r} at {uri} has no runs")
    if "start_time" in runs.columns:          # in the order they ran (MLflow lists the newest first)
        runs = runs.sort_values("start_time", kind="stable")
    runs = runs.rename(columns={f"tags.{CONFIG_TAG}": "config", f"tags.{STAGE_TAG}": "stage"})
    return _as_exported(runs.drop(columns=[c for c in runs.columns if c.startswith("tags.")]))


def _missing_local_store(uri: str) -> str | None:
    """The file or folder a local MLflow store ``uri`` names when it does not exist (None: it exists, or the
    store is not local: a server, a database server, Databricks)."""
    from urllib.parse import unquote, urlparse

    if uri == "databricks":
        return None
    parsed = urlparse(uri)
    if parsed.scheme.split("+")[0] == "sqlite":
        try:                                   # as MLflow's SQLAlchemy reads it (no query, no %-decoding)
            from sqlalchemy.engine import make_url

            path = make_url(uri).database
        except Exception:
            return None
        if not path or path == ":memory:":
            return None
    elif parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme == "" or len(parsed.scheme) == 1:       # a plain path (or a Windows drive letter)
        path = uri
    else:
        return None
    return None if Path(path).exists() else path


def read_wandb(path: str) -> pd.DataFrame:
    """Every run of a W&B project (``ENTITY/PROJECT``) through its public API, flattened as W&B documents.

    Each run gives ``name``, ``State``, ``config.<key>`` and ``summary.<key>``
    (nested values unfolded with dots, W&B's internal ``_`` keys left out).
    """
    wandb = _import_wandb()
    try:
        runs = [r for r in wandb.Api(timeout=20).runs(path) if r.job_type != ANALYSIS_KIND]   # (not noisefloor's)
    except Exception as exc:          # no network, no API key, no such project
        raise TrackerError(f"--wandb: cannot read {path} ({_first_line(exc)}); without a network, export the runs "
                           "table from W&B and give it as RUNS.csv") from None
    if not runs:
        raise TrackerError(f"--wandb: {path} has no runs")
    rows = []
    for run in runs:
        summary = {k: v for k, v in dict(run.summary._json_dict).items() if not k.startswith("_")}
        config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        rows.append({"name": run.name, "State": run.state,
                     **pd.json_normalize(config, sep=".").add_prefix("config.").iloc[0].to_dict(),
                     **pd.json_normalize(summary, sep=".").add_prefix("summary.").iloc[0].to_dict()})
    table = pd.DataFrame(rows)
    # runs noisefloor logged name their config and stage (W&B keeps both in the run's config)
    table = table.rename(columns={"config.config": "config", "config.stage": "stage"})
    return _as_exported(table)


# --------------------------------------------------------------------------- logging


def run_key(row: pd.Series) -> str:
    """What makes a run this run: config, seed, config hash and code fingerprint (the cache's identity)."""
    parts = [str(row.get(c, "")) for c in ("config", "seed", "config_hash", "code_fingerprint")]
    return "/".join(parts)


def _scalar(value: Any) -> Any:
    """A value a tracker takes: Python scalars, None for missing ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value


def _numbers(row: pd.Series, columns: Iterable[str]) -> dict[str, float]:
    out = {}
    for c in columns:
        v = _scalar(row.get(c))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[c] = float(v)
    return out


@dataclass(frozen=True)
class Experiment:
    """What is logged: the runs table, the learning curves, the analysis and the report."""

    runs: pd.DataFrame
    histories: pd.DataFrame | None
    summary: Any                   # noisefloor.summary.Summary
    comparisons: pd.DataFrame
    report: Path | None
    params_file: Path | None

    @functools.cached_property
    def hp_columns(self) -> list[str]:
        return [c for c in self.runs.columns if is_hp_column(c)]

    @functools.cached_property
    def metric_columns(self) -> list[str]:
        """The runs table's numbers that a run measured (not its settings or bookkeeping)."""
        skip = {*_BOOKKEEPING, *_TAG_COLUMNS, *self.hp_columns}
        return [c for c in self.runs.columns if c not in skip and pd.api.types.is_numeric_dtype(self.runs[c])]

    def run_params(self, row: pd.Series) -> dict[str, Any]:
        """The run's seed and hyperparameters (its config and stage are tags: they are not hyperparameters)."""
        params = {"seed": _scalar(row.get("seed")), **{hp_name(c): _scalar(row[c]) for c in self.hp_columns}}
        return {k: v for k, v in params.items() if v is not None}

    def run_tags(self, row: pd.Series) -> dict[str, str]:
        """Its config, stage, config hash, code fingerprint, ...; ``noisefloor.key`` is set once it is all logged."""
        tags = {f"noisefloor.{c}": str(_scalar(row[c])) for c in (*_TAG_COLUMNS, "stage")
                if c in self.runs.columns and _scalar(row[c]) is not None}
        return {**tags, KIND_TAG: RUN_KIND, CONFIG_TAG: str(row["config"])}

    @functools.cached_property
    def _curves(self) -> dict:
        """Each run's per-epoch records, by (config, seed): the histories table split once."""
        h = self.histories
        if h is None or not len(h):
            return {}
        return {(str(c), s): g.sort_values("epoch") for (c, s), g in h.groupby(["config", "seed"], sort=False)}

    def history(self, row: pd.Series) -> pd.DataFrame:
        """The run's per-epoch records (empty without a histories table)."""
        return self._curves.get((str(row["config"]), row["seed"]), pd.DataFrame())

    def history_columns(self, history: pd.DataFrame) -> list[str]:
        return [c for c in history.columns if c not in ("config", "seed", "epoch")
                and pd.api.types.is_numeric_dtype(history[c])]

    @functools.cached_property
    def headline(self) -> dict[str, Any]:
        """The analysis' flat headline (``metrics.json``'s numbers and words)."""
        from .tracking import headline_metrics

        return headline_metrics(self.summary)

    def analysis_numbers(self) -> dict[str, float]:
        """The analysis as numbers: the headline's, and each variant's difference with its interval."""
        out = {k: float(v) for k, v in self.headline.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for _, c in self.comparisons.iterrows():
            numbers = _numbers(c, ("diff", "ci_low", "ci_high"))
            out.update({f"{_safe(c['config'])}.{col}": v for col, v in numbers.items()})
        return out

    def analysis_tags(self) -> dict[str, str]:
        tags = {f"verdict.{_safe(c['config'])}": str(c["verdict"]) for _, c in self.comparisons.iterrows()}
        tags.update({k: str(v) for k, v in self.headline.items() if isinstance(v, str)})
        return {**tags, KIND_TAG: ANALYSIS_KIND}

    @property
    def analysis_key(self) -> str:
        """The analysis' identity: a hash of its summary (a new analysis is logged again, the same one once)."""
        return hashlib.sha256(self.summary.to_json().encode()).hexdigest()[:16]

    def files(self) -> list[Path]:
        return [p for p in (self.report, self.params_file) if p is not None and Path(p).is_file()]


def _finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].astype(str) == "ok"] if "status" in runs.columns else runs


def log_mlflow(target: MlflowTarget, exp: Experiment) -> str:
    """Log the runs MLflow does not have yet and the analysis; returns what was done, in words.

    A run gets its key (``noisefloor.key``) last, once everything of it is
    logged: a run cut short (the server went down) has none, and the next
    call deletes it and logs the run again.
    """
    _import_mlflow()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    with _environ(_MLFLOW_HTTP):
        client = MlflowClient(tracking_uri=target.tracking_uri)
        found = client.get_experiment_by_name(target.experiment)
        exp_id = found.experiment_id if found else client.create_experiment(target.experiment)
        have, token = set(), None
        while True:
            page = client.search_runs([exp_id], filter_string=f"tags.`{KIND_TAG}` != ''", max_results=1000,
                                      page_token=token)
            for r in page:
                if KEY_TAG in r.data.tags:
                    have.add(r.data.tags[KEY_TAG])
                else:                               # cut short: logged again below
                    client.delete_run(r.info.run_id)
            token = page.token
            if not token:
                break

        def finish(run_id: str, key: str) -> None:
            client.set_tag(run_id, KEY_TAG, key)
            client.set_terminated(run_id, "FINISHED")

        now = int(time.time() * 1000)
        logged = there = 0
        for _, row in _finished_runs(exp.runs).iterrows():
            if run_key(row) in have:
                there += 1
                continue
            history = exp.history(row)
            run = client.create_run(exp_id, run_name=f"{row['config']}-seed{row['seed']}",
                                    start_time=now + logged,          # (in the table's order: read back in it)
                                    tags=exp.run_tags(row))
            cols = exp.history_columns(history)
            metrics = [Metric(col, float(h[col]), now, int(h["epoch"])) for _, h in history.iterrows()
                       for col in cols if math.isfinite(float(h[col]))]
            last = int(history["epoch"].max()) if len(history) else 0
            curves = {c: float(history[c].iloc[-1]) for c in cols}
            metrics += [Metric(k, v, now + 1, last) for k, v in _numbers(row, exp.metric_columns).items()
                        if not (k in curves and math.isclose(curves[k], v))]   # (a curve's end is there already)
            params = [Param(k, str(v)) for k, v in exp.run_params(row).items()]
            for i in range(0, max(len(metrics), 1), 900):        # MLflow takes at most 1000 metrics per batch
                client.log_batch(run.info.run_id, metrics=metrics[i:i + 900], params=params if i == 0 else [])
            finish(run.info.run_id, run_key(row))
            logged += 1
        analysis = "analysis already logged"
        if exp.analysis_key not in have:
            run = client.create_run(exp_id, run_name="analysis", start_time=now, tags=exp.analysis_tags())
            client.log_batch(run.info.run_id,
                             metrics=[Metric(k, v, now, 0) for k, v in exp.analysis_numbers().items()])
            for path in exp.files():
                client.log_artifact(run.info.run_id, str(path))
            finish(run.info.run_id, exp.analysis_key)
            analysis = "the analysis logged"
        return (f"{logged} new runs logged ({there} there already), {analysis}: experiment {target.experiment!r} "
                f"at {client.tracking_uri}")


def _wandb_id(key: str) -> str:
    return "nf-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _wandb_logged(folder: Path) -> set[str]:
    """The W&B runs logged and finished from this results folder (its ledger; W&B's own folders may hold a run
    that was cut short)."""
    ledger = folder / "wandb" / WANDB_LEDGER
    return set(ledger.read_text().split()) if ledger.is_file() else set()


def _wandb_done(folder: Path, run_id: str) -> None:
    ledger = folder / "wandb" / WANDB_LEDGER
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger, "a") as fh:
        fh.write(run_id + "\n")


def log_wandb(target: WandbTarget, exp: Experiment, folder: Path) -> str:
    """Log the runs not logged from ``folder`` before and the analysis to W&B; returns what was done, in words.

    What was logged is known from ``folder``/wandb/ (W&B keeps offline runs
    there until ``wandb sync``): a fresh results folder logs again.
    """
    wandb = _import_wandb()
    settings = wandb.Settings(silent=True, console="off", save_code=False, disable_git=True)
    folder.mkdir(parents=True, exist_ok=True)
    common = dict(project=target.project, entity=target.entity, mode=target.mode, dir=str(folder),
                  reinit="create_new", settings=settings)
    done = _wandb_logged(folder)
    logged = there = 0
    for _, row in _finished_runs(exp.runs).iterrows():
        run_id = _wandb_id(run_key(row))
        if run_id in done:
            there += 1
            continue
        history = exp.history(row)
        run = wandb.init(id=run_id, name=f"{row['config']}-seed{row['seed']}", job_type=str(row.get("stage", "run")),
                         group=str(row["config"]), config={**exp.run_params(row), "config": str(row["config"]),
                                                           **({"stage": str(row["stage"])} if "stage" in row else {})},
                         tags=[RUN_KIND], resume="allow", **common)
        cols = exp.history_columns(history)
        for _, h in history.iterrows():
            run.log({**{c: float(h[c]) for c in cols if math.isfinite(float(h[c]))}, "epoch": int(h["epoch"])},
                    step=int(h["epoch"]))
        run.summary.update({**_numbers(row, exp.metric_columns), **exp.run_tags(row), KEY_TAG: run_key(row)})
        run.finish()
        _wandb_done(folder, run_id)
        logged += 1
    analysis = "analysis already logged"
    run_id = _wandb_id(exp.analysis_key)
    if run_id not in done:
        run = wandb.init(id=run_id, name="analysis", job_type=ANALYSIS_KIND, tags=[ANALYSIS_KIND], resume="allow",
                         **common)
        run.summary.update({**exp.analysis_numbers(), **exp.analysis_tags()})
        files = exp.files()
        if files:
            artifact = wandb.Artifact(f"noisefloor-report-{exp.analysis_key}", type="report")
            for path in files:
                artifact.add_file(str(path))
            run.log_artifact(artifact)
        run.finish()
        _wandb_done(folder, run_id)
        analysis = "the analysis logged"
    where = f"{target.entity}/{target.project}" if target.entity else target.project
    saved = f" (offline: under {folder / 'wandb'}, for `wandb sync`)" if target.mode == "offline" else ""
    return f"{logged} new runs logged ({there} there already), {analysis}: project {where}{saved}"


def log_experiment(tracking, exp: Experiment, folder: Path, say, retry: str = "`noisefloor track` logs what is "
                                                                               "missing") -> bool:
    """Log to every tracker ``tracking`` names; say one line per tracker. False when one failed.

    ``tracking`` is :class:`noisefloor.params.TrackingParams`. A failure is
    reported, never raised: the runs and the analysis are already on disk.
    """
    ok = True
    for name, target, log in (("mlflow", tracking.mlflow, lambda t: log_mlflow(t, exp)),
                              ("wandb", tracking.wandb, lambda t: log_wandb(t, exp, folder))):
        if target is None:
            continue
        try:
            say(f"{name}: {log(target)}")
        except Exception as exc:      # a tracker down, refusing or missing: reported, the results kept
            ok = False
            say(f"{name}: not logged ({_first_line(exc)}); the results are kept, and {retry}")
    return ok
