/* nabla-gradcheck: checks the gradients (and second derivatives) of every differentiable op on
 * random float64 inputs of several shapes, including broadcast, transposed and sliced inputs, then
 * of the functional layers and losses, and of cs231n's models (model.h) with respect to all their
 * parameters. The ops and their cases are a table: each case lists its inputs and the op's
 * parameters (or the model to build), and each op has one small function applying it to a case. */
#include <nabla/nabla.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 5
#define MAX_CASES 5
#define BAR 1e-7          /* worst cs231n relative error allowed */
#define MODEL_BAR 1e-6    /* the same for models */
#define ZERO_BAR 1e-9     /* |analytic - numeric| allowed for a gradient that is 0 by construction */

/* ---- inputs ---- */

typedef enum {
    VALUES,       /* f64 uniform in the op's range, requires grad */
    TRANSPOSED,   /* the same, as a transposed view (last two axes swapped): not contiguous */
    SLICED,       /* the same, every other element of a twice longer last axis */
    MASK,         /* f64 0/1, a constant (the condition of where) */
    INDEX,        /* i64 in [0, bound), a constant */
} input_kind;

typedef struct {
    input_kind kind;
    nb_shape shape;
    int64_t bound;
} input_spec;

#define V(...) { VALUES, NB_SHAPE(__VA_ARGS__), 0 }
#define V0 { VALUES, NB_SHAPE0, 0 }
#define T(...) { TRANSPOSED, NB_SHAPE(__VA_ARGS__), 0 }
#define S(...) { SLICED, NB_SHAPE(__VA_ARGS__), 0 }
#define M(...) { MASK, NB_SHAPE(__VA_ARGS__), 0 }
#define I(bound, ...) { INDEX, NB_SHAPE(__VA_ARGS__), bound }

/* A model case (MODEL entries): a small f64 net of a kind, checked with respect to all its
 * parameters on random data; the inputs of the check are the parameters, not input_specs. */
typedef enum { NO_MODEL, TWO_LAYER, FULLY_CONNECTED, CONVNET, RESNET, GPT, RNN_LM, LSTM_LM } model_kind;
typedef struct {
    model_kind kind;
    nb_norm_kind norm;            /* FULLY_CONNECTED */
    bool dropout;                 /* FULLY_CONNECTED: keep_prob 0.6, masks from a fixed seed */
    bool fused;                   /* batchnorm through nb_batchnorm_fused */
    double reg;
    double eps;                   /* difference step; 0: the gradcheck default */
} model_spec;

/* one case: the inputs and the op's parameters (each apply function says which it reads) */
typedef struct {
    int n;
    input_spec in[MAX_INPUTS];
    int64_t arg[8];
    double value;
    nb_shape shape;
    nb_axes axes;
    model_spec model;
} test_case;

/* skip kinks; also check second derivatives; cases are models (model_spec), n unused */
enum { KINKS = 1, SECOND = 2, MODEL = 4 };

typedef struct {
    const char *name;
    nb_fn apply;                  /* ctx is the test_case (a model_run for MODEL entries) */
    double lo, hi;                /* range of the float inputs, away from singularities */
    unsigned flags;
    test_case cases[MAX_CASES];   /* ended by n == 0 (by model.kind == NO_MODEL for MODEL entries) */
} op_entry;

static nb_tensor *make_input(const input_spec *s, double lo, double hi, nb_rng *rng)
{
    nb_shape base = s->shape;
    int last = base.ndim - 1;
    nb_tensor *t;
    switch (s->kind) {
    case MASK: return nb_bernoulli(NB_F64, s->shape, rng, 0.5);
    case INDEX: return nb_cast(nb_rand(NB_F64, s->shape, rng, 0, (double)s->bound), NB_I64);
    case TRANSPOSED:
        base.d[last] = s->shape.d[last - 1];
        base.d[last - 1] = s->shape.d[last];
        t = nb_detach(nb_transpose(nb_rand(NB_F64, base, rng, lo, hi), last - 1, last));
        break;
    case SLICED:
        base.d[last] *= 2;
        t = nb_detach(nb_slice(nb_rand(NB_F64, base, rng, lo, hi), last, 0, base.d[last], 2));
        break;
    default: t = nb_rand(NB_F64, s->shape, rng, lo, hi); break;
    }
    return nb_set_requires_grad(t, true) == 0 ? t : NULL;
}

/* ---- how each op is applied to a case (ctx) ---- */

#define APPLY(name) static nb_tensor *apply_##name(void *ctx, int n, nb_tensor *const *x)
#define C ((const test_case *)ctx)
#define WINDOW NB_WINDOW((int)C->arg[0], (int)C->arg[1], (int)C->arg[2])   /* arg: k, stride, pad */

