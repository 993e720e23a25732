/* Zero-size dimensions: every op, forward and backward, given inputs with an axis of size 0 (no
 * rows, no channels, no filters, an empty slice...). Each case either computes the result of the
 * shape the op's rule gives, whose gradients then have the inputs' shapes (all zero when the result
 * holds nothing), or refuses with a message where the result has no value (a mean or a max over
 * nothing). Before the checked sizes, a fused convolution with no input channels divided by zero.
 * Overflowing sizes are in test_bad_input's table (their exact messages). */
#include "nbtest.h"

#define S(...) NB_SHAPE(__VA_ARGS__)
#define NONE ((nb_shape){ -1, { 0 } })   /* no input in this slot */
#define I64(...) nb_zeros(NB_I64, NB_SHAPE(__VA_ARGS__))
#define OK NULL

static nb_rng *rng(void);

/* Z(name, refusal, x0, x1, x2, call, result shape): in[k] is a float64 leaf of shape xk (filled
 * with values in [0.5, 1.5), so that log, sqrt and division are defined), call uses them; refusal
 * is NULL when the op must succeed, else a part of the message it must give. */
#define ZERO_CASES(Z) \
    Z(add_rows, OK, S(0, 3), S(1, 3), NONE, nb_add(in[0], in[1]), S(0, 3)) \
    Z(add_broadcast_to_empty, OK, S(4, 1), S(0), NONE, nb_add(in[0], in[1]), S(4, 0)) \
    Z(sub, OK, S(2, 0), S(2, 0), NONE, nb_sub(in[0], in[1]), S(2, 0)) \
    Z(mul, OK, S(0), S(1), NONE, nb_mul(in[0], in[1]), S(0)) \
    Z(div, OK, S(3, 0), S(3, 1), NONE, nb_div(in[0], in[1]), S(3, 0)) \
    Z(maximum, OK, S(0, 2), S(0, 2), NONE, nb_maximum(in[0], in[1]), S(0, 2)) \
    Z(minimum, OK, S(0, 2), S(2), NONE, nb_minimum(in[0], in[1]), S(0, 2)) \
    Z(where, OK, S(0, 2), S(0, 2), NONE, nb_where(nb_greater(in[0], in[1]), in[0], in[1]), S(0, 2)) \
    Z(scalar_ops, OK, S(0, 4), NONE, NONE, \
      nb_pow_scalar(nb_div_scalar(nb_mul_scalar(nb_sub_scalar(nb_add_scalar(in[0], 1), 2), 3), 4), 2), S(0, 4)) \
    Z(unary_ops, OK, S(5, 0), NONE, NONE, \
      nb_relu(nb_sigmoid(nb_tanh(nb_abs(nb_square(nb_rsqrt(nb_sqrt(nb_log(nb_exp(nb_neg(in[0])))))))))), S(5, 0)) \
    Z(sum_of_nothing, OK, S(0, 3), NONE, NONE, nb_sum(in[0]), S()) \
    Z(sum_axes_keeps_empty, OK, S(0, 3), NONE, NONE, nb_sum_axes(in[0], NB_AXES(1), false), S(0)) \
    Z(sum_axes_over_empty, OK, S(4, 0), NONE, NONE, nb_sum_axes(in[0], NB_AXES(1), true), S(4, 1)) \
    Z(mean_axes_keeps_empty, OK, S(0, 3), NONE, NONE, nb_mean_axes(in[0], NB_AXES(1), false), S(0)) \
    Z(mean_over_nothing, "nb_mean: mean over no elements", S(4, 0), NONE, NONE, nb_mean_axes(in[0], NB_AXES(1), false), S()) \
    Z(max_axes_keeps_empty, OK, S(0, 3), NONE, NONE, nb_max_axes(in[0], NB_AXES(1), false), S(0)) \
    Z(max_over_nothing, "nb_max: max over no elements", S(0, 3), NONE, NONE, nb_max(in[0]), S()) \
    Z(argmax_keeps_empty, OK, S(0, 3), NONE, NONE, nb_add(in[0], nb_cast(nb_argmax(in[0], 1, true), NB_F64)), S(0, 3)) \
    Z(sum_to, OK, S(0, 3), NONE, NONE, nb_sum_to(in[0], S(1, 3)), S(1, 3)) \
    Z(matmul_no_rows, OK, S(0, 3), S(3, 4), NONE, nb_matmul(in[0], in[1]), S(0, 4)) \
    Z(matmul_inner_empty, OK, S(2, 0), S(0, 4), NONE, nb_matmul(in[0], in[1]), S(2, 4)) \
    Z(matmul_no_columns, OK, S(2, 3), S(3, 0), NONE, nb_matmul(in[0], in[1]), S(2, 0)) \
    Z(matmul_batched_empty, OK, S(0, 2, 3), S(3, 4), NONE, nb_matmul(in[0], in[1]), S(0, 2, 4)) \
    Z(reshape, OK, S(0, 6), NONE, NONE, nb_reshape(in[0], S(3, 0, 2)), S(3, 0, 2)) \
    Z(permute, OK, S(2, 0, 3), NONE, NONE, nb_permute(in[0], NB_AXES(2, 0, 1)), S(3, 2, 0)) \
    Z(transpose_contiguous, OK, S(0, 3), NONE, NONE, nb_contiguous(nb_transpose(in[0], 0, 1)), S(3, 0)) \
    Z(expand_to_empty, OK, S(1, 3), NONE, NONE, nb_expand(in[0], S(0, 3)), S(0, 3)) \
    Z(empty_slice, OK, S(4, 3), NONE, NONE, nb_slice(in[0], 0, 2, 2, 1), S(0, 3)) \
    Z(slice_of_empty, OK, S(0, 3), NONE, NONE, nb_slice(in[0], 1, 0, 2, 1), S(0, 2)) \
    Z(concat_with_empty, OK, S(0, 3), S(2, 3), NONE, nb_concat(2, (nb_tensor *[]){ in[0], in[1] }, 0), S(2, 3)) \
    Z(pad_empty, OK, S(0, 3), NONE, NONE, nb_pad(in[0], 2, (int64_t[]){ 1, 0 }, (int64_t[]){ 1, 2 }, 7.0), S(2, 5)) \
    Z(cast, OK, S(0, 3), NONE, NONE, nb_cast(nb_cast(in[0], NB_F32), NB_F64), S(0, 3)) \
    Z(gather, OK, S(0, 3), NONE, NONE, nb_gather(in[0], 1, I64(0, 1)), S(0, 1)) \
    Z(scatter_add, OK, S(0, 1), NONE, NONE, nb_scatter_add(S(0, 3), 1, I64(0, 1), in[0]), S(0, 3)) \
    Z(index_select_no_indices, OK, S(4, 3), NONE, NONE, nb_index_select(in[0], 0, I64(0)), S(0, 3)) \
    Z(index_select_empty_rows, OK, S(4, 0), NONE, NONE, nb_index_select(in[0], 0, I64(2)), S(2, 0)) \
    Z(index_add, OK, S(0, 3), NONE, NONE, nb_index_add(S(4, 3), 0, I64(0), in[0]), S(4, 3)) \
    Z(log_softmax_no_rows, OK, S(0, 5), NONE, NONE, nb_log_softmax(in[0], 1), S(0, 5)) \
    Z(unfold_no_images, OK, S(0, 2, 4, 4), NONE, NONE, nb_unfold(in[0], NB_WINDOW(3, 1, 1)), S(0, 18, 16)) \
    Z(unfold_no_channels, OK, S(2, 0, 4, 4), NONE, NONE, nb_unfold(in[0], NB_WINDOW(3, 1, 1)), S(2, 0, 16)) \
    Z(fold_no_channels, OK, S(2, 0, 16), NONE, NONE, nb_fold(in[0], 4, 4, NB_WINDOW(3, 1, 1)), S(2, 0, 4, 4)) \
    Z(max_pool_no_images, OK, S(0, 2, 4, 4), NONE, NONE, nb_max_pool2d(in[0], NB_WINDOW(2, 2, 0)), S(0, 2, 2, 2)) \
    Z(max_pool_no_channels, OK, S(2, 0, 4, 4), NONE, NONE, nb_max_pool2d(in[0], NB_WINDOW(2, 2, 0)), S(2, 0, 2, 2)) \
    Z(avg_pool_no_channels, OK, S(2, 0, 4, 4), NONE, NONE, nb_avg_pool2d(in[0], NB_WINDOW(2, 2, 0)), S(2, 0, 2, 2)) \
    Z(global_avg_pool_no_images, OK, S(0, 3, 2, 2), NONE, NONE, nb_global_avg_pool(in[0]), S(0, 3)) \
    Z(conv_fused_no_images, OK, S(0, 2, 5, 5), S(3, 2, 3, 3), S(3), nb_conv2d_fused(in[0], in[1], in[2], 1, 1), S(0, 3, 5, 5)) \
    Z(conv_fused_no_channels, OK, S(2, 0, 5, 5), S(3, 0, 3, 3), S(3), nb_conv2d_fused(in[0], in[1], in[2], 1, 1), S(2, 3, 5, 5)) \
    Z(conv_fused_no_filters, OK, S(2, 2, 5, 5), S(0, 2, 3, 3), S(0), nb_conv2d_fused(in[0], in[1], in[2], 2, 1), S(2, 0, 3, 3)) \
    Z(conv_relu_fused_no_channels, OK, S(2, 0, 5, 5), S(3, 0, 3, 3), S(3), nb_conv2d_relu_fused(in[0], in[1], in[2], 1, 1), S(2, 3, 5, 5)) \
    Z(conv_relu_pool_fused_no_channels, OK, S(2, 0, 4, 4), S(3, 0, 3, 3), S(3), nb_conv2d_relu_pool_fused(in[0], in[1], in[2], 1, 1), S(2, 3, 2, 2)) \
    Z(conv_relu_pool_fused_no_images, OK, S(0, 2, 4, 4), S(3, 2, 3, 3), S(3), nb_conv2d_relu_pool_fused(in[0], in[1], in[2], 1, 1), S(0, 3, 2, 2)) \
    Z(conv_composed_no_channels, OK, S(2, 0, 5, 5), S(3, 0, 3, 3), S(3), nb_conv2d(in[0], in[1], in[2], 1, 1), S(2, 3, 5, 5)) \
    Z(conv_composed_no_images, OK, S(0, 2, 5, 5), S(3, 2, 3, 3), S(3), nb_conv2d(in[0], in[1], in[2], 1, 1), S(0, 3, 5, 5)) \
    Z(batchnorm_fused_no_channels, OK, S(4, 0, 2, 2), S(0), S(0), nb_batchnorm_fused(in[0], in[1], in[2], 1e-5, NULL, NULL), S(4, 0, 2, 2)) \
    Z(batchnorm_fused_no_columns, OK, S(4, 0), S(0), S(0), nb_batchnorm_relu_fused(in[0], in[1], in[2], 1e-5, NULL, NULL), S(4, 0)) \
    Z(batchnorm_fused_no_rows, "has no rows", S(0, 3), S(3), S(3), nb_batchnorm_fused(in[0], in[1], in[2], 1e-5, NULL, NULL), S()) \
    Z(affine_no_rows, OK, S(0, 3), S(3, 2), S(2), nb_affine(in[0], in[1], in[2]), S(0, 2)) \
    Z(affine_no_features, OK, S(4, 0), S(0, 2), S(2), nb_affine_relu(in[0], in[1], in[2]), S(4, 2)) \
    Z(layernorm_no_rows, OK, S(0, 3), S(3), S(3), nb_layernorm(in[0], in[1], in[2], 1e-5), S(0, 3)) \
    Z(groupnorm_no_images, OK, S(0, 4, 2, 2), S(4), S(4), nb_groupnorm(in[0], in[1], in[2], 2, 1e-5), S(0, 4, 2, 2)) \
    Z(dropout_empty, OK, S(0, 3), NONE, NONE, nb_dropout(in[0], 0.5, rng(), true), S(0, 3)) \
    Z(cross_entropy_no_rows, "no", S(0, 3), NONE, NONE, nb_softmax_cross_entropy(in[0], I64(0)), S()) \
    Z(svm_no_rows, "no", S(0, 3), NONE, NONE, nb_svm_loss(in[0], I64(0)), S()) \
    Z(l2_reg_empty, OK, S(0, 3), S(2, 0), NONE, nb_l2_reg(2, (nb_tensor *[]){ in[0], in[1] }, 0.5), S())

