/*
 * Fused elementwise kernels for the training loop (module _sklearn_gd_fused).
 *
 * NumPy runs one pass over memory per operation; the training step needs many
 * small ones (bias, activation, its derivative, the L2 term, softmax, Adam's
 * ten passes), and gathers the rows of each shuffled batch. Each kernel here
 * does one of those groups in a single pass.
 * sklearn_gd/_kernels.py holds the NumPy reference of every kernel, is the
 * only caller, and falls back to NumPy when this module is not built.
 *
 * Every kernel performs the same floating-point operations, in the same
 * order, as its NumPy reference (compiled with -ffp-contract=off so no
 * multiply-add is fused), so the two agree bit for bit, except softmax (it
 * multiplies by the reciprocal of the row sum where NumPy divides, and libm's
 * log may differ from NumPy's in the last place) and the L2 penalty's sum of
 * squares (here in float64, in L2_CHUNK chunks; NumPy's dot in the arrays'
 * dtype). The arrays they write agree bit for bit.
 *
 * Arrays are float32 or float64 (one dtype per call), C-contiguous except
 * where a kernel says otherwise. The GIL is released while a large kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* Bumped whenever a signature or a semantic changes, so that a stale build
 * is detected by _kernels.py instead of being called with the wrong API. */
#define API_VERSION 8

enum { KIND_IDENTITY = 0, KIND_RELU = 1, KIND_LEAKY_RELU = 2 };

/* The GIL is released only around work this large (in elements), as NumPy
 * does: for a small call, handing the GIL to a waiting thread costs more than
 * the loop itself (measured: single-row predictions 30% slower with other
 * threads alive). */
#define GIL_RELEASE_THRESHOLD 8192
#define BEGIN_ALLOW_THREADS_IF_LARGE(work)                                    \
    {                                                                         \
        PyThreadState *saved_thread = NULL;                                   \
        if ((work) >= GIL_RELEASE_THRESHOLD)                                  \
            saved_thread = PyEval_SaveThread();
#define END_ALLOW_THREADS_IF_LARGE                                            \
        if (saved_thread != NULL)                                             \
            PyEval_RestoreThread(saved_thread);                               \
    }

/* Run the float64 or the float32 instance of a loop (by the item size
 * `size` of the call's arrays), without the GIL when the work is large. */
#define RUN_TYPED(work, DOUBLE_LOOP, FLOAT_LOOP)                              \
    BEGIN_ALLOW_THREADS_IF_LARGE(work)                                        \
    if (size == 8) {                                                          \
        DOUBLE_LOOP                                                           \
    } else {                                                                  \
        FLOAT_LOOP                                                            \
    }                                                                         \
    END_ALLOW_THREADS_IF_LARGE

/* The heavy loops are compiled twice on x86-64 (GCC or Clang): for the
 * baseline (SSE2) and for AVX2. A call runs the AVX2 version when the CPU has
 * it (set_vector_isa switches, for tests). Adam's square roots and divisions
 * run twice as fast 4-wide (they were its bottleneck), the elementwise passes
 * 1.4-1.8x. Both versions make the same IEEE operations (no FMA:
 * -ffp-contract=off), so results are identical whichever runs (tested).
 * COMPILED_TWICE(name, (params), (args), { body }) defines both versions and
 * name(params), which calls the one in use. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(_WIN32)
#define HAVE_AVX2_VERSION 1
static int use_avx2 = 0;
#define COMPILED_TWICE(name, params, args, body)                              \
    static void name##_baseline params body                                   \
    static __attribute__((target("avx2"))) void name##_avx2 params body      \
    static void name params                                                   \
    {                                                                         \
        if (use_avx2)                                                         \
            name##_avx2 args;                                                 \
        else                                                                  \
            name##_baseline args;                                             \
    }
#else
#define HAVE_AVX2_VERSION 0
static const int use_avx2 = 0;
#define COMPILED_TWICE(name, params, args, body) static void name params body
#endif

/* ---------------------------------------------------------------- buffers */

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

typedef struct {
    PyObject *obj;
    const char *name;
    int writable;
    int ndim;       /* required number of dimensions */
    int strided;    /* 1: any strides accepted; 0: C-contiguous required */
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
check(int ok, Arg *args, int n, const char *message)
{
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, message);
        release(args, n);
    }
    return ok;
}

/* ----------------------------------------------------------- BLAS threads */

/* Large kernels (Adam's step, bias + activation and its backward passes, when
 * over 2 x MIN_PART_ELEMENTS entries; row gathers from MIN_PART_ELEMENTS,
 * see GATHER_WORK) run split in parts over OpenBLAS's own
 * threads. NumPy's products have just run on them, and between products
 * they spin on the other cores waiting for work, so a thread of our own
 * would have to take a core from them: measured, such a worker made the Adam
 * step slower in the training loop, where the same step split over
 * OpenBLAS's threads runs twice as fast (110-120 -> 51-53 us, float32, two
 * threads). OpenBLAS's gotoblas_pthread(n, f, args, stride) runs
 * f(args + k stride) for k < n, the first on the calling thread, and returns
 * when all are done. attach_blas_threads finds it (and the thread count,
 * blas_cpu_number, which openblas_set_num_threads and threadpoolctl set) in
 * the BLAS that NumPy links; with any other BLAS every kernel runs on the
 * calling thread. Each part makes the same float operations as one pass
 * would, so results do not depend on the split. */
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define HAVE_BLAS_THREADS 1
#else
#define HAVE_BLAS_THREADS 0
#endif

typedef int (*blas_run_fn)(int, void *, void *, int);
static blas_run_fn blas_run = NULL;
static const int *blas_threads_now = NULL;
static int split_enabled = 1;

#define MAX_PARTS 16
/* A hand-off to OpenBLAS's threads costs ~1-2 us: parts are no smaller. */
#define MIN_PART_ELEMENTS 16384

/* How many parts a kernel over `work` elements runs in. */
static int
parts_for(Py_ssize_t work)
{
    if (blas_run == NULL || !split_enabled)
        return 1;
    Py_ssize_t parts = *blas_threads_now;
    if (parts > work / MIN_PART_ELEMENTS)
        parts = work / MIN_PART_ELEMENTS;
    if (parts > MAX_PARTS)
        parts = MAX_PARTS;
    return parts > 1 ? (int)parts : 1;
}

/* part(jobs + k * stride) for k < parts, on OpenBLAS's threads when parts > 1. */
static void
run_parts(void (*part)(void *), void *jobs, size_t stride, int parts)
{
    if (parts > 1)
        blas_run(parts, (void *)part, jobs, (int)stride);
    else
        part(jobs);
}