APPLY(add) { return nb_add(x[0], x[1]); }
APPLY(sub) { return nb_sub(x[0], x[1]); }
APPLY(mul) { return nb_mul(x[0], x[1]); }
APPLY(div) { return nb_div(x[0], x[1]); }
APPLY(maximum) { return nb_maximum(x[0], x[1]); }
APPLY(minimum) { return nb_minimum(x[0], x[1]); }
APPLY(where) { return nb_where(x[0], x[1], x[2]); }
APPLY(add_scalar) { return nb_add_scalar(x[0], C->value); }
APPLY(sub_scalar) { return nb_sub_scalar(x[0], C->value); }
APPLY(mul_scalar) { return nb_mul_scalar(x[0], C->value); }
APPLY(div_scalar) { return nb_div_scalar(x[0], C->value); }
APPLY(pow_scalar) { return nb_pow_scalar(x[0], C->value); }
APPLY(neg) { return nb_neg(x[0]); }
APPLY(exp) { return nb_exp(x[0]); }
APPLY(log) { return nb_log(x[0]); }
APPLY(sqrt) { return nb_sqrt(x[0]); }
APPLY(rsqrt) { return nb_rsqrt(x[0]); }
APPLY(square) { return nb_square(x[0]); }
APPLY(abs) { return nb_abs(x[0]); }
APPLY(tanh) { return nb_tanh(x[0]); }
APPLY(sigmoid) { return nb_sigmoid(x[0]); }
APPLY(relu) { return nb_relu(x[0]); }
APPLY(sum) { return nb_sum(x[0]); }
APPLY(mean) { return nb_mean(x[0]); }
APPLY(max) { return nb_max(x[0]); }
APPLY(sum_axes) { return nb_sum_axes(x[0], C->axes, C->arg[0]); }     /* arg[0]: keepdim */
APPLY(mean_axes) { return nb_mean_axes(x[0], C->axes, C->arg[0]); }
APPLY(max_axes) { return nb_max_axes(x[0], C->axes, C->arg[0]); }
APPLY(sum_to) { return nb_sum_to(x[0], C->shape); }
APPLY(matmul) { return nb_matmul(x[0], x[1]); }
APPLY(matmul_bias) { return nb_matmul_bias(x[0], x[1], x[2]); }
APPLY(reshape) { return nb_reshape(x[0], C->shape); }
APPLY(permute) { return nb_permute(x[0], C->axes); }
APPLY(transpose) { return nb_transpose(x[0], (int)C->arg[0], (int)C->arg[1]); }
APPLY(expand) { return nb_expand(x[0], C->shape); }
APPLY(slice) { return nb_slice(x[0], (int)C->arg[0], C->arg[1], C->arg[2], C->arg[3]); }   /* axis, start, stop, step */
APPLY(contiguous) { return nb_contiguous(x[0]); }
APPLY(concat) { return nb_concat(n, x, (int)C->arg[0]); }
APPLY(pad) { return nb_pad(x[0], x[0]->ndim, C->arg, C->arg + 4, C->value); }    /* arg[0..3] before, arg[4..7] after */
APPLY(cast) { return nb_cast(x[0], NB_F64); }
APPLY(gather) { return nb_gather(x[0], (int)C->arg[0], x[1]); }
APPLY(scatter_add) { return nb_scatter_add(C->shape, (int)C->arg[0], x[0], x[1]); }
APPLY(index_select) { return nb_index_select(x[0], (int)C->arg[0], x[1]); }
APPLY(index_add) { return nb_index_add(C->shape, (int)C->arg[0], x[0], x[1]); }
APPLY(unfold) { return nb_unfold(x[0], WINDOW); }
APPLY(fold) { return nb_fold(x[0], C->arg[3], C->arg[4], WINDOW); }  /* arg[3], arg[4]: output h, w */
APPLY(max_pool2d) { return nb_max_pool2d(x[0], WINDOW); }
APPLY(avg_pool2d) { return nb_avg_pool2d(x[0], WINDOW); }
APPLY(log_softmax) { return nb_log_softmax(x[0], (int)C->arg[0]); }

/* layers and losses; x[0] is the data, x[1], x[2] the parameters */
APPLY(affine) { return nb_affine(x[0], x[1], x[2]); }
APPLY(conv2d) { return nb_conv2d(x[0], x[1], x[2], (int)C->arg[0], (int)C->arg[1]); }   /* arg: stride, pad */
/* arg: conv stride, pad; pool k, stride, pad */
APPLY(conv_relu_pool)
{
    return nb_conv_relu_pool(x[0], x[1], x[2], (int)C->arg[0], (int)C->arg[1],
                             NB_WINDOW((int)C->arg[2], (int)C->arg[3], (int)C->arg[4]));
}
APPLY(global_avg_pool) { return nb_global_avg_pool(x[0]); }
/* train mode with fresh running stats of x's feature count (they do not enter the output) */
static nb_tensor *batchnorm_train(nb_tensor *const *x, bool spatial)
{
    int64_t c = x[0]->shape[1];
    nb_norm_state st = { nb_zeros(NB_F64, NB_SHAPE(c)), nb_zeros(NB_F64, NB_SHAPE(c)), 0.9, 1e-5 };
    return spatial ? nb_spatial_batchnorm(x[0], x[1], x[2], &st, true) : nb_batchnorm(x[0], x[1], x[2], &st, true);
}
APPLY(batchnorm) { return batchnorm_train(x, false); }
APPLY(spatial_batchnorm) { return batchnorm_train(x, true); }
APPLY(batchnorm_fused) { return nb_batchnorm_fused(x[0], x[1], x[2], 1e-5, NULL, NULL); }
APPLY(layernorm) { return nb_layernorm(x[0], x[1], x[2], 1e-5); }
APPLY(layernorm_fused) { return nb_layernorm_fused(x[0], x[1], x[2], 1e-5); }
APPLY(groupnorm) { return nb_groupnorm(x[0], x[1], x[2], (int)C->arg[0], 1e-5); }   /* arg[0]: groups */
/* value: keep probability; arg[0]: the seed of the masks, the same at every evaluation */
APPLY(dropout)
{
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)C->arg[0]);
    return nb_dropout(x[0], C->value, &rng, true);
}
APPLY(softmax_cross_entropy) { return nb_softmax_cross_entropy(x[0], x[1]); }
APPLY(svm_loss) { return nb_svm_loss(x[0], x[1]); }
APPLY(l2_reg) { return nb_l2_reg(n, x, C->value); }                 /* value: reg */
APPLY(mse_loss) { return nb_mse_loss(x[0], x[1]); }
APPLY(bce_with_logits) { return nb_bce_with_logits(x[0], x[1]); }
APPLY(huber_loss) { return nb_huber_loss(x[0], x[1], C->value); }   /* value: delta */
APPLY(softmax) { return nb_softmax(x[0], 1); }
APPLY(gelu) { return nb_gelu(x[0]); }
APPLY(gelu_fused) { return nb_gelu_fused(x[0]); }
APPLY(embedding) { return nb_embedding(x[0], x[1]); }
APPLY(temporal_affine) { return nb_temporal_affine(x[0], x[1], x[2]); }
APPLY(rnn_step) { return nb_rnn_step(x[0], x[1], x[2], x[3], x[4]); }
APPLY(rnn) { return nb_rnn(x[0], x[1], x[2], x[3], x[4]); }
APPLY(lstm) { return nb_lstm(x[0], x[1], x[2], x[3], x[4]); }
APPLY(attention) { return nb_attention(x[0], x[1], x[2], C->arg[0] != 0); }   /* arg[0]: causal */
APPLY(attention_fused) { return nb_attention_fused(x[0], x[1], x[2], C->arg[0] != 0); }
APPLY(attention_heads_fused) { return nb_attention_heads_fused(x[0], C->arg[1], C->arg[0] != 0); }   /* arg[1]: heads */
APPLY(temporal_softmax_loss) { return nb_temporal_softmax_loss(x[0], x[1], n > 2 ? x[2] : NULL); }

