"""Docstrings of the public estimators, composed from shared fragments.

Each parameter and attribute is documented once here; an estimator's
docstring lists the ones it has (numpydoc format), so a regressor and its
classifier, or MAML and Reptile, never carry diverging copies of the same
text.
"""

from __future__ import annotations

import textwrap

_MODULE = """\
    The network. A class is instantiated with the ``module__*``
    parameters; an instance is deep-copied. None builds an MLP
    ``n_features -> hidden_layer_sizes -> {width}`` with ReLU activations.
    {output}"""

PARAMETERS = {
    "module/regressor": "module : torch.nn.Module class or instance, default=None\n"
    + _MODULE.format(width="1", output="The output must have shape ``(n, 1)`` or ``(n,)``."),
    "module/classifier": "module : torch.nn.Module class or instance, default=None\n"
    + _MODULE.format(width="n_way", output="The output must be logits of shape ``(n, n_way)``."),
    "module/embedding": "module : torch.nn.Module class or instance, default=None\n"
    + _MODULE.format(
        width="embedding_size",
        output="Its output, of shape ``(n, d)`` for any ``d``, is the embedding.",
    ),
    "n_way": """\
n_way : int, default=None
    Output units, the most classes a task may have. None: the number of
    classes of the largest task seen at the first fit.""",
    "hidden_layer_sizes": """\
hidden_layer_sizes : tuple of int, default=(40, 40)
    Hidden widths of the default MLP (ignored when ``module`` is given).""",
    "embedding_size": """\
embedding_size : int, default=64
    Output width of the default MLP: the embedding's dimension (ignored
    when ``module`` is given).""",
    "inner_lr": """\
inner_lr : float, default={default}
    Step size of the inner steps, in meta-training and in :meth:`adapt`
    (the initial value of learned step sizes).""",
    "inner_steps": """\
inner_steps : int, default={default}
    Inner steps per task during meta-training.""",
    "adapt_steps": """\
adapt_steps : int, default=None
    Steps in :meth:`adapt` and few-shot :meth:`score`; None means
    ``inner_steps``. 0 evaluates the learned initialisation itself.""",
    "first_order": """\
first_order : bool, default=False
    Ignore second derivatives in the meta-gradient (first-order MAML).""",
    "adapt_params": """\
adapt_params : "all", "head" or list of str, default="all"
    Parameters the inner loop adapts. ``"head"``: the last submodule that
    owns parameters (the output layer), which is ANIL (Raghu et al., 2020):
    the body gets no inner update but is meta-learned. A list selects
    parameters by name prefix (``["layers.4"]``). The others still receive
    a meta-gradient.""",
    "learn_inner_lr": """\
learn_inner_lr : {None, "per-parameter", "per-layer-per-step"}, default=None
    Meta-learn the inner step sizes, starting at ``inner_lr``:
    ``"per-parameter"`` learns one per entry of every adapted parameter
    (Meta-SGD, Li et al., 2017; signed: it learns a direction too), in
    ``meta_params_.learned["inner_lr"]``; ``"per-layer-per-step"`` one per
    adapted parameter tensor and inner step (MAML++'s LSLR, Antoniou et al.,
    2019), learned as its logarithm so that it stays positive, in
    ``meta_params_.learned["log_inner_lr"]``; an ``adapt`` longer than
    ``inner_steps`` repeats the last step's sizes. Step sizes trained for
    ``inner_steps`` steps may diverge over more: keep ``adapt_steps`` at
    ``inner_steps``. They are meta-parameters like the initial weights, in
    pickles and :meth:`save_params` files.""",
    "multi_step_loss": """\
multi_step_loss : bool or int, default=False
    MAML++'s multi-step loss (Antoniou et al., 2019): the meta-loss is the
    weighted sum of the query losses after every inner step, with weights
    annealed from uniform towards the last step over the first outer steps
    (``True``: a tenth of ``max_iter``; an int: that many), plain MAML's
    last-step loss afterwards. Needs ``inner_steps`` > 1 to matter.""",
    "inner_optimizer": """\
inner_optimizer : {"sgd", "adam"}, default="sgd"
    Rule of the inner steps; Adam starts from fresh moments per task.""",
    "outer_step_size": """\
outer_step_size : float, default=1.0
    Reptile's ``eps``: the outer update moves the initialisation by
    ``eps * mean_i(phi_i - theta)``, ``eps`` falling linearly from this
    value to 0 over each :meth:`fit` (``partial_fit`` follows ``n_iter_``
    over ``max_iter``).""",
    "meta_lr": """\
meta_lr : float, default=1e-3
    Adam step size of the outer (meta) update.""",
    "meta_batch_size": """\
meta_batch_size : int, default=25
    Tasks per outer step (at most the number of tasks given).""",
    "max_iter": """\
max_iter : int, default=1000
    Outer steps of :meth:`fit`.""",
    "compile": """\
compile : bool or dict, default=False
    Run the meta-training step and the batched adaptation of few-shot
    :meth:`score` through :func:`torch.compile` (a dict: its keyword
    arguments, e.g. ``{"mode": "max-autotune-no-cudagraphs"}``). The first
    meta-step pays the compilation (seconds to minutes on a CPU); later
    steps reuse the graph while the meta-batch keeps its shape. Results
    equal the eager ones up to float rounding. If compilation fails, the
    estimator warns once, naming the reason, and runs eagerly. Compiled
    code is never pickled: it is rebuilt on first use after loading.""",
    "shots/regressor": """\
shots : "auto", int or float, default="auto"
    Support rows per task (int) or their fraction (float in (0, 1)) for
    the support/query split of meta-training and scoring; the other rows
    are the query set. ``"auto"``: ``min(10, n_rows - 1)`` rows of each
    task, so that every task of 2 rows or more leaves a query row.
    In meta-training a task's query set is at most 500 rows per step (a
    fresh random subset each step), so that one large task does not make
    every step pay for all its rows; scoring uses them all.""",
    "shots/classifier": """\
shots : "auto", int or float, default="auto"
    Support rows per class (int) or the fraction of each class's rows
    (float in (0, 1)) in the support/query split of meta-training and
    scoring; the other rows are the query set. ``"auto"``: the same
    number ``k = min(10, n_smallest_class - 1)`` (at least 1) of rows of
    every class of a task, so that every class keeps a query row when it
    has two rows or more.
    In meta-training a task's query set is at most 500 rows per step (a
    fresh random subset each step); scoring uses them all.""",
    "task_col": """\
task_col : str, default=None
    Name of a DataFrame column of ``X`` holding the task id; it is
    removed from the features.""",
    "device": """\
device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
    Where the network and every tensor live.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds initialisation, task draws, label permutations and
    support/query splits.""",
    "verbose": """\
verbose : bool or int, default=0
    True (or 1) shows a progress bar of the outer steps with the running
    meta-loss, on standard error; it stays on screen after :meth:`fit`.""",
    "warm_start": """\
warm_start : bool, default=False
    Continue from the previous fit instead of starting afresh.""",
    "kwargs": """\
**kwargs
    ``module__<name>`` parameters passed to the ``module`` class.""",
}

