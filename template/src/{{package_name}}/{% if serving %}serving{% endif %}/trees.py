"""The fitted trees of a HistGradientBoosting model, evaluated without the estimator.

``predict`` on a HistGradientBoosting model validates its input, re-encodes it, and then
calls each tree in turn: a model of 200 iterations and 3 classes makes 600 calls per
request, whatever the number of rows.  Here the trees are flattened once into node arrays:

* a small batch walks every tree at once, a few numpy operations per tree level;
* a large batch goes tree by tree through scikit-learn's compiled per-tree routine.

Both sum the trees in scikit-learn's order, so the raw scores are bitwise the same; the
predictor still checks them against the model at load time.  This reads fitted attributes
that scikit-learn keeps private (``_predictors``, ``_baseline_prediction``, ``_bin_mapper``,
``_loss``): a release that changes them fails that check, and serving falls back to
scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # scikit-learn's compiled per-tree routine (private; TreePredictor.predict otherwise)
    from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
except ImportError:  # pragma: no cover - a release that moved it
    _predict_from_raw_data = None

# Batches of at most this many (row, tree) pairs walk all trees at once.
SMALL_BATCH_CELLS = 12_000
_MISSING = 256  # column of the categorical decision table for a missing / out-of-range code


class Forest:
    """Raw scores (before the link function) of a fitted HistGradientBoosting model."""

    def __init__(self, estimator: Any) -> None:
        """Flatten the estimator's trees (attribute errors mean: not such a model)."""
        iterations = estimator._predictors
        self.k = int(estimator.n_trees_per_iteration_)
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(
            1, self.k
        )
        self.known, self.f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        self.plan = [(k, p) for trees in iterations for k, p in enumerate(trees)]
        # what the compiled routine reads of each tree, fetched once (not per request)
        self.calls = [(p.nodes, p.raw_left_cat_bitsets) for _, p in self.plan]
        trees = [p for _, p in self.plan]
        self.n_trees = len(trees)
        self.width = int(estimator.n_features_in_)
        sizes = np.array([len(p.nodes) for p in trees], dtype=np.intp)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([p.nodes for p in trees])
        tree_of = np.repeat(np.arange(len(trees)), sizes)
        leaf = nodes["is_leaf"].astype(bool)
        here = np.arange(len(nodes), dtype=np.intp)
        # children[node, went_left]; a leaf is its own child, so extra steps leave it there
        left = np.where(leaf, here, nodes["left"].astype(np.intp) + offsets[tree_of])
        right = np.where(leaf, here, nodes["right"].astype(np.intp) + offsets[tree_of])
        self.children = np.column_stack((right, left))
        self.value = nodes["value"].astype(np.float64)
        self.roots = offsets
        self.depth = int(nodes["depth"].max()) if len(nodes) else 0
        # Every split becomes "go left when column <= threshold" on an extended matrix
        # [z with NaN as -inf | z | one 0/1 column per categorical split]: a split that
        # sends missing values left reads the first copy, one that sends them right the
        # second (NaN <= t is false), a categorical split its own column (0 = left).
        feature = nodes["feature_idx"].astype(np.intp)
        missing_left = nodes["missing_go_to_left"].astype(bool)
        categorical = np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf)
        self.column = np.where(missing_left, feature, feature + self.width)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.column[leaf] = 0
        self.split_feature = feature[categorical]
        self.column[categorical] = 2 * self.width + np.arange(categorical.size)
        self.threshold[categorical] = 0.5
        # go-left table of each categorical split by code (0..255); column 256 = missing
        self.go_left = np.zeros((categorical.size, _MISSING + 1), dtype=bool)
        codes = np.arange(_MISSING)
        for row, node in enumerate(categorical):
            bits = trees[tree_of[node]].raw_left_cat_bitsets[nodes["bitset_idx"][node]]
            in_left = ((bits[codes // 32] >> (codes % 32)) & 1).astype(bool)
            known_bits = self.known[self.f_idx_map[feature[node]]]
            known = ((known_bits[codes // 32] >> (codes % 32)) & 1).astype(bool)
            # an unknown category is treated as missing, as in scikit-learn
            self.go_left[row, :_MISSING] = in_left | (~known & missing_left[node])
            self.go_left[row, _MISSING] = missing_left[node]
        self.split_rows = np.arange(categorical.size)

    def raw(self, z: np.ndarray) -> np.ndarray:
        """Raw scores, shape (rows, trees per iteration)."""
        if len(z) * self.n_trees <= SMALL_BATCH_CELLS:
            return self._walk(z)
        return self._per_tree(z)

    def _extended(self, z: np.ndarray) -> np.ndarray:
        parts = [np.where(np.isnan(z), -np.inf, z), z]
        if self.split_feature.size:
            x = z[:, self.split_feature]
            inside = (x >= 0) & (x < _MISSING)  # NaN and negative codes are missing
            code = np.where(inside, x, _MISSING).astype(np.intp)
            parts.append(np.where(self.go_left[self.split_rows, code], 0.0, 1.0))
        return np.concatenate(parts, axis=1)

    def _walk(self, z: np.ndarray) -> np.ndarray:
        n = len(z)
        ext = self._extended(z)
        flat = ext.ravel()
        # index of row r, column c of ext in flat: r * width + c
        base = (np.arange(n, dtype=np.intp) * ext.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (n, self.n_trees))
        column, threshold, children = self.column, self.threshold, self.children
        for _ in range(self.depth):
            step = children[node, (flat[base + column[node]] <= threshold[node]).view(np.uint8)]
            if np.array_equal(step, node):
                break
            node = step
        values = self.value[node].reshape(n, -1, self.k)
        # scikit-learn adds the trees one by one to the baseline: a cumulative sum keeps
        # that order (np.sum would add pairwise and round differently)
        stacked = np.concatenate([np.broadcast_to(self.baseline, (n, 1, self.k)), values], axis=1)
        return np.cumsum(stacked, axis=1)[:, -1, :]

    def _per_tree(self, z: np.ndarray) -> np.ndarray:
        n = len(z)
        out = np.empty((self.n_trees, n), dtype=np.float64)
        known, f_idx_map = self.known, self.f_idx_map
        if _predict_from_raw_data is None:
            for i, (_, tree) in enumerate(self.plan):
                out[i] = tree.predict(z, known, f_idx_map, 1)
        else:  # the routine TreePredictor.predict calls, writing into our buffer
            z = np.ascontiguousarray(z, dtype=np.float64)
            predict = _predict_from_raw_data
            # the loop is most of a request's time: one call per tree, nothing else
            for (nodes, bitsets), row in zip(self.calls, out, strict=True):
                predict(nodes, z, bitsets, known, f_idx_map, 1, row)
        # baseline, then the trees in order (as scikit-learn adds them): a cumulative sum
        stacked = np.concatenate(
            [
                np.broadcast_to(self.baseline.reshape(1, self.k, 1), (1, self.k, n)),
                out.reshape(-1, self.k, n),
            ],
            axis=0,
        )
        return np.cumsum(stacked, axis=0)[-1].T
