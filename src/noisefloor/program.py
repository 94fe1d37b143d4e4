"""The user's own training program as the run: a command template or a Python entry point.

With ``program.command`` or ``program.entry`` in params.yaml, one (config,
seed) run executes the user's program instead of the built-in BiLSTM, and
everything around it stays the same: caching under both engines, the Slurm
profile, the runs table, the analysis, the report.

The run contract (what :func:`run` checks):

- The program gets the run's hyperparameters, its seed and an output folder
  (``{out}``; the entry point's ``out``), which is also its working folder:
  links there make it read like the params file's folder, and what the
  program creates there is the run's own, so parallel runs never collide.
- Its metrics come from what it prints (``program.parse``: a regular
  expression per metric; the last match is the value, several matches are
  a per-epoch history) or from ``metrics.json`` in ``{out}``: a JSON object
  with at least the analysed metric (``stats.metric``); every other number
  in it becomes a column of the runs table. An entry point may return that
  dict instead. It may write ``history.csv`` (one row per epoch, an
  ``epoch`` column): the report's learning curves come from it.
- A non-zero exit, a missing ``metrics.json``, a missing metric or one that is
  not a number fails the run with one line naming the run, the file and the
  key; the program's own output is in the run's log above it. A NaN or
  infinite metric is a result: the run is recorded as diverged.
- The run's ``metrics.json`` (noisefloor's record: the program's numbers plus
  the run's identity and provenance) is written last and atomically, only
  once the program's outputs passed; a killed run leaves nothing that looks
  finished. The program's folder is emptied before a run unless
  ``program.resumes`` says it continues from its own checkpoints there.

Nothing here imports torch: a program's run costs its own imports only.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from . import __version__, io
from .errors import NoisefloorError
from .runfiles import HISTORY_FILE, METRICS_FILE, OWN_FIELDS, RunRecord
from .vocab import Stage

#: Placeholders a command template may use besides the hyperparameters.
RESERVED = {"seed": "the run's seed", "out": "the run's output and working folder (absolute)",
            "python": "the Python interpreter running noisefloor"}
#: The subfolder of a run's folder that a program writes into (its ``{out}``).
WORK_DIR = "program"
#: In the program's folder: which (config hash, seed, code) it belongs to.
OWNER_FILE = ".noisefloor-run.json"

Log = Callable[[str], None]


class ProgramError(NoisefloorError, RuntimeError):
    """A run of the user's program failed or broke the run contract (one line naming run, file and key)."""


# --------------------------------------------------------------------------- the command template


def placeholders(template: str) -> list[str]:
    """The placeholder names of a command template, in order of first use.

    Raises
    ------
    ValueError
        The template is malformed (an unmatched brace) or a placeholder is not
        a plain name (``{a.b}``, ``{a[0]}``, ``{}``).
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template ({exc}; write {{{{ and }}}} for literal braces)") from None
    for _, field, _, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"placeholder {{{field}}} is not a name (write {{name}}; {{{{ for a literal brace)")
        if conversion is not None:
            raise ValueError(f"placeholder {{{field}!{conversion}}}: conversions are not supported "
                             f"(write {{{field}}}, or a format such as {{{field}:.0e}})")
        if field not in names:
            names.append(field)
    return names


def check_command(template: str, hyperparameters: Mapping[str, Any], *, out_optional: bool = False) -> str | None:
    """The one-line problem with ``template`` for these hyperparameters, or None when it fits.

    Every placeholder must name a hyperparameter or a reserved name
    (:data:`RESERVED`); every hyperparameter must be used (else changing it
    would change nothing the program sees); ``{seed}`` is required, and
    ``{out}`` too unless the metrics are read another way (``out_optional``: ``program.parse`` or
    ``program.metrics_file``).
    """
    try:
        names = placeholders(template)
        shlex.split(template)
    except ValueError as exc:
        return str(exc)
    shell = _shell_syntax(template)
    if shell:
        return (f"{shell!r} is shell syntax, and no shell runs the command (each word is one argument of the "
                "program): use a placeholder such as {lr} for a value, and redirect or pipe inside the program "
                "or a script it runs")
    unknown = [n for n in names if n not in hyperparameters and n not in RESERVED]
    if unknown:
        return (f"placeholder {{{unknown[0]}}} names no hyperparameter (hyperparameters: "
                f"{', '.join(hyperparameters) or 'none'}; also {', '.join('{' + r + '}' for r in RESERVED)})")
    unused = [k for k in hyperparameters if k not in names]
    if unused:
        return (f"hyperparameter {unused[0]!r} is never used by the command (add {{{unused[0]}}} to it, "
                "or remove the hyperparameter)")
    for required in ("seed",) if out_optional else ("seed", "out"):
        if required not in names:
            return f"no {{{required}}} placeholder: the program must receive {RESERVED[required]}"
    return None


def _shell_syntax(template: str) -> str | None:
    """The first piece of shell syntax outside quotes (a redirection, a pipe, ``;``, ``&``, ``$VAR``, ``${...}``,
    ``$(...)``, a backquote), or None. A quoted word stays one argument, as the user meant."""
    lexer = shlex.shlex(template, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    operators = [word for word in lexer if word and set(word) <= set("();<>|&")]
    if operators:
        return operators[0]
    found = re.search(r"\$[A-Za-z_{(]|`", template)
    return found.group(0) if found else None


def check_pattern(pattern: str) -> str | None:
    """The one-line problem with a ``program.parse`` regular expression (it must compile, with one group), or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"'{pattern}' is not a regular expression ({exc})"
    if compiled.groups != 1:
        return (f"'{pattern}' has {compiled.groups} groups; it needs exactly one, around the number "
                r"(e.g. 'val_acc=([-+.\deE]+)'; write (?:...) for a group that is not the value)")
    return None