/* A kernel's parts: name_part(void *part) runs LOOP(double) or LOOP(float)
 * (by the part's item size, p->size) on `const PartType *p`, in its AVX2
 * version where the CPU has it (COMPILED_TWICE). */
#define PART_FUNCTION(name, PartType, LOOP)                                   \
    COMPILED_TWICE(name##_loops, (const PartType *p), (p),                    \
                   {                                                          \
                       if (p->size == 8)                                      \
                           LOOP(double)                                       \
                       else                                                   \
                           LOOP(float)                                        \
                   })                                                         \
    static void name##_part(void *part) { name##_loops(part); }

/* ------------------------------------------------------------------- adam */

/* The square root of a T, for ADAM_PART_LOOP(T). */
#define SQRT_double sqrt
#define SQRT_float sqrtf

/* One element's Adam update from its gradient gi. */
#define ADAM_UPDATE(T, SQRT, i, gi)                                           \
    {                                                                         \
        T ui = u[i] * b1;                                                     \
        ui = ui + gi;                                                         \
        T wi = w[i] * b2;                                                     \
        wi = wi + gi * gi;                                                    \
        u[i] = ui;                                                            \
        w[i] = wi;                                                            \
        T d = SQRT(wi) + e;                                                   \
        d = ui / d;                                                           \
        th[i] = th[i] + d * s;                                                \
    }

/* Adam on [lo, hi) with the gradient g (biases, or no L2 term). */
#define ADAM_RANGE(T, SQRT, lo, hi)                                           \
    for (Py_ssize_t i = (lo); i < (hi); i++) {                                \
        T gi = g[i];                                                          \
        ADAM_UPDATE(T, SQRT, i, gi)                                           \
    }

/* Adds the squares of x[lo, hi) to `squares` (a double[8]): element i to
 * squares[(i - lo) % 8], the last (hi - lo) % 8 to squares[0]: eight
 * independent additions that pipeline (and vectorize), where a single
 * running sum would wait on each add's latency. */
#define SQUARES(T, x, lo, hi, squares)                                        \
    {                                                                         \
        Py_ssize_t i = (lo);                                                  \
        for (; i + 8 <= (hi); i += 8)                                         \
            for (int k = 0; k < 8; k++)                                       \
                (squares)[k] += (double)(x)[i + k] * (double)(x)[i + k];      \
        for (; i < (hi); i++)                                                 \
            (squares)[0] += (double)(x)[i] * (double)(x)[i];                  \
    }

/* The L2 penalty's sum of squares over a weight block is the sum, in order,
 * of its chunks' sums, each of eight partial sums (SQUARES) added in order,
 * here and in L2_LOOP: the parts of a split Adam step start on a chunk
 * boundary, so the penalty is the same float64 whatever the split. */
#define L2_CHUNK 1024 /* a multiple of 8; 4-8 KiB, in L1 for Adam's second pass */

static double
lanes_total(const double partial[8])
{
    double total = 0.0;
    for (int k = 0; k < 8; k++)
        total += partial[k];
    return total;
}

/* Adam on the weight block's [lo, hi) with the gradient g + c theta, as
 * l2_gradient then adam compute it; the sums of squares of theta (before the
 * step) of the chunks from lo on go to chunk_squares[0], [1], ... A chunk's
 * sum and its Adam update are two loops over data in L1 (each vectorizes
 * alone; merged, neither does). */
#define ADAM_L2_RANGE(T, SQRT, lo, hi, chunk_squares)                         \
    {                                                                         \
        double *sums = (chunk_squares);                                       \
        for (Py_ssize_t c0 = (lo); c0 < (hi); c0 += L2_CHUNK) {               \
            Py_ssize_t c1 = c0 + L2_CHUNK < (hi) ? c0 + L2_CHUNK : (hi);      \
            double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};                     \
            SQUARES(T, th, c0, c1, partial)                                   \
            *sums++ = lanes_total(partial);                                   \
            for (Py_ssize_t i = c0; i < c1; i++) {                            \
                T gi = g[i] + th[i] * cc;                                     \
                ADAM_UPDATE(T, SQRT, i, gi)                                   \
            }                                                                 \
        }                                                                     \
    }

/* One part of an Adam step: theta[lo, hi). */
typedef struct {
    const Arg *a;
    int size;
    Py_ssize_t lo, hi;
    double beta_1, beta_2, eps, scale, c;
    const long long *bounds; /* weight blocks [bounds[2b], bounds[2b + 1]) */
    Py_ssize_t n_blocks;
    const Py_ssize_t *first_chunk; /* block b's chunks in chunk_squares */
    double *chunk_squares;
} AdamPart;

