/* The graph: backward values by hand, accumulation, no-grad mode, detach, shared subexpressions,
 * very deep graphs, double backward through nb_grad, and how errors and NULLs travel. */
#include "nbtest.h"

static nb_tensor *leaf(nb_dtype dt, nb_shape s, const double *v)
{
    nb_tensor *t = nb_from_doubles(dt, s, v);
    nb_set_requires_grad(t, true);
    return t;
}

/* ---- first derivatives by hand ---- */

START_TEST(test_backward_values)
{
    const double xv[3] = { 1, -2, 3 }, wv[3] = { 0.5, 4, -1 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = leaf(dt, NB_SHAPE(3), xv), *w = leaf(dt, NB_SHAPE(3), wv);
        nb_tensor *loss = nb_sum(nb_mul(nb_mul(x, x), w));   /* Σ x²w */
        ck_assert(nb_item(loss) == 0.5 + 16 - 9);
        ck_assert(loss->requires_grad && loss->node != NULL);
        ck_assert_int_eq(nb_backward(loss), 0);
        const double dx[3] = { 1, -16, -6 }, dw[3] = { 1, 4, 9 };   /* 2xw and x² */
        nbt_assert_values(x->grad, dx, 0);
        nbt_assert_values(w->grad, dw, 0);
        ck_assert_int_eq(x->grad->dtype, dt);
        ck_assert(!x->grad->requires_grad && x->grad->node == NULL);
        ck_assert(loss->grad == NULL);   /* only leaves keep gradients */
    }
}
END_TEST

START_TEST(test_backward_leaf_root)
{
    nb_tensor *x = nb_scalar(NB_F64, 5);
    nb_set_requires_grad(x, true);
    ck_assert_int_eq(nb_backward(x), 0);
    ck_assert(nb_item(x->grad) == 1);
}
END_TEST

START_TEST(test_accumulate)
{
    const double xv[2] = { 2, -3 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), xv);
    nb_tensor *loss = nb_sum(nb_pow_scalar(x, 3));   /* d/dx = 3x² = 12, 27 */
    const double once[2] = { 12, 27 }, twice[2] = { 24, 54 }, zero[2] = { 0, 0 };
    ck_assert_int_eq(nb_backward(loss), 0);
    nbt_assert_values(x->grad, once, 0);
    nb_tensor *grad = x->grad;
    ck_assert_int_eq(nb_backward(loss), 0);            /* the same graph again */
    nbt_assert_values(x->grad, twice, 0);
    ck_assert_ptr_eq(x->grad, grad);                   /* accumulated in place */
    nb_zero_grad(x);
    nbt_assert_values(x->grad, zero, 0);
    ck_assert_int_eq(nb_backward(nb_sum(nb_pow_scalar(x, 3))), 0);
    nbt_assert_values(x->grad, once, 0);
}
END_TEST

