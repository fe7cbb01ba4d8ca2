/*
 * sklearn_gd._fused: fused elementwise kernels of the training step.
 *
 * NumPy runs one pass over memory per operation; a training step needs many
 * small ones (bias, activation, its derivative, the L2 term, softmax, Adam's
 * ten passes) and gathers the rows of each shuffled batch. Each kernel here
 * does one such group in a single pass. sklearn_gd/_kernels.py holds the
 * NumPy reference of every kernel, is the only caller, and runs the
 * references when this module is not built.
 *
 * Layout: the kernels themselves are in _fused_kernels.h, compiled once per
 * element type (float32, float64: _fused_types.h) and instruction set (the
 * baseline and, on x86-64 with GCC or Clang, AVX2: here); each compilation
 * fills a dispatch table
 * (Kernels), and a call runs the table of its arrays' dtype and of the
 * instruction set selected at import (set_vector_isa switches, for tests).
 * This file checks the arguments and calls the table.
 *
 * Threads: a kernel runs on the calling thread and releases the GIL while it
 * works on a large array, as NumPy does, so that fits in several Python
 * threads run at once. The kernels keep no state between calls.
 *
 * Only the C standard library and the Python C API are used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* Bumped whenever a signature or a semantic changes, so that _kernels.py
 * ignores a stale build. Defined once, in _kernels.py: setup.py passes it. */
#ifndef KERNELS_API_VERSION
#error "KERNELS_API_VERSION is passed by setup.py (it reads sklearn_gd/_kernels.py)"
#endif

/* --------------------------------------------------------- compiler glue */

#if defined(_MSC_VER)
#define FORCE_INLINE __forceinline
#define restrict __restrict
#elif defined(__GNUC__) || defined(__clang__)
#define FORCE_INLINE __attribute__((always_inline)) inline
#else
#define FORCE_INLINE inline
#endif

/* GCC and Clang vector types for narrow_backward's tiles; plain loops elsewhere. */
#if defined(__GNUC__) || defined(__clang__)
#define HAVE_VECTOR_TYPES 1
#else
#define HAVE_VECTOR_TYPES 0
#endif

/* A second compilation of every kernel for AVX2, where the compiler can
 * target it per function and the CPU can be asked whether it has it. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(_WIN32)
#define HAVE_AVX2_VERSION 1
#else
#define HAVE_AVX2_VERSION 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* --------------------------------------------------- shared definitions */

/* The activation kinds with a compiled forward and backward pass. Python
 * reads them from ACTIVATION_KINDS (this module's attribute, built from
 * this table), so they are listed here alone. */
enum { KIND_IDENTITY = 0, KIND_RELU = 1, KIND_LEAKY_RELU = 2, N_KINDS = 3 };
static const char *const KIND_NAMES[N_KINDS] = {"identity", "relu", "leaky_relu"};

typedef struct {
    double beta_1, beta_2, eps, scale, c;
} AdamHyper;

/* Rows of a 2-D array, or the entries of a 1-D one (col_stride unused). */
typedef struct {
    const char *data;
    Py_ssize_t row_stride, col_stride;
} StridedRows;

/* The L2 penalty's sum of squares over a block is the sum, in order, of its
 * chunks' sums, each of eight partial sums added in order (add_squares), in
 * l2_gradient and in adam alike: the same float64 either way. A multiple of
 * 8; 4-8 KiB, still in L1 for Adam's second loop over the chunk. */
#define L2_CHUNK 1024

static double
lanes_total(const double lanes[8])
{
    double total = 0.0;
    for (int k = 0; k < 8; k++)
        total += lanes[k];
    return total;
}

/* narrow_backward's tiles span this many rows (sums held in registers). */
#define NARROW_ROWS 4

/* A shuffled batch reads rows scattered over the whole data set, mostly not
 * in cache: each row is fetched this many rows ahead of its copy. */
#define PREFETCH_ROWS 8

/* Every cache line of row index[ahead] of `source` (rows of row_bytes), when
 * ahead < m and the index is in range (it is checked again when copied). */
