/* Sequence layers (nn.h, loss.h): each against a plain loop written here from the formula, then
 * gradient-checked in float64, first and second order; cs231n's sanity values of the temporal
 * softmax loss; the causal mask; layernorm over the last axis of any rank. */
#include "nbtest.h"

#include <stdio.h>
#include <unistd.h>

static double sigmoid(double v) { return 1 / (1 + exp(-v)); }

/* Σ_k a[i,k]·b[k,j] over plain arrays read with nb_get (row-major a:[n,k], b:[k,m]) */
static double dot(const nb_tensor *a, int64_t i, const nb_tensor *b, int64_t j)
{
    const int64_t k = a->shape[1], m = b->shape[1];
    double s = 0;
    for (int64_t p = 0; p < k; p++) s += nb_get(a, i * k + p) * nb_get(b, p * m + j);
    return s;
}

/* ---- values against loops ---- */

START_TEST(embedding_and_temporal_affine)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *w = nbt_input(&rng, NB_SHAPE(5, 3), -1, 1);
    nb_tensor *idx = nb_from_data(NB_I64, NB_SHAPE(2, 3), (int64_t[]){ 4, 0, 4, 1, 2, 4 });
    nb_tensor *e = nb_embedding(w, idx);
    nbt_assert_shape(e, 2, 3, 3);
    for (int64_t p = 0; p < 6; p++)
        for (int64_t d = 0; d < 3; d++) ck_assert(nb_get(e, p * 3 + d) == nb_get(w, (int64_t)nb_get(idx, p) * 3 + d));
    /* a repeated id sums its gradients: id 4 appears three times */
    ck_assert_int_eq(nb_backward(nb_sum(e)), 0);
    nbt_assert_values(w->grad, ((double[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3, 3, 3 }), 0);

    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1), *aw = nbt_input(&rng, NB_SHAPE(4, 5), -1, 1);
    nb_tensor *ab = nbt_input(&rng, NB_SHAPE(5), -1, 1);
    nb_tensor *y = nb_temporal_affine(x, aw, ab);
    nbt_assert_shape(y, 2, 3, 5);
    nb_tensor *rows = nb_reshape(x, NB_SHAPE(6, 4));
    for (int64_t r = 0; r < 6; r++)
        for (int64_t j = 0; j < 5; j++)
            ck_assert_double_eq_tol(nb_get(y, r * 5 + j), dot(rows, r, aw, j) + nb_get(ab, j), 1e-14);
}
END_TEST

START_TEST(rnn_and_lstm_steps)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    enum { N = 3, D = 4, H = 5 };
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(N, D), -1, 1), *h = nbt_input(&rng, NB_SHAPE(N, H), -1, 1);
    nb_tensor *wx = nbt_input(&rng, NB_SHAPE(D, H), -0.5, 0.5), *wh = nbt_input(&rng, NB_SHAPE(H, H), -0.5, 0.5);
    nb_tensor *b = nbt_input(&rng, NB_SHAPE(H), -0.5, 0.5);
    nb_tensor *next = nb_rnn_step(x, h, wx, wh, b);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < H; j++)
            ck_assert_double_eq_tol(nb_get(next, i * H + j), tanh(dot(x, i, wx, j) + dot(h, i, wh, j) + nb_get(b, j)), 1e-14);

    nb_tensor *c = nbt_input(&rng, NB_SHAPE(N, H), -1, 1);
    nb_tensor *lwx = nbt_input(&rng, NB_SHAPE(D, 4 * H), -0.5, 0.5), *lwh = nbt_input(&rng, NB_SHAPE(H, 4 * H), -0.5, 0.5);
    nb_tensor *lb = nbt_input(&rng, NB_SHAPE(4 * H), -0.5, 0.5), *hn, *cn;
    ck_assert_int_eq(nb_lstm_step(x, h, c, lwx, lwh, lb, &hn, &cn), 0);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < H; j++) {
            double a[4];
            for (int g = 0; g < 4; g++) a[g] = dot(x, i, lwx, g * H + j) + dot(h, i, lwh, g * H + j) + nb_get(lb, g * H + j);
            double cell = sigmoid(a[1]) * nb_get(c, i * H + j) + sigmoid(a[0]) * tanh(a[3]);
            ck_assert_double_eq_tol(nb_get(cn, i * H + j), cell, 1e-14);
            ck_assert_double_eq_tol(nb_get(hn, i * H + j), sigmoid(a[2]) * tanh(cell), 1e-14);
        }
    /* the unrolled RNN is the steps in a row */
    nb_tensor *xs = nbt_input(&rng, NB_SHAPE(N, 3, D), -1, 1);
    nb_tensor *hs = nb_rnn(xs, h, wx, wh, b);
    nbt_assert_shape(hs, N, 3, H);
    nb_tensor *state = h;
    for (int64_t t = 0; t < 3; t++) {
        state = nb_rnn_step(nb_reshape(nb_slice(xs, 1, t, t + 1, 1), NB_SHAPE(N, D)), state, wx, wh, b);
        nbt_assert_same(nb_reshape(nb_slice(hs, 1, t, t + 1, 1), NB_SHAPE(N, H)), state, 0);
    }
}
END_TEST

