/*
 * sklearn_gd._engine._fused: fused elementwise kernels of the training step.
 *
 * NumPy runs one pass over memory per operation; a training step needs many
 * small ones (bias, activation, its derivative, the L2 term, softmax, Adam's
 * ten passes) and gathers the rows of each shuffled batch. Each kernel here
 * does one such group in a single pass. sklearn_gd/_engine/_kernels.py holds the
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bumped whenever a signature or a semantic changes, so that _kernels.py
 * ignores a stale build. Defined once, in _kernels.py: setup.py passes it. */
#ifndef KERNELS_API_VERSION
#error "KERNELS_API_VERSION is passed by setup.py (it reads sklearn_gd/_engine/_kernels.py)"
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
/* Row indices are int64 on every platform (NumPy's intp is 32 bits on
 * 32-bit builds): compared in int64, then narrowed once known in range. */
static FORCE_INLINE int
row_in_range(int64_t r, Py_ssize_t n_source)
{
    return r >= 0 && r < (int64_t)n_source;
}

static FORCE_INLINE void
prefetch_row(const void *source, Py_ssize_t n_source, Py_ssize_t row_bytes,
             const int64_t *index, Py_ssize_t ahead, Py_ssize_t m)
{
    if (ahead >= m || !row_in_range(index[ahead], n_source))
        return;
    const char *first = (const char *)source + (Py_ssize_t)index[ahead] * row_bytes;
    const char *line = first - ((size_t)first & 63); /* a row need not start on a line */
    for (; line < first + row_bytes; line += 64)
        PREFETCH(line);
}

