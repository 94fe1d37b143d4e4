"""Tests for noisefloor.report: numbers, escaping, self-containedness, missing values."""

from __future__ import annotations

import base64
import re
from html import unescape
from html.parser import HTMLParser

import pandas as pd
import pytest
from matplotlib.figure import Figure

import synthetic as sy
from noisefloor.display import format_diff, format_interval, format_p, format_spread
from noisefloor.io import save_figure
from noisefloor.report import render_report, seeds_needed_sentence, variant_sentence
from noisefloor.stats import Summary, analyze

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictParser(HTMLParser):
    """Collects tags and <img> sources and fails on unbalanced markup."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.img_srcs: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.img_srcs.append(dict(attrs).get("src", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def page_text(html: str) -> str:
    """Visible text, one space between text nodes (entities decoded), without the CSS."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    chunks = [c.strip() for c in parse(html).text]
    return re.sub(r"\s+", " ", " ".join(c for c in chunks if c))


# ---------------------------------------------------------------------------
# inputs: the real analysis of a synthetic sweep (the result fixture, in conftest.py)
# ---------------------------------------------------------------------------


@pytest.fixture
def plot_files(tmp_path):
    paths = {}
    for name in ("noise_vs_signal", "differences"):
        fig = Figure(figsize=(3, 2))
        fig.add_subplot().plot([0, 1, 2], [1, 3, 2])
        paths[name] = tmp_path / "plots" / f"{name}.png"
        save_figure(paths[name], fig, dpi=50)
    return paths


def render(tmp_path, result, plots, **kwargs) -> str:
    out = render_report(result.summary, result.comparisons, result.importance, plots,
                        tmp_path / "out" / "report.html", **kwargs)
    assert out == tmp_path / "out" / "report.html"
    return out.read_text(encoding="utf-8")


def first_screen(html: str) -> str:
    """The text of the page up to the figures: what a reader sees before scrolling."""
    top = re.sub(r"<style>.*?</style>", "", html.split('<h2 id="figures">')[0].split('<h2 id="details">')[0],
                 flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", top))).strip()


# ---------------------------------------------------------------------------
# number formatting (one definition, shared by the CLI, report and figures)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, fraction, expected", [
    (0.0041, True, "+0.41 pp"),
    (-0.0153, True, "-1.53 pp"),
    (0.0, True, "0.00 pp"),
    (-0.00001, True, "0.00 pp"),
    (-0.0123, False, "-0.0123"),
    (12.5, False, "+12.5"),
    (None, True, "n/a"),
    (float("nan"), False, "n/a"),
    (float("inf"), True, "n/a"),
])
def test_format_diff(value, fraction, expected):
    assert format_diff(value, fraction) == expected


def test_format_spread_interval_and_p():
    assert format_spread(0.0023, True) == "0.23 pp"
    assert format_interval(0.0012, 0.0070, True) == "0.12 to 0.70"
    assert format_interval(None, 0.1, True) == "n/a"
    assert format_p(0.0004) == "< 0.001" and format_p(0.0412) == "= 0.041" and format_p(None) == "n/a"


# ---------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------


def test_variant_sentence_states_the_tables_interval_and_verdict(result):
    row = result.comparisons.set_index("config").loc["lr_hi"].to_dict() | {"config": "lr_hi"}
    text = variant_sentence(row, result.summary, True)
    expected_ci = format_interval(row["ci_low"], row["ci_high"], True)
    assert text == f"lr_hi: {format_diff(row['diff'], True)} (95 % simultaneous interval {expected_ci}), better"


def test_variant_sentence_in_metric_units_for_a_loss():
    row = {"config": "wd", "diff": -0.0123, "ci_low": -0.0200, "ci_high": -0.0046, "simultaneous_level": 0.95,
           "verdict": "better"}
    assert variant_sentence(row, Summary(metric="val_loss"), False) == \
        "wd: -0.0123 (95 % simultaneous interval -0.0200 to -0.0046), better"


def test_seeds_needed_sentence_for_an_inconclusive_variant(result):
    row = result.comparisons[result.comparisons.verdict == "inconclusive"].iloc[0]
    text = seeds_needed_sentence(row, result.summary, True)
    assert text.startswith(f"{row['config']}: about {int(row['seeds_needed'])} seeds per config")
    assert f"{int(row['seeds_needed_upper'])} if the spreads are at the noise floor's upper bound" in text
    # the planning number for a named effect, read from the same row
    assert f"{int(row['seeds_for_margin'])} would detect a true difference of one margin" in text


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------


