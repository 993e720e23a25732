/* log_softmax and softmax along one axis: fused, numerically stable forwards (x - max - log Σ exp(x - max);
 * exp(x - max) / Σ exp(x - max)) and backwards written with engine ops, so both have second derivatives. */
#include "../internal.h"
#include "vmath.h"

#include <math.h>

/* contiguous float rows in vector operations (vmath.h), at each kernel level */
#define FLOAT_ROWS(ISA, ATTR, unused)                                                                          \
    ATTR static void softmax_f32_##ISA(float *out, const float *x, int64_t n) { nb_row_softmax_f32(out, x, n, 1); } \
    ATTR static void log_softmax_f32_##ISA(float *out, const float *x, int64_t n) { nb_row_log_softmax_f32(out, x, n); }
/* a float row of log_softmax's gradient in one pass: dx = g − e^y·Σg (y ≤ 0, a log-probability) */
#define FLOAT_GRAD_ROWS(ISA, ATTR, unused)                                                                    \
    ATTR static void log_softmax_grad_f32_##ISA(float *dx, const float *g, const float *y, int64_t n)         \
    {                                                                                                         \
        const float total = nb_row_sum_f32(g, n);                                                             \
        for (int64_t j = 0; j < n; j++) dx[j] = g[j] - nb_exp_nonpositive_f32(y[j]) * total;                  \
    }
NB_FOR_ISA(FLOAT_ROWS, )
NB_FOR_ISA(FLOAT_GRAD_ROWS, )
NB_ISA_FUNCTIONS(softmax_f32);
NB_ISA_FUNCTIONS(log_softmax_f32);
NB_ISA_FUNCTIONS(log_softmax_grad_f32);

/* one softmax row: len elements `step` bytes apart in x and in out */
typedef struct {
    nb_dtype dtype;
    int64_t len, x_step, out_step;
} row_geometry;

static bool contiguous_float(const row_geometry *g) { return g->dtype == NB_F32 && g->x_step == 4 && g->out_step == 4; }

static void log_softmax_row(const row_geometry *g, char *out, const char *x)
{
    if (contiguous_float(g)) {
        NB_ISA_PICK(log_softmax_f32)((float *)out, (const float *)x, g->len);
        return;
    }
    double max = -INFINITY;
    for (int64_t j = 0; j < g->len; j++) max = fmax(max, nb_load(g->dtype, x + j * g->x_step));
    double sum = 0;
    for (int64_t j = 0; j < g->len; j++) sum += exp(nb_load(g->dtype, x + j * g->x_step) - max);
    double log_sum = log(sum);   /* subtracted after max: x - (max + log_sum) would round at large max */
    for (int64_t j = 0; j < g->len; j++)
        nb_store(g->dtype, out + j * g->out_step, (nb_load(g->dtype, x + j * g->x_step) - max) - log_sum);
}

/* called over every position of the other axes: each is the start of one row */
static void log_softmax_rows(int64_t n, char **p, const int64_t *s, void *ctx)
{
    for (int64_t i = 0; i < n; i++) log_softmax_row(ctx, p[0] + i * s[0], p[1] + i * s[1]);
}

/* the gradient of float log-probabilities y along their last axis, contiguous, in one kernel: a
 * classifier's loss backward made four tensors of the logits' size with the ops below. Only without
 * create_graph (the ops are recorded otherwise); NULL when it does not apply or fails. */
static nb_tensor *float_rows_gradient(const nb_tensor *y, int axis, nb_tensor *g)
{
    if (nb_grad_enabled() || y->dtype != NB_F32 || axis != y->ndim - 1 || !nb_is_contiguous(y) ||
        !nb_is_contiguous(g) || y->shape[axis] == 0)
        return NULL;
    nb_tensor *dx = nb_new("nb_log_softmax_backward", NB_F32, y->ndim, y->shape);
    if (!dx) return NULL;
    const int64_t len = y->shape[axis], rows = nb_numel(y) / len;
    const int threads = rows > 1 && rows * len >= 65536 ? nb_parallel_threads() : 1;
    const float *gs = g->data, *ys = y->data;
    float *dxs = dx->data;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) NB_ISA_PICK(log_softmax_grad_f32)(dxs + r * len, gs + r * len, ys + r * len, len);
    return dx;
}