/* One compilation of the kernels (see _fused_kernels.h). */
typedef struct {
    double (*adam)(void *theta, const void *g, void *u, void *w, Py_ssize_t n,
                   const AdamHyper *h, const int64_t *bounds, Py_ssize_t n_blocks);
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
                                 const int64_t *index, Py_ssize_t m, Py_ssize_t cols,
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
static const char *const ISA_NAMES[2] = {"baseline", "avx2"};

/* tables[isa][1 for float64, 0 for float32] */
static const Kernels *const tables[2][2] = {
    {&table_float_baseline, &table_double_baseline},
#if HAVE_AVX2_VERSION
    {&table_float_avx2, &table_double_avx2},
#else
    {&table_float_baseline, &table_double_baseline},
#endif
};

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

/* The module's state: the instruction set its kernels run, chosen when the
 * module is executed and never changed (so no lock is needed without a GIL). */
typedef struct {
    int isa;
} ModuleState;

static ModuleState *
state_of(PyObject *module)
{
    return (ModuleState *)PyModule_GetState(module);
}

/* ---------------------------------------------------- buffer formats */

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

/* An int64 buffer ('q', 'l' or 'n' with 8-byte items). */
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

/* --------------------------------------------- signatures and one call path */

/* Every function takes its arrays first, then its scalars, all positional.
 * A function is one Signature: what it requires of each argument (checked
 * here, once for all), a check of the shapes that returns the work's size,
 * the kernel run without the GIL, and its return value. */

#define MAX_ARRAYS 6
#define MAX_SCALARS 6

typedef enum {
    FLOATS,         /* float32 or float64, the dtype shared by all FLOATS arrays */
    FLOATS_OR_BOOL, /* float32, float64 or bool, its dtype checked against the others
                       by the function's check */
    INT64,          /* int64 */
} ArrayKind;

typedef struct {
    const char *name;
    ArrayKind kind;
    int ndim;        /* required number of dimensions */
    int writable;
    int strided;     /* 1: any strides accepted; 0: C-contiguous required */
    int may_be_none; /* 1: None is accepted (the array is then absent) */
    const char *requirement; /* what every error about it says it must be; NULL: the
                                failed requirement alone */
} ArraySpec;

typedef struct Call Call;

typedef struct {
    const char *name;
    int n_arrays;
    ArraySpec arrays[MAX_ARRAYS];
    const char *scalars; /* one code per scalar argument: 'd' a float, 'i' an int */
    /* the work's size in elements (the GIL is released for large ones), or
       -1 with an exception set */
    Py_ssize_t (*check)(Call *call);
    /* the kernel; runs without the GIL: no Python API */
    double (*run)(Call *call);
    /* the return value from run's; NULL: return None */
    PyObject *(*result)(Call *call, double value);
} Signature;

struct Call {
    Py_buffer view[MAX_ARRAYS];
    int present[MAX_ARRAYS]; /* acquired (not None) */
    double real[MAX_SCALARS];
    int integer[MAX_SCALARS];
    int size; /* item size of the FLOATS arrays: 4 or 8 */
    const Kernels *kernels;
};

static void
release_all(Call *call, int n)
{
    for (int i = 0; i < n; i++)
        if (call->present[i])
            PyBuffer_Release(&call->view[i]);
}

/* Acquire array i of call by its spec; 1 on success, else 0 with an exception set. */
static int
acquire(Call *call, const ArraySpec *spec, PyObject *obj, int i)
{
    call->present[i] = 0;
    if (obj == Py_None && spec->may_be_none)
        return 1;
    int contiguous = spec->strided ? PyBUF_STRIDES : PyBUF_C_CONTIGUOUS;
    int flags = contiguous | PyBUF_FORMAT | (spec->writable ? PyBUF_WRITABLE : 0);
    const char *kind = spec->kind == INT64 ? "int64" : "float32 or float64";
    if (PyObject_GetBuffer(obj, &call->view[i], flags) < 0) {
        PyErr_Clear();
        if (spec->requirement != NULL)
            PyErr_Format(PyExc_ValueError, "%s must be %s", spec->name, spec->requirement);
        else
            PyErr_Format(PyExc_ValueError, "%s must be a%s%s %s array", spec->name,
                         spec->strided ? "" : " C-contiguous",
                         spec->writable ? " writable" : "", kind);
        return 0;
    }
    call->present[i] = 1;
    const Py_buffer *view = &call->view[i];
    int size = spec->kind == INT64 ? 0 : float_size(view);
    const char *problem = NULL;
    if (spec->kind == INT64 && !is_int64(view))
        problem = "must be int64";
    else if (spec->kind == FLOATS_OR_BOOL && (is_bool(view) || size != 0))
        size = 0; /* its dtype is checked by the function */
    else if (spec->kind != INT64 && size == 0)
        problem = "must be float32 or float64";
    else if (size != 0 && call->size != 0 && size != call->size)
        problem = "must have the same dtype as the other arrays";
    if (problem == NULL && view->ndim != spec->ndim)
        problem = spec->ndim == 1 ? "must be 1-D" : "must be 2-D";
    if (problem != NULL) {
        if (spec->requirement != NULL)
            PyErr_Format(PyExc_ValueError, "%s must be %s", spec->name, spec->requirement);
        else
            PyErr_Format(PyExc_ValueError, "%s %s", spec->name, problem);
        return 0;
    }
    if (size != 0)
        call->size = size;
    return 1;
}

/* The scalar argument `obj` by its code into call; 1, or 0 with an exception set. */
static int
parse_scalar(Call *call, char code, PyObject *obj, int k)
{
    if (code == 'd') {
        call->real[k] = PyFloat_AsDouble(obj);
        return !(call->real[k] == -1.0 && PyErr_Occurred());
    }
    long value = PyLong_AsLong(obj);
    if (value == -1 && PyErr_Occurred())
        return 0;
    if (value < INT32_MIN || value > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "an int argument is out of range");
        return 0;
    }
    call->integer[k] = (int)value;
    return 1;
}

/* The GIL is released only around work this large (in elements), as NumPy
 * does: for a small call, handing the GIL to a waiting thread costs more
 * than the loop itself. */
#define GIL_RELEASE_THRESHOLD 8192

