/* nabla/ops.h — primitive differentiable ops.
 *
 * Every op returns a new tensor in the current scope (views share their input's data) and, when an
 * input requires a gradient and grad mode is on, records a graph node with its backward rule.
 * Inputs of one op must share a dtype (f32 or f64; i64 only where said). Binary elementwise ops
 * broadcast as NumPy does: shapes align from the right and axes of size 1 stretch.
 * Backward rules are written with these same ops, so gradients of gradients exist, except where an
 * op says "once-differentiable".
 * Shape rules use: x:[N,D] means x has two axes N and D; "b" = broadcast shape of the inputs.
 * Memory layout: shapes are logical; a result may be laid out in another order of its axes. Elementwise
 * ops keep the layout of an input of the output's shape when it is dense (no gaps), and
 * nb_conv2d_fused returns channels-last images ([N,C,H,W] whose memory is [N,H,W,C]), which
 * nb_batchnorm_fused, nb_max_pool2d and the next nb_conv2d_fused read without transposing. Read
 * elements through the strides (nb_get, nb_loop-based ops) or call nb_contiguous for row-major data.
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, binary (NumPy broadcasting) ---- */
nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);      /* a:A b:B -> b(A,B) */
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);      /* a:A b:B -> b(A,B) */
nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b);      /* a:A b:B -> b(A,B) */
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);      /* a:A b:B -> b(A,B) */
nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b);  /* a:A b:B -> b(A,B); ties send the gradient to a */
nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b);  /* a:A b:B -> b(A,B); ties send the gradient to a */
nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b); /* cond≠0 ? a : b, all broadcast; no grad to cond */

/* ---- elementwise with a scalar ---- */
nb_tensor *nb_add_scalar(nb_tensor *a, double s);   /* a + s */
nb_tensor *nb_sub_scalar(nb_tensor *a, double s);   /* a - s */
nb_tensor *nb_mul_scalar(nb_tensor *a, double s);   /* a * s */
nb_tensor *nb_div_scalar(nb_tensor *a, double s);   /* a / s */
nb_tensor *nb_pow_scalar(nb_tensor *a, double p);   /* a ** p */

/* ---- elementwise, unary: x:A -> A ---- */
nb_tensor *nb_neg(nb_tensor *x);
nb_tensor *nb_exp(nb_tensor *x);
nb_tensor *nb_log(nb_tensor *x);
nb_tensor *nb_sqrt(nb_tensor *x);
nb_tensor *nb_rsqrt(nb_tensor *x);                  /* 1/sqrt(x) */
nb_tensor *nb_square(nb_tensor *x);
nb_tensor *nb_abs(nb_tensor *x);                    /* gradient sign(x), 0 at 0 */
nb_tensor *nb_tanh(nb_tensor *x);
nb_tensor *nb_sigmoid(nb_tensor *x);
nb_tensor *nb_relu(nb_tensor *x);                   /* gradient 0 at 0 */
/* GELU, tanh form, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in one kernel, its gradient in one
 * kernel too; differentiable to any order (the gradient's own rule is composed). The same values as
 * the composed nb_gelu (nn.h) to rounding (float rows compute the identity x·σ(2u), which keeps the
 * far negative tail that 1 + tanh u loses); the GPT's MLP uses this one. */
nb_tensor *nb_gelu_fused(nb_tensor *x);

/* ---- not differentiable (results never require grad): x:A -> A, a:A b:B -> b(A,B) ---- */
nb_tensor *nb_sign(nb_tensor *x);                   /* -1, 0, 1 */
nb_tensor *nb_greater(nb_tensor *a, nb_tensor *b);  /* 1 where a > b else 0, in the inputs' dtype */
nb_tensor *nb_greater_equal(nb_tensor *a, nb_tensor *b);
nb_tensor *nb_equal(nb_tensor *a, nb_tensor *b);

/* ---- reductions; NB_AXES(...) picks axes, keepdim keeps them with size 1 ---- */
nb_tensor *nb_sum(nb_tensor *x);                    /* x:A -> [] */
nb_tensor *nb_mean(nb_tensor *x);                   /* x:A -> [] */
nb_tensor *nb_max(nb_tensor *x);                    /* x:A -> []; ties share the gradient */
nb_tensor *nb_sum_axes(nb_tensor *x, nb_axes axes, bool keepdim);  /* x:[N,D] axes(1) -> [N] or [N,1] */
nb_tensor *nb_mean_axes(nb_tensor *x, nb_axes axes, bool keepdim); /* x:[N,D] axes(0) -> [D] or [1,D] */
nb_tensor *nb_max_axes(nb_tensor *x, nb_axes axes, bool keepdim);  /* x:[N,D] axes(1) -> [N] or [N,1] */
nb_tensor *nb_argmax(nb_tensor *x, int axis, bool keepdim);        /* x:[N,D] axis 1 -> i64 [N]; first max */
nb_tensor *nb_sum_to(nb_tensor *x, nb_shape shape); /* x:b(S,..) -> S: sums the axes broadcasting added */

