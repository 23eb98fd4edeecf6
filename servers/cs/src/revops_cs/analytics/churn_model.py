"""Churn model maths: encoding, L2 logistic regression (Newton), grouped k-fold metrics. Pure numpy.

Inputs are rows of {column: value}. Numeric columns are standardised (missing → training mean);
text columns are one-hot encoded over the levels seen in training (unseen level → all zeros).
The penalty `l2·‖β‖²/2` applies to the standardised coefficients, never to the intercept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Row = Mapping[str, Any]
Array = NDArray[np.float64]
Groups = Sequence[int] | NDArray[Any]  # one group id per row (a client; a CSV row is its own)


@dataclass(frozen=True)
class Metrics:
    auc: float
    top_decile_lift: float
    brier: float


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float):
        return None if math.isnan(float(value)) else float(value)
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def build_encoding(rows: Sequence[Row], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Decide per column: numeric (every non-empty value parses) or categorical (sorted levels)."""
    spec: list[dict[str, Any]] = []
    for name in columns:
        values = [r.get(name) for r in rows]
        present = [v for v in values if not _missing(v)]
        if all(_as_float(v) is not None for v in present):
            nums = [n for v in present if (n := _as_float(v)) is not None]
            mean = float(np.mean(nums)) if nums else 0.0
            spec.append({"column": name, "kind": "numeric", "fill": mean})
        else:
            levels = sorted({str(v).strip() for v in present})
            spec.append({"column": name, "kind": "categorical", "levels": levels})
    return spec


def encoded_names(spec: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for s in spec:
        if s["kind"] == "numeric":
            names.append(s["column"])
        else:
            names.extend(f"{s['column']}={level}" for level in s["levels"])
    return names


def encode(rows: Sequence[Row], spec: Sequence[Mapping[str, Any]]) -> Array:
    """The design matrix (no intercept column) for rows under an encoding."""
    width = len(encoded_names(spec))
    x = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        j = 0
        for s in spec:
            value = row.get(s["column"])
            if s["kind"] == "numeric":
                number = _as_float(value)
                x[i, j] = s["fill"] if number is None else number
                j += 1
            else:
                levels = s["levels"]
                text = None if _missing(value) else str(value).strip()
                if text in levels:
                    x[i, j + levels.index(text)] = 1.0
                j += len(levels)
    return x


@dataclass(frozen=True)
class Fitted:
    means: Array
    stds: Array
    coef: Array
    intercept: float

    def predict(self, x: Array) -> Array:
        z = (x - self.means) / self.stds @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Fitted:
        """A model stored as JSON (means, stds, coefficients, intercept) ready to score."""
        return cls(
            means=np.asarray(params["means"]),
            stds=np.asarray(params["stds"]),
            coef=np.asarray(params["coefficients"]),
            intercept=float(params["intercept"]),
        )


def labels_vector(labels: Sequence[int | bool]) -> Array:
    return np.asarray(labels, dtype=float)


def fit(x: Array, y: Array, l2: float, *, iterations: int = 50) -> Fitted:
    """L2-penalised logistic regression on standardised inputs, by Newton–Raphson (IRLS)."""
    means = x.mean(axis=0)
    stds = x.std(axis=0)
    stds[stds == 0] = 1.0  # a constant column carries no information; keep it inert
    z = (x - means) / stds
    n, k = z.shape
    design = np.hstack([np.ones((n, 1)), z])
    beta = np.zeros(k + 1)
    penalty = np.full(k + 1, l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -35, 35)))
        grad = design.T @ (p - y) + penalty * beta
        w = p * (1 - p)
        hess = (design * w[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return Fitted(means=means, stds=stds, coef=beta[1:], intercept=float(beta[0]))


def auc(y: Array, p: Array) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties count half."""
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    i = 0
    while i < len(p):  # average ranks over ties
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_decile_lift(y: Array, p: Array) -> float:
    """Churn rate among the 10 % highest scores ÷ the overall churn rate."""
    n = max(1, math.ceil(len(p) / 10))
    top = np.argsort(-p, kind="mergesort")[:n]
    return float(y[top].mean() / y.mean())


def brier(y: Array, p: Array) -> float:
    return float(np.mean((p - y) ** 2))


def group_labels(groups: Groups, y: Array) -> tuple[NDArray[Any], Array, NDArray[np.intp]]:
    """(group ids ascending, each group's label, each row's index into the ids); a group (a client)
    is positive when any of its rows is."""
    ids, inverse = np.unique(groups, return_inverse=True)
    labels = np.zeros(len(ids))
    np.maximum.at(labels, inverse, y)
    return ids, labels, inverse


def grouped_folds(groups: Groups, y: Array, k: int, seed: int = 0) -> NDArray[np.intp]:
    """Fold number per row: all rows of a group in one fold, stratified by the group's label.

    Negative groups, then positive groups (each in ascending id order), are shuffled with a fixed
    seed and dealt round-robin, so with at least k positive groups every fold holds one. With one
    row per group (an imported dataset) this is the per-row stratified split.
    """
    _, labels, inverse = group_labels(groups, y)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.intp)
    for label in (0, 1):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        fold_of[idx] = np.arange(len(idx)) % k
    return fold_of[inverse]


def cross_validate(
    rows: Sequence[Row], columns: Sequence[str], y: Array, groups: Groups, k: int, l2: float, seed: int = 0
) -> Metrics:
    """Out-of-fold predictions from k grouped, stratified folds, scored as one set. Each fold's
    encoding (missing-value fill, levels) comes from its training rows only."""
    folds = grouped_folds(groups, y, k, seed)
    oof = np.zeros(len(y))
    for f in range(k):
        test = folds == f
        train_rows = [r for r, held_out in zip(rows, test, strict=True) if not held_out]
        spec = build_encoding(train_rows, columns)
        model = fit(encode(train_rows, spec), y[~test], l2)
        oof[test] = model.predict(
            encode([r for r, held_out in zip(rows, test, strict=True) if held_out], spec)
        )
    return Metrics(auc=auc(y, oof), top_decile_lift=top_decile_lift(y, oof), brier=brier(y, oof))