START_TEST(attention_against_loops)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    enum { B = 2, T = 4, D = 3 };
    nb_tensor *q = nbt_input(&rng, NB_SHAPE(B, T, D), -1, 1), *k = nbt_input(&rng, NB_SHAPE(B, T, D), -1, 1);
    nb_tensor *v = nbt_input(&rng, NB_SHAPE(B, T, D), -1, 1);
    for (int causal = 0; causal < 2; causal++) {
        nb_tensor *y = nb_attention(q, k, v, causal);
        nbt_assert_shape(y, B, T, D);
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t i = 0; i < T; i++) {
                double s[T], max = -INFINITY, total = 0;
                const int64_t seen = causal ? i + 1 : T;
                for (int64_t j = 0; j < seen; j++) {
                    s[j] = 0;
                    for (int64_t d = 0; d < D; d++) s[j] += nb_get(q, (bi * T + i) * D + d) * nb_get(k, (bi * T + j) * D + d);
                    s[j] /= sqrt(D);
                    max = fmax(max, s[j]);
                }
                for (int64_t j = 0; j < seen; j++) total += s[j] = exp(s[j] - max);
                for (int64_t d = 0; d < D; d++) {
                    double want = 0;
                    for (int64_t j = 0; j < seen; j++) want += s[j] / total * nb_get(v, (bi * T + j) * D + d);
                    ck_assert_double_eq_tol(nb_get(y, (bi * T + i) * D + d), want, 1e-14);
                }
            }
    }
    nb_tensor *m = nb_causal_mask(NB_F64, 3);
    nbt_assert_values(m, ((double[]){ 1, 0, 0, 1, 1, 0, 1, 1, 1 }), 0);
    /* softmax rows sum to 1, and equal exp(log_softmax) */
    nb_tensor *p = nb_softmax(q, -1);
    nbt_assert_same(p, nb_exp(nb_log_softmax(q, -1)), 1e-15);
    nbt_assert_same(nb_softmax(nb_cast(q, NB_F32), 1), nb_exp(nb_log_softmax(nb_cast(q, NB_F32), 1)), 1e-6);
    nbt_assert_values(nb_sum_axes(p, NB_AXES(-1), false), ((double[]){ 1, 1, 1, 1, 1, 1, 1, 1 }), 1e-15);
}
END_TEST

START_TEST(gelu_and_layernorm_any_rank)
{
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(4), (double[]){ -3, -0.5, 0, 2 });
    nb_tensor *y = nb_gelu(x);
    for (int64_t i = 0; i < 4; i++) {
        double v = nb_get(x, i);
        ck_assert_double_eq_tol(nb_get(y, i), 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-15);
    }
    /* [2,3,4] normalised over its last axis = the [6,4] rows */
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_tensor *x3 = nbt_input(&rng, NB_SHAPE(2, 3, 4), -2, 2), *g = nbt_input(&rng, NB_SHAPE(4), 0.5, 1.5);
    nb_tensor *be = nbt_input(&rng, NB_SHAPE(4), -1, 1);
    nbt_assert_same(nb_layernorm(x3, g, be, 1e-5), nb_layernorm(nb_reshape(x3, NB_SHAPE(6, 4)), g, be, 1e-5), 0);
}
END_TEST

START_TEST(temporal_softmax_loss_sanity)
{
    /* cs231n's check: small random scores over V = 10 classes give about log(10) per counted step */
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    const struct { int64_t n, t; double keep, want; } cases[] = { { 100, 1, 1.0, 2.3 }, { 100, 10, 1.0, 23 }, { 5000, 10, 0.1, 2.3 } };
    for (int c = 0; c < 3; c++) {
        const int64_t N = cases[c].n, T = cases[c].t;
        nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(N, T, 10), &rng, 1e-3);
        nb_tensor *y = nb_empty(NB_I64, NB_SHAPE(N, T)), *mask = nb_bernoulli(NB_F64, NB_SHAPE(N, T), &rng, cases[c].keep);
        for (int64_t i = 0; i < N * T; i++) nb_set(y, i, (double)(nb_rng_next(&rng) % 10));
        double loss = nb_item(nb_temporal_softmax_loss(x, y, mask));
        ck_assert_msg(fabs(loss - cases[c].want) < 0.05 * cases[c].want, "case %d: loss %g, expected about %g", c, loss,
                      cases[c].want);
    }
    /* an i64 mask, and errors */
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3, 4));
    nb_tensor *y = nb_from_data(NB_I64, NB_SHAPE(2, 3), (int64_t[]){ 0, 1, 2, 3, 0, 1 });
    nb_tensor *mask = nb_from_data(NB_I64, NB_SHAPE(2, 3), (int64_t[]){ 1, 1, 0, 1, 0, 0 });
    ck_assert_double_eq_tol(nb_item(nb_temporal_softmax_loss(x, y, mask)), 3 * log(4) / 2, 1e-15);
    ck_assert_double_eq_tol(nb_item(nb_temporal_softmax_loss(x, y, NULL)), 6 * log(4) / 2, 1e-15);
    nbt_assert_error(nb_temporal_softmax_loss(x, nb_zeros(NB_I64, NB_SHAPE(2, 2)), NULL),
                     "nb_temporal_softmax_loss: x [2,3,4] and y [2,2]: expected x [N,T,V] and y [N,T]");
    nbt_assert_error(nb_temporal_softmax_loss(x, nb_full(NB_I64, NB_SHAPE(2, 3), 4), NULL),
                     "nb_temporal_softmax_loss: label 4 at position 0 is outside [0, 4)");
}
END_TEST

/* ---- gradients ---- */

static nb_tensor *affine_fn(void *c, int n, nb_tensor *const *in) { return nb_temporal_affine(in[0], in[1], in[2]); }
static nb_tensor *embedding_fn(void *c, int n, nb_tensor *const *in) { return nb_embedding(in[0], c); }
static nb_tensor *rnn_fn(void *c, int n, nb_tensor *const *in) { return nb_rnn(in[0], in[1], in[2], in[3], in[4]); }
static nb_tensor *lstm_fn(void *c, int n, nb_tensor *const *in) { return nb_lstm(in[0], in[1], in[2], in[3], in[4]); }
static nb_tensor *attention_fn(void *c, int n, nb_tensor *const *in) { return nb_attention(in[0], in[1], in[2], c != NULL); }
static nb_tensor *gelu_fn(void *c, int n, nb_tensor *const *in) { return nb_gelu(in[0]); }
static nb_tensor *gelu_fused_fn(void *c, int n, nb_tensor *const *in) { return nb_gelu_fused(in[0]); }

