"""Few-shot digits: N-way K-shot tasks from scikit-learn's bundled 8x8 digits.

Each of the 10 digits, rotated by 0, 90, 180 and 270 degrees, is a class of
its own: 40 classes, as the Omniglot benchmark multiplies its characters by
rotation (Santoro et al., 2016; Finn et al., 2017). The classes are split by
digit, all four rotations on the same side, so no image is seen during
meta-training in any orientation:

* meta-train: digits 0, 1, 5, 6, 8, 9 (24 classes);
* meta-test: digits 2, 3, 4, 7 (16 classes).

The meta-test digits are those with no 180-degree symmetry (0, 1, 8 look the
same upside down) and no rotated twin (6 and 9), so every meta-test class is
distinguishable from the others by its shape. Nothing is downloaded.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

META_TRAIN_DIGITS = (0, 1, 5, 6, 8, 9)
META_TEST_DIGITS = (2, 3, 4, 7)
ROTATIONS = (0, 90, 180, 270)


def load_rotated_digits(split: str = "meta-train") -> tuple[np.ndarray, np.ndarray]:
    """Images and class labels of one split of the rotated-digits classes.

    Parameters
    ----------
    split : {"meta-train", "meta-test", "all"}, default="meta-train"

    Returns
    -------
    X : ndarray of shape (n_images, 64), float32
        Pixel intensities scaled to [0, 1], the 8x8 image flattened row by row.
    y : ndarray of shape (n_images,), int64
        Class ``4 * digit + rotation // 90``, in ``0..39``.

    Examples
    --------
    >>> from skmeta.datasets import load_rotated_digits
    >>> X, y = load_rotated_digits("meta-test")
    >>> X.shape[1], len(set(y.tolist()))
    (64, 16)
    """
    digits = {"meta-train": META_TRAIN_DIGITS, "meta-test": META_TEST_DIGITS}
    digits["all"] = tuple(sorted(META_TRAIN_DIGITS + META_TEST_DIGITS))
    if split not in digits:
        raise ValueError(f"split must be one of {sorted(digits)}, got {split!r}.")
    bunch = load_digits()
    keep = np.isin(bunch.target, digits[split])
    images = bunch.images[keep].astype(np.float32) / 16.0
    target = bunch.target[keep].astype(np.int64)
    X_parts, y_parts = [], []
    for quarter_turns in range(len(ROTATIONS)):
        rotated = np.rot90(images, k=quarter_turns, axes=(1, 2))
        X_parts.append(rotated.reshape(len(rotated), -1))
        y_parts.append(4 * target + quarter_turns)
    return np.ascontiguousarray(np.concatenate(X_parts)), np.concatenate(y_parts)


class FewShotDigits:
    """Sampler of N-way K-shot classification tasks from the rotated digits.

    A task picks ``n_way`` classes of the split at random and ``k_shot +
    n_query`` distinct images of each. Its rows are ordered support first:
    the first ``n_way * k_shot`` rows (``k_shot`` per class) are the support
    set, the remaining ``n_way * n_query`` the query set; within each part the
    order is random. Labels are the global class ids (``4 * digit +
    rotation // 90``), so tasks use different label sets; the estimators code
    them per task. Pass the object to ``fit`` for fresh tasks at every
    meta-batch, or call :meth:`sample` for a fixed, reproducible list.

    Parameters
    ----------
    n_way : int, default=5
        Classes per task (at most the split's 24 or 16 classes).
    k_shot : int, default=1
        Support images per class.
    n_query : int, default=15
        Query images per class.
    split : {"meta-train", "meta-test"}, default="meta-train"
        Which classes tasks are drawn from (see the module docstring).

    Attributes
    ----------
    X : ndarray of shape (n_images, 64)
        The split's images, flattened, in [0, 1].
    y : ndarray of shape (n_images,)
        Their class labels.
    classes : ndarray of shape (n_classes,)
        The split's class labels.

    Examples
    --------
    >>> from skmeta.datasets import FewShotDigits
    >>> tasks = FewShotDigits(n_way=5, k_shot=1, n_query=3).sample(2, random_state=0)
    >>> X, y = tasks[0]
    >>> X.shape, len(set(y[:5].tolist()))
    ((20, 64), 5)
    """

    def __init__(
        self, n_way: int = 5, k_shot: int = 1, n_query: int = 15, *, split: str = "meta-train"
    ):
        self.X, self.y = load_rotated_digits(split)
        self.classes = np.unique(self.y)
        for name, value, minimum in (("n_way", n_way, 2), ("k_shot", k_shot, 1)):
            if not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
        if not isinstance(n_query, numbers.Integral) or n_query < 0:
            raise ValueError(f"n_query must be an int >= 0, got {n_query!r}.")
        if n_way > len(self.classes):
            raise ValueError(
                f"n_way={n_way} but the {split!r} split has only {len(self.classes)} classes."
            )
        smallest = int(np.bincount(self.y)[self.classes].min())
        if k_shot + n_query > smallest:
            raise ValueError(
                f"k_shot + n_query = {k_shot + n_query} images per class, but the smallest "
                f"class of the {split!r} split has {smallest}."
            )
        self.n_way, self.k_shot, self.n_query, self.split = int(n_way), int(k_shot), n_query, split
        self._rows_of_class = {c: np.flatnonzero(self.y == c) for c in self.classes}

    def __repr__(self) -> str:
        return (
            f"FewShotDigits(n_way={self.n_way}, k_shot={self.k_shot}, "
            f"n_query={self.n_query}, split={self.split!r})"
        )

    def sample(self, n_tasks: int, random_state=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Draw ``n_tasks`` tasks.

        Parameters
        ----------
        n_tasks : int
        random_state : int, RandomState instance or None
            The same int gives the same list of tasks.

        Returns
        -------
        tasks : list of (X, y)
            ``X`` float32 of shape ``(n_way * (k_shot + n_query), 64)``, ``y``
            int64; the first ``n_way * k_shot`` rows are the support set.
        """
        rng = check_random_state(random_state)
        tasks = []
        for _ in range(n_tasks):
            chosen = rng.choice(self.classes, size=self.n_way, replace=False)
            support, query = [], []
            for c in chosen:
                rows = rng.choice(self._rows_of_class[c], self.k_shot + self.n_query, replace=False)
                support.append(rows[: self.k_shot])
                query.append(rows[self.k_shot :])
            support = rng.permutation(np.concatenate(support))
            query = rng.permutation(np.concatenate(query))
            rows = np.concatenate([support, query])
            tasks.append((self.X[rows], self.y[rows]))
        return tasks