def check_rendering(template: str, hyperparameters: Mapping[str, Any]) -> str | None:
    """The one-line problem when a config's values do not fit the template's formats (``{lr:.0e}`` of text), or None."""
    try:
        command_argv(template, hyperparameters, 0, Path("out"))
    except (ValueError, TypeError) as exc:
        return f"cannot fill in the command ({exc})"
    return None


def _render(value: Any) -> str:
    """A hyperparameter value as one command-line argument (YAML spelling for booleans and null)."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


#: A word that is exactly one placeholder with a spec that renders to any number of arguments.
_WHOLE_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):(flag(?:=[^{}]+)?|args)\}")


def _words(name: str, spec: str, value: Any) -> list[str]:
    """``{name:flag}`` (``--name`` when true, nothing when false; ``{name:flag=--other}`` names the flag) and
    ``{name:args}`` (a list as one argument per item)."""
    if spec == "args":
        if not isinstance(value, list):
            raise ValueError(f"{{{name}:args}} needs a list, and {name} is {value!r}")
        return [_render(v) for v in value]
    if not isinstance(value, bool):
        raise ValueError(f"{{{name}:{spec}}} needs true or false, and {name} is {value!r}")
    return [spec.partition("=")[2] or f"--{name}"] if value else []


def command_argv(template: str, hyperparameters: Mapping[str, Any], seed: int, out: Path) -> list[str]:
    """The argument vector of one run: the template split like a shell would, then each word filled in.

    No shell runs it, so a value is always exactly one argument, whatever it
    contains, except a word that is only ``{name:flag}`` or ``{name:args}``,
    which becomes as many arguments as it says (none for a false flag).
    """
    values = {k: _RenderAs(k, v) for k, v in hyperparameters.items()}
    values.update(seed=seed, out=str(out), python=sys.executable)
    argv: list[str] = []
    for word in shlex.split(template):
        whole = _WHOLE_WORD.fullmatch(word)
        if whole and whole.group(1) in hyperparameters:
            argv += _words(whole.group(1), whole.group(2), hyperparameters[whole.group(1)])
        else:
            argv.append(word.format(**values))
    return argv


class _RenderAs:
    """Formats as :func:`_render` without a format spec, and like the value itself with one (``{lr:.0e}``)."""

    def __init__(self, name: str, value: Any):
        self.name, self.value = name, value

    def __format__(self, spec: str) -> str:
        if spec == "args" or spec.startswith("flag"):
            raise ValueError(f"{{{self.name}:{spec}}} must be a word of its own (it may become several "
                             "arguments, or none)")
        return format(self.value, spec) if spec else _render(self.value)


# --------------------------------------------------------------------------- the entry point


def check_entry(entry: str, root: Path) -> str | None:
    """The one-line problem with ``module:function`` or ``file.py:function``, or None.

    Checked without running the user's code: the file (or the module's source,
    found as an import would find it from ``root``) must define ``function`` at
    its top level.
    """
    import ast

    target, _, function = entry.rpartition(":")
    if target.endswith(".py"):
        source = root / target
        if not source.is_file():
            return f"{target!r} not found (a file is relative to the params file's folder, {root})"
    elif not all(part.isidentifier() for part in target.split(".")):
        return f"{target!r} is neither a module name nor a .py file"
    else:
        sys.path.insert(0, str(root))
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec = None
        finally:
            sys.path.remove(str(root))
        if spec is None:
            return f"module {target!r} not found (from {root} or the installed packages)"
        if not (spec.origin or "").endswith(".py"):
            return None                  # a compiled or namespace module: found, its function checked when run
        source = Path(spec.origin)
    try:
        tree = ast.parse(source.read_text(), filename=str(source))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        return f"{source}: cannot be read as Python ({exc})"
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)}
    defined |= {(a.asname or a.name).split(".")[0] for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    if function not in defined:
        return f"{source.name} defines no function {function!r}"
    return None


def load_entry(entry: str, root: Path) -> Callable:
    """The callable an entry names; ``root`` (the params file's folder) is where modules and files are found."""
    target, _, function = entry.rpartition(":")
    if target.endswith(".py"):
        path = (root / target).resolve()
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(root))
        module = importlib.import_module(target)
    try:
        return getattr(module, function)
    except AttributeError:
        raise ProgramError(f"program.entry: {target} has no function {function!r}") from None


