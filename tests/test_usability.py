"""Usability, for every estimator: the single-task warning when task ids are lost
(issue 10 item 8), verbose as a bool and clean progress output (item 16), MAMLClassifier's
measured default step size (item 17) and column-vector targets in every task form
(item 18)."""

import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import GroupKFold, cross_val_score, cross_validate
from test_contract import ESTIMATORS, META_TRAINED, long_format, make, sampler_for, tasks_for

from skmeta import MAMLClassifier, MAMLRegressor, SingleTaskWarning
from skmeta._estimators._base import ONE_TASK_WARNING_ROWS
from skmeta._estimators._finetune import _print_log_line


def many_tasks(name, n_rows):
    """Long-format tasks of the estimator's kind with at least ``n_rows`` rows."""
    n_rows_per_task = len(tasks_for(name, n_tasks=1)[0][1])
    return long_format(tasks_for(name, n_tasks=-(-n_rows // n_rows_per_task)))


# ---------------------------------------------------------------- item 8: lost task ids
@pytest.mark.parametrize("name", ESTIMATORS)
def test_cross_val_score_without_routing_warns_that_groups_are_ignored(name):
    X, y, groups = many_tasks(name, 8 * ONE_TASK_WARNING_ROWS // 5)
    with pytest.warns(SingleTaskWarning) as record:
        cross_val_score(make(name), X, y, groups=groups, cv=GroupKFold(3))
    message = str(record[0].message)
    for fragment in ["ONE task", "groups=task_ids", "task_col", "enable_metadata_routing=True"]:
        assert fragment in message


@pytest.mark.parametrize("name", ESTIMATORS)
def test_no_single_task_warning_when_the_tasks_arrive_or_the_data_is_small(name, routing):
    X, y, groups = many_tasks(name, 8 * ONE_TASK_WARNING_ROWS // 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleTaskWarning)
        cross_validate(make(name), X, y, params={"groups": groups}, cv=GroupKFold(3))
        make(name).fit(tasks_for(name, n_tasks=150))  # a list of tasks
        small = ONE_TASK_WARNING_ROWS - 1
        make(name).fit(X[:small], y[:small])  # one task, below the threshold
        make(name).fit([(X, y)])  # one task given explicitly as such
        make(name).set_params(shots=0.5).fit(X, y)  # a support set of half the rows: one task meant


def test_the_threshold_counts_support_rows_per_class():
    X, y, _ = many_tasks("MAMLClassifier", ONE_TASK_WARNING_ROWS)
    n_classes = len(np.unique(y))
    enough_shots = len(y) // (20 * n_classes) + 1  # the support set is over 1/20 of the rows
    with pytest.warns(SingleTaskWarning):
        make("MAMLClassifier").set_params(shots=enough_shots - 1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleTaskWarning)
        make("MAMLClassifier").set_params(shots=enough_shots).fit(X, y)


# ---------------------------------------------------------------- item 16: verbose
@pytest.mark.parametrize("verbose", [True, False, 0, 1, 2, np.True_])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_verbose_takes_bools_and_ints(name, verbose, capsys):
    make(name, verbose=verbose).fit(tasks_for(name))
    out, err = capsys.readouterr()
    assert bool(out or err) == bool(verbose)


@pytest.mark.parametrize("verbose", [-1, 1.5, "yes", None])
@pytest.mark.parametrize("name", ["MAML", "FineTune", "ProtoNet"])
def test_verbose_rejects_what_is_not_a_bool_or_count(name, verbose):
    with pytest.raises(ValueError, match="verbose must be True, False or an integer >= 0"):
        make(name, verbose=verbose).fit(tasks_for(name))


@pytest.mark.parametrize("name", META_TRAINED)
def test_the_progress_bar_stays_on_screen_after_fit(name, capfd):
    est = make(name, verbose=True).fit(tasks_for(name))
    err = capfd.readouterr().err
    last = err.rsplit("\r", 1)[-1]  # what stays on the line once the bar is done
    assert err.endswith("\n")
    assert "meta-train: 100%" in last and f"{est.max_iter}/{est.max_iter}" in last
    assert "meta_loss=" in last


@pytest.mark.parametrize("name", ["FineTune", "FineTuneClassifier"])
def test_skorch_table_has_no_colour_codes_off_a_terminal(name, capsys):
    make(name, verbose=True, max_epochs=4).fit(tasks_for(name))
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out
    assert len(out.strip().splitlines()) == 2 + 4  # header, rule, one row per epoch
    assert "\x1b[" not in out


def test_colour_codes_are_kept_on_a_terminal(capsys, monkeypatch):
    coloured = "      1  \x1b[36m0.5000\x1b[0m"
    _print_log_line(coloured)
    assert capsys.readouterr().out == "      1  0.5000\n"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _print_log_line(coloured)
    assert capsys.readouterr().out == coloured + "\n"


# ---------------------------------------------------------------- item 17: defaults
def test_maml_classifier_default_inner_lr_is_the_measured_one():
    assert MAMLClassifier().inner_lr == 0.1
    assert MAMLRegressor().inner_lr == 0.01  # the sinusoid setting of Finn et al. (2017)
    doc = MAMLClassifier.__doc__
    assert "inner_lr : float, default=0.1" in doc
    assert "--tune --methods maml-defaults" in doc and "49.2 % with 0.1" in doc


# ---------------------------------------------------------------- item 18: y of shape (n, 1)
def column(tasks):
    return [(X, y.reshape(-1, 1)) for X, y in tasks]


class ColumnSampler:
    """A task sampler whose tasks have column-vector targets."""

    def __init__(self, sampler):
        self.sampler = sampler

    def sample(self, n_tasks, random_state=None):
        return column(self.sampler.sample(n_tasks, random_state=random_state))


def same_fit(a, b):
    assert a.loss_curve_ == b.loss_curve_ and a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("name", ESTIMATORS)
def test_column_vector_targets_warn_and_ravel_in_every_form(name):
    tasks = tasks_for(name)
    X, y, groups = long_format(tasks)
    reference = make(name).fit(tasks)
    match = "column-vector y was passed"
    with pytest.warns(DataConversionWarning, match=match):
        same_fit(make(name).fit(X, y[:, None], groups=groups), reference)
    with pytest.warns(DataConversionWarning, match=f"{match} for every task"):
        same_fit(make(name).fit(column(tasks)), reference)
    one_column = [tasks[0], (tasks[1][0], tasks[1][1][:, None]), *tasks[2:]]
    with pytest.warns(DataConversionWarning, match=rf"{match} for task \[1\]"):
        same_fit(make(name).fit(one_column), reference)

    sampler = sampler_for(name)
    with pytest.warns(DataConversionWarning, match=match):
        same_fit(make(name).fit(ColumnSampler(sampler)), make(name).fit(sampler))

    X_new, y_new = tasks_for(name, n_tasks=1, seed=9)[0]
    expected = reference.adapt(X_new[:6], y_new[:6]).predict(X_new[6:])
    with pytest.warns(DataConversionWarning, match=match):
        reference.adapt(X_new[:6], y_new[:6, None])
    np.testing.assert_array_equal(reference.predict(X_new[6:]), expected)

    scored = tasks_for(name, n_tasks=4, seed=5)
    expected = reference.score(scored)
    with pytest.warns(DataConversionWarning, match=match):
        assert reference.score(column(scored)) == expected
    X_s, y_s, g_s = long_format(scored)
    with pytest.warns(DataConversionWarning, match=match):
        assert reference.score(X_s, y_s[:, None], groups=g_s) == expected
    with pytest.raises(ValueError, match="y must be 1-D"):  # 2 columns stay an error
        make(name).fit([(X_t, np.c_[y_t, y_t]) for X_t, y_t in tasks])