static nb_tensor *softmax_fn(void *c, int n, nb_tensor *const *in) { return nb_softmax(in[0], 1); }
static nb_tensor *layernorm_fn(void *c, int n, nb_tensor *const *in) { return nb_layernorm(in[0], in[1], in[2], 1e-5); }
static nb_tensor *attention_fused_fn(void *c, int n, nb_tensor *const *in) { return nb_attention_fused(in[0], in[1], in[2], c != NULL); }
static nb_tensor *layernorm_fused_fn(void *c, int n, nb_tensor *const *in) { return nb_layernorm_fused(in[0], in[1], in[2], 1e-5); }
static nb_tensor *heads_fused_fn(void *c, int n, nb_tensor *const *in) { return nb_attention_heads_fused(in[0], 2, c != NULL); }
/* the composed attention over 2 heads sliced from qkv [B,T,3C], merged back to [B,T,C] */
static nb_tensor *heads_composed_fn(void *c, int n, nb_tensor *const *in)
{
    const int64_t B = in[0]->shape[0], T = in[0]->shape[1], C = in[0]->shape[2] / 3;
    nb_tensor *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = nb_permute(nb_reshape(nb_slice(in[0], 2, i * C, (i + 1) * C, 1), NB_SHAPE(B, T, 2, C / 2)), NB_AXES(0, 2, 1, 3));
    return nb_reshape(nb_contiguous(nb_permute(nb_attention(h[0], h[1], h[2], c != NULL), NB_AXES(0, 2, 1, 3))), NB_SHAPE(B, T, C));
}
static nb_tensor *tsl_fn(void *c, int n, nb_tensor *const *in)
{
    nb_tensor *const *ym = c;
    return nb_temporal_softmax_loss(in[0], ym[0], ym[1]);
}

START_TEST(sequence_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    nb_tensor *aff[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4, 2), -1, 1),
                          nbt_input(&rng, NB_SHAPE(2), -1, 1) };
    nbt_gradcheck(affine_fn, NULL, 3, aff, 1e-7, false);
    nbt_gradgradcheck(affine_fn, NULL, 3, aff, 1e-7);
    nb_tensor *table = nbt_input(&rng, NB_SHAPE(5, 3), -1, 1);
    nb_tensor *ids = nb_from_data(NB_I64, NB_SHAPE(2, 2), (int64_t[]){ 1, 4, 1, 0 });
    nbt_gradcheck(embedding_fn, ids, 1, &table, 1e-7, false);
    enum { N = 2, T = 3, D = 3, H = 4 };
    nb_tensor *rnn[5] = { nbt_input(&rng, NB_SHAPE(N, T, D), -1, 1), nbt_input(&rng, NB_SHAPE(N, H), -1, 1),
                          nbt_input(&rng, NB_SHAPE(D, H), -0.5, 0.5), nbt_input(&rng, NB_SHAPE(H, H), -0.5, 0.5),
                          nbt_input(&rng, NB_SHAPE(H), -0.5, 0.5) };
    nbt_gradcheck(rnn_fn, NULL, 5, rnn, 1e-7, false);
    nbt_gradgradcheck(rnn_fn, NULL, 5, rnn, 1e-6);
    nb_tensor *lstm[5] = { rnn[0], rnn[1], nbt_input(&rng, NB_SHAPE(D, 4 * H), -0.5, 0.5),
                           nbt_input(&rng, NB_SHAPE(H, 4 * H), -0.5, 0.5), nbt_input(&rng, NB_SHAPE(4 * H), -0.5, 0.5) };
    nbt_gradcheck(lstm_fn, NULL, 5, lstm, 1e-7, false);
    nbt_gradgradcheck(lstm_fn, NULL, 5, lstm, 1e-6);
    /* attention over [B,H,T,D] heads taken as strided views of one [B,T,3·H·D] tensor, as a model does */
    nb_tensor *qkv = nbt_input(&rng, NB_SHAPE(2, 3, 3 * 2 * 2), -1, 1);
    nb_tensor *heads[3];
    for (int i = 0; i < 3; i++) {
        heads[i] = nb_permute(nb_reshape(nb_slice(nb_detach(qkv), 2, i * 4, (i + 1) * 4, 1), NB_SHAPE(2, 3, 2, 2)),
                              NB_AXES(0, 2, 1, 3));
        nb_set_requires_grad(heads[i], true);
    }
    ck_assert(!nb_is_contiguous(heads[0]));
    nbt_gradcheck(attention_fn, (void *)1, 3, heads, 1e-7, false);
    nbt_gradgradcheck(attention_fn, (void *)1, 3, heads, 1e-6);
    nbt_gradcheck(attention_fn, NULL, 3, heads, 1e-7, false);
    nb_tensor *gx = nbt_input(&rng, NB_SHAPE(3, 4), -3, 3);
    nbt_gradcheck(gelu_fn, NULL, 1, &gx, 1e-7, false);
    nbt_gradgradcheck(gelu_fn, NULL, 1, &gx, 1e-7);
    /* the fused GELU: the composed one's values and gradients, to rounding; second order */
    nbt_assert_same(nb_gelu_fused(gx), nb_gelu(gx), 1e-15);
    nb_tensor *g1 = NULL, *g2 = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(nb_gelu_fused(gx)), NULL, 1, &gx, &g1, false), 0);
    ck_assert_int_eq(nb_grad(nb_sum(nb_gelu(gx)), NULL, 1, &gx, &g2, false), 0);
    nbt_assert_same(g1, g2, 1e-14);
    nb_tensor *x32 = nb_cast(gx, NB_F32);
    nbt_assert_same(nb_gelu_fused(x32), nb_gelu(x32), 1e-6);
    /* float rows take their own kernel (x·σ(2u) with a vectorizable exponential): over [-12, 12] in 4097
     * steps and at large, tiny and zero inputs, within 4 float roundings (plus u's, amplified by
     * e^(2u)) of x/(1 + e^(−2u)) in long double (double's 0.5·x·(1 + tanh u) loses the tail below x ≈ −6 to 1 + tanh u's cancellation),
     * or 1e-35 where float underflows; its gradient within 1e-5 of the double kernel's */
    enum { STEPS = 4097 + 6 };
    double xs[STEPS];
    for (int i = 0; i < 4097; i++) xs[i] = -12 + 24.0 * i / 4096;
    const double extra[6] = { 0, 1e-30, -1e-30, 1e20, -1e20, 3e-3 };
    for (int i = 0; i < 6; i++) xs[4097 + i] = (float)extra[i];
    nb_tensor *xf = nb_from_doubles(NB_F32, NB_SHAPE(STEPS), xs), *xd = nb_from_doubles(NB_F64, NB_SHAPE(STEPS), xs);
    nb_set_requires_grad(xf, true);
    nb_set_requires_grad(xd, true);
    nb_tensor *yf = nb_gelu_fused(xf), *gf = NULL, *gd = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(yf), NULL, 1, &xf, &gf, false), 0);
    ck_assert_int_eq(nb_grad(nb_sum(nb_gelu_fused(xd)), NULL, 1, &xd, &gd, false), 0);
    for (int i = 0; i < STEPS; i++) {
        const long double x = xs[i], u = 0.7978845608028654L * (x + 0.044715L * x * x * x);
        const double want = (double)(x / (1 + expl(-2 * u))), got = nb_get(yf, i);
        const double roundings = 4 + 6 * fabs((double)u);   /* e^(2u) carries u's own rounding, times 2|u| */
        ck_assert_msg(fabs(got - want) <= roundings * 6e-8 * fabs(want) + 1e-35, "gelu(%g): %.9g, want %.17g", xs[i], got, want);
        ck_assert_msg(fabs(nb_get(gf, i) - nb_get(gd, i)) <= 1e-5, "gelu'(%g): %.9g, double %.17g", xs[i],
                      nb_get(gf, i), nb_get(gd, i));
    }
    nbt_gradcheck(gelu_fused_fn, NULL, 1, &gx, 1e-7, false);
    nbt_gradgradcheck(gelu_fused_fn, NULL, 1, &gx, 1e-7);
    nbt_gradcheck(softmax_fn, NULL, 1, &gx, 1e-7, false);
    nbt_gradgradcheck(softmax_fn, NULL, 1, &gx, 1e-7);
    nb_tensor *ln[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 4), -2, 2), nbt_input(&rng, NB_SHAPE(4), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nbt_gradcheck(layernorm_fn, NULL, 3, ln, 1e-6, false);
    nbt_gradgradcheck(layernorm_fn, NULL, 3, ln, 1e-5);
    nb_tensor *scores = nbt_input(&rng, NB_SHAPE(2, 3, 5), -2, 2);
    nb_tensor *ym[2] = { nb_from_data(NB_I64, NB_SHAPE(2, 3), (int64_t[]){ 0, 4, 2, 1, 1, 3 }),
                         nb_from_doubles(NB_F64, NB_SHAPE(2, 3), (double[]){ 1, 1, 0, 1, 0, 1 }) };
    nbt_gradcheck(tsl_fn, ym, 1, &scores, 1e-7, false);
    nbt_gradgradcheck(tsl_fn, ym, 1, &scores, 1e-7);
}
END_TEST