def entry_main(argv: list[str] | None = None) -> int:
    """``python -m noisefloor.program ENTRY ROOT HYPERPARAMETERS_JSON SEED OUT``: call an entry point once.

    Runs in a process of its own for every run, so no state leaks from one
    run into the next and a crash is a failed run, not a failed harness. A
    returned dict becomes ``OUT/metrics.json``; a function that wrote the file
    itself returns None.
    """
    entry, root, hparams, seed, out = sys.argv[1:] if argv is None else argv
    try:
        fn = load_entry(entry, Path(root))
    except ProgramError as exc:
        print(f"noisefloor: error: {exc}", file=sys.stderr)
        return 2
    result = fn(json.loads(hparams), int(seed), Path(out))
    if result is None:
        return 0
    if not isinstance(result, Mapping):
        print(f"noisefloor: error: program.entry {entry} returned a {type(result).__name__}, not a dict of "
              "metrics (or None after writing metrics.json itself)", file=sys.stderr)
        return 2
    io.write_text(Path(out) / METRICS_FILE, json.dumps(dict(result), indent=2) + "\n")
    return 0


def check_dvc_stages(dvc_yaml: Path, deps, sweep: bool = False) -> str | None:
    """The one-line problem when ``dvc_yaml``'s training stages do not know the program, or None.

    DVC learns what shapes a run from its stage (deps, params), not from
    params.yaml: each training stage must list every ``program.deps`` path and
    the ``program`` and ``hyperparameters`` params, or an edit of them retrains nothing.
    The sweep's stage (required with a ``sweep`` section) reads the whole params file.
    """
    import yaml

    def covered(dep: str, listed: list[str]) -> bool:
        """``dep`` is listed, itself or through a folder above it (paths compared normalised)."""
        dep = os.path.normpath(dep)
        return any(dep == d or (d == os.curdir and not os.path.isabs(dep) and not dep.startswith(os.pardir))
                   or dep.startswith(d.rstrip(os.sep) + os.sep) for d in map(os.path.normpath, listed))

    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    for name, needed in ((Stage.TRAIN_NOISE, ("program", "hyperparameters")),
                         (Stage.TRAIN_SIGNAL, ("program", "hyperparameters", "configs.${item.config}")),
                         (Stage.TRAIN_SWEEP, ("params.yaml",))):
        if name == Stage.TRAIN_SWEEP and name not in stages and not sweep:
            continue
        if name not in stages:
            return f"{dvc_yaml}: no stage {name!r}"
        stage = stages[name]
        missing = [d for d in deps if not covered(d, [str(x) for x in stage.get("deps") or []])]
        if missing:
            return f"{dvc_yaml}: stages.{name}.deps: {missing[0]!r} is in program.deps but not here"
        params = [next(iter(p)) if isinstance(p, dict) else p for p in stage.get("params") or []]
        for section in needed:
            if section not in params:
                return f"{dvc_yaml}: stages.{name}.params: {section!r} missing (its values shape the runs)"
    return None


