/* Reductions: sum, mean, max over all axes or some (keepdim, negative axes), argmax, sum_to;
 * f32 sums accumulated in double; gradients (ties of max share), and error messages. */
#include "nbtest.h"

/* x = [[1,2,3],[4,5,6]] */
static const double X23[6] = { 1, 2, 3, 4, 5, 6 };

START_TEST(test_sum_mean_max_all)
{
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = nb_from_doubles(dt, NB_SHAPE(2, 3), X23);
        nb_tensor *r[3] = { nb_sum(x), nb_mean(x), nb_max(nb_neg(x)) };
        const double expect[3] = { 21, 3.5, -1 };
        for (int i = 0; i < 3; i++) {
            nbt_assert_shape(r[i]);
            ck_assert_int_eq(r[i]->dtype, dt);
            ck_assert(nb_item(r[i]) == expect[i]);
        }
        ck_assert(nb_item(nb_max(x)) == 6);
        /* a 0-d input reduces to itself */
        ck_assert(nb_item(nb_sum(nb_scalar(dt, 2.5))) == 2.5);
        ck_assert(nb_item(nb_max(nb_scalar(dt, -2.5))) == -2.5);
        nbt_assert_shape(nb_mean(nb_scalar(dt, 1)));
    }
}
END_TEST

START_TEST(test_axes)
{
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = nb_from_doubles(dt, NB_SHAPE(2, 3), X23);
        const double col_sum[3] = { 5, 7, 9 }, row_sum[2] = { 6, 15 }, col_mean[3] = { 2.5, 3.5, 4.5 };
        const double row_mean[2] = { 2, 5 }, col_max[3] = { 4, 5, 6 }, row_max[2] = { 3, 6 };
        nb_tensor *s0 = nb_sum_axes(x, NB_AXES(0), false);
        nbt_assert_shape(s0, 3);
        nbt_assert_values(s0, col_sum, 0);
        nb_tensor *s1 = nb_sum_axes(x, NB_AXES(1), true);
        nbt_assert_shape(s1, 2, 1);
        nbt_assert_values(s1, row_sum, 0);
        nbt_assert_shape(nb_sum_axes(x, NB_AXES(-1), false), 2);
        nbt_assert_values(nb_sum_axes(x, NB_AXES(-1), false), row_sum, 0);
        nbt_assert_shape(nb_sum_axes(x, NB_AXES(-2), true), 1, 3);
        nbt_assert_shape(nb_sum_axes(x, NB_AXES(0, 1), true), 1, 1);
        nbt_assert_shape(nb_sum_axes(x, NB_AXES(1, 0), false));

        nbt_assert_values(nb_mean_axes(x, NB_AXES(0), false), col_mean, 0);
        nbt_assert_shape(nb_mean_axes(x, NB_AXES(1), true), 2, 1);
        nbt_assert_values(nb_mean_axes(x, NB_AXES(-1), true), row_mean, 0);
        nbt_assert_values(nb_max_axes(x, NB_AXES(0), false), col_max, 0);
        nbt_assert_shape(nb_max_axes(x, NB_AXES(-1), true), 2, 1);
        nbt_assert_values(nb_max_axes(x, NB_AXES(-1), true), row_max, 0);
        ck_assert_int_eq(nb_max_axes(x, NB_AXES(0), false)->dtype, dt);

        /* [2,3,4] = arange(24): several axes at once, in any order */
        nb_tensor *y = nb_reshape(nb_arange(dt, 0, 24, 1), NB_SHAPE(2, 3, 4));
        const double s02[3] = { 60, 92, 124 }, m02[3] = { 7.5, 11.5, 15.5 }, x02[3] = { 15, 19, 23 };
        nbt_assert_shape(nb_sum_axes(y, NB_AXES(0, 2), false), 3);
        nbt_assert_values(nb_sum_axes(y, NB_AXES(0, 2), false), s02, 0);
        nbt_assert_shape(nb_sum_axes(y, NB_AXES(2, 0), true), 1, 3, 1);
        nbt_assert_values(nb_sum_axes(y, NB_AXES(-1, 0), true), s02, 0);
        nbt_assert_values(nb_mean_axes(y, NB_AXES(0, -1), false), m02, 0);
        nbt_assert_values(nb_max_axes(y, NB_AXES(2, 0), false), x02, 0);
        const double sum_mid[8] = { 12, 15, 18, 21, 48, 51, 54, 57 };
        nbt_assert_shape(nb_sum_axes(y, NB_AXES(1), false), 2, 4);
        nbt_assert_values(nb_sum_axes(y, NB_AXES(1), false), sum_mid, 0);
    }
}
END_TEST