#define ADAM_PART_LOOP(T)                                                     \
    {                                                                         \
        T *restrict th = p->a[0].view.buf;                                    \
        const T *restrict g = p->a[1].view.buf;                               \
        T *restrict u = p->a[2].view.buf, *restrict w = p->a[3].view.buf;     \
        const T b1 = (T)p->beta_1, b2 = (T)p->beta_2, e = (T)p->eps;          \
        const T s = (T)p->scale, cc = (T)p->c;                                \
        Py_ssize_t done = p->lo;                                              \
        for (Py_ssize_t b = 0; b < p->n_blocks; b++) {                        \
            Py_ssize_t start = p->bounds[2 * b], stop = p->bounds[2 * b + 1]; \
            Py_ssize_t lo = start > done ? start : done;                      \
            Py_ssize_t hi = stop < p->hi ? stop : p->hi;                      \
            if (lo >= hi)                                                     \
                continue;                                                     \
            ADAM_RANGE(T, SQRT_##T, done, lo)                                 \
            ADAM_L2_RANGE(T, SQRT_##T, lo, hi,                                \
                          p->chunk_squares + p->first_chunk[b] + (lo - start) / L2_CHUNK) \
            done = hi;                                                        \
        }                                                                     \
        ADAM_RANGE(T, SQRT_##T, done, p->hi)                                  \
    }

PART_FUNCTION(adam, AdamPart, ADAM_PART_LOOP)

/* Where part k of `parts` starts: near k n / parts, on a multiple of 16
 * elements (whole cache lines), moved back to a chunk boundary when inside a
 * weight block. */
static Py_ssize_t
adam_part_start(Py_ssize_t n, int k, int parts, const long long *bounds, Py_ssize_t n_blocks)
{
    if (k == parts)
        return n;
    Py_ssize_t at = n / parts * k & ~(Py_ssize_t)15;
    for (Py_ssize_t b = 0; b < n_blocks; b++)
        if (bounds[2 * b] < at && at < bounds[2 * b + 1])
            at = bounds[2 * b] + (at - bounds[2 * b]) / L2_CHUNK * L2_CHUNK;
    return at;
}

/* Bounds of the weight blocks as an (n_blocks, 2) int64 array, ascending and
 * within [0, n]. Returns the number of blocks, or -1 with an exception set. */
static Py_ssize_t
weight_blocks(PyObject *obj, Py_ssize_t n, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "weight_bounds must be a C-contiguous int64 array of shape (k, 2)");
        return -1;
    }
    const char *f = view->format;
    if (f != NULL && (*f == '@' || *f == '=' || *f == '<'))
        f++;
    int ok = f != NULL && (strcmp(f, "q") == 0 || (strcmp(f, "l") == 0 && sizeof(long) == 8)) &&
             view->ndim == 2 && view->shape[1] == 2;
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

/* Weight blocks and L2 chunks whose bookkeeping an Adam step keeps on the
 * stack (about 9 KiB: networks of up to a million weights in 64 layers). */
#define STACK_BLOCKS 64
#define STACK_CHUNKS 1024

/* PyMem_Free(p) unless p is the stack buffer it may point to. */
static void
free_unless(void *p, const void *on_stack)
{
    if (p != on_stack)
        PyMem_Free(p);
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
    double beta_1, beta_2, eps, scale, c = 0.0;
    PyObject *bounds_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOdddd|dO:adam", &a[0].obj, &a[1].obj, &a[2].obj,
                          &a[3].obj, &beta_1, &beta_2, &eps, &scale, &c, &bounds_obj))
        return NULL;
    if (c != 0.0 && bounds_obj == Py_None) {
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
    if (c != 0.0) {
        n_blocks = weight_blocks(bounds_obj, n, &bounds_view);
        if (n_blocks < 0) {
            release(a, 4);
            return NULL;
        }
    }
    const long long *bounds = bounds_view.buf;
    /* block b's chunk sums are chunk_squares[first_chunk[b]:first_chunk[b + 1]];
     * on the stack up to STACK_BLOCKS blocks and STACK_CHUNKS chunks (a
     * training step allocates nothing), on the heap beyond */
    Py_ssize_t first_on_stack[STACK_BLOCKS + 1];
    double squares_on_stack[STACK_CHUNKS + 1];
    Py_ssize_t *first_chunk = n_blocks <= STACK_BLOCKS
                                  ? first_on_stack
                                  : PyMem_Malloc((n_blocks + 1) * sizeof(Py_ssize_t));
    double *chunk_squares = NULL;
    if (first_chunk != NULL) {
        first_chunk[0] = 0;
        for (Py_ssize_t b = 0; b < n_blocks; b++)
            first_chunk[b + 1] =
                first_chunk[b] + (bounds[2 * b + 1] - bounds[2 * b] + L2_CHUNK - 1) / L2_CHUNK;
        Py_ssize_t n_chunks = first_chunk[n_blocks];
        chunk_squares = n_chunks <= STACK_CHUNKS ? squares_on_stack
                                                 : PyMem_Calloc(n_chunks + 1, sizeof(double));
        if (chunk_squares == squares_on_stack)
            memset(squares_on_stack, 0, (n_chunks + 1) * sizeof(double));
    }
    if (chunk_squares == NULL) {
        free_unless(first_chunk, first_on_stack);
        PyBuffer_Release(&bounds_view);
        release(a, 4);
        return PyErr_NoMemory();
    }
    int parts = parts_for(n);
    AdamPart jobs[MAX_PARTS];
    for (int k = 0; k < parts; k++)
        jobs[k] = (AdamPart){a, size,
                             adam_part_start(n, k, parts, bounds, n_blocks),
                             adam_part_start(n, k + 1, parts, bounds, n_blocks),
                             beta_1, beta_2, eps, scale, c, bounds, n_blocks,
                             first_chunk, chunk_squares};
    BEGIN_ALLOW_THREADS_IF_LARGE(n)
    run_parts(adam_part, jobs, sizeof(AdamPart), parts);
    END_ALLOW_THREADS_IF_LARGE
    double penalty = 0.0;
    for (Py_ssize_t b = n_blocks - 1; b >= 0; b--) {
        double squares = 0.0;
        for (Py_ssize_t j = first_chunk[b]; j < first_chunk[b + 1]; j++)
            squares += chunk_squares[j];
        penalty += 0.5 * c * squares;
    }
    free_unless(chunk_squares, squares_on_stack);
    free_unless(first_chunk, first_on_stack);
    PyBuffer_Release(&bounds_view); /* a no-op when never acquired */
    release(a, 4);
    return PyFloat_FromDouble(penalty);
}

/* -------------------------------------------------------- bias_activation */

/* One part of an elementwise pass over C-contiguous (rows, cols) arrays:
 * rows [r0, r1). Split by rows, each part is mostly what its thread wrote
 * in the product just before (splitting by columns measured slower). */
typedef struct {
    const Arg *a;
    int size, kind, n_args;
    Py_ssize_t r0, r1, cols;
    double slope;
} RowsPart;

/* Split job's rows [0, r1) in `parts` (see parts_for) of about equal size. */
static int
row_parts(RowsPart *jobs, RowsPart job, int parts)
{
    Py_ssize_t rows = job.r1;
    if (rows < parts)
        parts = 1;
    for (int k = 0; k < parts; k++) {
        jobs[k] = job;
        jobs[k].r0 = rows * k / parts;
        jobs[k].r1 = rows * (k + 1) / parts;
    }
    return parts;
}

#define BIAS_ACTIVATION_LOOP(T)                                               \
    {                                                                         \
        const Py_ssize_t cols = p->cols;                                      \
        T *restrict z = (T *)p->a[0].view.buf + p->r0 * cols;                 \
        const T *restrict b = p->a[1].view.buf;                               \
        const T s = (T)p->slope;                                              \
        for (Py_ssize_t i = p->r0; i < p->r1; i++, z += cols) {               \
            if (p->kind == KIND_RELU) {                                       \
                for (Py_ssize_t j = 0; j < cols; j++) {                       \
                    T v = z[j] + b[j];                                        \
                    z[j] = v < 0 ? (T)0 : v;                                  \
                }                                                             \
            } else if (p->kind == KIND_LEAKY_RELU) {                          \
                for (Py_ssize_t j = 0; j < cols; j++) {                       \
                    T v = z[j] + b[j];                                        \
                    T vs = v * s;                                             \
                    z[j] = v < vs ? vs : v;                                   \
                }                                                             \
            } else {                                                          \
                for (Py_ssize_t j = 0; j < cols; j++)                         \
                    z[j] = z[j] + b[j];                                       \
            }                                                                 \
        }                                                                     \
    }