def test_report_is_self_contained(tmp_path, result, plot_files):
    html = render(tmp_path, result, plot_files, params_text="seeds: 20")
    parsed = parse(html)
    assert parsed.img_srcs and all(s.startswith("data:image/png;base64,") for s in parsed.img_srcs)
    for src in parsed.img_srcs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_SIGNATURE
    assert not re.search(r"(src|href)=\"(http|//)", html)
    assert "<script" not in html
    assert "seeds: 20" in page_text(html)


def test_first_screen_is_the_answer(tmp_path, result, plot_files):
    html = render(tmp_path, result, plot_files)
    top = first_screen(html)
    s = result.summary
    # the question: metric, baseline, how many seeds
    assert "Does any variant change val_acc (higher is better) beyond seed noise?" in top
    assert f"The baseline at {s.n_baseline} seeds, {s.n_variants} variants at 4 to 5 seeds" in top
    # the noise floor, and the verdict counts as in the summary
    assert f"Seed noise alone moves val_acc by ±{format_spread(s.noise_floor, True)}" in top
    assert "Of 5 variants: 1 better, 1 worse, 1 equivalent, 2 inconclusive." in top
    # the verdict table, baseline first, every variant with the table's interval and verdict
    table = html.split('<div id="verdicts">')[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)[1:]
    assert '<td data-label="Config">baseline</td>' in rows[0] and "reference" in rows[0]
    comp = result.comparisons.set_index("config")
    for row_html in rows[1:]:
        name = re.search(r"<td[^>]*>(.*?)</td>", row_html).group(1)
        r = comp.loc[name]
        assert format_interval(r["ci_low"], r["ci_high"], True) in row_html
        assert f">{r['verdict'].replace('_', ' ')}<" in row_html or r["verdict"] == "insufficient_runs"
    # at most four headline numbers
    headline = html.split('<div id="headline">')[1].split('<h2')[0]
    assert headline.count('class="card"') == 4
    assert "Noise floor" in headline and "0 % when they do nothing" in headline


def test_every_statement_about_a_variant_agrees(tmp_path, result, plot_files):
    text = page_text(render(tmp_path, result, plot_files))
    comp = result.comparisons.set_index("config")
    imp = result.importance.set_index("configs")
    for name, r in comp.iterrows():
        if r["verdict"] in ("better", "worse"):
            sentence = variant_sentence(r.to_dict() | {"config": name}, result.summary, True)
            assert sentence in text
        # the importance row of its hyperparameter says "matters" exactly when the variant is decided
        if name in imp.index:
            assert (imp.loc[name, "verdict"] == "matters") == (r["verdict"] in ("better", "worse"))


def test_details_define_every_number_they_show(tmp_path, result, plot_files):
    html = render(tmp_path, result, plot_files)
    glossary = unescape(html.split('id="glossary"')[1].split("</dl>")[0])
    for name in ("noise_floor", "hp_variance_share", "configs_differ_pvalue", "var_seed", "seeds_for_equivalence"):
        meta = Summary.describe(name)
        assert meta["label"] in glossary and meta["definition"].split(":")[0] in glossary
    assert "Null value: 0." in glossary


def test_report_escapes_user_text(tmp_path, result, plot_files):
    comp = result.comparisons.copy()
    comp.loc[0, "config"] = "<script>alert(1)</script>"
    imp = result.importance.copy()
    imp.loc[0, "hparam"] = '<img src="x" onerror="alert(2)">'
    out = render_report(result.summary, comp, imp, plot_files, tmp_path / "r.html",
                        params_text="a: <b>bold</b>", notes=["<i>note</i>"])
    html = out.read_text()
    assert "<script>" not in html and 'onerror="alert' not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parse(html)


def test_report_handles_missing_values_and_empty_tables(tmp_path):
    out = render_report(Summary(metric="val_acc", baseline="baseline", alpha=0.05, n_variants=0,
                                n_baseline=3, confidence_level=0.95),
                        pd.DataFrame(), pd.DataFrame(), {}, tmp_path / "r.html")
    text = page_text(out.read_text())
    assert "No variant was compared with the baseline." in text
    assert "No hyperparameter was varied" in text
    assert "nan" not in text.lower().split() and "None" not in text