START_TEST(test_backward_non_scalar)
{
    const double xv[3] = { 1, 2, 3 }, wv[3] = { -1, 0.5, 2 }, dyv[3] = { 1, 10, 100 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), xv), *w = leaf(NB_F64, NB_SHAPE(3), wv);
    nb_tensor *y = nb_mul(x, w);
    nb_clear_error();
    ck_assert_int_eq(nb_backward(y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: the output is [3], not a scalar: give its gradient explicitly");
    ck_assert(x->grad == NULL);

    nb_tensor *dy = nb_from_doubles(NB_F64, NB_SHAPE(3), dyv);
    ck_assert_int_eq(nb_backward_with(y, dy), 0);
    const double dx[3] = { -1, 5, 200 }, dw[3] = { 1, 20, 300 };
    nbt_assert_values(x->grad, dx, 0);
    nbt_assert_values(w->grad, dw, 0);

    nb_clear_error();
    ck_assert_int_eq(nb_backward_with(y, nb_ones(NB_F64, NB_SHAPE(2))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: the output gradient is f64 [2] but the output is f64 [3]");
    ck_assert_int_eq(nb_backward_with(y, nb_ones(NB_F32, NB_SHAPE(3))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: the output gradient is f32 [3] but the output is f64 [3]");
    /* one element in any shape counts as a scalar */
    nb_tensor *one = nb_reshape(nb_sum(y), NB_SHAPE(1, 1));
    ck_assert_int_eq(nb_backward(one), 0);
    const double dx2[3] = { -2, 5.5, 202 };
    nbt_assert_values(x->grad, dx2, 0);
}
END_TEST

START_TEST(test_no_grad)
{
    const double xv[2] = { 1, 2 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), xv);
    ck_assert(nb_grad_enabled());
    ck_assert(nb_set_grad_enabled(false) == true);
    ck_assert(!nb_grad_enabled());
    nb_tensor *y = nb_mul(x, x);
    nb_tensor *s = nb_sum(nb_exp(y));
    ck_assert(!y->requires_grad && y->node == NULL);
    ck_assert(!s->requires_grad && s->node == NULL);
    ck_assert(nb_set_grad_enabled(false) == false);
    ck_assert(nb_set_grad_enabled(true) == false);
    nb_clear_error();
    ck_assert_int_eq(nb_backward(s), -1);
    ck_assert_str_eq(nb_last_error(),
                     "nb_backward: the output [] does not require grad (no input requires grad, or grad mode was off)");
    ck_assert(x->grad == NULL);
    /* nothing requires grad: same message */
    ck_assert_int_eq(nb_backward(nb_sum(nb_ones(NB_F64, NB_SHAPE(2)))), -1);
    ck_assert_str_eq(nb_last_error(),
                     "nb_backward: the output [] does not require grad (no input requires grad, or grad mode was off)");
}
END_TEST

START_TEST(test_detach)
{
    const double xv[3] = { 1, -2, 0.5 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), xv);
    nb_tensor *d = nb_detach(x);
    ck_assert(!d->requires_grad && d->node == NULL && d->grad == NULL);
    ck_assert_ptr_eq(d->data, x->data);
    /* x·detach(x): only the first factor carries a gradient, d/dx = x (not 2x) */
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(x, d))), 0);
    nbt_assert_values(x->grad, xv, 0);
    /* detach in the middle of a graph cuts everything before it */
    nb_tensor *mid = nb_detach(nb_exp(x));
    ck_assert(!mid->requires_grad);
    nb_clear_error();
    ck_assert_int_eq(nb_backward(nb_sum(mid)), -1);
    ck_assert(nb_detach(NULL) == NULL);
}
END_TEST

START_TEST(test_shared_inputs)
{
    const double xv[3] = { 0.5, -1, 2 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), xv);
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(x, x))), 0);   /* both operands are x */
    const double two_x[3] = { 1, -2, 4 };
    nbt_assert_values(x->grad, two_x, 0);

    /* diamond: a = exp(x) feeds b = 2a and c = 3a, loss = Σ (b + c) = 5 Σ exp(x) */
    nb_zero_grad(x);
    nb_tensor *a = nb_exp(x);
    nb_tensor *loss = nb_sum(nb_add(nb_mul_scalar(a, 2), nb_mul_scalar(a, 3)));
    ck_assert_int_eq(nb_backward(loss), 0);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(nb_get(x->grad, i), 5 * exp(xv[i]), 1e-12);

    /* x reached along paths of different lengths: loss = Σ x·exp(x) + x  ->  (1+x)e^x + 1 */
    nb_zero_grad(x);
    ck_assert_int_eq(nb_backward(nb_sum(nb_add(nb_mul(x, nb_exp(x)), x))), 0);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(nb_get(x->grad, i), (1 + xv[i]) * exp(xv[i]) + 1, 1e-12);
}
END_TEST

START_TEST(test_deep_chain)
{
    /* y ← c·y + x, 50000 times (100000 ops): dy/dx = Σ_{j≤K} c^j = (c^{K+1} - 1)/(c - 1) */
    enum { K = 50000 };
    const double c = 0.99995, xv[2] = { 1, -1 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), xv);
    nb_tensor *y = x;
    for (int i = 0; i < K; i++) y = nb_add(nb_mul_scalar(y, c), x);
    ck_assert_msg(y != NULL, "%s", nb_last_error());
    ck_assert_msg(nb_backward(nb_sum(y)) == 0, "%s", nb_last_error());
    double expect = (pow(c, K + 1) - 1) / (c - 1);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(fabs(nb_get(x->grad, i) - expect) < 1e-9 * expect, "%.15g vs %.15g", nb_get(x->grad, i), expect);

    /* a single chain of 100000 unary ops */
    nb_tensor *z = leaf(NB_F64, NB_SHAPE(1), xv);
    nb_tensor *w = z;
    for (int i = 0; i < 100000; i++) w = nb_mul_scalar(w, 1.00001);
    ck_assert_int_eq(nb_backward(w), 0);
    ck_assert_double_eq_tol(nb_item(z->grad), pow(1.00001, 100000), 1e-9);
}
END_TEST