PART_FUNCTION(bias_activation, RowsPart, BIAS_ACTIVATION_LOOP)

PyDoc_STRVAR(bias_activation_doc,
"bias_activation(Z, b, kind, slope, split=True)\n--\n\n"
"Z <- f(Z + b) in place, b broadcast over rows; f by kind: 0 identity,\n"
"1 relu max(z, 0), 2 leaky relu max(z, slope z). split=False keeps a large\n"
"Z on the calling thread.");

static PyObject *
bias_activation(PyObject *self, PyObject *args)
{
    Arg a[2] = {{0, "Z", 1, 2, 0}, {0, "b", 0, 1, 0}};
    int kind, split = 1;
    double slope;
    if (!PyArg_ParseTuple(args, "OOid|p:bias_activation", &a[0].obj, &a[1].obj, &kind, &slope,
                          &split))
        return NULL;
    int size = acquire(a, 2);
    if (size == 0)
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    if (!check(a[1].view.shape[0] == cols, a, 2, "b must have one entry per column of Z") ||
        !check(kind >= KIND_IDENTITY && kind <= KIND_LEAKY_RELU, a, 2, "unknown activation kind"))
        return NULL;
    RowsPart jobs[MAX_PARTS];
    int parts = row_parts(jobs, (RowsPart){a, size, kind, 2, 0, rows, cols, slope},
                          split ? parts_for(rows * cols) : 1);
    BEGIN_ALLOW_THREADS_IF_LARGE(rows * cols)
    run_parts(bias_activation_part, jobs, sizeof(RowsPart), parts);
    END_ALLOW_THREADS_IF_LARGE
    release(a, 2);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------- activation_backward */

/* Rows are contiguous: the part is one flat range [r0 cols, r1 cols) of
 * delta (a[0]), A (a[1]) and the mask (a[2], when n_args is 3). KIND_IDENTITY
 * applies the mask alone. */
#define BACKWARD_ROWS(T, part)                                                \
    {                                                                         \
        const Py_ssize_t lo = (part)->r0 * (part)->cols;                      \
        const Py_ssize_t hi = (part)->r1 * (part)->cols;                      \
        T *restrict d = (part)->a[0].view.buf;                                \
        const T *restrict act = (part)->a[1].view.buf;                        \
        const T *restrict mask = (part)->n_args == 3 ? (part)->a[2].view.buf : NULL; \
        const T s = (T)(part)->slope, rest = (T)(1.0 - (part)->slope);        \
        if (mask != NULL)                                                     \
            for (Py_ssize_t e = lo; e < hi; e++)                              \
                d[e] = d[e] * mask[e];                                        \
        if ((part)->kind == KIND_RELU) {                                      \
            for (Py_ssize_t e = lo; e < hi; e++)                              \
                d[e] = d[e] * (T)(act[e] > 0);                                \
        } else if ((part)->kind == KIND_LEAKY_RELU) {                         \
            for (Py_ssize_t e = lo; e < hi; e++) {                            \
                T f = (T)(act[e] > 0);                                        \
                f = f * rest;                                                 \
                d[e] = d[e] * (f + s);                                        \
            }                                                                 \
        }                                                                     \
    }

#define BACKWARD_LOOP(T) BACKWARD_ROWS(T, p)

PART_FUNCTION(backward, RowsPart, BACKWARD_LOOP)

PyDoc_STRVAR(activation_backward_doc,
"activation_backward(delta, A, mask, kind, slope)\n--\n\n"
"delta <- delta * mask * f'(A) in place, f' from the activation's output A;\n"
"mask may be None. kind: 1 relu (1 if A > 0 else 0), 2 leaky relu\n"
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
    Py_ssize_t n = length(&a[0]);
    int same = a[1].view.shape[0] == a[0].view.shape[0] && a[1].view.shape[1] == a[0].view.shape[1];
    if (n_args == 3)
        same = same && a[2].view.shape[0] == a[0].view.shape[0] &&
               a[2].view.shape[1] == a[0].view.shape[1];
    if (!check(same, a, n_args, "delta, A and mask must have the same shape") ||
        !check(kind == KIND_RELU || kind == KIND_LEAKY_RELU, a, n_args,
               "unknown activation kind"))
        return NULL;
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    RowsPart jobs[MAX_PARTS];
    int parts = row_parts(jobs, (RowsPart){a, size, kind, n_args, 0, rows, cols, slope},
                          parts_for(n));
    BEGIN_ALLOW_THREADS_IF_LARGE(n)
    run_parts(backward_part, jobs, sizeof(RowsPart), parts);
    END_ALLOW_THREADS_IF_LARGE
    release(a, n_args);
    Py_RETURN_NONE;
}

/* -------------------------------------------------------- narrow_backward */

/* The error backpropagated through a layer of few outputs (a classifier's
 * output layer), fused with the activation's backward pass:
 * previous = (delta W^T) * mask * f'(A), delta of (rows, k) with k of 1-10
 * (see NARROW_MAX_OUTPUTS in _kernels.py). OpenBLAS's product of this shape
 * is slow on two threads, and the backward pass after it reads rows the
 * other thread wrote: 256 x 10 by 10 x 256 and the backward pass took 33-35
 * us in float32, 55-59 us in float64 (92-99 and 209-218 us in this machine's
 * slow phases). Here each part computes its own rows whole: 16 and 33-35 us
 * split over two threads (21 and 41 us in slow phases). W^T is copied once
 * (k x cols, in L1); the sums run in tiles
 * of NARROW_ROWS rows by two vectors of 32 bytes, eight sums that stay in
 * registers over k (GCC and Clang vector types; elsewhere plain loops), in
 * ascending k, as multiplications then additions (no FMA: both compiled
 * versions and the NumPy reference make the same floats); then the block's
 * mask and f', while its rows are in L1. */
#define NARROW_ROWS 4

#if defined(__GNUC__) || defined(__clang__)
typedef double narrow_vec_double __attribute__((vector_size(32)));
typedef float narrow_vec_float __attribute__((vector_size(32)));

/* out[r, :] = sum_q d[r, q] wt[q, :] for ROWS rows, columns [0, vec_cols). */
#define NARROW_TILES(T, ROWS, out, d, vec_cols)                               \
    {                                                                         \
        typedef narrow_vec_##T V;                                             \
        enum { LANES = sizeof(V) / sizeof(T) };                               \
        for (Py_ssize_t j = 0; j < (vec_cols); j += 2 * LANES) {              \
            V acc[ROWS][2], w0, w1;                                           \
            memcpy(&w0, wt + j, sizeof w0);                                   \
            memcpy(&w1, wt + j + LANES, sizeof w1);                           \
            for (int r = 0; r < ROWS; r++) {                                  \
                acc[r][0] = (d)[r * k] * w0;                                  \
                acc[r][1] = (d)[r * k] * w1;                                  \
            }                                                                 \
            for (Py_ssize_t q = 1; q < k; q++) {                              \
                memcpy(&w0, wt + q * cols + j, sizeof w0);                    \
                memcpy(&w1, wt + q * cols + j + LANES, sizeof w1);            \
                for (int r = 0; r < ROWS; r++) {                              \
                    acc[r][0] = acc[r][0] + (d)[r * k + q] * w0;              \
                    acc[r][1] = acc[r][1] + (d)[r * k + q] * w1;              \
                }                                                             \
            }                                                                 \
            for (int r = 0; r < ROWS; r++) {                                  \
                memcpy((out) + r * cols + j, &acc[r][0], sizeof w0);          \
                memcpy((out) + r * cols + j + LANES, &acc[r][1], sizeof w1);  \
            }                                                                 \
        }                                                                     \
    }
#define NARROW_VECTOR_COLS(T, cols) ((cols) - (cols) % (64 / (Py_ssize_t)sizeof(T)))
#else
#define NARROW_TILES(T, ROWS, out, d, vec_cols)
#define NARROW_VECTOR_COLS(T, cols) 0
#endif

/* The same sums, one column at a time: columns [j0, cols) of ROWS rows. */
#define NARROW_COLUMNS(T, ROWS, out, d, j0)                                   \
    for (int r = 0; r < ROWS; r++)                                            \
        for (Py_ssize_t j = (j0); j < cols; j++) {                            \
            T sum = (d)[r * k] * wt[j];                                       \
            for (Py_ssize_t q = 1; q < k; q++)                                \
                sum = sum + (d)[r * k + q] * wt[q * cols + j];                \
            (out)[r * cols + j] = sum;                                        \
        }

/* ROWS rows from row i: their sums, then their mask and f' (in L1). */
#define NARROW_ROW_BLOCK(T, ROWS)                                             \
    {                                                                         \
        T *restrict out = (T *)p->a[0].view.buf + i * cols;                   \
        const T *restrict d = (const T *)p->a[1].view.buf + i * k;            \
        const Py_ssize_t vec_cols = NARROW_VECTOR_COLS(T, cols);              \
        NARROW_TILES(T, ROWS, out, d, vec_cols)                               \
        NARROW_COLUMNS(T, ROWS, out, d, vec_cols)                             \
        finish.r0 = i;                                                        \
        finish.r1 = i + ROWS;                                                 \
        BACKWARD_ROWS(T, (&finish))                                           \
    }

/* a[0] previous, a[1] delta, a[2] W, a[3] Wt (W^T, filled), a[4] A, a[5] mask. */
#define NARROW_LOOP(T)                                                        \
    {                                                                         \
        const Py_ssize_t cols = p->cols, k = p->a[1].view.shape[1];           \
        const T *restrict wt = p->a[3].view.buf;                              \
        const Arg finish_args[3] = {p->a[0], p->a[4], p->a[p->n_args == 6 ? 5 : 4]}; \
        RowsPart finish = *p;                                                 \
        finish.a = finish_args;                                               \
        finish.n_args = p->n_args == 6 ? 3 : 2;                               \
        Py_ssize_t i = p->r0;                                                 \
        for (; i + NARROW_ROWS <= p->r1; i += NARROW_ROWS)                    \
            NARROW_ROW_BLOCK(T, NARROW_ROWS)                                  \
        for (; i < p->r1; i++)                                                \
            NARROW_ROW_BLOCK(T, 1)                                            \
    }

PART_FUNCTION(narrow, RowsPart, NARROW_LOOP)

/* Wt <- W^T for a C-contiguous (cols, k) W. */
#define TRANSPOSE_LOOP(T)                                                     \
    {                                                                         \
        const T *restrict w = a[2].view.buf;                                  \
        T *restrict wt = a[3].view.buf;                                       \
        for (Py_ssize_t j = 0; j < cols; j++)                                 \
            for (Py_ssize_t q = 0; q < k; q++)                                \
                wt[q * cols + j] = w[j * k + q];                              \
    }

PyDoc_STRVAR(narrow_backward_doc,
"narrow_backward(previous, delta, W, Wt, A, mask, kind, slope)\n--\n\n"
"previous <- (delta W^T) * mask * f'(A): delta (rows, k), W (cols, k),\n"
"previous and A (rows, cols); mask may be None; Wt is scratch of at least\n"
"k cols entries. The product sums over k in ascending order, multiplying\n"
"and adding (no FMA). kind as for activation_backward, or 0: f' = 1.");

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
    int same = a[4].view.shape[0] == rows && a[4].view.shape[1] == cols;
    if (n_args == 6)
        same = same && a[5].view.shape[0] == rows && a[5].view.shape[1] == cols;
    if (!check(same, a, n_args, "previous, A and mask must have the same shape") ||
        !check(a[1].view.shape[0] == rows && k >= 1 && a[2].view.shape[0] == cols &&
                   a[2].view.shape[1] == k,
               a, n_args, "delta must be (rows, k) and W (cols, k)") ||
        !check(a[3].view.shape[0] >= k * cols, a, n_args, "Wt must hold k * cols entries") ||
        !check(kind >= KIND_IDENTITY && kind <= KIND_LEAKY_RELU, a, n_args,
               "unknown activation kind"))
        return NULL;
    RowsPart jobs[MAX_PARTS];
    int parts = row_parts(jobs, (RowsPart){a, size, kind, n_args, 0, rows, cols, slope},
                          parts_for(rows * cols));
    BEGIN_ALLOW_THREADS_IF_LARGE(rows * cols)
    if (size == 8)
        TRANSPOSE_LOOP(double)
    else
        TRANSPOSE_LOOP(float)
    run_parts(narrow_part, jobs, sizeof(RowsPart), parts);
    END_ALLOW_THREADS_IF_LARGE
    release(a, n_args);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ l2_gradient */

/* The sum of squares in L2_CHUNK chunks (see there), each of eight partial
 * sums, merged here with the gradient's update: one loop measured faster
 * than SQUARES followed by a second loop (28.6 against 34.9 us for 94,218
 * float32 entries). */
#define L2_LOOP(T)                                                            \
    {                                                                         \
        T *restrict gw = a[0].view.buf;                                       \
        const T *restrict w = a[1].view.buf;                                  \
        const T cc = (T)c;                                                    \
        for (Py_ssize_t c0 = 0; c0 < n; c0 += L2_CHUNK) {                     \
            Py_ssize_t c1 = c0 + L2_CHUNK < n ? c0 + L2_CHUNK : n;            \
            double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};                     \
            Py_ssize_t i = c0;                                                \
            for (; i + 8 <= c1; i += 8)                                       \
                for (int k = 0; k < 8; k++) {                                 \
                    T wi = w[i + k];                                          \
                    gw[i + k] = gw[i + k] + wi * cc;                          \
                    partial[k] += (double)wi * (double)wi;                    \
                }                                                             \
            for (; i < c1; i++) {                                             \
                T wi = w[i];                                                  \
                gw[i] = gw[i] + wi * cc;                                      \
                partial[0] += (double)wi * (double)wi;                        \
            }                                                                 \
            squares += lanes_total(partial);                                  \
        }                                                                     \
    }

