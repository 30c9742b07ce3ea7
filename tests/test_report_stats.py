"""The report's statistics against values computed another way: t quantiles from the
closed forms of Student's t with 1 and 2 degrees of freedom and a printed table, SciPy's
gmean, t.interval and ttest_rel called on the logarithms here, Holm's adjustment by hand,
variance shares by the unweighted formula of a balanced grid."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scratchnet.report import Report, draw
from scratchnet.report.importance import UNEXPLAINED, importance
from scratchnet.report.stats import (
    Design,
    holm,
    log_interval,
    paired_log_p,
    seed_interval,
    still_improving,
    summarise,
    sweep_design,
)
from scratchnet.report.suggest import suggestions

T_975_DF2 = 4.302652729911275  # 97.5% quantile of Student's t, 2 degrees of freedom (tables)


def p_df2(t: float) -> float:
    """Two-sided p of t with 2 degrees of freedom: its CDF is 1/2 + t / (2 sqrt(2 + t^2))."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_df1(t: float) -> float:
    """Two-sided p of t with 1 degree of freedom (Cauchy): CDF 1/2 + atan(t) / pi."""
    return 1 - 2 * math.atan(abs(t)) / math.pi


def paired_t(a, b) -> float:
    d = np.subtract(a, b)
    return d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))


def test_seed_interval_is_the_student_t_interval_and_one_seed_has_none():
    n, mean, sd, low, high = seed_interval([0.02, 0.03, 0.04, math.nan])
    assert (n, mean, sd) == (3, pytest.approx(0.03), pytest.approx(0.01))
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert (low, high) == (pytest.approx(0.03 - half, rel=1e-12),
                           pytest.approx(0.03 + half, rel=1e-12))
    n, mean, sd, low, high = seed_interval([0.05])
    assert (n, mean) == (1, 0.05) and all(math.isnan(v) for v in (sd, low, high))


def test_holm_by_hand():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_log_interval_is_scipys_t_interval_of_the_logs_and_never_below_zero():
    values = [0.002, 0.03, 0.05, math.nan]  # skewed; the NaN is a diverged seed
    logs = np.log([0.002, 0.03, 0.05])
    low, high = stats.t.interval(0.95, 2, loc=logs.mean(), scale=stats.sem(logs))
    n, gmean, ci_low, ci_high = log_interval(values)
    assert n == 3 and gmean == pytest.approx(stats.gmean([0.002, 0.03, 0.05]), rel=1e-12)
    assert (ci_low, ci_high) == (pytest.approx(math.exp(low), rel=1e-12),
                                 pytest.approx(math.exp(high), rel=1e-12))
    assert 0 < ci_low < gmean < ci_high and ci_high - gmean > gmean - ci_low  # asymmetric
    assert seed_interval(values)[3] < 0  # the arithmetic interval of the same seeds is not
    n, gmean, ci_low, ci_high = log_interval([0.05, math.nan])  # one seed: no interval
    assert (n, gmean) == (1, pytest.approx(0.05)) and math.isnan(ci_low) and math.isnan(ci_high)
    assert log_interval([math.nan])[0] == 0


def test_paired_log_p_is_scipys_paired_t_test_of_the_logs():
    a, b = [0.11, 0.21, 0.34, math.nan], [0.10, 0.20, 0.30, 0.2]  # seed 4 diverged in a
    expected = stats.ttest_rel(np.log(a[:3]), np.log(b[:3])).pvalue
    assert paired_log_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert paired_log_p(a, b) == pytest.approx(p_df2(paired_t(np.log(a[:3]), np.log(b[:3]))))
    assert paired_log_p(a, b, alternative="greater") == pytest.approx(expected / 2, rel=1e-12)
    assert paired_log_p([1.0, 2.0], [1.0, 2.0]) == 1.0  # identical
    assert paired_log_p([0.5, 1.0], [1.0, 2.0]) == 0.0  # the same ratio on every seed
    assert paired_log_p([0.5, 1.0], [1.0, 2.0], alternative="greater") == 1.0
    assert math.isnan(paired_log_p([0.1, math.nan], [0.2, 0.3]))  # one seed shared


def runs_frame(rows) -> pd.DataFrame:
    """(noise, lr, seed, outcome, true_mse) rows as the report reads runs."""
    frame = pd.DataFrame(rows, columns=["data.noise", "train.lr", "seed", "outcome", "true_mse"])
    frame["final_mse"] = frame.true_mse * 1.1
    frame["run_id"] = [f"run{k}" for k in range(len(frame))]
    frame["improving"] = pd.Series([False if o == "finished" else math.nan
                                    for o in frame.outcome], dtype=object)
    frame["pruned_at"] = np.where(frame.outcome == "pruned", 40.0, math.nan)
    frame["stopped_true_mse"] = np.where(frame.outcome == "pruned", 0.5, math.nan)
    return frame


