"""Every bad input gets a clear error (or sklearn's warning), in one table.

Each row is ``(id, call, expected, fragments)``: ``call()`` feeds the bad
input; ``expected`` is the exception type raised, or a warning category
emitted; every string of ``fragments`` must appear in the message. Rows
cover the task parser (long format, ``task_col``, list of tasks, samplers),
``adapt``/``predict``/``score`` and the hyper-parameters.
"""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import DataConversionWarning, NotFittedError
from torch import nn

from skmeta import MAMLClassifier, MAMLRegressor, ProtoNetClassifier, ReptileRegressor

rng = np.random.RandomState(0)
X = rng.randn(40, 3).astype(np.float32)
y = rng.randn(40).astype(np.float32)
groups = np.repeat(np.arange(4), 10)
df = pd.DataFrame(X, columns=["a", "b", "c"])
tasks = [(X[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]


def make(**params) -> MAMLRegressor:
    settings = dict(max_iter=2, meta_batch_size=2, shots=3, hidden_layer_sizes=(4,), random_state=0)
    return MAMLRegressor(**{**settings, **params})


def classifier_tasks(labels_of_task_1):
    """Four 2-class tasks of 10 rows; task 1 gets the given labels."""
    labels = [np.repeat([0, 1], 5)] * 4
    labels[1] = np.asarray(labels_of_task_1)
    return [(X[i * 10 : i * 10 + 10], labels[i]) for i in range(4)]


def fit_classifier(tasks_, **params):
    settings = dict(max_iter=2, meta_batch_size=2, shots=2, hidden_layer_sizes=(4,), random_state=0)
    return lambda: MAMLClassifier(**{**settings, **params}).fit(tasks_)


def fit(**params):
    return lambda: make(**params).fit(X, y, groups=groups)


@functools.cache
def fitted() -> MAMLRegressor:
    return make().fit(X, y, groups=groups)


@functools.cache
def fitted_on_frame() -> MAMLRegressor:
    return make().fit(df, y, groups=groups)


def with_value(array, value, row=15):
    """A copy of ``array`` with ``value`` in ``row`` (task 1 of ``groups``)."""
    array = array.astype(np.float64)
    array[row] = value
    return array


def replace_task(t, X_t=None, y_t=None):
    """``tasks`` with task ``t`` replaced (X and/or y)."""
    new = list(tasks)
    new[t] = (tasks[t][0] if X_t is None else X_t, tasks[t][1] if y_t is None else y_t)
    return new


class NoSample:
    pass


class SampleNotCallable:
    sample = 3


class Sampler:
    """A sampler whose ``sample`` returns ``draw(n_tasks)``."""

    def __init__(self, draw):
        self.draw = draw

    def sample(self, n_tasks, random_state=None):
        return self.draw(n_tasks)


def cuda_unavailable(device):
    def call():
        with mock.patch.object(torch.cuda, "is_available", return_value=False):
            make(device=device).fit(X, y, groups=groups)

    return call


class OneOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, X):
        return self.linear(X)[:, 0]


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, X):
        return self.linear(X)


class TupleOutput(TwoOutputs):
    def forward(self, X):
        return self.linear(X)[:, :1], X


class DictOutput(TwoOutputs):
    def forward(self, X):
        return {"y": self.linear(X)[:, :1]}


class NumpyOutput(OneOutput):
    def forward(self, X):
        return self.linear(X).detach().numpy()


class FirstRowsOnly(OneOutput):
    """Right for the 5-row output check of fit, wrong for larger batches."""

    def forward(self, X):
        return self.linear(X[:5])


def cuda_index_beyond(device):
    def call():
        with (
            mock.patch.object(torch.cuda, "is_available", return_value=True),
            mock.patch.object(torch.cuda, "device_count", return_value=1),
        ):
            make(device=device).fit(X, y, groups=groups)

    return call


def nullable_frame_with_na():
    frame = df.astype("Float64")
    frame.iloc[15, 1] = pd.NA
    return frame


def adapt_after(**params):
    def call():
        est = make().fit(X, y, groups=groups).set_params(**params)
        est.adapt(X[:5], y[:5])

    return call