COMPILED_TWICE(l2_loops,
               (Arg *a, int size, Py_ssize_t n, double c, double *sum_of_squares),
               (a, size, n, c, sum_of_squares),
               {
                   double squares = 0.0;
                   RUN_TYPED(n, L2_LOOP(double), L2_LOOP(float))
                   *sum_of_squares = squares;
               })

PyDoc_STRVAR(l2_gradient_doc,
"l2_gradient(gW, W, c)\n--\n\n"
"gW <- gW + c W in place; return the penalty c / 2 * sum(W^2) (summed in float64).");

static PyObject *
l2_gradient(PyObject *self, PyObject *args)
{
    Arg a[2] = {{0, "gW", 1, 1, 0}, {0, "W", 0, 1, 0}};
    double c, squares = 0.0;
    if (!PyArg_ParseTuple(args, "OOd:l2_gradient", &a[0].obj, &a[1].obj, &c))
        return NULL;
    /* weight matrices are passed flattened */
    int size = acquire(a, 2);
    if (size == 0)
        return NULL;
    Py_ssize_t n = length(&a[0]);
    if (!check(length(&a[1]) == n, a, 2, "gW and W must have the same length"))
        return NULL;
    l2_loops(a, size, n, c, &squares);
    release(a, 2);
    return PyFloat_FromDouble(0.5 * c * squares);
}

