"""ONNX export through skl2onnx (optional extra: ``pip install sklearn-gd[onnx]``).

Call :func:`register_onnx_converters` once; then ``skl2onnx.to_onnx`` converts
:class:`~sklearn_gd.GDRegressor`, :class:`~sklearn_gd.MLPBackpropClassifier` and
:class:`~sklearn_gd.RobustSmoothClipScaler`, alone or inside pipelines (the
tabular recipe among them). The graph is the network's forward pass: the
input block (periodic embedding, input scale) where there is one, one
``MatMul`` + ``Add`` per layer, the hidden activation, and the output link
(identity or ``Exp`` for regression; ``Softmax`` or ``Sigmoid`` for
classification, with the label from ``ArgMax`` or a 0.5 threshold).

Example
-------
>>> from sklearn_gd.onnx import register_onnx_converters  # doctest: +SKIP
>>> register_onnx_converters()  # doctest: +SKIP
>>> onx = skl2onnx.to_onnx(model, X[:1].astype("float32"),
...                        options={"zipmap": False})  # doctest: +SKIP
"""

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler

from ._classifier import MLPBackpropClassifier
from ._engine._array_api import device_of, namespace
from ._engine._backend import on_numpy
from ._preprocessing import RobustSmoothClipScaler
from ._regressor import GDRegressor

__all__ = ["register_onnx_converters"]


def register_onnx_converters():
    """Register the shape calculators and converters of the estimators and of
    :class:`~sklearn_gd.RobustSmoothClipScaler` with skl2onnx.

    Raises
    ------
    ImportError
        When skl2onnx is not installed (``pip install sklearn-gd[onnx]``).
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ONNX export needs skl2onnx and onnx: pip install 'sklearn-gd[onnx]'"
        ) from exc
    update_registered_converter(
        GDRegressor, "SklearnGDRegressor", _regressor_shape, _convert_regressor
    )
    update_registered_converter(
        MLPBackpropClassifier,
        "SklearnGDMLPBackpropClassifier",
        _classifier_shape,
        _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(
        RobustSmoothClipScaler, "SklearnGDRobustSmoothClipScaler", _scaler_shape,
        _convert_scaler,
    )
    # make_tabular_regressor's target standardization (skl2onnx has no converter for it)
    update_registered_converter(
        TransformedTargetRegressor, "SklearnGDTransformedTargetRegressor",
        _transformed_target_shape, _convert_transformed_target,
    )


# ---------------------------------------------------------------- shapes
def _float_type(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    input_type = operator.inputs[0].type
    return DoubleTensorType if isinstance(input_type, DoubleTensorType) else FloatTensorType


def _regressor_shape(operator):
    n_rows = operator.inputs[0].get_first_dimension()
    model = operator.raw_operator
    operator.outputs[0].type = _float_type(operator)([n_rows, model.n_outputs_])


def _scaler_shape(operator):
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([n_rows, operator.raw_operator.n_features_in_])


def _transformed_target_shape(operator):
    n_rows = operator.inputs[0].get_first_dimension()
    n_outputs = np.size(operator.raw_operator.transformer_.mean_)
    operator.outputs[0].type = _float_type(operator)([n_rows, n_outputs])


def _classifier_shape(operator):
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    n_rows = operator.inputs[0].get_first_dimension()
    model = operator.raw_operator
    n_columns = len(model.classes_)
    if model._target_kind == "multilabel":
        operator.outputs[0].type = Int64TensorType([n_rows, n_columns])
    elif np.issubdtype(model.classes_.dtype, np.integer):
        operator.outputs[0].type = Int64TensorType([n_rows])
    else:
        operator.outputs[0].type = StringTensorType([n_rows])
    operator.outputs[1].type = _float_type(operator)([n_rows, n_columns])


# ---------------------------------------------------------------- graphs
def _hidden_activation(name, node, opv):
    """The ONNX operator that :data:`~sklearn_gd._engine._activations.ACTIVATIONS` declares."""
    from skl2onnx.algebra import onnx_ops as ops

    from ._engine._activations import ACTIVATIONS

    activation = ACTIVATIONS[name]
    if activation.onnx is None:
        return node
    operator = getattr(ops, f"Onnx{activation.onnx}")
    return operator(node, **activation.onnx_attributes, op_version=opv)


def _raw_outputs(model, operator, container):
    """``Z_L`` of the network as an ONNX expression on the operator's input."""
    from skl2onnx.algebra import onnx_ops as ops

    opv = container.target_opset
    _check_on_numpy(model)
    _check_fitted_on_numbers(model)
    dtype = np.float64 if _float_type(operator).__name__ == "DoubleTensorType" else np.float32
    node = _input_block(model._layout, model._theta, operator.inputs[0], dtype, opv)
    n_layers = len(model.coefs_)
    for layer, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        node = ops.OnnxAdd(
            ops.OnnxMatMul(node, W.astype(dtype), op_version=opv), b.astype(dtype), op_version=opv
        )
        if layer < n_layers - 1:
            node = _hidden_activation(model._fitted_activation, node, opv)
    return node, dtype


