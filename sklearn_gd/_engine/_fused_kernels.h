/*
 * The kernels of sklearn_gd._engine._fused for one element type and one instruction
 * set. _fused_types.h includes this file once per element type, and _fused.c
 * includes that once per instruction set, after defining
 *
 *   REAL, REAL_NAME the element type, double or float, and its name
 *   REAL_SQRT       its square root (sqrt or sqrtf)
 *   REAL_LOG        its logarithm (log or logf)
 *   KERNEL(name)    this instance's name for a function, e.g. adam_double_avx2
 *   KERNEL_TARGET   the attribute compiling a function for the instruction set
 *                   (empty for the baseline)
 *
 * and this file ends with the instance's dispatch table, KERNEL(table).
 *
 * Each kernel makes the floating-point operations of its NumPy reference in
 * _kernels.py, in the same order: every intermediate is rounded to REAL (the
 * build turns off the contraction of a * b + c into a fused multiply-add), so
 * the arrays written agree bit for bit with NumPy's, whichever instruction
 * set runs. Sums that NumPy makes in an order of its own (softmax's row sums,
 * the L2 penalty's sum of squares) are documented where they are made.
 */

/* ------------------------------------------------------------------- adam */

/* One element's Adam update from its gradient gi (see NumpyKernels.adam):
 * u <- b1 u + g, w <- b2 w + g^2, theta <- theta + s u / (sqrt(w) + eps). */
static FORCE_INLINE void
KERNEL(adam_element)(REAL *restrict theta, REAL *restrict u, REAL *restrict w, REAL gi,
                     REAL b1, REAL b2, REAL eps, REAL s)
{
    REAL ui = *u * b1;
    ui = ui + gi;
    REAL wi = *w * b2;
    wi = wi + gi * gi;
    *u = ui;
    *w = wi;
    REAL d = REAL_SQRT(wi) + eps;
    d = ui / d;
    *theta = *theta + d * s;
}

/* Adam on [lo, hi) with the gradient g alone (biases, or no L2 term). */
KERNEL_TARGET static void
KERNEL(adam_plain)(REAL *restrict theta, const REAL *restrict g, REAL *restrict u,
                   REAL *restrict w, Py_ssize_t lo, Py_ssize_t hi, const AdamHyper *h)
{
    const REAL b1 = (REAL)h->beta_1, b2 = (REAL)h->beta_2;
    const REAL eps = (REAL)h->eps, s = (REAL)h->scale;
    for (Py_ssize_t i = lo; i < hi; i++)
        KERNEL(adam_element)(theta + i, u + i, w + i, g[i], b1, b2, eps, s);
}

/* Adds the squares of x[lo, hi) to the eight partial sums `lanes`: element
 * lo + 8j + k to lanes[k], the last (hi - lo) % 8 to lanes[0]. Eight
 * independent additions pipeline (and vectorize) where one running sum
 * would wait on each addition. */
static FORCE_INLINE void
KERNEL(add_squares)(const REAL *restrict x, Py_ssize_t lo, Py_ssize_t hi, double lanes[8])
{
    Py_ssize_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++)
            lanes[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < hi; i++)
        lanes[0] += (double)x[i] * (double)x[i];
}

/* Adam on the weight block [lo, hi) with the gradient g + c theta, as
 * l2_gradient followed by adam_plain would compute it; returns the block's
 * sum of squares of theta before the step, made as l2_gradient makes it
 * (chunk by chunk, see L2_CHUNK). Per chunk, the squares and the update are
 * two loops over data in L1: each vectorizes alone, merged neither does. */
KERNEL_TARGET static double
KERNEL(adam_l2)(REAL *restrict theta, const REAL *restrict g, REAL *restrict u,
                REAL *restrict w, Py_ssize_t lo, Py_ssize_t hi, const AdamHyper *h)
{
    const REAL b1 = (REAL)h->beta_1, b2 = (REAL)h->beta_2;
    const REAL eps = (REAL)h->eps, s = (REAL)h->scale, c = (REAL)h->c;
    double squares = 0.0;
    for (Py_ssize_t c0 = lo; c0 < hi; c0 += L2_CHUNK) {
        Py_ssize_t c1 = c0 + L2_CHUNK < hi ? c0 + L2_CHUNK : hi;
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        KERNEL(add_squares)(theta, c0, c1, lanes);
        squares += lanes_total(lanes);
        for (Py_ssize_t i = c0; i < c1; i++) {
            REAL gi = g[i] + theta[i] * c;
            KERNEL(adam_element)(theta + i, u + i, w + i, gi, b1, b2, eps, s);
        }
    }
    return squares;
}