/* ---- nb_grad and second derivatives ---- */

START_TEST(test_grad_second_cube)
{
    const double xv[3] = { 1, -2, 0.5 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), xv);
    nb_tensor *g;
    ck_assert_int_eq(nb_grad(nb_sum(nb_pow_scalar(x, 3)), NULL, 1, &x, &g, true), 0);
    const double g1[3] = { 3, 12, 0.75 }, g2[3] = { 6, -12, 3 };
    nbt_assert_values(g, g1, 1e-12);
    ck_assert(g->requires_grad);
    nb_tensor *gg;
    ck_assert_int_eq(nb_grad(nb_sum(g), NULL, 1, &x, &gg, false), 0);
    nbt_assert_values(gg, g2, 1e-12);   /* d²/dx² Σ x³ = 6x */
    ck_assert(!gg->requires_grad);
    ck_assert(x->grad == NULL);         /* nb_grad leaves the grad fields alone */

    /* the same with x·x·x: three uses of x */
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul(nb_mul(x, x), x)), NULL, 1, &x, &g, true), 0);
    nbt_assert_values(g, g1, 1e-12);
    ck_assert_int_eq(nb_grad(nb_sum(g), NULL, 1, &x, &gg, true), 0);
    nbt_assert_values(gg, g2, 1e-12);
    nb_tensor *ggg;                     /* third derivative: 6 */
    ck_assert_int_eq(nb_grad(nb_sum(gg), NULL, 1, &x, &ggg, false), 0);
    const double g3[3] = { 6, 6, 6 };
    nbt_assert_values(ggg, g3, 1e-12);

    /* without create_graph the gradient is a constant */
    ck_assert_int_eq(nb_grad(nb_sum(nb_pow_scalar(x, 3)), NULL, 1, &x, &g, false), 0);
    ck_assert(!g->requires_grad);
}
END_TEST

START_TEST(test_grad_second_tanh)
{
    const double xv[3] = { -1, 0.5, 2 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), xv);
    nb_tensor *g, *gg;
    ck_assert_int_eq(nb_grad(nb_sum(nb_tanh(x)), NULL, 1, &x, &g, true), 0);
    ck_assert_int_eq(nb_grad(nb_sum(g), NULL, 1, &x, &gg, false), 0);
    for (int i = 0; i < 3; i++) {
        double t = tanh(xv[i]);
        ck_assert_double_eq_tol(nb_get(g, i), 1 - t * t, 1e-14);
        ck_assert_double_eq_tol(nb_get(gg, i), -2 * t * (1 - t * t), 1e-14);
    }
}
END_TEST

START_TEST(test_grad_mixed_partials)
{
    const double xv[2] = { 2, -1 }, yv[2] = { 3, 0.5 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), xv), *y = leaf(NB_F64, NB_SHAPE(2), yv);
    nb_tensor *xy[2] = { x, y }, *g[2], *h[2];
    /* f = Σ x²y: df/dx = 2xy, df/dy = x² */
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul(nb_mul(x, x), y)), NULL, 2, xy, g, true), 0);
    const double gx[2] = { 12, -1 }, gy[2] = { 4, 1 };
    nbt_assert_values(g[0], gx, 1e-12);
    nbt_assert_values(g[1], gy, 1e-12);
    /* d(Σ 2xy)/dx = 2y, d(Σ 2xy)/dy = 2x */
    ck_assert_int_eq(nb_grad(nb_sum(g[0]), NULL, 2, xy, h, false), 0);
    const double hxx[2] = { 6, 1 }, hxy[2] = { 4, -2 };
    nbt_assert_values(h[0], hxx, 1e-12);
    nbt_assert_values(h[1], hxy, 1e-12);
    /* d(Σ x²)/dx = 2x and d(Σ x²)/dy = 0: y is not reached, so zeros */
    ck_assert_int_eq(nb_grad(nb_sum(g[1]), NULL, 2, xy, h, false), 0);
    const double zero[2] = { 0, 0 };
    nbt_assert_values(h[0], hxy, 1e-12);
    nbt_assert_values(h[1], zero, 0);
    nbt_assert_shape(h[1], 2);
    ck_assert(x->grad == NULL && y->grad == NULL);
}
END_TEST