static nb_rng *rng(void)
{
    static nb_rng r;
    nb_rng_seed(&r, 7);
    return &r;
}

#define AS_ID(name, refusal, x0, x1, x2, call, out) ZERO_##name,
enum { ZERO_CASES(AS_ID) N_CASES };
#define AS_ROW(name, refusal, x0, x1, x2, call, out) { #name, refusal, { x0, x1, x2 }, out },
static const struct {
    const char *name, *refusal;
    nb_shape in[3], out;
} cases[N_CASES] = { ZERO_CASES(AS_ROW) };

static nb_tensor *zero_call(int k, nb_tensor **in)
{
    switch (k) {
#define AS_CALL(name, refusal, x0, x1, x2, call, out) \
    case ZERO_##name: return call;
        ZERO_CASES(AS_CALL)
    }
    return NULL;
}

START_TEST(test_zero_size)
{
    const int k = _i;
    ck_assert(k >= 0 && k < N_CASES);
    nb_tensor *in[3] = { NULL };
    int n_in = 0;
    nb_rng r;
    nb_rng_seed(&r, 1);
    for (; n_in < 3 && cases[k].in[n_in].ndim >= 0; n_in++) {
        in[n_in] = nb_rand(NB_F64, cases[k].in[n_in], &r, 0.5, 1.5);
        ck_assert(in[n_in] && nb_set_requires_grad(in[n_in], true) == 0);
    }
    nb_clear_error();
    nb_tensor *out = zero_call(k, in);
    if (cases[k].refusal) {
        ck_assert_msg(out == NULL, "%s: expected a refusal", cases[k].name);
        ck_assert_msg(strstr(nb_last_error(), cases[k].refusal), "%s: message '%s' lacks '%s'", cases[k].name,
                      nb_last_error(), cases[k].refusal);
        return;
    }
    ck_assert_msg(out != NULL, "%s: %s", cases[k].name, nb_last_error());
    const nb_shape want = cases[k].out;
    char got[128];
    nb_shape_str(out, got, sizeof got);
    ck_assert_msg(out->ndim == want.ndim && !memcmp(out->shape, want.d, sizeof(int64_t) * (size_t)want.ndim),
                  "%s: result %s", cases[k].name, got);
    /* the sum of the result's elements, through the op's backward: every input gets a gradient of its
     * own shape, finite, and zero when the result holds nothing */
    ck_assert_msg(nb_backward(nb_sum(out)) == 0, "%s: backward: %s", cases[k].name, nb_last_error());
    for (int i = 0; i < n_in; i++) {
        const nb_tensor *g = in[i]->grad;
        ck_assert_msg(g != NULL, "%s: no gradient for input %d", cases[k].name, i);
        ck_assert_msg(g->ndim == in[i]->ndim && !memcmp(g->shape, in[i]->shape, sizeof(int64_t) * (size_t)g->ndim),
                      "%s: gradient of input %d has the wrong shape", cases[k].name, i);
        for (int64_t j = 0; j < nb_numel(g); j++) {
            ck_assert_msg(isfinite(nb_get(g, j)), "%s: gradient %d[%lld] not finite", cases[k].name, i, (long long)j);
            if (nb_numel(out) == 0)
                ck_assert_msg(nb_get(g, j) == 0, "%s: gradient %d[%lld] = %g from an empty result", cases[k].name, i,
                              (long long)j, nb_get(g, j));
        }
    }
}
END_TEST

