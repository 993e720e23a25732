/* Table-driven bad-input suite: every public function fed the arguments users get wrong, each case
 * asserting failure (NULL or -1) and the exact message (the function name plus the shapes or values
 * at fault). One loop test over the table, so Check reports every case separately. */
#include "nbtest.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- tensors for the cases (in the default scope; Check forks per case) ---- */
#define F32(...) nb_zeros(NB_F32, NB_SHAPE(__VA_ARGS__))
#define F64(...) nb_ones(NB_F64, NB_SHAPE(__VA_ARGS__))
#define I64(...) nb_zeros(NB_I64, NB_SHAPE(__VA_ARGS__))
#define W(k, s, p) NB_WINDOW(k, s, p)
#define G20 ((int64_t)1 << 20)
#define G30 ((int64_t)1 << 30)
#define G31 ((int64_t)1 << 31)
#define G40 ((int64_t)1 << 40)
#define BIG_COLUMN nb_expand(F64(1, 1), NB_SHAPE(INT64_MAX / 8, 1))   /* the largest expand allows */

/* a NULL given to an op after an earlier failure: the earlier message must survive */
#define AFTER_FAILURE(...) (nb_div(F64(2), F64(3)), (__VA_ARGS__))
#define FIRST_FAILURE "nb_div: shapes do not broadcast: [2] and [3]"

static nb_rng *rng(void)
{
    static nb_rng r;
    nb_rng_seed(&r, 1);
    return &r;
}

static nb_tensor *labels(int n, const double *v)
{
    return nb_from_doubles(NB_I64, NB_SHAPE(n), v);
}

static nb_shape shape_ndim(int ndim)
{
    nb_shape s = { .ndim = ndim };
    for (int i = 0; i < ndim && i < NB_MAX_DIMS; i++) s.d[i] = 1;
    return s;
}

/* The cases: P(name, message, call) for functions that fail with NULL, I(name, message, call) for
 * those that fail with -1 (or NaN, mapped to -1 by lr_nan). An op given a NULL tensor on a clean
 * slate says so ("nb_add: NULL input"); after a failure it keeps the earlier message, the likely
 * reason for the NULL, which the *_after_failure cases check. The cx_* helpers are below the list. */
