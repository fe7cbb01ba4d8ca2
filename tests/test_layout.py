import copy
import pickle

import numpy as np

from sklearn_gd._engine._layout import Layout


def test_views_partition_the_buffer():
    layout = Layout([3, 4, 2])
    assert layout.size == 3 * 4 + 4 + 4 * 2 + 2
    theta = np.arange(layout.size, dtype=float)
    pieces = []
    for W, b in zip(layout.weights(theta), layout.biases(theta)):
        pieces += [W.ravel(), b]
    np.testing.assert_array_equal(np.concatenate(pieces), theta)
    assert [W.shape for W in layout.weights(theta)] == [(3, 4), (4, 2)]


def test_views_write_through_to_the_buffer():
    layout = Layout([2, 3, 1])
    theta = np.zeros(layout.size)
    layout.weights(theta)[1][...] = 7.0
    layout.biases(theta)[0][...] = -1.0
    assert (theta[layout.weight_slices[1]] == 7.0).all()
    assert (theta[layout.bias_slices[0]] == -1.0).all()


def test_weight_mask_excludes_biases():
    layout = Layout([2, 3, 1])
    mask = layout.weight_mask()
    assert mask.sum() == 2 * 3 + 3 * 1
    for s in layout.bias_slices:
        assert not mask[s].any()


def test_linear_layout_and_round_trips():
    layout = Layout([5, 1])
    assert layout.n_layers == 1 and layout.size == 6
    assert pickle.loads(pickle.dumps(layout)) == layout
    assert copy.deepcopy(layout) == layout