def _check_on_numpy(model):
    """ONNX graphs hold NumPy arrays: refuse a model whose parameters live elsewhere."""
    _check_on_numpy_arrays(model._theta, "model")


def _check_fitted_on_numbers(model):
    """The graph takes one float tensor: refuse a model that encodes a table itself."""
    if model._table() is not None:
        raise ValueError(
            f"This {type(model).__name__} was fitted on a table (categorical or text "
            "columns, booleans, or missing values), which it encodes itself before the "
            "network; the ONNX export takes a float tensor, so it covers models fitted on "
            "numbers only. Export a pipeline whose steps skl2onnx converts instead (for "
            "example a ColumnTransformer with SimpleImputer(add_indicator=True) and "
            "OneHotEncoder in front of a model fitted with categorical_features=None)."
        )


def _check_on_numpy_arrays(array, what):
    if not on_numpy(array):
        raise ValueError(
            f"This {what}'s parameters are {namespace(array).__name__} arrays on device "
            f"{device_of(array)}; ONNX export needs them in NumPy. Move the model "
            "first: sklearn_gd.move_model(model, numpy), then export the copy."
        )


def _input_block(layout, theta, node, dtype, opv):
    """The periodic embedding and input scale of :mod:`sklearn_gd._engine._input_block` in ONNX.

    ``cos(2 pi sigma omega x + phi)`` for every feature and frequency as one
    broadcast ``(rows, d, k)`` tensor, then a batched ``MatMul`` with the
    per-feature maps ``U`` over the feature axis, as the NumPy forward pass.
    """
    from skl2onnx.algebra import onnx_ops as ops

    block = layout.input_block
    if block is None:
        return node
    p = block.views(layout.input_params(theta))
    d, q = block.n_features, block.embedding_size - 1
    if block.embedded:
        columns = ops.OnnxReshape(node, np.array([0, d, 1], dtype=np.int64), op_version=opv)
        frequencies = (2.0 * np.pi * block.sigma * p["omega"]).astype(dtype)
        Z = ops.OnnxAdd(ops.OnnxMul(columns, frequencies, op_version=opv),
                        p["phi"].astype(dtype), op_version=opv)
        per_feature = ops.OnnxTranspose(ops.OnnxCos(Z, op_version=opv), perm=[1, 0, 2],
                                        op_version=opv)
        H = ops.OnnxTranspose(ops.OnnxMatMul(per_feature, p["U"].astype(dtype), op_version=opv),
                              perm=[1, 0, 2], op_version=opv)
        H = ops.OnnxAdd(H, p["c"].astype(dtype), op_version=opv)
        H = ops.OnnxReshape(H, np.array([0, d * q], dtype=np.int64), op_version=opv)
        node = ops.OnnxConcat(H, node, axis=1, op_version=opv)
    if block.scale:
        node = ops.OnnxMul(node, (block.scale_rate * p["v"]).astype(dtype), op_version=opv)
    return node


def _output_link(loss_name, node, opv):
    """The ONNX operator of the output link that
    :data:`~sklearn_gd._engine._losses.LOSSES` declares."""
    from skl2onnx.algebra import onnx_ops as ops

    from ._engine._losses import LOSSES

    loss = LOSSES[loss_name]
    if loss.onnx is None:
        return node
    return getattr(ops, f"Onnx{loss.onnx}")(node, **loss.onnx_attributes, op_version=opv)


#: |t| beyond which c t / sqrt(1 + t^2) is c sign(t) to float64's precision: the
#: graph clips t there first, so that t^2 cannot overflow (inf / inf would be NaN)
_SMOOTH_CLIP_SATURATION = 1e8


