/* nb_log_softmax: values (also for huge inputs), gradients and second derivatives along every axis
 * of strided inputs, errors. */
#include "nbtest.h"

#include <stdlib.h>

/* ---- log_softmax: forward ---- */

START_TEST(forward_rows)
{
    double v[6] = { 1, 2, 3, 1000, 1000, 1000 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), v);
    /* log(1 + e^-1 + e^-2) = 0.4076059644443804; log 3 = 1.0986122886681098 */
    double expected[6] = { -2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
                           -1.0986122886681098, -1.0986122886681098, -1.0986122886681098 };
    nbt_assert_values(nb_log_softmax(x, 1), expected, 1e-14);
    nbt_assert_values(nb_log_softmax(x, -1), expected, 1e-14);
    nbt_assert_shape(nb_log_softmax(x, 1), 2, 3);
}
END_TEST

START_TEST(forward_is_stable_for_huge_and_tiny_values)
{
    double v[4] = { 1000, 0, -1000, -1001 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 2), v);
    /* log(1 + e^-1000) = 0 in double; -1000 - (-1000 + log(1 + e^-1)) with log(1+e^-1) = 0.31326168751822286 */
    double expected[4] = { 0, -1000, -0.31326168751822286, -1.31326168751822286 };
    nbt_assert_values(nb_log_softmax(x, 1), expected, 1e-12);
}
END_TEST

START_TEST(forward_along_axis_0_and_strided)
{
    double v[6] = { 1, 1000, 2, 1000, 3, 1000 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(3, 2), v);
    double expected[6] = { -2.4076059644443806, -1.0986122886681098, -1.4076059644443804,
                           -1.0986122886681098, -0.4076059644443804, -1.0986122886681098 };
    nbt_assert_values(nb_log_softmax(x, 0), expected, 1e-14);
    /* the transposed view [2,3] along its axis 1 is the same computation */
    double expected_t[6] = { -2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
                             -1.0986122886681098, -1.0986122886681098, -1.0986122886681098 };
    nbt_assert_values(nb_log_softmax(nb_transpose(x, 0, 1), 1), expected_t, 1e-14);
}
END_TEST

START_TEST(forward_3d_middle_axis)
{
    /* x[i][j][k] = j + 10·i + 100·k: along axis 1 each line is (c, c+1, c+2) */
    double v[12];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) v[i * 6 + j * 2 + k] = j + 10 * i + 100 * k;
    nb_tensor *y = nb_log_softmax(nb_from_doubles(NB_F64, NB_SHAPE(2, 3, 2), v), 1);
    nbt_assert_shape(y, 2, 3, 2);
    double line[3] = { -2.4076059644443806, -1.4076059644443804, -0.4076059644443804 };
    for (int i = 0; i < 12; i++) ck_assert(fabs(nb_get(y, i) - line[(i / 2) % 3]) < 1e-12);
}
END_TEST

START_TEST(forward_f32)
{
    float v[6] = { 1, 2, 3, 1000, 1000, 1000 };
    nb_tensor *x = nb_from_data(NB_F32, NB_SHAPE(2, 3), v);
    nb_tensor *y = nb_log_softmax(x, 1);
    ck_assert_int_eq(y->dtype, NB_F32);
    double expected[6] = { -2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
                           -1.0986122886681098, -1.0986122886681098, -1.0986122886681098 };
    nbt_assert_values(y, expected, 1e-6);
}
END_TEST

/* float rows go through vectorized exp (vmath.h): against double to float's rounding over rows of
 * every length up to two vector widths, -inf entries give 0, a NaN gives NaN in its row only */