/* ---- models: the loss they train on, as a function of their parameters ---- */

typedef struct {
    nb_model *model;              /* a classifier (model.h), or */
    nb_module *sequence;          /* a sequence model: GPT (nb_gpt_loss) or a recurrent LM (temporal softmax loss) */
    nb_tensor *x, *y;
} model_run;

static nb_tensor *apply_model(void *ctx, int n, nb_tensor *const *x)
{
    (void)n, (void)x;             /* the parameters are perturbed in place */
    model_run *r = ctx;
    if (r->sequence) {
        nb_tensor *out = nb_module_forward(r->sequence, r->x);
        return strcmp(r->sequence->kind, "GPT") ? nb_temporal_softmax_loss(out, r->y, NULL) : nb_gpt_loss(out, r->y);
    }
    if (nb_model_seed(r->model, 1234) < 0) return NULL;   /* the same dropout masks every time */
    return nb_model_loss_expr(r->model, r->x, r->y);
}

/* Moves 1-D parameters (biases, norm gamma/beta) off their initial 0s and 1s, so that the check runs
 * at a generic point (zero biases put a relu exactly at its kink when dropout zeroes a whole row). */
static int jitter(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    if (is_buffer || t->ndim != 1) return 0;
    for (int64_t k = 0; k < nb_numel(t); k++) nb_set(t, k, nb_get(t, k) + 0.2 * nb_rng_uniform(ctx) - 0.1);
    return 0;
}

/* Randomises 2-D weights to N(0, 0.3²): at GPT-2's initial 0.02 the attention is nearly uniform and
 * the query and key gradients (~1e-8) sink below the differences' rounding noise */
static int redraw(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    if (is_buffer || t->ndim != 2) return 0;
    return nb_copy_into(t, nb_randn(NB_F64, nb_shape_of(t), ctx, 0.3));
}

/* a tiny f64 sequence model of the spec's kind on token ids x [2,4] and targets y [2,4], or NULL */
static nb_module *build_sequence_model(const model_spec *s, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    enum { V = 6 };
    nb_module *m = NULL;
    if (s->kind == GPT) {
        nb_gpt_config c = nb_gpt_defaults();
        c.vocab_size = V, c.max_seq_len = 4, c.n_layer = 2, c.n_head = 2, c.n_embd = 4, c.dtype = NB_F64;
        c.seed = nb_rng_next(rng);
        m = nb_gpt(&c);
    } else {
        nb_init init = NB_INIT_NORMAL_SCALE(rng, 0.5);
        nb_module *core = (s->kind == LSTM_LM ? nb_module_lstm : nb_module_rnn)(3, 4, NB_F64, init);
        m = nb_module_sequential(3, (nb_module *[]){ nb_module_embedding(V, 3, NB_F64, init), core,
                                                     nb_module_temporal_linear(4, V, NB_F64, init) });
    }
    if (!m) return NULL;
    nb_module_visit(m, redraw, rng);
    nb_module_visit(m, jitter, rng);
    *x = nb_empty(NB_I64, NB_SHAPE(2, 4));
    *y = nb_empty(NB_I64, NB_SHAPE(2, 4));
    for (int64_t i = 0; i < 8; i++) {
        nb_set(*x, i, (double)(nb_rng_next(rng) % V));
        nb_set(*y, i, (double)(nb_rng_next(rng) % V));
    }
    return m;
}

/* a tiny f64 model of the spec's kind and its data, or NULL */
static nb_model *build_model(const model_spec *s, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    static const int64_t hidden[2] = { 8, 6 };
    nb_model *m = NULL;
    int64_t classes = 0;
    switch (s->kind) {
    case TWO_LAYER:
        m = nb_two_layer_net(5, 6, classes = 4, 0.5, s->reg, NB_F64, rng);
        *x = nb_randn(NB_F64, NB_SHAPE(3, 5), rng, 1);
        break;
    case FULLY_CONNECTED: {
        nb_fc_config c = nb_fc_defaults();
        c.n_hidden = 2, c.hidden_dims = hidden, c.input_dim = 7, c.num_classes = classes = 3;
        c.keep_prob = s->dropout ? 0.6 : 1, c.norm = s->norm, c.fused_bn = s->fused;
        c.reg = s->reg, c.weight_scale = 0.5, c.dtype = NB_F64, c.seed = nb_rng_next(rng);
        m = nb_fully_connected_net(&c);
        *x = nb_randn(NB_F64, NB_SHAPE(4, 7), rng, 1);
        break;
    }
    case CONVNET: {
        nb_convnet_config c = nb_convnet_defaults();
        c.in_c = 3, c.in_h = 8, c.in_w = 8, c.num_filters = 3, c.filter_size = 3, c.hidden_dim = 7;
        c.num_classes = classes = 4, c.weight_scale = 0.3, c.reg = s->reg, c.dtype = NB_F64;
        m = nb_three_layer_convnet(&c, rng);
        *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 8, 8), rng, 1);
        break;
    }
    case RESNET: {
        nb_resnet_config c = nb_resnet_defaults();
        c.in_c = 1, c.in_h = 8, c.in_w = 8, c.num_classes = classes = 3;
        c.widths[0] = 2, c.widths[1] = 3, c.widths[2] = 4, c.blocks_per_stage = 1;
        c.fused_bn = s->fused, c.dtype = NB_F64, c.reg = s->reg;
        m = nb_resnet(&c, rng);
        *x = nb_randn(NB_F64, NB_SHAPE(3, 1, 8, 8), rng, 1);
        break;
    }
    default: break;
    }
    if (!m) return NULL;
    nb_module_visit(m->net, jitter, rng);
    int64_t rows = (*x)->shape[0];
    *y = nb_empty(NB_I64, NB_SHAPE(rows));
    for (int64_t i = 0; i < rows; i++) nb_set(*y, i, (double)(nb_rng_next(rng) % (uint64_t)classes));
    return m;
}

