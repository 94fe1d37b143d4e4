"""Command line: ``noisefloor <subcommand>`` (or ``python -m noisefloor``).

Only argument handling and paths live here. Every path is an explicit flag,
data goes to files, progress and errors go to stderr, and failures exit
non-zero with one line naming the problem. Both workflow engines call these
same subcommands, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .errors import NoisefloorError
from .vocab import hp_column

EXIT_BAD_INPUT = 2
#: What a fork-server worker runs: this module's main, named so the server imports nothing from here.
ENTRY_POINT = "noisefloor.cli:main"


class InputError(NoisefloorError, ValueError):
    """A missing or malformed input file or folder (one line, exit 2)."""


def _err(msg: str) -> None:
    print(f"noisefloor: error: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- subcommands


def cmd_check(args) -> int:
    from . import params as P

    from .data import check_available

    p = P.load(args.params)
    if p.program.builtin:
        check_available(p.data)
        what = "the built-in model"
    else:
        what = f"program {p.program.describe()!r}"
        dvc_yaml = Path(args.params).parent / "dvc.yaml"
        if dvc_yaml.is_file():          # DVC knows a program's deps and params from its stages only
            from .program import check_dvc_stages

            from .deploy import dvc_staleness

            # A generated file is regenerated; one of the user's own is told what a stage lacks.
            problem = dvc_staleness(p, dvc_yaml) or check_dvc_stages(dvc_yaml, p.program.deps,
                                                                     sweep=p.sweep is not None)
            if problem:
                raise InputError(problem)
    confirm = ""
    if p.sweep is not None and p.sweep.confirm_top_k:
        k, n = p.sweep.confirm_top_k, len(p.sweep.confirm_seeds)
        confirm = f", then {k * n} to confirm the search's best {k} at {n} fresh seeds"
    decompose = sum(len(p.seeds_for(c)) for c in p.decompose_configs)
    budget = f", {decompose} for the noise budget by source" if decompose else ""
    if p.adaptive is not None:
        from .adaptive import candidate_runs, schedule

        sch = schedule(p)
        more = len(candidate_runs(p)) - len(p.runs())
        if p.adaptive.max_runs is not None:
            more = min(more, p.adaptive.max_runs - len(p.runs()))
        confirm = (f", then up to {more} more in at most {sch.rounds - 1} adaptive round"
                   f"{'' if sch.rounds == 2 else 's'} of {sch.step} seeds per open variant (at most "
                   f"{sch.max_seeds} each)" if sch.rounds > 1 else ", adaptive: max_seeds is the signal seeds "
                   "(one round, the fixed design)")
    configs = len(p.config_names) - len(p.decompose_configs)
    signal = len(p.signal_seeds)
    print(f"{args.params}: ok: {what}, {configs} config{'' if configs == 1 else 's'}, {len(p.runs())} runs "
          f"({len(p.noise_seeds)} noise seeds, {signal} signal seed{'' if signal == 1 else 's'}{budget}){confirm}",
          file=sys.stderr)
    from .display import same_config_words

    for name, why in (p.decompose.left_out.items() if p.decompose is not None else ()):
        print(f"{args.params}: note: decompose: {name} is left out: {why}", file=sys.stderr)
    for names in p.same_configs:
        print(f"{args.params}: note: {same_config_words(names, p.baseline)} (the same settings: the same "
              "runs, copied from one to the other, not trained again; the analysis names them)", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from . import params as P, runner

    p = P.load(args.params)
    rc = runner.hand_over(p, ENTRY_POINT, args.raw_argv)
    if rc is not None:
        return rc
    list(runner.run(p, [(args.config, args.seed)], args.runs_dir, jobs=args.jobs, staging=args.staging_dir,
                    log=_log))
    return 0


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_check_determinism(args) -> int:
    """Train one (config, seed) twice in a scratch folder and say whether every metric repeats."""
    from . import params as P, runner

    p = P.load(args.params)
    config = args.config or p.baseline
    p.resolve(config)
    seed = p.seeds_for(config)[0] if args.seed is None else args.seed
    found = runner.train_twice(p, config, seed, jobs=args.jobs, log=_log)
    print(f"check-determinism: {found.sentence()}", file=sys.stderr)
    return 0 if found.controlled else 1


def cmd_status(args) -> int:
    """Where the runs stand, and one line per reason a finished run will train again."""
    from . import params as P, status

    for line in status.status(P.load(args.params), args.runs_dir).lines():
        print(f"status: {line}", file=sys.stderr)
    return 0


def cmd_init(args) -> int:
    """Write what runs noisefloor's workflow in a folder of one's own (:mod:`noisefloor.deploy`)."""
    from . import deploy

    deploy.init(Path(args.folder), program=args.program, dvc=args.dvc, log=_log)
    if not args.dvc:
        _log("init: next: edit params.yaml, then `noisefloor check` and `snakemake --cores 2` (under DVC: "
             "`noisefloor init --dvc` once the params load, then `dvc repro`)")
    return 0


def cmd_sweep(args) -> int:
    if args.action == "select" and not args.out:
        raise InputError("sweep select: --out is required (where the search's record goes)")
    return {"show": cmd_sweep_show, "train": cmd_sweep_train, "select": cmd_sweep_select}[args.action](args)


def cmd_sweep_show(args) -> int:
    """The sweep's configs, one row each: name, drawn values, config hash."""
    import pandas as pd

    from . import params as P

    p = P.load(args.params)
    if p.sweep is None:
        raise InputError(f"{args.params}: no sweep section")
    own = {"config", "seeds", "config_hash"}      # a hyperparameter of the same name shows as hp.<name>
    rows = [{"config": name, **{hp_column(k) if k in own else k: v for k, v in values.items()},
             "seeds": " ".join(map(str, p.seeds_for(name))), "config_hash": p.resolve(name).config_hash}
            for name, values in p.sweep_configs.items()]
    sys.stdout.write(pd.DataFrame(rows).to_string(index=False) + "\n")
    print(f"sweep: {len(rows)} configs ({p.sweep.method}, sampler seed {p.sweep.seed})", file=sys.stderr)
    return 0