BEST = [0.10, 0.20, 0.30]
TIED = [0.11, 0.21, 0.34]  # 5-13% above the best, but 3 seeds
WORSE = [0.50, 0.98, 1.52]  # about 5x the best on every seed
STEADY_DIVERGER = [0.05, 0.06]  # lower mean than BEST on seeds 1-2, diverged on seed 3


@pytest.fixture
def sweep():
    rows = [(0.03, 0.1, s, "finished", v) for s, v in zip((1, 2, 3), BEST)]
    rows += [(0.03, 0.05, s, "finished", v) for s, v in zip((1, 2, 3), TIED)]
    rows += [(0.03, 0.01, s, "finished", v) for s, v in zip((1, 2, 3), WORSE)]
    rows += [(0.03, 0.2, 1, "finished", 0.4)]  # one seed
    rows += [(0.03, 0.3, s, "finished", v) for s, v in zip((1, 2), STEADY_DIVERGER)]
    rows += [(0.03, 0.3, 3, "diverged", math.nan)]
    rows += [(0.06, 0.1, 1, "finished", 0.9), (0.06, 0.05, 1, "pruned", math.nan)]
    runs = runs_frame(rows)
    design = sweep_design(runs, ["data.noise", "train.lr", "seed"])
    return runs, design, summarise(runs, design)


def row(summary, noise, lr) -> pd.Series:
    return summary[(summary["data.noise"] == noise) & (summary["train.lr"] == lr)].iloc[0]


def test_design_conditions_choices_and_kind(sweep):
    _, design, _ = sweep
    assert design == Design(("data.noise",), ("train.lr",), "search")  # not every lr per noise
    grid = runs_frame([(n, lr, 1, "finished", 0.1) for n in (0.03, 0.06) for lr in (0.1, 0.2)])
    assert sweep_design(grid, ["data.noise", "train.lr"]).kind == "grid"


def test_ties_with_the_best_by_hand(sweep):
    _, _, summary = sweep
    # the diverger's mean is lowest, but a setting with a diverged seed is not named best
    assert row(summary, 0.03, 0.1).verdict == "best"
    logs = {name: np.log(values) for name, values in
            (("best", BEST), ("tied", TIED), ("worse", WORSE), ("diverger", STEADY_DIVERGER))}
    p_tied = p_df2(paired_t(logs["tied"], logs["best"]))
    p_worse = p_df2(paired_t(logs["worse"], logs["best"]))
    p_diverger = p_df1(paired_t(logs["diverger"], logs["best"][:2]))
    assert p_worse < p_tied < p_diverger  # Holm: x3, x2, x1, kept monotone
    assert row(summary, 0.03, 0.01).p_vs_best == pytest.approx(3 * p_worse, rel=1e-9)
    assert row(summary, 0.03, 0.05).p_vs_best == pytest.approx(
        max(3 * p_worse, 2 * p_tied), rel=1e-9)
    assert row(summary, 0.03, 0.3).p_vs_best == pytest.approx(p_diverger, rel=1e-9)
    assert [row(summary, 0.03, lr).verdict for lr in (0.05, 0.01, 0.3)] == [
        "tied", "worse", "tied"]
    assert row(summary, 0.03, 0.05).tied_with_best and not row(summary, 0.03, 0.01).tied_with_best
    one_seed = row(summary, 0.03, 0.2)
    assert one_seed.verdict == "no test: 1 seed shared with the best"
    assert pd.isna(one_seed.p_vs_best) and pd.isna(one_seed.tied_with_best)
    assert math.isnan(one_seed.true_mse_ci_low) and one_seed.seeds == 1
    diverger = row(summary, 0.03, 0.3)
    assert (diverger.seeds, diverger.diverged) == (2, 1)
    assert diverger.true_mse_mean == pytest.approx(np.mean(STEADY_DIVERGER))
    assert diverger.true_mse_gmean == pytest.approx(stats.gmean(STEADY_DIVERGER))
    assert row(summary, 0.03, 0.05).ratio_to_best == pytest.approx(
        stats.gmean(TIED) / stats.gmean(BEST), rel=1e-12)
    assert (summary.true_mse_ci_low.dropna() > 0).all()
    assert (summary.final_mse_ci_low.dropna() > 0).all()


