/* Losses: cs231n C.8.3 TwoLayerNet scores and losses, a hand-computed SVM case, L2 regularisation,
 * gradients (first and second order), label validation. */
#include "nbtest.h"

#include <stdio.h>

/* ---- cs231n C.8.3 ---- */

typedef struct { nb_tensor *w1, *b1, *w2, *b2, *x, *y; } two_layer;

static two_layer two_layer_case(void)
{
    enum { N = 3, D = 5, H = 50, C = 7 };
    two_layer t;
    t.w1 = nbt_linspace(-0.7, 0.3, NB_SHAPE(D, H));
    t.b1 = nbt_linspace(-0.1, 0.9, NB_SHAPE(H));
    t.w2 = nbt_linspace(-0.3, 0.4, NB_SHAPE(H, C));
    t.b2 = nbt_linspace(-0.9, 0.1, NB_SHAPE(C));
    t.x = nb_transpose(nbt_linspace(-5.5, 4.5, NB_SHAPE(D, N)), 0, 1);   /* reshape(D,N).T */
    int64_t labels[N] = { 0, 5, 1 };
    t.y = nb_from_data(NB_I64, NB_SHAPE(N), labels);
    return t;
}

static nb_tensor *two_layer_scores(const two_layer *t)
{
    nb_tensor *h = nb_relu(nb_add(nb_matmul(t->x, t->w1), t->b1));
    return nb_add(nb_matmul(h, t->w2), t->b2);
}

START_TEST(cs231n_two_layer_scores)
{
    two_layer t = two_layer_case();
    nb_tensor *scores = two_layer_scores(&t);
    nbt_assert_shape(scores, 3, 7);
    double correct[21] = {
        11.53165108, 12.2917344,  13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096,
        12.05769098, 12.74614105, 13.43459113, 14.1230412,  14.81149128, 15.49994135, 16.18839143,
        12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319,
    };
    double total = 0;
    for (int i = 0; i < 21; i++) total += fabs(nb_get(scores, i) - correct[i]);
    printf("cs231n C.8.3 scores: sum |scores - correct_scores| = %.3g\n", total);
    ck_assert_msg(total < 1e-6, "sum abs diff %g", total);
}
END_TEST

START_TEST(cs231n_two_layer_losses)
{
    two_layer t = two_layer_case();
    nb_tensor *scores = two_layer_scores(&t);
    nb_tensor *data_loss = nb_softmax_cross_entropy(scores, t.y);
    ck_assert_ptr_nonnull(data_loss);
    ck_assert_int_eq(data_loss->ndim, 0);
    double loss0 = nb_item(data_loss);
    nb_tensor *weights[2] = { t.w1, t.w2 };
    double loss1 = nb_item(nb_add(data_loss, nb_l2_reg(2, weights, 1.0)));
    printf("cs231n C.8.3 loss reg=0: %.17g (error %.3g); reg=1: %.17g (error %.3g)\n", loss0,
           fabs(loss0 - 3.4702243555953927), loss1, fabs(loss1 - 26.594842695238583));
    ck_assert_msg(fabs(loss0 - 3.4702243555953927) < 1e-10, "loss %.17g", loss0);
    ck_assert_msg(fabs(loss1 - 26.594842695238583) < 1e-10, "loss %.17g", loss1);
}
END_TEST

/* ---- hand-computed values ---- */

START_TEST(svm_hand_case)
{
    /* row 0, y=0: margins 2-1+1 = 2, 3-1+1 = 3 -> 5; row 1, y=1: 3-1+1 = 3, 0-1+1 = 0 (at the hinge) -> 3 */
    double s[6] = { 1, 2, 3, 3, 1, 0 };
    int64_t labels[2] = { 0, 1 };
    nb_tensor *scores = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), s);
    nb_set_requires_grad(scores, true);
    nb_tensor *loss = nb_svm_loss(scores, nb_from_data(NB_I64, NB_SHAPE(2), labels));
    ck_assert_ptr_nonnull(loss);
    ck_assert_int_eq(loss->ndim, 0);
    ck_assert_double_eq_tol(nb_item(loss), 4.0, 1e-15);
    ck_assert_int_eq(nb_backward(loss), 0);
    /* active margins add +1/N to s_j and -1/N to s_y; the hinge at exactly 0 passes nothing */
    double expected[6] = { -1.0, 0.5, 0.5, 0.5, -0.5, 0 };
    nbt_assert_values(scores->grad, expected, 1e-15);
    /* f32 gives the same value */
    nb_tensor *loss32 = nb_svm_loss(nb_from_doubles(NB_F32, NB_SHAPE(2, 3), s), nb_from_data(NB_I64, NB_SHAPE(2), labels));
    ck_assert_int_eq(loss32->dtype, NB_F32);
    ck_assert_double_eq_tol(nb_item(loss32), 4.0, 1e-6);
}
END_TEST