/* Parse and check the arguments by sig, run the kernel and return its result. */
static PyObject *
call_kernel(PyObject *module, const Signature *sig, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t expected = sig->n_arrays + (Py_ssize_t)strlen(sig->scalars);
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments (%zd given)",
                     sig->name, expected, nargs);
        return NULL;
    }
    Call call = {0};
    int acquired = 0, ok = 1;
    for (; ok && acquired < sig->n_arrays; acquired++)
        ok = acquire(&call, &sig->arrays[acquired], args[acquired], acquired);
    for (int k = 0; ok && sig->scalars[k]; k++)
        ok = parse_scalar(&call, sig->scalars[k], args[sig->n_arrays + k], k);
    if (ok && call.size == 0) {
        PyErr_Format(PyExc_ValueError, "%s() needs a float32 or float64 array", sig->name);
        ok = 0;
    }
    PyObject *result = NULL;
    if (ok) {
        call.kernels = tables[state_of(module)->isa][call.size == 8];
        Py_ssize_t work = sig->check(&call);
        if (work >= 0) {
            PyThreadState *thread = work >= GIL_RELEASE_THRESHOLD ? PyEval_SaveThread() : NULL;
            double value = sig->run(&call);
            if (thread != NULL)
                PyEval_RestoreThread(thread);
            result = sig->result != NULL ? sig->result(&call, value) : Py_NewRef(Py_None);
        }
    }
    release_all(&call, acquired);
    return result;
}

/* ------------------------------------------------------ shape checks */

/* When !ok: raise ValueError(message); returns ok. */
static int
require(int ok, const char *message)
{
    if (!ok)
        PyErr_SetString(PyExc_ValueError, message);
    return ok;
}

static Py_ssize_t
length(const Py_buffer *view)
{
    return view->ndim == 1 ? view->shape[0] : view->shape[0] * view->shape[1];
}

static int
same_shape(const Py_buffer *a, const Py_buffer *b)
{
    return a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1];
}

/* Absent (None), or of the same shape as `like`. */
static int
absent_or_same_shape(const Call *call, int i, const Py_buffer *like)
{
    return !call->present[i] || same_shape(&call->view[i], like);
}

static int
known_kind(int kind)
{
    return kind >= 0 && kind < N_KINDS;
}

static StridedRows
strided_rows(const Py_buffer *view)
{
    StridedRows rows = {view->buf, view->strides[0], view->ndim == 2 ? view->strides[1] : 0};
    return rows;
}

static const void *
buffer_or_null(const Call *call, int i)
{
    return call->present[i] ? call->view[i].buf : NULL;
}

static PyObject *
float_result(Call *call, double value)
{
    return PyFloat_FromDouble(value);
}

/* ------------------------------------------------------------------- adam */

/* The weight blocks, an (n_blocks, 2) int64 array: ascending, non-overlapping
 * [start, stop) blocks within [0, n). */
static int
valid_weight_blocks(const Py_buffer *view, Py_ssize_t n)
{
    const int64_t *bounds = view->buf;
    int64_t done = 0;
    if (view->shape[1] != 2)
        return 0;
    for (Py_ssize_t b = 0; b < view->shape[0]; b++) {
        if (!(done <= bounds[2 * b] && bounds[2 * b] <= bounds[2 * b + 1] &&
              bounds[2 * b + 1] <= (int64_t)n))
            return 0;
        done = bounds[2 * b + 1];
    }
    return 1;
}

static Py_ssize_t
adam_check(Call *call)
{
    Py_ssize_t n = length(&call->view[0]);
    double c = call->real[4];
    if (!require(length(&call->view[1]) == n && length(&call->view[2]) == n &&
                     length(&call->view[3]) == n,
                 "theta, g, u and w must have the same length") ||
        !require(call->present[4] || c == 0.0,
                 "c != 0 needs weight_bounds, the [start, stop) blocks of weights") ||
        !require(!call->present[4] || valid_weight_blocks(&call->view[4], n),
                 "weight_bounds must be an int64 array of shape (k, 2) of ascending, "
                 "non-overlapping [start, stop) blocks within theta"))
        return -1;
    return n;
}

