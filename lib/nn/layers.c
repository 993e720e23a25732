/* Affine and convolution layers, composed from primitive ops so autodiff supplies every gradient:
 *   affine  x:[N,d1..dk] -> reshape [N,D] -> matmul_bias w:[D,M] b:[M] (the bias is the GEMM's C)
 *   conv2d  unfold x to [N, C·HH·WW, H'·W'], matmul by w viewed as [F, C·HH·WW] (broadcast over N),
 *           reshape to [N,F,H',W'] and add b viewed as [F,1,1]. */
#include "../internal.h"

#include <stdio.h>

/* x, w, b float tensors of one dtype with the given ranks; messages name op and tensor */
static bool check_operands(const char *op, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b)
{
    if (!nb_check_float(op, x) || !nb_check_same_dtype(op, x, w) || !nb_check_same_dtype(op, x, b)) return false;
    return true;
}

nb_tensor *nb_affine(nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    if (!x || !w || !b) return nb_null_input("nb_affine");
    const char *op = "nb_affine";
    if (!check_operands(op, x, w, b)) return NULL;
    if (x->ndim < 1) {
        nb_error("%s: x must have a batch axis [N,d1..dk], got %s", op, nb_shp(x));
        return NULL;
    }
    if (w->ndim != 2) {
        nb_error("%s: expected a 2-D [D,M] w, got %s", op, nb_shp(w));
        return NULL;
    }
    int64_t N = x->shape[0], D = nb_shape_numel(x->ndim - 1, x->shape + 1);
    if (w->shape[0] != D) {
        int64_t flat[2] = { N, D };
        nb_error("%s: w is %s but x flattens to %s", op, nb_shp(w), nb_shape_text(2, flat));
        return NULL;
    }
    if (b->ndim != 1 || b->shape[0] != w->shape[1]) {
        nb_error("%s: b is %s but w is %s (expected [%lld])", op, nb_shp(b), nb_shp(w), (long long)w->shape[1]);
        return NULL;
    }
    nb_tensor *x2 = x->ndim == 2 ? x : nb_reshape(x, NB_SHAPE(N, D));
    return nb_matmul_bias(x2, w, b);
}

nb_tensor *nb_affine_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_relu(nb_affine(x, w, b)); }

nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad)
{
    if (!x || !w || !b) return nb_null_input("nb_conv2d");
    if (!nb_conv_check("nb_conv2d", x, w, b, stride, pad)) return NULL;
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t F = w->shape[0], HH = w->shape[2], WW = w->shape[3];
    const int64_t OH = 1 + (H + 2 * (int64_t)pad - HH) / stride, OW = 1 + (W + 2 * (int64_t)pad - WW) / stride;
    nb_window win = { (int)HH, (int)WW, stride, stride, pad, pad };
    nb_tensor *cols = nb_unfold(x, win);                                    /* [N, C·HH·WW, OH·OW] */
    nb_tensor *wm = nb_reshape(w, NB_SHAPE(F, C * HH * WW));                /* [F, C·HH·WW] */
    nb_tensor *y = nb_reshape(nb_matmul(wm, cols), NB_SHAPE(N, F, OH, OW)); /* [N, F, OH·OW] */
    return nb_add(y, nb_reshape(b, NB_SHAPE(F, 1, 1)));
}

nb_tensor *nb_conv_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad)
{
    return nb_relu(nb_conv2d(x, w, b, stride, pad));
}

nb_tensor *nb_conv_relu_pool(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, nb_window pool)
{
    return nb_max_pool2d(nb_conv_relu(x, w, b, stride, pad), pool);
}

nb_tensor *nb_global_avg_pool(nb_tensor *x)
{
    if (!x) return nb_null_input("nb_global_avg_pool");
    if (!nb_check_float("nb_global_avg_pool", x)) return NULL;
    if (x->ndim != 4) {
        nb_error("nb_global_avg_pool: expected a 4-D [N,C,H,W] x, got %s", nb_shp(x));
        return NULL;
    }
    if (x->shape[2] < 1 || x->shape[3] < 1) {
        nb_error("nb_global_avg_pool: empty image %s", nb_shp(x));
        return NULL;
    }
    return nb_mean_axes(x, NB_AXES(2, 3), false);
}

nb_tensor *nb_conv_bn_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st,
                           bool training, int stride, int pad)
{
    return nb_relu(nb_spatial_batchnorm(nb_conv2d(x, w, b, stride, pad), gamma, beta, st, training));
}
