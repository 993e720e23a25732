/* Internal interface shared by the library's files: errors, allocation, graph nodes, loops. */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include "nabla/nabla.h"

#include <stdarg.h>
#include <string.h>

#define NB_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- kernels per instruction-set level (runtime.h) ----
 * NB_CLONES (meson: GCC on x86-64, -Dclones=true): each hot kernel exists for the baseline (generic),
 * x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512), and the op picks one by nb_isa_current(), so that
 * NABLA_ISA / nb_set_isa can force a level. A kernel is written once, in a macro
 * DEFINE(ISA, ATTR, ...) that puts ATTR (the level's target attribute) before the function and names
 * it ..._##ISA; NB_FOR_ISA(DEFINE, ...) instantiates it for every level and NB_ISA_TABLE(name) makes
 * the initialiser of an array of them, indexed by the level: NB_ISA_PICK(array). */
#define NB_AVX2 __attribute__((target("arch=x86-64-v3")))
#define NB_AVX512 __attribute__((target("arch=x86-64-v4")))
#if NB_CLONES
#define NB_ISA_LEVELS 3
#define NB_FOR_ISA(DEFINE, ...) DEFINE(generic, , __VA_ARGS__) DEFINE(avx2, NB_AVX2, __VA_ARGS__) DEFINE(avx512, NB_AVX512, __VA_ARGS__)
#define NB_ISA_TABLE(name) { name##_generic, name##_avx2, name##_avx512 }
#else
#define NB_ISA_LEVELS 1
#define NB_FOR_ISA(DEFINE, ...) DEFINE(generic, , __VA_ARGS__)
#define NB_ISA_TABLE(name) { name##_generic }
#endif
#define NB_ISA_PICK(array) ((array)[nb_isa_current()])
/* a*b + c as one fused multiply-add in a tile kernel: ISO C mode turns contraction off */
#if defined(__clang__)
#define NB_FMA   /* clang contracts a*b + c by default */
#else
#define NB_FMA __attribute__((optimize("fp-contract=fast")))
#endif
/* `static ... *const name[NB_ISA_LEVELS]`: the levels of the kernel name_ISA, for NB_ISA_PICK(name) */
#define NB_ISA_FUNCTIONS(name) static __typeof__(name##_generic) *const name[NB_ISA_LEVELS] = NB_ISA_TABLE(name)

/* ---- errors (lib/core/error.c) ---- */
void nb_error(const char *fmt, ...) NB_PRINTF(1, 2);          /* records the message; always overwrites */
/* "<op>: NULL <what>", unless an earlier message (likely the reason for the NULL) is still recorded */
void nb_error_null(const char *op, const char *what);
/* NULL, after nb_error_null(op, "input"): an op's answer to a NULL input */
void *nb_null_input(const char *op);
/* "[2,3]" for t, written into a rotating per-thread buffer: valid for a few calls, for messages */
const char *nb_shp(const nb_tensor *t);
const char *nb_shape_text(int ndim, const int64_t *shape);

/* Validation helpers: each records "<op>: ..." and returns false on failure. */
bool nb_check_float(const char *op, const nb_tensor *t);      /* f32 or f64 */
bool nb_check_same_dtype(const char *op, const nb_tensor *a, const nb_tensor *b);
bool nb_check_axis(const char *op, const nb_tensor *t, int *axis); /* normalises a negative axis */
bool nb_check_axes(const char *op, const nb_tensor *t, nb_axes axes, bool mask[NB_MAX_DIMS]);
bool nb_check_shape(const char *op, nb_shape s);              /* ndim in range, sizes >= 0 */

/* ---- files (lib/io/file.c) ---- */
/* path opened for reading (close on exec) when it is a regular file, its size in *size (may be NULL);
 * -1 when it cannot be opened (errno set), -2 when it is not a regular file (a FIFO, a device, a
 * folder: checked without blocking, before anything is read) */
int nb_open_regular(const char *path, int64_t *size);
/* lib/io/atomic.c: writes head[0..head_len) then each tensor's values (row-major, little-endian, its
 * dtype) to path atomically (a synced temporary file renamed over it); "<op>: <path>: ..." on failure */
int nb_save_atomic(const char *op, const char *path, const void *head, size_t head_len, int n, nb_tensor *const *tensors);
bool nb_host_is_little(void);
int64_t nb_gpt_n_head(const nb_module *gpt);   /* lib/nn/gpt.c: the heads of an nb_gpt, or -1 */
void nb_swap_bytes(unsigned char *p, size_t bytes, size_t es);   /* reverses each es-byte element */
/* the little-endian int32 at p (llm.c's headers) */
static inline int32_t nb_le32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}
/* false with "<op>: <path>: refusing to replace it: not a regular file" (or "<op>: empty path") when
 * a save must not put a regular file at path */