#define BAD_CASES(P, I) \
    /* NULL inputs */ \
    P(null_add, "nb_add: NULL input", nb_add(NULL, F64(2))) \
    P(null_add_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_add(NULL, F64(2)))) \
    P(null_add_rhs, "nb_add: NULL input", nb_add(F64(2), NULL)) \
    P(null_add_rhs_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_add(F64(2), NULL))) \
    P(null_where, "nb_where: NULL input", nb_where(NULL, F64(2), F64(2))) \
    P(null_where_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_where(NULL, F64(2), F64(2)))) \
    P(null_exp, "nb_exp: NULL input", nb_exp(NULL)) \
    P(null_exp_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_exp(NULL))) \
    P(null_add_scalar, "nb_add_scalar: NULL input", nb_add_scalar(NULL, 1)) \
    P(null_add_scalar_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_add_scalar(NULL, 1))) \
    P(null_sum, "nb_sum: NULL input", nb_sum(NULL)) \
    P(null_sum_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_sum(NULL))) \
    P(null_sum_axes, "nb_sum: NULL input", nb_sum_axes(NULL, NB_AXES(0), false)) \
    P(null_sum_axes_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_sum_axes(NULL, NB_AXES(0), false))) \
    P(null_matmul, "nb_matmul: NULL input", nb_matmul(NULL, F64(2, 2))) \
    P(null_matmul_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_matmul(NULL, F64(2, 2)))) \
    P(null_reshape, "nb_reshape: NULL input", nb_reshape(NULL, NB_SHAPE(4))) \
    P(null_reshape_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_reshape(NULL, NB_SHAPE(4)))) \
    P(null_slice, "nb_slice: NULL input", nb_slice(NULL, 0, 0, 1, 1)) \
    P(null_slice_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_slice(NULL, 0, 0, 1, 1))) \
    P(null_gather, "nb_gather: NULL input", nb_gather(F64(2, 3), 1, NULL)) \
    P(null_gather_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_gather(F64(2, 3), 1, NULL))) \
    P(null_log_softmax, "nb_log_softmax: NULL input", nb_log_softmax(NULL, 1)) \
    P(null_log_softmax_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_log_softmax(NULL, 1))) \
    P(null_affine, "nb_affine: NULL input", nb_affine(F64(2, 3), NULL, F64(4))) \
    P(null_affine_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_affine(F64(2, 3), NULL, F64(4)))) \
    P(null_conv2d, "nb_conv2d: NULL input", nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 3, 3), NULL, 1, 1)) \
    P(null_conv2d_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 3, 3), NULL, 1, 1))) \
    P(null_dropout, "nb_dropout: NULL input", nb_dropout(NULL, 0.5, rng(), true)) \
    P(null_dropout_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_dropout(NULL, 0.5, rng(), true))) \
    P(null_sce, "nb_softmax_cross_entropy: NULL input", nb_softmax_cross_entropy(NULL, I64(2))) \
    P(null_sce_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_softmax_cross_entropy(NULL, I64(2)))) \
    P(null_svm_labels, "nb_svm_loss: NULL input", nb_svm_loss(F64(2, 3), NULL)) \
    P(null_svm_labels_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_svm_loss(F64(2, 3), NULL))) \
    P(null_copy, "nb_copy: NULL input", nb_copy(NULL)) \
    P(null_copy_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_copy(NULL))) \
    P(null_cast, "nb_cast: NULL input", nb_cast(NULL, NB_F32)) \
    P(null_cast_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_cast(NULL, NB_F32))) \
    P(null_concat_member, "nb_concat: NULL input", cx_concat_null()) \
    P(null_concat_member_after_failure, FIRST_FAILURE, AFTER_FAILURE(cx_concat_null())) \
    P(null_l2_member, "nb_l2_reg: NULL input", cx_l2_null()) \
    P(null_l2_member_after_failure, FIRST_FAILURE, AFTER_FAILURE(cx_l2_null())) \
    P(null_conv_bn_relu, "nb_conv2d: NULL input", cx_conv_bn_relu_null()) \
    P(null_conv_bn_relu_after_failure, FIRST_FAILURE, AFTER_FAILURE(cx_conv_bn_relu_null())) \
    I(null_backward, "nb_backward: NULL output", nb_backward(NULL)) \
    I(null_backward_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_backward(NULL))) \
    I(null_fill, "nb_fill: NULL tensor", nb_fill(NULL, 1)) \
    I(null_fill_after_failure, FIRST_FAILURE, AFTER_FAILURE(nb_fill(NULL, 1))) \
    /* NULL keeps the first message */ \
    P(chain_after_failure, "nb_add: shapes do not broadcast: [2,3] and [4]", cx_chain_after_failure()) \
    P(chain_loss, "nb_matmul: inner dimensions differ: [4,3] @ [2,5]", cx_chain_loss()) \
    I(chain_backward, "nb_add: shapes do not broadcast: [2,3] and [4]", cx_backward_chain()) \
    /* mixed dtypes */ \
    P(dtype_add, "nb_add: dtypes differ: f32 [2,3] and f64 [2,3]", nb_add(F32(2, 3), F64(2, 3))) \
    P(dtype_sub, "nb_sub: dtypes differ: f64 [2,3] and f32 [3]", nb_sub(F64(2, 3), F32(3))) \
    P(dtype_mul, "nb_mul: dtypes differ: f32 [2] and f64 [2]", nb_mul(F32(2), F64(2))) \
    P(dtype_div, "nb_div: dtypes differ: f64 [2] and f32 [2]", nb_div(F64(2), F32(2))) \
    P(dtype_maximum, "nb_maximum: dtypes differ: f64 [2] and f32 [2]", nb_maximum(F64(2), F32(2))) \
    P(dtype_minimum, "nb_minimum: dtypes differ: f32 [2] and f64 [2]", nb_minimum(F32(2), F64(2))) \
    P(dtype_where, "nb_where: dtypes differ: f32 [2] and f64 [2]", nb_where(F64(2), F32(2), F64(2))) \
    P(dtype_greater, "nb_greater: dtypes differ: f64 [2] and f32 [2]", nb_greater(F64(2), F32(2))) \
    P(dtype_equal, "nb_equal: dtypes differ: f32 [2] and f64 [2]", nb_equal(F32(2), F64(2))) \
    P(dtype_matmul, "nb_matmul: dtypes differ: f32 [2,3] and f64 [3,2]", nb_matmul(F32(2, 3), F64(3, 2))) \
    P(dtype_concat, "nb_concat: input 1 is f64 [2,3] but input 0 is f32 [2,3]", cx_concat_mixed()) \
    P(dtype_affine, "nb_affine: dtypes differ: f32 [2,3] and f64 [3,4]", nb_affine(F32(2, 3), F64(3, 4), F64(4))) \
    P(dtype_conv2d, "nb_conv2d: dtypes differ: f64 [1,3,4,4] and f32 [2,3,3,3]", nb_conv2d(F64(1, 3, 4, 4), F32(2, 3, 3, 3), F64(2), 1, 1)) \
    P(dtype_layernorm, "nb_layernorm: dtypes differ: f64 [2,3] and f32 [3]", nb_layernorm(F64(2, 3), F32(3), F64(3), 1e-5)) \
    P(dtype_l2_reg, "nb_l2_reg: dtypes differ: f32 [2,3] and f64 [3]", cx_l2_mixed()) \
    P(dtype_batchnorm_fused, "nb_batchnorm_fused: dtypes differ: f64 [4,3] and f32 [3]", nb_batchnorm_fused(F64(4, 3), F32(3), F64(3), 1e-5, NULL, NULL)) \
    /* i64 where a float is needed */ \
    P(i64_add, "nb_add: expected a f32 or f64 tensor, got i64 [2]", nb_add(I64(2), I64(2))) \
    P(i64_exp, "nb_exp: expected a f32 or f64 tensor, got i64 [2]", nb_exp(I64(2))) \
    P(i64_relu, "nb_relu: expected a f32 or f64 tensor, got i64 [2]", nb_relu(I64(2))) \
    P(i64_mul_scalar, "nb_mul_scalar: expected a f32 or f64 tensor, got i64 [2]", nb_mul_scalar(I64(2), 2)) \
    P(i64_matmul, "nb_matmul: expected a f32 or f64 tensor, got i64 [2,2]", nb_matmul(I64(2, 2), I64(2, 2))) \
    P(i64_sum, "nb_sum: expected a f32 or f64 tensor, got i64 [3]", nb_sum(I64(3))) \
    P(i64_mean_axes, "nb_mean: expected a f32 or f64 tensor, got i64 [2,3]", nb_mean_axes(I64(2, 3), NB_AXES(0), false)) \
    P(i64_log_softmax, "nb_log_softmax: expected a f32 or f64 tensor, got i64 [2,3]", nb_log_softmax(I64(2, 3), 1)) \
    P(i64_scores_sce, "nb_softmax_cross_entropy: expected a f32 or f64 tensor, got i64 [2,3]", nb_softmax_cross_entropy(I64(2, 3), I64(2))) \
    P(i64_conv2d, "nb_conv2d: expected a f32 or f64 tensor, got i64 [1,1,3,3]", nb_conv2d(I64(1, 1, 3, 3), I64(1, 1, 3, 3), I64(1), 1, 0)) \
    P(i64_dropout, "nb_dropout: expected a f32 or f64 tensor, got i64 [3]", nb_dropout(I64(3), 0.5, rng(), true)) \
    P(i64_unfold, "nb_unfold: expected a f32 or f64 tensor, got i64 [1,1,3,3]", nb_unfold(I64(1, 1, 3, 3), W(2, 1, 0))) \
    P(i64_max_pool, "nb_max_pool2d: expected a f32 or f64 tensor, got i64 [1,1,4,4]", nb_max_pool2d(I64(1, 1, 4, 4), W(2, 2, 0))) \
    P(float_gather_index, "nb_gather: index must be i64, got f64 [2,1]", nb_gather(F64(2, 3), 1, F64(2, 1))) \
    P(float_index_select_index, "nb_index_select: index must be i64, got f64 [2]", nb_index_select(F64(4, 3), 0, F64(2))) \
    P(float_labels_sce, "nb_softmax_cross_entropy: labels must be i64, got f64 [2]", nb_softmax_cross_entropy(F64(2, 3), F64(2))) \
    P(float_labels_svm, "nb_svm_loss: labels must be i64, got f32 [2]", nb_svm_loss(F64(2, 3), F32(2))) \
    /* shapes that do not broadcast */ \
    P(bcast_add, "nb_add: shapes do not broadcast: [2,3] and [4]", nb_add(F64(2, 3), F64(4))) \
    P(bcast_sub, "nb_sub: shapes do not broadcast: [2,3] and [3,2]", nb_sub(F64(2, 3), F64(3, 2))) \
    P(bcast_mul, "nb_mul: shapes do not broadcast: [5,1,3] and [4,2]", nb_mul(F64(5, 1, 3), F64(4, 2))) \
    P(bcast_div, "nb_div: shapes do not broadcast: [2] and [3]", nb_div(F64(2), F64(3))) \
    P(bcast_maximum, "nb_maximum: shapes do not broadcast: [2,3] and [2,2]", nb_maximum(F64(2, 3), F64(2, 2))) \
    P(bcast_where, "nb_where: shapes do not broadcast: [3] and [4]", nb_where(F64(2, 3), F64(3), F64(4))) \
    P(bcast_greater_equal, "nb_greater_equal: shapes do not broadcast: [3] and [4]", nb_greater_equal(F64(3), F64(4))) \
    P(expand_bad, "nb_expand: cannot expand [2,3] to [4,3]", nb_expand(F64(2, 3), NB_SHAPE(4, 3))) \
    P(expand_fewer_dims, "nb_expand: cannot expand [2,3] to [3]", nb_expand(F64(2, 3), NB_SHAPE(3))) \
    P(sum_to_bad, "nb_sum_to: [4] does not broadcast to [2,3]", nb_sum_to(F64(2, 3), NB_SHAPE(4))) \
    P(reshape_numel, "nb_reshape: cannot reshape [2,3] (6 elements) into [4,2]", nb_reshape(F64(2, 3), NB_SHAPE(4, 2))) \
    P(reshape_two_unknown, "nb_reshape: bad target shape [-1,-1] for [2,3]", nb_reshape(F64(2, 3), NB_SHAPE(-1, -1))) \
    P(reshape_unknown_indivisible, "nb_reshape: cannot reshape [2,3] into [4,-1]", nb_reshape(F64(2, 3), NB_SHAPE(4, -1))) \
    P(reshape_negative, "nb_reshape: bad target shape [-2,-3] for [2,3]", nb_reshape(F64(2, 3), NB_SHAPE(-2, -3))) \
    I(copy_into_shape, "nb_copy_into: shapes differ: [2,3] and [3,2]", cx_copy_into_shape()) \
    I(copy_into_broadcast_view, "nb_copy_into: cannot write into [4,3]: a broadcast view (stride 0 along axis 0) has one element at several indices", cx_copy_into_broadcast_view()) \
    I(fill_broadcast_view, "nb_fill: cannot write into [2,5]: a broadcast view (stride 0 along axis 1) has one element at several indices", nb_fill(nb_expand(F64(2, 1), NB_SHAPE(2, 5)), 1)) \
    /* matmul inner dimensions */ \
    P(matmul_inner, "nb_matmul: inner dimensions differ: [2,3] @ [4,5]", nb_matmul(F64(2, 3), F64(4, 5))) \
    P(matmul_batched_inner, "nb_matmul: inner dimensions differ: [2,2,3] @ [2,2,3]", nb_matmul(F64(2, 2, 3), F64(2, 2, 3))) \
    P(matmul_batch_bcast, "nb_matmul: batch dimensions do not broadcast: [2,2,3] @ [3,3,4]", nb_matmul(F64(2, 2, 3), F64(3, 3, 4))) \
    P(matmul_1d, "nb_matmul: operands need at least 2 dimensions: [3] @ [3]", nb_matmul(F64(3), F64(3))) \
    P(affine_inner, "nb_affine: w is [5,4] but x flattens to [2,6]", nb_affine(F64(2, 3, 2), F64(5, 4), F64(4))) \
    P(affine_bias, "nb_affine: b is [5] but w is [3,4] (expected [4])", nb_affine(F64(2, 3), F64(3, 4), F64(5))) \
    P(affine_relu_inner, "nb_affine: w is [4,4] but x flattens to [2,3]", nb_affine_relu(F64(2, 3), F64(4, 4), F64(4))) \
    /* axis out of range */ \
    P(axis_sum_axes, "nb_sum: axis 2 out of range for [2,3]", nb_sum_axes(F64(2, 3), NB_AXES(2), false)) \
    P(axis_sum_axes_negative, "nb_sum: axis -3 out of range for [2,3]", nb_sum_axes(F64(2, 3), NB_AXES(-3), false)) \
    P(axis_sum_axes_repeated, "nb_sum: axis -1 repeated for [2,3]", nb_sum_axes(F64(2, 3), NB_AXES(1, -1), false)) \
    P(axis_mean_axes, "nb_mean: axis 5 out of range for [2,3]", nb_mean_axes(F64(2, 3), NB_AXES(5), true)) \
    P(axis_max_axes, "nb_max: axis 2 out of range for [2,3]", nb_max_axes(F64(2, 3), NB_AXES(2), false)) \
    P(axis_argmax, "nb_argmax: axis 2 out of range for [2,3]", nb_argmax(F64(2, 3), 2, false)) \
    P(axis_argmax_negative, "nb_argmax: axis -3 out of range for [2,3]", nb_argmax(F64(2, 3), -3, false)) \
    P(axis_log_softmax, "nb_log_softmax: axis 2 out of range for [2,3]", nb_log_softmax(F64(2, 3), 2)) \
    P(axis_log_softmax_negative, "nb_log_softmax: axis -3 out of range for [2,3]", nb_log_softmax(F64(2, 3), -3)) \
    P(axis_concat, "nb_concat: axis 2 out of range for [2,3]", cx_concat_axis()) \
    P(axis_slice, "nb_slice: axis 2 out of range for [2,3]", nb_slice(F64(2, 3), 2, 0, 1, 1)) \
    P(axis_gather, "nb_gather: axis 2 out of range for [2,3]", nb_gather(F64(2, 3), 2, I64(2, 1))) \
    P(axis_scatter_add, "nb_scatter_add: axis 3 out of range for [2,3]", nb_scatter_add(NB_SHAPE(2, 3), 3, I64(2, 1), F64(2, 1))) \
    P(axis_index_select, "nb_index_select: axis 2 out of range for [4,3]", nb_index_select(F64(4, 3), 2, I64(2))) \
    P(axis_index_add, "nb_index_add: axis -3 out of range for [4,3]", nb_index_add(NB_SHAPE(4, 3), -3, I64(2), F64(2, 3))) \
    P(axis_transpose, "nb_transpose: axis 2 out of range for [2,3]", nb_transpose(F64(2, 3), 0, 2)) \
    P(axis_permute, "nb_permute: axis 2 out of range for [2,3]", nb_permute(F64(2, 3), NB_AXES(0, 2))) \
    P(permute_repeated, "nb_permute: axis 0 repeated for [2,3]", nb_permute(F64(2, 3), NB_AXES(0, 0))) \
    P(permute_count, "nb_permute: 2 axes given for [2,3,4]", nb_permute(F64(2, 3, 4), NB_AXES(1, 0))) \
    P(concat_shapes, "nb_concat: input 1 is [2,4] but input 0 is [2,3]: only axis 0 may differ", cx_concat_shape()) \
    P(concat_ndim, "nb_concat: input 1 is [2,3,1] but input 0 is [2,3]: only axis 0 may differ", cx_concat_ndim()) \
    P(concat_zero, "nb_concat: no inputs (n = 0)", nb_concat(0, NULL, 0)) \
    P(slice_step_zero, "nb_slice: step 0 must be positive, slicing axis 0 of [4]", nb_slice(F64(4), 0, 0, 4, 0)) \
    P(slice_step_negative, "nb_slice: step -1 must be positive, slicing axis 0 of [4]", nb_slice(F64(4), 0, 3, 0, -1)) \
    P(pad_negative, "nb_pad: negative padding -1 before, 0 after on axis 1 of [2,3]", cx_pad_negative()) \
    P(pad_null_widths, "nb_pad: NULL padding amounts for [2,3]", cx_pad_null_widths()) \
    /* indexing values and shapes */ \
    P(gather_index_value, "nb_gather: index 3 at position [0,0] is out of range [0,3) for axis 1 of [2,3]", nb_gather(F64(2, 3), 1, nb_full(NB_I64, NB_SHAPE(2, 1), 3))) \
    P(gather_index_negative, "nb_gather: index -1 at position [0,0] is out of range [0,3) for axis 1 of [2,3]", nb_gather(F64(2, 3), 1, nb_full(NB_I64, NB_SHAPE(2, 1), -1))) \
    P(gather_index_rank, "nb_gather: index [2] must have 2 dimensions like [2,3]", nb_gather(F64(2, 3), 1, I64(2))) \
    P(index_select_value, "nb_index_select: index 4 at position [0] is out of range [0,4) for axis 0 of [4,3]", nb_index_select(F64(4, 3), 0, nb_full(NB_I64, NB_SHAPE(2), 4))) \
    P(index_select_rank, "nb_index_select: index must be 1-D, got [2,1]", nb_index_select(F64(4, 3), 0, I64(2, 1))) \
    P(scatter_add_src_shape, "nb_scatter_add: src [2,2] and index [2,1] differ in shape", nb_scatter_add(NB_SHAPE(2, 3), 1, I64(2, 1), F64(2, 2))) \
    P(index_add_src_shape, "nb_index_add: src [3,3] must be [2,3] for index [2] along axis 0 of [4,3]", nb_index_add(NB_SHAPE(4, 3), 0, I64(2), F64(3, 3))) \
    /* creation: negative / zero sizes, too many dims, NaN */ \
    P(create_negative_dim, "nb_zeros: negative size in shape [2,-3]", nb_zeros(NB_F64, NB_SHAPE(2, -3))) \
    P(create_negative_ones, "nb_full: negative size in shape [-1]", nb_ones(NB_F32, NB_SHAPE(-1))) \
    P(create_full_negative, "nb_full: negative size in shape [3,-2]", nb_full(NB_F64, NB_SHAPE(3, -2), 1)) \
    P(create_empty_negative, "nb_empty: negative size in shape [-5]", nb_empty(NB_F64, NB_SHAPE(-5))) \
    P(create_too_many_dims, "nb_zeros: 9 dimensions given, at most 8 allowed", nb_zeros(NB_F64, shape_ndim(9))) \
    P(create_negative_ndim, "nb_zeros: -1 dimensions given, at most 8 allowed", nb_zeros(NB_F64, shape_ndim(-1))) \
    P(create_rand_too_many_dims, "nb_rand: 9 dimensions given, at most 8 allowed", nb_rand(NB_F64, shape_ndim(9), rng(), 0, 1)) \
    P(create_bad_dtype, "nb_zeros: unknown dtype 7", nb_zeros((nb_dtype)7, NB_SHAPE(2))) \
    P(reshape_too_many_dims, "nb_reshape: 9 dimensions given, at most 8 allowed", nb_reshape(F64(1), shape_ndim(9))) \
    P(expand_too_many_dims, "nb_expand: 9 dimensions given, at most 8 allowed", nb_expand(F64(1), shape_ndim(9))) \
    P(arange_step_zero, "nb_arange: bad range start=0 stop=5 step=0", nb_arange(NB_F64, 0, 5, 0)) \
    P(arange_step_nan, "nb_arange: bad range start=0 stop=5 step=nan", nb_arange(NB_F64, 0, 5, NAN)) \
    P(arange_start_nan, "nb_arange: bad range start=nan stop=5 step=1", nb_arange(NB_F64, NAN, 5, 1)) \
    P(arange_stop_inf, "nb_arange: bad range start=0 stop=inf step=1", nb_arange(NB_F64, 0, INFINITY, 1)) \
    P(linspace_negative, "nb_linspace: negative count -1", nb_linspace(NB_F64, 0, 1, -1)) \
    P(bernoulli_p_nan, "nb_bernoulli: probability nan outside [0, 1]", nb_bernoulli(NB_F64, NB_SHAPE(3), rng(), NAN)) \
    P(bernoulli_p_above, "nb_bernoulli: probability 1.5 outside [0, 1]", nb_bernoulli(NB_F64, NB_SHAPE(3), rng(), 1.5)) \
    P(bernoulli_p_negative, "nb_bernoulli: probability -0.1 outside [0, 1]", nb_bernoulli(NB_F64, NB_SHAPE(3), rng(), -0.1)) \
    P(rand_null_rng, "nb_rand: NULL generator", nb_rand(NB_F64, NB_SHAPE(3), NULL, 0, 1)) \
    P(from_data_null, "nb_from_data: NULL data", nb_from_data(NB_F64, NB_SHAPE(3), NULL)) \
    P(from_doubles_null, "nb_from_doubles: NULL values", nb_from_doubles(NB_F64, NB_SHAPE(3), NULL)) \
    I(item_many, "nb_item: expected one element, got [2]", cx_item_many()) \
    I(set_out_of_range, "nb_set: index 6 out of range for [2,3]", cx_set_out_of_range()) \
    P(take_rows_start, "nb_take_rows: start 5 out of range [0,4] for [4,2]", nb_take_rows(F64(4, 2), 5, 1)) \
    P(take_rows_count, "nb_take_rows: count must be >= 0, got -1", nb_take_rows(F64(4, 2), 0, -1)) \
    P(take_rows_scalar, "nb_take_rows: x must have at least one axis, got []", nb_take_rows(nb_scalar(NB_F64, 1), 0, 1)) \
    P(cast_bad_dtype, "nb_cast: unknown dtype 9 for [2]", nb_cast(F64(2), (nb_dtype)9)) \
    /* images: kernel vs padded input, stride, padding */ \
    P(unfold_kernel_too_big, "nb_unfold: kernel 5x5 larger than padded input [1,1,3,3] with padding 0", nb_unfold(F64(1, 1, 3, 3), W(5, 1, 0))) \
    P(unfold_kernel_too_big_padded, "nb_unfold: kernel 6x6 larger than padded input [1,1,3,3] with padding 1", nb_unfold(F64(1, 1, 3, 3), W(6, 1, 1))) \
    P(unfold_stride_zero, "nb_unfold: stride 0 must be at least 1 for input [1,1,4,4]", nb_unfold(F64(1, 1, 4, 4), W(2, 0, 0))) \
    P(unfold_pad_negative, "nb_unfold: padding -1 must not be negative for input [1,1,4,4]", nb_unfold(F64(1, 1, 4, 4), W(2, 1, -1))) \
    P(unfold_kernel_zero, "nb_unfold: kernel 0 must be at least 1x1 for input [1,1,4,4]", nb_unfold(F64(1, 1, 4, 4), W(0, 1, 0))) \
    P(unfold_rank, "nb_unfold: expected a 4-D [N,C,H,W] input, got [1,4,4]", nb_unfold(F64(1, 4, 4), W(2, 1, 0))) \
    P(fold_channels, "nb_fold: [1,5,9] has 5 rows, not a multiple of kernel 2x2", nb_fold(F64(1, 5, 9), 4, 4, W(2, 1, 0))) \
    P(fold_positions, "nb_fold: [1,4,8] has 8 columns but kernel 2x2 gives 3x3 windows over output 4x4", nb_fold(F64(1, 4, 8), 4, 4, W(2, 1, 0))) \
    P(max_pool_kernel_too_big, "nb_max_pool2d: kernel 4x4 larger than padded input [1,1,3,3] with padding 0", nb_max_pool2d(F64(1, 1, 3, 3), W(4, 1, 0))) \
    P(max_pool_stride_zero, "nb_max_pool2d: stride 0 must be at least 1 for input [1,1,4,4]", nb_max_pool2d(F64(1, 1, 4, 4), W(2, 0, 0))) \
    P(max_pool_pad_too_big, "nb_max_pool2d: padding 2 larger than half the kernel 2x2 for input [1,1,4,4]", nb_max_pool2d(F64(1, 1, 4, 4), W(2, 2, 2))) \
    P(max_pool_rank, "nb_max_pool2d: expected a 4-D [N,C,H,W] input, got [4,4]", nb_max_pool2d(F64(4, 4), W(2, 2, 0))) \
    P(avg_pool_kernel_too_big, "nb_avg_pool2d: kernel 4x4 larger than padded input [1,1,3,3] with padding 0", nb_avg_pool2d(F64(1, 1, 3, 3), W(4, 1, 0))) \
    P(avg_pool_pad_negative, "nb_avg_pool2d: padding -1 must not be negative for input [1,1,4,4]", nb_avg_pool2d(F64(1, 1, 4, 4), W(2, 2, -1))) \
    P(conv_kernel_too_big, "nb_conv2d: kernel 7x7 does not fit x [1,3,4,4] with padding 1", nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 7, 7), F64(2), 1, 1)) \
    P(conv_stride_zero, "nb_conv2d: stride 0 must be at least 1", nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 3, 3), F64(2), 0, 1)) \
    P(conv_pad_negative, "nb_conv2d: padding -1 must not be negative", nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 3, 3), F64(2), 1, -1)) \
    P(conv_channels, "nb_conv2d: w is [2,4,3,3] but x is [1,3,4,4] (channels differ)", nb_conv2d(F64(1, 3, 4, 4), F64(2, 4, 3, 3), F64(2), 1, 1)) \
    P(conv_bias, "nb_conv2d: b is [3] but w is [2,3,3,3] (expected [2])", nb_conv2d(F64(1, 3, 4, 4), F64(2, 3, 3, 3), F64(3), 1, 1)) \
    P(conv_rank, "nb_conv2d: expected a 4-D [N,C,H,W] x, got [3,4,4]", nb_conv2d(F64(3, 4, 4), F64(2, 3, 3, 3), F64(2), 1, 1)) \
    P(conv_relu_fused_channels, "nb_conv2d_relu_fused: w is [2,4,3,3] but x is [1,3,4,4] (channels differ)", nb_conv2d_relu_fused(F64(1, 3, 4, 4), F64(2, 4, 3, 3), F64(2), 1, 1)) \
    P(conv_relu_pool_fused_small, "nb_conv2d_relu_pool_fused: the 2x2 max pool needs a convolution output of at least 2x2, got 1x2 from x [1,3,1,2]", nb_conv2d_relu_pool_fused(F64(1, 3, 1, 2), F64(2, 3, 1, 1), F64(2), 1, 0)) \
    P(conv_relu_pool_fused_stride, "nb_conv2d_relu_pool_fused: stride 0 must be at least 1", nb_conv2d_relu_pool_fused(F64(1, 3, 4, 4), F64(2, 3, 3, 3), F64(2), 0, 1)) \
    P(conv_relu_pool_window, "nb_max_pool2d: kernel 5x5 larger than padded input [1,2,4,4] with padding 0", nb_conv_relu_pool(F64(1, 3, 4, 4), F64(2, 3, 3, 3), F64(2), 1, 1, W(5, 1, 0))) \
    P(global_avg_pool_rank, "nb_global_avg_pool: expected a 4-D [N,C,H,W] x, got [2,3]", nb_global_avg_pool(F64(2, 3))) \
    /* labels out of range */ \
    P(sce_label_high, "nb_softmax_cross_entropy: label 3 at position 1 is outside [0, 3)", nb_softmax_cross_entropy(F64(2, 3), labels(2, (const double[]){ 0, 3 }))) \
    P(sce_label_negative, "nb_softmax_cross_entropy: label -1 at position 0 is outside [0, 3)", nb_softmax_cross_entropy(F64(2, 3), labels(2, (const double[]){ -1, 0 }))) \
    P(sce_label_count, "nb_softmax_cross_entropy: labels [3] must be [2] to match scores [2,3]", nb_softmax_cross_entropy(F64(2, 3), I64(3))) \
    P(sce_scores_rank, "nb_softmax_cross_entropy: scores must be [N,C], got [6]", nb_softmax_cross_entropy(F64(6), I64(6))) \
    P(svm_label_high, "nb_svm_loss: label 7 at position 1 is outside [0, 3)", nb_svm_loss(F64(2, 3), labels(2, (const double[]){ 2, 7 }))) \
    P(svm_label_negative, "nb_svm_loss: label -2 at position 1 is outside [0, 3)", nb_svm_loss(F64(2, 3), labels(2, (const double[]){ 0, -2 }))) \
    P(svm_label_rank, "nb_svm_loss: labels [2,1] must be [2] to match scores [2,3]", nb_svm_loss(F64(2, 3), I64(2, 1))) \
    P(l2_reg_zero, "nb_l2_reg: expected at least one weight, got 0", nb_l2_reg(0, NULL, 1.0)) \
    /* dropout keep_prob, normalisation, groups */ \
    P(dropout_keep_zero, "nb_dropout: keep_prob 0 must be in (0, 1]", nb_dropout(F64(3), 0, rng(), true)) \
    P(dropout_keep_above, "nb_dropout: keep_prob 1.5 must be in (0, 1]", nb_dropout(F64(3), 1.5, rng(), true)) \
    P(dropout_keep_negative, "nb_dropout: keep_prob -0.5 must be in (0, 1]", nb_dropout(F64(3), -0.5, rng(), true)) \
    P(dropout_keep_nan, "nb_dropout: keep_prob nan must be in (0, 1]", nb_dropout(F64(3), NAN, rng(), true)) \
    P(dropout_null_rng, "nb_dropout: NULL generator", nb_dropout(F64(3), 0.5, NULL, true)) \
    P(groupnorm_groups, "nb_groupnorm: groups 4 must divide the 6 channels of x [2,6,2,2]", nb_groupnorm(F64(2, 6, 2, 2), F64(6), F64(6), 4, 1e-5)) \
    P(groupnorm_groups_zero, "nb_groupnorm: groups 0 must divide the 6 channels of x [2,6,2,2]", nb_groupnorm(F64(2, 6, 2, 2), F64(6), F64(6), 0, 1e-5)) \
    P(groupnorm_gamma, "nb_groupnorm: gamma is [5] but x is [2,6,2,2] (expected [6] or [1,6,1,1])", nb_groupnorm(F64(2, 6, 2, 2), F64(5), F64(6), 2, 1e-5)) \
    P(groupnorm_rank, "nb_groupnorm: expected a 4-D [N,C,H,W] x, got [2,6]", nb_groupnorm(F64(2, 6), F64(6), F64(6), 2, 1e-5)) \
    P(layernorm_gamma, "nb_layernorm: gamma is [4] but x is [2,3] (expected [3])", nb_layernorm(F64(2, 3), F64(4), F64(3), 1e-5)) \
    P(layernorm_eps_negative, "nb_layernorm: eps -1 must be finite and not negative", nb_layernorm(F64(2, 3), F64(3), F64(3), -1)) \
    P(batchnorm_gamma, "nb_batchnorm: gamma is [2] but x is [4,3] (expected [3])", cx_batchnorm_gamma()) \
    P(batchnorm_rank, "nb_batchnorm: expected a 2-D [N,D] x, got [4,3,2]", cx_batchnorm_rank()) \
    P(batchnorm_running, "nb_batchnorm: running_mean is [2] but x is [4,3] (expected [3])", cx_batchnorm_running()) \
    P(batchnorm_null_state, "nb_batchnorm: eval mode normalises with running stats: it needs a state (got NULL)", cx_batchnorm_null_state()) \
    P(spatial_batchnorm_rank, "nb_spatial_batchnorm: expected a 4-D [N,C,H,W] x, got [4,3]", cx_spatial_bn_rank()) \
    P(spatial_batchnorm_channels, "nb_spatial_batchnorm: gamma is [2] but x is [2,3,4,4] (expected [3])", cx_spatial_bn_channels()) \
    P(batchnorm_fused_gamma, "nb_batchnorm_fused: gamma [2] must be [3] to match x [4,3]", cx_batchnorm_fused_shape()) \
    P(batchnorm_fused_rank, "nb_batchnorm_fused: x must be [N,D] or [N,C,H,W], got [4]", nb_batchnorm_fused(F64(4), F64(4), F64(4), 1e-5, NULL, NULL)) \
    P(batchnorm_relu_fused_rank, "nb_batchnorm_relu_fused: x must be [N,D] or [N,C,H,W], got [4]", nb_batchnorm_relu_fused(F64(4), F64(4), F64(4), 1e-5, NULL, NULL)) \
    P(batchnorm_add_relu_fused_rank, "nb_batchnorm_add_relu_fused: x must be [N,D] or [N,C,H,W], got [4]", nb_batchnorm_add_relu_fused(F64(4), F64(4), F64(4), F64(4), 1e-5, NULL, NULL)) \
    P(batchnorm_add_relu_fused_skip, "nb_batchnorm_add_relu_fused: skip [2,3] must have x's shape [4,3]", nb_batchnorm_add_relu_fused(F64(4, 3), F64(3), F64(3), F64(2, 3), 1e-5, NULL, NULL)) \
    P(null_batchnorm_add_relu_fused_skip, "nb_batchnorm_add_relu_fused: NULL input", nb_batchnorm_add_relu_fused(F64(4, 3), F64(3), F64(3), NULL, 1e-5, NULL, NULL)) \
    P(batchnorm_relu_fused_dtype, "nb_batchnorm_relu_fused: dtypes differ: f64 [4,3] and f32 [3]", nb_batchnorm_relu_fused(F64(4, 3), F32(3), F64(3), 1e-5, NULL, NULL)) \
    /* module constructors */ \
    P(module_linear_in, "nb_module_linear: sizes must be positive, got in 0 out 3", nb_module_linear(0, 3, NB_F64, init())) \
    P(module_linear_out, "nb_module_linear: sizes must be positive, got in 3 out -2", nb_module_linear(3, -2, NB_F64, init())) \
    P(module_linear_dtype, "nb_module_linear: dtype must be f32 or f64, got i64", nb_module_linear(3, 2, NB_I64, init())) \
    P(module_conv_dtype, "nb_module_conv2d: dtype must be f32 or f64, got i64", nb_module_conv2d(3, 4, 3, 1, 1, NB_I64, init())) \
    P(module_linear_null_rng, "nb_module_linear: weight initialisation needs a generator (init.rng is NULL)", nb_module_linear(3, 2, NB_F64, NB_INIT_NORMAL_SCALE(NULL, 1e-2))) \
    P(module_linear_scale, "nb_module_linear: bad weight scale -1", nb_module_linear(3, 2, NB_F64, NB_INIT_NORMAL_SCALE(rng(), -1))) \
    P(module_conv_kernel, "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 3 out_ch 4 k 0 stride 1 pad 1", nb_module_conv2d(3, 4, 0, 1, 1, NB_F64, init())) \
    P(module_conv_stride, "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 3 out_ch 4 k 3 stride 0 pad 1", nb_module_conv2d(3, 4, 3, 0, 1, NB_F64, init())) \
    P(module_conv_pad, "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 3 out_ch 4 k 3 stride 1 pad -1", nb_module_conv2d(3, 4, 3, 1, -1, NB_F64, init())) \
    P(module_conv_channels, "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 0 out_ch 4 k 3 stride 1 pad 1", nb_module_conv2d(0, 4, 3, 1, 1, NB_F64, init())) \
    P(module_max_pool, "nb_module_max_pool2d: need a positive window and stride and 0 <= pad <= k/2, got kernel (2, 2), stride (0, 0), padding (0, 0)", nb_module_max_pool2d(W(2, 0, 0))) \
    P(module_batchnorm1d, "nb_module_batchnorm1d: features must be positive, got 0", nb_module_batchnorm1d(0, NB_F64, false)) \
    P(module_batchnorm2d, "nb_module_batchnorm2d: channels must be positive, got -3", nb_module_batchnorm2d(-3, NB_F32, true)) \
    P(module_batchnorm_dtype, "nb_module_batchnorm1d: dtype must be f32 or f64, got i64", nb_module_batchnorm1d(3, NB_I64, false)) \
    P(module_layernorm, "nb_module_layernorm: features must be positive, got 0", nb_module_layernorm(0, NB_F64, false)) \
    P(module_groupnorm_divide, "nb_module_groupnorm: groups 4 must be positive and divide the 6 channels", nb_module_groupnorm(4, 6, NB_F64)) \
    P(module_groupnorm_zero, "nb_module_groupnorm: groups 0 must be positive and divide the 6 channels", nb_module_groupnorm(0, 6, NB_F64)) \
    P(module_dropout_keep, "nb_module_dropout: keep_prob 0 must be in (0, 1]", nb_module_dropout(0, rng())) \
    P(module_dropout_keep_nan, "nb_module_dropout: keep_prob nan must be in (0, 1]", nb_module_dropout(NAN, rng())) \
    P(module_dropout_rng, "nb_module_dropout: NULL generator", nb_module_dropout(0.5, NULL)) \
    P(module_residual_channels, "nb_module_residual: need positive in_ch, out_ch and stride, got in_ch 0 out_ch 4 stride 1", nb_module_residual(0, 4, 1, NB_F64, init(), false)) \
    P(module_residual_stride, "nb_module_residual: need positive in_ch, out_ch and stride, got in_ch 4 out_ch 4 stride 0", nb_module_residual(4, 4, 0, NB_F64, init(), false)) \
    P(module_sequential_negative, "nb_module_sequential: bad children (n -1, array NULL)", nb_module_sequential(-1, NULL)) \
    P(module_sequential_null_child, "nb_module_linear: sizes must be positive, got in 0 out 3", cx_sequential_null_child()) \
    I(module_sequential_append_null, "nb_module_linear: sizes must be positive, got in 3 out -2", cx_sequential_append_null()) \
    I(module_sequential_append_duplicate, "nb_module_add_child: name 'fc1' already used in a Sequential", cx_sequential_append_duplicate()) \
    P(module_find_absent, "nb_module_find: no tensor named 'weights' in this Linear", cx_module_find_absent()) \
    P(module_linear_forward, "nb_affine: w is [3,2] but x flattens to [4,5]", cx_module_linear_forward()) \
    P(module_linear_forward_dtype, "nb_affine: dtypes differ: f32 [4,3] and f64 [3,2]", cx_module_linear_forward_dtype()) \
    P(module_conv_forward, "nb_conv2d_fused: w is [4,3,3,3] but x is [2,2,5,5] (channels differ)", cx_module_conv_forward()) \
    I(module_add_tensor_null, "nb_module_add_tensor: NULL tensor", cx_module_add_tensor_null()) \
    I(module_add_tensor_duplicate, "nb_module_add_tensor: name 'w' already used in a Mine", cx_module_add_tensor_duplicate()) \
    I(module_add_tensor_dotted, "nb_module_add_tensor: bad name 'a.b' in a Mine (1 to 63 characters, no '.')", cx_module_add_tensor_dotted()) \
    P(module_new_null_forward, "nb_module_new: NULL kind or forward function", nb_module_new("Mine", NULL, 0)) \
    I(module_add_child_dotted, "nb_module_add_child: bad name 'a.b' in a Mine (1 to 63 characters, no '.')", cx_module_add_child_self()) \
    P(module_forward_null, "nb_module_forward: NULL module", nb_module_forward(NULL, F64(2))) \
    /* models */ \
    P(model_two_layer_dims, "nb_two_layer_net: input_dim must be positive, got 0", nb_two_layer_net(0, 5, 3, 1e-2, 0, NB_F64, rng())) \
    P(model_two_layer_reg, "nb_two_layer_net: reg -1 must be finite and not negative", nb_two_layer_net(4, 5, 3, 1e-2, -1, NB_F64, rng())) \
    P(model_two_layer_scale, "nb_two_layer_net: weight_scale nan must be finite and not negative", nb_two_layer_net(4, 5, 3, NAN, 0, NB_F64, rng())) \
    P(model_fc_hidden_null, "nb_fully_connected_net: n_hidden 2 needs that many hidden_dims (NULL)", cx_fc_hidden_null()) \
    P(model_fc_keep_prob, "nb_fully_connected_net: keep_prob 0 must be in (0, 1] (1: no dropout)", cx_fc_keep_prob()) \
    P(model_fc_hidden_zero, "nb_fully_connected_net: hidden_dims[1] must be positive, got 0", cx_fc_hidden_zero()) \
    P(model_fc_reg, "nb_fully_connected_net: reg -1 must be finite and not negative", cx_fc_reg()) \
    P(model_fc_dtype, "nb_fully_connected_net: dtype must be f32 or f64, got i64", cx_fc_dtype()) \
    P(model_fc_null, "nb_fully_connected_net: NULL config", nb_fully_connected_net(NULL)) \
    P(model_convnet_even, "nb_three_layer_convnet: filter_size must be odd and positive (padding (k-1)/2 keeps the size), got 4", cx_convnet_even_filter()) \
    P(model_convnet_classes, "nb_three_layer_convnet: num_classes must be positive, got 0", cx_convnet_classes()) \
    P(model_resnet_blocks, "nb_resnet: blocks_per_stage must be at least 1, got 0", cx_resnet_blocks()) \
    P(model_resnet_width, "nb_resnet: widths[1] must be positive, got 0", cx_resnet_width()) \
    P(model_new_reg, "nb_model_new: reg -1 must be finite and not negative", cx_model_new_reg()) \
    P(model_new_null, "nb_module_linear: sizes must be positive, got in -1 out 3", cx_model_new_null()) \
    P(model_scores_shape, "nb_affine: w is [4,5] but x flattens to [2,5]", cx_model_scores_shape()) \
    P(model_loss_labels, "nb_softmax_cross_entropy: label 3 at position 1 is outside [0, 3)", cx_model_loss_labels()) \
    P(model_loss_float_labels, "nb_softmax_cross_entropy: labels must be i64, got f64 [2]", cx_model_loss_float_labels()) \
    P(model_loss_count, "nb_softmax_cross_entropy: labels [3] must be [2] to match scores [2,3]", cx_model_loss_count()) \
    I(model_accuracy_batch, "nb_model_accuracy: batch_size must be positive, got 0", cx_model_accuracy_batch()) \
    I(model_accuracy_rows, "nb_model_accuracy: labels must be i64 [2] to match x [2,4], got i64 [3]", cx_model_accuracy_rows()) \
    /* optimizers */ \
    P(optim_lr_zero, "nb_optimizer_new: lr must be a finite number > 0, got 0", cx_optim_lr_zero()) \
    P(optim_lr_negative, "nb_optimizer_new: lr must be a finite number > 0, got -0.001", cx_optim_lr_negative()) \
    P(optim_lr_nan, "nb_optimizer_new: lr must be a finite number > 0, got nan", cx_optim_lr_nan()) \
    P(optim_lr_inf, "nb_optimizer_new: lr must be a finite number > 0, got inf", cx_optim_lr_inf()) \
    P(optim_momentum_one, "nb_optimizer_new: momentum must be in [0, 1), got 1", cx_optim_momentum()) \
    P(optim_nesterov_momentum_nan, "nb_optimizer_new: momentum must be in [0, 1), got nan", cx_optim_nesterov_momentum_nan()) \
    P(optim_decay_rate, "nb_optimizer_new: decay_rate must be in [0, 1), got -0.1", cx_optim_decay_rate()) \
    P(optim_beta1, "nb_optimizer_new: beta1 must be in [0, 1), got 1", cx_optim_beta1()) \
    P(optim_beta2_nan, "nb_optimizer_new: beta2 must be in [0, 1), got nan", cx_optim_beta2()) \
    P(optim_eps_zero, "nb_optimizer_new: eps must be a finite number > 0, got 0", cx_optim_eps()) \
    P(optim_weight_decay_sgd, "nb_optimizer_new: weight_decay must be a finite number >= 0, got nan", cx_optim_wd_sgd()) \
    P(optim_weight_decay_negative, "nb_optimizer_new: weight_decay must be a finite number >= 0, got -1", cx_optim_wd_negative()) \
    P(optim_kind, "nb_optimizer_new: unknown optimizer kind 42", cx_optim_kind()) \
    P(optim_n_zero, "nb_optimizer_new: n must be >= 1, got 0", cx_optim_n_zero()) \
    P(optim_null_param, "nb_optimizer_new: NULL params[1]", cx_optim_null_param()) \
    P(optim_scoped_param, "nb_optimizer_new: params[0] [3] is not persistent (make parameters with nb_param)", cx_optim_scoped_param()) \
    P(optim_param_no_grad, "nb_optimizer_new: params[0] [3] does not require grad (make parameters with nb_param)", cx_optim_no_grad_param()) \
    P(optim_param_i64, "nb_optimizer_new: params[0] must be f32 or f64, got i64 [3]", cx_optim_i64_param()) \
    P(optim_duplicate_param, "nb_optimizer_new: params[1] is the same tensor as params[0]", cx_optim_duplicate_param()) \
    P(optim_duplicate_names, "nb_optimizer_new: names[1] 'w' repeats names[0]", cx_optim_duplicate_names()) \
    P(optim_empty_name, "nb_optimizer_new: names[0] is empty", cx_optim_empty_name()) \
    I(optim_step_bad_grad, "nb_optimizer_step: grad of '0' is f64 [4], expected f64 [3]", cx_optim_step_bad_grad()) \
    I(optim_step_null, "nb_optimizer_step: NULL optimizer", nb_optimizer_step(NULL)) \
    I(optim_kind_parse, "nb_optim_kind_parse: unknown optimizer 'Adam' (expected sgd, sgd_momentum, nesterov, rmsprop, adam, adamw)", cx_optim_kind_parse()) \
    I(optim_kind_parse_null, "nb_optim_kind_parse: NULL name", cx_optim_kind_parse_null()) \
    P(optim_kind_name, "nb_optim_kind_name: unknown kind 42", nb_optim_kind_name((nb_optim_kind)42)) \
    I(optim_defaults_kind, "nb_optim_defaults: unknown kind 42", cx_optim_defaults_kind()) \
    I(optim_clip_null, "nb_optimizer_clip_grad_norm: NULL optimizer", cx_clip_null()) \
    I(optim_clip_max_norm, "nb_optimizer_clip_grad_norm: max_norm must be a finite number > 0, got 0", cx_clip_max_norm()) \
    I(optim_set_lr_negative, "nb_optimizer_set_lr: lr must be a finite number >= 0, got -1", cx_set_lr_negative()) \
    I(lr_step_size, "nb_lr_step: step_size must be >= 1, got 0", cx_lr_step_size()) \
    I(lr_step_epoch, "nb_lr_step: epoch must be >= 0, got -1", cx_lr_step_epoch()) \
    I(lr_cosine_total, "nb_lr_cosine: total_steps must be >= 1, got 0", cx_lr_cosine_total()) \
    I(lr_cosine_step, "nb_lr_cosine: step must be >= 0, got -2", cx_lr_cosine_step()) \
    /* data sets */ \
    I(mnist_missing_folder, "nb_dataset_load_mnist: /nonexistent/mnist/train-images-idx3-ubyte.gz: cannot open: No such file or directory (nor /nonexistent/mnist/train-images-idx3-ubyte)", cx_mnist_missing()) \
    I(cifar10_missing_folder, "nb_dataset_load_cifar10: /nonexistent/cifar/data_batch_1.bin: cannot open: No such file or directory", cx_cifar_missing()) \
    I(cifar10_records_missing_folder, "nb_dataset_load_cifar10: /nonexistent/cifar/data_batch_1.bin: cannot open: No such file or directory", cx_cifar_records_missing()) \
    I(mnist_num_val, "nb_dataset_load_mnist: num_val must be >= 0, got -1", cx_mnist_num_val()) \
    I(mnist_dtype, "nb_dataset_load_mnist: images must be f32 or f64, got i64", cx_mnist_dtype()) \
    I(mnist_null_dir, "nb_dataset_load_mnist: NULL directory", cx_mnist_null_dir()) \
    P(idx_missing_file, "nb_idx_read: /nonexistent/train-images-idx3-ubyte: cannot open: No such file or directory", nb_idx_read("/nonexistent/train-images-idx3-ubyte", NB_F32)) \
    I(cifar_read_missing_file, "nb_cifar_read: /nonexistent/data_batch_1.bin: cannot open: No such file or directory", cx_cifar_read_missing()) \
    I(standardize_empty, "nb_dataset_standardize: the data set has no train_x", cx_standardize_empty()) \
    I(subtract_mean_empty, "nb_dataset_subtract_mean_image: the data set has no train_x", cx_subtract_mean_empty()) \
    I(standardize_zero_rows, "nb_dataset_standardize: train_x must be [N,C,...] with N >= 1, got [0,3,2,2]", cx_standardize_zero_rows()) \
    P(batcher_empty, "nb_batcher_new: x must have at least one row, got [0,3]", cx_batcher_empty()) \
    P(batcher_rows, "nb_batcher_new: y [5] must have as many rows as x [4,3]", cx_batcher_rows()) \
    P(batcher_batch_size, "nb_batcher_new: batch_size must be >= 1, got 0", cx_batcher_batch()) \
    P(batcher_mode, "nb_batcher_new: unknown mode 9", cx_batcher_mode()) \
    P(batcher_null_rng, "nb_batcher_new: NB_BATCH_SHUFFLE needs an rng", cx_batcher_null_rng()) \
    I(batcher_augment_negative, "nb_batcher_set_augment: crop_pad must be >= 0, got -1", cx_batcher_augment_negative()) \
    I(batcher_augment_rank, "nb_batcher_set_augment: augmentation needs contiguous images [N,...,H,W], got [4]", cx_batcher_augment_rank()) \
    /* safetensors */ \
    P(safetensors_missing_file, "nb_safetensors_load: /nonexistent/model.safetensors: cannot open: No such file or directory", nb_safetensors_load("/nonexistent/model.safetensors")) \
    P(safetensors_null_path, "nb_safetensors_load: NULL path", nb_safetensors_load(NULL)) \
    P(safetensors_get_absent, "nb_safetensors_get: no tensor named 'w' (the file has 0)", cx_st_get_absent()) \
    I(safetensors_save_null_tensor, "nb_safetensors_save: /tmp/nabla_bad_input.safetensors: tensor 'w' (index 0) is NULL", cx_st_save_null_tensor()) \
    I(safetensors_save_duplicate, "nb_safetensors_save: /tmp/nabla_bad_input.safetensors: duplicate tensor name 'w'", cx_st_save_duplicate()) \
    I(safetensors_save_metadata_name, "nb_safetensors_save: /tmp/nabla_bad_input.safetensors: tensor name '__metadata__' is reserved", cx_st_save_metadata_name()) \
    I(safetensors_save_missing_dir, "nb_safetensors_save: /nonexistent/dir/x.safetensors: cannot create a temporary file in folder '/nonexistent/dir': No such file or directory", cx_st_save_missing_dir()) \
    I(safetensors_writer_duplicate, "nb_safetensors_writer_add: duplicate tensor name 'w'", cx_st_writer_duplicate()) \
    I(safetensors_writer_null_tensor, "nb_safetensors_writer_add: NULL tensor for 'w'", cx_st_writer_null_tensor()) \
    /* solver */ \
    P(solver_batch_zero, "nb_solver_new: batch_size must be >= 1, got 0", cx_solver_batch()) \
    P(solver_epochs_negative, "nb_solver_new: num_epochs must be >= 0, got -1", cx_solver_epochs()) \
    P(solver_lr_decay_nan, "nb_solver_new: lr_decay must be a finite number > 0, got nan", cx_solver_lr_decay()) \
    P(solver_lr_decay_inf, "nb_solver_new: lr_decay must be a finite number > 0, got inf", cx_solver_lr_decay_inf()) \
    P(solver_lr_zero, "nb_optimizer_new: lr must be a finite number > 0, got 0", cx_solver_lr()) \
    P(solver_sequential_mode, "nb_solver_new: batch_mode must be NB_BATCH_SAMPLE or NB_BATCH_SHUFFLE", cx_solver_mode()) \
    P(solver_clip_negative, "nb_solver_new: clip_norm must be a finite number >= 0 (0 = off), got -1", cx_solver_clip()) \
    P(solver_clip_inf, "nb_solver_new: clip_norm must be a finite number >= 0 (0 = off), got inf", cx_solver_clip_inf()) \
    P(solver_crop_negative, "nb_solver_new: crop_pad must be >= 0 (0 = off), got -2", cx_solver_crop()) \
    P(solver_empty_train, "nb_solver_new: the training set is empty", cx_solver_empty_train()) \
    P(solver_float_labels, "nb_solver_new: training data [4,4] with labels f64 [4]: expected x [N,...] and i64 labels [N]", cx_solver_float_labels()) \
    P(solver_null_model, "nb_solver_new: NULL model or configuration", cx_solver_null_model()) \
    I(solver_resume_missing, "nb_safetensors_load: /nonexistent/ckpt.safetensors: cannot open: No such file or directory", cx_solver_resume_missing()) \
    I(solver_train_null, "nb_solver_train: NULL solver", nb_solver_train(NULL)) \
    /* autograd */ \
    I(backward_not_scalar, "nb_backward: the output is [2,3], not a scalar: give its gradient explicitly", cx_backward_not_scalar()) \
    I(backward_with_shape, "nb_backward: the output gradient is f64 [3,2] but the output is f64 [2,3]", cx_backward_with_shape()) \
    I(requires_grad_i64, "nb_set_requires_grad: expected a f32 or f64 tensor, got i64 [3]", cx_set_requires_grad_i64()) \
    I(requires_grad_nonleaf, "nb_set_requires_grad: [3] is the result of an op, not a leaf", cx_set_requires_grad_nonleaf()) \
    /* sizes that overflow int64: refused before anything is allocated or written */ \
    P(seq_rnn_no_steps, "nb_rnn: x [2,0,4] has no time steps", nb_rnn(F32(2, 0, 4), F32(2, 5), F32(4, 5), F32(5, 5), F32(5))) \
    P(seq_rnn_bias, "nb_rnn: b is [4], expected [5]", nb_rnn(F32(2, 3, 4), F32(2, 5), F32(4, 5), F32(5, 5), F32(4))) \
    P(seq_lstm_dtype, "nb_lstm: dtypes differ: f32 [2,3,4] and f64 [2,5]", nb_lstm(F32(2, 3, 4), F64(2, 5), F32(4, 20), F32(5, 20), F32(20))) \
    P(seq_attention_rank, "nb_attention: q [3], k [3] and v [3]: expected q and k [..,T,D] and v [..,T,E]", nb_attention(F32(3), F32(3), F32(3), true)) \
    P(seq_causal_mask_dtype, "nb_causal_mask: expected a float dtype and t >= 0, got i64 and 3", nb_causal_mask(NB_I64, 3)) \
    P(seq_embedding_ids, "nb_embedding: the ids must be i64 with at most 7 axes, got f32 [2]", nb_embedding(F32(5, 3), F32(2))) \
    P(seq_embedding_table, "nb_embedding: the table must be [V,D], got [5]", nb_embedding(F32(5), I64(2))) \
    P(seq_temporal_affine, "nb_temporal_affine: x [2,3,4] and w [5,5] do not fit: expected x [..,D] and w [D,M]", nb_temporal_affine(F32(2, 3, 4), F32(5, 5), F32(5))) \
    P(seq_temporal_loss_mask, "nb_temporal_softmax_loss: the mask is f64 [2,3]: expected [2,3] of f32 or i64", nb_temporal_softmax_loss(F32(2, 3, 4), I64(2, 3), F64(2, 3))) \
    P(seq_gelu_fused_dtype, "nb_gelu_fused: expected a f32 or f64 tensor, got i64 [2]", nb_gelu_fused(I64(2))) \
    P(seq_attention_fused_rank, "nb_attention_fused: q [3], k [3] and v [3]: expected q and k [..,T,D] and v [..,T,E] with the same leading axes", nb_attention_fused(F32(3), F32(3), F32(3), true)) \
    P(seq_attention_fused_i64, "nb_attention_fused: expected a f32 or f64 tensor, got i64 [2,2]", nb_attention_fused(I64(2, 2), I64(2, 2), I64(2, 2), true)) \
    P(seq_attention_fused_null, "nb_attention_fused: NULL input", nb_attention_fused(F32(2, 2), NULL, F32(2, 2), false)) \
    P(seq_attention_heads_fused, "nb_attention_heads_fused: qkv [2,3,5] and 1 heads: expected [B,T,3C] with C a multiple of the heads", nb_attention_heads_fused(F32(2, 3, 5), 1, true)) \
    P(seq_attention_heads_fused_zero, "nb_attention_heads_fused: qkv [2,3,6] and 0 heads: expected [B,T,3C] with C a multiple of the heads", nb_attention_heads_fused(F32(2, 3, 6), 0, true)) \
    P(layernorm_fused_params, "nb_layernorm_fused: gamma [3] and beta [4] must be [4] to match x [2,4]", nb_layernorm_fused(F32(2, 4), F32(3), F32(4), 1e-5)) \
    P(layernorm_fused_dtype, "nb_layernorm_fused: dtypes differ: f32 [2,4] and f64 [4]", nb_layernorm_fused(F32(2, 4), F64(4), F32(4), 1e-5)) \
    P(layernorm_fused_nan_eps, "nb_layernorm_fused: eps nan must be finite and not negative", nb_layernorm_fused(F32(2, 4), F32(4), F32(4), NAN)) \
    P(matmul_bias_shape, "nb_matmul_bias: bias [2] does not fit [2,3] @ [3,4] (expected [4])", nb_matmul_bias(F32(2, 3), F32(3, 4), F32(2))) \
    P(matmul_bias_inner, "nb_matmul_bias: inner dimensions differ: [2,3] @ [4,5]", nb_matmul_bias(F32(2, 3), F32(4, 5), F32(5))) \
    P(seq_gpt_loss_shapes, "nb_gpt_loss: logits [2,3,4] and targets [2,3,4]: expected [B,T,V] and [B,T]", nb_gpt_loss(F32(2, 3, 4), I64(2, 3, 4))) \
    P(seq_gpt_null_config, "nb_gpt: NULL configuration", nb_gpt(NULL)) \
    P(seq_gpt_heads, "nb_gpt: n_head 3 must divide n_embd 8", nb_gpt(&(nb_gpt_config){ 5, 4, 1, 3, 8, NB_F32, 0 })) \
    P(seq_llmc_null, "nb_gpt_load_llmc: NULL path", nb_gpt_load_llmc(NULL, NB_F32)) \
    P(seq_llmc_not_regular, "nb_gpt_load_llmc: /dev/null: not a regular file", nb_gpt_load_llmc("/dev/null", NB_F32)) \
    P(loss_mse_shapes, "nb_mse_loss: the target [3] must have the prediction's shape [3,1]", nb_mse_loss(F32(3, 1), F32(3))) \
    P(loss_huber_delta, "nb_huber_loss: delta -1 must be finite and positive", nb_huber_loss(F32(3), F32(3), -1)) \
    P(loss_bce_dtype, "nb_bce_with_logits: expected a f32 or f64 tensor, got i64 [3]", nb_bce_with_logits(I64(3), I64(3))) \
    P(pad_count, "nb_pad: 3 padding amounts for the 2 axes of [4,4]", nb_pad(F32(4, 4), 3, (int64_t[]){ 0, 0, 0 }, (int64_t[]){ 0, 0, 0 }, 0)) \
    P(custom_null_op, "nb_custom: NULL op", nb_custom(NULL, 1, (nb_tensor *[]){ F32(2) }, NULL)) \
    P(size_broadcast, "nb_add: the result f32 [2147483648,2147483648] is too large (its size overflows)", nb_add(nb_expand(F32(1, 1), NB_SHAPE(G31, 1)), nb_expand(F32(1, 1), NB_SHAPE(1, G31)))) \
    P(size_matmul_2_31, "nb_matmul: the result f32 [2147483648,2147483648] is too large (its size overflows)", nb_matmul(F32(G31, 0), F32(0, G31))) \
    P(size_matmul_2_32, "nb_matmul: the result f32 [4294967296,4294967296] is too large (its size overflows)", nb_matmul(F32(G31 * 2, 0), F32(0, G31 * 2))) \
    P(size_matmul_2_40, "nb_matmul: the result f64 [1099511627776,1099511627776] is too large (its size overflows)", nb_matmul(F64(G40, 0), F64(0, G40))) \
    P(size_pad_sum, "nb_pad: padding 9223372036854775807 before, 9223372036854775807 after on axis 0 of [4,4] is too large (the size overflows)", nb_pad(F32(4, 4), 2, (int64_t[]){ INT64_MAX, 0 }, (int64_t[]){ INT64_MAX, 0 }, 0)) \
    P(size_pad_result, "nb_pad: the result f32 [2305843009213693956,4] is too large (its size overflows)", nb_pad(F32(4, 4), 2, (int64_t[]){ G40 * G20, 0 }, (int64_t[]){ G40 * G20, 0 }, 0)) \
    P(size_unfold_padding, "nb_unfold: the 3x3 windows (stride 1, padding 1073741824) of input [1,1,4,4] are too many (their size overflows)", nb_unfold(F32(1, 1, 4, 4), W(3, 1, 1 << 30))) \
    P(size_avg_pool_padding, "nb_avg_pool2d: the 3x3 windows (stride 1, padding 1073741824) of input [1,1,4,4] are too many (their size overflows)", nb_avg_pool2d(F32(1, 1, 4, 4), W(3, 1, 1 << 30))) \
    P(size_conv_fused_padding, "nb_conv2d_fused: x [1,1,4,4] with w [2,1,3,3] and padding 1073741824 is too large (its size overflows)", nb_conv2d_fused(F32(1, 1, 4, 4), F32(2, 1, 3, 3), NULL, 1, 1 << 30)) \
    P(size_conv_pool_fused_padding, "nb_conv2d_relu_pool_fused: x [1,1,4,4] with w [2,1,3,3] and padding 1073741824 is too large (its size overflows)", nb_conv2d_relu_pool_fused(F32(1, 1, 4, 4), F32(2, 1, 3, 3), NULL, 1, 1 << 30)) \
    P(size_conv2d_padding, "nb_conv2d: x [1,1,4,4] with w [2,1,3,3] and padding 1073741824 is too large (its size overflows)", nb_conv2d(F32(1, 1, 4, 4), F32(2, 1, 3, 3), F32(2), 1, 1 << 30)) \
    P(size_conv_expanded, "nb_conv2d_fused: x [1,1048576,524288,524288] with w [2,1048576,3,3] and padding 1 is too large (its size overflows)", nb_conv2d_fused(nb_expand(F32(1, 1, 1, 1), NB_SHAPE(1, G20, G20 / 2, G20 / 2)), nb_expand(F32(1, 1, 1, 1), NB_SHAPE(2, G20, 3, 3)), NULL, 1, 1)) \
    P(size_index_select_expanded, "nb_index_select: the result f32 [8589934592,1073741824] is too large (its size overflows)", nb_index_select(nb_expand(F32(1, 1), NB_SHAPE(4, G30)), 0, nb_expand(I64(1), NB_SHAPE(G30 * 8)))) \
    P(size_fold_area, "nb_fold: output 4294967296x4294967296 with padding 0 is too large (its size overflows)", nb_fold(F32(1, 9, 1), G31 * 2, G31 * 2, W(3, 1, 0))) \
    P(size_fold_result, "nb_fold: [1,9,1] folded into output 2147483648x2147483648 is too large (its size overflows)", nb_fold(F32(1, 9, 1), G31, G31, W(3, 1, 0))) \
    P(size_concat, "nb_concat: the result f64 [2305843009213693950,1] is too large (its size overflows)", nb_concat(2, (nb_tensor *[]){ BIG_COLUMN, BIG_COLUMN }, 0)) \
    P(size_concat_sum, "nb_concat: 9 inputs along axis 0: the size overflows (input 8 is [1152921504606846975,1])", nb_concat(9, (nb_tensor *[]){ BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN, BIG_COLUMN }, 0)) \
    /* a gradcheck whose function returns NULL: its message, or that there was none */ \
    I(gradcheck_f_null, "nb_gradcheck: f returned NULL without recording an error", cx_gradcheck_null(false)) \
    I(gradcheck_f_fails, "nb_gradcheck: f returned NULL: nb_div: shapes do not broadcast: [2] and [3]", cx_gradcheck_null(true)) \
    /* configuration floats */ \
    P(l2_reg_nan, "nb_l2_reg: reg nan must be finite and not negative", nb_l2_reg(1, (nb_tensor *[]){ F64(2) }, NAN)) \
    P(l2_reg_negative, "nb_l2_reg: reg -1 must be finite and not negative", nb_l2_reg(1, (nb_tensor *[]){ F64(2) }, -1)) \
    /* out of memory: the op, the dtype, the shape and the bytes */ \
    P(oom_exp, "nb_exp: out of memory for the result f32 [1073741824,536870912] (2305843009213693952 bytes)", nb_exp(nb_expand(F32(1, 1), NB_SHAPE(G30, G30 / 2)))) \
    P(oom_contiguous, "nb_contiguous: out of memory for the result f64 [1073741824,536870912] (4611686018427387904 bytes)", nb_contiguous(nb_expand(F64(1, 1), NB_SHAPE(G30, G30 / 2)))) \
    P(oom_matmul, "nb_matmul: out of memory for the result f32 [1073741824,1,1073741824] (4611686018427387904 bytes)", nb_matmul(nb_expand(F32(1, 1, 1), NB_SHAPE(G30, 1, 1)), nb_expand(F32(1, 1, 1), NB_SHAPE(1, 1, G30)))) \
    /* end */