/* One Adam step over theta[0, n), the L2 term on the weight blocks when
 * h->c != 0. The segments are visited from the last to the first, so that
 * the penalty adds the blocks' terms in the order of the NumPy reference. */
KERNEL_TARGET static double
KERNEL(adam)(void *theta_, const void *g_, void *u_, void *w_, Py_ssize_t n,
             const AdamHyper *h, const int64_t *bounds, Py_ssize_t n_blocks)
{
    REAL *theta = theta_, *u = u_, *w = w_;
    const REAL *g = g_;
    double penalty = 0.0;
    Py_ssize_t done = n; /* [done, n) is updated */
    for (Py_ssize_t b = n_blocks - 1; b >= 0; b--) {
        Py_ssize_t start = (Py_ssize_t)bounds[2 * b], stop = (Py_ssize_t)bounds[2 * b + 1];
        KERNEL(adam_plain)(theta, g, u, w, stop, done, h);
        penalty += 0.5 * h->c * KERNEL(adam_l2)(theta, g, u, w, start, stop, h);
        done = start;
    }
    KERNEL(adam_plain)(theta, g, u, w, 0, done, h);
    return penalty;
}

/* ------------------------------------------------------------ l2_gradient */

/* gW <- gW + c W over n entries; returns sum(W^2), chunk by chunk as
 * adam_l2 makes it. The update and the squares share one loop here (the
 * gradient is written, not only read). */
KERNEL_TARGET static double
KERNEL(l2_gradient)(void *gW_, const void *W_, Py_ssize_t n, double c_)
{
    REAL *restrict gW = gW_;
    const REAL *restrict W = W_;
    const REAL c = (REAL)c_;
    double squares = 0.0;
    for (Py_ssize_t c0 = 0; c0 < n; c0 += L2_CHUNK) {
        Py_ssize_t c1 = c0 + L2_CHUNK < n ? c0 + L2_CHUNK : n;
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        Py_ssize_t i = c0;
        for (; i + 8 <= c1; i += 8)
            for (int k = 0; k < 8; k++) {
                REAL wi = W[i + k];
                gW[i + k] = gW[i + k] + wi * c;
                lanes[k] += (double)wi * (double)wi;
            }
        for (; i < c1; i++) {
            REAL wi = W[i];
            gW[i] = gW[i] + wi * c;
            lanes[0] += (double)wi * (double)wi;
        }
        squares += lanes_total(lanes);
    }
    return squares;
}

/* ---------------------------------------------- activations and backward */

/* Z <- f(Z + b) for C-contiguous (rows, cols) Z, b broadcast over rows. */
KERNEL_TARGET static void
KERNEL(bias_activation)(void *Z_, const void *b_, Py_ssize_t rows, Py_ssize_t cols,
                        int kind, double slope_)
{
    REAL *restrict z = Z_;
    const REAL *restrict b = b_;
    const REAL slope = (REAL)slope_;
    for (Py_ssize_t i = 0; i < rows; i++, z += cols) {
        if (kind == KIND_RELU) {
            for (Py_ssize_t j = 0; j < cols; j++) {
                REAL v = z[j] + b[j];
                z[j] = v < 0 ? (REAL)0 : v;
            }
        } else if (kind == KIND_LEAKY_RELU) {
            for (Py_ssize_t j = 0; j < cols; j++) {
                REAL v = z[j] + b[j];
                REAL vs = v * slope;
                z[j] = v < vs ? vs : v;
            }
        } else {
            for (Py_ssize_t j = 0; j < cols; j++)
                z[j] = z[j] + b[j];
        }
    }
}

/* delta[lo, hi) <- delta * mask * f'(A) (mask may be NULL); f' from the
 * activation's output A; KIND_IDENTITY applies the mask alone. */