/* ---------------------------------------------------------------- softmax */

/* Softmax comes in three steps: subtract_row_max here, NumPy's exp (SIMD
 * vectorized, where libm's scalar exp made the one-pass kernel ~5x slower),
 * then normalize_rows or log_loss_from_exp here. */

/* Largest entry of a strided row of `cols` entries, in four running maxima
 * (entries k = 1, 5, 9, ... in the first, ...) combined at the end: a chain
 * of cols/4 dependent comparisons instead of cols, the bottleneck of these
 * short rows. The maximum is exact, so the grouping does not change it; a
 * NaN entry is passed over as in one running maximum, unless it is the
 * first (every lane starts from it). */
#define ROW_MAX(T, row, stride, top)                                          \
    T top;                                                                    \
    {                                                                         \
        T m0 = *(const T *)(row), m1 = m0, m2 = m0, m3 = m0;                  \
        Py_ssize_t k = 1;                                                     \
        for (; k + 4 <= cols; k += 4) {                                       \
            T r0_ = *(const T *)((row) + k * (stride));                       \
            T r1_ = *(const T *)((row) + (k + 1) * (stride));                 \
            T r2_ = *(const T *)((row) + (k + 2) * (stride));                 \
            T r3_ = *(const T *)((row) + (k + 3) * (stride));                 \
            m0 = r0_ > m0 ? r0_ : m0;                                         \
            m1 = r1_ > m1 ? r1_ : m1;                                         \
            m2 = r2_ > m2 ? r2_ : m2;                                         \
            m3 = r3_ > m3 ? r3_ : m3;                                         \
        }                                                                     \
        for (; k < cols; k++) {                                               \
            T r_ = *(const T *)((row) + k * (stride));                        \
            m0 = r_ > m0 ? r_ : m0;                                           \
        }                                                                     \
        m0 = m1 > m0 ? m1 : m0;                                               \
        m2 = m3 > m2 ? m3 : m2;                                               \
        top = m2 > m0 ? m2 : m0;                                              \
    }

/* Strides are copied into locals so that the compiler need not reload them
 * after every store to Z. Rows with contiguous entries (training's logits)
 * get their own instance, where the column stride is a constant: the
 * generic one, with it a runtime value, ran twice as long per row. */
#define SUBTRACT_MAX_ROWS(T, r1)                                              \
    {                                                                         \
        const char *r_row = a[0].view.buf;                                    \
        const Py_ssize_t r0 = a[0].view.strides[0];                           \
        T *restrict z = a[1].view.buf;                                        \
        for (Py_ssize_t i = 0; i < rows; i++, r_row += r0, z += cols) {       \
            ROW_MAX(T, r_row, r1, top)                                        \
            for (Py_ssize_t k = 0; k < cols; k++)                             \
                z[k] = *(const T *)(r_row + k * (r1)) - top;                  \
        }                                                                     \
    }
#define SUBTRACT_MAX_LOOP(T)                                                  \
    {                                                                         \
        const Py_ssize_t r1 = a[0].view.strides[1];                           \
        if (r1 == (Py_ssize_t)sizeof(T))                                      \
            SUBTRACT_MAX_ROWS(T, (Py_ssize_t)sizeof(T))                       \
        else                                                                  \
            SUBTRACT_MAX_ROWS(T, r1)                                          \
    }

/* The same checks for the (R, other) pairs of the softmax kernels. */
static int
same_shape_with_columns(Arg *a, int n)
{
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    int ok = cols > 0;
    for (int i = 1; i < n; i++)
        ok = ok && a[i].view.shape[0] == rows && a[i].view.shape[1] == cols;
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
    Py_ssize_t rows = a[0].view.shape[0], cols = a[0].view.shape[1];
    if (!check(same_shape_with_columns(a, 2), a, 2,
               "R and Z must have the same shape, with at least one column"))
        return NULL;
    RUN_TYPED(rows * cols, SUBTRACT_MAX_LOOP(double), SUBTRACT_MAX_LOOP(float))
    release(a, 2);
    Py_RETURN_NONE;
}

