"""Honest scoring, for every estimator: few-shot scorers for any metric (issue 10 item 3),
a loud warning when a meta-trained model predicts unadapted, and the pooled few-shot R²
(item 4)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer, mean_squared_error, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metadata_routing import get_routing_for_object
from test_contract import ESTIMATORS, SHOTS, long_format, make, tasks_for

from skmeta import FewShotScorer, UnadaptedPredictionWarning, make_few_shot_scorer
from skmeta._targets import CLASSIFICATION, REGRESSION
from skmeta.datasets import SinusoidTasks

REGRESSORS = [name for name, est in ESTIMATORS.items() if not is_classifier(est)]
# Classifiers that predict before adapt after a multi-task fit (over the pretrained classes).
PREDICT_UNADAPTED = [*REGRESSORS, "FineTuneClassifier"]


def own_metric(name):
    """The scorer name that is the estimator's own few-shot score."""
    return "accuracy" if is_classifier(ESTIMATORS[name]) else "r2"


def three_forms(tasks):
    """The same tasks as (X, y, groups) arguments in the three task forms."""
    X, y, groups = long_format(tasks)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(task=groups)
    return {
        "list": (tasks, None, None),
        "long": (X, y, groups),
        "task_col": (frame, y, None),
    }


def fit_for_form(name, form, tasks):
    """An estimator fit on ``tasks`` in ``form`` (task_col needs the parameter and a frame)."""
    X, y, groups = three_forms(tasks)[form]
    est = make(name, task_col="task" if form == "task_col" else None)
    return est.fit(X, y, groups=groups) if y is not None else est.fit(X)


# ---------------------------------------------------------------- few-shot scorers
@pytest.mark.parametrize("form", ["list", "long", "task_col"])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_own_metric_scorer_is_the_estimators_few_shot_score(name, form):
    est = fit_for_form(name, form, tasks_for(name))
    X, y, groups = three_forms(tasks_for(name, n_tasks=6, seed=3))[form]
    scorer = make_few_shot_scorer(own_metric(name))
    expected = est.score(X, y, groups=groups)
    assert scorer(est, X, y, groups=groups) == pytest.approx(expected, abs=1e-12)
    # Every form reads the same tasks the same way: one score.
    list_form = three_forms(tasks_for(name, n_tasks=6, seed=3))["list"][0]
    assert scorer(est, X, y, groups=groups) == pytest.approx(scorer(est, list_form), abs=1e-12)