START_TEST(test_strided_inputs)
{
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), X23);
    nb_tensor *t = nb_transpose(x, 0, 1);   /* [[1,4],[2,5],[3,6]] */
    const double row_sum[3] = { 5, 7, 9 }, col_max[2] = { 3, 6 };
    nbt_assert_values(nb_sum_axes(t, NB_AXES(1), false), row_sum, 0);
    nbt_assert_values(nb_max_axes(t, NB_AXES(0), false), col_max, 0);
    ck_assert(nb_item(nb_sum(t)) == 21);
    /* an expanded (stride 0) input: each of the 4 rows counts */
    nb_tensor *e = nb_expand(nb_reshape(x, NB_SHAPE(1, 6)), NB_SHAPE(4, 6));
    ck_assert(nb_item(nb_sum(e)) == 84);
    const double four_x[6] = { 4, 8, 12, 16, 20, 24 };
    nbt_assert_values(nb_sum_axes(e, NB_AXES(0), false), four_x, 0);
    nbt_assert_values(nb_mean_axes(e, NB_AXES(0), false), X23, 0);
}
END_TEST

START_TEST(test_f32_accumulates_in_double)
{
    /* 10⁶ copies of 0.1f: a float accumulator drifts by about 1%, a double one is exact to float */
    enum { N = 1000000 };
    nb_tensor *x = nb_full(NB_F32, NB_SHAPE(N), 0.1);
    double exact = (double)N * (double)0.1f;
    ck_assert_msg(nb_item(nb_sum(x)) == (float)exact, "%.9g", nb_item(nb_sum(x)));
    ck_assert(nb_item(nb_mean(x)) == 0.1f);
    /* along an axis, both when the reduced axis is innermost and when it is outermost */
    nb_tensor *m = nb_reshape(x, NB_SHAPE(1000, 1000));
    nb_tensor *rows = nb_sum_axes(m, NB_AXES(1), false), *cols = nb_sum_axes(m, NB_AXES(0), false);
    ck_assert(nb_get(rows, 17) == (float)(1000 * (double)0.1f));
    ck_assert(nb_get(cols, 999) == (float)(1000 * (double)0.1f));
}
END_TEST

/* contiguous rows are summed in 16 lanes then a tail: every length around the lanes' multiples, in
 * f32 and f64, against a long double sum of the same values */
START_TEST(test_sum_of_contiguous_rows)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    const nb_dtype dts[2] = { NB_F32, NB_F64 };
    for (int d = 0; d < 2; d++)
        for (int64_t n = 1; n <= 70; n++) {
            nb_tensor *x = nb_rand(dts[d], NB_SHAPE(n), &rng, -1, 3);
            long double exact = 0;
            for (int64_t i = 0; i < n; i++) exact += nb_get(x, i);
            double sum = nb_item(nb_sum(x));
            double tol = (dts[d] == NB_F32 ? 1e-6 : 1e-14) * (1 + fabsl(exact));
            ck_assert_msg(fabs(sum - (double)exact) <= tol, "%s n=%lld: %.17g vs %.17Lg", nb_dtype_name(dts[d]),
                          (long long)n, sum, exact);
        }
}
END_TEST

/* sums over leading axes of a contiguous tensor with rows of 16 or more (a bias's gradient) take a
 * column kernel: in f32 and f64, one and two leading axes, row widths about the vector widths, against a
 * long double sum and against a strided view of the same values (the general loop) */