def _convert_scaler(scope, operator, container):
    """``c t / sqrt(1 + t^2)`` with ``t = (x - center) scale / c``, as
    :meth:`RobustSmoothClipScaler.transform` computes it (NaN stays NaN)."""
    from skl2onnx.algebra import onnx_ops as ops

    scaler = operator.raw_operator
    _check_on_numpy_arrays(scaler.center_, "RobustSmoothClipScaler")
    opv = container.target_opset
    dtype = np.float64 if _float_type(operator).__name__ == "DoubleTensorType" else np.float32
    c = float(scaler.max_absolute_value)
    t = ops.OnnxMul(ops.OnnxSub(operator.inputs[0], scaler.center_.astype(dtype), op_version=opv),
                    (scaler.scale_ / c).astype(dtype), op_version=opv)
    t = ops.OnnxClip(t, np.array(-_SMOOTH_CLIP_SATURATION, dtype=dtype),
                     np.array(_SMOOTH_CLIP_SATURATION, dtype=dtype), op_version=opv)
    root = ops.OnnxSqrt(ops.OnnxAdd(ops.OnnxMul(t, t, op_version=opv),
                                    np.array([1.0], dtype=dtype), op_version=opv),
                        op_version=opv)
    out = ops.OnnxMul(ops.OnnxDiv(t, root, op_version=opv), np.array([c], dtype=dtype),
                      op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _convert_transformed_target(scope, operator, container):
    """``regressor_``'s graph, then the target scaler's inverse ``z * scale + mean``.

    Only the standardization the tabular recipe uses (a ``StandardScaler``
    on the targets) has an ONNX form here; another target transformer is
    refused with what to do.
    """
    from skl2onnx.algebra import onnx_ops as ops
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator

    model = operator.raw_operator
    scaler = model.transformer_
    if not isinstance(scaler, StandardScaler) or model.func is not None:
        raise NotImplementedError(
            "ONNX export of a TransformedTargetRegressor supports a StandardScaler on the "
            f"targets (make_tabular_regressor's default), not {scaler!r}; export "
            "model.regressor_ and apply the inverse target transform yourself."
        )
    opv = container.target_opset
    dtype = np.float64 if _float_type(operator).__name__ == "DoubleTensorType" else np.float32
    scale = np.ones_like(scaler.mean_) if scaler.scale_ is None else scaler.scale_
    mean = np.zeros_like(scale) if scaler.mean_ is None else scaler.mean_
    z = OnnxSubEstimator(model.regressor_, operator.inputs[0], op_version=opv)
    y = ops.OnnxAdd(ops.OnnxMul(z, scale.astype(dtype), op_version=opv), mean.astype(dtype),
                    op_version=opv, output_names=operator.outputs[:1])
    y.add_to(scope, container)


def _convert_regressor(scope, operator, container):
    from skl2onnx.algebra import onnx_ops as ops

    model = operator.raw_operator
    opv = container.target_opset
    raw, _ = _raw_outputs(model, operator, container)
    out = _output_link(model._fitted_loss[0], raw, opv)
    ops.OnnxIdentity(out, op_version=opv, output_names=operator.outputs[:1]).add_to(
        scope, container
    )


def _convert_classifier(scope, operator, container):
    from onnx import TensorProto
    from skl2onnx.algebra import onnx_ops as ops

    model = operator.raw_operator
    opv = container.target_opset
    raw, dtype = _raw_outputs(model, operator, container)
    kind = model._target_kind
    if kind == "multiclass":
        proba = _output_link(model._fitted_loss[0], raw, opv)
        index = ops.OnnxArgMax(proba, axis=1, keepdims=0, op_version=opv)
    else:
        positive = ops.OnnxSigmoid(raw, op_version=opv)
        if kind == "binary":
            negative = ops.OnnxSigmoid(ops.OnnxNeg(raw, op_version=opv), op_version=opv)
            proba = ops.OnnxConcat(negative, positive, axis=1, op_version=opv)
        else:
            proba = positive
        index = ops.OnnxCast(
            ops.OnnxGreater(raw, np.array([0], dtype=dtype), op_version=opv),
            to=TensorProto.INT64, op_version=opv,
        )
        if kind == "binary":
            index = ops.OnnxReshape(index, np.array([-1], dtype=np.int64), op_version=opv)
    if kind == "multilabel":
        label = index
    else:
        label = _lookup_classes(model.classes_, index, opv)
    ops.OnnxIdentity(label, op_version=opv, output_names=operator.outputs[:1]).add_to(
        scope, container
    )
    ops.OnnxIdentity(proba, op_version=opv, output_names=operator.outputs[1:2]).add_to(
        scope, container
    )


def _lookup_classes(classes, index, opv):
    """``classes_[index]`` in ONNX (integer or string labels)."""
    from skl2onnx.algebra import onnx_ops as ops

    if np.issubdtype(classes.dtype, np.integer):
        table = classes.astype(np.int64)
    else:
        table = np.array([str(c) for c in classes], dtype=object)
    return ops.OnnxGather(table, index, axis=0, op_version=opv)