# --------------------------------------------------------------------------- what shapes the results


def code_files(root: Path, deps) -> dict[str, str]:
    """Each file under ``deps``: its path (relative to ``root``) -> its content hash; what a run records so that a
    later edit can be named by file (``noisefloor status``)."""
    root = Path(root)
    return {Path(os.path.relpath(p, root)).as_posix(): io.fingerprint(root, [p])
            for dep in deps for p in io.files_under(root / dep)}


def deps_fingerprint(root: Path, deps) -> str:
    """A content hash of the program's declared deps (16 hex digits): their paths and bytes.

    What ``code_fingerprint`` records for a program's run, and what makes both
    engines retrain when the user's code changes. Undeclared files do not count.
    """
    return io.fingerprint(root, [path for dep in deps for path in io.files_under(Path(root) / dep)])


# --------------------------------------------------------------------------- one run


def _copy_output(proc: subprocess.Popen, log: Log, parser: "_Parser") -> None:
    """Copy the program's output, line by line, into the run's log, and read its metrics from it as it goes."""
    for line in proc.stdout:
        line = line.rstrip("\n")
        log(line)
        parser.feed(line)


class _Parser:
    """``program.parse``: each metric's values, in the order the program printed them."""

    def __init__(self, patterns: Mapping[str, str]):
        self.patterns = {metric: re.compile(p) for metric, p in patterns.items()}
        self.found: dict[str, list[float]] = {metric: [] for metric in patterns}
        self.bad: tuple[str, str] | None = None        # the first (metric, text) that is not a number

    def feed(self, line: str) -> None:
        for metric, pattern in self.patterns.items():
            for match in pattern.finditer(line):
                try:
                    self.found[metric].append(float(match.group(1)))
                except (TypeError, ValueError):
                    self.bad = self.bad or (metric, match.group(0))

    def numbers(self, tag: str) -> dict[str, float]:
        """The last value of each metric.

        Raises
        ------
        ProgramError
            A metric matched nothing, or matched text that is not a number.
        """
        if self.bad:
            metric, text = self.bad
            raise ProgramError(f"{tag} program.parse.{metric}: matched {text!r}, whose group is not a number")
        for metric, values in self.found.items():
            if not values:
                raise ProgramError(f"{tag} program.parse.{metric}: nothing the program printed matched "
                                   f"'{self.patterns[metric].pattern}' (its output is above, in the run's log)")
        return {metric: values[-1] for metric, values in self.found.items()}

    def history(self) -> str | None:
        """A per-epoch table of the metrics printed more than once (epoch 1, 2, ...), as CSV text; None if none."""
        import pandas as pd

        series = {m: v for m, v in self.found.items() if len(v) > 1}
        if not series:
            return None
        epochs = max(map(len, series.values()))
        table = pd.DataFrame({"epoch": range(1, epochs + 1),
                              **{m: v + [math.nan] * (epochs - len(v)) for m, v in series.items()}})
        return table.to_csv(index=False)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_metrics_file(out: Path, pattern: str, tag: str) -> tuple[dict[str, float], str | None]:
    """``program.metrics_file``: the numbers of the file it names under ``out``, and its history as CSV text.

    A JSON object gives its top-level numbers; a CSV log gives each numeric
    column's last value, and, with several rows, is the per-epoch history (its
    ``epoch`` column, else ``step``, else the row number).

    Raises
    ------
    ProgramError
        No file, or several, match; or the file cannot be read as either.
    """
    import pandas as pd

    matches = sorted(p for p in out.glob(pattern) if p.is_file())
    if len(matches) != 1:
        found = f"{len(matches)} files match it ({', '.join(p.name for p in matches[:3])})" if matches else \
            "the program wrote no such file"
        raise ProgramError(f"{tag} program.metrics_file: {pattern!r} in {out}: {found}")
    path = matches[0]
    if path.suffix.lower() != ".csv":
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProgramError(f"{tag} {path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ProgramError(f"{tag} {path}: a JSON object of metrics was expected")
        return {k: v for k, v in data.items() if _is_number(v)}, None
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{tag} {path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    numeric = table.select_dtypes("number")
    last = {c: float(numeric[c].dropna().iloc[-1]) for c in numeric.columns if numeric[c].notna().any()}
    if len(table) < 2:
        return last, None
    epoch = next((c for c in ("epoch", "step") if c in numeric.columns), None)
    history = numeric.drop(columns=[epoch]) if epoch else numeric
    # One row per epoch (a logger may write a metric's value on a row of its own): the last value of each.
    steps = numeric[epoch] if epoch else pd.Series(range(1, len(table) + 1), index=table.index)
    history = history.groupby(steps.to_numpy(), sort=True).last()
    if all(float(e).is_integer() for e in history.index):
        history.index = history.index.astype(int)
    history.index.name = "epoch"
    return last, history.reset_index().to_csv(index=False)


def read_program_metrics(path: Path, metric: str, tag: str, parsed: Mapping[str, float] | None = None,
                         source: str | None = None) -> tuple[dict[str, float | None], bool]:
    """The numbers of a program's ``metrics.json`` (and those ``parsed`` from its output) and whether
    ``metric`` is finite.

    Returns
    -------
    (dict, bool)
        Every top-level number (non-finite ones as None, as JSON has no NaN);
        other values are left out. A parsed number wins over the file's. The
        flag is False when the run diverged.

    Raises
    ------
    ProgramError
        One line naming the run, the file and the key: the file is missing
        (and ``metric`` was not parsed), is not a JSON object, lacks ``metric``
        or holds something else than a number there.
    """
    parsed = dict(parsed or {})
    if source is not None and metric not in parsed:
        raise ProgramError(f"{tag} program.metrics_file {source}: no {metric!r} (stats.metric; it has: "
                           f"{', '.join(parsed) or 'no numbers'})")
    try:
        data = json.loads(path.read_text()) if path.exists() or metric not in parsed else {}
    except FileNotFoundError:
        raise ProgramError(f"{tag} {path}: missing: the program exited 0 without writing it "
                           f"(it must hold at least {metric!r})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProgramError(f"{tag} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProgramError(f"{tag} {path}: a JSON object of metrics was expected, not a {type(data).__name__}")
    data = {**data, **parsed}
    if metric not in data:
        raise ProgramError(f"{tag} {path}: no {metric!r} (stats.metric; it has: {', '.join(data) or 'nothing'})")
    if not _is_number(data[metric]):
        raise ProgramError(f"{tag} {path}: {metric!r} is {data[metric]!r}, not a number "
                           "(write NaN for a diverged run)")
    def finite(v) -> bool:
        return not isinstance(v, float) or math.isfinite(v)     # an int is finite however large

    numbers = {k: v if finite(v) else None for k, v in data.items() if _is_number(v) and k not in OWN_FIELDS}
    return numbers, finite(data[metric])


def read_program_history(path: Path, tag: str) -> tuple[str, int] | None:
    """The program's ``history.csv`` as text and its number of epochs, checked to be a table with an
    ``epoch`` column; None if absent."""
    import pandas as pd

    if not path.exists():
        return None
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{tag} {path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if "epoch" not in table.columns:
        raise ProgramError(f"{tag} {path}: no 'epoch' column (it has: {', '.join(map(str, table.columns))})")
    return path.read_text(), len(table)


def _read_owner(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


#: Never linked into a run's working folder: what noisefloor reads from it, and the engines' own folders.
_NOT_LINKED = {METRICS_FILE, HISTORY_FILE, OWNER_FILE, ".git", ".snakemake", ".dvc"}


def link_folder(out: Path, root: Path) -> list[Path]:
    """Make ``out`` a working folder that reads like ``root``: a link to each of ``root``'s entries.

    A run reads the user's files as if it ran in the user's folder (``data/``,
    ``train.py``, ``../data`` excepted), while what it creates (``model.pt``)
    is its own, so runs in parallel never overwrite each other. Entries that
    hold ``out`` itself (the results folder) are left out, and so is anything
    of the same name already in ``out`` (a resumed run's own files).

    Returns
    -------
    list of Path
        The links made, for :func:`unlink_folder`.
    """
    links = []
    here = out.resolve()
    for entry in sorted(root.iterdir()):
        link, target = out / entry.name, entry.resolve()
        if entry.name in _NOT_LINKED or here.is_relative_to(target):
            continue
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=target.is_dir())
            links.append(link)
    return links


def unlink_folder(links: list[Path]) -> None:
    """Remove the links :func:`link_folder` made (never what they point to)."""
    for link in links:
        if link.is_symlink():
            link.unlink()


def run(cfg, seed: int, run_dir: str | os.PathLike, *, metric: str, log: Log) -> dict:
    """Run the user's program for (``cfg``, ``seed``); adopt and record its outputs in ``run_dir``.

    Parameters
    ----------
    cfg : noisefloor.params.ProgramConfig
    seed : int
    run_dir : path
        The run's folder: receives ``metrics.json`` and ``history.csv``; the
        program runs in its ``program/`` subfolder (its ``{out}``), linked to
        the user's folder (:func:`link_folder`).
    metric : str
        The analysed metric, which the program's ``metrics.json`` must hold.
    log : callable
        Receives the program's output, line by line (the run's log).

    Returns
    -------
    dict
        The record written to ``run_dir/metrics.json``.

    Raises
    ------
    ProgramError
        The program failed or broke the contract; nothing is written to ``run_dir``.
    """
    spec, tag = cfg.program, f"[{cfg.name} seed={seed}]"
    run_dir = Path(run_dir).resolve()
    out = run_dir / WORK_DIR
    # Whose folder it is: a program resumes only its own (config, seed, code)'s checkpoints, never
    # those of another config or of code since edited.
    owner = {"config_hash": cfg.config_hash, "seed": int(seed), "code_fingerprint": cfg.code_fingerprint}
    files = code_files(spec.root_path, spec.deps)      # the code that runs, read once, before it runs
    marker = out / OWNER_FILE
    if not spec.resumes or not marker.is_file() or _read_owner(marker) != owner:
        if spec.resumes and out.exists():
            log(f"{tag} {out} holds another config's or code's outputs: starting over")
        shutil.rmtree(out, ignore_errors=True)     # an interrupted run restarts from nothing
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(marker, owner)
    # A run's previous record goes first: from here until the new one is written, the run is not finished.
    (run_dir / METRICS_FILE).unlink(missing_ok=True)
    if spec.command is not None:
        argv = command_argv(spec.command, cfg.hparams, seed, out)
    else:
        argv = [sys.executable, "-m", "noisefloor.program", spec.entry, str(spec.root_path),
                json.dumps(dict(cfg.hparams)), str(seed), str(out)]
    python_path = os.pathsep.join(filter(None, [str(spec.root_path), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), MKL_NUM_THREADS=str(spec.threads),
               PYTHONPATH=python_path)
    log(f"{tag} running: {shlex.join(argv)}")
    parser = _Parser(spec.parse)
    links = link_folder(out, spec.root_path)
    t0 = time.perf_counter()
    try:
        try:
            proc = subprocess.Popen(argv, cwd=out, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        except OSError as exc:
            raise ProgramError(f"{tag} program.command: cannot start {argv[0]!r} ({exc.strerror})") from None
        _copy_output(proc, log, parser)
        rc = proc.wait()
    finally:
        unlink_folder(links)
    elapsed = time.perf_counter() - t0
    if rc != 0:
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        raise ProgramError(f"{tag} the program {how} (its output is above, in the run's log)")
    logged, logged_history = ({}, None) if spec.metrics_file is None else \
        read_metrics_file(out, spec.metrics_file, tag)
    numbers, finite = read_program_metrics(out / METRICS_FILE, metric, tag, {**logged, **parser.numbers(tag)},
                                           source=None if spec.metrics_file is None else spec.metrics_file)
    history = read_program_history(out / HISTORY_FILE, tag)
    for text in (logged_history, parser.history()):
        if history is None and text is not None:
            history = text, text.count("\n") - 1
    record = {
        **numbers,
        "config": cfg.name, "seed": int(seed), "config_hash": cfg.config_hash,
        "status": "ok" if finite else "diverged",
        "epochs_run": history[1] if history else None,
        "wall_time_s": elapsed, "threads": spec.threads, "device": None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID") or None,
        "code_fingerprint": owner["code_fingerprint"], "program": spec.describe(), "code_files": files,
        "program_metrics": sorted(numbers),
        "versions": {"python": platform.python_version(), "noisefloor": __version__},
        "resolved_config": cfg.as_dict(),
    }
    if not finite:
        log(f"{tag} {metric} is not finite: recorded as diverged")
    io.write_text(run_dir / HISTORY_FILE, history[0] if history is not None else "epoch\n")
    RunRecord.from_dict(record).write(run_dir)
    if not spec.keep_outputs:
        shutil.rmtree(out, ignore_errors=True)
    return record


if __name__ == "__main__":
    sys.exit(entry_main())