def duplicated_task(name, seed):
    """A task whose rows repeat 3 times, so that any support/query split with shots=2 puts
    the same rows in the support set: classification, one query row per class; regression,
    identified by its unique targets."""
    X, y = tasks_for(name, n_tasks=1, seed=seed)[0]
    if is_classifier(ESTIMATORS[name]):
        first = np.array([np.flatnonzero(y == c)[0] for c in np.unique(y)])
        return np.repeat(X[first], 3, axis=0), np.repeat(y[first], 3)
    return X[:7], y[:7]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_scorer_gives_the_metric_what_adapt_then_predict_gives(name):
    """The metric sees, per task, the query targets and the responses of the model
    adapted on the rest of the task (compared with the per-task adapt/predict path)."""
    est = make(name).fit(tasks_for(name))
    tasks = [duplicated_task(name, seed) for seed in (5, 6, 7)]
    calls = []

    def record(y_true, y_pred):
        calls.append((np.asarray(y_true), np.asarray(y_pred)))
        return float(len(calls))

    classifier = is_classifier(est)
    for method in ["predict", "predict_proba"] if classifier else ["predict"]:
        calls.clear()
        score = make_few_shot_scorer(record, response_method=method)(est, tasks)
        assert score == np.mean([1, 2, 3])  # the mean over tasks of the metric
        assert len(calls) == len(tasks)
        for (X, y), (y_true, y_pred) in zip(tasks, calls):
            if classifier:  # y is sorted, one copy of each class went to the query set
                query = np.searchsorted(y, y_true)
            else:  # the query rows are those of the targets the metric saw
                as_f32 = y.astype(np.float32)
                query = np.array([np.flatnonzero(as_f32 == v)[0] for v in y_true])
                assert len(query) == len(y) - SHOTS
            support = np.ones(len(y), dtype=bool)
            support[query] = False
            X_query = X[query]
            est.adapt(X[support], y[support])
            expected = getattr(est, method)(X_query)
            np.testing.assert_allclose(y_pred, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_several_metrics_at_once_with_routing(name, routing):
    tasks = tasks_for(name)
    X, y, groups = long_format(tasks)
    if is_classifier(ESTIMATORS[name]):
        names = ["accuracy", "f1_macro", "neg_log_loss"]
    else:
        names = ["r2", "neg_mean_squared_error", "neg_mean_absolute_error"]
    scoring = {metric: make_few_shot_scorer(metric) for metric in names}
    result = cross_validate(
        make(name),
        X,
        y,
        params={"groups": groups},
        cv=GroupKFold(3),
        scoring=scoring,
        return_estimator=True,
        return_indices=True,
    )
    for fold, (fitted, test) in enumerate(zip(result["estimator"], result["indices"]["test"])):
        for metric, scorer in scoring.items():
            direct = scorer(fitted, X[test], y[test], groups=groups[test])
            assert np.isfinite(direct)
            assert result[f"test_{metric}"][fold] == pytest.approx(direct, abs=1e-12)
    own = result[f"test_{names[0]}"]
    plain = cross_validate(make(name), X, y, params={"groups": groups}, cv=GroupKFold(3))
    np.testing.assert_allclose(own, plain["test_score"], atol=1e-12)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_searches_and_cross_val_score_take_few_shot_scorers(name):
    tasks = tasks_for(name)
    metric = "neg_log_loss" if is_classifier(ESTIMATORS[name]) else "neg_mean_squared_error"
    scorer = make_few_shot_scorer(metric)
    grid = GridSearchCV(make(name), {"shots": [1, 2]}, cv=KFold(2), scoring=scorer).fit(tasks)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.score(tasks[:4]) == pytest.approx(scorer(grid.best_estimator_, tasks[:4]))
    randomized = RandomizedSearchCV(
        make(name), {"shots": [1, 2]}, n_iter=2, cv=KFold(2), scoring=scorer, random_state=0
    ).fit(tasks)
    by_shots = lambda search: {
        params["shots"]: score
        for params, score in zip(
            search.cv_results_["params"], search.cv_results_["mean_test_score"]
        )
    }
    assert by_shots(randomized) == pytest.approx(by_shots(grid))
    # task_col, routing off: the ids go to the splitter as groups, and reach score inside X.
    X, y, _ = three_forms(tasks)["task_col"]
    est = make(name, task_col="task")
    own = make_few_shot_scorer(own_metric(name))
    with_scorer = cross_val_score(est, X, y, groups=X["task"], cv=GroupKFold(2), scoring=own)
    plain = cross_val_score(est, X, y, groups=X["task"], cv=GroupKFold(2))
    assert np.isfinite(with_scorer).all()
    np.testing.assert_allclose(with_scorer, plain, atol=1e-12)


def test_scorer_requests_groups_and_fails_loudly_without_tasks(sine_tasks):
    scorer = make_few_shot_scorer("r2")
    assert isinstance(scorer, FewShotScorer)
    assert repr(scorer) == "make_few_shot_scorer('r2')"
    assert get_routing_for_object(scorer).consumes("score", ["groups"]) == {"groups"}
    X, y, groups = long_format(sine_tasks)
    est = make("MAML").fit(sine_tasks)
    with pytest.raises(ValueError, match="needs tasks to score few-shot.*enable_metadata_routing"):
        scorer(est, X, y)
    # Routing off: cross-validation reports the failure and a NaN, not a silent plain R².
    with pytest.warns(UserWarning, match="needs tasks to score few-shot"):
        scores = cross_val_score(
            make("MAML"), X, y, groups=groups, cv=GroupKFold(2), scoring=scorer
        )
    assert np.isnan(scores).all()


def test_scorer_through_a_pipeline(routing, sine_tasks):
    X, y, groups = long_format(sine_tasks)
    pipe = make_pipeline(StandardScaler(), make("MAML")).fit(X, y, groups=groups)
    scorer = make_few_shot_scorer("neg_mean_squared_error")
    direct = scorer(pipe[-1], pipe[0].transform(X), y, groups=groups)
    assert scorer(pipe, X, y, groups=groups) == direct
    assert make_few_shot_scorer("r2")(pipe, X, y, groups=groups) == pipe.score(X, y, groups=groups)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: make_few_shot_scorer("r2", greater_is_better=False), ValueError, "fixes its sign"),
        (lambda: make_few_shot_scorer("accuracy", normalize=False), ValueError, "metric function"),
        (lambda: make_few_shot_scorer(make_scorer(r2_score)), TypeError, "not a scikit-learn"),
        (lambda: make_few_shot_scorer(3), TypeError, "scorer name or a metric function"),
        (lambda: make_few_shot_scorer("no_such_metric"), ValueError, "no_such_metric"),
        (
            lambda: make_few_shot_scorer("r2")(StandardScaler(), [(np.ones((3, 1)), np.ones(3))]),
            TypeError,
            "scores skmeta estimators",
        ),
    ],
)
def test_scorer_arguments_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_metric_function_scorer_signs_and_repr(sine_tasks):
    est = make("MAML").fit(sine_tasks)
    mse = make_few_shot_scorer(mean_squared_error, greater_is_better=False)
    assert repr(mse) == "make_few_shot_scorer(mean_squared_error, greater_is_better=False)"
    assert mse(est, sine_tasks) == pytest.approx(
        make_few_shot_scorer("neg_mean_squared_error")(est, sine_tasks), abs=1e-12
    )
    assert make_few_shot_scorer(r2_score)(est, sine_tasks) == est.score(sine_tasks)


