/* nabla/model.h — classifiers with cs231n's contract: scores = net(x), loss = softmax cross-entropy
 * + 0.5·reg·Σ W², gradients by backward, accuracy in batches.
 *
 * A model wraps a module tree (module.h) that maps x:[N,..] to class scores [N,C], plus the L2
 * regularisation strength and a name. The regularised tensors are the "weight" tensors of the Linear
 * and Conv2d modules of the tree, found by walking it (not biases, not the weight/bias — gamma/beta —
 * of the normalisation modules). Ready-made nets follow cs231n assignment 2: TwoLayerNet,
 * FullyConnectedNet (with batch/layer norm and dropout), ThreeLayerConvNet, and a small ResNet.
 *
 * Modes: nb_model_scores puts the net in eval mode (batchnorm uses running stats, dropout is the
 * identity) and records no graph; nb_model_loss / nb_model_loss_expr put it in train mode. The mode
 * stays set afterwards. Every tensor these functions return lives in the current scope.
 */
#ifndef NABLA_MODEL_H
#define NABLA_MODEL_H

#include "module.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NB_NORM_NONE, NB_NORM_BATCH, NB_NORM_LAYER } nb_norm_kind;

typedef struct nb_model_private nb_model_private;
typedef struct nb_model {
    nb_module *net;            /* owned: x:[N,..] -> scores [N,C] */
    double reg;                /* L2 strength, >= 0; may be changed between calls */
    const char *name;          /* "TwoLayerNet", ... (a copy, owned; at most 63 characters kept) */
    nb_model_private *priv;    /* owned internals (the dropout generator) */
} nb_model;

/* ---- any model ---- */
/* wraps net (ownership taken; freed on failure, a NULL net keeps its constructor's message); name
 * NULL gives "Model" */
nb_model *nb_model_new(nb_module *net, double reg, const char *name);
nb_tensor *nb_model_scores(nb_model *m, nb_tensor *x);              /* eval mode, grad mode off inside -> [N,C] */
/* train mode: zeroes the grads, computes nb_model_loss_expr with grad mode on and runs backward;
 * returns the loss (0-d), the gradients are in the parameters' ->grad */
nb_tensor *nb_model_loss(nb_model *m, nb_tensor *x, nb_tensor *y);
/* the loss expression itself: train mode, softmax_cross_entropy(net(x), y) + 0.5·reg·Σ W² (the reg
 * term is left out when reg is 0); records the graph when grad mode is on, no backward, grads
 * untouched — what nb_model_loss differentiates, and what a gradient check evaluates */
nb_tensor *nb_model_loss_expr(nb_model *m, nb_tensor *x, nb_tensor *y);
/* fraction of rows of x whose highest score (first on ties) is the label y (i64 [N]); scores are
 * computed in eval mode, batch_size rows at a time, in a scope of the function's own that is reset
 * after each batch. 0, or -1 with a message. */
int nb_model_accuracy(nb_model *m, const nb_tensor *x, const nb_tensor *y, int64_t batch_size, double *acc);
/* the regularised weights in walk order: fills out[0..min(count, max)) and returns count (-1 on error) */
int nb_model_reg_weights(nb_model *m, int max, nb_tensor **out);
/* reseeds the model's own generator (dropout masks): 1 when it has one, 0 when it has none (nothing to
 * do), -1 for a NULL model */
int nb_model_seed(nb_model *m, uint64_t seed);
void nb_model_free(nb_model *m);                                    /* the net too; NULL is a no-op */

/* ---- cs231n's nets (weights ~ N(0, weight_scale²) unless said otherwise, biases 0) ---- */
/* affine - relu - affine; children "fc1", "relu1", "fc2"; cs231n defaults 3*32*32, 100, 10, 1e-3, 0 */
nb_model *nb_two_layer_net(int64_t input_dim, int64_t hidden_dim, int64_t num_classes, double weight_scale, double reg,
                           nb_dtype dt, nb_rng *rng);

typedef struct {
    int n_hidden;                  /* L - 1 >= 0 hidden layers */
    const int64_t *hidden_dims;    /* [n_hidden], borrowed during the call */
    int64_t input_dim, num_classes;
    double keep_prob;              /* dropout keep probability in (0, 1]; 1 = no dropout */
    nb_norm_kind norm;
    double reg, weight_scale;
    nb_dtype dtype;
    uint64_t seed;                 /* the model's generator: weights first, then dropout masks */
    bool fused_bn;                 /* batchnorm through the one-kernel nb_batchnorm_fused */
} nb_fc_config;
nb_fc_config nb_fc_defaults(void); /* input 3*32*32, classes 10, no hidden layer (set n_hidden, hidden_dims),
                                    * keep_prob 1, no norm, reg 0, weight_scale 1e-2, f32, seed 0, composed bn */
/* {affine - [batch/layer norm] - relu - [dropout]} x (L-1) - affine; children fc1, bn1 | ln1, relu1,
 * drop1, ..., fcL. The model owns a generator seeded with cfg->seed (see nb_model_seed). */
nb_model *nb_fully_connected_net(const nb_fc_config *cfg);

typedef struct {
    int64_t in_c, in_h, in_w, num_filters;
    int filter_size;               /* odd: padding (k-1)/2 keeps H and W */
    int64_t hidden_dim, num_classes;
    double weight_scale, reg;
    nb_dtype dtype;
    bool fused_conv;               /* convolution through nb_conv2d_fused (see nb_module_set_fused_conv) */
} nb_convnet_config;
nb_convnet_config nb_convnet_defaults(void); /* (3,32,32), 32 filters of 7, hidden 100, classes 10, weight_scale 1e-3, reg 0, f32, fused conv */
/* conv (stride 1, pad (k-1)/2) - relu - 2x2 max pool (stride 2) - affine - relu - affine; children
 * "conv1", "relu1", "pool1", "fc2", "relu2", "fc3" (numbered as cs231n's W1, W2, W3) */
nb_model *nb_three_layer_convnet(const nb_convnet_config *cfg, nb_rng *rng);

typedef struct {
    int64_t in_c, in_h, in_w, num_classes;
    int64_t widths[3];             /* channels of the 3 stages */
    int blocks_per_stage;          /* >= 1 */
    bool fused_bn;
    nb_dtype dtype;
    double reg;
    bool fused_conv;               /* convolution through nb_conv2d_fused (see nb_module_set_fused_conv) */
} nb_resnet_config;
nb_resnet_config nb_resnet_defaults(void); /* 3x32x32 (1x28x28 works too), 10 classes, widths 16/32/64, 2 blocks per stage, fused bn, f32, reg 0, fused conv */
/* conv3x3 stem "conv1" - "bn1" - "relu1", stages "stage1".."stage3" (Sequentials of residual blocks
 * "block1".., the first block of stages 2 and 3 with stride 2), global avg pool "pool", linear "fc";
 * Kaiming (He) init for every conv and linear weight */
nb_model *nb_resnet(const nb_resnet_config *cfg, nb_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
