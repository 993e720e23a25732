/* nb_gradcheck / nb_gradgradcheck: they pass for correct ops, catch wrong first and second
 * derivatives, skip kinks on request, report errors; and nb_grad with create_graph. */
#include "nbtest.h"

/* ---- functions under check ---- */

static nb_tensor *tanh_times_exp(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_mul(nb_tanh(in[0]), nb_exp(in[1]));
}

/* sum over axis 1 of tanh(x)ᵀ·exp, through reshape: exercises views inside f */
static nb_tensor *composite(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    nb_tensor *t = nb_transpose(nb_tanh(in[0]), 0, 1);              /* [4,3] */
    nb_tensor *flat = nb_reshape(nb_mul(t, nb_exp(t)), NB_SHAPE(2, 6));
    return nb_sum_axes(flat, NB_AXES(1), false);
}

static nb_tensor *tanh_only(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_tanh(in[0]);
}

static nb_tensor *exp_only(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_exp(in[0]);
}

static nb_tensor *mul_only(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_mul(in[0], in[1]);
}

static nb_tensor *sum_only(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_sum(in[0]);
}

static nb_tensor *relu_only(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_relu(in[0]);
}

static nb_tensor *row_max(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_max_axes(in[0], NB_AXES(1), false);
}

/* x·x with one factor detached: the analytic gradient misses the term x */
static nb_tensor *square_missing_term(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_mul(in[0], nb_detach(in[0]));
}

/* exp(x) with the right value and first derivative, but a gradient that is constant in x
 * (straight-through): detach(e) + (x - detach(x))·detach(e) with e = exp(x) */
static nb_tensor *exp_flat_second(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    nb_tensor *x = in[0], *e = nb_detach(nb_exp(x));
    return nb_add(e, nb_mul(nb_sub(x, nb_detach(x)), e));
}

static nb_tensor *bad_reshape(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_reshape(in[0], NB_SHAPE(4));
}

/* ---- passing checks ---- */

START_TEST(defaults_are_pytorch_like)
{
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    ck_assert(o.eps == 1e-4);
    ck_assert(o.atol == 1e-5);
    ck_assert(o.rtol == 1e-3);
    ck_assert(!o.skip_kinks);
}
END_TEST

START_TEST(passes_for_correct_ops_with_broadcast)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(tanh_times_exp, NULL, 2, in, &o, &r), 1);
    ck_assert_int_eq(r.checked, 16);
    ck_assert_int_eq(r.failed, 0);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert_msg(r.max_rel_error < 1e-7, "rel %g", r.max_rel_error);
    ck_assert_str_eq(r.first_failure, "");
}
END_TEST

START_TEST(passes_through_views_and_reductions)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(3, 4), -2, 2);
    nbt_gradcheck(composite, NULL, 1, &x, 1e-7, false);
    nbt_gradgradcheck(composite, NULL, 1, &x, 1e-7);
}
END_TEST

START_TEST(passes_for_non_contiguous_input)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *base = nb_rand(NB_F64, NB_SHAPE(4, 3), &rng, -1, 1);
    nb_tensor *xt = nb_detach(nb_transpose(base, 0, 1));   /* a strided leaf [3,4] */
    nb_set_requires_grad(xt, true);
    ck_assert(!nb_is_contiguous(xt));
    nb_tensor *in[2] = { xt, nbt_input(&rng, NB_SHAPE(3, 1), -1, 1) };
    nbt_gradcheck(tanh_times_exp, NULL, 2, in, 1e-7, false);
    nbt_gradgradcheck(tanh_times_exp, NULL, 2, in, 1e-7);
}
END_TEST

START_TEST(checks_only_inputs_requiring_grad)
{
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    /* the second input is a constant: not perturbed, not counted */
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(2, 3), -1, 1), nb_rand(NB_F64, NB_SHAPE(3), &rng, -1, 1) };
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(tanh_times_exp, NULL, 2, in, NULL, &r), 1);
    ck_assert_int_eq(r.checked, 6);
}
END_TEST

START_TEST(scalar_input_and_output)
{
    double v = 0.3;
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE0, &v);
    nb_set_requires_grad(x, true);
    nbt_gradcheck(tanh_only, NULL, 1, &x, 1e-7, false);
    nbt_gradgradcheck(tanh_only, NULL, 1, &x, 1e-7);
}
END_TEST