def cmd_sweep_select(args) -> int:
    """The search's record, with the configs its confirmation re-runs (a Snakemake checkpoint's output)."""
    from . import params as P
    from .aggregate import sweep_record

    p = P.load(args.params)
    rec = sweep_record(p, args.runs_dir)
    rec.write(args.out)
    print(f"sweep: {len(rec.configs)} configs searched; confirming {', '.join(rec.confirmed) or 'none'}",
          file=sys.stderr)
    return 0


def cmd_sweep_train(args) -> int:
    """Every run of the sweep that is missing or stale, then its confirmation, then its record (DVC's sweep stage)."""
    from . import params as P, runner
    from .sweep import FOLDER, RECORD

    record = runner.train_sweep(P.load(args.params), args.runs_dir, jobs=args.jobs, log=_log)
    record.write(Path(args.runs_dir) / FOLDER / RECORD)
    return 0


def cmd_decompose(args) -> int:
    """train: every decomposition run missing or stale, then the record (DVC's stage); record: the record alone."""
    from . import params as P, runner
    from .aggregate import decompose_record
    from .decompose import FOLDER, RECORD

    p = P.load(args.params)
    if args.action == "record":
        if not args.out:
            raise InputError("decompose record: --out is required (where the record goes)")
        decompose_record(p).write(args.out)
        return 0
    if p.decompose is not None:
        runner.train_missing(p, "decompose", [(c, p.decompose.seeds) for c in p.decompose_configs], args.runs_dir,
                             jobs=args.jobs, log=_log)
    decompose_record(p).write(Path(args.runs_dir) / FOLDER / RECORD)
    return 0


def cmd_adaptive(args) -> int:
    """train: every round's missing runs, round after round, then the records (DVC's stage); record: one record."""
    from . import adaptive, params as P, runner

    p = P.load(args.params)
    if args.action == "record":
        if not args.out:
            raise InputError("adaptive record: --out is required (where the record goes)")
        adaptive.record(p, args.runs_dir, args.rounds).write(args.out)
        return 0
    if not args.out:
        raise InputError("adaptive train: --out is required (the folder of the rounds' records)")
    if p.adaptive is not None:
        why_done = runner.train_rounds(p, args.runs_dir, jobs=args.jobs, log=_log)
        print(f"adaptive: {why_done}", file=sys.stderr)
    for k, rec in enumerate(adaptive.records(p, args.runs_dir), start=1):
        rec.write(adaptive.record_path(args.out, k))
    return 0