START_TEST(test_grad_unreached_and_intermediate)
{
    const double xv[2] = { 1, 2 }, zv[3] = { 1, 2, 3 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), xv);
    nb_tensor *z = leaf(NB_F32, NB_SHAPE(3, 1), zv);   /* unrelated, other dtype and shape */
    nb_tensor *c = nb_ones(NB_F64, NB_SHAPE(4));       /* does not require grad */
    nb_tensor *mid = nb_mul_scalar(x, 3);
    nb_tensor *y = nb_sum(nb_square(mid));
    nb_tensor *xs[4] = { x, z, c, mid }, *g[4];
    ck_assert_int_eq(nb_grad(y, NULL, 4, xs, g, false), 0);
    const double gx[2] = { 18, 36 }, gmid[2] = { 6, 12 }, zeros[4] = { 0 };
    nbt_assert_values(g[0], gx, 1e-12);
    nbt_assert_values(g[1], zeros, 0);
    nbt_assert_shape(g[1], 3, 1);
    ck_assert_int_eq(g[1]->dtype, NB_F32);
    nbt_assert_values(g[2], zeros, 0);
    nbt_assert_values(g[3], gmid, 1e-12);   /* with respect to an intermediate tensor */

    /* an explicit dy for a non-scalar y */
    const double dyv[2] = { 1, -1 };
    ck_assert_int_eq(nb_grad(mid, nb_from_doubles(NB_F64, NB_SHAPE(2), dyv), 1, &x, g, false), 0);
    const double gdy[2] = { 3, -3 };
    nbt_assert_values(g[0], gdy, 0);

    nb_clear_error();
    ck_assert_int_eq(nb_grad(mid, NULL, 1, &x, g, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_grad: the output is [2], not a scalar: give its gradient explicitly");
    nb_tensor *with_null[2] = { x, NULL };
    ck_assert_int_eq(nb_grad(y, NULL, 2, with_null, g, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_grad: input 1 is NULL");
}
END_TEST

/* ---- the graph through views ---- */

static nb_tensor *apply_view_chain(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    /* [2,3,4] -> permute -> [4,2,3] -> reshape (copy) [8,3] -> transpose [3,8] -> reshape (view) [3,2,4]
     * -> expand [2,3,2,4] -> contiguous; squared so the gradient depends on the values */
    nb_tensor *p = nb_permute(in[0], NB_AXES(2, 0, 1));
    nb_tensor *r = nb_reshape(p, NB_SHAPE(8, 3));
    nb_tensor *t = nb_transpose(r, 0, 1);
    nb_tensor *v = nb_reshape(t, NB_SHAPE(3, 2, 4));
    nb_tensor *e = nb_expand(v, NB_SHAPE(2, 3, 2, 4));
    return nb_square(nb_contiguous(e));
}

START_TEST(test_views_gradcheck)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1);
    nbt_gradcheck(apply_view_chain, NULL, 1, &x, 1e-7, false);
    nbt_gradgradcheck(apply_view_chain, NULL, 1, &x, 1e-7);

    /* by hand: Σ expand(x) over 5 copies gives 5 per element */
    const double one[3] = { 1, 2, 3 };
    nb_tensor *s = leaf(NB_F64, NB_SHAPE(3, 1), one);
    ck_assert_int_eq(nb_backward(nb_sum(nb_expand(s, NB_SHAPE(2, 3, 5)))), 0);
    const double ten[3] = { 10, 10, 10 };
    nbt_assert_values(s->grad, ten, 0);
    nbt_assert_shape(s->grad, 3, 1);
}
END_TEST

/* ---- a small dense layer, as in the issue: h = relu(x·W + b) ---- */

static nb_tensor *dense_relu(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_relu(nb_add(nb_matmul(in[0], in[1]), in[2]));
}

START_TEST(test_dense_layer)
{
    const double xv[6] = { 1, 2, 3, -1, 0, 1 }, wv[6] = { 0.5, -1, 0.25, 0, -0.5, 1 }, bv[2] = { 0.1, -0.2 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2, 3), xv);
    nb_tensor *w = nb_param(nb_from_doubles(NB_F64, NB_SHAPE(3, 2), wv));
    nb_tensor *b = nb_param(nb_from_doubles(NB_F64, NB_SHAPE(2), bv));
    nb_tensor *in[3] = { x, w, b };
    nb_tensor *h = dense_relu(NULL, 3, in);
    /* x·W + b = [[-0.4, 1.8], [-0.9, 1.8]]: only the second column passes the relu */
    const double hv[4] = { 0, 1.8, 0, 1.8 };
    nbt_assert_values(h, hv, 1e-15);
    ck_assert_int_eq(nb_backward(nb_sum(h)), 0);
    const double dx[6] = { -1, 0, 1, -1, 0, 1 }, dw[6] = { 0, 0, 0, 2, 0, 4 }, db[2] = { 0, 2 };
    nbt_assert_values(x->grad, dx, 1e-15);
    nbt_assert_values(w->grad, dw, 1e-15);
    nbt_assert_values(b->grad, db, 1e-15);

    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *rin[3] = { nbt_input(&rng, NB_SHAPE(5, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4, 3), -1, 1),
                          nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(dense_relu, NULL, 3, rin, 1e-7, true);
    nb_free(w);
    nb_free(b);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_requires_grad_errors)
{
    nb_tensor *x = nb_ones(NB_F64, NB_SHAPE(3));
    ck_assert_int_eq(nb_set_requires_grad(x, true), 0);
    nb_tensor *y = nb_exp(x);
    nb_clear_error();
    ck_assert_int_eq(nb_set_requires_grad(y, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_set_requires_grad: [3] is the result of an op, not a leaf");
    ck_assert_int_eq(nb_set_requires_grad(nb_zeros(NB_I64, NB_SHAPE(2, 2)), true), -1);
    ck_assert_str_eq(nb_last_error(), "nb_set_requires_grad: expected a f32 or f64 tensor, got i64 [2,2]");
    ck_assert_int_eq(nb_set_requires_grad(nb_zeros(NB_I64, NB_SHAPE(2)), false), 0);
    ck_assert_int_eq(nb_set_requires_grad(x, false), 0);
    ck_assert(!nb_exp(x)->requires_grad);
}
END_TEST

START_TEST(test_null_propagation)
{
    nb_tensor *a = nb_ones(NB_F32, NB_SHAPE(2)), *b = nb_ones(NB_F64, NB_SHAPE(2));
    nb_set_requires_grad(b, true);
    const char *first = "nb_add: dtypes differ: f32 [2] and f64 [2]";
    nb_clear_error();
    nb_tensor *bad = nb_add(a, b);
    ck_assert(bad == NULL);
    ck_assert_str_eq(nb_last_error(), first);
    /* every later op given the NULL returns NULL and keeps the first message */
    ck_assert(nb_add(bad, b) == NULL && nb_add(b, bad) == NULL);
    ck_assert(nb_exp(nb_mul(nb_sub(bad, b), b)) == NULL);
    ck_assert(nb_sum(nb_reshape(nb_transpose(nb_relu(bad), 0, 0), NB_SHAPE(2))) == NULL);
    ck_assert(nb_mean_axes(nb_expand(nb_permute(bad, NB_AXES(0)), NB_SHAPE(2, 2)), NB_AXES(0), true) == NULL);
    ck_assert(nb_where(bad, b, b) == NULL && nb_where(b, bad, b) == NULL && nb_where(b, b, bad) == NULL);
    ck_assert(nb_div_scalar(bad, 0) == NULL);
    ck_assert(nb_sum_to(bad, NB_SHAPE(1)) == NULL && nb_argmax(bad, 0, false) == NULL);
    ck_assert(nb_matmul(bad, b) == NULL && nb_contiguous(bad) == NULL && nb_max(bad) == NULL);
    ck_assert_int_eq(nb_backward(nb_sum(bad)), -1);
    ck_assert_int_eq(nb_backward_with(bad, b), -1);
    nb_tensor *g;
    ck_assert_int_eq(nb_grad(bad, NULL, 1, &b, &g, false), -1);
    ck_assert_str_eq(nb_last_error(), first);
}
END_TEST

/* ---- anomaly mode ---- */

START_TEST(test_anomaly_forward)
{
    const double v[3] = { 1, 0, 2 };
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(3), v);
    ck_assert(!nb_set_anomaly_mode(true));
    nb_tensor *loss = nb_sum(nb_mul_scalar(nb_log(x), 2));
    const char *expected = "anomaly: nb_log produced -inf at element 1 of its output [3] from finite inputs";
    ck_assert_str_eq(nb_anomaly(), expected);
    ck_assert_int_eq(nb_backward(loss), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: anomaly: nb_log produced -inf at element 1 of its output [3] from finite inputs");
    ck_assert(x->grad == NULL);
    nb_anomaly_clear();
    ck_assert(nb_anomaly() == NULL);
    ck_assert(nb_set_anomaly_mode(false));
    /* off: the same computation records nothing and backward runs (giving inf/NaN as IEEE says) */
    loss = nb_sum(nb_log(x));
    ck_assert(nb_anomaly() == NULL);
    ck_assert_int_eq(nb_backward(loss), 0);
    ck_assert(isinf(nb_item(nb_sum(x->grad))));
}
END_TEST

START_TEST(test_anomaly_backward)
{
    const double v[2] = { 4, 0 };
    nb_tensor *x = leaf(NB_F32, NB_SHAPE(2), v);
    nb_set_anomaly_mode(true);
    nb_tensor *loss = nb_sum(nb_sqrt(x));     /* finite forward, d/dx = 1/(2 sqrt x): inf at 0 */
    ck_assert(nb_anomaly() == NULL);
    ck_assert_int_eq(nb_backward(loss), -1);
    ck_assert_msg(strstr(nb_last_error(), "(in the backward of nb_sqrt) produced inf at element 1 of its output [2]"),
                  "%s", nb_last_error());
    ck_assert(strncmp(nb_last_error(), "nb_backward: anomaly: nb_", 25) == 0);
    nb_set_anomaly_mode(false);
}
END_TEST

START_TEST(test_anomaly_received)
{
    const double v[4] = { 1, 2, NAN, 4 };
    nb_tensor *w = leaf(NB_F64, NB_SHAPE(2, 2), v);
    nb_tensor *x = nb_ones(NB_F64, NB_SHAPE(3, 2));
    nb_set_anomaly_mode(true);
    nb_tensor *y = nb_matmul(x, w);
    ck_assert_str_eq(nb_anomaly(), "anomaly: nb_matmul received nan at element 2 of its input 1 [2,2]");
    ck_assert(y != NULL);   /* the op still computes: anomaly mode reports, it does not change values */
    /* turning the mode on again forgets the earlier anomaly */
    nb_set_anomaly_mode(false);
    nb_set_anomaly_mode(true);
    ck_assert(nb_anomaly() == NULL);
    nb_set_anomaly_mode(false);
}
END_TEST

/* ---- saved tensors written after the forward (version counters) ---- */

START_TEST(test_version_fill_saved_input)
{
    /* y = sum(x·w): dy/dx = w; filling w after the forward would silently give dL/dx from the new w */
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), (double[]){ 1, 2 });
    nb_tensor *w = nb_full(NB_F64, NB_SHAPE(2), 5);
    nb_tensor *y = nb_sum(nb_mul(x, w));
    ck_assert_int_eq(nb_fill(w, 0), 0);
    ck_assert_int_eq(nb_backward(y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: nb_mul's input 1 (f64 [2]) was written after the forward (nb_fill, "
                                      "nb_copy_into, nb_set or an optimizer step), and its gradient needs the values "
                                      "the forward used: run the forward again after the write");
    ck_assert(x->grad == NULL || (nb_get(x->grad, 0) == 0 && nb_get(x->grad, 1) == 0));
    /* the forward run again after the write gives the gradient of the new values */
    nb_fill(w, 5);
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(x, w))), 0);
    nbt_assert_values(x->grad, ((double[]){ 5, 5 }), 0);
}
END_TEST

