/*
 * The kernels of _fused_kernels.h for both element types, for the
 * instruction set _fused.c has set (ISA, KERNEL_TARGET): included once per
 * instruction set.
 */

#define REAL double
#define REAL_NAME double
#define REAL_SQRT sqrt
#define REAL_LOG log
#include "_fused_kernels.h"
#undef REAL
#undef REAL_NAME
#undef REAL_SQRT
#undef REAL_LOG

#define REAL float
#define REAL_NAME float
#define REAL_SQRT sqrtf
#define REAL_LOG logf
#include "_fused_kernels.h"
#undef REAL
#undef REAL_NAME
#undef REAL_SQRT
#undef REAL_LOG