static FORCE_INLINE void
prefetch_row(const void *source, Py_ssize_t n_source, Py_ssize_t row_bytes,
             const Py_ssize_t *index, Py_ssize_t ahead, Py_ssize_t m)
{
    if (ahead >= m)
        return;
    Py_ssize_t r = index[ahead];
    if (r < 0 || r >= n_source)
        return;
    const char *first = (const char *)source + r * row_bytes;
    const char *line = first - ((size_t)first & 63); /* a row need not start on a line */
    for (; line < first + row_bytes; line += 64)
        PREFETCH(line);
}

/* One compilation of the kernels (see _fused_kernels.h). */
typedef struct {
    double (*adam)(void *theta, const void *g, void *u, void *w, Py_ssize_t n,
                   const AdamHyper *h, const long long *bounds, Py_ssize_t n_blocks);
    double (*l2_gradient)(void *gW, const void *W, Py_ssize_t n, double c);
    void (*bias_activation)(void *Z, const void *b, Py_ssize_t rows, Py_ssize_t cols, int kind,
                            double slope);
    void (*activation_backward)(void *delta, const void *A, const void *mask, Py_ssize_t n,
                                int kind, double slope);
    void (*narrow_backward)(void *previous, const void *delta, const void *W, void *Wt,
                            const void *A, const void *mask, Py_ssize_t rows, Py_ssize_t cols,
                            Py_ssize_t k, int kind, double slope);
    void (*subtract_row_max)(const StridedRows *R, void *Z, Py_ssize_t rows, Py_ssize_t cols);
    void (*normalize_rows)(void *P, Py_ssize_t rows, Py_ssize_t cols);
    double (*log_loss_from_exp)(const StridedRows *R, const StridedRows *Y,
                                const StridedRows *weights, void *P, void *delta,
                                Py_ssize_t rows, Py_ssize_t cols);
    Py_ssize_t (*take_bool_rows)(const unsigned char *source, Py_ssize_t n_source,
                                 const Py_ssize_t *index, Py_ssize_t m, Py_ssize_t cols,
                                 void *out);
} Kernels;

/* ------------------------------------------------- the four compilations */

/* KERNEL(name) is name_TYPE_ISA, for the REAL_NAME and ISA being compiled. */
#define KERNEL_NAME(name, type, isa) name##_##type##_##isa
#define KERNEL_EXPANDED(name, type, isa) KERNEL_NAME(name, type, isa)
#define KERNEL(name) KERNEL_EXPANDED(name, REAL_NAME, ISA)

#define ISA baseline
#define KERNEL_TARGET
#include "_fused_types.h"
#undef ISA
#undef KERNEL_TARGET

#if HAVE_AVX2_VERSION
#define ISA avx2
#define KERNEL_TARGET __attribute__((target("avx2")))
#include "_fused_types.h"
#undef ISA
#undef KERNEL_TARGET
#endif

enum { ISA_BASELINE = 0, ISA_AVX2 = 1 };

/* tables[isa][1 for float64, 0 for float32] */
static const Kernels *const tables[2][2] = {
    {&table_float_baseline, &table_double_baseline},
#if HAVE_AVX2_VERSION
    {&table_float_avx2, &table_double_avx2},
#else
    {&table_float_baseline, &table_double_baseline},
#endif
};

static int isa_in_use = ISA_BASELINE;

/* The kernels for arrays of item size `size` (4 or 8). */
static const Kernels *
kernels_for(int size)
{
    return tables[isa_in_use][size == 8];
}

