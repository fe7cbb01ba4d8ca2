"""The layers between the features and the first weight layer: embeddings and a scale.

For ``d`` features, the block maps a row ``x`` to the first layer's input
``e``. With the periodic embedding (``n_frequencies = k > 0``, RealMLP's
"PBLD": periodic, biased, linear, densenet), each feature ``x_j`` becomes
``p - 1`` learned values and itself:

.. math::

    z_{jr} = 2\\pi\\,\\sigma\\,\\omega_{jr}\\, x_j + \\phi_{jr},\\qquad
    h_{jq} = \\sum_{r=1}^{k} \\cos(z_{jr})\\, U_{jrq} + c_{jq},\\qquad
    e = (h_{1,1}, \\dots, h_{d,p-1},\\; x_1, \\dots, x_d),

with frequencies ``sigma * omega`` (``omega ~ N(0, 1)`` at the start, stored
in units of ``sigma`` so that an Adam-type step moves a frequency by about
``sigma`` times the learning rate), phases ``phi ~ U(-pi, pi)``, and a linear
map per feature, ``U``, ``c ~ U(-1/sqrt(k), 1/sqrt(k))`` (PyTorch's
``Linear``). With the learnable scale, each column of ``e`` (of ``x`` without
an embedding) is multiplied by its own ``s_i = rho * v_i``, ``v_i = 1 / rho``
at the start: stored in units of ``rho`` (the scale's rate), so an Adam-type
step moves it ``rho`` times as far as a weight's.

Backward, from ``G = dJ/de`` (rows ``m`` of the batch, summed over):

.. math::

    \\frac{\\partial J}{\\partial v_i} = \\rho \\sum_m G_{mi}\\, e^{(0)}_{mi},\\qquad
    \\frac{\\partial J}{\\partial c_{jq}} = \\sum_m H_{mjq},\\qquad
    \\frac{\\partial J}{\\partial U_{jrq}} = \\sum_m \\cos(z_{mjr}) H_{mjq},

    D_{mjr} = -\\sin(z_{mjr}) \\sum_q H_{mjq} U_{jrq},\\qquad
    \\frac{\\partial J}{\\partial \\phi_{jr}} = \\sum_m D_{mjr},\\qquad
    \\frac{\\partial J}{\\partial \\omega_{jr}} = 2\\pi\\sigma \\sum_m D_{mjr}\\, x_{mj},

where ``e^(0)`` is ``e`` before the scale and ``H = s * G`` restricted to the
``h`` columns. The block's parameters are not penalised by ``alpha`` or
decayed by ``weight_decay`` (they are not weights of a dense layer).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._backend import NUMPY
from ._layout import parameter_blocks

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class InputBlock:
    """The periodic embedding and/or the learnable scale in front of the network.

    Parameters
    ----------
    n_features : int
        ``d``.
    n_frequencies : int
        ``k`` frequencies per feature; 0 for no embedding.
    embedding_size : int
        ``p``: the values per feature the embedding outputs, the feature itself included.
    sigma : float
        Standard deviation of the initial frequencies.
    scale : bool
        Whether to learn a scale per column of the first layer's input.
    scale_rate : float
        ``rho``: the scale's steps relative to a weight's, under Adam-type solvers.
    """

    n_features: int
    n_frequencies: int = 0
    embedding_size: int = 4
    sigma: float = 0.1
    scale: bool = False
    scale_rate: float = 1.0

    @property
    def embedded(self):
        return self.n_frequencies > 0

    @property
    def n_outputs(self):
        """Width of the first layer's input: ``d p`` with the embedding, else ``d``."""
        return self.n_features * (self.embedding_size if self.embedded else 1)

    @cached_property
    def _blocks(self):
        """``(name, start, stop, shape)`` of each parameter array, in buffer order.

        Computed once: :meth:`views` runs for every batch.
        """
        d, k, q = self.n_features, self.n_frequencies, self.embedding_size - 1
        shapes = {}
        if self.embedded:
            shapes.update(omega=(d, k), phi=(d, k), U=(d, k, q), c=(d, q))
        if self.scale:
            shapes["v"] = (self.n_outputs,)
        return parameter_blocks(shapes)

    @property
    def size(self):
        """Number of parameters."""
        return self._blocks[-1][2] if self._blocks else 0

    def views(self, params, ops=NUMPY):
        """``{name: array}``: views of the block's flat ``params`` (reshaped by the
        backend ``ops``: views where the library makes them)."""
        return {name: ops.reshape(params[start:stop], shape)
                for name, start, stop, shape in self._blocks}

    def initialize(self, params, rng):
        """Draw the initial parameters into ``params`` (see the module's docstring)."""
        p = self.views(params)
        if self.embedded:
            bound = 1.0 / np.sqrt(self.n_frequencies)
            p["omega"][...] = rng.standard_normal(p["omega"].shape)
            p["phi"][...] = rng.uniform(-np.pi, np.pi, p["phi"].shape)
            p["U"][...] = rng.uniform(-bound, bound, p["U"].shape)
            p["c"][...] = rng.uniform(-bound, bound, p["c"].shape)
        if self.scale:
            p["v"][...] = 1.0 / self.scale_rate

    def forward(self, params, X, ops=NUMPY, cache=None):
        """``e`` for the rows of ``X``, computed by the backend ``ops``.

        What the backward pass needs is kept in ``cache`` (a
        :class:`~sklearn_gd._engine._network.BlockCache`); when it reuses buffers
        (NumPy training), the next batch of as many rows computes into the
        same ones: the per-feature arrays are ``rows x features x
        frequencies`` large, and allocating them anew for every batch costs
        more than computing them. Without one, every array is new.
        """
        cache = BlockCache(reuse=False) if cache is None else cache
        p = self.views(params, ops)
        m, d = X.shape
        dtype = X.dtype
        E = X
        if self.embedded:
            k, q = self.n_frequencies, self.embedding_size - 1
            # feature-major (d, m, k): each feature's rows are contiguous for its matmul
            Z = ops.multiply(ops.permute(X, (1, 0))[:, :, None],
                             (TWO_PI * self.sigma) * p["omega"][:, None, :],
                             out=cache.get("Z", (d, m, k), dtype))
            Z += p["phi"][:, None, :]
            cosines = ops.cos(Z, out=cache.get("cosines", (d, m, k), dtype))
            H = ops.matmul(cosines, p["U"], out=cache.get("H", (d, m, q), dtype))
            H = ops.add(ops.permute(H, (1, 0, 2)), p["c"], out=cache.get("Hc", (m, d, q), dtype))
            E = ops.concat([ops.reshape(H, (m, d * q)), X], axis=1,
                           out=cache.get("E", (m, self.n_outputs), dtype))
            cache.update(Z=Z, cosines=cosines)
        if self.scale:
            cache["unscaled"] = E
            E = ops.multiply(E, self.scale_rate * p["v"], out=cache.get("scaled", E.shape, dtype))
        return E

    def backward(self, params, X, cache, G, ops, grad, where):
        """Write ``dJ/dparams`` into ``grad[where]`` from ``G = dJ/de`` of the cached
        forward pass."""
        p = self.views(params, ops)
        out = self.views(grad[where], ops) if cache.reuse else {}  # written in place, or not
        m, d = X.shape
        g = {}
        if self.scale:
            rate = self.scale_rate
            g["v"] = ops.column_dots(G, cache.get("unscaled"), out=out.get("v"))
            g["v"] *= rate
            G = ops.multiply(G, rate * p["v"], out=cache.get("G", G.shape, G.dtype))
        if self.embedded:
            k, q = self.n_frequencies, self.embedding_size - 1
            H = ops.reshape(G[:, : d * q], (m, d, q))
            g["c"] = ops.sum(H, axis=0, out=out.get("c"))
            per_feature = ops.permute(H, (1, 0, 2))  # (d, m, q)
            g["U"] = ops.matmul(ops.permute(cache.get("cosines"), (0, 2, 1)), per_feature,
                                out=out.get("U"))
            # D = dJ/dz up to its sign: (H U^T) * sin(z); the sign goes into the sums
            D = ops.matmul(per_feature, ops.permute(p["U"], (0, 2, 1)),
                           out=cache.get("D", (d, m, k), G.dtype))
            D *= ops.sin(cache.get("Z"), out=cache.get("sines", (d, m, k), G.dtype))
            g["phi"] = ops.sum(D, axis=1, out=out.get("phi"))
            g["phi"] *= -1.0
            g["omega"] = ops.feature_dots(D, X, out=out.get("omega"))
            g["omega"] *= -TWO_PI * self.sigma
        if any(g[name] is not out.get(name) for name in g):  # new arrays: into the flat buffer
            grad[where] = ops.concat([ops.flat(g[name]) for name, *_ in self._blocks], axis=0)


class BlockCache(dict):
    """What the input block's forward pass keeps for its backward pass, by name,
    with its buffers: reused when ``reuse`` (made again only when their shape
    changes), else None, so that each pass computes in new arrays."""

    def __init__(self, reuse):
        super().__init__()
        self.reuse = reuse

    def get(self, name, shape=None, dtype=None):
        """The buffer called ``name`` of ``shape`` and ``dtype`` (None without reuse);
        with ``shape`` None, what the forward pass kept under ``name``."""
        buffer = super().get(name)
        if shape is None or not self.reuse:
            return buffer if shape is None else None
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self[name] = np.empty(shape, dtype)
        return buffer