def test_conditions_are_compared_apart_and_pruned_runs_never_best(sweep):
    _, _, summary = sweep
    assert row(summary, 0.06, 0.1).verdict == "best"  # best of its own condition, 0.9
    pruned = row(summary, 0.06, 0.05)
    assert (pruned.pruned, pruned.seeds, pruned.verdict) == (1, 0, "pruned at epoch 40")


def test_suggestions_edge_diverged_and_seeds(sweep):
    _, design, summary = sweep
    swept = {"data.noise": [0.03, 0.06], "train.lr": [0.01, 0.05, 0.1, 0.2, 0.3]}
    lines = suggestions(summary, design, swept, epochs=3000)
    assert not any("is the largest" in line for line in lines)  # 0.1 is inside 0.01..0.3
    assert ("lr=0.3 noise=0.03: 1 of 3 seeds diverged, 2 finished; its statistics are over "
            "the finished seeds only") in " ".join(lines).replace("noise=0.03 lr=0.3",
                                                                  "lr=0.3 noise=0.03")
    edge = {"data.noise": [0.03, 0.06], "train.lr": [0.01, 0.05, 0.1]}
    grid = summary[summary["train.lr"] <= 0.1]
    lines = suggestions(grid, Design(("data.noise",), ("train.lr",), "grid"), edge, 3000)
    assert lines[0] == "train.lr: the best value 0.1 is the largest swept; extend the grid upward"


def test_too_few_seeds_and_still_improving_lines():
    values = {0.1: [0.10, 0.12, 0.11], 0.05: [0.11, 0.11, 0.12], 0.01: [0.12, 0.10, 0.13]}
    runs = runs_frame([(0.03, lr, s, "finished", v) for lr in values
                       for s, v in zip((1, 2, 3), values[lr])])
    runs.loc[runs.seed == 1, "improving"] = True
    design = sweep_design(runs, ["data.noise", "train.lr"])
    summary = summarise(runs, design)
    lines = suggestions(summary, design, {"data.noise": [0.03], "train.lr": [0.01, 0.05, 0.1]},
                        epochs=3000)
    assert ("still improving at the last epoch: 3 of 9 finished runs (3 of 3 settings; loss "
            "more than 1% below its value at 90% of the epochs): train longer, e.g. "
            "train.epochs=6000") in lines
    assert lines[-1].startswith("2 of 2 settings tested are tied with the best")
    assert lines[-1].endswith("add seeds with seed='range(1,11)'")


def test_still_improving_compares_the_last_loss_with_the_loss_at_90_percent():
    epochs = [1, 500, 900, 950, 1000]
    assert still_improving(pd.Series([1.0, 0.5, 0.100, 0.1, 0.0989], index=epochs))
    assert not still_improving(pd.Series([1.0, 0.5, 0.100, 0.1, 0.0991], index=epochs))


def test_main_effects_equal_the_variance_of_marginal_means_on_a_balanced_grid():
    rng = np.random.default_rng(0)
    rows = [(n, lr, s, "finished", 0.1 * n + lr ** 2 + 0.01 * rng.standard_normal())
            for n in (0.03, 0.06) for lr in (0.01, 0.05, 0.1) for s in (1, 2, 3)]
    runs = runs_frame(rows)
    design = sweep_design(runs, ["data.noise", "train.lr"])
    shares = importance(runs, design, {}).set_index("parameter").share
    y = runs.true_mse
    for axis in ("data.noise", "train.lr"):
        marginal = [y[runs[axis] == v].mean() for v in sorted(runs[axis].unique())]
        assert shares[axis] == pytest.approx(np.var(marginal) / np.var(y), rel=1e-9)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[UNEXPLAINED] == pytest.approx(1 - shares["data.noise"] - shares["train.lr"])


def test_a_search_gets_optunas_importances_of_what_drives_true_mse():
    rng = np.random.default_rng(1)
    lrs = rng.uniform(0.005, 0.2, 40)
    hidden = rng.choice([4, 8, 16], 40)
    rows = [(0.06, lr, 1, "finished", 0.02 + lr ** 2) for lr in lrs]
    runs = runs_frame(rows).assign(**{"model.hidden_size": hidden})
    design = sweep_design(runs, ["train.lr", "model.hidden_size"])
    assert design.kind == "search"
    shares = importance(runs, design, {"train.lr": "tag(log, interval(0.005, 0.2))",
                                       "model.hidden_size": "choice(4, 8, 16)"})
    assert shares.parameter.tolist()[0] == "train.lr" and shares.share.iloc[0] > 0.8
    assert shares.share.sum() == pytest.approx(1.0)
    assert set(shares.method) == {"Optuna's fANOVA importances over the search"}