/* d/dx: g - softmax · Σ_axis g, with softmax = exp(y) */
static int log_softmax_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    if ((gin[0] = float_rows_gradient(n->out, (int)n->iarg[0], g))) return 0;
    nb_tensor *total = nb_sum_axes(g, NB_AXES((int)n->iarg[0]), true);
    return (gin[0] = nb_sub(g, nb_mul(nb_exp(n->out), total))) ? 0 : -1;
}
static const nb_op log_softmax_op = { .name = "nb_log_softmax", .backward = log_softmax_backward };

/* one softmax row; f32 rows in float, f64 rows in double */
static void softmax_row(const row_geometry *g, char *out, const char *x)
{
    if (contiguous_float(g)) {
        NB_ISA_PICK(softmax_f32)((float *)out, (const float *)x, g->len);
        return;
    }
    if (g->dtype == NB_F32) {
        float max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < g->len; j++) {   /* a comparison, not fmaxf: a libm call per element */
            const float v = *(const float *)(x + j * g->x_step);
            max = v > max ? v : max;
        }
        for (int64_t j = 0; j < g->len; j++) {
            const float e = expf(*(const float *)(x + j * g->x_step) - max);
            *(float *)(out + j * g->out_step) = e;
            sum += e;
        }
        const float inv = 1 / sum;
        for (int64_t j = 0; j < g->len; j++) *(float *)(out + j * g->out_step) *= inv;
        return;
    }
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < g->len; j++) max = fmax(max, *(const double *)(x + j * g->x_step));
    for (int64_t j = 0; j < g->len; j++) {
        const double e = exp(*(const double *)(x + j * g->x_step) - max);
        *(double *)(out + j * g->out_step) = e;
        sum += e;
    }
    for (int64_t j = 0; j < g->len; j++) *(double *)(out + j * g->out_step) /= sum;
}

static void softmax_rows(int64_t n, char **p, const int64_t *s, void *ctx)
{
    for (int64_t i = 0; i < n; i++) softmax_row(ctx, p[0] + i * s[0], p[1] + i * s[1]);
}

/* d/dx: y·(g - Σ_axis g·y), y the output */
static int softmax_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *y = n->out;
    nb_tensor *total = nb_sum_axes(nb_mul(g, y), NB_AXES((int)n->iarg[0]), true);
    return (gin[0] = nb_mul(y, nb_sub(g, total))) ? 0 : -1;
}
static const nb_op softmax_op = { .name = "nb_softmax", .backward = softmax_backward };

/* the rows of x along axis through fn into a new tensor of x's layout */
static nb_tensor *rowwise(const char *op, nb_tensor *x, int *axis, nb_row_fn fn)
{
    if (!x) return nb_null_input(op);
    if (!nb_check_float(op, x) || !nb_check_axis(op, x, axis)) return NULL;
    nb_tensor *out = nb_new_like(op, x);
    if (!out) return NULL;
    int64_t es = (int64_t)nb_dtype_size(x->dtype);
    row_geometry geometry = { x->dtype, x->shape[*axis], x->stride[*axis] * es, out->stride[*axis] * es };
    int64_t starts[NB_MAX_DIMS];   /* the shape of x with the axis collapsed to its first element */
    memcpy(starts, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    starts[*axis] = 1;
    nb_loop l;
    nb_loop_init(&l, x->ndim, starts);
    nb_loop_add(&l, out);
    nb_loop_add(&l, x);
    nb_loop_run_parallel(&l, fn, &geometry);
    return out;
}

nb_tensor *nb_log_softmax(nb_tensor *x, int axis)
{
    nb_tensor *out = rowwise("nb_log_softmax", x, &axis, log_softmax_rows);
    nb_node *n = nb_record(&log_softmax_op, out, 1, &x);
    if (n) n->iarg[0] = axis;
    return out;
}

nb_tensor *nb_softmax(nb_tensor *x, int axis)
{
    nb_tensor *out = rowwise("nb_softmax", x, &axis, softmax_rows);
    nb_node *n = nb_record(&softmax_op, out, 1, &x);
    if (n) n->iarg[0] = axis;
    return out;
}