def test_report_notes_a_missing_figure(tmp_path, result, plot_files):
    plots = {**plot_files, "importance": tmp_path / "does_not_exist.png"}
    assert "Figure importance is not available" in page_text(render(tmp_path, result, plots))


def test_report_in_metric_units_for_a_loss(tmp_path):
    runs = sy.make_runs()
    res = analyze(runs, "val_loss", direction="min", n_boot=100)
    out = render_report(res.summary, res.comparisons, res.importance, {}, tmp_path / "r.html")
    top = first_screen(out.read_text())
    assert "pp" not in top and "%" not in top.split("confidence")[0].split("Does any")[1][:60]
    assert "(lower is better)" in top


def test_provenance_and_every_run(tmp_path, result, plot_files):
    from noisefloor.provenance import provenance

    runs = sy.make_runs()
    rows = provenance(params_text="seeds: 20", runs=runs, eval_size=2000, cwd=tmp_path)
    labels = dict(rows)
    assert labels["git commit"] == "n/a"                   # not a git checkout: said, not an error
    assert labels["evaluation set"] == "2000 examples" and labels["runs"] == f"{len(runs)} (6 configs)"
    assert labels["noisefloor"] != "n/a" and labels["python"].count(".") == 2
    html = render(tmp_path, result, plot_files, runs=runs, provenance=rows)
    text = page_text(html)
    assert "Provenance" in text and "params file sha256" in text and "training time" in text
    runs_section = html.split('<details id="runs">')[1].split("</details>")[0]
    assert f"All {len(runs)} runs" in runs_section
    assert runs_section.count("<tr>") == len(runs) + 1      # a header and one row per run
    assert "diverged" in runs_section


def test_provenance_names_the_training_code_and_warns_when_runs_mix_versions(tmp_path):
    from noisefloor.provenance import provenance

    runs = sy.make_runs().assign(code_fingerprint="0123456789abcdef")
    assert dict(provenance(runs=runs, cwd=tmp_path))["training code"] == "0123456789abcdef (every run)"
    runs.loc[runs.index[:3], "code_fingerprint"] = "fedcba9876543210"
    line = dict(provenance(runs=runs, cwd=tmp_path))["training code"]
    assert line == (f"runs trained by 2 versions of the code: 0123456789abcdef ({len(runs) - 3} runs), "
                    "fedcba9876543210 (3 runs)")
    assert "training code" not in dict(provenance(runs=sy.make_runs(), cwd=tmp_path))   # a table without it


@pytest.mark.parametrize("case", ["one config", "constant metric", "a variant all diverged"])
def test_degenerate_analyses_render_and_say_why_a_number_is_missing(tmp_path, case):
    runs = sy.make_runs()
    if case == "one config":
        runs = runs[runs.config == sy.BASELINE]
    elif case == "constant metric":
        runs = runs.assign(val_acc=0.9, status="ok")
    else:
        runs.loc[runs.config == "lr_lo", "status"] = "diverged"
    res = analyze(runs, "val_acc", n_boot=50)
    out = render_report(res.summary, res.comparisons, res.importance, {}, tmp_path / "r.html", runs=runs)
    text = page_text(out.read_text())
    assert "nan" not in text.lower().split()
    if case == "one config":
        assert "No variant was compared with the baseline." in text
    elif case == "constant metric":
        assert "n/a: the runs do not vary (beyond rounding): no test is possible" in text
        assert "the spreads cannot be compared" in text
    else:
        assert "too few runs" in text and "lr_lo" in text