static int
cpu_has_avx2(void)
{
#if HAVE_AVX2_VERSION
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* ---------------------------------------------------- argument checking */

/* The GIL is released only around work this large (in elements), as NumPy
 * does: for a small call, handing the GIL to a waiting thread costs more
 * than the loop itself. */
#define GIL_RELEASE_THRESHOLD 8192

/* PyEval_SaveThread() when `work` is large enough, else NULL (then a no-op
 * for restore_thread). */
static PyThreadState *
release_gil_if_large(Py_ssize_t work)
{
    return work >= GIL_RELEASE_THRESHOLD ? PyEval_SaveThread() : NULL;
}

static void
restore_thread(PyThreadState *state)
{
    if (state != NULL)
        PyEval_RestoreThread(state);
}

/* Item size (4 or 8) of a float32/float64 buffer, 0 for anything else. */
static int
float_size(const Py_buffer *view)
{
    const char *f = view->format;
    if (f == NULL)
        return 0;
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (strcmp(f, "d") == 0)
        return 8;
    if (strcmp(f, "f") == 0)
        return 4;
    return 0;
}

/* A 1-D int64 buffer ('q', 'l' or 'n' with 8-byte items). */
static int
is_int64(const Py_buffer *view)
{
    const char *f = view->format;
    if (f == NULL || view->itemsize != 8)
        return 0;
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    return (f[0] == 'q' || f[0] == 'l' || f[0] == 'n') && f[1] == 0;
}

static int
is_bool(const Py_buffer *view)
{
    const char *f = view->format;
    return f != NULL && view->itemsize == 1 && f[0] == '?' && f[1] == 0;
}

/* An array argument: what the caller requires of it, and its buffer once
 * acquired. */
typedef struct {
    PyObject *obj;
    const char *name;
    int writable;
    int ndim;    /* required number of dimensions */
    int strided; /* 1: any strides accepted; 0: C-contiguous required */
    Py_buffer view;
} Arg;

static void
release(Arg *args, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&args[i].view);
}

/* Acquire every buffer; all must share one float dtype. Returns the item
 * size, or 0 with an exception set (and nothing held). */
static int
acquire(Arg *args, int n)
{
    int size = 0;
    for (int i = 0; i < n; i++) {
        Arg *a = &args[i];
        int flags = (a->strided ? PyBUF_STRIDES : PyBUF_C_CONTIGUOUS) | PyBUF_FORMAT;
        if (a->writable)
            flags |= PyBUF_WRITABLE;
        if (PyObject_GetBuffer(a->obj, &a->view, flags) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be a%s%s float32 or float64 array",
                         a->name, a->strided ? "" : " C-contiguous",
                         a->writable ? " writable" : "");
            release(args, i);
            return 0;
        }
        int this_size = float_size(&a->view);
        const char *problem = NULL;
        if (this_size == 0)
            problem = "must be float32 or float64";
        else if (size != 0 && this_size != size)
            problem = "must have the same dtype as the other arrays";
        else if (a->view.ndim != a->ndim)
            problem = a->ndim == 1 ? "must be 1-D" : "must be 2-D";
        if (problem != NULL) {
            PyErr_Format(PyExc_ValueError, "%s %s", a->name, problem);
            release(args, i + 1);
            return 0;
        }
        size = this_size;
    }
    return size;
}

static Py_ssize_t
length(const Arg *a)
{
    return a->view.ndim == 1 ? a->view.shape[0] : a->view.shape[0] * a->view.shape[1];
}

static int
same_shape(const Arg *a, const Arg *b)
{
    return a->view.shape[0] == b->view.shape[0] && a->view.shape[1] == b->view.shape[1];
}

/* When !ok: raise ValueError(message) and release the n buffers. */
static int
check(int ok, Arg *args, int n, const char *message)
{
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, message);
        release(args, n);
    }
    return ok;
}

static StridedRows
strided_rows(const Arg *a)
{
    StridedRows rows = {a->view.buf, a->view.strides[0],
                        a->view.ndim == 2 ? a->view.strides[1] : 0};
    return rows;
}

/* ------------------------------------------------------------------- adam */

/* Bounds of the weight blocks as an (n_blocks, 2) int64 array, ascending and
 * within [0, n]. Returns the number of blocks, or -1 with an exception set
 * (and the view released). */
static Py_ssize_t
weight_blocks(PyObject *obj, Py_ssize_t n, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "weight_bounds must be a C-contiguous int64 array of shape (k, 2)");
        return -1;
    }
    int ok = view->ndim == 2 && view->shape[1] == 2 && is_int64(view);
    Py_ssize_t n_blocks = ok ? view->shape[0] : 0;
    const long long *bounds = view->buf;
    long long done = 0;
    for (Py_ssize_t b = 0; ok && b < n_blocks; b++) {
        ok = done <= bounds[2 * b] && bounds[2 * b] <= bounds[2 * b + 1] &&
             bounds[2 * b + 1] <= n;
        done = bounds[2 * b + 1];
    }
    if (!ok) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError,
                        "weight_bounds must be an int64 array of shape (k, 2) of ascending, "
                        "non-overlapping [start, stop) blocks within theta");
        return -1;
    }
    return n_blocks;
}