bool nb_check_replaceable(const char *op, const char *path);

/* ---- memory (lib/core/scope.c) ---- */
void *nb_scope_alloc(size_t bytes);                           /* current scope, 64-byte aligned */
void *nb_scope_alloc_in(nb_scope *s, size_t bytes);           /* the same in scope s */
/* Memory that dies inside a step (backward's intermediate gradients): a mark taken before, a test
 * that p was allocated in the current scope after it, and a release that lets later large requests
 * of the same step reuse the bytes. Only for memory nothing can reach any more. */
typedef struct { const void *block; size_t used; } nb_scope_mark;
nb_scope_mark nb_scope_mark_now(void);
bool nb_scope_since(nb_scope_mark m, const void *p);
void nb_scope_release(void *p, size_t bytes);
/* Sizes that fit: every size >= 0 and the product of the nonzero ones, times elem bytes, within
 * int64, so that every partial product, stride and byte offset computed from them fits too. Ops
 * check the factors of a geometry with it before multiplying them. */
bool nb_sizes_fit(int n, const int64_t *sizes, size_t elem);
/* a new contiguous tensor in the current scope, data uninitialised; NULL with "<op>: the result ...
 * is too large" or "<op>: out of memory for the result ..." (naming dtype, shape and bytes) */
nb_tensor *nb_new(const char *op, nb_dtype dt, int ndim, const int64_t *shape);
nb_tensor *nb_new_like(const char *op, const nb_tensor *t);
/* Dense layouts: a tensor whose elements fill its memory block in some order of its axes (NCHW, or
 * channels-last NHWC seen as [N,C,H,W], ...). nb_dense_order fills order (slowest axis first) and
 * says whether t is dense; nb_new_permuted makes a tensor laid out in that order; nb_new_layout_of
 * one of like's shape in like's layout when like is dense, else contiguous. Ops that keep a layout
 * avoid transposing channels-last activations back and forth. */
bool nb_dense_order(const nb_tensor *t, int *order);
nb_tensor *nb_new_permuted(const char *op, nb_dtype dt, int ndim, const int64_t *shape, const int *order);
nb_tensor *nb_new_layout_of(const char *op, const nb_tensor *like, nb_dtype dt);
/* a persistent (nb_free), contiguous, uninitialised tensor; "<op>: out of memory ..." on failure */
nb_tensor *nb_new_persistent(const char *op, nb_dtype dt, int ndim, const int64_t *shape);
/* a view of base's data with the given geometry (no graph) */
nb_tensor *nb_view(const nb_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, void *data);
#define NB_SCRATCH_SLOTS 4
/* per-thread reusable buffers (grow, never shrink); slots 0 and 1 hold the graph walk's order while
 * backward rules run, so ops (which may run inside backward with create_graph) use slots 2 and 3 */
void *nb_scratch(int slot, size_t bytes);

/* ---- graph (lib/autograd/graph.c) ---- */
typedef struct nb_node nb_node;
/* Writes the gradient of each input that requires one into gin[i] (same shape as the input);
 * leaves gin[i] NULL when there is none. Uses public ops, so it is itself differentiable when
 * grad mode is on (create_graph). Returns 0, or -1 with an error recorded. */