/* ---- cases that need setup ---- */
static const void *cx_chain_after_failure(void)
{
    /* the first failure's message survives the NULLs it feeds into the rest of the expression */
    nb_tensor *bad = nb_add(F64(2, 3), F64(4));
    return nb_sum(nb_exp(nb_mul_scalar(nb_matmul(bad, F64(3, 2)), 2.0)));
}

static const void *cx_chain_loss(void)
{
    nb_tensor *s = nb_matmul(F64(4, 3), F64(2, 5));
    return nb_softmax_cross_entropy(nb_relu(s), I64(4));
}

static const void *cx_concat_mixed(void)
{
    nb_tensor *xs[2] = { F32(2, 3), F64(2, 3) };
    return nb_concat(2, xs, 0);
}

static const void *cx_concat_shape(void)
{
    nb_tensor *xs[2] = { F64(2, 3), F64(2, 4) };
    return nb_concat(2, xs, 0);
}

static const void *cx_concat_axis(void)
{
    nb_tensor *xs[2] = { F64(2, 3), F64(2, 3) };
    return nb_concat(2, xs, 2);
}

static const void *cx_concat_ndim(void)
{
    nb_tensor *xs[2] = { F64(2, 3), F64(2, 3, 1) };
    return nb_concat(2, xs, 0);
}