START_TEST(test_sum_over_leading_axes)
{
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    const nb_dtype dts[2] = { NB_F32, NB_F64 };
    const int64_t widths[5] = { 16, 17, 31, 64, 100 };
    for (int d = 0; d < 2; d++)
        for (int w = 0; w < 5; w++) {
            const int64_t A = 3, B = 7, C = widths[w];
            nb_tensor *x = nb_rand(dts[d], NB_SHAPE(A, B, C), &rng, -1, 3);
            nb_tensor *one = nb_sum_axes(x, NB_AXES(0), false), *two = nb_sum_axes(x, NB_AXES(0, 1), false);
            nb_tensor *general = nb_sum_axes(nb_transpose(nb_contiguous(nb_transpose(x, 0, 1)), 0, 1), NB_AXES(0, 1), false);
            nbt_assert_shape(two, C);
            nbt_assert_shape(one, B, C);
            const double tol = dts[d] == NB_F32 ? 1e-6 : 1e-14;
            for (int64_t c = 0; c < C; c++) {
                long double exact = 0;
                for (int64_t i = 0; i < A * B; i++) exact += nb_get(x, i * C + c);
                ck_assert_msg(fabs(nb_get(two, c) - (double)exact) <= tol * (1 + fabsl(exact)),
                              "%s width %lld column %lld: %.17g vs %.17Lg", nb_dtype_name(dts[d]), (long long)C,
                              (long long)c, nb_get(two, c), exact);
                ck_assert(fabs(nb_get(general, c) - nb_get(two, c)) <= tol * (1 + fabsl(exact)));
                for (int64_t b = 0; b < B; b++) {   /* three addends in double, in order, rounded once */
                    double sum = 0;
                    for (int64_t a = 0; a < A; a++) sum += nb_get(x, (a * B + b) * C + c);
                    ck_assert(nb_get(one, b * C + c) == (dts[d] == NB_F32 ? (double)(float)sum : sum));
                }
            }
        }
}
END_TEST

START_TEST(test_empty)
{
    nb_tensor *e = nb_zeros(NB_F64, NB_SHAPE(0, 3));
    ck_assert(nb_item(nb_sum(e)) == 0);
    const double zeros[3] = { 0, 0, 0 };
    nbt_assert_shape(nb_sum_axes(e, NB_AXES(0), false), 3);
    nbt_assert_values(nb_sum_axes(e, NB_AXES(0), false), zeros, 0);
    nbt_assert_shape(nb_sum_axes(e, NB_AXES(1), false), 0);
    nbt_assert_shape(nb_mean_axes(e, NB_AXES(1), false), 0);   /* no output elements: fine */
    nbt_assert_shape(nb_max_axes(e, NB_AXES(1), true), 0, 1);
    nbt_assert_error(nb_mean(e), "nb_mean: mean over no elements of [0,3]");
    nbt_assert_error(nb_mean_axes(e, NB_AXES(0), true), "nb_mean: mean over no elements of [0,3]");
    nbt_assert_error(nb_max(e), "nb_max: max over no elements of [0,3]");
    nbt_assert_error(nb_argmax(e, 0, false), "nb_argmax: empty axis 0 of [0,3]");
    nbt_assert_shape(nb_argmax(e, 1, false), 0);
}
END_TEST