START_TEST(test_version_writes_that_do_not_matter)
{
    /* add needs no values: writing its input after the forward leaves the gradient right */
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2), (double[]){ 1, 2 });
    nb_tensor *b = nb_ones(NB_F64, NB_SHAPE(2));
    nb_tensor *y = nb_sum(nb_add(x, b));
    nb_fill(b, 3);
    ck_assert_int_eq(nb_backward(y), 0);
    nbt_assert_values(x->grad, ((double[]){ 1, 1 }), 0);
}
END_TEST

START_TEST(test_version_output_and_views)
{
    /* exp's rule reads its output; a write through a view of the output is a write to it */
    nb_tensor *x = leaf(NB_F64, NB_SHAPE(2, 2), (double[]){ 0, 1, 2, 3 });
    nb_tensor *e = nb_exp(x);
    nb_tensor *y = nb_sum(e);
    nb_tensor *row = nb_slice(nb_detach(e), 0, 1, 2, 1);
    ck_assert_int_eq(nb_set(row, 0, 7), 0);
    ck_assert_int_eq(nb_backward(y), -1);
    ck_assert(strstr(nb_last_error(), "nb_backward: nb_exp's output (f64 [2,2]) was written after the forward") != NULL);
}
END_TEST

START_TEST(test_version_optimizer_step_between)
{
    /* the common mistake: an optimizer step between the forward and the backward */
    nb_tensor *w = nb_param(nb_from_doubles(NB_F32, NB_SHAPE(2, 1), (double[]){ 1, 2 }));
    nb_tensor *x = nb_ones(NB_F32, NB_SHAPE(3, 2));
    nb_optimizer *opt = nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &w, NULL);
    ck_assert(opt != NULL);
    ck_assert_int_eq(nb_backward(nb_sum(nb_matmul(x, w))), 0);   /* a first step's gradient */
    nb_tensor *loss = nb_sum(nb_matmul(x, w));
    ck_assert_int_eq(nb_optimizer_step(opt), 0);
    ck_assert_int_eq(nb_backward(loss), -1);
    ck_assert(strstr(nb_last_error(), "nb_backward: nb_matmul's input 1 (f32 [2,1]) was written after the forward") != NULL);
    /* nb_grad checks too */
    nb_tensor *g = NULL;
    ck_assert_int_eq(nb_grad(loss, NULL, 1, &w, &g, false), -1);
    ck_assert(strstr(nb_last_error(), "nb_grad: nb_matmul's input 1") != NULL);
    nb_optimizer_free(opt);
    nb_free(w);
}
END_TEST