def cmd_plan(args) -> int:
    from . import adaptive, params as P

    p = P.load(args.params)
    result = adaptive.plan(p, args.runs_dir)
    table = adaptive.plan_table(result, p)
    print(table.to_string(index=False, na_rep="-"))
    if result.result is None:
        print(f"plan: the first round is not complete: {len(result.next_runs)} runs to train", file=sys.stderr)
    elif result.next_runs:
        print(f"plan: round {len(result.result.added) + 1} trains {len(result.next_runs)} runs", file=sys.stderr)
    if result.next_runs:
        for config, ss in adaptive.by_config(result.next_runs).items():
            print(f"  noisefloor train --params {shlex.quote(args.params)} --config {config} "
                  + " ".join(f"--seed {s}" for s in ss) + f" --runs-dir {shlex.quote(args.runs_dir)}",
                  file=sys.stderr)
    else:
        print(f"plan: nothing left to train: {result.why_done}", file=sys.stderr)
    return 0


def cmd_aggregate(args) -> int:
    from . import io, params as P
    from .aggregate import collect_histories, collect_runs, experiment_runs

    p = P.load(args.params)
    listed = experiment_runs(p, args.runs_dir)       # (once: the confirmation's runs come from the search's)
    runs = collect_runs(p, args.runs_dir, listed)
    io.write_csv(args.out, runs)
    if args.histories_out:
        io.write_csv(args.histories_out, collect_histories(p, args.runs_dir, listed))
    print(f"aggregate: {len(runs)} runs -> {args.out}", file=sys.stderr)
    return 0


def _eval_size(runs, metric: str) -> int | None:
    """Size of the evaluation set behind ``metric`` when the table records it."""
    col = {"val": "n_val", "best": "n_val", "test": "n_test"}.get(metric.split("_")[0])
    if col and col in runs.columns and runs[col].nunique(dropna=True) == 1:
        return int(runs[col].dropna().iloc[0])
    return None


def cmd_analyze(args) -> int:
    from . import io, params as P, stats, tracking
    from .pipeline import ANALYSIS_FILES

    loaded = P.load(args.params) if args.params else None
    settings = loaded.stats if loaded else P.StatsParams()
    metric = args.metric or settings.metric
    table = _read_runs(args, metric)
    runs = table.runs
    baseline = args.baseline or settings.baseline
    if table.config_built and not args.baseline:
        from .runs_table import busiest_config

        baseline = busiest_config(runs)     # the noise condition: the config with the most seeds
        print(f"analyze: baseline = {baseline} (the config with the most runs; name another with --baseline)",
              file=sys.stderr)
    how = dict(
        direction=args.direction or settings.direction,
        baseline=baseline,
        alpha=args.alpha if args.alpha is not None else settings.alpha,
        correction=args.correction or settings.correction,
        confidence_level=settings.confidence_level, power=settings.power,
        equivalence_margin=(args.equivalence_margin if args.equivalence_margin is not None
                            else settings.equivalence_margin),
        n_boot=settings.n_boot,
        eval_size=_eval_size(runs, metric),
        hparams=args.hparams.split(",") if args.hparams else None,
        histories=_read_csv(args.histories, "histories table") if args.histories else None,
        noise_sources_left_out=(dict(loaded.decompose.left_out) or None
                                if loaded is not None and loaded.decompose is not None else None),
    )
    if loaded is not None and loaded.adaptive is not None:
        from . import adaptive      # the rounds replayed: each variant's verdict from the look that stopped it

        result = adaptive.analyze(loaded, runs, metric, **how)
    else:
        result = stats.analyze(runs, metric, **how)
    out = Path(args.out)
    contents = {
        "comparisons.csv": lambda path: io.write_csv(path, result.comparisons),
        "importance.csv": lambda path: io.write_csv(path, result.importance),
        "excluded.csv": lambda path: io.write_csv(path, result.excluded),
        # Not write_json: its sorted keys would reorder the columns of `dvc exp show`.
        "metrics.json": lambda path: io.write_text(path, json.dumps(tracking.headline_metrics(result.summary),
                                                                    indent=2, allow_nan=False) + "\n"),
        "summary.json": lambda path: io.write_text(path, result.summary.to_json()),
    }
    if args.runs is None:       # read from a tracker: the table as read, for `noisefloor plot` and `report`
        io.write_csv(out / "runs.csv", runs)
    for name, write in _in_table_order(contents, ANALYSIS_FILES):   # summary.json last: a finished analysis
        write(out / name)
    print(f"analyze: {answer_line(result.summary)} -> {out}", file=sys.stderr)
    if args.json:
        sys.stdout.write(result.summary.to_json())
    return 0