def test_a_search_folds_its_single_run_configs_and_says_what_one_run_each_can_tell(tmp_path):
    """40 searched configs at one seed: the first screen holds the best five and the search's sentence."""
    import numpy as np

    from noisefloor.display import SINGLE_RUNS_SHOWN
    from noisefloor.report import answer_sentence, render_report
    from noisefloor.stats import analyze

    rng = np.random.default_rng(2)
    rows = [{"config": "baseline", "seed": s, "val_acc": 0.9 + rng.normal(0, 0.01), "hp.lr": 0.003}
            for s in range(20)]
    rows += [{"config": f"sweep_{i:03d}", "seed": 0, "val_acc": 0.9 + rng.normal(0, 0.02),
              "hp.lr": float(rng.uniform(1e-4, 1e-2))} for i in range(40)]
    result = analyze(pd.DataFrame(rows), "val_acc", n_boot=200)
    s = result.summary
    out = tmp_path / "r.html"
    render_report(s, result.comparisons, result.importance, {}, out)
    html = out.read_text()
    visible, folded = html.split('<div id="verdicts">')[1].split('<details class="more">')
    assert visible.count("too few runs</span>") == SINGLE_RUNS_SHOWN
    assert folded.split("</details>")[0].count("too few runs</span>") == 40 - SINGLE_RUNS_SHOWN
    assert "35 more configs with one run each" in folded
    best = result.comparisons.sort_values("diff", ascending=False)["config"].iloc[0]
    assert f'<td data-label="Config">{best}</td>' in visible
    sentence = answer_sentence(s, result.comparisons, True)
    assert "The search ran 41 configs at seed 0" in sentence
    assert f"Its best, {s.search_winner}, is the true best of the top 5 with probability" in sentence
    assert "40 variants at 1 seed;" in html
    # The baseline's run at the search seed is among the searched; when it is the best, the answer says so.
    top = pd.DataFrame(rows).assign(val_acc=lambda d: d["val_acc"].where(
        (d["config"] != "baseline") | (d["seed"] != 0), 0.99))
    won = analyze(top, "val_acc", n_boot=200)
    assert won.summary.search_winner == "baseline"
    assert ("Its best is the baseline itself (baseline): no searched config beat it at that seed; it is the true "
            "best of the top 5 with probability") in answer_sentence(won.summary, won.comparisons, True)


def test_a_seed_that_changes_nothing_is_said_first_on_the_page_and_in_the_answer_line(tmp_path):
    """A program that ignores its seed: every seed of a config gives the very same number."""
    import dataclasses

    from noisefloor.cli import answer_line
    from noisefloor.report import render_report, seed_blind_sentence
    from noisefloor.stats import analyze

    runs = sy.make_runs()
    runs.loc[runs["config"] == "lr_hi", "val_acc"] = 0.975            # 5 seeds, one value: seed-blind
    two = runs[(runs["config"] == "lr_lo") & (runs["seed"].isin([0, 1]))]
    runs = pd.concat([runs[runs["config"] != "lr_lo"], two.assign(val_acc=0.96)])   # 2 equal seeds: chance
    result = analyze(runs, "val_acc", n_boot=200)
    assert result.summary.seed_blind == ["lr_hi"]
    out = tmp_path / "r.html"
    render_report(result.summary, result.comparisons, result.importance, {}, out)
    answer = unescape(out.read_text().split('<p class="answer" id="answer">')[1].split("</p>")[0])
    assert answer.startswith("Every seed of lr_hi gave exactly the same val_acc: the seed changes nothing in its "
                             "runs, so the spread below is not seed noise and no verdict on them means anything.")
    assert answer_line(result.summary).endswith("; the seed changes nothing in lr_hi (seed-blind)")
    both = dataclasses.replace(result.summary, seed_blind=["baseline", "lr_hi"])
    assert seed_blind_sentence(both).startswith("Every seed of baseline and of lr_hi gave exactly the same val_acc: "
                                                "the seed changes nothing in these runs")
    assert analyze(sy.make_runs(), "val_acc", n_boot=200).summary.seed_blind == []


def _answer(html: str) -> str:
    return unescape(html.split('<p class="answer" id="answer">')[1].split("</p>")[0])