static const void *cx_concat_null(void)
{
    nb_tensor *xs[2] = { F64(2, 3), NULL };
    return nb_concat(2, xs, 0);
}

static const void *cx_pad_negative(void)
{
    int64_t before[2] = { 0, -1 }, after[2] = { 0, 0 };
    return nb_pad(F64(2, 3), 2, before, after, 0);
}

static nb_tensor *returns_null(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return *(bool *)ctx ? nb_div(in[0], F64(3)) : NULL;
}

static int cx_gradcheck_null(bool with_error)
{
    nb_tensor *x = F64(2);
    nb_set_requires_grad(x, true);
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    nb_gradcheck_result r;
    return nb_gradcheck(returns_null, &with_error, 1, &x, &o, &r);
}

static const void *cx_pad_null_widths(void) { return nb_pad(F64(2, 3), 2, NULL, NULL, 0); }

static const void *cx_l2_mixed(void)
{
    nb_tensor *ws[2] = { F32(2, 3), F64(3) };
    return nb_l2_reg(2, ws, 1.0);
}

static const void *cx_l2_null(void)
{
    nb_tensor *ws[2] = { F64(2, 3), NULL };
    return nb_l2_reg(2, ws, 1.0);
}

static const void *cx_batchnorm_fused_shape(void) { return nb_batchnorm_fused(F64(4, 3), F64(2), F64(3), 1e-5, NULL, NULL); }