/* ---- linear algebra (BLIS); transposed views are read through strides, not copied ---- */
nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);   /* a:[..,M,K] b:[..,K,N] -> [b(..),M,N]; 2-D or batched */
nb_tensor *nb_matmul_bias(nb_tensor *a, nb_tensor *b, nb_tensor *bias); /* a:[..,M,K] b:[..,K,N] bias:[N] -> [b(..),M,N] = a·b + bias: the bias is the GEMM's C (no second pass, no second tensor) */

/* ---- shape and views ---- */
nb_tensor *nb_reshape(nb_tensor *x, nb_shape shape);   /* same numel, one -1 allowed; a view when strides allow */
nb_tensor *nb_permute(nb_tensor *x, nb_axes order);    /* x:[A,B,C] order(2,0,1) -> [C,A,B]; view */
nb_tensor *nb_transpose(nb_tensor *x, int a0, int a1); /* swaps two axes; view */
nb_tensor *nb_expand(nb_tensor *x, nb_shape shape);    /* x:[1,D] -> [N,D]; view with stride 0 */
nb_tensor *nb_slice(nb_tensor *x, int axis, int64_t start, int64_t stop, int64_t step); /* x[start:stop:step] on one axis, Python bounds, step >= 1; view; any dtype */
nb_tensor *nb_contiguous(nb_tensor *x);                /* x itself when already row-major contiguous */
nb_tensor *nb_concat(int n, nb_tensor *const *xs, int axis); /* [A,k1,..] ++ [A,k2,..] -> [A,k1+k2,..]; any dtype */
nb_tensor *nb_pad(nb_tensor *x, int n, const int64_t *before, const int64_t *after, double value); /* the last n axes (n <= ndim; before/after hold n amounts): x:[..,A] -> [..,before+A+after] filled with value; any dtype */
nb_tensor *nb_cast(nb_tensor *x, nb_dtype dt);         /* f32 <-> f64 (differentiable); to i64 truncates; same dtype returns x */

/* ---- indexing by integer (i64) tensors ---- */
nb_tensor *nb_gather(nb_tensor *x, int axis, nb_tensor *index);  /* x:[N,C] idx:[N,1] axis 1 -> [N,1]: out[i][j] = x[i][idx[i][j]] */
nb_tensor *nb_scatter_add(nb_shape shape, int axis, nb_tensor *index, nb_tensor *src); /* adjoint of gather: zeros(shape), out[i][idx[i][j]] += src[i][j]; src has idx's shape */
nb_tensor *nb_index_select(nb_tensor *x, int axis, nb_tensor *index); /* x:[N,D] idx:[K] axis 0 -> [K,D] */
nb_tensor *nb_index_add(nb_shape shape, int axis, nb_tensor *index, nb_tensor *src);  /* adjoint of index_select */

/* ---- images (NCHW) ---- */
typedef struct { int kh, kw, stride_h, stride_w, pad_h, pad_w; } nb_window;
#define NB_WINDOW(k, stride, pad) ((nb_window){ (k), (k), (stride), (stride), (pad), (pad) })
/* output size along one axis: 1 + (H + 2*pad - k) / stride */
nb_tensor *nb_unfold(nb_tensor *x, nb_window w);       /* im2col  x:[N,C,H,W] -> [N, C*kh*kw, H'*W'] */
nb_tensor *nb_fold(nb_tensor *cols, int64_t h, int64_t w, nb_window win); /* col2im [N,C*kh*kw,H'*W'] -> [N,C,h,w], overlaps summed */
nb_tensor *nb_max_pool2d(nb_tensor *x, nb_window w);   /* x:[N,C,H,W] -> [N,C,H',W']; padding never wins; pad <= k/2 */
nb_tensor *nb_avg_pool2d(nb_tensor *x, nb_window w);   /* x:[N,C,H,W] -> [N,C,H',W']; padding counts as 0 */

/* ---- softmax ---- */
nb_tensor *nb_log_softmax(nb_tensor *x, int axis);     /* x:A -> A along axis; stable: x - max - log Σ exp(x - max) */
nb_tensor *nb_softmax(nb_tensor *x, int axis);         /* x:A -> A along axis; stable: exp(x - max) / Σ exp(x - max); backward y·(g - Σ g·y) */