typedef int (*nb_backward_fn)(nb_node *node, nb_tensor *gout, nb_tensor **gin);
/* values_unused: the rule needs only shapes (add, sum, views...), so writes into the inputs or the
 * output after the forward do not change the gradient; every other node checks before its rule
 * runs that none of them was written since the forward (version counters) */
typedef struct { const char *name; nb_backward_fn backward; bool values_unused; } nb_op;

#define NB_NODE_IARGS 16
struct nb_node {
    const nb_op *op;
    int n_in;
    nb_tensor **in;
    nb_tensor *out;
    nb_tensor *saved;                 /* one extra tensor the rule needs (indices, a mask) */
    int64_t iarg[NB_NODE_IARGS];      /* op parameters: axes, window, ... */
    double darg[2];                   /* scalar parameters */
    uint64_t *versions;               /* the inputs' versions at the forward, then the output's */
};

/* Records out = op(in...) when grad mode is on and an input requires grad; returns the node
 * (for the caller to fill arguments) or NULL when nothing was recorded. */
nb_node *nb_record(const nb_op *op, nb_tensor *out, int n_in, nb_tensor *const *in);
/* ---- anomaly mode (lib/autograd/anomaly.c) ---- */
/* With the mode on and no anomaly recorded yet: records one if out holds NaN/Inf, naming op (NULL:
 * the running backward rule) and whether it produced the value or received it in an input. */
void nb_anomaly_check(const char *op, const nb_tensor *out, int n_in, nb_tensor *const *in);
/* brackets a backward rule, so that anomalies inside it name the forward op; returns the outer one */
const char *nb_anomaly_enter_backward(const char *forward_op);
void nb_anomaly_leave_backward(const char *was);

/* after an in-place write into t's data (nb_fill, nb_copy_into, optimizers): graphs that saved it see it */
static inline void nb_bump_version(nb_tensor *t)
{
    if (t->version) ++*t->version;
}

static inline bool nb_needs_grad(const nb_node *n, int i) { return n->in[i]->requires_grad; }

/* ---- loops over strided tensors (lib/core/loop.c) ---- */
#define NB_LOOP_MAX_OPS 4
typedef struct {
    int ndim, nops;
    int64_t shape[NB_MAX_DIMS];
    char *ptr[NB_LOOP_MAX_OPS];
    int64_t stride[NB_LOOP_MAX_OPS][NB_MAX_DIMS];     /* bytes */
} nb_loop;
/* calls fn once per innermost row: n elements, operand pointers p[k], byte strides s[k] */
typedef void (*nb_row_fn)(int64_t n, char **p, const int64_t *s, void *ctx);
void nb_loop_init(nb_loop *l, int ndim, const int64_t *shape);
void nb_loop_add(nb_loop *l, const nb_tensor *t);    /* t broadcast (right-aligned) to the loop shape */
void nb_loop_run(nb_loop *l, nb_row_fn fn, void *ctx);

/* the same, with the rows (or pieces of long rows) shared among the OpenMP threads when the loop
 * is large; only for row functions without shared state whose operand 0 is the one written */
void nb_loop_run_parallel(nb_loop *l, nb_row_fn fn, void *ctx);

/* ---- threads: OpenMP when built with it, else one ---- */
/* the threads an op may use now: 1 inside a parallel region, else the count asked for, narrowed to
 * the CPUs other processes leave free (lib/core/threads.c); parallel regions say num_threads(it) */
int nb_parallel_threads(void);
int nb_blas_threads(void);   /* BLIS's thread count (BLIS_NUM_THREADS, nb_set_num_threads), narrowed the same way; -1 when BLIS has none (its own defaults or ways per loop) */
#ifdef _OPENMP
#include <omp.h>
static inline int nb_thread_index(void) { return omp_get_thread_num(); }
static inline int nb_team_size(void) { return omp_get_num_threads(); }
#else
static inline int nb_thread_index(void) { return 0; }
static inline int nb_team_size(void) { return 1; }
#endif