static nb_norm_state norm_state(int64_t d)
{
    nb_norm_state st = { nb_persist(F64(d)), nb_persist(F64(d)), 0.9, 1e-5 };
    return st;
}

static const void *cx_batchnorm_gamma(void)
{
    nb_norm_state st = norm_state(3);
    return nb_batchnorm(F64(4, 3), F64(2), F64(3), &st, true);
}

static const void *cx_batchnorm_rank(void)
{
    nb_norm_state st = norm_state(3);
    return nb_batchnorm(F64(4, 3, 2), F64(3), F64(3), &st, true);
}

static const void *cx_batchnorm_running(void)
{
    nb_norm_state st = norm_state(2);
    return nb_batchnorm(F64(4, 3), F64(3), F64(3), &st, false);
}

static const void *cx_batchnorm_null_state(void) { return nb_batchnorm(F64(4, 3), F64(3), F64(3), NULL, false); }

static const void *cx_spatial_bn_rank(void)
{
    nb_norm_state st = norm_state(3);
    return nb_spatial_batchnorm(F64(4, 3), F64(3), F64(3), &st, true);
}

static const void *cx_spatial_bn_channels(void)
{
    nb_norm_state st = norm_state(3);
    return nb_spatial_batchnorm(F64(2, 3, 4, 4), F64(2), F64(2), &st, true);
}

