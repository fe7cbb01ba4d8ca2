"""How much memory a training call needs, and whether the machine has it.

A network that cannot fit would otherwise end in NumPy's raw "Unable to
allocate" deep inside a step, or in the operating system killing the
process. :func:`check_training_memory` estimates the peak of a ``fit`` or
``partial_fit`` call before it allocates anything large, and refuses with the
package's own message when it exceeds what the machine can give.
"""


#: Arrays of the network's size that each solver's state holds (Adam's two
#: moments; AdamW's also a scratch; momentum's velocity; RMSprop's and
#: Adagrad's average and a scratch). L-BFGS: SciPy keeps 10 pairs of float64
#: vectors, plus the float64 iterate and gradient (counted in float64 units
#: of the model's item size by the caller).
OPTIMIZER_ARRAYS = {"adam": 2, "adamw": 3, "sgd": 1, "rmsprop": 2, "adagrad": 2, "lbfgs": 22}


def training_memory(layer_sizes, itemsize, solver, batch_rows, n_samples, n_features,
                    *, holds_out=False, dropout=False):
    """Estimated peak bytes of one training call, by part.

    Parameters
    ----------
    layer_sizes : sequence of int
        Inputs, hidden layers, outputs.
    itemsize : int
        Bytes per parameter (4 or 8).
    solver : str
    batch_rows : int
        Rows per batch (all rows for ``lbfgs``).
    n_samples, n_features : int
        The training data's shape (the data itself is the caller's).
    holds_out : bool
        Early stopping holds out a validation part: the data is copied once.
    dropout : bool
        Dropout keeps a masked copy of each hidden layer's output.

    Returns
    -------
    dict of str to int
        ``parameters`` (the model's weights, the copy a call trains, the
        gradient and the last good weights, and the best ones when holding
        out), ``optimizer`` (its state, as kept and as trained), ``batch``
        (each layer's outputs, errors and masks for a batch) and ``data``
        (the copy early stopping makes).
    """
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    weights_copies = 4 + (1 if holds_out else 0)
    optimizer_arrays = OPTIMIZER_ARRAYS[solver]
    if solver == "lbfgs":
        optimizer_bytes = optimizer_arrays * n_params * 8
    else:
        optimizer_bytes = 2 * optimizer_arrays * n_params * itemsize  # as kept, and trained
    outputs = sum(layer_sizes[1:])
    hidden = sum(layer_sizes[1:-1])
    largest_weight = max(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    batch_values = batch_rows * (2 * outputs + layer_sizes[-1] + n_features
                                 + (hidden if dropout else 0))
    batch_values += max(batch_rows * max(layer_sizes[1:-1], default=0), largest_weight)
    return {
        "parameters": weights_copies * n_params * itemsize,
        "optimizer": optimizer_bytes,
        "batch": batch_values * itemsize,
        "data": n_samples * (n_features + layer_sizes[-1]) * itemsize if holds_out else 0,
    }


def available_memory():
    """Bytes the process can still allocate, or None where that is not known.

    Linux's ``MemAvailable``, bounded by a cgroup (v2) memory limit when one
    is set (containers); None elsewhere: no check is made then.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    limit = _cgroup_headroom()
    return available if limit is None else min(available, limit)


def _cgroup_headroom():
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            current = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - current, 0)


#: Calls estimated below this are not checked: any machine has that much, and
#: reading the available memory costs a small ``partial_fit`` a noticeable share.
CHECKED_FROM_BYTES = 2**28


def check_training_memory(parts, n_params, what):
    """Raise MemoryError, naming the parts, when their total exceeds :func:`available_memory`.

    ``what`` names the network (``hidden_layer_sizes=...``) of ``n_params`` parameters.
    """
    needed = sum(parts.values())
    if needed < CHECKED_FROM_BYTES:
        return
    available = available_memory()
    if available is None or needed <= available:
        return
    gib = 2**30
    listed = ", ".join(f"{name} {size / gib:,.2f}" for name, size in parts.items() if size)
    raise MemoryError(
        f"{what} makes a network of {n_params:,} parameters, which needs about "
        f"{needed / gib:,.2f} GiB to train ({listed} GiB): more than the "
        f"{available / gib:,.2f} GiB of memory available. Use fewer or narrower hidden layers, "
        "a smaller batch_size, float32 data, or a machine with more memory."
    )