START_TEST(softmax_cross_entropy_hand_case)
{
    /* row (1,2,3) with y=2: -log_softmax = log(1 + e^-1 + e^-2) = 0.4076059644443804;
     * row (0,0,0) with y=1: log 3 = 1.0986122886681098 */
    double s[6] = { 1, 2, 3, 0, 0, 0 };
    int64_t labels[2] = { 2, 1 };
    nb_tensor *scores = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), s);
    nb_set_requires_grad(scores, true);
    nb_tensor *loss = nb_softmax_cross_entropy(scores, nb_from_data(NB_I64, NB_SHAPE(2), labels));
    ck_assert_double_eq_tol(nb_item(loss), (0.4076059644443804 + 1.0986122886681098) / 2, 1e-15);
    ck_assert_int_eq(nb_backward(loss), 0);
    /* (softmax - onehot) / N; rows sum to 0 */
    double e = 1 + exp(-1) + exp(-2);
    double expected[6] = { exp(-2) / e / 2, exp(-1) / e / 2, (1 / e - 1) / 2, 1.0 / 6, -1.0 / 3, 1.0 / 6 };
    nbt_assert_values(scores->grad, expected, 1e-15);
}
END_TEST

START_TEST(l2_reg_hand_case)
{
    double a[2] = { 1, 2 }, b[1] = { 3 };
    nb_tensor *w[2] = { nb_from_doubles(NB_F64, NB_SHAPE(2), a), nb_from_doubles(NB_F64, NB_SHAPE(1, 1), b) };
    nb_set_requires_grad(w[0], true);
    nb_tensor *r = nb_l2_reg(2, w, 0.1);
    ck_assert_int_eq(r->ndim, 0);
    ck_assert_double_eq_tol(nb_item(r), 0.7, 1e-15);   /* 0.5 · 0.1 · (1 + 4 + 9) */
    ck_assert_int_eq(nb_backward(r), 0);
    double expected[2] = { 0.1, 0.2 };                  /* reg · W */
    nbt_assert_values(w[0]->grad, expected, 1e-15);
    ck_assert_double_eq(nb_item(nb_l2_reg(1, w, 0)), 0);
}
END_TEST

START_TEST(softmax_loss_of_small_scores_is_log_c)
{
    enum { N = 50, C = 10 };
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    nb_tensor *scores = nb_randn(NB_F64, NB_SHAPE(N, C), &rng, 1e-3);
    int64_t labels[N];
    for (int i = 0; i < N; i++) labels[i] = (int64_t)(nb_rng_next(&rng) % C);
    double loss = nb_item(nb_softmax_cross_entropy(scores, nb_from_data(NB_I64, NB_SHAPE(N), labels)));
    ck_assert_msg(fabs(loss - log(C)) < 1e-2, "loss %g vs log C %g", loss, log(C));
}
END_TEST

/* ---- gradients ---- */

static nb_tensor *softmax_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_softmax_cross_entropy(in[0], ctx);
}
static nb_tensor *svm_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_svm_loss(in[0], ctx);
}
static nb_tensor *l2_fn(void *ctx, int n, nb_tensor *const *in)
{
    return nb_l2_reg(n, in, *(const double *)ctx);
}

static nb_tensor *mse_fn(void *ctx, int n, nb_tensor *const *in) { return nb_mse_loss(in[0], in[1]); }
static nb_tensor *bce_fn(void *ctx, int n, nb_tensor *const *in) { return nb_bce_with_logits(in[0], in[1]); }
static nb_tensor *huber_fn(void *ctx, int n, nb_tensor *const *in) { return nb_huber_loss(in[0], in[1], 0.7); }