static const void *cx_conv_bn_relu_null(void)
{
    nb_norm_state st = norm_state(2);
    return nb_conv_bn_relu(F64(1, 3, 4, 4), NULL, F64(2), F64(2), F64(2), &st, true, 1, 1);
}

static nb_tensor *param64(int64_t n)
{
    return nb_param(F64(n));
}

static nb_optim_config optim_cfg(nb_optim_kind kind, double lr)
{
    nb_optim_config c = nb_optim_defaults(kind);
    c.lr = lr;
    return c;
}

static const void *optimizer_with(nb_optim_config c)
{
    nb_tensor *p = param64(3);
    return nb_optimizer_new(c, 1, &p, NULL);
}

static const void *cx_optim_lr_zero(void) { return optimizer_with(optim_cfg(NB_SGD, 0)); }
static const void *cx_optim_lr_negative(void) { return optimizer_with(optim_cfg(NB_ADAM, -1e-3)); }
static const void *cx_optim_lr_nan(void) { return optimizer_with(optim_cfg(NB_SGD, NAN)); }
static const void *cx_optim_lr_inf(void) { return optimizer_with(optim_cfg(NB_RMSPROP, INFINITY)); }

static const void *cx_optim_momentum(void)
{
    nb_optim_config c = nb_optim_defaults(NB_SGD_MOMENTUM);
    c.momentum = 1.0;
    return optimizer_with(c);
}