/* ---- fused kernels against the composed ops ---- */

/* f(in) and the gradients of Σ f(in)·w (w random) with fused and composed: equal within tol */
static void assert_fused_matches(nb_fn fused, nb_fn composed, void *ctx, int n, nb_tensor *const *in, double tol)
{
    nb_tensor *a = fused(ctx, n, in), *b = composed(ctx, n, in);
    ck_assert_msg(a && b, "%s", nb_last_error());
    nbt_assert_same(nb_contiguous(a), b, tol);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *w = nb_randn(a->dtype, nb_shape_of(a), &rng, 1), *ga[4], *gb[4];
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul(a, w)), NULL, n, in, ga, false), 0);
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul(b, w)), NULL, n, in, gb, false), 0);
    for (int i = 0; i < n; i++) nbt_assert_same(nb_contiguous(ga[i]), nb_contiguous(gb[i]), tol);
}

/* the second order is refused by name, with or without create_graph */
static void assert_once_differentiable(nb_fn f, void *ctx, int n, nb_tensor *const *in, const char *backward_op)
{
    nb_tensor *y = f(ctx, n, in), *dx = NULL, *ddx = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(nb_square(y)), NULL, 1, in, &dx, true), 0);
    ck_assert(dx->requires_grad);
    char expected[160];
    snprintf(expected, sizeof expected, "nb_grad: %s cannot be differentiated (it is once-differentiable)", backward_op);
    nb_clear_error();
    ck_assert_int_eq(nb_grad(nb_sum(nb_square(dx)), NULL, 1, in, &ddx, true), -1);
    ck_assert_str_eq(nb_last_error(), expected);
}