# ---------------------------------------------------------------- unadapted predictions
@pytest.mark.parametrize("name", ESTIMATORS)
def test_predicting_unadapted_after_a_multi_task_fit_is_loud(name):
    est = make(name).fit(tasks_for(name))
    X_new, y_new = tasks_for(name, n_tasks=1, seed=9)[0]
    if name in PREDICT_UNADAPTED:
        with pytest.warns(UnadaptedPredictionWarning, match="adapt.*make_few_shot_scorer"):
            est.predict(X_new)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnadaptedPredictionWarning)
            est.predict(X_new)  # once per fit
        est.fit(tasks_for(name))
        method = "predict_proba" if is_classifier(est) else "predict"
        with pytest.warns(UnadaptedPredictionWarning):
            getattr(est, method)(X_new)  # a new fit warns again
    else:
        with pytest.raises(NotFittedError, match="adapt.*make_few_shot_scorer"):
            est.predict(X_new)
    est.fit(tasks_for(name))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnadaptedPredictionWarning)
        est.adapt(X_new[:6], y_new[:6]).predict(X_new[6:])  # adapted: silent
        est.score(tasks_for(name, n_tasks=3, seed=4))  # few-shot score: silent


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_single_task_fit_predicts_without_warning(name):
    X, y = tasks_for(name, n_tasks=1, seed=2)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnadaptedPredictionWarning)
        est = make(name).fit(X, y)
        est.predict(X)
        est.score(X, y)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_named_sklearn_scorer_on_a_meta_trained_model_is_loud(name, routing):
    X, y, groups = long_format(tasks_for(name))
    scoring = "accuracy" if is_classifier(ESTIMATORS[name]) else "r2"
    expected = (
        UnadaptedPredictionWarning if name in PREDICT_UNADAPTED else UserWarning  # scoring failed
    )
    with pytest.warns(expected, match="make_few_shot_scorer"):
        cross_validate(
            make(name), X, y, params={"groups": groups}, cv=GroupKFold(2), scoring=scoring
        )


# ---------------------------------------------------------------- pooled few-shot R²
def as_batch(*rows):
    """Padded (n_tasks, n_rows) tensors with weights from ragged per-task lists."""
    width = max(len(r) for r in rows)
    pad = lambda r: list(r) + [0.0] * (width - len(r))
    w = torch.tensor([[1.0] * len(r) + [0.0] * (width - len(r)) for r in rows])
    return torch.tensor([pad(r) for r in rows], dtype=torch.float64), w


def per_task_r2_mean(y, pred, w):
    scores = []
    for t in range(len(y)):
        keep = w[t] > 0
        scores.append(r2_score(y[t][keep].numpy(), pred[t][keep].numpy()))
    return float(np.mean(scores))


def pooled(y, pred, w):
    return REGRESSION.few_shot_score(REGRESSION.query_terms(pred, y, w))


def query_mse(y, pred, w):
    return float((w * (y - pred) ** 2).sum() / w.sum())