START_TEST(test_argmax)
{
    /* [[1,3,3],[5,2,5]]: ties go to the first */
    const double v[6] = { 1, 3, 3, 5, 2, 5 };
    nb_dtype dts[3] = { NB_F32, NB_F64, NB_I64 };
    for (int k = 0; k < 3; k++) {
        nb_tensor *x = nb_from_doubles(dts[k], NB_SHAPE(2, 3), v);
        nb_tensor *a1 = nb_argmax(x, 1, false);
        const double along1[2] = { 1, 0 }, along0[3] = { 1, 0, 1 };
        nbt_assert_shape(a1, 2);
        ck_assert_int_eq(a1->dtype, NB_I64);
        nbt_assert_values(a1, along1, 0);
        nbt_assert_values(nb_argmax(x, -1, false), along1, 0);
        nbt_assert_shape(nb_argmax(x, 1, true), 2, 1);
        nbt_assert_values(nb_argmax(x, 1, true), along1, 0);
        nbt_assert_shape(nb_argmax(x, 0, true), 1, 3);
        nbt_assert_values(nb_argmax(x, 0, false), along0, 0);
        /* through a transposed view */
        nbt_assert_values(nb_argmax(nb_transpose(x, 0, 1), 0, false), along1, 0);
        ck_assert(!a1->requires_grad);
    }
    /* a middle axis of [2,3,2] */
    const double w[12] = { 0, 9, 5, 1, 7, 2, 3, 3, 8, 0, 8, 4 };
    nb_tensor *a = nb_argmax(nb_from_doubles(NB_F64, NB_SHAPE(2, 3, 2), w), 1, false);
    const double mid[4] = { 2, 0, 1, 2 };
    nbt_assert_shape(a, 2, 2);
    nbt_assert_values(a, mid, 0);
    /* NaN wins, as in NumPy */
    const double n[3] = { 1, NAN, 5 };
    ck_assert(nb_item(nb_argmax(nb_from_doubles(NB_F64, NB_SHAPE(3), n), 0, false)) == 1);
    ck_assert(isnan(nb_item(nb_max(nb_from_doubles(NB_F64, NB_SHAPE(3), n)))));
    /* a 0-d tensor has no axis */
    nbt_assert_error(nb_argmax(nb_scalar(NB_F64, 1), 0, false), "nb_argmax: axis 0 out of range for []");
}
END_TEST

START_TEST(test_sum_to)
{
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), X23);
    const double cols[3] = { 5, 7, 9 }, rows[2] = { 6, 15 }, all[1] = { 21 };
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE(3)), 3);
    nbt_assert_values(nb_sum_to(x, NB_SHAPE(3)), cols, 0);
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE(1, 3)), 1, 3);
    nbt_assert_values(nb_sum_to(x, NB_SHAPE(1, 3)), cols, 0);
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE(2, 1)), 2, 1);
    nbt_assert_values(nb_sum_to(x, NB_SHAPE(2, 1)), rows, 0);
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE(1, 1)), 1, 1);
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE(1)), 1);
    nbt_assert_values(nb_sum_to(x, NB_SHAPE0), all, 0);
    nbt_assert_shape(nb_sum_to(x, NB_SHAPE0));
    ck_assert_ptr_eq(nb_sum_to(x, NB_SHAPE(2, 3)), x);   /* nothing to undo */
    /* [2,3,4] -> [3,1] */
    nb_tensor *y = nb_reshape(nb_arange(NB_F32, 0, 24, 1), NB_SHAPE(2, 3, 4));
    const double s31[3] = { 60, 92, 124 };
    nbt_assert_shape(nb_sum_to(y, NB_SHAPE(3, 1)), 3, 1);
    nbt_assert_values(nb_sum_to(y, NB_SHAPE(3, 1)), s31, 0);

    nbt_assert_error(nb_sum_to(x, NB_SHAPE(4)), "nb_sum_to: [4] does not broadcast to [2,3]");
    nbt_assert_error(nb_sum_to(x, NB_SHAPE(2)), "nb_sum_to: [2] does not broadcast to [2,3]");
    nbt_assert_error(nb_sum_to(x, NB_SHAPE(1, 2, 3)), "nb_sum_to: [1,2,3] does not broadcast to [2,3]");
}
END_TEST

/* ---- gradients ---- */

typedef enum { SUM, MEAN, MAX } reduction;
typedef struct { reduction op; nb_axes axes; bool keepdim; bool transpose; } reduce_case;