def test_a_curve_still_climbing_is_said_in_the_answer_the_verdict_table_and_the_answer_line(tmp_path):
    import numpy as np

    from noisefloor.cli import answer_line

    runs = sy.make_runs()
    histories = sy.make_histories(runs)
    # every curve levelled off: the last epochs repeat each run's final value
    final = runs.set_index(["config", "seed"])["val_acc"]
    histories["val_acc"] = [final[(c, s)] for c, s in zip(histories["config"], histories["seed"])]
    flat = analyze(runs, "val_acc", histories=histories, n_boot=200)
    assert flat.summary.not_converged == []                      # every curve levelled off: nothing said
    html = render_report(flat.summary, flat.comparisons, flat.importance, {}, tmp_path / "flat.html").read_text()
    assert "converged" not in page_text(html) and "not converged" not in answer_line(flat.summary)

    last = histories.groupby("config")["epoch"].transform("max")
    ramp = np.where(histories["config"] == "lr_hi", 0.02 * (histories["epoch"] - last), 0.0)
    climbing = analyze(runs, "val_acc", histories=histories.assign(val_acc=histories["val_acc"] + ramp), n_boot=200)
    s = climbing.summary
    assert [r.config for r in s.not_converged] == ["lr_hi"] and s.not_converged[0].gain > s.noise_floor
    html = render_report(s, climbing.comparisons, climbing.importance, {}, tmp_path / "late.html").read_text()
    row = s.not_converged[0]
    assert (f"Not converged: lr_hi was still improving by more than the noise floor over epochs {row.first_epoch} "
            f"to {row.last_epoch} (lr_hi {format_diff(row.gain, True)}, at least {format_diff(row.gain_low, True)} "
            "at 95 % confidence)") in _answer(html)
    table = html.split('<div id="verdicts">')[1].split("</table>")[0]
    assert '<td data-label="Config">lr_hi (not converged)</td>' in table and table.count("not converged") == 1
    assert answer_line(s).endswith("; not converged: lr_hi")
    # Every config still climbing: named, with the range of their gains rather than a number each.
    everywhere = histories.assign(val_acc=histories["val_acc"] + 0.02 * (histories["epoch"] - last)
                                  * (1 + 0.1 * histories["config"].astype("category").cat.codes))
    s = analyze(runs, "val_acc", histories=everywhere, n_boot=200).summary
    rows = sorted(s.not_converged, key=lambda r: r.gain)
    assert len(rows) == runs["config"].nunique() > 2
    sentence = _answer(render_report(s, climbing.comparisons, climbing.importance, {}, tmp_path / "all.html")
                       .read_text())
    assert (f"over epochs {rows[0].first_epoch} to {rows[0].last_epoch} (gains {format_diff(rows[0].gain, True)} "
            f"to {format_diff(rows[-1].gain, True)}, each at least {format_diff(min(r.gain_low for r in rows), True)}"
            " at 95 % confidence)") in sentence
    assert sentence.count(" pp") < 12


def test_the_question_names_the_baseline_once(tmp_path):
    result = analyze(sy.make_runs(), "val_acc", n_boot=200)
    html = render_report(result.summary, result.comparisons, result.importance, {}, tmp_path / "r.html").read_text()
    assert "? The <b>baseline</b> at 20 seeds, 5 variants at" in html and "Baseline <b>baseline</b>" not in html
    renamed = analyze(sy.make_runs().replace({"config": {"baseline": "ref"}}), "val_acc", baseline="ref", n_boot=200)
    assert "? Baseline <b>ref</b> at 20 seeds" in render_report(renamed.summary, renamed.comparisons,
                                                                renamed.importance, {}, tmp_path / "s.html").read_text()


def test_only_a_winning_best_of_several_is_called_an_optimistic_pick():
    from noisefloor.report import answer_sentence

    result = analyze(sy.make_runs(), "val_acc", n_boot=200)
    s = result.summary
    assert s.best_verdict == "better" and s.n_variants > 1
    assert (f"The best of the {s.n_variants} variants ({s.best_config}) is an optimistic pick"
            in answer_sentence(s, result.comparisons, True))
    # The same runs with the winner's lead gone: its best is undecided, and nothing invites acting on it.
    runs = sy.make_runs()
    best = runs["config"] == s.best_config
    runs.loc[best, "val_acc"] = runs.loc[best, "val_acc"] - s.best_diff
    undecided = analyze(runs, "val_acc", n_boot=200)
    assert undecided.summary.best_verdict != "better"
    assert "optimistic pick" not in answer_sentence(undecided.summary, undecided.comparisons, True)