START_TEST(forward_f32_rows_vectorized)
{
    nb_rng rng;
    nb_rng_seed(&rng, 41);
    for (int64_t n = 1; n <= 40; n++) {
        nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(3, n), &rng, 30), *x32 = nb_cast(x, NB_F32);
        nb_tensor *x64 = nb_cast(x32, NB_F64);   /* the same values in double */
        nbt_assert_same(nb_softmax(x32, 1), nb_softmax(x64, 1), 2e-7);
        nb_tensor *l32 = nb_log_softmax(x32, 1), *l64 = nb_log_softmax(x64, 1);
        for (int64_t i = 0; i < 3 * n; i++)
            ck_assert_msg(fabs(nb_get(l32, i) - nb_get(l64, i)) <= 2e-6 * fmax(1, fabs(nb_get(l64, i))), "n %lld, element %lld",
                          (long long)n, (long long)i);
    }
    float v[8] = { 0, -INFINITY, 1, -200, NAN, 1, 2, 3 };
    nb_tensor *y = nb_softmax(nb_from_data(NB_F32, NB_SHAPE(2, 4), v), 1);
    ck_assert(nb_get(y, 1) == 0 && nb_get(y, 3) == 0);
    ck_assert_double_eq_tol(nb_get(y, 0) + nb_get(y, 2), 1, 1e-7);
    for (int j = 4; j < 8; j++) ck_assert(isnan(nb_get(y, j)));
}
END_TEST

START_TEST(forward_one_element_and_empty)
{
    nb_tensor *one = nb_log_softmax(nb_full(NB_F64, NB_SHAPE(3, 1), 7.5), 1);
    double zeros[3] = { 0, 0, 0 };
    nbt_assert_values(one, zeros, 0);
    nbt_assert_shape(nb_log_softmax(nb_zeros(NB_F64, NB_SHAPE(0, 4)), 1), 0, 4);
    nbt_assert_shape(nb_log_softmax(nb_zeros(NB_F64, NB_SHAPE(2, 0)), 1), 2, 0);
}
END_TEST

/* ---- log_softmax: gradients ---- */

static nb_tensor *log_softmax_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_log_softmax(in[0], *(const int *)ctx);
}

static void check_axis(nb_tensor *x, int axis)
{
    nbt_gradcheck(log_softmax_fn, &axis, 1, &x, 1e-7, false);
    nbt_gradgradcheck(log_softmax_fn, &axis, 1, &x, 1e-7);
}

START_TEST(gradients_2d)
{
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(3, 4), -2, 2);
    check_axis(x, 1);
    check_axis(x, 0);
    check_axis(x, -1);
}
END_TEST

START_TEST(gradients_3d_every_axis)
{
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4), -2, 2);
    for (int axis = 0; axis < 3; axis++) check_axis(x, axis);
}
END_TEST

START_TEST(gradients_non_contiguous)
{
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    nb_tensor *base = nb_rand(NB_F64, NB_SHAPE(4, 3), &rng, -2, 2);
    nb_tensor *transposed = nb_detach(nb_transpose(base, 0, 1));   /* [3,4], strides (1,3) */
    nb_set_requires_grad(transposed, true);
    check_axis(transposed, 1);
    check_axis(transposed, 0);
    nb_tensor *wide = nb_rand(NB_F64, NB_SHAPE(3, 7), &rng, -2, 2);
    nb_tensor *sliced = nb_detach(nb_slice(wide, 1, 1, 7, 2));      /* [3,3], stride 2 along axis 1 */
    ck_assert_ptr_nonnull(sliced);
    nb_set_requires_grad(sliced, true);
    check_axis(sliced, 1);
    check_axis(sliced, 0);
}
END_TEST

START_TEST(gradient_rows_sum_to_zero)
{
    /* Σ_j d(Σ_i g_i y_i)/dx_j = Σ g - Σ softmax · Σ g = 0 for every row */
    nb_rng rng;
    nb_rng_seed(&rng, 14);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 5), -3, 3);
    nb_tensor *g = nb_rand(NB_F64, NB_SHAPE(2, 5), &rng, -1, 1);
    nb_tensor *dx = NULL;
    ck_assert_int_eq(nb_grad(nb_log_softmax(x, 1), g, 1, &x, &dx, false), 0);
    double zeros[2] = { 0, 0 };
    nbt_assert_values(nb_sum_axes(dx, NB_AXES(1), false), zeros, 1e-12);
}
END_TEST

/* float log_softmax's gradient along the last axis is one kernel without create_graph: against the
 * recorded ops (create_graph) and against double, rows of every length 1-40 and a long row; -inf
 * logits (probability 0) keep finite gradients, a NaN row stays NaN */