#define NORMALIZE_LOOP(T)                                                     \
    {                                                                         \
        T *restrict p = a[0].view.buf;                                        \
        for (Py_ssize_t i = 0; i < rows; i++, p += cols) {                    \
            T sum = 0;                                                        \
            for (Py_ssize_t k = 0; k < cols; k++)                             \
                sum = sum + p[k];                                             \
            T inverse = (T)1 / sum;                                           \
            for (Py_ssize_t k = 0; k < cols; k++)                             \
                p[k] = p[k] * inverse;                                        \
        }                                                                     \
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
    RUN_TYPED(rows * cols, NORMALIZE_LOOP(double), NORMALIZE_LOOP(float))
    release(a, 1);
    Py_RETURN_NONE;
}

/* With P = exp(z), z = r - max(r), s = sum(P) per row; r1 and y1 are the
 * column strides of R and Y (constants in the contiguous instance, as for
 * SUBTRACT_MAX_LOOP). */
#define LOG_LOSS_ROWS(T, LOG, r1, y1)                                         \
    {                                                                         \
        const char *r_row = a[0].view.buf, *y_row = a[1].view.buf;            \
        const char *weights = a[2].view.buf;                                  \
        const Py_ssize_t r0 = a[0].view.strides[0], y0 = a[1].view.strides[0]; \
        const Py_ssize_t w0 = a[2].view.strides[0];                           \
        T *restrict p = a[3].view.buf, *restrict d = a[4].view.buf;           \
        for (Py_ssize_t i = 0; i < rows;                                      \
             i++, r_row += r0, y_row += y0, p += cols, d += cols) {           \
            ROW_MAX(T, r_row, r1, top)                                        \
            T sum = 0, target = 0;                                            \
            for (Py_ssize_t k = 0; k < cols; k++) {                           \
                T z = *(const T *)(r_row + k * (r1)) - top;                   \
                target = target + *(const T *)(y_row + k * (y1)) * z;         \
                sum = sum + p[k];                                             \
            }                                                                 \
            T weight = *(const T *)(weights + i * w0), inverse = (T)1 / sum;  \
            for (Py_ssize_t k = 0; k < cols; k++) {                           \
                p[k] = p[k] * inverse;                                        \
                d[k] = (p[k] - *(const T *)(y_row + k * (y1))) * weight;      \
            }                                                                 \
            total += (double)weight * ((double)LOG(sum) - (double)target);    \
        }                                                                     \
    }
#define LOG_LOSS_LOOP(T, LOG)                                                 \
    {                                                                         \
        const Py_ssize_t r1 = a[0].view.strides[1], y1 = a[1].view.strides[1]; \
        const Py_ssize_t unit = (Py_ssize_t)sizeof(T);                        \
        if (r1 == unit && y1 == unit)                                         \
            LOG_LOSS_ROWS(T, LOG, unit, unit)                                 \
        else                                                                  \
            LOG_LOSS_ROWS(T, LOG, r1, y1)                                     \
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
    double total = 0.0;
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
    RUN_TYPED(rows * cols, LOG_LOSS_LOOP(double, log), LOG_LOSS_LOOP(float, logf))
    release(a, 5);
    return PyFloat_FromDouble(total);
}

/* -------------------------------------------------------------- take_rows */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* Rows are fetched this many rows ahead: a shuffled batch reads rows
 * scattered over the whole data set, mostly not in cache. */
#define PREFETCH_ROWS 8

/* A gather waits on memory, not on arithmetic: it splits over the BLAS
 * threads from MIN_PART_ELEMENTS entries, half what the other kernels need.
 * Measured in the training loop, paired: 256-row batches of 100 float32
 * columns (25,600 entries) split run epochs as fast in quiet phases of this
 * project's machines and ~2% faster in their slow ones (where memory
 * latency grows); 200 x 50 (10,000 entries) split ran 3% slower. */
#define GATHER_WORK(entries) (2 * (entries))

/* Each cache line of a row, PREFETCH_ROWS rows ahead of the copy (from the
 * line holding its first byte: a row need not start on a line). */
#define PREFETCH_ROW(i)                                                       \
    if ((i) + PREFETCH_ROWS < i1) {                                           \
        Py_ssize_t ahead = index[(i) + PREFETCH_ROWS];                        \
        if (ahead >= 0 && ahead < n_src) {                                    \
            const char *first = source + ahead * row_bytes;                   \
            const char *line = first - ((size_t)first & 63);                  \
            for (; line < first + row_bytes; line += 64)                      \
                PREFETCH(line);                                               \
        }                                                                     \
    }

/* Bool rows (one byte per entry) into float rows. */
#define TAKE_BOOL_LOOP(T)                                                     \
    for (Py_ssize_t i = i0; i < i1; i++) {                                    \
        PREFETCH_ROW(i)                                                       \
        Py_ssize_t r = index[i];                                              \
        if (r < 0 || r >= n_src) {                                            \
            bad = i;                                                          \
            break;                                                            \
        }                                                                     \
        const unsigned char *from = (const unsigned char *)source + r * row_bytes; \
        T *to = (T *)target + i * cols;                                       \
        for (Py_ssize_t k = 0; k < cols; k++)                                 \
            to[k] = from[k] ? (T)1 : (T)0;                                    \
    }

/* One part of a gather: rows [i0, i1) of out; bad is the first out-of-range
 * entry of rows met (or -1). */
typedef struct {
    const char *source;
    char *target;
    const Py_ssize_t *index;
    Py_ssize_t i0, i1, n_src, cols, row_bytes;
    int source_bool, size;
    Py_ssize_t bad;
} TakePart;

static void
take_part(void *arg)
{
    TakePart *p = arg;
    const char *source = p->source;
    char *target = p->target;
    const Py_ssize_t *index = p->index;
    const Py_ssize_t i0 = p->i0, i1 = p->i1, n_src = p->n_src, cols = p->cols;
    const Py_ssize_t row_bytes = p->row_bytes;
    Py_ssize_t bad = -1;
    if (p->source_bool && p->size == 8) {
        TAKE_BOOL_LOOP(double)
    } else if (p->source_bool) {
        TAKE_BOOL_LOOP(float)
    } else {
        for (Py_ssize_t i = i0; i < i1; i++) {
            PREFETCH_ROW(i)
            Py_ssize_t r = index[i];
            if (r < 0 || r >= n_src) {
                bad = i;
                break;
            }
            memcpy(target + i * row_bytes, source + r * row_bytes, (size_t)row_bytes);
        }
    }
    p->bad = bad;
}

/* Format of a 1-D int64 buffer ('q', 'l' or 'n' with 8-byte items). */
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

PyDoc_STRVAR(take_rows_doc,
"take_rows(source, rows, out)\n--\n\n"
"out[i] = source[rows[i]] for the rows of a 2-D C-contiguous source (float32,\n"
"float64 of out's dtype, or bool, converted to 0/1); rows is int64, every\n"
"entry in [0, len(source)).");

