/* Custom ops (nabla/custom.h): gradients checked in float64 (first and, for backwards written with
 * ops, second order), raw-kernel backwards refusing a second derivative, the op's name in errors and
 * anomaly reports, saved tensors written after the forward, and bad definitions. */
#include "nbtest.h"

/* cube(x) = x³ with the backward written with ops: differentiable again */
static nb_tensor *cube_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in) { return nb_mul(in[0], nb_square(in[0])); }
static int cube_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    gin[0] = nb_mul(g, nb_mul_scalar(nb_square(nb_custom_input(ctx, 0)), 3));
    return gin[0] ? 0 : -1;
}
static const nb_custom_op cube_op = { "cube", cube_forward, cube_backward, false };

/* fma(a, b, c) = a·b + c, three inputs, backward with ops */
static nb_tensor *fma_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in) { return nb_add(nb_mul(in[0], in[1]), in[2]); }
static int fma_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    if (nb_custom_needs_grad(ctx, 0) && !(gin[0] = nb_mul(g, nb_custom_input(ctx, 1)))) return -1;
    if (nb_custom_needs_grad(ctx, 1) && !(gin[1] = nb_mul(g, nb_custom_input(ctx, 0)))) return -1;
    if (nb_custom_needs_grad(ctx, 2)) gin[2] = g;
    return 0;
}
static const nb_custom_op fma_op = { "fma", fma_forward, fma_backward, false };

/* square with raw loops, saving 2x for its raw backward */
static nb_tensor *square_raw_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in)
{
    nb_tensor *x = nb_contiguous(in[0]);
    nb_tensor *y = nb_empty(NB_F64, nb_shape_of(x)), *twice = nb_empty(NB_F64, nb_shape_of(x));
    if (!y || !twice || x->dtype != NB_F64) return NULL;
    const double *xs = x->data;
    double *ys = y->data, *ts = twice->data;
    for (int64_t i = 0; i < nb_numel(x); i++) ys[i] = xs[i] * xs[i], ts[i] = 2 * xs[i];
    return nb_custom_save(ctx, twice) == 0 ? y : NULL;
}
static int square_raw_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *gc = nb_contiguous(g), *twice = nb_custom_saved(ctx, 0);
    nb_tensor *dx = gc && twice ? nb_empty(NB_F64, nb_shape_of(twice)) : NULL;
    if (!dx) return -1;
    for (int64_t i = 0; i < nb_numel(dx); i++)
        ((double *)dx->data)[i] = ((const double *)gc->data)[i] * ((const double *)twice->data)[i];
    gin[0] = dx;
    return 0;
}
static const nb_custom_op square_raw_op = { "square_raw", square_raw_forward, square_raw_backward, true };

static nb_tensor *apply_cube(void *c, int n, nb_tensor *const *in) { return nb_custom(&cube_op, 1, in, NULL); }
static nb_tensor *apply_fma(void *c, int n, nb_tensor *const *in) { return nb_custom(&fma_op, 3, in, NULL); }
static nb_tensor *apply_square_raw(void *c, int n, nb_tensor *const *in) { return nb_custom(&square_raw_op, 1, in, NULL); }

static nb_tensor *input(nb_shape s, uint64_t seed)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_tensor *t = nb_randn(NB_F64, s, &rng, 1.0);
    nb_set_requires_grad(t, true);
    return t;
}

static void assert_checks(nb_fn f, int n, nb_tensor *const *in, bool second)
{
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    nb_gradcheck_result r = { 0 };
    ck_assert_msg(nb_gradcheck(f, NULL, n, in, &opts, &r) == 1, "%s %s", r.first_failure, nb_last_error());
    ck_assert_int_gt(r.checked, 0);
    if (!second) return;
    ck_assert_msg(nb_gradgradcheck(f, NULL, n, in, &opts, &r) == 1, "%s %s", r.first_failure, nb_last_error());
}

START_TEST(test_custom_gradchecks)
{
    nb_tensor *x = input(NB_SHAPE(3, 4), 1);
    assert_checks(apply_cube, 1, &x, true);
    nb_tensor *abc[3] = { input(NB_SHAPE(2, 3), 2), input(NB_SHAPE(2, 3), 3), input(NB_SHAPE(2, 3), 4) };
    assert_checks(apply_fma, 3, abc, true);
    assert_checks(apply_square_raw, 1, &x, false);
    /* a strided (transposed) input goes through the raw kernel's nb_contiguous */
    nb_tensor *xt = nb_transpose(x, 0, 1);
    nb_tensor *y = apply_square_raw(NULL, 1, &xt);
    ck_assert(y != NULL);
    ck_assert(nb_item(nb_max(nb_abs(nb_sub(y, nb_square(xt))))) == 0);
}
END_TEST

START_TEST(test_custom_values_and_partial_grads)
{
    /* only b requires grad: the rule writes gin[1] alone */
    nb_tensor *a = nb_from_doubles(NB_F64, NB_SHAPE(2), (double[]){ 2, 3 });
    nb_tensor *b = input(NB_SHAPE(2), 5), *c = nb_ones(NB_F64, NB_SHAPE(2));
    nb_tensor *y = nb_custom(&fma_op, 3, (nb_tensor *[]){ a, b, c }, NULL);
    ck_assert_int_eq(nb_backward(nb_sum(y)), 0);
    nbt_assert_values(b->grad, ((double[]){ 2, 3 }), 0);
    ck_assert(a->grad == NULL && c->grad == NULL);
}
END_TEST

