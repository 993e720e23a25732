/* nabla/tensor.h — tensors, scopes (memory), errors, random numbers.
 *
 * MEMORY MODEL
 *   Every tensor an op or a creation function returns lives in the current *scope*: an arena owned
 *   by the calling thread. A scope is reset as a whole (nb_scope_reset) after each training step;
 *   that frees the step's activations and graph nodes at once and keeps the memory for the next
 *   step, so a steady-state loop performs no malloc per op and does not grow.
 *   Parameters and buffers are *persistent*: nb_param / nb_persist copy a tensor out of the scope
 *   into its own heap block, which lives until nb_free. Gradients of persistent leaves are
 *   persistent too. When no scope has been pushed, a per-thread default scope is used; reset it with
 *   nb_scope_reset(NULL) and release it with nb_cleanup() before the thread ends.
 *
 * ERRORS
 *   Functions that return a tensor return NULL on failure and record a message naming the function
 *   and the shapes, read with nb_last_error(). A function given a NULL tensor returns NULL without
 *   overwriting the first message, so one check at the end of an expression suffices; when there is
 *   none it records "<function>: NULL input". Every failure records a message.
 *   Functions returning int return 0 on success and -1 on failure (message recorded).
 *
 * THREADS
 *   The current scope, the grad mode and the last error are per thread. A tensor, a scope or a
 *   generator must not be used by two threads at once.
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 8

typedef enum { NB_F32, NB_F64, NB_I64 } nb_dtype; /* I64: labels and indices, never differentiable */

/* A shape by value: NB_SHAPE(2, 3) is [2,3]; NB_SHAPE0 is the 0-d (scalar) shape. */
typedef struct { int ndim; int64_t d[NB_MAX_DIMS]; } nb_shape;
#define NB_SHAPE(...) ((nb_shape){ (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), { __VA_ARGS__ } })
#define NB_SHAPE0 ((nb_shape){ 0, { 0 } })

/* A set or order of axes by value: NB_AXES(0, 2). Negative axes count from the end. */
typedef struct { int n; int a[NB_MAX_DIMS]; } nb_axes;
#define NB_AXES(...) ((nb_axes){ (int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)), { __VA_ARGS__ } })

typedef struct nb_node nb_node;
typedef struct nb_scope nb_scope;

typedef struct nb_tensor {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t stride[NB_MAX_DIMS]; /* in elements; 0 along broadcast (expanded) axes */
    void *data;                  /* address of element [0,...,0]; views point into another tensor. Not
                                  * always row-major (views, the fused convolution's channels-last
                                  * [N,C,H,W]): read through the strides, nb_get / nb_to_doubles, or
                                  * nb_contiguous first */
    bool requires_grad;
    struct nb_tensor *grad;      /* filled (+=) by nb_backward for leaves; contiguous, same shape */
    nb_node *node;               /* op that produced this tensor; NULL for leaves */
    nb_scope *scope;             /* owning scope; NULL for persistent tensors (nb_free) */
    /* internal: backward bookkeeping */
    struct nb_tensor *pending_grad;
    uint64_t visit;
    uint64_t *version;           /* writes counted (nb_fill, nb_copy_into, nb_set, optimizer steps); views share their base's */
    uint64_t own_version;
} nb_tensor;

/* ---- errors ---- */
const char *nb_last_error(void);       /* "" when none */
void nb_clear_error(void);

/* ---- scopes ---- */
nb_scope *nb_scope_new(void);
void nb_scope_push(nb_scope *s);       /* make s current for this thread (a stack) */
void nb_scope_pop(void);
nb_scope *nb_scope_current(void);      /* the top of the stack, or the default scope */
void nb_scope_reset(nb_scope *s);      /* frees every tensor made in s, keeps its memory; NULL = current */
void nb_scope_free(nb_scope *s);       /* s must not be on the stack */
size_t nb_scope_reserved(const nb_scope *s); /* bytes the scope holds from malloc; NULL = current */
size_t nb_scope_used(const nb_scope *s);     /* bytes handed out since the last reset */
void nb_cleanup(void);                 /* release this thread's default scope and scratch memory */

