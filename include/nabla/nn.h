/* nabla/nn.h — functional layers composed from the primitive ops of ops.h.
 *
 * Nothing here has a hand-written backward rule: every layer is a composition of differentiable
 * primitives, so autodiff supplies its gradient (and its gradient's gradient). Conventions follow
 * cs231n: affine flattens x to [N,D]; conv is a cross-correlation with symmetric zero padding;
 * batchnorm keeps running stats with momentum 0.9 on the old value (running = m·running + (1-m)·batch)
 * and a biased batch variance; dropout's probability is the KEEP probability (inverted dropout).
 * As for ops, a NULL input gives NULL without overwriting the first error, and the tensors of one
 * call must share a dtype (f32 or f64).
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "ops.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- affine and convolution ---- */
nb_tensor *nb_affine(nb_tensor *x, nb_tensor *w, nb_tensor *b);       /* x:[N,d1..dk] w:[D,M] b:[M] -> [N,M], D = d1·..·dk */
nb_tensor *nb_affine_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b);  /* relu(affine(x, w, b)) -> [N,M] */
nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad); /* x:[N,C,H,W] w:[F,C,HH,WW] b:[F] -> [N,F,H',W'], H' = 1 + (H + 2·pad - HH)/stride; unfold + matmul + reshape + add */
nb_tensor *nb_conv_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad); /* relu(conv2d) -> [N,F,H',W'] */
nb_tensor *nb_conv_relu_pool(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, nb_window pool); /* max_pool2d(relu(conv2d), pool) */
nb_tensor *nb_global_avg_pool(nb_tensor *x);                          /* x:[N,C,H,W] -> [N,C], mean over H and W */

/* ---- normalisation ---- */
/* Batchnorm state: running stats are persistent tensors of the normalised feature count ([D] or [C]),
 * of x's dtype, starting at 0; cs231n defaults momentum 0.9, eps 1e-5. Updated in place, values only.
 * In training mode the state may be NULL: the batch's statistics alone, eps 1e-5, nothing kept. */
typedef struct {
    nb_tensor *running_mean, *running_var;
    double momentum, eps;
} nb_norm_state;
nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training); /* x:[N,D] gamma,beta:[D] -> [N,D]; train: batch mean and biased var, updates running stats; eval: running stats */
nb_tensor *nb_spatial_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training); /* x:[N,C,H,W] gamma,beta:[C] -> [N,C,H,W]; stats per channel over (N,H,W) */
nb_tensor *nb_layernorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps); /* x:[..,D] gamma,beta:[D] -> [..,D]; stats over the last axis, train = eval */
nb_tensor *nb_groupnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, int groups, double eps); /* x:[N,C,H,W] gamma,beta:[C] or [1,C,1,1] -> [N,C,H,W]; stats per sample over each group of C/groups channels and H,W */

/* ---- dropout ---- */
nb_tensor *nb_dropout(nb_tensor *x, double keep_prob, nb_rng *rng, bool training); /* x:A -> A; train: x·mask/keep_prob, mask = uniform < keep_prob drawn from rng (row-major); eval: x itself; keep_prob in (0,1] */

/* ---- composites ---- */
nb_tensor *nb_conv_bn_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st,
                           bool training, int stride, int pad); /* relu(spatial_batchnorm(conv2d(x))) -> [N,F,H',W'] */

/* ---- sequences (cs231n assignment 3; lib/nn/sequence.c, attention.c); x:[N,T,D] is N sequences of T
 * steps of D features; token ids are i64 ---- */
nb_tensor *nb_embedding(nb_tensor *w, nb_tensor *idx);                   /* w:[V,D] idx:i64 [..] -> [..,D]: the rows idx of w */
nb_tensor *nb_temporal_affine(nb_tensor *x, nb_tensor *w, nb_tensor *b); /* x:[..,D] w:[D,M] b:[M] -> [..,M]: one product over all steps */
nb_tensor *nb_rnn_step(nb_tensor *x, nb_tensor *h, nb_tensor *wx, nb_tensor *wh, nb_tensor *b); /* x:[N,D] h:[N,H] wx:[D,H] wh:[H,H] b:[H] -> [N,H] = tanh(x·wx + h·wh + b) */
nb_tensor *nb_rnn(nb_tensor *x, nb_tensor *h0, nb_tensor *wx, nb_tensor *wh, nb_tensor *b);      /* x:[N,T,D] h0:[N,H] -> [N,T,H]: every step's hidden state */
/* x:[N,D] h,c:[N,H] wx:[D,4H] wh:[H,4H] b:[4H] -> h_next, c_next [N,H]; a = x·wx + h·wh + b holds the
 * gates i, f, o, g in that order (cs231n): c_next = σ(f)·c + σ(i)·tanh(g), h_next = σ(o)·tanh(c_next). 0 or -1 */
int nb_lstm_step(nb_tensor *x, nb_tensor *h, nb_tensor *c, nb_tensor *wx, nb_tensor *wh, nb_tensor *b,
                 nb_tensor **h_next, nb_tensor **c_next);
nb_tensor *nb_lstm(nb_tensor *x, nb_tensor *h0, nb_tensor *wx, nb_tensor *wh, nb_tensor *b);     /* x:[N,T,D] h0:[N,H] -> [N,T,H]; the cell state starts at 0 */
nb_tensor *nb_causal_mask(nb_dtype dt, int64_t t);                       /* [T,T]: 1 where position i may see j (j <= i), else 0 */
/* q,k:[..,T,D] v:[..,T,E] -> [..,T,E] = softmax(q·kᵀ/√D)·v over the last two axes, batched over the others;
 * causal: position i attends to j <= i only (scores elsewhere set to -1e30: finite values and gradients) */
nb_tensor *nb_attention(nb_tensor *q, nb_tensor *k, nb_tensor *v, bool causal);
nb_tensor *nb_gelu(nb_tensor *x);                                        /* x:A -> A = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */

#ifdef __cplusplus
}
#endif
#endif