/* values where the result is not empty although an input is */
START_TEST(test_zero_size_values)
{
    /* a product over an empty inner axis is zeros; a convolution over no channels is its bias */
    nb_tensor *m = nb_matmul(nb_ones(NB_F64, S(2, 0)), nb_ones(NB_F64, S(0, 3)));
    nbt_assert_values(m, ((double[]){ 0, 0, 0, 0, 0, 0 }), 0);
    nb_tensor *b = nb_from_doubles(NB_F64, S(2), (double[]){ -1.5, 2.5 });
    nb_tensor *x = nb_zeros(NB_F64, S(1, 0, 2, 2)), *w = nb_zeros(NB_F64, S(2, 0, 3, 3));
    nb_tensor *fused = nb_contiguous(nb_conv2d_fused(x, w, b, 1, 1)), *composed = nb_conv2d(x, w, b, 1, 1);
    nbt_assert_values(fused, ((double[]){ -1.5, -1.5, -1.5, -1.5, 2.5, 2.5, 2.5, 2.5 }), 0);
    nbt_assert_same(fused, composed, 0);
    nbt_assert_values(nb_sum(nb_zeros(NB_F64, S(0, 4))), ((double[]){ 0 }), 0);
    nbt_assert_values(nb_pad(nb_zeros(NB_F64, S(0, 1)), 2, (int64_t[]){ 1, 0 }, (int64_t[]){ 0, 1 }, 7.0),
                      ((double[]){ 7, 7 }), 0);
}
END_TEST

static Suite *sizes_suite(void)
{
    Suite *s = suite_create("sizes");
    TCase *tc = tcase_create("zero_size");
    tcase_add_loop_test(tc, test_zero_size, 0, N_CASES);
    tcase_add_test(tc, test_zero_size_values);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(sizes_suite)
