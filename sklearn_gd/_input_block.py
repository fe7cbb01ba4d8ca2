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
        blocks, offset = [], 0
        for name, shape in shapes.items():
            n = int(np.prod(shape))
            blocks.append((name, offset, offset + n, shape))
            offset += n
        return tuple(blocks)

    @property
    def size(self):
        """Number of parameters."""
        return self._blocks[-1][2] if self._blocks else 0

    def views(self, params):
        """``{name: array}``: views of the block's flat ``params``."""
        return {name: params[start:stop].reshape(shape)
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

    def forward(self, params, X, cache=None):
        """``e`` for the rows of ``X``.

        With a ``cache`` dict (training), what the backward pass needs is
        kept in it, in buffers that the next batch of as many rows reuses: the
        per-feature arrays are ``rows x features x frequencies`` large, and
        allocating them anew for every batch costs more than computing them.
        Without one (prediction), every array is new, so concurrent calls
        share nothing.
        """
        buffers = _Buffers({} if cache is None else cache, X.dtype)
        p = self.views(params)
        m, d = X.shape
        E = X
        if self.embedded:
            k, q = self.n_frequencies, self.embedding_size - 1
            # feature-major (d, m, k): each feature's rows are contiguous for its matmul
            Z = buffers.get("Z", (d, m, k))
            np.multiply(X.T[:, :, None], (TWO_PI * self.sigma) * p["omega"][:, None, :], out=Z)
            Z += p["phi"][:, None, :]
            cosines = np.cos(Z, out=buffers.get("cosines", (d, m, k)))
            H = np.matmul(cosines, p["U"], out=buffers.get("H", (d, m, q)))
            E = buffers.get("E", (m, self.n_outputs))
            np.add(H.transpose(1, 0, 2), p["c"], out=E[:, : d * q].reshape(m, d, q))
            E[:, d * q:] = X
        if self.scale:
            E = np.multiply(E, self.scale_rate * p["v"], out=buffers.get("scaled", E.shape))
        return E

    def backward(self, params, X, cache, G, grad):
        """Write ``dJ/dparams`` into ``grad`` from ``G = dJ/de`` of the cached forward pass."""
        buffers = _Buffers(cache, X.dtype)
        p, g = self.views(params), self.views(grad)
        m, d = X.shape
        if self.scale:
            rate = self.scale_rate
            unscaled = cache["E"] if self.embedded else X
            np.einsum("mi,mi->i", G, unscaled, out=g["v"])
            g["v"] *= rate
            G = np.multiply(G, rate * p["v"], out=buffers.get("G", G.shape))
        if not self.embedded:
            return
        k, q = self.n_frequencies, self.embedding_size - 1
        H = G[:, : d * q].reshape(m, d, q)
        g["c"][...] = H.sum(axis=0)
        per_feature = H.transpose(1, 0, 2)  # (d, m, q)
        np.matmul(cache["cosines"].transpose(0, 2, 1), per_feature, out=g["U"])
        # D = dJ/dz up to its sign: (H U^T) * sin(z); the sign goes into the sums
        D = np.matmul(per_feature, p["U"].transpose(0, 2, 1), out=buffers.get("D", (d, m, k)))
        D *= np.sin(cache["Z"], out=buffers.get("sines", (d, m, k)))
        np.sum(D, axis=1, out=g["phi"])
        g["phi"] *= -1.0
        np.einsum("jmr,mj->jr", D, X, out=g["omega"])
        g["omega"] *= -TWO_PI * self.sigma


class _Buffers:
    """Arrays kept in a cache dict by name, made again only when their shape changes."""

    def __init__(self, cache, dtype):
        self.cache = cache
        self.dtype = dtype

    def get(self, name, shape):
        buffer = self.cache.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != self.dtype:
            buffer = self.cache[name] = np.empty(shape, self.dtype)
        return buffer


class PortableInputBlock:
    """:class:`InputBlock`'s passes against the Array API standard, for any library.

    The same formulas (the module's docstring) with new arrays instead of
    reused buffers: ``forward`` returns ``e`` and what ``backward`` needs.
    """

    def __init__(self, block, xp):
        self.block = block
        self.xp = xp

    def _views(self, params):
        xp = self.xp
        return {name: xp.reshape(params[start:stop], shape)
                for name, start, stop, shape in self.block._blocks}

    def forward(self, params, X):
        """``(e, cache)`` for the rows of ``X``."""
        xp, block = self.xp, self.block
        p = self._views(params)
        m, d = X.shape
        cache, E = {}, X
        if block.embedded:
            q = block.embedding_size - 1
            per_feature = xp.permute_dims(X, (1, 0))[:, :, None]  # (d, m, 1)
            frequencies = (TWO_PI * block.sigma) * p["omega"]
            Z = per_feature * frequencies[:, None, :] + p["phi"][:, None, :]
            cosines = xp.cos(Z)
            H = xp.permute_dims(cosines @ p["U"], (1, 0, 2)) + p["c"]  # (m, d, q)
            E = xp.concat([xp.reshape(H, (m, d * q)), X], axis=1)
            cache.update(Z=Z, cosines=cosines)
        if block.scale:
            cache["unscaled"] = E
            E = E * (block.scale_rate * p["v"])
        return E, cache

    def backward(self, params, X, cache, G):
        """``dJ/dparams`` as one flat array (the block's part of the gradient)."""
        xp, block = self.xp, self.block
        p = self._views(params)
        m, d = X.shape
        g = {}
        if block.scale:
            g["v"] = block.scale_rate * xp.sum(G * cache["unscaled"], axis=0)
            G = G * (block.scale_rate * p["v"])
        if block.embedded:
            q = block.embedding_size - 1
            H = xp.reshape(G[:, : d * q], (m, d, q))
            g["c"] = xp.sum(H, axis=0)
            per_feature = xp.permute_dims(H, (1, 0, 2))  # (d, m, q)
            g["U"] = xp.permute_dims(cache["cosines"], (0, 2, 1)) @ per_feature
            # D = dJ/dz up to its sign: (H U^T) * sin(z); the sign goes into the sums
            D = (per_feature @ xp.permute_dims(p["U"], (0, 2, 1))) * xp.sin(cache["Z"])
            g["phi"] = -xp.sum(D, axis=1)
            X_per_feature = xp.permute_dims(X, (1, 0))[:, :, None]
            g["omega"] = (-TWO_PI * block.sigma) * xp.sum(D * X_per_feature, axis=1)
        return xp.concat([xp.reshape(g[name], (-1,)) for name, *_ in block._blocks])