static const void *cx_optim_nesterov_momentum_nan(void)
{
    nb_optim_config c = nb_optim_defaults(NB_NESTEROV);
    c.momentum = NAN;
    return optimizer_with(c);
}

static const void *cx_optim_decay_rate(void)
{
    nb_optim_config c = nb_optim_defaults(NB_RMSPROP);
    c.decay_rate = -0.1;
    return optimizer_with(c);
}

static const void *cx_optim_beta1(void)
{
    nb_optim_config c = nb_optim_defaults(NB_ADAM);
    c.beta1 = 1.0;
    return optimizer_with(c);
}

static const void *cx_optim_beta2(void)
{
    nb_optim_config c = nb_optim_defaults(NB_ADAMW);
    c.beta2 = NAN;
    return optimizer_with(c);
}

static const void *cx_optim_eps(void)
{
    nb_optim_config c = nb_optim_defaults(NB_ADAM);
    c.eps = 0;
    return optimizer_with(c);
}

static const void *cx_optim_wd_sgd(void)
{
    nb_optim_config c = nb_optim_defaults(NB_SGD);
    c.weight_decay = NAN;
    return optimizer_with(c);
}

static const void *cx_optim_wd_negative(void)
{
    nb_optim_config c = nb_optim_defaults(NB_ADAMW);
    c.weight_decay = -1;
    return optimizer_with(c);
}

static const void *cx_optim_kind(void) { return optimizer_with(optim_cfg((nb_optim_kind)42, 1e-2)); }

static const void *cx_optim_n_zero(void)
{
    nb_tensor *p = param64(3);
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 0, &p, NULL);
}

static const void *cx_optim_null_param(void)
{
    nb_tensor *ps[2] = { param64(3), NULL };
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 2, ps, NULL);
}

static const void *cx_optim_scoped_param(void)
{
    nb_tensor *p = F64(3);
    nb_set_requires_grad(p, true);
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
}

static const void *cx_optim_no_grad_param(void)
{
    nb_tensor *p = nb_persist(F64(3));
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
}

static const void *cx_optim_i64_param(void)
{
    nb_tensor *p = nb_persist(I64(3));
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
}

static const void *cx_optim_duplicate_param(void)
{
    nb_tensor *p = param64(3);
    nb_tensor *ps[2] = { p, p };
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 2, ps, NULL);
}

static const void *cx_optim_duplicate_names(void)
{
    nb_tensor *ps[2] = { param64(3), param64(2) };
    const char *names[2] = { "w", "w" };
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 2, ps, names);
}

static const void *cx_optim_empty_name(void)
{
    nb_tensor *p = param64(3);
    const char *names[1] = { "" };
    return nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, names);
}

static int cx_optim_step_bad_grad(void)
{
    nb_tensor *p = param64(3);
    nb_optimizer *o = nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
    p->grad = nb_persist(F64(4));
    return nb_optimizer_step(o);
}

static int cx_optim_kind_parse(void)
{
    nb_optim_kind k;
    return nb_optim_kind_parse("Adam", &k);
}

static int cx_optim_kind_parse_null(void)
{
    nb_optim_kind k;
    return nb_optim_kind_parse(NULL, &k);
}

static int lr_nan(double v) { return isnan(v) ? -1 : 0; }
static int cx_lr_step_size(void) { return lr_nan(nb_lr_step(0.1, 3, 0, 0.5)); }
static int cx_lr_step_epoch(void) { return lr_nan(nb_lr_step(0.1, -1, 1, 0.5)); }
static int cx_lr_cosine_total(void) { return lr_nan(nb_lr_cosine(0.1, 3, 0, 0)); }
static int cx_lr_cosine_step(void) { return lr_nan(nb_lr_cosine(0.1, -2, 10, 0)); }
static int cx_optim_defaults_kind(void) { return lr_nan(nb_optim_defaults((nb_optim_kind)42).lr); }
static int cx_clip_null(void) { return lr_nan(nb_optimizer_clip_grad_norm(NULL, 1.0)); }

static int cx_clip_max_norm(void)
{
    nb_tensor *p = param64(3);
    nb_optimizer *o = nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
    return lr_nan(nb_optimizer_clip_grad_norm(o, 0));
}

static int cx_set_lr_negative(void)
{
    nb_tensor *p = param64(3);
    nb_optimizer *o = nb_optimizer_new(nb_optim_defaults(NB_SGD), 1, &p, NULL);
    nb_optimizer_set_lr(o, -1);
    return nb_optimizer_lr(o) == 1e-2 && nb_last_error()[0] ? -1 : 0;
}

/* modules */
static nb_init init(void) { return NB_INIT_NORMAL_SCALE(rng(), 1e-2); }

static const void *cx_sequential_null_child(void)
{
    nb_module *ch[2] = { nb_module_relu(), nb_module_linear(0, 3, NB_F64, init()) };
    return nb_module_sequential(2, ch);
}

static int cx_sequential_append_null(void)
{
    nb_module *seq = nb_module_sequential(0, NULL);
    return nb_module_sequential_append(seq, "fc1", nb_module_linear(3, -2, NB_F64, init()));
}

static int cx_sequential_append_duplicate(void)
{
    nb_module *seq = nb_module_sequential(0, NULL);
    nb_module_sequential_append(seq, "fc1", nb_module_relu());
    return nb_module_sequential_append(seq, "fc1", nb_module_relu());
}

static const void *cx_module_find_absent(void)
{
    nb_module *m = nb_module_linear(3, 2, NB_F64, init());
    return nb_module_find(m, "weights");
}

static const void *cx_module_linear_forward(void)
{
    nb_module *m = nb_module_linear(3, 2, NB_F64, init());
    return nb_module_forward(m, F64(4, 5));
}

static const void *cx_module_linear_forward_dtype(void)
{
    nb_module *m = nb_module_linear(3, 2, NB_F64, init());
    return nb_module_forward(m, F32(4, 3));
}

static const void *cx_module_conv_forward(void)
{
    nb_module *m = nb_module_conv2d(3, 4, 3, 1, 1, NB_F64, init());
    return nb_module_forward(m, F64(2, 2, 5, 5));
}

static nb_tensor *identity_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return x;
}

static int cx_module_add_tensor_null(void)
{
    nb_module *m = nb_module_new("Mine", identity_forward, 0);
    return nb_module_add_tensor(m, "w", NULL, false);
}

static int cx_module_add_tensor_duplicate(void)
{
    nb_module *m = nb_module_new("Mine", identity_forward, 0);
    nb_module_add_tensor(m, "w", F64(2), false);
    return nb_module_add_tensor(m, "w", F64(2), false);
}

static int cx_module_add_tensor_dotted(void)
{
    nb_module *m = nb_module_new("Mine", identity_forward, 0);
    return nb_module_add_tensor(m, "a.b", F64(2), false);
}

static int cx_module_add_child_self(void)
{
    nb_module *m = nb_module_new("Mine", identity_forward, 0);
    return nb_module_add_child(m, "a.b", nb_module_relu());
}

static int cx_backward_chain(void)
{
    /* an int-returning function given the NULL of a failed expression keeps that failure's message */
    return nb_backward(nb_sum(nb_add(F64(2, 3), F64(4))));
}

/* models */
static const void *cx_fc_hidden_null(void)
{
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 2;
    return nb_fully_connected_net(&c);
}

static const void *cx_fc_keep_prob(void)
{
    int64_t h[1] = { 10 };
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 1;
    c.hidden_dims = h;
    c.keep_prob = 0;
    return nb_fully_connected_net(&c);
}

static const void *cx_fc_hidden_zero(void)
{
    int64_t h[2] = { 10, 0 };
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 2;
    c.hidden_dims = h;
    return nb_fully_connected_net(&c);
}

static const void *cx_fc_reg(void)
{
    nb_fc_config c = nb_fc_defaults();
    c.reg = -1;
    return nb_fully_connected_net(&c);
}

static const void *cx_fc_dtype(void)
{
    nb_fc_config c = nb_fc_defaults();
    c.dtype = NB_I64;
    return nb_fully_connected_net(&c);
}