START_TEST(fused_attention_and_layernorm)
{
    nb_rng rng;
    nb_rng_seed(&rng, 31);
    /* attention over [B,H,T,D] heads cut from one [B,T,3·H·D] tensor, as the GPT does, and over
     * contiguous [B,T,D] with a different value width E */
    const int64_t B = 2, T = 7, H = 2, D = 3;
    nb_tensor *qkv = nb_randn(NB_F64, NB_SHAPE(B, T, 3 * H * D), &rng, 1.5), *heads[3];
    for (int i = 0; i < 3; i++) {
        heads[i] = nb_permute(nb_reshape(nb_slice(qkv, 2, i * H * D, (i + 1) * H * D, 1), NB_SHAPE(B, T, H, D)),
                              NB_AXES(0, 2, 1, 3));
        nb_set_requires_grad(heads[i], true);
    }
    nb_tensor *plain[3] = { nbt_input(&rng, NB_SHAPE(3, 5, 4), -2, 2), nbt_input(&rng, NB_SHAPE(3, 5, 4), -2, 2),
                            nbt_input(&rng, NB_SHAPE(3, 5, 6), -2, 2) };
    for (int causal = 0; causal < 2; causal++) {
        void *c = causal ? (void *)1 : NULL;
        assert_fused_matches(attention_fused_fn, attention_fn, c, 3, heads, 1e-12);
        assert_fused_matches(attention_fused_fn, attention_fn, c, 3, plain, 1e-12);
        nbt_gradcheck(attention_fused_fn, c, 3, heads, 1e-7, false);
        nbt_gradcheck(attention_fused_fn, c, 3, plain, 1e-7, false);
    }
    /* the heads come back laid out [B,T,H,E]: merging them is a view */
    nb_tensor *y = nb_attention_fused(heads[0], heads[1], heads[2], true);
    ck_assert(nb_is_contiguous(nb_permute(y, NB_AXES(0, 2, 1, 3))));
    /* float32 to rounding: the row kernel's exp is a polynomial, not libm's */
    nb_tensor *h32[3];
    for (int i = 0; i < 3; i++) h32[i] = nb_cast(nb_detach(heads[i]), NB_F32);
    nbt_assert_same(nb_contiguous(nb_attention_fused(h32[0], h32[1], h32[2], true)),
                    nb_attention(h32[0], h32[1], h32[2], true), 1e-6);
    assert_once_differentiable(attention_fused_fn, (void *)1, 3, heads, "nb_attention_fused_backward");
    /* the same heads taken by the op from the [B,T,3C] projection itself */
    nb_set_requires_grad(qkv, true);
    for (int causal = 0; causal < 2; causal++) {
        void *c = causal ? (void *)1 : NULL;
        assert_fused_matches(heads_fused_fn, heads_composed_fn, c, 1, &qkv, 1e-12);
        nbt_gradcheck(heads_fused_fn, c, 1, &qkv, 1e-6, false);   /* values of N(0, 1.5²): sharper softmaxes */
    }
    /* heads long enough for the register tiles' full tiles (8 rows, 16 doubles or 32 floats) and their
     * edges: T 40, D 16 and 48 */
    for (int w = 0; w < 2; w++) {
        nb_tensor *big = nbt_input(&rng, NB_SHAPE(2, 40, 3 * 2 * (w ? 48 : 16)), -1, 1);
        assert_fused_matches(heads_fused_fn, heads_composed_fn, (void *)1, 1, &big, 1e-12);
        assert_fused_matches(heads_fused_fn, heads_composed_fn, NULL, 1, &big, 1e-12);
        nb_tensor *big32 = nb_cast(nb_detach(big), NB_F32);
        nbt_assert_same(heads_fused_fn((void *)1, 1, &big32), heads_composed_fn((void *)1, 1, &big32), 1e-5);
    }
    nb_tensor *qkv_t = nb_transpose(nbt_input(&rng, NB_SHAPE(T, B, 6 * D), -1, 1), 0, 1);   /* a strided projection */
    assert_fused_matches(heads_fused_fn, heads_composed_fn, (void *)1, 1, &qkv_t, 1e-12);
    assert_once_differentiable(heads_fused_fn, (void *)1, 1, &qkv, "nb_attention_heads_fused_backward");
    nbt_assert_error(nb_attention_heads_fused(qkv, 4, true),
                     "nb_attention_heads_fused: qkv [2,7,18] and 4 heads: expected [B,T,3C] with C a multiple of the heads");
    nbt_assert_error(nb_attention_heads_fused(plain[0], 1, true),
                     "nb_attention_heads_fused: qkv [3,5,4] and 1 heads: expected [B,T,3C] with C a multiple of the heads");
    nbt_assert_error(nb_attention_heads_fused(NULL, 1, true), "nb_attention_heads_fused: NULL input");

    /* layernorm over the last axis: rows of a 3-D x, a strided x, rows longer than the kernel's lanes */
    nb_tensor *ln[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 4), -2, 2), nbt_input(&rng, NB_SHAPE(4), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nb_tensor *wide[3] = { nbt_input(&rng, NB_SHAPE(5, 37), -2, 2), nbt_input(&rng, NB_SHAPE(37), 0.5, 1.5),
                           nbt_input(&rng, NB_SHAPE(37), -1, 1) };
    nb_tensor *strided[3] = { nb_transpose(nbt_input(&rng, NB_SHAPE(4, 3), -2, 2), 0, 1), ln[1], ln[2] };
    assert_fused_matches(layernorm_fused_fn, layernorm_fn, NULL, 3, ln, 1e-12);
    assert_fused_matches(layernorm_fused_fn, layernorm_fn, NULL, 3, wide, 1e-12);
    assert_fused_matches(layernorm_fused_fn, layernorm_fn, NULL, 3, strided, 1e-12);
    nbt_gradcheck(layernorm_fused_fn, NULL, 3, ln, 1e-6, false);
    nbt_gradcheck(layernorm_fused_fn, NULL, 3, wide, 1e-6, false);
    nb_tensor *x32 = nb_cast(nb_detach(wide[0]), NB_F32), *g32 = nb_cast(nb_detach(wide[1]), NB_F32),
              *b32 = nb_cast(nb_detach(wide[2]), NB_F32);
    nbt_assert_same(nb_layernorm_fused(x32, g32, b32, 1e-5), nb_layernorm(x32, g32, b32, 1e-5), 1e-5);
    assert_once_differentiable(layernorm_fused_fn, NULL, 3, ln, "nb_layernorm_fused_backward");

    nbt_assert_error(nb_attention_fused(plain[0], plain[1], nb_zeros(NB_F64, NB_SHAPE(3, 4, 6)), true),
                     "nb_attention_fused: q [3,5,4], k [3,5,4] and v [3,4,6]: expected q and k [..,T,D] and v [..,T,E] with the same leading axes");
    nbt_assert_error(nb_attention_fused(plain[0], h32[1], plain[2], false), "nb_attention_fused: dtypes differ: f64 [3,5,4] and f32 [2,2,7,3]");
    nbt_assert_error(nb_attention_fused(NULL, plain[1], plain[2], false), "nb_attention_fused: NULL input");
    nbt_assert_error(nb_layernorm_fused(ln[0], wide[1], ln[2], 1e-5), "nb_layernorm_fused: gamma [37] and beta [4] must be [4] to match x [2,3,4]");
    nbt_assert_error(nb_layernorm_fused(ln[0], ln[1], ln[2], -1), "nb_layernorm_fused: eps -1 must be finite and not negative");
    nbt_assert_error(nb_layernorm_fused(nb_zeros(NB_F64, NB_SHAPE(2, 0)), ln[1], ln[2], 1e-5), "nb_layernorm_fused: expected x [..,D] with D > 0, got [2,0]");
    nbt_assert_error(nb_layernorm_fused(ln[0], ln[1], NULL, 1e-5), "nb_layernorm_fused: NULL input");
}
END_TEST