static FORCE_INLINE void
KERNEL(backward_range)(REAL *restrict delta, const REAL *restrict A,
                       const REAL *restrict mask, Py_ssize_t lo, Py_ssize_t hi, int kind,
                       double slope_)
{
    const REAL slope = (REAL)slope_, rest = (REAL)(1.0 - slope_);
    if (mask != NULL)
        for (Py_ssize_t e = lo; e < hi; e++)
            delta[e] = delta[e] * mask[e];
    if (kind == KIND_RELU) {
        for (Py_ssize_t e = lo; e < hi; e++)
            delta[e] = delta[e] * (REAL)(A[e] > 0);
    } else if (kind == KIND_LEAKY_RELU) {
        for (Py_ssize_t e = lo; e < hi; e++) {
            REAL f = (REAL)(A[e] > 0);
            f = f * rest;
            delta[e] = delta[e] * (f + slope);
        }
    }
}

KERNEL_TARGET static void
KERNEL(activation_backward)(void *delta, const void *A, const void *mask, Py_ssize_t n,
                            int kind, double slope)
{
    KERNEL(backward_range)(delta, A, mask, 0, n, kind, slope);
}

/* ------------------------------------------------------- narrow_backward */

#if HAVE_VECTOR_TYPES
typedef REAL KERNEL(vector) __attribute__((vector_size(32)));
#define KERNEL_LANES ((Py_ssize_t)(32 / sizeof(REAL)))

/* out[r, j] = sum_q d[r, q] wt[q, j] for `rows` rows (at most NARROW_ROWS)
 * and the columns [0, vec_cols), vec_cols a multiple of 2 lanes: tiles of
 * rows x two vectors whose sums stay in registers over q. */
static FORCE_INLINE void
KERNEL(narrow_tiles)(REAL *restrict out, const REAL *restrict d, const REAL *restrict wt,
                     Py_ssize_t k, Py_ssize_t cols, Py_ssize_t vec_cols, const int rows)
{
    typedef KERNEL(vector) Vector;
    for (Py_ssize_t j = 0; j < vec_cols; j += 2 * KERNEL_LANES) {
        Vector acc[NARROW_ROWS][2], w0, w1;
        memcpy(&w0, wt + j, sizeof w0);
        memcpy(&w1, wt + j + KERNEL_LANES, sizeof w1);
        for (int r = 0; r < rows; r++) {
            acc[r][0] = d[r * k] * w0;
            acc[r][1] = d[r * k] * w1;
        }
        for (Py_ssize_t q = 1; q < k; q++) {
            memcpy(&w0, wt + q * cols + j, sizeof w0);
            memcpy(&w1, wt + q * cols + j + KERNEL_LANES, sizeof w1);
            for (int r = 0; r < rows; r++) {
                acc[r][0] = acc[r][0] + d[r * k + q] * w0;
                acc[r][1] = acc[r][1] + d[r * k + q] * w1;
            }
        }
        for (int r = 0; r < rows; r++) {
            memcpy(out + r * cols + j, &acc[r][0], sizeof w0);
            memcpy(out + r * cols + j + KERNEL_LANES, &acc[r][1], sizeof w1);
        }
    }
}
#define KERNEL_VECTOR_COLUMNS(cols) ((cols) - (cols) % (2 * KERNEL_LANES))
#else
#define KERNEL_VECTOR_COLUMNS(cols) 0
#endif

/* The same sums, one column at a time: columns [j0, cols) of `rows` rows. */
static FORCE_INLINE void
KERNEL(narrow_columns)(REAL *restrict out, const REAL *restrict d, const REAL *restrict wt,
                       Py_ssize_t k, Py_ssize_t cols, Py_ssize_t j0, const int rows)
{
    for (int r = 0; r < rows; r++)
        for (Py_ssize_t j = j0; j < cols; j++) {
            REAL sum = d[r * k] * wt[j];
            for (Py_ssize_t q = 1; q < k; q++)
                sum = sum + d[r * k + q] * wt[q * cols + j];
            out[r * cols + j] = sum;
        }
}

/* `rows` rows from row i of previous: their sums, then their mask and f'
 * while the rows are in L1. */
static FORCE_INLINE void
KERNEL(narrow_rows)(REAL *restrict previous, const REAL *restrict delta,
                    const REAL *restrict wt, const REAL *restrict A, const REAL *restrict mask,
                    Py_ssize_t i, Py_ssize_t cols, Py_ssize_t k, int kind, double slope,
                    const int rows)
{
    REAL *out = previous + i * cols;
    const REAL *d = delta + i * k;
    const Py_ssize_t vec_cols = KERNEL_VECTOR_COLUMNS(cols);
#if HAVE_VECTOR_TYPES
    KERNEL(narrow_tiles)(out, d, wt, k, cols, vec_cols, rows);
#endif
    KERNEL(narrow_columns)(out, d, wt, k, cols, vec_cols, rows);
    KERNEL(backward_range)(previous, A, mask, i * cols, (i + rows) * cols, kind, slope);
}