static double
adam_run(Call *call)
{
    AdamHyper h = {call->real[0], call->real[1], call->real[2], call->real[3], call->real[4]};
    Py_ssize_t n_blocks = call->present[4] && h.c != 0.0 ? call->view[4].shape[0] : 0;
    return call->kernels->adam(call->view[0].buf, call->view[1].buf, call->view[2].buf,
                               call->view[3].buf, length(&call->view[0]), &h,
                               buffer_or_null(call, 4), n_blocks);
}

static const Signature ADAM = {
    "adam", 5,
    {{"theta", FLOATS, 1, 1, 0, 0}, {"g", FLOATS, 1, 0, 0, 0}, {"u", FLOATS, 1, 1, 0, 0},
     {"w", FLOATS, 1, 1, 0, 0},
     {"weight_bounds", INT64, 2, 0, 0, 1, "an int64 array of shape (k, 2)"}},
    "ddddd", adam_check, adam_run, float_result,
};

PyDoc_STRVAR(adam_doc,
"adam(theta, g, u, w, weight_bounds, beta_1, beta_2, eps, scale, c)\n--\n\n"
"One Adam step on rescaled moments, in one pass (g is left unchanged):\n"
"u <- beta_1 u + g;  w <- beta_2 w + g^2;  theta <- theta + scale u / (sqrt(w) + eps).\n"
"With c != 0, g + c theta replaces g on the weight blocks [start, stop) listed in\n"
"weight_bounds (the gradient of the L2 penalty; None when c == 0); returns that\n"
"penalty before the step, c / 2 * sum(theta^2) over the blocks, added from the\n"
"last block to the first (0.0 when c == 0).");

/* ------------------------------------------------------------ l2_gradient */

static Py_ssize_t
l2_gradient_check(Call *call)
{
    Py_ssize_t n = length(&call->view[0]);
    return require(length(&call->view[1]) == n, "gW and W must have the same length") ? n : -1;
}

static double
l2_gradient_run(Call *call)
{
    double c = call->real[0];
    return 0.5 * c * call->kernels->l2_gradient(call->view[0].buf, call->view[1].buf,
                                                length(&call->view[0]), c);
}

static const Signature L2_GRADIENT = {
    "l2_gradient", 2, {{"gW", FLOATS, 1, 1, 0, 0}, {"W", FLOATS, 1, 0, 0, 0}},
    "d", l2_gradient_check, l2_gradient_run, float_result,
};

PyDoc_STRVAR(l2_gradient_doc,
"l2_gradient(gW, W, c)\n--\n\n"
"gW <- gW + c W in place (weight matrices passed flattened); return the penalty\n"
"c / 2 * sum(W^2) (summed in float64).");

/* ---------------------------------------------- activations and backward */

static Py_ssize_t
bias_activation_check(Call *call)
{
    const Py_buffer *Z = &call->view[0];
    if (!require(call->view[1].shape[0] == Z->shape[1], "b must have one entry per column of Z") ||
        !require(known_kind(call->integer[0]), "unknown activation kind"))
        return -1;
    return length(Z);
}

static double
bias_activation_run(Call *call)
{
    const Py_buffer *Z = &call->view[0];
    call->kernels->bias_activation(Z->buf, call->view[1].buf, Z->shape[0], Z->shape[1],
                                   call->integer[0], call->real[1]);
    return 0.0;
}

static const Signature BIAS_ACTIVATION = {
    "bias_activation", 2, {{"Z", FLOATS, 2, 1, 0, 0}, {"b", FLOATS, 1, 0, 0, 0}},
    "id", bias_activation_check, bias_activation_run, NULL,
};

PyDoc_STRVAR(bias_activation_doc,
"bias_activation(Z, b, kind, slope)\n--\n\n"
"Z <- f(Z + b) in place, b broadcast over rows; f by kind (ACTIVATION_KINDS):\n"
"identity, relu max(z, 0), leaky relu max(z, slope z).");