PyDoc_STRVAR(adam_doc,
"adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None)\n--\n\n"
"One Adam step on rescaled moments, in one pass (g is left unchanged):\n"
"u <- beta_1 u + g;  w <- beta_2 w + g^2;  theta <- theta + scale u / (sqrt(w) + eps).\n"
"With c != 0, g + c theta replaces g on the weight blocks [start, stop) listed in\n"
"weight_bounds (the gradient of the L2 penalty); returns that penalty before the\n"
"step, c / 2 * sum(theta^2) over the blocks, added from the last block to the\n"
"first (0.0 when c == 0).");

static PyObject *
adam(PyObject *self, PyObject *args)
{
    Arg a[4] = {{0, "theta", 1, 1, 0}, {0, "g", 0, 1, 0}, {0, "u", 1, 1, 0}, {0, "w", 1, 1, 0}};
    AdamHyper h = {0};
    PyObject *bounds_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOdddd|dO:adam", &a[0].obj, &a[1].obj, &a[2].obj,
                          &a[3].obj, &h.beta_1, &h.beta_2, &h.eps, &h.scale, &h.c, &bounds_obj))
        return NULL;
    if (h.c != 0.0 && bounds_obj == Py_None) {
        PyErr_SetString(PyExc_ValueError, "c != 0 needs weight_bounds");
        return NULL;
    }
    int size = acquire(a, 4);
    if (size == 0)
        return NULL;
    Py_ssize_t n = length(&a[0]);
    if (!check(length(&a[1]) == n && length(&a[2]) == n && length(&a[3]) == n, a, 4,
               "theta, g, u and w must have the same length"))
        return NULL;
    Py_buffer bounds_view = {0};
    Py_ssize_t n_blocks = 0;
    if (h.c != 0.0) {
        n_blocks = weight_blocks(bounds_obj, n, &bounds_view);
        if (n_blocks < 0) {
            release(a, 4);
            return NULL;
        }
    }
    PyThreadState *state = release_gil_if_large(n);
    double penalty = kernels_for(size)->adam(a[0].view.buf, a[1].view.buf, a[2].view.buf,
                                             a[3].view.buf, n, &h, bounds_view.buf, n_blocks);
    restore_thread(state);
    PyBuffer_Release(&bounds_view); /* a no-op when never acquired */
    release(a, 4);
    return PyFloat_FromDouble(penalty);
}

/* ------------------------------------------------------------ l2_gradient */

PyDoc_STRVAR(l2_gradient_doc,
"l2_gradient(gW, W, c)\n--\n\n"
"gW <- gW + c W in place; return the penalty c / 2 * sum(W^2) (summed in float64).");

static PyObject *
l2_gradient(PyObject *self, PyObject *args)
{
    Arg a[2] = {{0, "gW", 1, 1, 0}, {0, "W", 0, 1, 0}};
    double c;
    if (!PyArg_ParseTuple(args, "OOd:l2_gradient", &a[0].obj, &a[1].obj, &c))
        return NULL;
    int size = acquire(a, 2); /* weight matrices are passed flattened */
    if (size == 0)
        return NULL;
    Py_ssize_t n = length(&a[0]);
    if (!check(length(&a[1]) == n, a, 2, "gW and W must have the same length"))
        return NULL;
    PyThreadState *state = release_gil_if_large(n);
    double squares = kernels_for(size)->l2_gradient(a[0].view.buf, a[1].view.buf, n, c);
    restore_thread(state);
    release(a, 2);
    return PyFloat_FromDouble(0.5 * c * squares);
}

/* ---------------------------------------------- activations and backward */

static int
known_kind(int kind)
{
    return kind >= 0 && kind < N_KINDS;
}