/* previous <- (delta W^T) * mask * f'(A): delta (rows, k), W (cols, k), Wt
 * scratch for W^T (copied once: k x cols, in L1). The sums over k run in
 * ascending order as multiplications then additions, as the reference. */
KERNEL_TARGET static void
KERNEL(narrow_backward)(void *previous_, const void *delta_, const void *W_, void *Wt_,
                        const void *A_, const void *mask_, Py_ssize_t rows, Py_ssize_t cols,
                        Py_ssize_t k, int kind, double slope)
{
    REAL *previous = previous_, *wt = Wt_;
    const REAL *delta = delta_, *W = W_, *A = A_, *mask = mask_;
    for (Py_ssize_t j = 0; j < cols; j++)
        for (Py_ssize_t q = 0; q < k; q++)
            wt[q * cols + j] = W[j * k + q];
    Py_ssize_t i = 0;
    for (; i + NARROW_ROWS <= rows; i += NARROW_ROWS)
        KERNEL(narrow_rows)(previous, delta, wt, A, mask, i, cols, k, kind, slope, NARROW_ROWS);
    for (; i < rows; i++)
        KERNEL(narrow_rows)(previous, delta, wt, A, mask, i, cols, k, kind, slope, 1);
}

#undef KERNEL_LANES
#undef KERNEL_VECTOR_COLUMNS

/* ---------------------------------------------------------------- softmax */

/* The largest of a row's `cols` entries, `stride` bytes apart, in four
 * running maxima combined at the end: a chain of cols / 4 dependent
 * comparisons instead of cols. The maximum is exact whatever the grouping;
 * a NaN entry is passed over as by one running maximum, unless it is the
 * first (every maximum starts from it). */