static Py_ssize_t
activation_backward_check(Call *call)
{
    const Py_buffer *delta = &call->view[0];
    int kind = call->integer[0];
    if (!require(same_shape(&call->view[1], delta) && absent_or_same_shape(call, 2, delta),
                 "delta, A and mask must have the same shape") ||
        !require(kind == KIND_RELU || kind == KIND_LEAKY_RELU, "unknown activation kind"))
        return -1;
    return length(delta);
}

static double
activation_backward_run(Call *call)
{
    call->kernels->activation_backward(call->view[0].buf, call->view[1].buf,
                                       buffer_or_null(call, 2), length(&call->view[0]),
                                       call->integer[0], call->real[1]);
    return 0.0;
}

static const Signature ACTIVATION_BACKWARD = {
    "activation_backward", 3,
    {{"delta", FLOATS, 2, 1, 0, 0}, {"A", FLOATS, 2, 0, 0, 0}, {"mask", FLOATS, 2, 0, 0, 1}},
    "id", activation_backward_check, activation_backward_run, NULL,
};

PyDoc_STRVAR(activation_backward_doc,
"activation_backward(delta, A, mask, kind, slope)\n--\n\n"
"delta <- delta * mask * f'(A) in place, f' from the activation's output A;\n"
"mask may be None. kind: relu (1 if A > 0 else 0), leaky relu\n"
"((A > 0) (1 - slope) + slope).");

static Py_ssize_t
narrow_backward_check(Call *call)
{
    const Py_buffer *previous = &call->view[0], *delta = &call->view[1], *W = &call->view[2];
    Py_ssize_t rows = previous->shape[0], cols = previous->shape[1], k = delta->shape[1];
    if (!require(same_shape(&call->view[4], previous) && absent_or_same_shape(call, 5, previous),
                 "previous, A and mask must have the same shape") ||
        !require(delta->shape[0] == rows && k >= 1 && W->shape[0] == cols && W->shape[1] == k,
                 "delta must be (rows, k) and W (cols, k)") ||
        !require(call->view[3].shape[0] >= k * cols, "Wt must hold k * cols entries") ||
        !require(known_kind(call->integer[0]), "unknown activation kind"))
        return -1;
    return rows * cols;
}

static double
narrow_backward_run(Call *call)
{
    const Py_buffer *previous = &call->view[0];
    call->kernels->narrow_backward(previous->buf, call->view[1].buf, call->view[2].buf,
                                   call->view[3].buf, call->view[4].buf, buffer_or_null(call, 5),
                                   previous->shape[0], previous->shape[1],
                                   call->view[1].shape[1], call->integer[0], call->real[1]);
    return 0.0;
}

static const Signature NARROW_BACKWARD = {
    "narrow_backward", 6,
    {{"previous", FLOATS, 2, 1, 0, 0}, {"delta", FLOATS, 2, 0, 0, 0},
     {"W", FLOATS, 2, 0, 0, 0}, {"Wt", FLOATS, 1, 1, 0, 0}, {"A", FLOATS, 2, 0, 0, 0},
     {"mask", FLOATS, 2, 0, 0, 1}},
    "id", narrow_backward_check, narrow_backward_run, NULL,
};

PyDoc_STRVAR(narrow_backward_doc,
"narrow_backward(previous, delta, W, Wt, A, mask, kind, slope)\n--\n\n"
"previous <- (delta W^T) * mask * f'(A): delta (rows, k), W (cols, k),\n"
"previous and A (rows, cols); mask may be None; Wt is scratch of at least\n"
"k cols entries. The product sums over k in ascending order, multiplying\n"
"and adding (no FMA). kind as for activation_backward, or identity: f' = 1.");

/* ---------------------------------------------------------------- softmax */

/* Softmax comes in three steps: subtract_row_max here, NumPy's exp (SIMD
 * vectorized; a scalar exp from libm in one fused pass is several times
 * slower), then normalize_rows or log_loss_from_exp here. */