static nb_tensor *apply_reduce(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const reduce_case *c = ctx;
    nb_tensor *x = c->transpose ? nb_transpose(in[0], 0, 2) : in[0];
    switch (c->op) {
    case SUM: return nb_sum_axes(x, c->axes, c->keepdim);
    case MEAN: return nb_mean_axes(x, c->axes, c->keepdim);
    default: return nb_max_axes(x, c->axes, c->keepdim);
    }
}

static nb_tensor *apply_sum_to(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_sum_to(nb_square(in[0]), *(const nb_shape *)ctx);
}

static const reduce_case reduce_cases[] = {
    { SUM, { 1, { 1 } }, false, false },     { SUM, { 2, { 0, 2 } }, true, false },
    { SUM, { 1, { -1 } }, true, true },      { SUM, { 3, { 0, 1, 2 } }, false, true },
    { MEAN, { 1, { 0 } }, false, false },    { MEAN, { 2, { -1, 1 } }, true, true },
    { MEAN, { 3, { 2, 1, 0 } }, false, false },
    { MAX, { 1, { 1 } }, false, false },     { MAX, { 2, { 0, 2 } }, true, true },
    { MAX, { 3, { 0, 1, 2 } }, false, false },
};
enum { N_REDUCE = sizeof reduce_cases / sizeof reduce_cases[0] };

START_TEST(test_reduce_grad)
{
    const reduce_case *c = &reduce_cases[_i];
    nb_rng rng;
    nb_rng_seed(&rng, 400 + (uint64_t)_i);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1);   /* distinct values: no ties for max */
    nbt_gradcheck(apply_reduce, (void *)c, 1, &x, 1e-7, c->op == MAX);
    nbt_gradgradcheck(apply_reduce, (void *)c, 1, &x, 1e-7);
}
END_TEST

START_TEST(test_sum_to_grad)
{
    nb_rng rng;
    nb_rng_seed(&rng, 500);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1);
    nb_shape targets[4] = { NB_SHAPE(3, 1), NB_SHAPE(4), NB_SHAPE(2, 1, 4), NB_SHAPE0 };
    for (int i = 0; i < 4; i++) {
        nbt_gradcheck(apply_sum_to, &targets[i], 1, &x, 1e-7, false);
        nbt_gradgradcheck(apply_sum_to, &targets[i], 1, &x, 1e-7);
    }
}
END_TEST

START_TEST(test_grad_values)
{
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), X23);
    nb_set_requires_grad(x, true);
    /* mean over axis 1, weighted by [1, 2]: each row's elements get weight/3 */
    const double w[2] = { 1, 2 };
    nb_tensor *m = nb_mean_axes(x, NB_AXES(1), false);
    ck_assert_int_eq(nb_backward_with(m, nb_from_doubles(NB_F64, NB_SHAPE(2), w)), 0);
    const double dm[6] = { 1.0 / 3, 1.0 / 3, 1.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3 };
    nbt_assert_values(x->grad, dm, 1e-15);
    /* Σ sum_to(x², [3]) = Σ x²: 2x */
    nb_zero_grad(x);
    ck_assert_int_eq(nb_backward(nb_sum(nb_sum_to(nb_mul(x, x), NB_SHAPE(3)))), 0);
    const double two_x[6] = { 2, 4, 6, 8, 10, 12 };
    nbt_assert_values(x->grad, two_x, 0);
}
END_TEST