def test_a_setting_that_diverged_on_a_seed_is_not_best_even_when_lower_elsewhere():
    rows = [(0.03, 0.1, s, "finished", v) for s, v in zip((1, 2, 3), BEST)]
    rows += [(0.03, 0.5, 1, "finished", 0.05), (0.03, 0.5, 2, "finished", 0.10),
             (0.03, 0.5, 3, "diverged", math.nan)]  # half the best on both seeds
    runs = runs_frame(rows)
    summary = summarise(runs, sweep_design(runs, ["data.noise", "train.lr"]))
    assert row(summary, 0.03, 0.1).verdict == "best"
    unstable = row(summary, 0.03, 0.5)
    assert unstable.p_vs_best == 0.0 and unstable.verdict == "lower on its finished seeds"


def test_a_search_gets_its_own_figures_and_never_a_grid_heatmap():
    """Settings that are no product of values: true_mse against each searched key and the
    best settings, the plotted points being the runs' values; a pruned run left out."""
    rng = np.random.default_rng(2)
    rows = [(noise, float(lr), 1, "finished", 0.02 + float(lr) ** 2)
            for noise in (0.03, 0.06) for lr in rng.uniform(0.005, 0.2, 6)]
    runs = runs_frame(rows + [(0.03, 0.15, 1, "pruned", math.nan)])
    design = sweep_design(runs, ["data.noise", "train.lr"])
    summary = summarise(runs, design)
    swept = {key: sorted(runs[key].unique().tolist()) for key in design.setting}
    report = Report(runs, summary, design, "0" * 32, "sweep search", swept,
                    importance(runs, design, {}))
    draw(report)
    assert design.kind == "search"
    assert set(report.figures) == {"true_mse_vs_searched.png", "best_settings.png",
                                   "importance.png"}  # no loss histories given
    scatter = report.figures["true_mse_vs_searched.png"][0].axes[0]
    plotted = np.concatenate([c.get_offsets() for c in scatter.collections[:2]])
    finished = runs[runs.outcome == "finished"]
    assert sorted(map(tuple, plotted)) == sorted(zip(finished["train.lr"], finished.true_mse))
    crosses = scatter.collections[2]  # the pruned trial, where its true_mse was when stopped
    assert crosses.get_label() == "pruned (true_mse when stopped)"
    assert crosses.get_offsets().tolist() == [[0.15, 0.5]]
    title = report.figures["best_settings.png"][0].get_suptitle()
    assert "one seed per setting: no interval" in title
    best = summary[summary.verdict == "best"]
    assert len(best) == 2 and 0.15 not in best["train.lr"].tolist()


def test_winners_name_each_conditions_best_setting_and_its_lowest_run(sweep):
    runs, design, summary = sweep
    report = Report(runs, summary, design, "parent", "sweep")
    winners = report.winners()
    assert [w.condition for w in winners] == [{"data.noise": 0.03}, {"data.noise": 0.06}]
    assert [w.setting for w in winners] == [{"train.lr": 0.1}, {"train.lr": 0.1}]
    assert winners[0].run_id == "run0"  # BEST's lowest true_mse is seed 1's
    assert winners[1].run_id == runs[(runs["data.noise"] == 0.06)
                                      & (runs.outcome == "finished")].run_id.iloc[0]
    assert winners[0].tied == 2 and winners[1].tied == 0  # TIED and the steady diverger
    assert winners[0].row.verdict == "best" and winners[0].row.seeds == 3


def test_the_outcome_for_the_parent_run_names_each_conditions_best(sweep):
    runs, design, summary = sweep
    metrics, tags = Report(runs, summary, design, "parent", "sweep").outcome()
    assert metrics == {"best_true_mse_gmean-noise-0.03": pytest.approx(stats.gmean(BEST)),
                       "best_true_mse_gmean-noise-0.06": pytest.approx(0.9)}
    assert tags["scratchnet.best-noise-0.03.setting"] == "lr=0.1"
    assert tags["scratchnet.best-noise-0.03.run_id"] == "run0"
    assert tags["scratchnet.best-noise-0.03.tied"] == "2"
    assert tags["scratchnet.best-noise-0.03.true_mse"].endswith(" over 3 seeds")
    assert tags["scratchnet.best-noise-0.06.true_mse"] == "0.9 (1 seed: no interval)"