START_TEST(sequence_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3, 4)), *h = nb_zeros(NB_F64, NB_SHAPE(2, 5));
    nb_tensor *wx = nb_zeros(NB_F64, NB_SHAPE(4, 5)), *wh = nb_zeros(NB_F64, NB_SHAPE(5, 5)), *b = nb_zeros(NB_F64, NB_SHAPE(5));
    nbt_assert_error(nb_rnn(x, h, wx, wh, nb_zeros(NB_F64, NB_SHAPE(4))), "nb_rnn: b is [4], expected [5]");
    nbt_assert_error(nb_rnn(x, nb_zeros(NB_F64, NB_SHAPE(3, 5)), wx, wh, b),
                     "nb_rnn: the hidden state is [3,5] but x is [2,3,4]: expected [2,H]");
    nbt_assert_error(nb_lstm(x, h, wx, wh, b), "nb_lstm: wx is [4,5], expected [4,20]");
    nbt_assert_error(nb_rnn_step(x, h, wx, wh, b), "nb_rnn_step: x must be [N,D], got [2,3,4]");
    nbt_assert_error(nb_embedding(wx, nb_zeros(NB_F64, NB_SHAPE(2))), "nb_embedding: the ids must be i64 with at most 7 axes, got f64 [2]");
    nbt_assert_error(nb_embedding(wx, nb_full(NB_I64, NB_SHAPE(2), 4)), "nb_index_select: index 4 at position [0] is out of range [0,4) for axis 0 of [4,5]");
    nbt_assert_error(nb_temporal_affine(x, wh, b), "nb_temporal_affine: x [2,3,4] and w [5,5] do not fit: expected x [..,D] and w [D,M]");
    nbt_assert_error(nb_attention(x, nb_zeros(NB_F64, NB_SHAPE(2, 3, 5)), x, true),
                     "nb_attention: q [2,3,4], k [2,3,5] and v [2,3,4]: expected q and k [..,T,D] and v [..,T,E]");
    nbt_assert_error(nb_attention(x, x, nb_zeros(NB_F32, NB_SHAPE(2, 3, 4)), true), "nb_attention: dtypes differ: f64 [2,3,4] and f32 [2,3,4]");
    nb_tensor *hn, *cn;
    ck_assert_int_eq(nb_lstm_step(nb_zeros(NB_F64, NB_SHAPE(2, 4)), h, nb_zeros(NB_F64, NB_SHAPE(2, 4)), nb_zeros(NB_F64, NB_SHAPE(4, 20)),
                                  nb_zeros(NB_F64, NB_SHAPE(5, 20)), nb_zeros(NB_F64, NB_SHAPE(20)), &hn, &cn), -1);
    ck_assert_str_eq(nb_last_error(), "nb_lstm_step: the cell state is [2,4] but the hidden state is [2,5]");
    ck_assert(hn == NULL && cn == NULL);
}
END_TEST

/* ---- modules and the GPT ---- */

typedef struct { nb_module *m; nb_tensor *x, *y; } module_run;

static int collect_params(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    nb_tensor ***out = ctx;
    if (!is_buffer) *(*out)++ = t;
    return 0;
}

/* the parameters of m, in walk order; returns their count */
static int params_of(nb_module *m, nb_tensor **params)
{
    nb_tensor **end = params;
    nb_module_visit(m, collect_params, &end);
    return (int)(end - params);
}

static nb_tensor *gpt_loss_fn(void *ctx, int n, nb_tensor *const *in)
{
    module_run *r = ctx;
    return nb_gpt_loss(nb_module_forward(r->m, r->x), r->y);
}

static nb_tensor *recurrent_loss_fn(void *ctx, int n, nb_tensor *const *in)
{
    module_run *r = ctx;
    return nb_temporal_softmax_loss(nb_module_forward(r->m, r->x), r->y, NULL);
}