/* Arrays first..first+n-1 of call (2-D) have the shape of the first, with a column. */
static int
same_shapes_with_columns(const Call *call, const int *which, int n)
{
    const Py_buffer *first = &call->view[which[0]];
    int ok = first->shape[1] > 0;
    for (int i = 1; i < n; i++)
        ok = ok && same_shape(&call->view[which[i]], first);
    return ok;
}

static Py_ssize_t
subtract_row_max_check(Call *call)
{
    static const int both[2] = {0, 1};
    return require(same_shapes_with_columns(call, both, 2),
                   "R and Z must have the same shape, with at least one column")
               ? length(&call->view[0])
               : -1;
}

static double
subtract_row_max_run(Call *call)
{
    StridedRows R = strided_rows(&call->view[0]);
    call->kernels->subtract_row_max(&R, call->view[1].buf, call->view[0].shape[0],
                                    call->view[0].shape[1]);
    return 0.0;
}

static const Signature SUBTRACT_ROW_MAX = {
    "subtract_row_max", 2, {{"R", FLOATS, 2, 0, 1, 0}, {"Z", FLOATS, 2, 1, 0, 0}},
    "", subtract_row_max_check, subtract_row_max_run, NULL,
};

PyDoc_STRVAR(subtract_row_max_doc,
"subtract_row_max(R, Z)\n--\n\n"
"Z = R - max(R, axis=1) row by row; R may be strided, Z is a C-contiguous\n"
"output of the same shape.");

static Py_ssize_t
normalize_rows_check(Call *call)
{
    return length(&call->view[0]);
}

static double
normalize_rows_run(Call *call)
{
    call->kernels->normalize_rows(call->view[0].buf, call->view[0].shape[0],
                                  call->view[0].shape[1]);
    return 0.0;
}

static const Signature NORMALIZE_ROWS = {
    "normalize_rows", 1, {{"P", FLOATS, 2, 1, 0, 0}},
    "", normalize_rows_check, normalize_rows_run, NULL,
};

PyDoc_STRVAR(normalize_rows_doc,
"normalize_rows(P)\n--\n\n"
"P <- P / sum(P, axis=1) in place (multiplying by the reciprocal of each sum).");

static Py_ssize_t
log_loss_from_exp_check(Call *call)
{
    static const int matrices[4] = {0, 1, 3, 4};
    return require(same_shapes_with_columns(call, matrices, 4) &&
                       call->view[2].shape[0] == call->view[0].shape[0],
                   "R, Y, P and delta must have the same shape (at least one column) "
                   "and weights one entry per row")
               ? length(&call->view[0])
               : -1;
}

static double
log_loss_from_exp_run(Call *call)
{
    StridedRows R = strided_rows(&call->view[0]), Y = strided_rows(&call->view[1]);
    StridedRows w = strided_rows(&call->view[2]);
    return call->kernels->log_loss_from_exp(&R, &Y, &w, call->view[3].buf, call->view[4].buf,
                                            call->view[0].shape[0], call->view[0].shape[1]);
}

static const Signature LOG_LOSS_FROM_EXP = {
    "log_loss_from_exp", 5,
    {{"R", FLOATS, 2, 0, 1, 0}, {"Y", FLOATS, 2, 0, 1, 0}, {"weights", FLOATS, 1, 0, 1, 0},
     {"P", FLOATS, 2, 1, 0, 0}, {"delta", FLOATS, 2, 1, 0, 0}},
    "", log_loss_from_exp_check, log_loss_from_exp_run, float_result,
};

PyDoc_STRVAR(log_loss_from_exp_doc,
"log_loss_from_exp(R, Y, weights, P, delta)\n--\n\n"
"Finish softmax, weighted log-loss and its gradient for rows of logits R,\n"
"given P = exp(R - max(R, axis=1)): P <- P / sum(P, axis=1);\n"
"delta = weights[:, None] * (P - Y); return sum_i weights_i (log(s_i) -\n"
"Y_i . (R_i - max(R_i))) with s_i the row sums (summed in float64).\n"
"R, Y and weights may be strided; P and delta are C-contiguous.");