/* ---- fused kernels (once-differentiable: their backward is a kernel, not engine ops) ---- */
/* x:[N,D] gamma:[D] beta:[D] -> [N,D]  or  x:[N,C,H,W] gamma:[C] beta:[C] -> [N,C,H,W]:
 * train-mode batch normalisation in one kernel, out = gamma·(x - mean)/sqrt(var + eps) + beta with
 * the batch mean and biased variance of each column (of each channel over N, H and W), accumulated
 * in double (at least one row or pixel; any strides). When mean/var are not NULL they receive the
 * statistics ([D] or [C], x's dtype, no graph) for updating running stats. Backward is the closed form
 * dx = γ·σ⁻¹/N·(N·dy − Σdy − x̂·Σ(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy; differentiating it a second time
 * is an error ("nb_batchnorm_fused_backward cannot be differentiated"). */
nb_tensor *nb_batchnorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean,
                              nb_tensor **var);
/* relu(nb_batchnorm_fused(...)): for a contiguous [N,D] x or channels-last images in the same kernel
 * (one pass less each way; backward masks dy by out > 0), for other layouts the two ops */
nb_tensor *nb_batchnorm_relu_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean,
                                   nb_tensor **var);
/* relu(nb_batchnorm_fused(x, ...) + skip), skip of x's shape: the residual block's ending. For
 * x as above and skip in x's layout in the same kernel (backward writes the skip's gradient
 * as it takes the masked dy), otherwise the three ops */
nb_tensor *nb_batchnorm_add_relu_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *skip, double eps,
                                       nb_tensor **mean, nb_tensor **var);
/* x:[..,D] gamma,beta:[D] -> [..,D]: the composed nb_layernorm (nn.h) in one kernel, the same values to
 * rounding; keeps only each row's mean and 1/σ. Backward is the closed form dx = σ⁻¹·(dx̂ − mean(dx̂) −
 * x̂·mean(dx̂·x̂)), dx̂ = g·γ, dγ = Σ g·x̂, dβ = Σ g; differentiating it a second time is an error
 * ("nb_layernorm_fused_backward cannot be differentiated"). The GPT's layernorms use this one. */
nb_tensor *nb_layernorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps);
/* q,k:[..,T,D] v:[..,T,E] -> [..,T,E]: the composed nb_attention (nn.h) in one op, the same values to
 * rounding: S = q·kᵀ by BLIS, each row scaled by 1/√D, causal positions left out and softmaxed in
 * place, out = P·v by BLIS; only P ([..,T,T]) is kept. The result is laid out in q's axis order (heads
 * [B,H,T,D] cut from [B,T,3C] give [B,H,T,E] stored as [B,T,H,E]: merging the heads is a view).
 * Backward: dv = Pᵀ·g, dS = P⊙(g·vᵀ − Σ_j P⊙g·vᵀ)/√D, dq = dS·k, dk = dSᵀ·q; differentiating it a
 * second time is an error ("nb_attention_fused_backward cannot be differentiated"). */
nb_tensor *nb_attention_fused(nb_tensor *q, nb_tensor *k, nb_tensor *v, bool causal);
/* qkv:[B,T,3C] -> [B,T,C]: nb_attention_fused over n_head heads of C/n_head, q, k and v the thirds of
 * qkv's last axis (GPT-2's c_attn layout), the heads' outputs side by side; its gradient is one
 * [B,T,3C] tensor. Once-differentiable ("nb_attention_heads_fused_backward cannot be differentiated"). */
nb_tensor *nb_attention_heads_fused(nb_tensor *qkv, int64_t n_head, bool causal);
/* x:[N,C,H,W] w:[F,C,kh,kw] b:[F] or NULL -> [N,F,H',W'], H' = 1 + (H + 2·pad - kh)/stride: the
 * convolution (cross-correlation, zero padding) of the composed nb_conv2d (nn.h) in one kernel that
 * never stores an im2col matrix: it works through chunks of images, zero-padded channels-last, with
 * register-tiled kernels that read each window in place (BLIS over blocks of im2col rows where those
 * do not apply: strided dx, and dw when the filters do not fill whole panels of 16 floats or 8 doubles). The result (and the gradient of x)
 * is channels-last: [N,F,H',W'] laid out [N,H',W',F]. Differentiating it a second time is an error
 * ("nb_conv2d_fused_backward cannot be differentiated"). */
nb_tensor *nb_conv2d_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad);
/* relu(nb_conv2d_fused(x, w, b, stride, pad)) in the same kernel: one pass less each way */
nb_tensor *nb_conv2d_relu_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad);
/* nb_max_pool2d(nb_conv2d_relu_fused(x, w, b, stride, pad), 2x2 window, stride 2) in the same kernel:
 * each chunk's rows are pooled while in cache and never stored -> [N,F,H'/2,W'/2] (NCHW) */
nb_tensor *nb_conv2d_relu_pool_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad);

#ifdef __cplusplus
}
#endif
#endif