/* The biases of a Linear or Conv2d feeding a BatchNorm (its next sibling): the batch mean takes
 * them out again, so their gradient is exactly 0, and the relative error of an exact 0 is rounding
 * noise over its 1e-8 floor. They are checked in absolute terms instead (ZERO_BAR). */
static bool feeds_batchnorm(nb_module *m, const nb_tensor *t)
{
    for (int i = 0; i < m->n_children; i++) {
        nb_module *c = m->children[i];
        bool affine = strcmp(c->kind, "Linear") == 0 || strcmp(c->kind, "Conv2d") == 0;
        if (affine && i + 1 < m->n_children && strncmp(m->children[i + 1]->kind, "BatchNorm", 9) == 0 &&
            nb_module_tensor(c, "bias") == t)
            return true;
        if (feeds_batchnorm(c, t)) return true;
    }
    return false;
}

typedef struct { nb_model *model; int n, n_zero; nb_tensor **in, **zero; } param_split;

static int split_param(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    param_split *p = ctx;
    if (is_buffer) return 0;
    /* attention's c_attn bias holds the key bias, whose gradient is 0 by construction (a shift of every
     * key moves a query's scores alike, and softmax ignores that): checked in absolute terms too */
    static const char key_bias[] = "attn.c_attn.bias";
    const size_t len = strlen(name), key_len = sizeof key_bias - 1;
    bool absolute = p->model ? feeds_batchnorm(p->model->net, t) : len >= key_len && !strcmp(name + len - key_len, key_bias);
    if (absolute) p->zero[p->n_zero++] = t;
    else p->in[p->n++] = t;
    return 0;
}

/* ---- the table ---- */

#define ONE(...) { .n = 1, .in = { __VA_ARGS__ } }
#define TWO(a, b) { .n = 2, .in = { a, b } }
#define UNARY_CASES { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)), ONE(V0) }
#define BINARY_CASES { TWO(V(3, 4), V(3, 4)), TWO(V(3, 4), V(4)), TWO(V(3, 1), V(1, 4)), TWO(T(3, 4), S(3, 4)), \
                       TWO(V0, V(2, 3)) }
#define SCALAR_CASES(v) { { .n = 1, .in = { V(3, 4) }, .value = v }, { .n = 1, .in = { T(3, 4) }, .value = v }, \
                          { .n = 1, .in = { S(2, 3) }, .value = v } }
#define REDUCE_CASES { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3, 2)), ONE(V0) }
#define AXES_CASES { { .n = 1, .in = { V(3, 4) }, .axes = NB_AXES(1) }, \
                     { .n = 1, .in = { V(2, 3, 4) }, .axes = NB_AXES(0, 2), .arg = { 1 } }, \
                     { .n = 1, .in = { T(3, 4) }, .axes = NB_AXES(-2) }, \
                     { .n = 1, .in = { S(2, 3) }, .axes = NB_AXES(0, 1), .arg = { 1 } } }
#define IMAGE_CASES { { .n = 1, .in = { V(2, 2, 4, 4) }, .arg = { 2, 2, 0 } }, \
                      { .n = 1, .in = { V(1, 2, 5, 5) }, .arg = { 3, 1, 1 } }, \
                      { .n = 1, .in = { S(1, 3, 4, 3) }, .arg = { 2, 1, 1 } } }