START_TEST(gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 22);
    int64_t labels[4] = { 3, 0, 4, 1 };
    nb_tensor *y = nb_from_data(NB_I64, NB_SHAPE(4), labels);
    nb_tensor *scores = nbt_input(&rng, NB_SHAPE(4, 5), -2, 2);
    nbt_gradcheck(softmax_fn, y, 1, &scores, 1e-7, false);
    nbt_gradgradcheck(softmax_fn, y, 1, &scores, 1e-7);
    nbt_gradcheck(svm_fn, y, 1, &scores, 1e-7, true);
    /* strided scores: a transposed view */
    nb_tensor *t = nb_detach(nb_transpose(nb_rand(NB_F64, NB_SHAPE(5, 4), &rng, -2, 2), 0, 1));
    nb_set_requires_grad(t, true);
    nbt_gradcheck(softmax_fn, y, 1, &t, 1e-7, false);
    nbt_gradcheck(svm_fn, y, 1, &t, 1e-7, true);
    double reg = 0.3;
    nb_tensor *w[2] = { nbt_input(&rng, NB_SHAPE(3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nbt_gradcheck(l2_fn, &reg, 2, w, 1e-7, false);
    nbt_gradgradcheck(l2_fn, &reg, 2, w, 1e-7);
}
END_TEST

/* regression losses against hand values and PyTorch 1.13's (float64) */
START_TEST(regression_losses)
{
    nb_tensor *p = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 1, 2, 3 });
    nb_tensor *t = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 0, 2, 5 });
    ck_assert_double_eq_tol(nb_item(nb_mse_loss(p, t)), 5.0 / 3, 1e-15);
    /* F.binary_cross_entropy_with_logits([0, 2, -3], [1, 0, 0.5]) */
    nb_tensor *logits = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 0, 2, -3 });
    nb_tensor *probs = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 1, 0, 0.5 });
    ck_assert_double_eq_tol(nb_item(nb_bce_with_logits(logits, probs)), 1.4562208477255532, 1e-15);
    /* saturated logits stay finite: 0 and 1000 */
    nb_tensor *huge = nb_from_doubles(NB_F64, NB_SHAPE(2), (double[]){ 1000, -1000 });
    ck_assert_double_eq_tol(nb_item(nb_bce_with_logits(huge, nb_ones(NB_F64, NB_SHAPE(2)))), 500, 1e-12);
    /* F.huber_loss([0, 0.5, 3, -2], [0, 0, 0, 0.5], delta=1): 0, 0.125, 2.5, 2 */
    nb_tensor *hp = nb_from_doubles(NB_F64, NB_SHAPE(2, 2), (double[]){ 0, 0.5, 3, -2 });
    nb_tensor *ht = nb_from_doubles(NB_F64, NB_SHAPE(2, 2), (double[]){ 0, 0, 0, 0.5 });
    ck_assert_double_eq_tol(nb_item(nb_huber_loss(hp, ht, 1.0)), 1.15625, 1e-15);
    /* f32 too */
    ck_assert_double_eq_tol(nb_item(nb_mse_loss(nb_cast(p, NB_F32), nb_cast(t, NB_F32))), 5.0 / 3, 1e-6);
    /* gradients, first and second order (huber: first; its second derivative steps at |d| = delta) */
    nb_rng rng;
    nb_rng_seed(&rng, 23);
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(4, 3), -2, 2), nbt_input(&rng, NB_SHAPE(4, 3), -2, 2) };
    nbt_gradcheck(mse_fn, NULL, 2, in, 1e-7, false);
    nbt_gradgradcheck(mse_fn, NULL, 2, in, 1e-7);
    nbt_gradcheck(bce_fn, NULL, 2, in, 1e-7, true);
    nbt_gradcheck(huber_fn, NULL, 2, in, 1e-7, true);
    /* errors */
    nbt_assert_error(nb_mse_loss(nb_zeros(NB_F64, NB_SHAPE(3, 1)), nb_zeros(NB_F64, NB_SHAPE(3))),
                     "nb_mse_loss: the target [3] must have the prediction's shape [3,1]");
    nbt_assert_error(nb_bce_with_logits(nb_zeros(NB_F64, NB_SHAPE(2)), nb_zeros(NB_F32, NB_SHAPE(2))),
                     "nb_bce_with_logits: dtypes differ: f64 [2] and f32 [2]");
    nbt_assert_error(nb_huber_loss(p, t, 0), "nb_huber_loss: delta 0 must be finite and positive");
    nbt_assert_error(nb_mse_loss(nb_zeros(NB_F64, NB_SHAPE(0)), nb_zeros(NB_F64, NB_SHAPE(0))),
                     "nb_mse_loss: [0] has no elements to average over");
    nbt_assert_error(nb_huber_loss(NULL, t, 1), "nb_huber_loss: NULL input");
}
END_TEST

