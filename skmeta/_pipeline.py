"""Few-shot adaptation through a scikit-learn Pipeline."""

from __future__ import annotations

from sklearn.pipeline import Pipeline


def adapt_pipeline(pipeline: Pipeline, X, y) -> Pipeline:
    """Adapt the final step of a fitted pipeline to a new task's support set.

    A Pipeline exposes only the standard methods of its final step; this
    transforms ``X`` through the fitted preceding steps and calls the final
    step's ``adapt``. ``pipeline.predict`` then uses the adapted model.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted, with a skmeta estimator as its final step.
    X : array-like or DataFrame of shape (n_support, n_features)
    y : array-like of shape (n_support,)

    Returns
    -------
    pipeline : Pipeline
        The same pipeline.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skmeta import MAMLRegressor, adapt_pipeline
    >>> from skmeta.datasets import SinusoidTasks
    >>> tasks = SinusoidTasks(n_samples=20).sample(50, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), MAMLRegressor(max_iter=50, random_state=0))
    >>> pipe = pipe.fit(tasks[0][0], tasks[0][1])
    >>> X, y = tasks[1]
    >>> adapt_pipeline(pipe, X[:10], y[:10]).predict(X[10:]).shape
    (10,)
    """
    final = pipeline.steps[-1][1]
    if not hasattr(final, "adapt"):
        raise TypeError(
            f"The final step of the pipeline ({type(final).__name__}) has no adapt method."
        )
    if len(pipeline.steps) > 1:
        X = pipeline[:-1].transform(X)
    final.adapt(X, y)
    return pipeline