def test_pooled_r2_ranks_models_by_query_mse_where_a_mean_of_r2_does_not():
    # Task 0 has nearly constant query targets, task 1 a wide spread.
    y, w = as_batch([0.0, 0.1], [-10.0, 10.0])
    model_a, _ = as_batch([0.0, 0.1], [-5.0, 5.0])  # perfect on task 0, far off on task 1
    model_b, _ = as_batch([0.1, 0.0], [-9.0, 9.0])  # slightly off on both
    assert query_mse(y, model_b, w) < query_mse(y, model_a, w)  # B is the better model
    assert per_task_r2_mean(y, model_a, w) > per_task_r2_mean(y, model_b, w)  # the mean: A
    assert pooled(y, model_b, w) > pooled(y, model_a, w)  # pooled: B
    # The definition: 1 - sum of squared errors / sum of squares about each task's mean.
    assert pooled(y, model_a, w) == pytest.approx(1 - 50 / (0.005 + 200), abs=1e-12)


def test_pooled_r2_orders_random_models_exactly_as_query_mse():
    rng = np.random.default_rng(0)
    y, w = as_batch(*[rng.normal(size=n) * rng.uniform(0.01, 5) for n in (2, 2, 3, 1, 2)])
    for _ in range(200):
        a = y + torch.from_numpy(rng.normal(size=y.shape) * rng.uniform(0, 2))
        b = y + torch.from_numpy(rng.normal(size=y.shape) * rng.uniform(0, 2))
        by_mse = query_mse(y, a, w) < query_mse(y, b, w)
        assert (pooled(y, a, w) > pooled(y, b, w)) == by_mse


def test_pooled_r2_is_undefined_when_every_query_set_is_constant():
    y, w = as_batch([1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="R² is undefined.*constant"):
        pooled(y, y + 1, w)
    # Mixed sizes: the one-row task's error counts, the other task gives the variance.
    y, w = as_batch([1.0], [2.0, 4.0])
    assert pooled(y, y + torch.tensor([[1.0, 0.0], [0.0, 0.0]]), w) == pytest.approx(1 - 1 / 2)


def test_classification_few_shot_score_is_the_mean_task_accuracy():
    logits = torch.tensor(
        [[[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]
    )
    y = torch.tensor([[0, 0, 1], [1, 0, 0]])
    w = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    terms = CLASSIFICATION.query_terms(logits, y, w)
    assert CLASSIFICATION.few_shot_score(terms) == pytest.approx((1 / 2 + 0) / 2)


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressors_score_is_the_pooled_r2_of_their_query_predictions(name):
    est = make(name).fit(tasks_for(name))
    tasks = SinusoidTasks(n_samples=4).sample(10, random_state=1)  # 2 query rows per task
    calls = []
    make_few_shot_scorer(lambda y_true, y_pred: calls.append((y_true, y_pred)) or 0.0)(est, tasks)
    sse = sum(((y_t - p) ** 2).sum() for y_t, p in calls)
    sst = sum(((y_t - y_t.mean()) ** 2).sum() for y_t, _ in calls)
    assert est.score(tasks) == pytest.approx(1 - sse / sst, rel=1e-6)
    assert make_few_shot_scorer("r2")(est, tasks) == est.score(tasks)
    per_task = np.mean([r2_score(y_t, p) for y_t, p in calls])
    assert est.score(tasks) != pytest.approx(per_task)  # not the mean of per-task R²


@pytest.mark.parametrize("name", REGRESSORS)
def test_one_query_row_per_task_raises_instead_of_scoring_zero(name):
    est = make(name).fit(tasks_for(name))
    tasks = SinusoidTasks(n_samples=SHOTS + 1).sample(5, random_state=2)
    with pytest.raises(ValueError, match="R² is undefined.*one query row per task"):
        est.score(tasks)
    with pytest.raises(ValueError, match="R² is undefined.*one query row per task"):
        make_few_shot_scorer("r2")(est, tasks)
    assert np.isfinite(make_few_shot_scorer("neg_mean_squared_error")(est, tasks))


@pytest.mark.parametrize("name", REGRESSORS)
def test_score_ranks_two_models_like_their_query_mse(name):
    """Two models of every regressor, a well and a badly adapting one: the few-shot score
    and the query MSE (through the same split) agree on which is better."""
    tasks = SinusoidTasks(n_samples=4).sample(30, random_state=3)  # 2 query rows per task
    models = [make(name).fit(tasks_for(name)), make(name, random_state=5)]
    # Trained differently, scored through the same support/query split (random_state=0).
    models[1].fit(tasks_for(name, seed=1)).set_params(random_state=0)
    mse = make_few_shot_scorer("neg_mean_squared_error")
    r2 = [m.score(tasks) for m in models]
    neg_mse = [mse(m, tasks) for m in models]
    assert (r2[0] > r2[1]) == (neg_mse[0] > neg_mse[1])