static FORCE_INLINE REAL
KERNEL(row_max)(const char *row, Py_ssize_t stride, Py_ssize_t cols)
{
    REAL m0 = *(const REAL *)row, m1 = m0, m2 = m0, m3 = m0;
    Py_ssize_t k = 1;
    for (; k + 4 <= cols; k += 4) {
        REAL r0 = *(const REAL *)(row + k * stride);
        REAL r1 = *(const REAL *)(row + (k + 1) * stride);
        REAL r2 = *(const REAL *)(row + (k + 2) * stride);
        REAL r3 = *(const REAL *)(row + (k + 3) * stride);
        m0 = r0 > m0 ? r0 : m0;
        m1 = r1 > m1 ? r1 : m1;
        m2 = r2 > m2 ? r2 : m2;
        m3 = r3 > m3 ? r3 : m3;
    }
    for (; k < cols; k++) {
        REAL r = *(const REAL *)(row + k * stride);
        m0 = r > m0 ? r : m0;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

/* Z = R - max(R, axis=1) row by row; R's entries `r1` bytes apart. Called
 * with r1 = sizeof(REAL) for contiguous rows: inlined, the constant stride
 * lets the compiler vectorize (a stride read at run time does not). */
static FORCE_INLINE void
KERNEL(subtract_max_rows)(const StridedRows *R, Py_ssize_t r1, REAL *restrict z,
                          Py_ssize_t rows, Py_ssize_t cols)
{
    const char *row = R->data;
    for (Py_ssize_t i = 0; i < rows; i++, row += R->row_stride, z += cols) {
        REAL top = KERNEL(row_max)(row, r1, cols);
        for (Py_ssize_t k = 0; k < cols; k++)
            z[k] = *(const REAL *)(row + k * r1) - top;
    }
}

KERNEL_TARGET static void
KERNEL(subtract_row_max)(const StridedRows *R, void *Z, Py_ssize_t rows, Py_ssize_t cols)
{
    if (R->col_stride == (Py_ssize_t)sizeof(REAL))
        KERNEL(subtract_max_rows)(R, sizeof(REAL), Z, rows, cols);
    else
        KERNEL(subtract_max_rows)(R, R->col_stride, Z, rows, cols);
}

/* P <- P / sum(P, axis=1), multiplying by the reciprocal of each row's sum
 * (summed left to right). */
KERNEL_TARGET static void
KERNEL(normalize_rows)(void *P_, Py_ssize_t rows, Py_ssize_t cols)
{
    REAL *restrict p = P_;
    for (Py_ssize_t i = 0; i < rows; i++, p += cols) {
        REAL sum = 0;
        for (Py_ssize_t k = 0; k < cols; k++)
            sum = sum + p[k];
        REAL inverse = (REAL)1 / sum;
        for (Py_ssize_t k = 0; k < cols; k++)
            p[k] = p[k] * inverse;
    }
}

/* With P = exp(z), z = r - max(r): P <- P / s and delta = w (P - Y) per row,
 * s the row sum; returns sum_i w_i (log(s_i) - y_i . z_i) in double. r1 and
 * y1 are the column strides of R and Y (constants when inlined from
 * log_loss_from_exp's contiguous case). */
static FORCE_INLINE double
KERNEL(log_loss_rows)(const StridedRows *R, Py_ssize_t r1, const StridedRows *Y,
                      Py_ssize_t y1, const StridedRows *weights, REAL *restrict p,
                      REAL *restrict d, Py_ssize_t rows, Py_ssize_t cols)
{
    const char *r_row = R->data, *y_row = Y->data, *weight = weights->data;
    double total = 0.0;
    for (Py_ssize_t i = 0; i < rows; i++, r_row += R->row_stride, y_row += Y->row_stride,
                    weight += weights->row_stride, p += cols, d += cols) {
        REAL top = KERNEL(row_max)(r_row, r1, cols);
        REAL sum = 0, target = 0;
        for (Py_ssize_t k = 0; k < cols; k++) {
            REAL z = *(const REAL *)(r_row + k * r1) - top;
            target = target + *(const REAL *)(y_row + k * y1) * z;
            sum = sum + p[k];
        }
        REAL w = *(const REAL *)weight, inverse = (REAL)1 / sum;
        for (Py_ssize_t k = 0; k < cols; k++) {
            p[k] = p[k] * inverse;
            d[k] = (p[k] - *(const REAL *)(y_row + k * y1)) * w;
        }
        total += (double)w * ((double)REAL_LOG(sum) - (double)target);
    }
    return total;
}

KERNEL_TARGET static double
KERNEL(log_loss_from_exp)(const StridedRows *R, const StridedRows *Y,
                          const StridedRows *weights, void *P, void *delta, Py_ssize_t rows,
                          Py_ssize_t cols)
{
    const Py_ssize_t unit = (Py_ssize_t)sizeof(REAL);
    if (R->col_stride == unit && Y->col_stride == unit)
        return KERNEL(log_loss_rows)(R, unit, Y, unit, weights, P, delta, rows, cols);
    return KERNEL(log_loss_rows)(R, R->col_stride, Y, Y->col_stride, weights, P, delta, rows,
                                 cols);
}

/* ------------------------------------------------------------- take_rows */

/* out[i] = 1 if source[index[i]] else 0 for bool source rows of `cols`
 * bytes; returns the first i whose index is out of [0, n_source), or -1. */
KERNEL_TARGET static Py_ssize_t
KERNEL(take_bool_rows)(const unsigned char *source, Py_ssize_t n_source,
                       const int64_t *index, Py_ssize_t m, Py_ssize_t cols, void *out_)
{
    REAL *restrict out = out_;
    for (Py_ssize_t i = 0; i < m; i++, out += cols) {
        prefetch_row(source, n_source, cols, index, i + PREFETCH_ROWS, m);
        if (!row_in_range(index[i], n_source))
            return i;
        const unsigned char *from = source + (Py_ssize_t)index[i] * cols;
        for (Py_ssize_t k = 0; k < cols; k++)
            out[k] = from[k] ? (REAL)1 : (REAL)0;
    }
    return -1;
}

/* ------------------------------------------------------------------ table */

static const Kernels KERNEL(table) = {
    KERNEL(adam),
    KERNEL(l2_gradient),
    KERNEL(bias_activation),
    KERNEL(activation_backward),
    KERNEL(narrow_backward),
    KERNEL(subtract_row_max),
    KERNEL(normalize_rows),
    KERNEL(log_loss_from_exp),
    KERNEL(take_bool_rows),
};