static const op_entry ops[] = {
    { "nb_add", apply_add, -1, 1, SECOND, BINARY_CASES },
    { "nb_sub", apply_sub, -1, 1, SECOND, BINARY_CASES },
    { "nb_mul", apply_mul, -1, 1, SECOND, BINARY_CASES },
    { "nb_div", apply_div, 0.5, 2, SECOND, BINARY_CASES },
    { "nb_maximum", apply_maximum, -1, 1, KINKS | SECOND, BINARY_CASES },
    { "nb_minimum", apply_minimum, -1, 1, KINKS | SECOND, BINARY_CASES },
    { "nb_where", apply_where, -1, 1, SECOND,
      { { .n = 3, .in = { M(3, 4), V(3, 4), V(3, 4) } }, { .n = 3, .in = { M(3, 1), T(3, 4), V(4) } } } },
    { "nb_add_scalar", apply_add_scalar, -1, 1, SECOND, SCALAR_CASES(0.75) },
    { "nb_sub_scalar", apply_sub_scalar, -1, 1, SECOND, SCALAR_CASES(0.75) },
    { "nb_mul_scalar", apply_mul_scalar, -1, 1, SECOND, SCALAR_CASES(-1.5) },
    { "nb_div_scalar", apply_div_scalar, -1, 1, SECOND, SCALAR_CASES(-2.5) },
    { "nb_pow_scalar", apply_pow_scalar, 0.5, 2, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .value = 2.5 }, { .n = 1, .in = { T(3, 4) }, .value = -1.5 },
        { .n = 1, .in = { S(2, 3) }, .value = 3 }, { .n = 1, .in = { V(3) }, .value = 1 } } },
    { "nb_neg", apply_neg, -1, 1, SECOND, UNARY_CASES },
    { "nb_exp", apply_exp, -2, 2, SECOND, UNARY_CASES },
    { "nb_log", apply_log, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_sqrt", apply_sqrt, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_rsqrt", apply_rsqrt, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_square", apply_square, -1, 1, SECOND, UNARY_CASES },
    { "nb_abs", apply_abs, -1, 1, KINKS | SECOND, UNARY_CASES },
    { "nb_tanh", apply_tanh, -2, 2, SECOND, UNARY_CASES },
    { "nb_sigmoid", apply_sigmoid, -3, 3, SECOND, UNARY_CASES },
    { "nb_relu", apply_relu, -1, 1, KINKS | SECOND, UNARY_CASES },
    { "nb_sum", apply_sum, -1, 1, SECOND, REDUCE_CASES },
    { "nb_mean", apply_mean, -1, 1, SECOND, REDUCE_CASES },
    { "nb_max", apply_max, -1, 1, KINKS | SECOND, REDUCE_CASES },
    { "nb_sum_axes", apply_sum_axes, -1, 1, SECOND, AXES_CASES },
    { "nb_mean_axes", apply_mean_axes, -1, 1, SECOND, AXES_CASES },
    { "nb_max_axes", apply_max_axes, -1, 1, KINKS | SECOND, AXES_CASES },
    { "nb_sum_to", apply_sum_to, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .shape = NB_SHAPE(1, 4) }, { .n = 1, .in = { T(3, 4) }, .shape = NB_SHAPE(4) },
        { .n = 1, .in = { V(2, 3, 4) }, .shape = NB_SHAPE(3, 1) } } },
    { "nb_matmul", apply_matmul, -1, 1, SECOND,
      { TWO(V(3, 4), V(4, 2)), TWO(T(3, 4), T(4, 2)), TWO(V(2, 3, 4), V(4, 5)), TWO(V(2, 1, 3, 4), S(3, 4, 2)),
        TWO(V(1, 4), V(4, 3)) } },
    { "nb_matmul_bias", apply_matmul_bias, -1, 1, SECOND,
      { { .n = 3, .in = { V(3, 4), V(4, 2), V(2) } }, { .n = 3, .in = { T(2, 3, 4), T(4, 5), S(5) } } } },
    { "nb_reshape", apply_reshape, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .shape = NB_SHAPE(2, 6) }, { .n = 1, .in = { T(3, 4) }, .shape = NB_SHAPE(-1) },
        { .n = 1, .in = { S(2, 3) }, .shape = NB_SHAPE(3, 1, 2) } } },
    { "nb_permute", apply_permute, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 3, 4) }, .axes = NB_AXES(2, 0, 1) }, { .n = 1, .in = { T(2, 3, 4) }, .axes = NB_AXES(1, 2, 0) } } },
    { "nb_transpose", apply_transpose, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .arg = { 0, 1 } }, { .n = 1, .in = { S(2, 3, 2) }, .arg = { 0, -1 } } } },
    { "nb_expand", apply_expand, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 1) }, .shape = NB_SHAPE(2, 3, 4) }, { .n = 1, .in = { S(4) }, .shape = NB_SHAPE(3, 4) } } },
    { "nb_slice", apply_slice, -1, 1, SECOND,
      { { .n = 1, .in = { V(5, 4) }, .arg = { 0, 1, 5, 2 } }, { .n = 1, .in = { T(3, 6) }, .arg = { 1, 0, 6, 3 } },
        { .n = 1, .in = { V(6) }, .arg = { 0, 2, 4, 1 } } } },
    { "nb_contiguous", apply_contiguous, -1, 1, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)) } },
    { "nb_concat", apply_concat, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3), T(2, 1), S(2, 2) }, .arg = { 1 } }, { .n = 2, .in = { V(1, 3), V(2, 3) }, .arg = { 0 } } } },
    { "nb_pad", apply_pad, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 3) }, .arg = { 1, 0, 0, 0, 2, 1 }, .value = 0.5 },
        { .n = 1, .in = { T(1, 2, 3, 3) }, .arg = { 0, 0, 1, 1, 0, 0, 1, 1 } } } },
    { "nb_cast", apply_cast, -1, 1, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)) } },
    { "nb_gather", apply_gather, -1, 1, SECOND,
      { { .n = 2, .in = { V(3, 5), I(5, 3, 2) }, .arg = { 1 } }, { .n = 2, .in = { T(4, 3), I(4, 2, 3) }, .arg = { 0 } } } },
    { "nb_scatter_add", apply_scatter_add, -1, 1, SECOND,
      { { .n = 2, .in = { I(5, 3, 2), V(3, 2) }, .arg = { 1 }, .shape = NB_SHAPE(3, 5) },
        { .n = 2, .in = { I(4, 2, 3), T(2, 3) }, .arg = { 0 }, .shape = NB_SHAPE(4, 3) } } },
    { "nb_index_select", apply_index_select, -1, 1, SECOND,
      { { .n = 2, .in = { V(5, 3), I(5, 4) }, .arg = { 0 } }, { .n = 2, .in = { T(3, 5), I(5, 6) }, .arg = { 1 } } } },
    { "nb_index_add", apply_index_add, -1, 1, SECOND,
      { { .n = 2, .in = { I(5, 4), V(4, 3) }, .arg = { 0 }, .shape = NB_SHAPE(5, 3) },
        { .n = 2, .in = { I(3, 5), S(2, 5) }, .arg = { 1 }, .shape = NB_SHAPE(2, 3) } } },
    { "nb_unfold", apply_unfold, -1, 1, SECOND, IMAGE_CASES },
    { "nb_fold", apply_fold, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 8, 4) }, .arg = { 2, 2, 0, 4, 4 } }, { .n = 1, .in = { V(1, 18, 16) }, .arg = { 3, 1, 1, 4, 4 } },
        { .n = 1, .in = { T(1, 4, 9) }, .arg = { 2, 1, 0, 4, 4 } } } },
    { "nb_max_pool2d", apply_max_pool2d, -1, 1, KINKS | SECOND, IMAGE_CASES },
    { "nb_avg_pool2d", apply_avg_pool2d, -1, 1, SECOND, IMAGE_CASES },
    { "nb_log_softmax", apply_log_softmax, -2, 2, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .arg = { 1 } }, { .n = 1, .in = { V(2, 3, 4) }, .arg = { 0 } },
        { .n = 1, .in = { T(3, 4) }, .arg = { 0 } }, { .n = 1, .in = { S(2, 3, 4) }, .arg = { -2 } } } },

    /* functional layers (nn.h) and losses (loss.h) */
    { "nb_affine", apply_affine, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3, 4), V(12, 5), V(5) } }, { .n = 3, .in = { T(3, 4), T(4, 2), S(2) } } } },
    { "nb_conv2d", apply_conv2d, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 2, 5, 5), V(3, 2, 3, 3), V(3) }, .arg = { 1, 1 } },
        { .n = 3, .in = { V(1, 3, 6, 5), V(2, 3, 2, 2), V(2) }, .arg = { 2, 0 } },
        { .n = 3, .in = { T(2, 1, 4, 5), S(2, 1, 3, 3), V(2) }, .arg = { 2, 1 } } } },
    { "nb_conv_relu_pool", apply_conv_relu_pool, -1, 1, KINKS,
      { { .n = 3, .in = { V(2, 2, 6, 6), V(3, 2, 3, 3), V(3) }, .arg = { 1, 1, 2, 2, 0 } },
        { .n = 3, .in = { V(1, 3, 7, 7), V(2, 3, 3, 3), V(2) }, .arg = { 2, 1, 3, 1, 1 } } } },
    { "nb_global_avg_pool", apply_global_avg_pool, -1, 1, SECOND,
      { ONE(V(2, 3, 4, 5)), ONE(T(1, 2, 3, 4)), ONE(S(2, 2, 3, 2)) } },
    { "nb_batchnorm", apply_batchnorm, -1, 1, SECOND,
      { { .n = 3, .in = { V(4, 3), V(3), V(3) } }, { .n = 3, .in = { T(5, 4), S(4), V(4) } } } },
    { "nb_spatial_batchnorm", apply_spatial_batchnorm, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3, 3, 3), V(3), V(3) } }, { .n = 3, .in = { T(3, 2, 2, 3), V(2), S(2) } } } },
    { "nb_batchnorm_fused", apply_batchnorm_fused, -1, 1, 0,   /* once-differentiable by design */
      { { .n = 3, .in = { V(4, 3), V(3), V(3) } }, { .n = 3, .in = { T(5, 4), S(4), V(4) } } } },
    { "nb_layernorm", apply_layernorm, -1, 1, SECOND,
      { { .n = 3, .in = { V(3, 5), V(5), V(5) } }, { .n = 3, .in = { T(4, 3), S(3), V(3) } },
        { .n = 3, .in = { V(2, 3, 4), V(4), V(4) } } } },
    { "nb_layernorm_fused", apply_layernorm_fused, -1, 1, 0,   /* once-differentiable by design */
      { { .n = 3, .in = { V(3, 5), V(5), V(5) } }, { .n = 3, .in = { T(4, 3), S(3), V(3) } },
        { .n = 3, .in = { V(2, 3, 20), V(20), V(20) } } } },
    { "nb_groupnorm", apply_groupnorm, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 4, 3, 3), V(4), V(4) }, .arg = { 2 } },
        { .n = 3, .in = { V(2, 3, 2, 2), V(1, 3, 1, 1), V(3) }, .arg = { 3 } },
        { .n = 3, .in = { T(1, 4, 3, 2), V(4), S(4) }, .arg = { 1 } } } },
    { "nb_dropout", apply_dropout, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .value = 0.7, .arg = { 5 } }, { .n = 1, .in = { T(3, 4) }, .value = 0.5, .arg = { 6 } },
        { .n = 1, .in = { S(2, 3) }, .value = 1, .arg = { 7 } } } },
    { "nb_softmax_cross_entropy", apply_softmax_cross_entropy, -2, 2, SECOND,
      { TWO(V(4, 5), I(5, 4)), TWO(T(3, 4), I(4, 3)), TWO(V(1, 1), I(1, 1)) } },
    { "nb_svm_loss", apply_svm_loss, -2, 2, KINKS, { TWO(V(4, 5), I(5, 4)), TWO(T(3, 4), I(4, 3)) } },
    { "nb_l2_reg", apply_l2_reg, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .value = 0.3 }, { .n = 3, .in = { T(3, 4), S(4), V0 }, .value = 2.5 } } },
    /* sequence layers (nn.h); recurrences with weights in [-1, 1) over 3 steps */
    { "nb_softmax", apply_softmax, -2, 2, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)) } },
    { "nb_gelu", apply_gelu, -3, 3, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)) } },
    { "nb_gelu_fused", apply_gelu_fused, -3, 3, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)) } },
    { "nb_embedding", apply_embedding, -1, 1, SECOND, { TWO(V(5, 3), I(5, 2, 3)), TWO(T(4, 2), I(4, 6)) } },
    { "nb_temporal_affine", apply_temporal_affine, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3, 4), V(4, 2), V(2) } }, { .n = 3, .in = { T(2, 4, 3), T(3, 5), S(5) } } } },
    { "nb_rnn_step", apply_rnn_step, -1, 1, SECOND, { { .n = 5, .in = { V(2, 3), V(2, 4), V(3, 4), T(4, 4), V(4) } } } },
    { "nb_rnn", apply_rnn, -1, 1, SECOND, { { .n = 5, .in = { V(2, 3, 3), V(2, 4), V(3, 4), T(4, 4), V(4) } } } },
    { "nb_lstm", apply_lstm, -1, 1, SECOND, { { .n = 5, .in = { V(2, 3, 3), V(2, 2), V(3, 8), V(2, 8), S(8) } } } },
    { "nb_attention", apply_attention, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3, 4), V(2, 3, 4), V(2, 3, 2) }, .arg = { 1 } },
        { .n = 3, .in = { V(2, 2, 3, 2), T(2, 2, 3, 2), S(2, 2, 3, 2) }, .arg = { 1 } },
        { .n = 3, .in = { V(2, 3, 4), V(2, 3, 4), V(2, 3, 4) }, .arg = { 0 } } } },
    { "nb_attention_fused", apply_attention_fused, -1, 1, 0,   /* once-differentiable by design */
      { { .n = 3, .in = { V(2, 3, 4), V(2, 3, 4), V(2, 3, 2) }, .arg = { 1 } },
        { .n = 3, .in = { V(2, 2, 3, 2), T(2, 2, 3, 2), S(2, 2, 3, 2) }, .arg = { 1 } },
        { .n = 3, .in = { V(2, 3, 4), V(2, 3, 4), V(2, 3, 4) }, .arg = { 0 } } } },
    { "nb_attention_heads_fused", apply_attention_heads_fused, -1, 1, 0,   /* once-differentiable by design */
      { { .n = 1, .in = { V(2, 3, 12) }, .arg = { 1, 2 } }, { .n = 1, .in = { T(2, 4, 6) }, .arg = { 0, 1 } } } },
    { "nb_temporal_softmax_loss", apply_temporal_softmax_loss, -2, 2, SECOND,
      { { .n = 3, .in = { V(2, 3, 5), I(5, 2, 3), M(2, 3) } }, TWO(T(2, 4, 3), I(3, 2, 4)) } },
    { "nb_mse_loss", apply_mse_loss, -2, 2, SECOND, { TWO(V(4, 3), V(4, 3)), TWO(T(3, 4), S(3, 4)) } },
    /* targets drawn from the same range as the logits: the loss is linear in them */
    { "nb_bce_with_logits", apply_bce_with_logits, -3, 3, SECOND | KINKS, { TWO(V(4, 3), V(4, 3)), TWO(T(3, 4), S(3, 4)) } },
    { "nb_huber_loss", apply_huber_loss, -2, 2, KINKS,
      { { .n = 2, .in = { V(4, 5), V(4, 5) }, .value = 1 }, { .n = 2, .in = { T(3, 4), S(3, 4) }, .value = 0.5 } } },

    /* models (model.h): the loss with respect to all parameters, at a step of 1e-3 (1e-4 for the resnet).
     * Rounding noise in the loss is about 1e-16·|L|/h per element, which a 1e-8..1e-5 gradient turns into
     * a large relative error; the larger step keeps it under the bar. Relu kinks within 2h are skipped
     * (counted in the skipped column): with batchnorm every weight moves every later relu input. */