/* -------------------------------------------------------------- take_rows */

/* out[i] = source[index[i]] for rows of row_bytes; returns the first i whose
 * index is out of [0, n_source), or -1. */
static Py_ssize_t
take_rows_bytes(const char *source, Py_ssize_t n_source, const int64_t *index,
                Py_ssize_t m, Py_ssize_t row_bytes, char *out)
{
    for (Py_ssize_t i = 0; i < m; i++, out += row_bytes) {
        prefetch_row(source, n_source, row_bytes, index, i + PREFETCH_ROWS, m);
        if (!row_in_range(index[i], n_source))
            return i;
        memcpy(out, source + (Py_ssize_t)index[i] * row_bytes, (size_t)row_bytes);
    }
    return -1;
}

static Py_ssize_t
take_rows_check(Call *call)
{
    const Py_buffer *source = &call->view[0], *out = &call->view[2];
    if (!require(is_bool(source) || source->itemsize == out->itemsize,
                 "source must be 2-D, bool or of out's float dtype") ||
        !require(out->shape[0] == call->view[1].shape[0] && out->shape[1] == source->shape[1],
                 "out must have one row per entry of rows and source's columns"))
        return -1;
    return length(out);
}

static double
take_rows_run(Call *call)
{
    const Py_buffer *source = &call->view[0], *rows = &call->view[1];
    Py_ssize_t m = rows->shape[0], n_source = source->shape[0], cols = source->shape[1];
    if (is_bool(source))
        return (double)call->kernels->take_bool_rows(source->buf, n_source, rows->buf, m, cols,
                                                     call->view[2].buf);
    return (double)take_rows_bytes(source->buf, n_source, rows->buf, m,
                                   cols * source->itemsize, call->view[2].buf);
}

/* None, or the out-of-bounds error for the first bad row (run's value). */
static PyObject *
take_rows_result(Call *call, double value)
{
    if (value < 0)
        Py_RETURN_NONE;
    Py_ssize_t bad = (Py_ssize_t)value;
    PyErr_Format(PyExc_ValueError, "rows[%zd] = %lld is out of bounds for %zd rows", bad,
                 (long long)((const int64_t *)call->view[1].buf)[bad], call->view[0].shape[0]);
    return NULL;
}

static const Signature TAKE_ROWS = {
    "take_rows", 3,
    {{"source", FLOATS_OR_BOOL, 2, 0, 0, 0, "2-D, bool or of out's float dtype"},
     {"rows", INT64, 1, 0, 0, 0}, {"out", FLOATS, 2, 1, 0, 0}},
    "", take_rows_check, take_rows_run, take_rows_result,
};

PyDoc_STRVAR(take_rows_doc,
"take_rows(source, rows, out)\n--\n\n"
"out[i] = source[rows[i]] for the rows of a 2-D C-contiguous source (float32,\n"
"float64 of out's dtype, or bool, converted to 0/1); rows is int64, every\n"
"entry in [0, len(source)).");

/* ------------------------------------------------------------ vector ISA */

PyDoc_STRVAR(vector_isa_doc,
"vector_isa()\n--\n\n"
"The version of the kernels in use: 'avx2' or 'baseline' (the best this CPU\n"
"runs, unless the environment variable SKLEARN_GD_VECTOR_ISA named another\n"
"when the module was imported).");

static PyObject *
vector_isa(PyObject *module, PyObject *unused)
{
    return PyUnicode_FromString(ISA_NAMES[state_of(module)->isa]);
}

PyDoc_STRVAR(vector_isas_doc,
"vector_isas()\n--\n\n"
"The versions this build can run on this CPU: ('baseline',) or ('baseline', 'avx2').");

static PyObject *
vector_isas(PyObject *module, PyObject *unused)
{
    return cpu_has_avx2() ? Py_BuildValue("(ss)", "baseline", "avx2")
                          : Py_BuildValue("(s)", "baseline");
}