PyDoc_STRVAR(bias_activation_doc,
"bias_activation(Z, b, kind, slope)\n--\n\n"
"Z <- f(Z + b) in place, b broadcast over rows; f by kind (ACTIVATION_KINDS):\n"
"identity, relu max(z, 0), leaky relu max(z, slope z).");

static PyObject *
bias_activation(PyObject *self, PyObject *args)
{
    Arg a[2] = {{0, "Z", 1, 2, 0}, {0, "b", 0, 1, 0}};
    int kind;
    double slope;
    if (!PyArg_ParseTuple(args, "OOid:bias_activation", &a[0].obj, &a[1].obj, &kind, &slope))
        return NULL;
    int size = acquire(a, 2);
    if (size == 0)
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    if (!check(a[1].view.shape[0] == cols, a, 2, "b must have one entry per column of Z") ||
        !check(known_kind(kind), a, 2, "unknown activation kind"))
        return NULL;
    PyThreadState *state = release_gil_if_large(rows * cols);
    kernels_for(size)->bias_activation(a[0].view.buf, a[1].view.buf, rows, cols, kind, slope);
    restore_thread(state);
    release(a, 2);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(activation_backward_doc,
"activation_backward(delta, A, mask, kind, slope)\n--\n\n"
"delta <- delta * mask * f'(A) in place, f' from the activation's output A;\n"
"mask may be None. kind: relu (1 if A > 0 else 0), leaky relu\n"
"((A > 0) (1 - slope) + slope).");

static PyObject *
activation_backward(PyObject *self, PyObject *args)
{
    Arg a[3] = {{0, "delta", 1, 2, 0}, {0, "A", 0, 2, 0}, {0, "mask", 0, 2, 0}};
    int kind;
    double slope;
    if (!PyArg_ParseTuple(args, "OOOid:activation_backward", &a[0].obj, &a[1].obj,
                          &a[2].obj, &kind, &slope))
        return NULL;
    int n_args = a[2].obj == Py_None ? 2 : 3;
    int size = acquire(a, n_args);
    if (size == 0)
        return NULL;
    int same = same_shape(&a[1], &a[0]) && (n_args == 2 || same_shape(&a[2], &a[0]));
    if (!check(same, a, n_args, "delta, A and mask must have the same shape") ||
        !check(kind == KIND_RELU || kind == KIND_LEAKY_RELU, a, n_args,
               "unknown activation kind"))
        return NULL;
    Py_ssize_t n = length(&a[0]);
    const void *mask = n_args == 3 ? a[2].view.buf : NULL;
    PyThreadState *state = release_gil_if_large(n);
    kernels_for(size)->activation_backward(a[0].view.buf, a[1].view.buf, mask, n, kind, slope);
    restore_thread(state);
    release(a, n_args);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(narrow_backward_doc,
"narrow_backward(previous, delta, W, Wt, A, mask, kind, slope)\n--\n\n"
"previous <- (delta W^T) * mask * f'(A): delta (rows, k), W (cols, k),\n"
"previous and A (rows, cols); mask may be None; Wt is scratch of at least\n"
"k cols entries. The product sums over k in ascending order, multiplying\n"
"and adding (no FMA). kind as for activation_backward, or identity: f' = 1.");

static PyObject *
narrow_backward(PyObject *self, PyObject *args)
{
    Arg a[6] = {{0, "previous", 1, 2, 0}, {0, "delta", 0, 2, 0}, {0, "W", 0, 2, 0},
                {0, "Wt", 1, 1, 0},       {0, "A", 0, 2, 0},     {0, "mask", 0, 2, 0}};
    int kind;
    double slope;
    if (!PyArg_ParseTuple(args, "OOOOOOid:narrow_backward", &a[0].obj, &a[1].obj, &a[2].obj,
                          &a[3].obj, &a[4].obj, &a[5].obj, &kind, &slope))
        return NULL;
    int n_args = a[5].obj == Py_None ? 5 : 6;
    int size = acquire(a, n_args);
    if (size == 0)
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    Py_ssize_t k = a[1].view.shape[1];
    int same = same_shape(&a[4], &a[0]) && (n_args == 5 || same_shape(&a[5], &a[0]));
    if (!check(same, a, n_args, "previous, A and mask must have the same shape") ||
        !check(a[1].view.shape[0] == rows && k >= 1 && a[2].view.shape[0] == cols &&
                   a[2].view.shape[1] == k,
               a, n_args, "delta must be (rows, k) and W (cols, k)") ||
        !check(a[3].view.shape[0] >= k * cols, a, n_args, "Wt must hold k * cols entries") ||
        !check(known_kind(kind), a, n_args, "unknown activation kind"))
        return NULL;
    const void *mask = n_args == 6 ? a[5].view.buf : NULL;
    PyThreadState *state = release_gil_if_large(rows * cols);
    kernels_for(size)->narrow_backward(a[0].view.buf, a[1].view.buf, a[2].view.buf,
                                       a[3].view.buf, a[4].view.buf, mask, rows, cols, k,
                                       kind, slope);
    restore_thread(state);
    release(a, n_args);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- softmax */

/* Softmax comes in three steps: subtract_row_max here, NumPy's exp (SIMD
 * vectorized; a scalar exp from libm in one fused pass is several times
 * slower), then normalize_rows or log_loss_from_exp here. */

/* All n matrices of the same shape as the first, with at least one column. */
static int
same_shape_with_columns(const Arg *a, int n)
{
    int ok = a[0].view.shape[1] > 0;
    for (int i = 1; i < n; i++)
        ok = ok && same_shape(&a[i], &a[0]);
    return ok;
}

PyDoc_STRVAR(subtract_row_max_doc,
"subtract_row_max(R, Z)\n--\n\n"
"Z = R - max(R, axis=1) row by row; R may be strided, Z is a C-contiguous\n"
"output of the same shape.");

static PyObject *
subtract_row_max(PyObject *self, PyObject *args)
{
    Arg a[2] = {{0, "R", 0, 2, 1}, {0, "Z", 1, 2, 0}};
    if (!PyArg_ParseTuple(args, "OO:subtract_row_max", &a[0].obj, &a[1].obj))
        return NULL;
    int size = acquire(a, 2);
    if (size == 0)
        return NULL;
    if (!check(same_shape_with_columns(a, 2), a, 2,
               "R and Z must have the same shape, with at least one column"))
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    StridedRows R = strided_rows(&a[0]);
    PyThreadState *state = release_gil_if_large(rows * cols);
    kernels_for(size)->subtract_row_max(&R, a[1].view.buf, rows, cols);
    restore_thread(state);
    release(a, 2);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(normalize_rows_doc,
"normalize_rows(P)\n--\n\n"
"P <- P / sum(P, axis=1) in place (multiplying by the reciprocal of each sum).");

static PyObject *
normalize_rows(PyObject *self, PyObject *args)
{
    Arg a[1] = {{0, "P", 1, 2, 0}};
    if (!PyArg_ParseTuple(args, "O:normalize_rows", &a[0].obj))
        return NULL;
    int size = acquire(a, 1);
    if (size == 0)
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    PyThreadState *state = release_gil_if_large(rows * cols);
    kernels_for(size)->normalize_rows(a[0].view.buf, rows, cols);
    restore_thread(state);
    release(a, 1);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(log_loss_from_exp_doc,
"log_loss_from_exp(R, Y, weights, P, delta)\n--\n\n"
"Finish softmax, weighted log-loss and its gradient for rows of logits R,\n"
"given P = exp(R - max(R, axis=1)): P <- P / sum(P, axis=1);\n"
"delta = weights[:, None] * (P - Y); return sum_i weights_i (log(s_i) -\n"
"Y_i . (R_i - max(R_i))) with s_i the row sums (summed in float64).\n"
"R, Y and weights may be strided; P and delta are C-contiguous.");

static PyObject *
log_loss_from_exp(PyObject *self, PyObject *args)
{
    Arg a[5] = {{0, "R", 0, 2, 1}, {0, "Y", 0, 2, 1}, {0, "weights", 0, 1, 1},
                {0, "P", 1, 2, 0}, {0, "delta", 1, 2, 0}};
    if (!PyArg_ParseTuple(args, "OOOOO:log_loss_from_exp", &a[0].obj, &a[1].obj, &a[2].obj,
                          &a[3].obj, &a[4].obj))
        return NULL;
    int size = acquire(a, 5);
    if (size == 0)
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    Arg matrices[4] = {a[0], a[1], a[3], a[4]};
    if (!check(same_shape_with_columns(matrices, 4) && a[2].view.shape[0] == rows, a, 5,
               "R, Y, P and delta must have the same shape (at least one column) "
               "and weights one entry per row"))
        return NULL;
    StridedRows R = strided_rows(&a[0]), Y = strided_rows(&a[1]), w = strided_rows(&a[2]);
    PyThreadState *state = release_gil_if_large(rows * cols);
    double total = kernels_for(size)->log_loss_from_exp(&R, &Y, &w, a[3].view.buf,
                                                        a[4].view.buf, rows, cols);
    restore_thread(state);
    release(a, 5);
    return PyFloat_FromDouble(total);
}

/* -------------------------------------------------------------- take_rows */

/* out[i] = source[index[i]] for rows of row_bytes; returns the first i whose
 * index is out of [0, n_source), or -1. */
static Py_ssize_t
take_rows_bytes(const char *source, Py_ssize_t n_source, const Py_ssize_t *index,
                Py_ssize_t m, Py_ssize_t row_bytes, char *out)
{
    for (Py_ssize_t i = 0; i < m; i++, out += row_bytes) {
        prefetch_row(source, n_source, row_bytes, index, i + PREFETCH_ROWS, m);
        Py_ssize_t r = index[i];
        if (r < 0 || r >= n_source)
            return i;
        memcpy(out, source + r * row_bytes, (size_t)row_bytes);
    }
    return -1;
}

/* Acquire a C-contiguous buffer of obj into view, or raise ValueError(message). */
static int
get_contiguous(PyObject *obj, Py_buffer *view, const char *message)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0)
        return 1;
    PyErr_Clear();
    PyErr_SetString(PyExc_ValueError, message);
    return 0;
}

PyDoc_STRVAR(take_rows_doc,
"take_rows(source, rows, out)\n--\n\n"
"out[i] = source[rows[i]] for the rows of a 2-D C-contiguous source (float32,\n"
"float64 of out's dtype, or bool, converted to 0/1); rows is int64, every\n"
"entry in [0, len(source)).");

static PyObject *
take_rows(PyObject *self, PyObject *args)
{
    PyObject *source_obj, *rows_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO:take_rows", &source_obj, &rows_obj, &out_obj))
        return NULL;
    Arg a[3] = {{source_obj, "source", 0, 2, 0}, {rows_obj, "rows", 0, 1, 0},
                {out_obj, "out", 1, 2, 0}};
    int size = acquire(&a[2], 1);
    if (size == 0)
        return NULL;
    if (!get_contiguous(source_obj, &a[0].view, "source must be a C-contiguous array")) {
        release(&a[2], 1);
        return NULL;
    }
    if (!get_contiguous(rows_obj, &a[1].view, "rows must be a C-contiguous int64 array")) {
        PyBuffer_Release(&a[0].view);
        release(&a[2], 1);
        return NULL;
    }
    int source_bool = is_bool(&a[0].view);
    if (!check(a[0].view.ndim == 2 && (source_bool || float_size(&a[0].view) == size), a, 3,
               "source must be 2-D, bool or of out's float dtype") ||
        !check(a[1].view.ndim == 1 && is_int64(&a[1].view), a, 3,
               "rows must be a 1-D int64 array") ||
        !check(a[2].view.shape[0] == a[1].view.shape[0] &&
               a[2].view.shape[1] == a[0].view.shape[1], a, 3,
               "out must have one row per entry of rows and source's columns"))
        return NULL;
    const Py_ssize_t *index = a[1].view.buf;
    Py_ssize_t m = a[1].view.shape[0], n_source = a[0].view.shape[0];
    Py_ssize_t cols = a[0].view.shape[1], bad;
    PyThreadState *state = release_gil_if_large(m * cols);
    if (source_bool)
        bad = kernels_for(size)->take_bool_rows(a[0].view.buf, n_source, index, m, cols,
                                                a[2].view.buf);
    else
        bad = take_rows_bytes(a[0].view.buf, n_source, index, m, cols * a[0].view.itemsize,
                              a[2].view.buf);
    restore_thread(state);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "rows[%zd] = %zd is out of bounds for %zd rows", bad,
                     index[bad], n_source);
        release(a, 3);
        return NULL;
    }
    release(a, 3);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ vector ISA */

PyDoc_STRVAR(vector_isa_doc,
"vector_isa()\n--\n\n"
"The version of the kernels in use: 'avx2' or 'baseline'.");

static PyObject *
vector_isa(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(isa_in_use == ISA_AVX2 ? "avx2" : "baseline");
}

PyDoc_STRVAR(vector_isas_doc,
"vector_isas()\n--\n\n"
"The versions this build can run on this CPU: ('baseline',) or ('baseline', 'avx2').");

static PyObject *
vector_isas(PyObject *self, PyObject *unused)
{
    return cpu_has_avx2() ? Py_BuildValue("(ss)", "baseline", "avx2")
                          : Py_BuildValue("(s)", "baseline");
}

PyDoc_STRVAR(set_vector_isa_doc,
"set_vector_isa(name)\n--\n\n"
"Run the kernels' 'avx2' or 'baseline' version from now on (for tests: not\n"
"to be called while another thread runs a kernel).");

static PyObject *
set_vector_isa(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s:set_vector_isa", &name))
        return NULL;
    int avx2 = strcmp(name, "avx2") == 0;
    if (!avx2 && strcmp(name, "baseline") != 0) {
        PyErr_Format(PyExc_ValueError, "unknown vector ISA %R: 'avx2' or 'baseline'",
                     PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    if (avx2 && !cpu_has_avx2()) {
        PyErr_SetString(PyExc_ValueError,
                        "the AVX2 kernels are not available (not built, or no AVX2 CPU)");
        return NULL;
    }
    isa_in_use = avx2 ? ISA_AVX2 : ISA_BASELINE;
    Py_RETURN_NONE;
}

/* ----------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS, adam_doc},
    {"l2_gradient", l2_gradient, METH_VARARGS, l2_gradient_doc},
    {"bias_activation", bias_activation, METH_VARARGS, bias_activation_doc},
    {"activation_backward", activation_backward, METH_VARARGS, activation_backward_doc},
    {"narrow_backward", narrow_backward, METH_VARARGS, narrow_backward_doc},
    {"subtract_row_max", subtract_row_max, METH_VARARGS, subtract_row_max_doc},
    {"normalize_rows", normalize_rows, METH_VARARGS, normalize_rows_doc},
    {"log_loss_from_exp", log_loss_from_exp, METH_VARARGS, log_loss_from_exp_doc},
    {"take_rows", take_rows, METH_VARARGS, take_rows_doc},
    {"vector_isa", vector_isa, METH_NOARGS, vector_isa_doc},
    {"vector_isas", vector_isas, METH_NOARGS, vector_isas_doc},
    {"set_vector_isa", set_vector_isa, METH_VARARGS, set_vector_isa_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sklearn_gd._fused",
    "Fused elementwise kernels of sklearn-gd (see sklearn_gd/_kernels.py).", -1, methods,
};

/* {name: code} of the activation kinds, from KIND_NAMES. */
static PyObject *
activation_kinds(void)
{
    PyObject *kinds = PyDict_New();
    for (int kind = 0; kinds != NULL && kind < N_KINDS; kind++) {
        PyObject *code = PyLong_FromLong(kind);
        if (code == NULL || PyDict_SetItemString(kinds, KIND_NAMES[kind], code) < 0)
            Py_CLEAR(kinds);
        Py_XDECREF(code);
    }
    return kinds;
}

/* The kernels run their AVX2 version wherever the CPU has AVX2. */
PyMODINIT_FUNC
PyInit__fused(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *kinds = activation_kinds();
    if (kinds == NULL || PyModule_AddObject(m, "ACTIVATION_KINDS", kinds) < 0) {
        Py_XDECREF(kinds);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API_VERSION", KERNELS_API_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    isa_in_use = cpu_has_avx2() ? ISA_AVX2 : ISA_BASELINE;
    return m;
}