/* ---- errors ---- */

START_TEST(errors)
{
    nb_tensor *s = nb_zeros(NB_F64, NB_SHAPE(3, 5));
    int64_t bad[3] = { 0, 4, 7 }, neg[3] = { -1, 0, 0 }, ok[3] = { 0, 1, 2 };
    nbt_assert_error(nb_softmax_cross_entropy(s, nb_from_data(NB_I64, NB_SHAPE(3), bad)),
                     "nb_softmax_cross_entropy: label 7 at position 2 is outside [0, 5)");
    nbt_assert_error(nb_svm_loss(s, nb_from_data(NB_I64, NB_SHAPE(3), bad)),
                     "nb_svm_loss: label 7 at position 2 is outside [0, 5)");
    nbt_assert_error(nb_svm_loss(s, nb_from_data(NB_I64, NB_SHAPE(3), neg)),
                     "nb_svm_loss: label -1 at position 0 is outside [0, 5)");
    nbt_assert_error(nb_softmax_cross_entropy(s, nb_zeros(NB_F64, NB_SHAPE(3))),
                     "nb_softmax_cross_entropy: labels must be i64, got f64 [3]");
    nbt_assert_error(nb_softmax_cross_entropy(s, nb_from_data(NB_I64, NB_SHAPE(3, 1), ok)),
                     "nb_softmax_cross_entropy: labels [3,1] must be [3] to match scores [3,5]");
    nbt_assert_error(nb_svm_loss(s, nb_from_data(NB_I64, NB_SHAPE(2), ok)),
                     "nb_svm_loss: labels [2] must be [3] to match scores [3,5]");
    nbt_assert_error(nb_softmax_cross_entropy(nb_zeros(NB_F64, NB_SHAPE(3, 5, 1)), nb_from_data(NB_I64, NB_SHAPE(3), ok)),
                     "nb_softmax_cross_entropy: scores must be [N,C], got [3,5,1]");
    nbt_assert_error(nb_softmax_cross_entropy(nb_zeros(NB_I64, NB_SHAPE(3, 5)), nb_from_data(NB_I64, NB_SHAPE(3), ok)),
                     "nb_softmax_cross_entropy: expected a f32 or f64 tensor, got i64 [3,5]");
    nbt_assert_error(nb_svm_loss(nb_zeros(NB_F64, NB_SHAPE(0, 5)), nb_zeros(NB_I64, NB_SHAPE(0))),
                     "nb_svm_loss: scores [0,5] has no rows to average over");
    nb_tensor *w[2] = { nb_zeros(NB_F64, NB_SHAPE(2)), nb_zeros(NB_F32, NB_SHAPE(2)) };
    nbt_assert_error(nb_l2_reg(2, w, 1.0), "nb_l2_reg: dtypes differ: f64 [2] and f32 [2]");
    nbt_assert_error(nb_l2_reg(0, w, 1.0), "nb_l2_reg: expected at least one weight, got 0");
    /* NULL in, NULL out, the first message kept */
    nb_clear_error();
    ck_assert_ptr_null(nb_softmax_cross_entropy(nb_reshape(s, NB_SHAPE(4)), nb_from_data(NB_I64, NB_SHAPE(3), ok)));
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [3,5] (15 elements) into [4]");
    ck_assert_ptr_null(nb_svm_loss(s, NULL));
    nb_tensor *with_null[2] = { w[0], NULL };
    ck_assert_ptr_null(nb_l2_reg(2, with_null, 1.0));
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [3,5] (15 elements) into [4]");
}
END_TEST

static Suite *loss_suite(void)
{
    Suite *s = suite_create("loss");
    TCase *values = tcase_create("values");
    tcase_add_test(values, cs231n_two_layer_scores);
    tcase_add_test(values, cs231n_two_layer_losses);
    tcase_add_test(values, svm_hand_case);
    tcase_add_test(values, softmax_cross_entropy_hand_case);
    tcase_add_test(values, l2_reg_hand_case);
    tcase_add_test(values, softmax_loss_of_small_scores_is_log_c);
    tcase_add_test(values, errors);
    tcase_add_test(values, regression_losses);
    suite_add_tcase(s, values);
    TCase *grad = tcase_create("gradients");
    tcase_add_test(grad, gradients);
    suite_add_tcase(s, grad);
    return s;
}

NBT_MAIN(loss_suite)