/* The instruction set named by SKLEARN_GD_VECTOR_ISA (unset or empty: the
 * best this CPU runs), or -1 with an exception set. As NumPy's
 * NPY_DISABLE_CPU_FEATURES, an environment variable read once at import:
 * it lets a test compare the versions in separate processes, and no
 * function can switch the kernels under a running thread. */
static int
chosen_isa(void)
{
    int best = cpu_has_avx2() ? ISA_AVX2 : ISA_BASELINE;
    const char *name = getenv("SKLEARN_GD_VECTOR_ISA");
    if (name == NULL || name[0] == '\0')
        return best;
    for (int isa = ISA_BASELINE; isa <= best; isa++)
        if (strcmp(name, ISA_NAMES[isa]) == 0)
            return isa;
    PyErr_Format(PyExc_ValueError,
                 "SKLEARN_GD_VECTOR_ISA=%s: this build and CPU run %s; unset it or name one",
                 name, best == ISA_AVX2 ? "'baseline' or 'avx2'" : "'baseline' only");
    return -1;
}

/* ----------------------------------------------------------------- module */

#define KERNEL_FUNCTION(name, SIGNATURE)                                                  \
    static PyObject *name(PyObject *module, PyObject *const *args, Py_ssize_t nargs)     \
    {                                                                                     \
        return call_kernel(module, &SIGNATURE, args, nargs);                              \
    }

KERNEL_FUNCTION(adam, ADAM)
KERNEL_FUNCTION(l2_gradient, L2_GRADIENT)
KERNEL_FUNCTION(bias_activation, BIAS_ACTIVATION)
KERNEL_FUNCTION(activation_backward, ACTIVATION_BACKWARD)
KERNEL_FUNCTION(narrow_backward, NARROW_BACKWARD)
KERNEL_FUNCTION(subtract_row_max, SUBTRACT_ROW_MAX)
KERNEL_FUNCTION(normalize_rows, NORMALIZE_ROWS)
KERNEL_FUNCTION(log_loss_from_exp, LOG_LOSS_FROM_EXP)
KERNEL_FUNCTION(take_rows, TAKE_ROWS)

#define FASTCALL_ENTRY(name) {#name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, name##_doc}

static PyMethodDef methods[] = {
    FASTCALL_ENTRY(adam),
    FASTCALL_ENTRY(l2_gradient),
    FASTCALL_ENTRY(bias_activation),
    FASTCALL_ENTRY(activation_backward),
    FASTCALL_ENTRY(narrow_backward),
    FASTCALL_ENTRY(subtract_row_max),
    FASTCALL_ENTRY(normalize_rows),
    FASTCALL_ENTRY(log_loss_from_exp),
    FASTCALL_ENTRY(take_rows),
    {"vector_isa", vector_isa, METH_NOARGS, vector_isa_doc},
    {"vector_isas", vector_isas, METH_NOARGS, vector_isas_doc},
    {NULL, NULL, 0, NULL},
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

/* Multi-phase initialization: a module object per interpreter, each with its state. */
static int
module_exec(PyObject *module)
{
    int isa = chosen_isa();
    if (isa < 0)
        return -1;
    state_of(module)->isa = isa;
    PyObject *kinds = activation_kinds();
    if (kinds == NULL || PyModule_AddObject(module, "ACTIVATION_KINDS", kinds) < 0) {
        Py_XDECREF(kinds);
        return -1;
    }
    return PyModule_AddIntConstant(module, "API_VERSION", KERNELS_API_VERSION);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    /* no process-wide state: each interpreter has its module and its own GIL */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* the kernels keep no state and the module's is set once at exec: safe
       without the GIL on free-threaded CPython */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sklearn_gd._engine._fused",
    .m_doc = "Fused elementwise kernels of sklearn-gd (see sklearn_gd/_engine/_kernels.py).",
    .m_size = sizeof(ModuleState),
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__fused(void)
{
    return PyModuleDef_Init(&module_def);
}