CASES = [
    # ---- long format: X, y, groups
    ("X 1-D", lambda: make().fit(X[:, 0], y, groups=groups), ValueError, ["Expected 2D array"]),
    ("X 3-D", lambda: make().fit(X[:, :, None], y, groups=groups), ValueError, ["dim 3"]),
    (
        "X of strings",
        lambda: make().fit(np.full((40, 3), "a"), y, groups=groups),
        ValueError,
        ["could not convert string to float"],
    ),
    ("X with no rows", lambda: make().fit(X[:0], y[:0]), ValueError, ["0 sample(s)"]),
    (
        "y 2-D",
        lambda: make().fit(X, np.c_[y, y], groups=groups),
        ValueError,
        ["y should be a 1d array", "(40, 2)"],
    ),
    (
        "y column vector (sklearn warns)",
        lambda: make().fit(X, y[:, None], groups=groups),
        DataConversionWarning,
        ["column-vector y"],
    ),
    (
        "y wrong length",
        lambda: make().fit(X, y[:-1], groups=groups),
        ValueError,
        ["inconsistent numbers of samples", "[40, 39]"],
    ),
    (
        "groups wrong length",
        lambda: make().fit(X, y, groups=groups[:-1]),
        ValueError,
        ["groups must be 1-D with one task id per row", "(39,)", "40 rows"],
    ),
    (
        "groups 2-D",
        lambda: make().fit(X, y, groups=groups[:, None]),
        ValueError,
        ["groups must be 1-D", "(40, 1)"],
    ),
    (
        "groups with NaN",
        lambda: make().fit(X, y, groups=with_value(groups, np.nan)),
        ValueError,
        ["missing task id", "row 15"],
    ),
    (
        "groups with None",
        lambda: make().fit(X, y, groups=np.array([None, *groups[1:]], dtype=object)),
        ValueError,
        ["missing task id", "row 0"],
    ),
    (
        "NaN in X",
        lambda: make().fit(with_value(X, np.nan), y, groups=groups),
        ValueError,
        ["Input X contains NaN", "row 15, task 1"],
    ),
    (
        "inf in X",
        lambda: make().fit(with_value(X, np.inf), y, groups=groups),
        ValueError,
        ["Input X contains infinity", "row 15, task 1"],
    ),
    (
        "NaN in y",
        lambda: make().fit(X, with_value(y, np.nan), groups=groups),
        ValueError,
        ["Input y contains NaN", "row 15, task 1"],
    ),
    (
        "-inf in y",
        lambda: make().fit(X, with_value(y, -np.inf), groups=groups),
        ValueError,
        ["Input y contains infinity", "row 15, task 1"],
    ),
    (
        "DataFrame with missing values",
        lambda: make().fit(
            df.astype(float).mask(df.index.to_series() == 25, axis=0), y, groups=groups
        ),
        ValueError,
        ["Input X contains NaN", "row 25, task 2"],
    ),
    (
        "task smaller than shots (long format)",
        lambda: make(shots=3).fit(X, y, groups=np.r_[np.zeros(37, int), [7, 7, 7]]),
        ValueError,
        ["Task 7 has n_samples=3, too few for shots=3", "at least one query row"],
    ),
    (
        "fractional shots leave no query row",
        lambda: make(shots=0.5).fit(X, y, groups=np.r_[np.zeros(39, int), [5]]),
        ValueError,
        ["Task 5 has n_samples=1, too few for shots=0.5"],
    ),
    (
        "task_col missing from the DataFrame",
        lambda: make(task_col="task").fit(df, y),
        ValueError,
        ["task_col='task' needs X to be a pandas DataFrame with a 'task' column"],
    ),
    (
        "task ids both in groups and task_col",
        lambda: make(task_col="task").fit(df.assign(task=groups), y, groups=groups),
        ValueError,
        ["either as groups or as X['task']"],
    ),
    # ---- list of (X_i, y_i) tasks
    ("empty list of tasks", lambda: make().fit([]), ValueError, ["empty list of tasks"]),
    (
        "empty task",
        lambda: make().fit(replace_task(1, X[:0], y[:0])),
        ValueError,
        ["Task 1:", "0 sample(s)"],
    ),
    (
        "task X 1-D",
        lambda: make().fit(replace_task(2, X[:10, 0])),
        ValueError,
        ["Task 2:", "Expected 2D array"],
    ),
    (
        "first task X 1-D",
        lambda: make().fit(replace_task(0, X[:10, 0])),
        ValueError,
        ["Task 0:", "Expected 2D array"],
    ),
    (
        "task y column vector (warns and ravels, as in long format)",
        lambda: make().fit(replace_task(1, y_t=y[:10, None])),
        DataConversionWarning,
        ["column-vector y was passed for task [1]"],
    ),
    (
        "task y 2-D",
        lambda: make().fit(replace_task(1, y_t=np.c_[y[:10], y[:10]])),
        ValueError,
        ["Task 1: y must be 1-D", "(10, 2)"],
    ),
    (
        "task y wrong length",
        lambda: make().fit(replace_task(3, y_t=y[:9])),
        ValueError,
        ["Task 3: X has 10 rows but y has 9"],
    ),
    (
        "NaN in a task's X",
        lambda: make().fit(replace_task(1, with_value(X[:10], np.nan, row=2))),
        ValueError,
        ["Task 1:", "NaN"],
    ),
    (
        "inf in a task's y",
        lambda: make().fit(replace_task(2, y_t=with_value(y[:10], np.inf, row=2))),
        ValueError,
        ["Task 2:", "infinity"],
    ),
    (
        "tasks with different feature counts",
        lambda: make().fit(replace_task(1, X[:10, :2])),
        ValueError,
        ["Task 1 has 2 features, but task 0 has 3"],
    ),
    (
        "DataFrame tasks with different columns",
        lambda: make().fit([(df[:10], y[:10]), (df[10:20].rename(columns={"a": "z"}), y[10:20])]),
        ValueError,
        ["Task 1 has columns ['z', 'b', 'c'], but task 0 has ['a', 'b', 'c']"],
    ),
    (
        "task smaller than shots (list)",
        lambda: make(shots=3).fit(replace_task(2, X[:3], y[:3])),
        ValueError,
        ["Task 2 has n_samples=3, too few for shots=3"],
    ),
    (
        "task not an (X, y) pair",
        lambda: make().fit([tasks[0], (X[:10], y[:10], y[:10])]),
        ValueError,
        ["Task 1: expected an (X, y) pair, got tuple"],
    ),
    (
        "groups with a list of tasks",
        lambda: make().fit(tasks, groups=[0, 1, 2, 3]),
        ValueError,
        ["groups must be None when X is a list"],
    ),
    # ---- task samplers
    (
        "sampler without sample",
        lambda: make().fit(NoSample()),
        TypeError,
        ["task sampler with a sample(n_tasks, random_state) method", "got NoSample"],
    ),
    (
        "sampler whose sample is not callable",
        lambda: make().fit(SampleNotCallable()),
        TypeError,
        ["got SampleNotCallable whose sample is not callable"],
    ),
    (
        "sampler returning a number",
        lambda: make().fit(Sampler(lambda n: 5)),
        ValueError,
        ["Sampler.sample(2, random_state) must return a list of 2 (X, y) tasks; got int"],
    ),
    (
        "sampler returning too few tasks",
        lambda: make().fit(Sampler(lambda n: tasks[:1])),
        ValueError,
        ["must return a list of 2", "of length 1"],
    ),
    (
        "sampler returning non-pairs",
        lambda: make().fit(Sampler(lambda n: [X[:10]] * n)),
        ValueError,
        ["returned an invalid task", "Task 0: expected an (X, y) pair, got ndarray"],
    ),
    (
        "sampler returning mismatched X and y",
        lambda: make().fit(Sampler(lambda n: [(X[:5], y[:4])] * n)),
        ValueError,
        ["returned an invalid task", "Task 0: X has 5 rows but y has 4"],
    ),
    (
        "sampler returning NaN",
        lambda: make().fit(Sampler(lambda n: [tasks[0], (X[:10], np.full(10, np.nan))])),
        ValueError,
        ["returned an invalid task", "Task 1:", "NaN"],
    ),
    (
        "sampler changing the feature count after fit",
        lambda: (
            make()
            .fit(Sampler(lambda n: tasks[:n]))
            .partial_fit(Sampler(lambda n: [(X[:10, :1], y[:10])] * n))
        ),
        ValueError,
        ["returned an invalid task", "Task 0 has 1 features, but the estimator was fitted with 3"],
    ),
    (
        "sampler with y",
        lambda: make().fit(Sampler(lambda n: tasks[:n]), y),
        ValueError,
        ["y and groups must be None when X is a task sampler"],
    ),
    (
        "sampler given to score",
        lambda: fitted().score(Sampler(lambda n: tasks[:n])),
        TypeError,
        ["A task sampler cannot be used here"],
    ),
    # ---- adapt / predict / score after fit
    (
        "adapt with another feature count",
        lambda: fitted().adapt(X[:5, :2], y[:5]),
        ValueError,
        ["X has 2 features, but MAMLRegressor is expecting 3 features"],
    ),
    (
        "predict with another feature count",
        lambda: fitted().predict(X[:5, :2]),
        ValueError,
        ["X has 2 features, but MAMLRegressor is expecting 3 features"],
    ),
    (
        "score tasks with another feature count",
        lambda: fitted().score([(X[:10, :2], y[:10])]),
        ValueError,
        ["Task 0 has 2 features, but the estimator was fitted with 3"],
    ),
    (
        "adapt X 1-D",
        lambda: fitted().adapt(X[:5, 0], y[:5]),
        ValueError,
        ["Expected 2D array"],
    ),
    (
        "adapt y 2-D",
        lambda: fitted().adapt(X[:5], np.c_[y[:5], y[:5]]),
        ValueError,
        ["y should be a 1d array"],
    ),
    (
        "adapt y wrong length",
        lambda: fitted().adapt(X[:5], y[:4]),
        ValueError,
        ["inconsistent numbers of samples"],
    ),
    ("adapt with no rows", lambda: fitted().adapt(X[:0], y[:0]), ValueError, ["0 sample(s)"]),
    (
        "NaN in adapt X",
        lambda: fitted().adapt(with_value(X[:5], np.nan, row=1), y[:5]),
        ValueError,
        ["Input X contains NaN"],
    ),
    (
        "inf in adapt y",
        lambda: fitted().adapt(X[:5], with_value(y[:5], np.inf, row=1)),
        ValueError,
        ["Input y contains infinity"],
    ),
    (
        "NaN in predict X",
        lambda: fitted().predict(with_value(X[:5], np.nan, row=1)),
        ValueError,
        ["Input X contains NaN"],
    ),
    (
        "adapt DataFrame with renamed column",
        lambda: fitted_on_frame().adapt(df.rename(columns={"a": "z"})[:5], y[:5]),
        ValueError,
        ["feature names should match", "- z"],
    ),
    (
        "predict DataFrame with reordered columns",
        lambda: fitted_on_frame().predict(df[["b", "a", "c"]]),
        ValueError,
        ["same order"],
    ),
    (
        "predict array after fit on DataFrame (sklearn warns)",
        lambda: fitted_on_frame().predict(X),
        UserWarning,
        ["X does not have valid feature names, but MAMLRegressor was fitted with feature names"],
    ),
    (
        "predict DataFrame after fit on array (sklearn warns)",
        lambda: fitted().predict(df),
        UserWarning,
        ["X has feature names, but MAMLRegressor was fitted without feature names"],
    ),
    ("adapt before fit", lambda: make().adapt(X, y), NotFittedError, ["not fitted yet"]),
    ("predict before fit", lambda: make().predict(X), NotFittedError, ["not fitted yet"]),
    (
        "adapt after set_params(inner_lr=-1)",
        adapt_after(inner_lr=-1.0),
        ValueError,
        ["inner_lr must be > 0, got -1.0"],
    ),
    # ---- device
    ("unknown device string", fit(device="tpu"), ValueError, ["Unknown device 'tpu'"]),
    ("malformed device string", fit(device="gpu0"), ValueError, ["Unknown device 'gpu0'"]),
    ("device of wrong type", fit(device=3), TypeError, ["device must be a string"]),
    (
        "cuda without CUDA",
        cuda_unavailable("cuda"),
        ValueError,
        ["device='cuda' but CUDA is not available"],
    ),
    (
        "cuda:1 without CUDA",
        cuda_unavailable("cuda:1"),
        ValueError,
        ["device='cuda:1' but CUDA is not available"],
    ),
    # ---- module
    (
        "module a string",
        fit(module="mlp"),
        TypeError,
        ["module must be a torch.nn.Module subclass or instance", "got str"],
    ),
    (
        "module a function",
        fit(module=lambda: nn.Linear(3, 1)),
        TypeError,
        ["module must be a torch.nn.Module subclass or instance", "got function"],
    ),
    (
        "module output too wide",
        fit(module=TwoOutputs),
        ValueError,
        ["module output has shape (5, 2) for 5 rows", "needs (5,) or (5, 1)"],
    ),
    (
        "module input width wrong",
        fit(module=nn.Linear(5, 1)),
        ValueError,
        ["module failed on input of shape (5, 3) (3 features)"],
    ),
    (
        "module without trainable parameters",
        fit(module=nn.ReLU()),
        ValueError,
        ["module has no trainable parameters"],
    ),
    (
        "module__ parameter the class rejects",
        fit(module=nn.Linear, module__foo=1),
        TypeError,
        ["Could not build Linear"],
    ),
    (
        "module__ parameter with an instance",
        fit(module=nn.Linear(3, 1), module__bias=False),
        ValueError,
        ["module__ parameters ['bias'] need module to be a class"],
    ),
    (
        "misspelled parameter",
        lambda: MAMLRegressor(inner_lrr=0.1).fit(X, y, groups=groups),
        TypeError,
        ["unexpected parameter(s) ['inner_lrr']"],
    ),
    # ---- hyper-parameters
    ("inner_lr zero", fit(inner_lr=0), ValueError, ["inner_lr must be > 0, got 0"]),
    ("inner_lr negative", fit(inner_lr=-0.1), ValueError, ["inner_lr must be > 0, got -0.1"]),
    ("inner_lr NaN", fit(inner_lr=float("nan")), ValueError, ["inner_lr must be > 0, got nan"]),
    ("inner_lr a string", fit(inner_lr="0.1"), ValueError, ["inner_lr must be a number"]),
    ("inner_steps zero", fit(inner_steps=0), ValueError, ["inner_steps must be > 0, got 0"]),
    ("inner_steps negative", fit(inner_steps=-1), ValueError, ["inner_steps must be > 0"]),
    ("inner_steps fractional", fit(inner_steps=1.5), ValueError, ["must be an integer"]),
    ("max_iter zero", fit(max_iter=0), ValueError, ["max_iter must be > 0, got 0"]),
    ("max_iter negative", fit(max_iter=-5), ValueError, ["max_iter must be > 0, got -5"]),
    (
        "meta_batch_size zero",
        fit(meta_batch_size=0),
        ValueError,
        ["meta_batch_size must be > 0, got 0"],
    ),
    (
        "meta_batch_size negative",
        fit(meta_batch_size=-2),
        ValueError,
        ["meta_batch_size must be > 0, got -2"],
    ),
    ("meta_lr zero", fit(meta_lr=0.0), ValueError, ["meta_lr must be > 0"]),
    ("adapt_steps negative", fit(adapt_steps=-1), ValueError, ["adapt_steps must be >= 0"]),
    ("shots zero", fit(shots=0), ValueError, ["shots must be"]),
    (
        "shots fraction above 1",
        fit(shots=1.5),
        ValueError,
        ['shots must be "auto", a positive int'],
    ),
    (
        "hidden_layer_sizes with a zero",
        fit(hidden_layer_sizes=(0,)),
        ValueError,
        ["hidden_layer_sizes must be a tuple of positive ints"],
    ),
    # ---- algorithm options
    (
        "adapt_params a number",
        fit(adapt_params=3),
        ValueError,
        ['adapt_params must be "all", "head" or a non-empty list', "got 3"],
    ),
    ("adapt_params empty", fit(adapt_params=[]), ValueError, ["non-empty list"]),
    (
        "adapt_params naming no parameter",
        fit(adapt_params=["layers.9"]),
        ValueError,
        ["adapt_params: 'layers.9' names no parameter", "'layers.0.weight'"],
    ),
    (
        "learn_inner_lr unknown",
        fit(learn_inner_lr="per-tensor"),
        ValueError,
        ["learn_inner_lr must be one of (None, 'per-parameter', 'per-layer-per-step')"],
    ),
    (
        "multi_step_loss negative",
        fit(multi_step_loss=-3),
        ValueError,
        ["multi_step_loss must be True, False or a positive number", "got -3"],
    ),
    (
        "multi_step_loss a string",
        fit(multi_step_loss="yes"),
        ValueError,
        ["multi_step_loss must be True, False"],
    ),
    (
        "Reptile inner_optimizer unknown",
        lambda: ReptileRegressor(inner_optimizer="rmsprop", max_iter=2).fit(tasks),
        ValueError,
        ["inner_optimizer must be one of ('sgd', 'adam'), got 'rmsprop'"],
    ),
    (
        "Reptile outer_step_size zero",
        lambda: ReptileRegressor(outer_step_size=0, max_iter=2).fit(tasks),
        ValueError,
        ["outer_step_size must be > 0, got 0"],
    ),
    (
        "ProtoNet embedding_size zero",
        lambda: ProtoNetClassifier(embedding_size=0, max_iter=2, shots=2).fit(
            classifier_tasks(np.repeat([0, 1], 5))
        ),
        ValueError,
        ["embedding_size must be > 0, got 0"],
    ),
    (
        "ProtoNet module output 1-D",
        lambda: ProtoNetClassifier(module=OneOutput, max_iter=2, shots=2).fit(
            classifier_tasks(np.repeat([0, 1], 5))
        ),
        ValueError,
        ["module output has shape (5,) for 5 rows", "needs (5, d)"],
    ),
    (
        "ProtoNet task wider than the first fit's",
        lambda: (
            ProtoNetClassifier(max_iter=2, shots=1)
            .fit(classifier_tasks(np.repeat([0, 1], 5)))
            .partial_fit(classifier_tasks(np.repeat([0, 1, 2, 3, 4], 2)))
        ),
        ValueError,
        ["Task 1 has 5 classes, more than the 2 of the widest task ProtoNetClassifier"],
    ),
    # ---- inputs that used to give raw tracebacks
    (
        "module returns a tuple",
        fit(module=TupleOutput),
        TypeError,
        ["returned a tuple", "one torch.Tensor"],
    ),
    ("module returns a dict", fit(module=DictOutput), TypeError, ["returned a dict"]),
    ("module returns numpy", fit(module=NumpyOutput), TypeError, ["returned a numpy.ndarray"]),
    (
        "module right only for the probe's rows",
        fit(module=FirstRowsOnly),
        ValueError,
        ["module returned a tensor of shape (5, 1) for", "one row per input row"],
    ),
    (
        "cuda index beyond the devices",
        cuda_index_beyond("cuda:7"),
        ValueError,
        ["device='cuda:7' but this machine has 1 CUDA device(s) (cuda:0 to cuda:0)"],
    ),
    (
        "torch.device of index beyond the devices",
        cuda_index_beyond(torch.device("cuda", 3)),
        ValueError,
        ["this machine has 1 CUDA device(s)"],
    ),
    (
        "meta device",
        fit(device=torch.device("meta")),
        ValueError,
        ["Unknown device device(type='meta')", "'cpu', 'cuda'"],
    ),
    (
        "module__ parameter with the default MLP",
        fit(module__width=3),
        TypeError,
        ["module__ parameters ['width']", "default MLP", "hidden_layer_sizes"],
    ),
    (
        "task list whose first task is a 3-tuple",
        lambda: make().fit([(X[:10], y[:10], groups[:10])] + tasks[1:]),
        ValueError,
        ["Task 0: expected an (X, y) pair, got tuple"],
    ),
    (
        "predict given a list of tasks",
        lambda: fitted().predict(tasks),
        TypeError,
        ["predict takes the rows of one task", "a list of (X_i, y_i) tasks", "score(tasks)"],
    ),
    (
        "predict given an (X, y) pair",
        lambda: fitted().predict((X, y)),
        TypeError,
        ["predict takes the rows of one task", "an (X, y) pair", "adapt("],
    ),
    (
        "predict given an [X, y] list",
        lambda: fitted().predict([X, y]),
        TypeError,
        ["an (X, y) pair"],
    ),
    (
        "pd.NA in a nullable-dtype frame",
        lambda: make().fit(nullable_frame_with_na(), y, groups=groups),
        ValueError,
        ["NaN", "(first at row 15, task 1)"],
    ),
    (
        "groups mixing 0 and '0' in a list",
        lambda: make().fit(X, y, groups=[0] * 20 + ["0"] * 20),
        ValueError,
        ["groups mixes strings (e.g. '0') with other task ids (e.g. 0)"],
    ),
    (
        "groups mixing 0 and '0' in an array",
        lambda: make().fit(X, y, groups=np.array([0] * 20 + ["0"] * 20, dtype=object)),
        ValueError,
        ["groups mixes strings (e.g. '0') with other task ids (e.g. 0)"],
    ),
    # ---- float64 values beyond float32
    (
        "X beyond float32 at fit",
        lambda: make().fit(with_value(X, 1e39), y, groups=groups),
        ValueError,
        ["X holds 1e+39 (first at row 15), beyond the float32 range"],
    ),
    (
        "y beyond float32 at fit",
        lambda: make().fit(X, with_value(y, -1e39), groups=groups),
        ValueError,
        ["y holds -1e+39 (first at row 15), beyond the float32 range"],
    ),
    (
        "X beyond float32 in a task list",
        lambda: make().fit(replace_task(1, X_t=with_value(tasks[1][0], 1e39, row=2))),
        ValueError,
        ["Task 1: X holds 1e+39 (first at row 2)"],
    ),
    (
        "y beyond float32 in a task list",
        lambda: make().fit(replace_task(1, y_t=with_value(tasks[1][1], 1e39, row=2))),
        ValueError,
        ["Task 1: y holds 1e+39 (first at row 2)"],
    ),
    (
        "X beyond float32 at predict",
        lambda: fitted().predict(with_value(X, 1e39)),
        ValueError,
        ["X holds 1e+39 (first at row 15)"],
    ),
    (
        "X beyond float32 at adapt",
        lambda: fitted().adapt(with_value(X, 1e39), y),
        ValueError,
        ["X holds 1e+39"],
    ),
    (
        "y beyond float32 at adapt",
        lambda: fitted().adapt(X, with_value(y, 1e39)),
        ValueError,
        ["y holds 1e+39"],
    ),
    (
        "X beyond float32 in a sampler's task",
        lambda: make(max_iter=3).fit(
            Sampler(lambda n: [(with_value(X[:10], 1e39, row=2), y[:10])] * n)
        ),
        ValueError,
        ["Sampler.sample(2, random_state) returned an invalid task: Task 0: X holds 1e+39"],
    ),
    # ---- classification tasks
    (
        "classifier task with one class",
        fit_classifier(classifier_tasks(np.zeros(10, dtype=int))),
        ValueError,
        ["Task 1 has one class only", "at least 2 classes"],
    ),
    (
        "classifier task with more classes than n_way",
        fit_classifier(classifier_tasks(np.repeat([0, 1, 2, 3, 4], 2)), n_way=2, shots=1),
        ValueError,
        ["Task 1 has 5 classes, more than n_way=2"],
    ),
]


def test_case_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "call, expected, fragments", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_gives_clear_message(call, expected, fragments):
    if issubclass(expected, Warning):
        with pytest.warns(expected) as record:
            call()
        messages = [str(w.message) for w in record if issubclass(w.category, expected)]
        assert any(all(f in m for f in fragments) for m in messages), messages
    else:
        with pytest.raises(expected) as info:
            call()
        message = str(info.value)
        missing = [f for f in fragments if f not in message]
        assert not missing, f"{missing} not in: {message}"