def answer_line(s) -> str:
    """The analysis in one line: runs, noise floor, verdict counts (read from the summary)."""
    from .display import format_spread

    blind = f"; the seed changes nothing in {', '.join(s.seed_blind)} (seed-blind)" if s.seed_blind else ""
    if s.not_converged:
        blind += f"; not converged: {', '.join(r.config for r in s.not_converged)}"
    left_out = ""
    if s.n_excluded:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted((s.excluded_by_reason or {}).items()))
        left_out = f" ({s.n_excluded} left out: {reasons})"
    return (f"{s.n_runs} runs{left_out}, noise floor {format_spread(s.noise_floor, s.percent)} "
            f"({s.n_baseline} baseline seeds); variants: {s.verdict_counts_text()}{blind}")


def _read_summary(analysis: Path):
    from .summary import Summary

    path = analysis / "summary.json"
    try:
        return Summary.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise InputError(f"{path}: analysis summary not found (run `noisefloor analyze` first)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _in_table_order(actions: dict, names):
    """(name, action) in the order of ``names`` (a noisefloor.pipeline list), which ``actions`` must match."""
    if set(actions) != set(names):
        raise AssertionError(f"{sorted(actions)} differ from the pipeline's {sorted(names)}")
    return [(name, actions[name]) for name in names]


def _read_csv(path, what: str, **read):
    import pandas as pd

    try:
        return pd.read_csv(path, **read)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, not a {what} (a CSV file)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None


def _read_runs(args, metric: str | None = None):
    """The runs table in the analysis' shape (``config``, ``seed``, ``hp.*``, ``status``, the metric), whatever
    tracker wrote it. Only an empty cell is missing: a text such as ``n/a`` is read as text, so that a metric
    that is not a number is named (:func:`noisefloor.runs_table.normalize`)."""
    from . import trackers
    from .runs_table import normalize

    mlflow, wandb = getattr(args, "mlflow", None), getattr(args, "wandb", None)
    if sum(x is not None for x in (args.runs, mlflow, wandb)) != 1:
        raise InputError(f"{args.command}: give the runs as one of RUNS.csv, --mlflow EXPERIMENT or "
                         "--wandb ENTITY/PROJECT")
    if mlflow is not None:
        raw, source = trackers.read_mlflow(mlflow, args.tracking_uri), f"mlflow:{mlflow}"
    elif wandb is not None:
        raw, source = trackers.read_wandb(wandb), f"wandb:{wandb}"
    else:
        raw, source = _read_csv(args.runs, "runs table", keep_default_na=False, na_values=[""]), str(args.runs)
    table = normalize(raw, source=source, config_col=args.config_col, seed_col=args.seed_col,
                      hparams=args.hparams.split(",") if getattr(args, "hparams", None) else None, metric=metric)
    for note in table.notes:
        print(f"{args.command}: {source}: {note}", file=sys.stderr)
    return table


def _read_analysis(analysis: Path):
    summary = _read_summary(analysis)
    return summary, _read_csv(analysis / "comparisons.csv", "comparisons table"), \
        _read_csv(analysis / "importance.csv", "importance table")


def cmd_plot(args) -> int:
    from . import plots
    from .pipeline import FIGURE, FIGURES
    from .runs_table import without_decomposition

    analysis, out = Path(args.analysis), Path(args.out)
    summary, comparisons, importance = _read_analysis(analysis)
    runs = without_decomposition(_read_runs(args, summary.metric).runs)     # (the noise budget is the summary's)
    metric, baseline = summary.metric, summary.baseline
    for col in ("config", "seed", metric):
        if col not in runs.columns:
            raise InputError(f"{args.runs}: no {col!r} column (the analysis in {analysis} used it)")
    # The seeds come from the data the analysis used, never from a params file.
    noise_seeds = sorted(runs.loc[runs["config"] == baseline, "seed"].unique().tolist())
    variant_seeds = set(runs.loc[runs["config"] != baseline, "seed"])
    signal_seeds = [s for s in noise_seeds if s in variant_seeds]
    histories = _read_csv(args.histories, "histories table") if args.histories else None
    if histories is not None and "config" in histories.columns:
        histories = histories[histories["config"].isin(set(runs["config"]))]
    # The analysed metric's curves when the runs recorded them per epoch; else validation accuracy.
    hist_metric = metric if histories is not None and metric in histories.columns else "val_acc"
    same = hist_metric == metric       # the noise floor is in this metric's units
    # The analysis decided how its metric is shown; the fallback val_acc is the built-in model's
    # validation accuracy, a fraction by definition.
    percent, curves_percent = summary.percent, summary.percent if same else True

    # One drawing per figure of the pipeline's table (noisefloor.pipeline.FIGURES).
    draw = {
        "noise_vs_signal": lambda path: plots.plot_noise_vs_signal(
            runs, metric, baseline, noise_seeds, signal_seeds, path, summary=summary, percent=percent),
        "config_distributions": lambda path: plots.plot_config_distributions(
            runs, comparisons, metric, baseline, summary.noise_floor, path, percent=percent),
        "differences": lambda path: plots.plot_differences(
            comparisons, summary.noise_floor, path, metric=metric, margin=summary.equivalence_margin,
            direction=summary.direction, percent=percent),
        "learning_curves": lambda path: plots.plot_learning_curves(
            histories, hist_metric, baseline, signal_seeds, path, runs=runs,
            noise_floor=summary.noise_floor if same else None,
            not_converged=summary.not_converged if same else None, percent=curves_percent),
        "search_payoff": lambda path: plots.plot_search_payoff(runs, metric, baseline, path, summary=summary),
        "marginal_effects": lambda path: plots.plot_marginal_effects(runs, comparisons, metric, baseline, path,
                                                                     summary=summary),
        "noise_budget": lambda path: plots.plot_noise_budget(path, summary=summary),
        "importance": lambda path: plots.plot_importance(importance, path, alpha=summary.alpha, metric=metric),
    }
    written = 0
    for key, figure in _in_table_order(draw, [f.key for f in FIGURES]):
        if key == "learning_curves" and histories is None:
            print("plot: no --histories: the learning-curve figure is left out", file=sys.stderr)
            continue
        figure(out / FIGURE[key].file)
        written += 1
    print(f"plot: {written} figures -> {out}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from . import params as P, report
    from .pipeline import figures_shown
    from .provenance import provenance
    from .runs_table import without_decomposition

    summary, comparisons, importance = _read_analysis(Path(args.analysis))
    plots_dir = Path(args.plots)
    if not plots_dir.is_dir():
        raise InputError(f"{plots_dir}: plots folder not found (run `noisefloor plot` first)")
    plot_paths = {f.key: plots_dir / f.file for f in figures_shown(summary, importance)}
    params_text = Path(args.params).read_text() if args.params else None
    table = _read_runs(args, summary.metric).runs if args.runs else None
    runs = without_decomposition(table) if table is not None else None
    report.render_report(summary, comparisons, importance, plot_paths, args.out, params_text=params_text,
                         runs=runs, provenance=provenance(params_text=params_text, runs=runs,
                                                          eval_size=summary.eval_size))
    print(f"report: -> {args.out}", file=sys.stderr)
    tracking = P.tracking(args.params) if args.params else P.TrackingParams()
    if tracking.any:        # after the report is written: a tracker that is down costs nothing made
        if table is None:
            print("report: tracking: nothing logged (no --runs: the runs are what is logged)", file=sys.stderr)
        else:
            _track(args, tracking, table, summary, comparisons, Path(args.out))
    return 0


def _track(args, tracking, runs, summary, comparisons, report_path: Path) -> bool:
    """Log the runs (the table in the analysis' shape), their learning curves and the analysis to the trackers;
    one line per tracker."""
    from . import trackers

    histories = None
    if args.histories and Path(args.histories).is_file():
        histories = _read_csv(args.histories, "histories table")
    elif args.histories:
        print(f"{args.command}: {args.histories}: not found: the runs are logged without their learning curves",
              file=sys.stderr)
    exp = trackers.Experiment(runs=runs, histories=histories, summary=summary, comparisons=comparisons,
                              report=report_path if report_path.is_file() else None,
                              params_file=Path(args.params) if args.params else None)
    retry = ("running it again logs what is missing" if args.command == "track"
             else "`noisefloor track` logs what is missing")
    return trackers.log_experiment(tracking, exp, report_path.parent,
                                   lambda line: print(f"{args.command}: {line}", file=sys.stderr), retry)


def cmd_track(args) -> int:
    from . import params as P

    tracking = P.tracking(args.params)
    if not tracking.any:
        raise InputError(f"{args.params}: tracking: no tracker named (add tracking.mlflow or tracking.wandb)")
    summary, comparisons, _ = _read_analysis(Path(args.analysis))
    runs = _read_runs(args, summary.metric).runs
    return 0 if _track(args, tracking, runs, summary, comparisons, Path(args.report)) else 1


# --------------------------------------------------------------------------- parser


def _table_options(s, *, hparams: bool = True) -> None:
    s.add_argument("--config-col", help="the column naming each run's config (default: config; without one, "
                                        "the config is built from the hyperparameter columns)")
    s.add_argument("--seed-col", help="the column holding each run's seed (default: seed, or config/seed)")
    if hparams:
        s.add_argument("--hparams", help="comma-separated hyperparameter columns, as given to analyze "
                                         "(default: every hp.*, config/*, config.* and params.* column)")


def _params_option(s) -> None:
    s.add_argument("--params", default="params.yaml", help="the experiment's params file")


def _jobs_option(s) -> None:
    s.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                   help="runs trained at once, each in a process of its own (default: the CPUs this process may "
                        "use over the runs' train.threads; results never depend on it)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless its help already says it or it has none."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = argparse.ArgumentParser(
        prog="noisefloor",
        description="Is a hyperparameter improvement real, or seed noise? Train under many seeds "
                    "(noise) and many configs (signal), then compare against the noise floor.")
    ap.add_argument("--version", action="version", version=f"noisefloor {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def command(name, help, description):
        return sub.add_parser(name, help=help, description=description, formatter_class=_HelpFormatter)

    s = command("check", "validate a params file",
                "Reads PARAMS; writes nothing. Exits 2 with one line naming the bad key.")
    _params_option(s)
    s.set_defaults(func=cmd_check)

    s = command("train", "train one config at one or more seeds",
                "Reads PARAMS and the dataset; writes RUNS_DIR/CONFIG/seedS/{metrics.json,history.csv} "
                "(checkpoint.pt while running). Progress per epoch on stderr.")
    _params_option(s)
    s.add_argument("--config", required=True, help="'baseline' or a name under configs:")
    s.add_argument("--seed", type=int, action="append", required=True, help="a seed to train (repeatable)")
    s.add_argument("--runs-dir", required=True, help="folder of the run outputs")
    _jobs_option(s)
    s.add_argument("--staging-dir",
                   help="train ahead (how DVC's one-run stages train in parallel): keep JOBS runs training by "
                        "starting the params' next missing runs into here, in processes that outlive this call, "
                        "and take a run of this call from here when one was trained ahead, waiting while it "
                        "trains (beside RUNS_DIR, on its file system; see docs/dvc.md)")
    s.set_defaults(func=cmd_train)

    s = command("status", "where the runs stand, and why finished runs will train again",
                "Reads PARAMS and RUNS_DIR; writes nothing. One line per reason a finished run is stale "
                "(params changed, program deps changed with the files named, ...) with its count, then how "
                "many runs are finished and how many will train. Either engine retrains exactly those.")
    _params_option(s)
    s.add_argument("--runs-dir", default="results/runs", help="the runs folder (default: results/runs)")
    s.set_defaults(func=cmd_status)

    s = command("init", "set up a folder of your own: Snakefile, params.yaml, dvc.yaml, profile, .gitignore",
                "Writes a Snakefile that imports noisefloor's workflow from the installed package, a params.yaml "
                "with every key commented (a skeleton for your own script with --program), Snakemake's default "
                "profile, the .gitignore lines, and, once the params load, a dvc.yaml generated from them. "
                "Never overwrites a file that exists; --dvc regenerates only dvc.yaml (after program.deps "
                "change; `noisefloor check` says when).")
    s.add_argument("folder", nargs="?", default=".", help="the project's folder (default: here)")
    s.add_argument("--program", action="store_true", help="params for your own training script")
    s.add_argument("--dvc", action="store_true", help="only (re)generate dvc.yaml from params.yaml")
    s.set_defaults(func=cmd_init)

    s = command("check-determinism", "train one run twice and another seed once: does the seed control the run?",
                "Trains (CONFIG, SEED) twice and CONFIG at another seed once, in a scratch folder (removed "
                "after), and compares every metric. Exits 0 when the repeat is identical and the other seed "
                "differs; 1 when the repeat differs (that non-determinism is then part of the measured noise "
                "floor) or the other seed gives the very same metrics (the program ignores its seed); 2 on "
                "bad input.")
    _params_option(s)
    s.add_argument("--config", help="the config to train (default: the baseline)")
    s.add_argument("--seed", type=int, help="the seed (default: the config's first seed)")
    _jobs_option(s)
    s.set_defaults(func=cmd_check_determinism)

    s = command("sweep", "show, train or choose from the sweep's configs",
                "show: print the configs PARAMS' sweep section expands to (name, values, seeds, config hash) "
                "as a table on stdout. train: train every sweep run that is missing or stale under "
                "RUNS_DIR/sweep/, then the confirmation of its best configs, and write the search's record "
                "RUNS_DIR/sweep/sweep.json (how DVC trains a sweep). select: write the record to OUT from "
                "the search's finished runs (how Snakemake learns which configs to confirm).")
    s.add_argument("action", choices=["show", "train", "select"], help="what to do with the sweep")
    _params_option(s)
    s.add_argument("--runs-dir", default="results/runs", help="the runs folder (train, select)")
    s.add_argument("--out", help="where select writes the search's record")
    _jobs_option(s)
    s.set_defaults(func=cmd_sweep)

    s = command("decompose", "train the noise budget's runs, or write its record",
                "train: train every run of PARAMS' decompose section (the baseline with one source of randomness "
                "varying at a time, then all of them) that is missing or stale under RUNS_DIR/decompose/, and "
                "write the record RUNS_DIR/decompose/decompose.json (how DVC runs it). record: write the record "
                "to OUT (Snakemake).")
    s.add_argument("action", choices=["train", "record"], help="what to do")
    _params_option(s)
    s.add_argument("--runs-dir", default="results/runs", help="the runs folder (train)")
    s.add_argument("--out", help="where record writes the record")
    _jobs_option(s)
    s.set_defaults(func=cmd_decompose)

    s = command("plan", "where an adaptive experiment stands, and what its next round trains",
                "Reads PARAMS (with an adaptive section) and the finished runs under RUNS_DIR; replays the rounds "
                "and prints one row per config on stdout: its seeds so far, its verdict, the round it stopped in "
                "(decided, futile: the cap would not decide it, cap, or budget: the next round would pass "
                "adaptive.max_runs) and the runs the next round adds to it. "
                "Changes nothing.")
    _params_option(s)
    s.add_argument("--runs-dir", default="results/runs", help="folder of the run outputs")
    s.set_defaults(func=cmd_plan)

    s = command("adaptive", "train an adaptive experiment's rounds, or write a round's record",
                "train: train every round PARAMS' adaptive section asks for (the runs of each round that are "
                "missing or stale, under RUNS_DIR/<config>/seed<s>/) until every variant is decided, futile or "
                "at the cap, and write each round's record OUT/round<k>.json (how DVC runs it). "
                "record: write the record of rounds 1 to ROUNDS (the runs round ROUNDS + 1 adds) to the file OUT "
                "(Snakemake's checkpoint).")
    s.add_argument("action", choices=["train", "record"], help="what to do")
    _params_option(s)
    s.add_argument("--runs-dir", default="results/runs", help="the runs folder")
    s.add_argument("--rounds", type=int, default=1, help="record: the rounds replayed")
    s.add_argument("--out", help="train: the records' folder; record: the record's file")
    _jobs_option(s)
    s.set_defaults(func=cmd_adaptive)

    s = command("aggregate", "collect the experiment's runs into one table",
                "Reads PARAMS and RUNS_DIR/<config>/seed<s>/ for exactly the runs the params ask for; writes "
                "OUT (one row per run) and optionally HISTORIES_OUT.")
    _params_option(s)
    s.add_argument("--runs-dir", required=True, help="folder of the run outputs")
    s.add_argument("--out", required=True, help="the runs table to write (CSV)")
    s.add_argument("--histories-out", help="the learning-curves table to write (CSV)")
    s.set_defaults(func=cmd_aggregate)

    s = command("analyze", "noise floor and per-variant verdicts from any runs table",
                "Reads RUNS (CSV with a config, a seed and the metric column; hyperparameters as hp.*, config/*, "
                "config.* or params.* columns, as trackers export them); writes "
                "OUT/{summary.json,comparisons.csv,importance.csv,excluded.csv,metrics.json} (metrics.json: the "
                "flat headline numbers for experiment trackers) and one line with the answer on stderr. "
                "Settings default to PARAMS' stats section when given.")
    s.add_argument("runs", metavar="RUNS.csv", nargs="?", help="one row per training run (or --mlflow, --wandb)")
    s.add_argument("--mlflow", metavar="EXPERIMENT", help="read the runs of this MLflow experiment instead")
    s.add_argument("--tracking-uri", metavar="URI", help="--mlflow: the tracking server or store (default: "
                                                         "MLFLOW_TRACKING_URI)")
    s.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs of this W&B project instead (needs "
                                                             "a network and a W&B login)")
    s.add_argument("--out", required=True, help="folder for the analysis files")
    s.add_argument("--histories", help="per-epoch records (CSV: config, seed, epoch, the metric): checks that "
                                       "the learning curves levelled off (summary.json's not_converged)")
    s.add_argument("--params", help="take defaults from this params file's stats section")
    s.add_argument("--metric", help="metric column (default: val_acc)")
    s.add_argument("--direction", choices=["max", "min"], help="max: larger is better (default); min")
    s.add_argument("--baseline", help="the config every variant is compared with (default: baseline)")
    s.add_argument("--alpha", type=float, help="family-wise error rate of the verdicts (default: 0.05)")
    s.add_argument("--correction", choices=["sidak", "bonferroni", "none"],
                   help="single-step adjustment over the variants (default: sidak)")
    s.add_argument("--equivalence-margin", type=float,
                   help="'equivalent' = interval within ± this (metric units; default: the noise floor)")
    _table_options(s)
    s.add_argument("--json", action="store_true", help="also print summary.json on stdout, for scripts")
    s.set_defaults(func=cmd_analyze)

    s = command("plot", "render the figures",
                "Reads RUNS, ANALYSIS/ and optionally HISTORIES; writes OUT/*.png. The baseline and the "
                "seeds come from the runs table and the analysis, not from a params file.")
    s.add_argument("--runs", required=True, help="the runs table the analysis read")
    _table_options(s)
    s.add_argument("--histories", help="learning curves (epoch rows); without it that figure is left out")
    s.add_argument("--analysis", required=True, help="folder written by `noisefloor analyze`")
    s.add_argument("--out", required=True, help="folder for the PNG figures")
    s.set_defaults(func=cmd_plot)

    s = command("report", "write the self-contained HTML report",
                "Reads ANALYSIS/ and PLOTS/*.png (and PARAMS to quote it, RUNS to list every run); writes OUT.")
    s.add_argument("--params", help="params file to quote in the report")
    s.add_argument("--analysis", required=True, help="folder written by `noisefloor analyze`")
    s.add_argument("--plots", required=True, help="folder written by `noisefloor plot`")
    s.add_argument("--runs", help="the runs table, listed run by run (and its devices and training time)")
    _table_options(s)
    s.add_argument("--histories", help="the learning curves, logged with each run when PARAMS names trackers")
    s.add_argument("--out", required=True, help="the HTML file to write")
    s.set_defaults(func=cmd_report)

    s = command("track", "log the runs and the analysis to the trackers in PARAMS (MLflow, W&B)",
                "Reads PARAMS' tracking section and the results; logs every finished run (params, seed, stage, "
                "config hash, learning curve, final metrics) that a tracker does not have yet, and the analysis "
                "with the report. The report step does this by itself; run it after a tracker was down. Exits 1 "
                "when a tracker could not be reached.")
    _params_option(s)
    s.add_argument("--runs", default="results/runs.csv", help="the runs table")
    s.add_argument("--histories", default="results/histories.csv", help="the learning curves")
    s.add_argument("--analysis", default="results/analysis", help="folder written by `noisefloor analyze`")
    s.add_argument("--report", default="results/report.html", help="the report (logged as a file; W&B's "
                                                                    "offline runs go beside it)")
    s.set_defaults(func=cmd_track, config_col=None, seed_col=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.raw_argv = argv
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except NoisefloorError as exc:        # the user's to fix: one line; anything else keeps its traceback
        _err(str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:                # a path of the user's that cannot be read or written (--out /proc/x)
        if exc.filename is None:
            raise
        _err(f"{exc.filename}: {exc.strerror or exc}")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