#define NET(...) { .model = { .kind = __VA_ARGS__ } }
#define WITH_REG(r, ...) NET(__VA_ARGS__), NET(__VA_ARGS__, .reg = r)
#define FC_CASES(...) { WITH_REG(3.14, FULLY_CONNECTED, __VA_ARGS__), WITH_REG(3.14, FULLY_CONNECTED, .dropout = true, __VA_ARGS__) }
    { "nb_two_layer_net", apply_model, 0, 0, MODEL | KINKS, { WITH_REG(0.7, TWO_LAYER, .eps = 1e-3) } },
    { "nb_fully_connected_net", apply_model, 0, 0, MODEL | KINKS, FC_CASES(.norm = NB_NORM_NONE, .eps = 1e-3) },
    { "nb_fully_connected_net:bn", apply_model, 0, 0, MODEL | KINKS, FC_CASES(.norm = NB_NORM_BATCH, .eps = 1e-3) },
    { "nb_fully_connected_net:bn-fused", apply_model, 0, 0, MODEL | KINKS,
      FC_CASES(.norm = NB_NORM_BATCH, .fused = true, .eps = 1e-3) },
    { "nb_fully_connected_net:ln", apply_model, 0, 0, MODEL | KINKS, FC_CASES(.norm = NB_NORM_LAYER, .eps = 1e-3) },
    { "nb_three_layer_convnet", apply_model, 0, 0, MODEL | KINKS, { WITH_REG(0.5, CONVNET, .eps = 1e-3) } },
    { "nb_resnet", apply_model, 0, 0, MODEL | KINKS, { WITH_REG(0.05, RESNET) } },
    { "nb_resnet:fused", apply_model, 0, 0, MODEL | KINKS, { WITH_REG(0.05, RESNET, .fused = true) } },
    /* sequence models: every parameter, cross-entropy over all positions (GPT) or the temporal softmax loss */
    { "nb_gpt", apply_model, 0, 0, MODEL, { NET(GPT) } },
    { "nb_module_rnn (language model)", apply_model, 0, 0, MODEL, { NET(RNN_LM) } },
    { "nb_module_lstm (language model)", apply_model, 0, 0, MODEL, { NET(LSTM_LM) } },
};
#define N_OPS (int)(sizeof ops / sizeof ops[0])