START_TEST(test_max_ties)
{
    /* [[1,3,3],[2,0,2]]: the row maxima are tied twice; each tied element gets half */
    const double v[6] = { 1, 3, 3, 2, 0, 2 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), v);
    nb_set_requires_grad(x, true);
    const double rmax[2] = { 3, 2 };
    nb_tensor *m = nb_max_axes(x, NB_AXES(1), false);
    nbt_assert_values(m, rmax, 0);
    const double up[2] = { 1, 10 };
    ck_assert_int_eq(nb_backward_with(m, nb_from_doubles(NB_F64, NB_SHAPE(2), up)), 0);
    const double dx[6] = { 0, 0.5, 0.5, 5, 0, 5 };
    nbt_assert_values(x->grad, dx, 0);
    /* over all six elements: the two 3s share */
    nb_zero_grad(x);
    ck_assert_int_eq(nb_backward(nb_max(x)), 0);
    const double dall[6] = { 0, 0.5, 0.5, 0, 0, 0 };
    nbt_assert_values(x->grad, dall, 0);
    /* three equal maxima in f32: a third each */
    const double t[4] = { 7, 7, -1, 7 };
    nb_tensor *y = nb_from_doubles(NB_F32, NB_SHAPE(4), t);
    nb_set_requires_grad(y, true);
    ck_assert_int_eq(nb_backward(nb_max(y)), 0);
    const double third[4] = { 1.0 / 3, 1.0 / 3, 0, 1.0 / 3 };
    nbt_assert_values(y->grad, third, 1e-7);
    /* with create_graph the second derivative of max is 0 */
    nb_tensor *g, *gg;
    ck_assert_int_eq(nb_grad(nb_max(nb_mul(x, x)), NULL, 1, &x, &g, true), 0);
    const double g1[6] = { 0, 3, 3, 0, 0, 0 };   /* max of x² = 9, tied twice: ½·2x */
    nbt_assert_values(g, g1, 0);
    ck_assert_int_eq(nb_grad(nb_sum(g), NULL, 1, &x, &gg, false), 0);
    const double g2[6] = { 0, 1, 1, 0, 0, 0 };
    nbt_assert_values(gg, g2, 0);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_errors)
{
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(2, 3));
    nbt_assert_error(nb_sum_axes(x, NB_AXES(2), false), "nb_sum: axis 2 out of range for [2,3]");
    nbt_assert_error(nb_sum_axes(x, NB_AXES(-3), true), "nb_sum: axis -3 out of range for [2,3]");
    nbt_assert_error(nb_sum_axes(x, NB_AXES(1, -1), false), "nb_sum: axis -1 repeated for [2,3]");
    nbt_assert_error(nb_mean_axes(x, NB_AXES(0, 0), false), "nb_mean: axis 0 repeated for [2,3]");
    nbt_assert_error(nb_max_axes(x, NB_AXES(5), false), "nb_max: axis 5 out of range for [2,3]");
    nbt_assert_error(nb_argmax(x, 2, false), "nb_argmax: axis 2 out of range for [2,3]");
    nbt_assert_error(nb_argmax(x, -3, true), "nb_argmax: axis -3 out of range for [2,3]");
    nbt_assert_error(nb_sum(nb_zeros(NB_I64, NB_SHAPE(2))), "nb_sum: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_mean(nb_zeros(NB_I64, NB_SHAPE(2))), "nb_mean: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_max(nb_zeros(NB_I64, NB_SHAPE(2))), "nb_max: expected a f32 or f64 tensor, got i64 [2]");
    nb_axes too_many = { 9, { 0 } };
    nbt_assert_error(nb_sum_axes(x, too_many, false), "nb_sum: 9 axes given, at most 8 allowed");
}
END_TEST

static Suite *reduce_suite(void)
{
    Suite *s = suite_create("reduce");
    TCase *c = tcase_create("forward");
    tcase_add_test(c, test_sum_mean_max_all);
    tcase_add_test(c, test_axes);
    tcase_add_test(c, test_strided_inputs);
    tcase_add_test(c, test_f32_accumulates_in_double);
    tcase_add_test(c, test_sum_of_contiguous_rows);
    tcase_add_test(c, test_sum_over_leading_axes);
    tcase_add_test(c, test_empty);
    tcase_add_test(c, test_argmax);
    tcase_add_test(c, test_sum_to);
    suite_add_tcase(s, c);
    c = tcase_create("grad");
    tcase_add_loop_test(c, test_reduce_grad, 0, N_REDUCE);
    tcase_add_test(c, test_sum_to_grad);
    tcase_add_test(c, test_grad_values);
    tcase_add_test(c, test_max_ties);
    suite_add_tcase(s, c);
    c = tcase_create("errors");
    tcase_add_test(c, test_errors);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(reduce_suite)