/* ---- random numbers: a caller-owned, seeded generator (xoshiro256**) ---- */
typedef struct { uint64_t s[4]; } nb_rng;
void nb_rng_seed(nb_rng *rng, uint64_t seed);
uint64_t nb_rng_next(nb_rng *rng);
double nb_rng_uniform(nb_rng *rng);    /* [0, 1) */
double nb_rng_normal(nb_rng *rng);     /* N(0, 1) */

/* ---- creation (in the current scope) ---- */
nb_tensor *nb_empty(nb_dtype dt, nb_shape shape);                   /* uninitialised */
nb_tensor *nb_zeros(nb_dtype dt, nb_shape shape);
nb_tensor *nb_ones(nb_dtype dt, nb_shape shape);
nb_tensor *nb_full(nb_dtype dt, nb_shape shape, double value);
nb_tensor *nb_scalar(nb_dtype dt, double value);                    /* 0-d */
nb_tensor *nb_arange(nb_dtype dt, double start, double stop, double step); /* [ceil((stop-start)/step)] */
nb_tensor *nb_linspace(nb_dtype dt, double start, double stop, int64_t n); /* both ends included */
nb_tensor *nb_from_data(nb_dtype dt, nb_shape shape, const void *data);   /* copies, row-major, same dtype */
nb_tensor *nb_from_doubles(nb_dtype dt, nb_shape shape, const double *values); /* converts */
nb_tensor *nb_rand(nb_dtype dt, nb_shape shape, nb_rng *rng, double lo, double hi); /* uniform [lo,hi) */
nb_tensor *nb_randn(nb_dtype dt, nb_shape shape, nb_rng *rng, double std);         /* N(0, std²) */
nb_tensor *nb_bernoulli(nb_dtype dt, nb_shape shape, nb_rng *rng, double p);       /* 1 with probability p */
nb_tensor *nb_copy(const nb_tensor *t);        /* contiguous copy of the values, no graph */
nb_tensor *nb_detach(nb_tensor *t);            /* view of the same data, no graph, no grad */

/* ---- persistence ---- */
nb_tensor *nb_param(nb_tensor *t);             /* persistent leaf that requires grad (copies a scoped t) */
nb_tensor *nb_persist(nb_tensor *t);           /* persistent copy without grad (buffers, data sets) */
void nb_free(nb_tensor *t);                    /* frees a persistent tensor and its grad; NULL and scoped are no-ops */
int nb_set_requires_grad(nb_tensor *t, bool on); /* leaves only */
void nb_zero_grad(nb_tensor *t);               /* sets t->grad to zeros (keeps its memory) */

/* ---- reading and writing values ---- */
int64_t nb_numel(const nb_tensor *t);
bool nb_is_contiguous(const nb_tensor *t);
nb_shape nb_shape_of(const nb_tensor *t);
const char *nb_dtype_name(nb_dtype dt);        /* "f32", "f64", "i64" */
size_t nb_dtype_size(nb_dtype dt);
double nb_item(const nb_tensor *t);            /* the value of a one-element tensor (NaN + error otherwise) */
double nb_get(const nb_tensor *t, int64_t flat); /* element at a row-major flat index of the logical view */
int nb_set(nb_tensor *t, int64_t flat, double value);
int nb_to_doubles(const nb_tensor *t, double *out); /* all elements in row-major order */
int nb_copy_into(nb_tensor *dst, const nb_tensor *src); /* values only, same shape; converts dtype; no graph */
int nb_fill(nb_tensor *t, double value);       /* no graph */
int nb_print(const nb_tensor *t);              /* NumPy-like layout on stdout */
int nb_fprint(FILE *f, const nb_tensor *t);
int nb_shape_str(const nb_tensor *t, char *buf, size_t size); /* "[2,3]" */

#ifdef __cplusplus
}
#endif
#endif