START_TEST(log_softmax_gradient_f32_rows)
{
    nb_rng rng;
    nb_rng_seed(&rng, 43);
    for (int64_t n = 1; n <= 41; n++) {
        const int64_t len = n == 41 ? 1000 : n;
        nb_tensor *x = nb_cast(nb_randn(NB_F64, NB_SHAPE(5, len), &rng, 10), NB_F32);
        nb_tensor *w = nb_cast(nb_randn(NB_F64, NB_SHAPE(5, len), &rng, 1), NB_F32);
        nb_tensor *x64 = nb_cast(x, NB_F64), *w64 = nb_cast(w, NB_F64);
        nb_set_requires_grad(x, true);
        nb_set_requires_grad(x64, true);
        nb_tensor *y = nb_sum(nb_mul(nb_log_softmax(x, 1), w)), *fast = NULL, *ops = NULL, *exact = NULL;
        ck_assert_int_eq(nb_grad(y, NULL, 1, &x, &fast, false), 0);
        ck_assert_int_eq(nb_grad(y, NULL, 1, &x, &ops, true), 0);
        ck_assert_int_eq(nb_grad(nb_sum(nb_mul(nb_log_softmax(x64, 1), w64)), NULL, 1, &x64, &exact, false), 0);
        for (int64_t i = 0; i < 5 * len; i++) {
            const double scale = 1e-6 * (1 + fabs(nb_get(exact, i))) * (len > 40 ? 10 : 1);
            ck_assert_msg(fabs(nb_get(fast, i) - nb_get(exact, i)) <= scale, "length %lld, element %lld: %.9g vs %.17g",
                          (long long)len, (long long)i, nb_get(fast, i), nb_get(exact, i));
            ck_assert(fabs(nb_get(fast, i) - nb_get(ops, i)) <= scale);
        }
    }
    float v[8] = { 0, -INFINITY, 1, 2, NAN, 1, 2, 3 };
    nb_tensor *x = nb_from_data(NB_F32, NB_SHAPE(2, 4), v), *g = NULL;
    nb_set_requires_grad(x, true);
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul_scalar(nb_log_softmax(x, 1), 1)), NULL, 1, &x, &g, false), 0);
    ck_assert(nb_get(g, 1) == 1);   /* d/dx of Σ log p: 1 − 4·p, and p = 0 there */
    for (int j = 0; j < 4; j++) ck_assert(isfinite(nb_get(g, j)));
    for (int j = 4; j < 8; j++) ck_assert(isnan(nb_get(g, j)));
}
END_TEST

START_TEST(errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nbt_assert_error(nb_log_softmax(x, 2), "nb_log_softmax: axis 2 out of range for [2,3]");
    nbt_assert_error(nb_log_softmax(x, -3), "nb_log_softmax: axis -3 out of range for [2,3]");
    nbt_assert_error(nb_log_softmax(nb_scalar(NB_F64, 1), 0), "nb_log_softmax: axis 0 out of range for []");
    nbt_assert_error(nb_log_softmax(nb_zeros(NB_I64, NB_SHAPE(2, 3)), 1),
                     "nb_log_softmax: expected a f32 or f64 tensor, got i64 [2,3]");
    /* NULL in, NULL out, the first message kept */
    nb_clear_error();
    ck_assert_ptr_null(nb_log_softmax(nb_reshape(x, NB_SHAPE(4)), 0));
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [2,3] (6 elements) into [4]");
}
END_TEST

static Suite *softmax_suite(void)
{
    Suite *s = suite_create("softmax");
    TCase *fwd = tcase_create("forward");
    tcase_add_test(fwd, forward_rows);
    tcase_add_test(fwd, forward_f32_rows_vectorized);
    tcase_add_test(fwd, forward_is_stable_for_huge_and_tiny_values);
    tcase_add_test(fwd, forward_along_axis_0_and_strided);
    tcase_add_test(fwd, forward_3d_middle_axis);
    tcase_add_test(fwd, forward_f32);
    tcase_add_test(fwd, forward_one_element_and_empty);
    tcase_add_test(fwd, errors);
    suite_add_tcase(s, fwd);
    TCase *grad = tcase_create("gradients");
    tcase_add_test(grad, gradients_2d);
    tcase_add_test(grad, gradients_3d_every_axis);
    tcase_add_test(grad, gradients_non_contiguous);
    tcase_add_test(grad, gradient_rows_sum_to_zero);
    tcase_add_test(grad, log_softmax_gradient_f32_rows);
    suite_add_tcase(s, grad);
    return s;
}

NBT_MAIN(softmax_suite)
