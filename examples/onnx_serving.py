"""
Saving and serving a model
==========================

Save a fitted pipeline with skops (safe to load: only trusted types), export it
to ONNX and serve predictions with onnxruntime. Needs
``pip install "sklearn-gd[onnx,skops]"``.
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skl2onnx
import skops.io as sio
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier
from sklearn_gd.onnx import register_onnx_converters

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
pipe = make_pipeline(StandardScaler(),
                     MLPBackpropClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipe.fit(X, y)

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "digits.skops"
    sio.dump(pipe, path)
    untrusted = sio.get_untrusted_types(file=path)
    print("types to review before loading:", untrusted)
    loaded = sio.load(path, trusted=untrusted)
    assert (loaded.predict(X) == pipe.predict(X)).all()

register_onnx_converters()
onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
print("ONNX labels agree with predict:", bool((labels == pipe.predict(X)).all()))
print("largest probability difference:", float(np.abs(probabilities - pipe.predict_proba(X)).max()))