static const void *cx_convnet_even_filter(void)
{
    nb_convnet_config c = nb_convnet_defaults();
    c.filter_size = 4;
    return nb_three_layer_convnet(&c, rng());
}

static const void *cx_convnet_classes(void)
{
    nb_convnet_config c = nb_convnet_defaults();
    c.num_classes = 0;
    return nb_three_layer_convnet(&c, rng());
}

static const void *cx_resnet_blocks(void)
{
    nb_resnet_config c = nb_resnet_defaults();
    c.blocks_per_stage = 0;
    return nb_resnet(&c, rng());
}

static const void *cx_resnet_width(void)
{
    nb_resnet_config c = nb_resnet_defaults();
    c.widths[1] = 0;
    return nb_resnet(&c, rng());
}

/* one model per process, kept in a static so it stays reachable (no leak to report) */
static nb_model *small_model(void)
{
    static nb_model *m;
    if (!m) m = nb_two_layer_net(4, 5, 3, 1e-2, 0, NB_F64, rng());
    return m;
}

static const void *cx_model_scores_shape(void) { return nb_model_scores(small_model(), F64(2, 5)); }
static const void *cx_model_loss_labels(void)
{
    double y[2] = { 0, 3 };
    return nb_model_loss(small_model(), F64(2, 4), labels(2, y));
}
static const void *cx_model_loss_float_labels(void) { return nb_model_loss(small_model(), F64(2, 4), F64(2)); }
static const void *cx_model_loss_count(void) { return nb_model_loss(small_model(), F64(2, 4), I64(3)); }

static int cx_model_accuracy_batch(void)
{
    double acc;
    return nb_model_accuracy(small_model(), F64(2, 4), I64(2), 0, &acc);
}

static int cx_model_accuracy_rows(void)
{
    double acc;
    return nb_model_accuracy(small_model(), F64(2, 4), I64(3), 10, &acc);
}

static const void *cx_model_new_reg(void) { return nb_model_new(nb_module_relu(), -1, "m"); }
static const void *cx_model_new_null(void) { return nb_model_new(nb_module_linear(-1, 3, NB_F64, init()), 0, "m"); }

/* data */
static int cx_mnist_missing(void)
{
    nb_dataset ds;
    return nb_dataset_load_mnist(&ds, "/nonexistent/mnist", NB_F32, 0);
}

static int cx_cifar_missing(void)
{
    nb_dataset ds;
    return nb_dataset_load_cifar10(&ds, "/nonexistent/cifar", NB_F32, 0);
}

static int cx_cifar_records_missing(void)
{
    nb_dataset ds;
    return nb_dataset_load_cifar10_records(&ds, "/nonexistent/cifar", NB_F32, 0, 10);
}

static int cx_mnist_num_val(void)
{
    nb_dataset ds;
    return nb_dataset_load_mnist(&ds, "/nonexistent/mnist", NB_F32, -1);
}

static int cx_mnist_dtype(void)
{
    nb_dataset ds;
    return nb_dataset_load_mnist(&ds, "/nonexistent/mnist", NB_I64, 0);
}

static int cx_mnist_null_dir(void)
{
    nb_dataset ds;
    return nb_dataset_load_mnist(&ds, NULL, NB_F32, 0);
}

static int cx_cifar_read_missing(void)
{
    nb_tensor *x, *y;
    return nb_cifar_read("/nonexistent/data_batch_1.bin", NB_F32, 0, &x, &y);
}

static int cx_standardize_empty(void)
{
    nb_dataset ds = { 0 };
    return nb_dataset_standardize(&ds);
}

static int cx_subtract_mean_empty(void)
{
    nb_dataset ds = { 0 };
    return nb_dataset_subtract_mean_image(&ds);
}

static int cx_standardize_zero_rows(void)
{
    nb_dataset ds = { 0 };
    ds.train_x = F32(0, 3, 2, 2);
    return nb_dataset_standardize(&ds);
}

static const void *cx_batcher_empty(void) { return nb_batcher_new(F64(0, 3), NULL, 2, NB_BATCH_SHUFFLE, rng()); }
static const void *cx_batcher_rows(void) { return nb_batcher_new(F64(4, 3), I64(5), 2, NB_BATCH_SHUFFLE, rng()); }
static const void *cx_batcher_batch(void) { return nb_batcher_new(F64(4, 3), I64(4), 0, NB_BATCH_SAMPLE, rng()); }
static const void *cx_batcher_mode(void) { return nb_batcher_new(F64(4, 3), I64(4), 2, (nb_batch_mode)9, rng()); }
static const void *cx_batcher_null_rng(void) { return nb_batcher_new(F64(4, 3), I64(4), 2, NB_BATCH_SHUFFLE, NULL); }

static int cx_batcher_augment_negative(void)
{
    nb_batcher *b = nb_batcher_new(F64(4, 1, 3, 3), I64(4), 2, NB_BATCH_SHUFFLE, rng());
    return nb_batcher_set_augment(b, -1, false);
}

static int cx_batcher_augment_rank(void)
{
    nb_batcher *b = nb_batcher_new(F64(4), I64(4), 2, NB_BATCH_SHUFFLE, rng());
    return nb_batcher_set_augment(b, 1, true);
}

/* safetensors */
static const void *cx_st_get_absent(void)
{
    nb_safetensors st = { 0 };
    return nb_safetensors_get(&st, "w");
}

static int cx_st_save_null_tensor(void)
{
    const char *names[1] = { "w" };
    nb_tensor *ts[1] = { NULL };
    return nb_safetensors_save("/tmp/nabla_bad_input.safetensors", 1, names, ts, 0, NULL, NULL);
}

static int cx_st_save_duplicate(void)
{
    const char *names[2] = { "w", "w" };
    nb_tensor *ts[2] = { F64(2), F64(3) };
    return nb_safetensors_save("/tmp/nabla_bad_input.safetensors", 2, names, ts, 0, NULL, NULL);
}

static int cx_st_save_metadata_name(void)
{
    const char *names[1] = { "__metadata__" };
    nb_tensor *ts[1] = { F64(2) };
    return nb_safetensors_save("/tmp/nabla_bad_input.safetensors", 1, names, ts, 0, NULL, NULL);
}

static int cx_st_save_missing_dir(void)
{
    const char *names[1] = { "w" };
    nb_tensor *ts[1] = { F64(2) };
    return nb_safetensors_save("/nonexistent/dir/x.safetensors", 1, names, ts, 0, NULL, NULL);
}

static int cx_st_writer_duplicate(void)
{
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    nb_safetensors_writer_add(w, "w", F64(2));
    int rc = nb_safetensors_writer_add(w, "w", F64(2));
    nb_safetensors_writer_free(w);
    return rc;
}

static int cx_st_writer_null_tensor(void)
{
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    int rc = nb_safetensors_writer_add(w, "w", NULL);
    nb_safetensors_writer_free(w);
    return rc;
}

/* solver */
static const void *solver_with(nb_solver_config c)
{
    static double y[4] = { 0, 1, 2, 0 };
    static nb_tensor *x, *yt;   /* per process, reachable */
    if (!x) x = nb_persist(F64(4, 4));
    if (!yt) yt = nb_persist(labels(4, y));
    return nb_solver_new(small_model(), x, yt, x, yt, &c);
}

static const void *cx_solver_batch(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.batch_size = 0;
    return solver_with(c);
}

static const void *cx_solver_epochs(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.num_epochs = -1;
    return solver_with(c);
}

static const void *cx_solver_lr_decay(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.lr_decay = NAN;
    return solver_with(c);
}

static const void *cx_solver_lr_decay_inf(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.lr_decay = INFINITY;
    return solver_with(c);
}

static const void *cx_solver_clip_inf(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.clip_norm = INFINITY;
    return solver_with(c);
}

static const void *cx_solver_lr(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.optim.lr = 0;
    return solver_with(c);
}

static const void *cx_solver_mode(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.batch_mode = NB_BATCH_SEQUENTIAL;
    return solver_with(c);
}

static const void *cx_solver_clip(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.clip_norm = -1;
    return solver_with(c);
}

static const void *cx_solver_crop(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.crop_pad = -2;
    return solver_with(c);
}

static const void *cx_solver_empty_train(void)
{
    nb_solver_config c = nb_solver_defaults();
    nb_tensor *x = nb_persist(F64(0, 4)), *y = nb_persist(I64(0));
    return nb_solver_new(small_model(), x, y, x, y, &c);
}

static const void *cx_solver_float_labels(void)
{
    nb_solver_config c = nb_solver_defaults();
    nb_tensor *x = nb_persist(F64(4, 4)), *y = nb_persist(F64(4));
    return nb_solver_new(small_model(), x, y, x, y, &c);
}

static const void *cx_solver_null_model(void)
{
    nb_solver_config c = nb_solver_defaults();
    nb_tensor *x = nb_persist(F64(4, 4)), *y = nb_persist(I64(4));
    return nb_solver_new(NULL, x, y, x, y, &c);
}

static int cx_solver_resume_missing(void)
{
    nb_solver_config c = nb_solver_defaults();
    nb_solver *s = (nb_solver *)solver_with(c);
    int rc = nb_solver_resume(s, "/nonexistent/ckpt.safetensors");
    nb_solver_free(s);
    return rc;
}

/* autograd */
static int cx_backward_not_scalar(void)
{
    nb_tensor *x = nb_param(F64(2, 3));
    return nb_backward(nb_mul_scalar(x, 2));
}

static int cx_backward_with_shape(void)
{
    nb_tensor *x = nb_param(F64(2, 3));
    return nb_backward_with(nb_mul_scalar(x, 2), F64(3, 2));
}

static int cx_set_requires_grad_i64(void) { return nb_set_requires_grad(I64(3), true); }

static int cx_set_requires_grad_nonleaf(void)
{
    nb_tensor *x = nb_param(F64(3));
    return nb_set_requires_grad(nb_exp(x), false);
}

static int cx_item_many(void) { return lr_nan(nb_item(F64(2))); }
static int cx_set_out_of_range(void) { return nb_set(F64(2, 3), 6, 1.0); }
static int cx_copy_into_shape(void) { return nb_copy_into(F64(2, 3), F64(3, 2)); }
static int cx_copy_into_broadcast_view(void) { return nb_copy_into(nb_expand(F64(1, 3), NB_SHAPE(4, 3)), F64(4, 3)); }

/* ---- the table ---- */
typedef struct {
    const char *name;
    const void *(*call_ptr)(void); /* fails with NULL */
    int (*call_int)(void);         /* fails with -1 */
    const char *message;
} bad_case;

#define P(name, msg, ...) static const void *case_##name(void) { return (__VA_ARGS__); }
#define I(name, msg, ...) static int case_##name(void) { return (__VA_ARGS__); }
BAD_CASES(P, I)
#undef P
#undef I
#define P(name, msg, ...) { #name, case_##name, NULL, msg },
#define I(name, msg, ...) { #name, NULL, case_##name, msg },
static const bad_case cases[] = {
BAD_CASES(P, I)
};
#undef P
#undef I

enum { N_CASES = (int)(sizeof cases / sizeof cases[0]) };

START_TEST(test_bad_input)
{
    const bad_case *c = &cases[_i];
    nb_clear_error();
    bool failed;
    if (c->call_ptr) failed = c->call_ptr() == NULL;
    else failed = c->call_int() == -1;
    if (getenv("NBT_DISCOVER")) fprintf(stderr, "CASE %s|%d|%s\n", c->name, failed, nb_last_error());
    ck_assert_msg(failed, "%s: expected failure: %s", c->name, c->message);
    ck_assert_msg(strcmp(nb_last_error(), c->message) == 0, "%s: message\n  got:      %s\n  expected: %s", c->name,
                  nb_last_error(), c->message);
}
END_TEST

static Suite *bad_input_suite(void)
{
    Suite *s = suite_create("bad_input");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, test_bad_input, 0, N_CASES);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(bad_input_suite)