START_TEST(restores_inputs_and_keeps_caller_scope)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(5, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    double before[24];
    nb_to_doubles(in[0], before);
    nb_to_doubles(in[1], before + 20);
    size_t used = nb_scope_used(NULL);
    ck_assert_int_eq(nb_gradcheck(tanh_times_exp, NULL, 2, in, NULL, NULL), 1);
    ck_assert_int_eq(nb_gradgradcheck(tanh_times_exp, NULL, 2, in, NULL, NULL), 1);
    ck_assert_uint_eq(nb_scope_used(NULL), used);
    for (int i = 0; i < 20; i++) ck_assert(nb_get(in[0], i) == before[i]);
    for (int i = 0; i < 4; i++) ck_assert(nb_get(in[1], i) == before[20 + i]);
    ck_assert_ptr_null(in[0]->grad);
    ck_assert_ptr_null(in[1]->grad);
}
END_TEST

/* ---- failures and kinks ---- */

START_TEST(fails_for_missing_gradient_term)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3), 0.5, 1);
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(square_missing_term, NULL, 1, &x, NULL, &r), 0);
    ck_assert_int_eq(r.failed, 6);
    ck_assert_int_eq(r.checked, 6);
    ck_assert_msg(r.max_rel_error > 0.3, "rel %g", r.max_rel_error);   /* x against 2x: 1/3 */
    ck_assert_msg(strncmp(r.first_failure, "input 0 element 0: analytic ", 28) == 0, "%s", r.first_failure);
}
END_TEST

START_TEST(relu_kink_fails_unless_skipped)
{
    double v[4] = { -1.0, 0.0, 0.5, 2.0 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(4), v);
    nb_set_requires_grad(x, true);
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(relu_only, NULL, 1, &x, &o, &r), 0);
    ck_assert_int_eq(r.failed, 1);
    ck_assert_msg(strncmp(r.first_failure, "input 0 element 1: analytic 0 numeric ", 38) == 0, "%s", r.first_failure);
    o.skip_kinks = true;
    ck_assert_int_eq(nb_gradcheck(relu_only, NULL, 1, &x, &o, &r), 1);
    ck_assert_int_eq(r.skipped, 1);
    ck_assert_int_eq(r.checked, 3);
    ck_assert(r.max_rel_error < 1e-7);
    /* a kink within 2h of the point is skipped too; a smooth function never is */
    nb_set(x, 1, 1.5 * o.eps);
    ck_assert_int_eq(nb_gradcheck(relu_only, NULL, 1, &x, &o, &r), 1);
    ck_assert_int_eq(r.skipped, 1);
    nb_tensor *wide = nb_linspace(NB_F64, -3, 3, 25);
    nb_set_requires_grad(wide, true);
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &wide, &o, &r), 1);
    ck_assert_int_eq(r.skipped, 0);
}
END_TEST

START_TEST(max_ties_are_kinks)
{
    double v[6] = { 1.0, 1.0, 0.0, 0.2, 0.7, -0.4 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), v);
    nb_set_requires_grad(x, true);
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.skip_kinks = true;
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(row_max, NULL, 1, &x, &o, &r), 1);
    ck_assert_int_eq(r.skipped, 2);   /* the tied maxima of row 0 */
    ck_assert_int_eq(r.checked, 4);
}
END_TEST

START_TEST(gradgradcheck_passes_for_smooth_ops)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(2, 3), -1, 1), nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradgradcheck(tanh_only, NULL, 1, in, 1e-7);
    nbt_gradgradcheck(exp_only, NULL, 1, in, 1e-7);
    nbt_gradgradcheck(mul_only, NULL, 2, in, 1e-7);   /* broadcast */
    nbt_gradgradcheck(sum_only, NULL, 1, in, 1e-7);   /* linear: the second derivative is 0 */
}
END_TEST

START_TEST(gradgradcheck_catches_flat_gradient)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 2), -1, 1);
    nbt_gradcheck(exp_flat_second, NULL, 1, &x, 1e-7, false);   /* the first derivative is right */
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradgradcheck(exp_flat_second, NULL, 1, &x, NULL, &r), 0);
    ck_assert_int_eq(r.failed, 4);
    ck_assert_msg(strncmp(r.first_failure, "input 0 element 0: analytic 0 numeric ", 38) == 0, "%s", r.first_failure);
}
END_TEST