START_TEST(gpt_structure_and_gradients)
{
    nb_gpt_config cfg = nb_gpt_defaults();
    cfg.vocab_size = 7, cfg.max_seq_len = 5, cfg.n_layer = 2, cfg.n_head = 2, cfg.n_embd = 8, cfg.dtype = NB_F64;
    cfg.seed = 3;
    nb_module *gpt = nb_gpt(&cfg);
    ck_assert_msg(gpt != NULL, "%s", nb_last_error());
    /* GPT-2's parameter count: V·C + maxT·C + L·(12C² + 13C) + 2C */
    ck_assert_int_eq(nb_module_numel(gpt, true), 7 * 8 + 5 * 8 + 2 * (12 * 64 + 13 * 8) + 2 * 8);
    ck_assert_ptr_nonnull(nb_module_find(gpt, "h.1.attn.c_attn.weight"));
    ck_assert_ptr_nonnull(nb_module_find(gpt, "h.0.mlp.c_proj.bias"));
    nb_tensor *ids = nb_from_data(NB_I64, NB_SHAPE(2, 4), (int64_t[]){ 1, 2, 3, 4, 6, 5, 0, 1 });
    nb_tensor *next = nb_from_data(NB_I64, NB_SHAPE(2, 4), (int64_t[]){ 2, 3, 4, 5, 5, 0, 1, 2 });
    nb_tensor *logits = nb_module_forward(gpt, ids);
    nbt_assert_shape(logits, 2, 4, 7);
    /* small initial weights: about log V */
    ck_assert_double_eq_tol(nb_item(nb_gpt_loss(logits, next)), log(7), 0.05);
    /* causal: changing the last token leaves the logits of the earlier positions */
    nb_tensor *ids2 = nb_copy(ids);
    nb_set(ids2, 3, 0);
    nb_tensor *logits2 = nb_module_forward(gpt, ids2);
    nbt_assert_same(nb_slice(logits, 1, 0, 3, 1), nb_slice(logits2, 1, 0, 3, 1), 0);
    ck_assert(nb_get(logits, 3 * 7) != nb_get(logits2, 3 * 7));
    /* every parameter's gradient, in float64, with weights of N(0, 0.3²): at GPT-2's 0.02 the attention
     * is nearly uniform and the query and key gradients (~1e-8) sink below the differences' rounding.
     * c_attn.bias holds the key bias, whose gradient is 0 by construction (softmax ignores a shift of
     * every score of a row): relative errors of rounding noise mean nothing there, so those two are
     * checked in absolute terms, as nabla-gradcheck does. */
    nb_tensor *params[64], *checked[64], *attn_bias[2] = { nb_module_find(gpt, "h.0.attn.c_attn.bias"),
                                                            nb_module_find(gpt, "h.1.attn.c_attn.bias") };
    int n = params_of(gpt, params), n_checked = 0;
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    for (int i = 0; i < n; i++) {
        if (params[i]->ndim == 2) nb_copy_into(params[i], nb_randn(NB_F64, nb_shape_of(params[i]), &rng, 0.3));
        if (params[i] != attn_bias[0] && params[i] != attn_bias[1]) checked[n_checked++] = params[i];
    }
    ck_assert_int_eq(n_checked, n - 2);
    module_run r = { gpt, ids, next };
    nbt_gradcheck(gpt_loss_fn, &r, n_checked, checked, 1e-6, false);
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    nb_gradcheck_result res;
    ck_assert_int_eq(nb_gradcheck(gpt_loss_fn, &r, 2, attn_bias, &opts, &res), 1);
    ck_assert_msg(res.max_abs_error < 1e-8, "attention biases: absolute error %g", res.max_abs_error);
    nbt_assert_error(nb_module_forward(gpt, nb_zeros(NB_I64, NB_SHAPE(1, 6))), "GPT: 6 tokens per sequence; the model takes 1 to 5");
    nb_module_free(gpt);
    cfg.n_head = 3;
    nbt_assert_error(nb_gpt(&cfg), "nb_gpt: n_head 3 must divide n_embd 8");
}
END_TEST

START_TEST(recurrent_modules)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 4), &rng, 1);
    nb_tensor *y = nb_from_data(NB_I64, NB_SHAPE(2, 3), (int64_t[]){ 0, 4, 2, 1, 3, 3 });
    for (int lstm = 0; lstm < 2; lstm++) {
        nb_module *seq = nb_module_sequential(2, (nb_module *[]){
            (lstm ? nb_module_lstm : nb_module_rnn)(4, 5, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.3)),
            nb_module_temporal_linear(5, 5, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.3)) });
        ck_assert_msg(seq != NULL, "%s", nb_last_error());
        nb_tensor *params[8];
        int n = params_of(seq, params);
        ck_assert_int_eq(n, 5);
        module_run r = { seq, x, y };
        nbt_gradcheck(recurrent_loss_fn, &r, n, params, 1e-6, false);
        nb_module_free(seq);
    }
}
END_TEST

/* 20 AdamW steps of a small GPT in float64 against PyTorch 1.13's losses from the same initial weights
 * (nb_module_save'd and loaded into the same model written with torch ops: tools/nabla-torch.py's
 * reader, F.layer_norm, masked_fill(-1e30), F.gelu(approximate="tanh"), torch.optim.AdamW with lr 1e-2,
 * weight decay 0.1), stored here */