/* ---- running ---- */

typedef int (*check_fn)(nb_fn, void *, int, nb_tensor *const *, const nb_gradcheck_opts *, nb_gradcheck_result *);

/* the cases end with n == 0, or with no model for MODEL entries */
static bool is_case(const op_entry *op, const test_case *c)
{
    return op->flags & MODEL ? c->model.kind != NO_MODEL : c->n > 0;
}

/* what one case checks: apply(ctx, n, in); zero[0..n_zero) have a gradient 0 by construction */
typedef struct {
    void *ctx;
    int n, n_zero;
    nb_tensor **in, **zero;
    nb_tensor *local[MAX_INPUTS];
    model_run run;
} prepared;

static int prepare(const op_entry *op, const test_case *c, nb_rng *rng, prepared *p)
{
    memset(p, 0, sizeof *p);
    if (!(op->flags & MODEL)) {
        for (int i = 0; i < c->n; i++) p->local[i] = make_input(&c->in[i], op->lo, op->hi, rng);
        p->ctx = (void *)c, p->n = c->n, p->in = p->local;
        return 0;
    }
    const bool sequence = c->model.kind >= GPT;
    nb_module *net;
    if (sequence) {
        net = p->run.sequence = build_sequence_model(&c->model, rng, &p->run.x, &p->run.y);
    } else {
        p->run.model = build_model(&c->model, rng, &p->run.x, &p->run.y);
        net = p->run.model ? p->run.model->net : NULL;
    }
    if (!net) return -1;
    size_t count = (size_t)nb_module_count(net, false);
    param_split split = { p->run.model, 0, 0, calloc(count, sizeof(nb_tensor *)), calloc(count, sizeof(nb_tensor *)) };
    p->ctx = &p->run, p->in = split.in, p->zero = split.zero;
    if (!split.in || !split.zero) return -1;
    nb_module_visit(net, split_param, &split);
    p->n = split.n, p->n_zero = split.n_zero;
    return 0;
}

static void release(prepared *p)
{
    if (!p->run.model && !p->run.sequence) return;
    nb_model_free(p->run.model);
    nb_module_free(p->run.sequence);
    free(p->in);
    free(p->zero);
}

static double larger(double a, double b) { return a > b ? a : b; }

/* The parameters whose gradient is 0 by construction: the analytic gradient and its difference from
 * the numerical one must both be within ZERO_BAR. 1 pass, 0 fail, -1 error; *worst is the larger. */