ATTRIBUTES = {
    "module_": """\
module_ : torch.nn.Module
    The network holding the learned initialisation.""",
    "meta_params_": """\
meta_params_ : torch.nn.Module
    Every meta-parameter: ``module_`` and what the algorithm learns
    besides (learned inner step sizes), which the outer optimizer, the
    divergence rollback, pickling and :meth:`save_params` cover.""",
    "adapted_params_": """\
adapted_params_ : dict of str to Tensor or None
    The adapted model of the last :meth:`adapt`; None before.""",
    "classes_": """\
classes_ : ndarray of shape (n_classes,)
    Labels of the task last given to :meth:`adapt`, or of the single task
    fit on; absent after meta-training on several tasks until
    :meth:`adapt` is called.""",
    "n_way_": """\
n_way_ : int
    Output units of the network.""",
    "n_features_in_": """\
n_features_in_ : int
    Number of features seen during fit.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (n_features_in_,)
    Feature names, when fit on a DataFrame with string column names.""",
    "n_iter_": """\
n_iter_ : int
    Outer steps taken.""",
    "loss_curve_": """\
loss_curve_ : list of float
    Meta-loss (mean query loss of the meta-batch after adaptation) at
    each outer step.""",
    "device_": """\
device_ : torch.device
    The resolved device.""",
    "batching_": """\
batching_ : {"vmap", "loop"}
    How tasks are evaluated together: vectorised, or one task at a time
    for modules vmap cannot run. Chosen once, at the first fit.""",
    "optimizer_": """\
optimizer_ : torch.optim.Adam
    The outer optimizer over ``meta_params_`` (kept for ``warm_start``
    and ``partial_fit``); torch's fused Adam on CPU and CUDA.""",
}

COMMON_TAIL = ["task_col", "device", "random_state", "verbose", "warm_start", "kwargs"]
META_TRAINED_ATTRIBUTES = [
    "module_",
    "meta_params_",
    "adapted_params_",
    "n_features_in_",
    "feature_names_in_",
    "n_iter_",
    "loss_curve_",
    "device_",
    "batching_",
    "optimizer_",
]

FIXED_HEAD_CLASSIFICATION = """
Each task is a classification problem with its own labels (task A may use
``{3, 7}``, task B ``{"cat", "dog", "owl"}``). Inside, a task's labels are
coded ``0..n_classes - 1``; during meta-training the codes of every task are
mapped to the ``n_way`` output units through a fresh random permutation at
each meta-batch, so that no unit learns a class identity and the
initialisation learns to adapt instead (Finn et al., 2017, section 5.2).
:meth:`adapt` fixes the label mapping of a new task; :meth:`predict` returns
that task's labels and :meth:`predict_proba` has one column per entry of
``classes_``.

Fit on a single task (``groups=None`` with plain ``X, y``), the labels keep
one meaning throughout, so they are not shuffled, ``classes_`` is set at fit
and the estimator predicts without :meth:`adapt` like a plain classifier.
"""


def _entries(items, table: dict, defaults: dict) -> str:
    """Each item is a fragment's key, or a whole numpydoc entry of its own."""
    entries = []
    for item in items:
        if item not in table:
            entries.append(textwrap.dedent(item).strip())
            continue
        key = item.split("/")[0]
        text = table[item]
        entries.append(text.replace("{default}", repr(defaults[key])) if key in defaults else text)
    return "\n".join(entries)


def compose(
    summary: str,
    *,
    parameters,
    attributes,
    see_also: str,
    examples: str,
    defaults: dict | None = None,
) -> str:
    """A numpydoc class docstring from a summary and fragments.

    ``parameters`` and ``attributes`` list fragment keys (``"inner_lr"``,
    ``"module/regressor"``) or whole entries for what one estimator alone
    has; ``defaults`` fills the ``{default}`` of fragments whose default
    differs between estimators.
    """
    sections = [
        textwrap.dedent(summary).strip(),
        "Parameters\n----------\n" + _entries(parameters, PARAMETERS, defaults or {}),
        "Attributes\n----------\n" + _entries(attributes, ATTRIBUTES, defaults or {}),
        "See Also\n--------\n" + textwrap.dedent(see_also).strip(),
        "Examples\n--------\n" + textwrap.dedent(examples).strip(),
    ]
    return "\n\n".join(sections) + "\n"