/* the broadcast shape of a and b, or false with "<op>: shapes do not broadcast: [..] and [..]" */
bool nb_broadcast(const char *op, const nb_tensor *a, const nb_tensor *b, int *ndim, int64_t *shape);
bool nb_same_shape(const nb_tensor *a, int ndim, const int64_t *shape);
bool nb_contiguous_strides(int ndim, const int64_t *shape, const int64_t *stride);
int64_t nb_shape_numel(int ndim, const int64_t *shape);

/* element access by dtype */
static inline double nb_load(nb_dtype dt, const void *p)
{
    switch (dt) {
    case NB_F32: return *(const float *)p;
    case NB_F64: return *(const double *)p;
    default: return (double)*(const int64_t *)p;
    }
}
static inline void nb_store(nb_dtype dt, void *p, double v)
{
    switch (dt) {
    case NB_F32: *(float *)p = (float)v; break;
    case NB_F64: *(double *)p = v; break;
    default: *(int64_t *)p = (int64_t)v; break;
    }
}

/* ---- BLIS (lib/ops/matmul.c) ---- */
/* out[i] = a[i]·b[i] + beta·out[i] over out's batch axes (a and b broadcast over them, k > 0); out of
 * any layout BLIS can write (its matrices must not interleave), a and b read in place where BLIS can */
int nb_batched_gemm(nb_tensor *out, nb_tensor *a, nb_tensor *b, double beta);
/* c = a·b + beta·c for one m×n×k product (k > 0), strides in elements; beta 0 writes c unread */
void nb_gemm(nb_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa, int64_t csa, const void *b,
             int64_t rsb, int64_t csb, double beta, void *c, int64_t rsc, int64_t csc);

/* ---- convolution (lib/ops/conv.c) ---- */
/* x:[N,C,H,W] and w:[F,C,kh,kw] (and b:[F] when not NULL) of one float dtype, stride >= 1, pad >= 0,
 * the kernel fits the padded image; or false with "<op>: ..." */
bool nb_conv_check(const char *op, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b, int stride, int pad);

/* ---- modules (lib/nn/module.c) ---- */
/* a weight drawn as init says (fan_in for Kaiming), in the current scope; errors name op */
nb_tensor *nb_module_init_weight(const char *op, nb_init init, nb_dtype dt, nb_shape shape, int64_t fan_in);
/* relu(nb_module_forward(m, x)) as one fused kernel when m has one (a fused Conv2d, a fused
 * BatchNorm in training mode), else the two (lib/nn/modules.c) */
nb_tensor *nb_module_forward_relu(nb_module *m, nb_tensor *x);
/* relu(m(x) + skip), in one kernel where m has one (a fused BatchNorm in training) */
nb_tensor *nb_module_forward_add_relu(nb_module *m, nb_tensor *x, nb_tensor *skip);
/* Sequential's step: runs ch[0] on *x, fused with what follows it when a kernel does both — a fused
 * Conv2d, ReLU and 2x2/stride-2 MaxPool2d (nb_conv2d_relu_pool_fused), or a module and a ReLU
 * (nb_module_forward_relu); returns how many of the n children it ran */
int nb_module_forward_fused(nb_module *const *ch, int n, nb_tensor **x);

/* out += src (same shape, same dtype, any strides); no graph. Used for gradient accumulation. */
void nb_accumulate(nb_tensor *out, const nb_tensor *src);
/* acc[c] += Σ_r x[r][c] for a contiguous float x viewed as [rows,cols], row by row in one thread: the
 * additions of nb_sum_axes over leading axes (lib/ops/reduce.c) */
void nb_column_sums(const nb_tensor *x, int64_t rows, int64_t cols, double *acc);

#endif