static int check_zero(const op_entry *op, prepared *p, const nb_gradcheck_opts *opts, int64_t *checked, double *worst)
{
    nb_gradcheck_result r;
    int rc = nb_gradcheck(op->apply, p->ctx, p->n_zero, p->zero, opts, &r);
    if (rc < 0) return -1;
    double analytic = 0;   /* the largest analytic gradient of the tensors that are 0 throughout */
    if (p->run.model) {
        nb_model_seed(p->run.model, 1234);
        if (!nb_model_loss(p->run.model, p->run.x, p->run.y)) return -1;   /* the analytic gradients, in ->grad */
        for (int i = 0; i < p->n_zero; i++)
            for (int64_t k = 0; k < nb_numel(p->zero[i]); k++) analytic = larger(analytic, fabs(nb_get(p->zero[i]->grad, k)));
    }
    *checked += r.checked;
    *worst = larger(*worst, larger(analytic, r.max_abs_error));
    return rc == 1 && r.max_abs_error <= ZERO_BAR && analytic <= ZERO_BAR ? 1 : 0;
}

/* every case of one op under one check (first or second order); prints the row; true when it passes */
static bool check_op(const op_entry *op, bool second, uint64_t seed)
{
    check_fn check = second ? nb_gradgradcheck : nb_gradcheck;
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    opts.skip_kinks = op->flags & KINKS;
    opts.seed = seed;
    const double bar = op->flags & MODEL ? MODEL_BAR : BAR;
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int cases = 0;
    int64_t checked = 0, skipped = 0, zero_checked = 0;
    double worst = 0, zero_worst = 0;
    bool pass = true;
    char problems[1024] = "";
    for (const test_case *c = op->cases; c < op->cases + MAX_CASES && is_case(op, c); c++, cases++) {
        prepared p;
        nb_gradcheck_result r = { 0 };
        int rc = prepare(op, c, &rng, &p);
        opts.eps = c->model.eps > 0 ? c->model.eps : nb_gradcheck_defaults().eps;
        if (rc == 0) rc = check(op->apply, p.ctx, p.n, p.in, &opts, &r);
        checked += r.checked;
        skipped += r.skipped;
        if (!(r.max_rel_error <= worst)) worst = r.max_rel_error;   /* NaN wins */
        const char *problem = rc < 0 ? nb_last_error() : rc == 0 ? r.first_failure
                            : !(r.max_rel_error < bar)    ? "relative error above the bar" : NULL;
        if (!problem && p.n_zero > 0) {
            rc = check_zero(op, &p, &opts, &zero_checked, &zero_worst);
            problem = rc < 0 ? nb_last_error() : rc == 0 ? "a bias before batchnorm: gradient not 0" : NULL;
        }
        if (problem) {
            pass = false;
            size_t len = strlen(problems);
            snprintf(problems + len, sizeof problems - len, "    case %d: %s\n", cases, problem);
        }
        release(&p);
        nb_scope_reset(NULL);
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s", op->name, second ? " (2nd)" : "");
    printf("%-32s %5d %8lld %8lld %14.2e  %s\n", name, cases, (long long)checked, (long long)skipped, worst,
           pass ? "PASS" : "FAIL");
    const bool sequence = op->flags & MODEL && op->cases[0].model.kind >= GPT;
    if (zero_checked > 0 && !sequence)
        printf("    and %lld elements of biases before batchnorm, gradient 0 by construction: |analytic|, "
               "|analytic - numeric| <= %.1e\n",
               (long long)zero_checked, zero_worst);
    if (zero_checked > 0 && sequence)
        printf("    and %lld elements of attention biases (the keys' part has a gradient 0 by construction), in "
               "absolute terms: |analytic - numeric| <= %.1e\n",
               (long long)zero_checked, zero_worst);
    fputs(problems, stdout);
    return pass;
}

static const op_entry *find_op(const char *name)
{
    for (int i = 0; i < N_OPS; i++)
        if (strcmp(ops[i].name, name) == 0 || strcmp(ops[i].name + 3, name) == 0) return &ops[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nabla-gradcheck (--all | --op NAME | --list) [--seed N]\n"
            "Checks analytic gradients of nabla's ops, layers, losses and models against float64 central\n"
            "differences (models: with respect to all their parameters).\n"
            "  -a, --all        check every entry (and second derivatives where marked)\n"
            "  -o, --op NAME    check one entry, e.g. nb_tanh, tanh or resnet:fused\n"
            "  -l, --list       list the ops\n"
            "  -s, --seed N     seed of the random inputs and projections (default 1)\n"
            "  -h, --help       this text\n"
            "Exit status: 0 when every check passes (worst relative error < %g; < 1e-6 for models), 1 otherwise,\n"
            "2 on bad usage.\n",
            BAR);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },      { "op", required_argument, NULL, 'o' },
        { "list", no_argument, NULL, 'l' },     { "seed", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
    };
    bool all = false, list = false;
    const op_entry *only = NULL;
    uint64_t seed = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "ao:ls:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': all = true; break;
        case 'l': list = true; break;
        case 'o':
            if (!(only = find_op(optarg))) {
                fprintf(stderr, "nabla-gradcheck: unknown op '%s' (see --list)\n", optarg);
                return 2;
            }
            break;
        case 's': {
            char *end;
            seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "nabla-gradcheck: --seed needs a number, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (!all && !only && !list)) {
        usage(stderr);
        return 2;
    }
    if (list) {
        for (int i = 0; i < N_OPS; i++)
            printf("%s%s\n", ops[i].name, ops[i].flags & SECOND ? "  (and 2nd)" : "");
        if (!all && !only) return 0;
    }
    printf("%-32s %5s %8s %8s %14s  %s\n", "op", "cases", "checked", "skipped", "worst rel err", "result");
    int passed = 0, failed = 0;
    for (int i = 0; i < N_OPS; i++) {
        const op_entry *op = &ops[i];
        if (only && op != only) continue;
        for (int order = 0; order < (op->flags & SECOND ? 2 : 1); order++) {
            if (check_op(op, order == 1, seed)) passed++;
            else failed++;
        }
    }
    printf("gradcheck: %d passed, %d failed\n", passed, failed);
    nb_cleanup();
    return failed ? 1 : 0;
}