@pytest.mark.parametrize("eval_size, said", [(150, True), (100_000, False)])
def test_a_small_evaluation_set_is_said_on_the_first_screen(tmp_path, eval_size, said):
    result = analyze(sy.make_runs(), "val_acc", eval_size=eval_size, n_boot=200)
    s = result.summary
    assert (s.val_sampling_floor >= 0.5 * s.noise_floor) is said
    html = render_report(s, result.comparisons, result.importance, {}, tmp_path / "r.html").read_text()
    sentence = (f"The validation set of {eval_size} examples is small: which examples it holds moves an accuracy by "
                f"±{format_spread(s.val_sampling_floor, True)}")
    assert (sentence in first_screen(html)) is said


def test_a_feature_not_used_leaves_no_figure_or_placeholder(tmp_path):
    """An imported table (no learning curves, no search, no decomposition): the report shows only the figures
    that have something to show, and no panel that says there is nothing."""
    from noisefloor import cli
    from noisefloor.pipeline import FIGURES

    runs = sy.make_runs()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert cli.main(["analyze", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["plot", "--runs", str(tmp_path / "runs.csv"), "--analysis", str(tmp_path / "a"),
                     "--out", str(tmp_path / "p")]) == 0
    assert cli.main(["report", "--runs", str(tmp_path / "runs.csv"), "--analysis", str(tmp_path / "a"),
                     "--plots", str(tmp_path / "p"), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    shown = set(re.findall(r'<figure id="fig-(\w+)"', html))
    assert shown == {"noise_vs_signal", "config_distributions", "differences", "importance"}
    assert shown < {f.key for f in FIGURES}
    text = page_text(html)
    for placeholder in ("No search", "No noise budget", "not available", "No hyperparameter importance"):
        assert placeholder not in text


def test_one_config_under_two_names_is_said_in_the_answer_and_by_check(tmp_path, capsys):
    import yaml

    from noisefloor import cli
    from tests.helpers import SMOKE

    runs = sy.make_runs()
    runs["config_hash"] = runs["config"].map(lambda c: f"hash-{c}")
    twin = runs[(runs["config"] == "baseline") & runs["seed"].isin(sy.SIGNAL_SEEDS)].assign(config="wd_0")
    result = analyze(pd.concat([runs, twin], ignore_index=True), "val_acc", n_boot=200)
    assert result.summary.same_configs == [["baseline", "wd_0"]]
    html = render_report(result.summary, result.comparisons, result.importance, {}, tmp_path / "r.html").read_text()
    assert "wd_0 is the baseline under another name (their runs record the same config hash" in _answer(html)
    assert analyze(runs, "val_acc", n_boot=200).summary.same_configs == []

    raw = yaml.safe_load(SMOKE.read_text())
    raw["configs"]["wd_0"] = {"weight_decay": 0.0}       # the baseline's own value: the same config
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert cli.main(["check", "--params", str(tmp_path / "params.yaml")]) == 0
    assert "note: wd_0 is the baseline under another name" in capsys.readouterr().err


def test_a_searchs_answer_names_its_strongest_hyperparameter_and_the_importance_table_agrees(tmp_path):
    """lr drives the synthetic search, opt does nothing: the answer names lr with its share, interval and p, and
    the importance table judges lr and opt on the same test (the search's configs), with the same verdicts."""
    from noisefloor.display import format_share

    result = analyze(sy.make_search(), "acc", baseline="base", n_boot=200)
    s = result.summary
    top = s.search_importance[0]
    assert top.hparam == "lr" and top.p_adjusted < s.alpha
    assert top.net_share_ci_low <= top.net_share <= top.net_share_ci_high
    html = render_report(s, result.comparisons, result.importance, {}, tmp_path / "r.html").read_text()
    answer = _answer(html)
    assert (f"What drives the search: lr explains {format_share(top.net_share)} of the search's spread net of "
            f"chance (95 % bootstrap interval {format_share(top.net_share_ci_low)} to "
            f"{format_share(top.net_share_ci_high)}; permutation p {format_p(top.p_value)}") in answer
    imp = result.importance.set_index("hparam")
    assert set(imp["design"]) == {"search"} and (imp["configs"] == "").all()
    for x in s.search_importance:
        assert imp.loc[x.hparam, "p_adjusted"] == pytest.approx(x.p_adjusted)
        assert imp.loc[x.hparam, "verdict"] == ("matters" if x.p_adjusted < s.alpha else "inconclusive")
    assert imp.loc["opt", "verdict"] == "inconclusive"
    assert "<td data-label=\"Variants\">the search</td>" in html and ">nan<" not in html