/* ---- errors ---- */

START_TEST(error_paths)
{
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *x32 = nb_rand(NB_F32, NB_SHAPE(2, 3), &rng, -1, 1);
    nb_set_requires_grad(x32, true);
    nb_gradcheck_result r;
    nb_clear_error();
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &x32, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: input 0 is f32 [2,3]; gradients are checked in f64");
    ck_assert_int_eq(nb_gradgradcheck(tanh_only, NULL, 1, &x32, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradgradcheck: input 0 is f32 [2,3]; gradients are checked in f64");

    nb_tensor *c = nb_rand(NB_F64, NB_SHAPE(2), &rng, -1, 1);
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &c, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: no input requires grad");

    nb_tensor *x = nbt_input(&rng, NB_SHAPE(1, 3), -1, 1);
    nb_tensor *wide = nb_detach(nb_expand(x, NB_SHAPE(2, 3)));
    nb_set_requires_grad(wide, true);
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &wide, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: input 0 [2,3] is broadcast (stride 0); pass the tensor before nb_expand");

    ck_assert_int_eq(nb_gradcheck(NULL, NULL, 1, &x, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: NULL function or inputs");

    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.eps = 0;
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &x, &o, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: eps must be positive, got 0");

    nb_tensor *y = nbt_input(&rng, NB_SHAPE(2, 3), -1, 1);
    ck_assert_int_eq(nb_gradcheck(bad_reshape, NULL, 1, &y, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_gradcheck: f returned NULL: nb_reshape: cannot reshape [2,3] (6 elements) into [4]");
    ck_assert_int_eq(r.checked, 0);

    /* a NULL input keeps the message of the failure that produced it */
    nb_tensor *bad = nb_reshape(y, NB_SHAPE(5));
    ck_assert_int_eq(nb_gradcheck(tanh_only, NULL, 1, &bad, NULL, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [2,3] (6 elements) into [5]");
}
END_TEST

/* ---- nb_grad with create_graph ---- */

START_TEST(second_derivative_of_cube)
{
    double v[3] = { 1.0, -2.0, 0.5 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(3), v);
    nb_set_requires_grad(x, true);
    nb_tensor *y = nb_sum(nb_mul(nb_mul(x, x), x));
    nb_tensor *dx = NULL, *ddx = NULL;
    ck_assert_int_eq(nb_grad(y, NULL, 1, &x, &dx, true), 0);
    double first[3] = { 3.0, 12.0, 0.75 };   /* 3x² */
    nbt_assert_values(dx, first, 1e-12);
    ck_assert(dx->requires_grad);
    ck_assert_int_eq(nb_grad(nb_sum(dx), NULL, 1, &x, &ddx, false), 0);
    double second[3] = { 6.0, -12.0, 3.0 };  /* 6x */
    nbt_assert_values(ddx, second, 1e-12);
    ck_assert(!ddx->requires_grad);
    ck_assert_ptr_null(x->grad);
}
END_TEST

static Suite *gradcheck_suite(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *pass = tcase_create("pass");
    tcase_add_test(pass, defaults_are_pytorch_like);
    tcase_add_test(pass, passes_for_correct_ops_with_broadcast);
    tcase_add_test(pass, passes_through_views_and_reductions);
    tcase_add_test(pass, passes_for_non_contiguous_input);
    tcase_add_test(pass, checks_only_inputs_requiring_grad);
    tcase_add_test(pass, scalar_input_and_output);
    tcase_add_test(pass, restores_inputs_and_keeps_caller_scope);
    tcase_add_test(pass, gradgradcheck_passes_for_smooth_ops);
    suite_add_tcase(s, pass);
    TCase *fail = tcase_create("fail");
    tcase_add_test(fail, fails_for_missing_gradient_term);
    tcase_add_test(fail, relu_kink_fails_unless_skipped);
    tcase_add_test(fail, max_ties_are_kinks);
    tcase_add_test(fail, gradgradcheck_catches_flat_gradient);
    tcase_add_test(fail, error_paths);
    suite_add_tcase(s, fail);
    TCase *grad = tcase_create("create_graph");
    tcase_add_test(grad, second_derivative_of_cube);
    suite_add_tcase(s, grad);
    return s;
}

NBT_MAIN(gradcheck_suite)