START_TEST(test_custom_raw_second_derivative_refused)
{
    nb_tensor *x = input(NB_SHAPE(3), 6);
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    nb_gradcheck_result r = { 0 };
    ck_assert_int_eq(nb_gradgradcheck(apply_square_raw, NULL, 1, &x, &opts, &r), -1);
    ck_assert_str_eq(nb_last_error(), "nb_grad: square_raw backward cannot be differentiated");
    /* while the first derivative built with create_graph is still right */
    nb_tensor *g = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(apply_square_raw(NULL, 1, &x)), NULL, 1, &x, &g, true), 0);
    nbt_assert_values(g, ((double[]){ 2 * nb_get(x, 0), 2 * nb_get(x, 1), 2 * nb_get(x, 2) }), 1e-15);
}
END_TEST

/* a backward that gets the shape wrong, and a forward that makes NaN */
static int wrong_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    gin[0] = nb_sum_axes(g, NB_AXES(0), false);
    return 0;
}
static const nb_custom_op wrong_op = { "wrong_shape", cube_forward, wrong_backward, false };
static nb_tensor *log_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in) { return nb_log(in[0]); }
static const nb_custom_op my_log_op = { "my_log", log_forward, NULL, false };

START_TEST(test_custom_name_in_errors)
{
    nb_tensor *x = input(NB_SHAPE(2, 3), 7);
    ck_assert_int_eq(nb_backward(nb_sum(nb_custom(&wrong_op, 1, &x, NULL))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: wrong_shape produced a gradient [3] for its input [2,3]");
    /* no backward: not differentiable, said with the name */
    ck_assert_int_eq(nb_backward(nb_sum(nb_custom(&my_log_op, 1, &x, NULL))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: my_log cannot be differentiated");
    /* anomaly mode names the custom op, not the ops inside its forward (grad mode is off there) */
    nb_tensor *neg = nb_from_doubles(NB_F64, NB_SHAPE(2), (double[]){ 1, -1 });
    nb_set_requires_grad(neg, true);
    nb_set_anomaly_mode(true);
    nb_tensor *y = nb_custom(&my_log_op, 1, &neg, NULL);
    ck_assert(y != NULL);
    ck_assert_str_eq(nb_anomaly(), "anomaly: nb_log produced nan at element 1 of its output [2] from finite inputs");
    /* a raw forward's output is checked under the op's own name */
    nb_anomaly_clear();
    nb_tensor *big = nb_from_doubles(NB_F64, NB_SHAPE(1), (double[]){ 1e300 });
    nb_set_requires_grad(big, true);
    ck_assert(apply_square_raw(NULL, 1, &big) != NULL);
    ck_assert_str_eq(nb_anomaly(), "anomaly: square_raw produced inf at element 0 of its output [1] from finite inputs");
    nb_set_anomaly_mode(false);
}
END_TEST

START_TEST(test_custom_saved_written)
{
    /* the raw op saved 2x; the input written after the forward is refused */
    nb_tensor *x = input(NB_SHAPE(3), 8);
    nb_tensor *y = nb_sum(apply_square_raw(NULL, 1, &x));
    nb_fill(x, 1);
    ck_assert_int_eq(nb_backward(y), -1);
    ck_assert(strstr(nb_last_error(), "nb_backward: square_raw's input 0 (f64 [3]) was written after the forward") != NULL);
}
END_TEST

static nb_tensor *identity_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in) { return in[0]; }
static int identity_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    gin[0] = g;
    return 0;
}
static const nb_custom_op identity_op = { "identity", identity_forward, identity_backward, true };
static nb_tensor *null_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in) { return NULL; }
static const nb_custom_op null_op = { "silent", null_forward, NULL, false };

START_TEST(test_custom_bad_definitions)
{
    /* a forward handing its input back: the input keeps being a leaf */
    nb_tensor *x = input(NB_SHAPE(2), 9);
    nb_tensor *y = nb_custom(&identity_op, 1, &x, NULL);
    ck_assert(y != x && x->node == NULL && y->node != NULL);
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul_scalar(y, 3))), 0);
    nbt_assert_values(x->grad, ((double[]){ 3, 3 }), 0);

    nbt_assert_error(nb_custom(NULL, 1, &x, NULL), "nb_custom: NULL op");
    nbt_assert_error(nb_custom(&(nb_custom_op){ "f", NULL, NULL, false }, 1, &x, NULL), "nb_custom: the op has no forward");
    nbt_assert_error(nb_custom(&cube_op, 0, &x, NULL), "cube: 0 inputs (custom ops take 1 to 16)");
    nbt_assert_error(nb_custom(&cube_op, 1, (nb_tensor *[]){ NULL }, NULL), "cube: NULL input");
    nbt_assert_error(nb_custom(&null_op, 1, &x, NULL), "silent: the forward returned NULL without recording an error");
    nbt_assert_error(nb_custom_saved(NULL, 0), "nb_custom_saved: NULL context");
    nbt_assert_error(nb_custom_output(NULL), "nb_custom_output: NULL context");
}
END_TEST

static Suite *custom_suite(void)
{
    Suite *s = suite_create("custom");
    TCase *c = tcase_create("custom");
    tcase_add_test(c, test_custom_gradchecks);
    tcase_add_test(c, test_custom_values_and_partial_grads);
    tcase_add_test(c, test_custom_raw_second_derivative_refused);
    tcase_add_test(c, test_custom_name_in_errors);
    tcase_add_test(c, test_custom_saved_written);
    tcase_add_test(c, test_custom_bad_definitions);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(custom_suite)