START_TEST(gpt_matches_pytorch)
{
    static const double torch_losses[20] = {
        2.389963937685748, 2.3571174904532222, 2.307510134400288, 2.252284347454852, 2.2087014549659383,
        2.1577444663637091, 2.1074463733064697, 2.0626804401629428, 2.0131830757482558, 1.967580492049424,
        1.9186372293600056, 1.8710134996516739, 1.8216846026632838, 1.7706056027396739, 1.7190652121823766,
        1.6626341272064953, 1.6058203020191724, 1.5525932017670305, 1.4984187296355191, 1.4438758754411152 };
    nb_gpt_config cfg = nb_gpt_defaults();
    cfg.vocab_size = 11, cfg.max_seq_len = 6, cfg.n_layer = 2, cfg.n_head = 2, cfg.n_embd = 8, cfg.dtype = NB_F64;
    cfg.seed = 5;
    nb_module *gpt = nb_gpt(&cfg);
    nb_tensor *params[64];
    int n = params_of(gpt, params);
    nb_optim_config oc = nb_optim_defaults(NB_ADAMW);
    oc.lr = 1e-2, oc.weight_decay = 0.1;
    nb_optimizer *opt = nb_optimizer_new(oc, n, params, NULL);
    ck_assert_ptr_nonnull(opt);
    nb_tensor *ids = nb_from_data(NB_I64, NB_SHAPE(3, 6), (int64_t[]){ 1, 5, 2, 9, 0, 3, 10, 4, 4, 7, 2, 8, 6, 6, 1, 0, 3, 5 });
    nb_tensor *next = nb_from_data(NB_I64, NB_SHAPE(3, 6), (int64_t[]){ 5, 2, 9, 0, 3, 1, 4, 4, 7, 2, 8, 10, 6, 1, 0, 3, 5, 2 });
    double worst = 0;
    for (int step = 0; step < 20; step++) {
        nb_optimizer_zero_grad(opt);
        nb_tensor *loss = nb_gpt_loss(nb_module_forward(gpt, ids), next);
        ck_assert_int_eq(nb_backward(loss), 0);
        ck_assert_int_eq(nb_optimizer_step(opt), 0);
        worst = fmax(worst, fabs(nb_item(loss) - torch_losses[step]) / torch_losses[step]);
    }
    printf("GPT against PyTorch, 20 AdamW steps in f64: worst relative difference of the losses %.2e\n", worst);
    ck_assert_msg(worst < 1e-10, "relative difference %g", worst);
    nb_optimizer_free(opt);
    nb_module_free(gpt);
}
END_TEST

/* llm.c's GPT-2 checkpoint: written, laid out as llm.c reads it, read back to the same model */
START_TEST(llmc_checkpoint_round_trip)
{
    nb_gpt_config cfg = nb_gpt_defaults();
    cfg.vocab_size = 7, cfg.max_seq_len = 5, cfg.n_layer = 2, cfg.n_head = 2, cfg.n_embd = 8, cfg.seed = 11;
    nb_module *gpt = nb_gpt(&cfg);
    ck_assert_ptr_nonnull(gpt);
    char path[128];
    snprintf(path, sizeof path, "/tmp/nabla-test-llmc-%ld.bin", (long)getpid());
    ck_assert_msg(nb_gpt_save_llmc(gpt, path) == 0, "%s", nb_last_error());
    /* the header, the size (Vp = 128), and a transposed weight where llm.c expects it */
    FILE *f = fopen(path, "rb");
    int32_t header[256];
    ck_assert_int_eq(fread(header, 4, 256, f), 256);
    const int32_t want[8] = { 20240326, 3, 5, 7, 2, 2, 8, 128 };
    for (int k = 0; k < 8; k++) ck_assert_int_eq(header[k], want[k]);
    const long count = 128 * 8 + 5 * 8 + 2 * (12 * 64 + 13 * 8) + 2 * 8;
    fseek(f, 0, SEEK_END);
    ck_assert_int_eq(ftell(f), 1024 + 4 * count);
    /* qkvw of layer 0 is [3C,C] = c_attn.weight [C,3C] transposed: its element (0,1) is W[1][0] */
    const long qkvw = 1024 + 4 * (128 * 8 + 5 * 8 + 2 * 8 + 2 * 8);
    float v[2];
    fseek(f, qkvw, SEEK_SET);
    ck_assert_int_eq(fread(v, 4, 2, f), 2);
    nb_tensor *w = nb_module_find(gpt, "h.0.attn.c_attn.weight");
    ck_assert(v[0] == (float)nb_get(w, 0) && v[1] == (float)nb_get(w, 24));
    fclose(f);
    nb_module *back = nb_gpt_load_llmc(path, NB_F32);
    ck_assert_msg(back != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_module_numel(back, false), nb_module_numel(gpt, false));
    nb_tensor *ids = nb_from_data(NB_I64, NB_SHAPE(1, 5), (int64_t[]){ 1, 6, 0, 3, 2 });
    nbt_assert_same(nb_module_forward(back, ids), nb_module_forward(gpt, ids), 0);
    /* a damaged file is named */
    f = fopen(path, "r+b");
    fseek(f, 16, SEEK_SET);
    int32_t three = 3;
    fwrite(&three, 4, 1, f);   /* L 2 -> 3: the file is too short for it */
    fclose(f);
    ck_assert_ptr_null(nb_gpt_load_llmc(path, NB_F32));
    ck_assert(strstr(nb_last_error(), "the header's sizes need") != NULL);
    remove(path);
    ck_assert_ptr_null(nb_gpt_load_llmc(path, NB_F32));
    ck_assert(strstr(nb_last_error(), "No such file or directory") != NULL);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *lin = nb_module_linear(2, 2, NB_F32, NB_INIT_NORMAL_SCALE(&rng, 0.1));
    ck_assert_int_eq(nb_gpt_save_llmc(lin, path), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gpt_save_llmc: the module is a Linear, not an nb_gpt");
    nb_module_free(lin);
    nb_module_free(back);
    nb_module_free(gpt);
}
END_TEST

static Suite *sequence_suite(void)
{
    Suite *s = suite_create("sequence");
    TCase *c = tcase_create("values");
    tcase_add_test(c, embedding_and_temporal_affine);
    tcase_add_test(c, rnn_and_lstm_steps);
    tcase_add_test(c, attention_against_loops);
    tcase_add_test(c, gelu_and_layernorm_any_rank);
    tcase_add_test(c, temporal_softmax_loss_sanity);
    tcase_add_test(c, sequence_errors);
    tcase_add_test(c, llmc_checkpoint_round_trip);
    tcase_add_test(c, gpt_matches_pytorch);
    suite_add_tcase(s, c);
    c = tcase_create("gradients");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, sequence_gradients);
    tcase_add_test(c, gpt_structure_and_gradients);
    tcase_add_test(c, recurrent_modules);
    tcase_add_test(c, fused_attention_and_layernorm);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(sequence_suite)