static Suite *autograd_suite(void)
{
    Suite *s = suite_create("autograd");
    TCase *c = tcase_create("backward");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_backward_values);
    tcase_add_test(c, test_backward_leaf_root);
    tcase_add_test(c, test_accumulate);
    tcase_add_test(c, test_backward_non_scalar);
    tcase_add_test(c, test_no_grad);
    tcase_add_test(c, test_detach);
    tcase_add_test(c, test_shared_inputs);
    tcase_add_test(c, test_deep_chain);
    tcase_add_test(c, test_views_gradcheck);
    tcase_add_test(c, test_dense_layer);
    suite_add_tcase(s, c);
    c = tcase_create("grad");
    tcase_add_test(c, test_grad_second_cube);
    tcase_add_test(c, test_grad_second_tanh);
    tcase_add_test(c, test_grad_mixed_partials);
    tcase_add_test(c, test_grad_unreached_and_intermediate);
    suite_add_tcase(s, c);
    c = tcase_create("errors");
    tcase_add_test(c, test_requires_grad_errors);
    tcase_add_test(c, test_null_propagation);
    suite_add_tcase(s, c);
    c = tcase_create("anomaly");
    tcase_add_test(c, test_anomaly_forward);
    tcase_add_test(c, test_anomaly_backward);
    tcase_add_test(c, test_anomaly_received);
    suite_add_tcase(s, c);
    c = tcase_create("versions");
    tcase_add_test(c, test_version_fill_saved_input);
    tcase_add_test(c, test_version_writes_that_do_not_matter);
    tcase_add_test(c, test_version_output_and_views);
    tcase_add_test(c, test_version_optimizer_step_between);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(autograd_suite)