static PyObject *
take_rows(PyObject *self, PyObject *args)
{
    PyObject *objects[3];
    if (!PyArg_ParseTuple(args, "OOO:take_rows", &objects[0], &objects[1], &objects[2]))
        return NULL;
    Arg a[3] = {{objects[0], "source", 0, 2, 0}, {objects[1], "rows", 0, 1, 0},
                {objects[2], "out", 1, 2, 0}};
    int size = acquire(&a[2], 1);
    if (size == 0)
        return NULL;
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
    if (PyObject_GetBuffer(objects[0], &a[0].view, flags) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "source must be a C-contiguous array");
        release(&a[2], 1);
        return NULL;
    }
    if (PyObject_GetBuffer(objects[1], &a[1].view, flags) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "rows must be a C-contiguous int64 array");
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
    const char *source = a[0].view.buf;
    char *target = a[2].view.buf;
    const Py_ssize_t *index = a[1].view.buf;
    Py_ssize_t m = a[1].view.shape[0], n_src = a[0].view.shape[0], cols = a[0].view.shape[1];
    Py_ssize_t row_bytes = cols * a[0].view.itemsize, bad = -1;
    TakePart jobs[MAX_PARTS];
    int parts = parts_for(GATHER_WORK(m * cols));
    if (parts > m)
        parts = 1;
    for (int k = 0; k < parts; k++)
        jobs[k] = (TakePart){source, target, index, m * k / parts, m * (k + 1) / parts,
                             n_src, cols, row_bytes, source_bool, size, -1};
    BEGIN_ALLOW_THREADS_IF_LARGE(m * cols)
    run_parts(take_part, jobs, sizeof(TakePart), parts);
    END_ALLOW_THREADS_IF_LARGE
    for (int k = 0; k < parts && bad < 0; k++)
        bad = jobs[k].bad;
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "rows[%zd] = %zd is out of bounds for %zd rows", bad,
                     index[bad], n_src);
        release(a, 3);
        return NULL;
    }
    release(a, 3);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ vector ISA */

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

PyDoc_STRVAR(vector_isa_doc,
"vector_isa()\n--\n\n"
"The version of the heavy kernels in use: 'avx2' or 'baseline'.");

static PyObject *
vector_isa(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(use_avx2 ? "avx2" : "baseline");
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
"Run the heavy kernels' 'avx2' or 'baseline' version from now on (for tests:\n"
"not to be called while another thread runs a kernel).");

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
#if HAVE_AVX2_VERSION
    use_avx2 = avx2;
#endif
    Py_RETURN_NONE;
}

/* ------------------------------------------------------ BLAS threads API */

PyDoc_STRVAR(attach_blas_threads_doc,
"attach_blas_threads(path)\n--\n\n"
"Run large kernels on the threads of the OpenBLAS that the already loaded\n"
"shared library at `path` (NumPy's own extension module) links. Returns\n"
"whether one was found; when not, kernels run on the calling thread.");

static PyObject *
attach_blas_threads(PyObject *self, PyObject *args)
{
    const char *path;
    if (!PyArg_ParseTuple(args, "s:attach_blas_threads", &path))
        return NULL;
#if HAVE_BLAS_THREADS
    /* RTLD_NOLOAD: only a library already loaded; dlsym searches it and the
     * libraries it links, which is where NumPy's BLAS is */
    void *library = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    if (library != NULL) {
        void *run = dlsym(library, "gotoblas_pthread");
        void *threads = dlsym(library, "blas_cpu_number");
        if (run != NULL && threads != NULL) {
            blas_run = (blas_run_fn)run;
            blas_threads_now = threads;
            Py_RETURN_TRUE;
        }
        dlclose(library);
    }
#endif
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(blas_threads_doc,
"blas_threads()\n--\n\n"
"How many threads a large kernel runs on now: OpenBLAS's thread count when\n"
"attached and enabled, else 1.");

static PyObject *
blas_threads(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(parts_for(PY_SSIZE_T_MAX));
}

PyDoc_STRVAR(set_blas_threads_doc,
"set_blas_threads(enabled)\n--\n\n"
"Split large kernels over OpenBLAS's threads (True, the default) or run\n"
"them on the calling thread (for tests: not while another thread runs one).");

static PyObject *
set_blas_threads(PyObject *self, PyObject *args)
{
    int enabled;
    if (!PyArg_ParseTuple(args, "p:set_blas_threads", &enabled))
        return NULL;
    split_enabled = enabled;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(blas_threads_enabled_doc,
"blas_threads_enabled()\n--\n\n"
"Whether large kernels may split over OpenBLAS's threads (set_blas_threads).");

static PyObject *
blas_threads_enabled(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(split_enabled);
}

/* ----------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS, adam_doc},
    {"bias_activation", bias_activation, METH_VARARGS, bias_activation_doc},
    {"activation_backward", activation_backward, METH_VARARGS, activation_backward_doc},
    {"narrow_backward", narrow_backward, METH_VARARGS, narrow_backward_doc},
    {"l2_gradient", l2_gradient, METH_VARARGS, l2_gradient_doc},
    {"subtract_row_max", subtract_row_max, METH_VARARGS, subtract_row_max_doc},
    {"normalize_rows", normalize_rows, METH_VARARGS, normalize_rows_doc},
    {"log_loss_from_exp", log_loss_from_exp, METH_VARARGS, log_loss_from_exp_doc},
    {"take_rows", take_rows, METH_VARARGS, take_rows_doc},
    {"vector_isa", vector_isa, METH_NOARGS, vector_isa_doc},
    {"vector_isas", vector_isas, METH_NOARGS, vector_isas_doc},
    {"set_vector_isa", set_vector_isa, METH_VARARGS, set_vector_isa_doc},
    {"attach_blas_threads", attach_blas_threads, METH_VARARGS, attach_blas_threads_doc},
    {"blas_threads", blas_threads, METH_NOARGS, blas_threads_doc},
    {"set_blas_threads", set_blas_threads, METH_VARARGS, set_blas_threads_doc},
    {"blas_threads_enabled", blas_threads_enabled, METH_NOARGS, blas_threads_enabled_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sklearn_gd_fused",
    "Fused elementwise kernels of sklearn-gd (see sklearn_gd/_kernels.py).", -1, methods,
};

/* The heavy kernels run their AVX2 version wherever the CPU has AVX2. */
PyMODINIT_FUNC
PyInit__sklearn_gd_fused(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#if HAVE_AVX2_VERSION
    use_avx2 = cpu_has_avx2();
#endif
    return m;
}
