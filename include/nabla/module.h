/* nabla/module.h — the object level: modules that own their parameters, as nn.Module does.
 *
 * A module holds named tensors (parameters, which require grad, and buffers such as batchnorm's
 * running stats, which do not) and named child modules, and computes y = forward(x) with the
 * functional layers of nn.h. Every tensor is reachable under a dotted name ("conv1.weight",
 * "bn1.running_mean"), so optimizers, checkpoints and users can walk the whole set in a fixed order.
 * Modules own their tensors (persistent) and their children: nb_module_free releases the tree.
 * Weights follow cs231n's layout: Linear's weight is [in, out] (x·W), Conv2d's is [F, C, k, k].
 */
#ifndef NABLA_MODULE_H
#define NABLA_MODULE_H

#include "nn.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_module nb_module;
typedef nb_tensor *(*nb_forward_fn)(nb_module *m, nb_tensor *x);

#define NB_MODULE_MAX_TENSORS 8
#define NB_MODULE_NAME_MAX 64

struct nb_module {
    const char *kind;                                   /* "Linear", "Sequential", ... */
    nb_forward_fn forward;
    bool training;
    int n_tensors;                                      /* own parameters and buffers, in order */
    char tensor_names[NB_MODULE_MAX_TENSORS][NB_MODULE_NAME_MAX];
    nb_tensor *tensors[NB_MODULE_MAX_TENSORS];          /* persistent, owned */
    bool is_buffer[NB_MODULE_MAX_TENSORS];
    int n_children;
    char (*child_names)[NB_MODULE_NAME_MAX];
    nb_module **children;                               /* owned */
    void *config;                                       /* kind-specific settings, owned (free) */
};

/* ---- building modules (also for users' own kinds) ---- */
nb_module *nb_module_new(const char *kind, nb_forward_fn forward, size_t config_size); /* config zeroed */
/* takes ownership of t (made persistent if scoped); a parameter is set to require grad */
int nb_module_add_tensor(nb_module *m, const char *name, nb_tensor *t, bool is_buffer);
int nb_module_add_child(nb_module *m, const char *name, nb_module *child);            /* takes ownership */
nb_tensor *nb_module_tensor(const nb_module *m, const char *name);                   /* own tensor by short name */

/* ---- using modules ---- */
nb_tensor *nb_module_forward(nb_module *m, nb_tensor *x);
void nb_module_set_training(nb_module *m, bool training);                            /* the whole tree */
/* calls fn for every tensor of the tree, depth first in insertion order, with its dotted name;
 * stops and returns fn's value when it is non-zero */
typedef int (*nb_tensor_visit_fn)(const char *name, nb_tensor *t, bool is_buffer, void *ctx);
int nb_module_visit(nb_module *m, nb_tensor_visit_fn fn, void *ctx);
nb_tensor *nb_module_find(nb_module *m, const char *dotted_name);                    /* NULL + error when absent */
int64_t nb_module_count(nb_module *m, bool with_buffers);                             /* number of tensors */
int64_t nb_module_numel(nb_module *m, bool with_buffers);                             /* number of scalars */
void nb_module_zero_grad(nb_module *m);

/* ---- weights in and out (lib/io/weights.c) ----
 * nb_module_save writes every tensor of the tree (parameters and buffers) to a safetensors file under
 * its dotted name ("fc1.weight", "bn1.running_mean"), with metadata format "nabla-module-1" and the
 * module's kind; atomically (safetensors.h). nb_module_load copies the file's values into the tree
 * by name: file names are prefix + dotted name (prefix NULL or "": none; "best." reads the best
 * parameters of a Solver checkpoint, "model." its latest ones). Values are converted to the tree's
 * dtype (f32 <-> f64). Strict: every tensor of the tree must be in the file and every file tensor
 * under the prefix must be in the tree. A tensor of another shape (or an i64 one) is an error even
 * when not strict. On an error nothing changes, and the message lists the missing, unexpected and
 * mis-shaped names ("... does not fit the model (strict): 1 missing: fc3.bias; 1 of another shape or
 * dtype: fc1.weight (f32 [784,50] in the file, f32 [784,100] in the model)"). Layouts are cs231n's:
 * Linear weights [in,out] (PyTorch: [out,in]); see the README's table and tools/nabla-torch.py. */
typedef struct { int loaded, missing, unexpected; } nb_module_load_report;
int nb_module_save(nb_module *m, const char *path);
int nb_module_load(nb_module *m, const char *path, const char *prefix, bool strict, nb_module_load_report *report);
void nb_module_free(nb_module *m);

/* ---- initialisation ---- */
typedef enum {
    NB_INIT_NORMAL,   /* weights ~ N(0, scale²): cs231n's weight_scale */
    NB_INIT_KAIMING,  /* weights ~ N(0, 2/fan_in): He et al., for ReLU nets */
} nb_init_kind;
typedef struct { nb_init_kind kind; double scale; nb_rng *rng; } nb_init;     /* biases start at 0 */
#define NB_INIT_NORMAL_SCALE(rng, s) ((nb_init){ NB_INIT_NORMAL, (s), (rng) })
#define NB_INIT_KAIMING_RELU(rng) ((nb_init){ NB_INIT_KAIMING, 0, (rng) })

/* ---- the layer modules ---- */
nb_module *nb_module_linear(int64_t in, int64_t out, nb_dtype dt, nb_init init);   /* weight [in,out], bias [out]; x:[N,..] -> [N,out] */
nb_module *nb_module_conv2d(int64_t in_ch, int64_t out_ch, int k, int stride, int pad, nb_dtype dt, nb_init init); /* weight [F,C,k,k] (fan_in C·k·k), bias [F]; x:[N,C,H,W] -> [N,F,H',W'], H' = 1 + (H + 2·pad - k)/stride */
/* Conv2d modules compute through nb_conv2d_fused (the default: one kernel, no stored im2col matrix,
 * once-differentiable) or, after nb_module_set_fused_conv(m, false), the composed nb_conv2d (twice
 * differentiable). Sets every Conv2d of m's tree. */
void nb_module_set_fused_conv(nb_module *m, bool fused);
nb_module *nb_module_relu(void);                                                   /* x:A -> A */
nb_module *nb_module_max_pool2d(nb_window w);                                      /* x:[N,C,H,W] -> [N,C,H',W']; pad <= k/2 */
nb_module *nb_module_global_avg_pool(void);                                        /* x:[N,C,H,W] -> [N,C] */
nb_module *nb_module_flatten(void);                                                /* x:[N,d1..dk] -> [N,d1·..·dk] */
/* Batchnorm, cs231n conventions: parameters "weight" (gamma, ones) and "bias" (beta, zeros), buffers
 * "running_mean" and "running_var" (zeros: they start at 0), running = 0.9·running + 0.1·batch with
 * the biased batch variance, eps 1e-5. Training normalises with the batch stats and updates the
 * running stats (values only); eval normalises with the running stats. fused picks the one-kernel
 * nb_batchnorm_fused (once-differentiable) over the composed nb_batchnorm / nb_spatial_batchnorm
 * (differentiable twice); both give the same values, gradients and running stats. */
nb_module *nb_module_batchnorm1d(int64_t features, nb_dtype dt, bool fused);      /* x:[N,D] -> [N,D], D = features */
nb_module *nb_module_batchnorm2d(int64_t channels, nb_dtype dt, bool fused);      /* x:[N,C,H,W] -> [N,C,H,W], stats per channel */
nb_module *nb_module_layernorm(int64_t features, nb_dtype dt, bool fused);        /* weight (ones), bias (zeros) [D], eps 1e-5; x:[..,D] -> [..,D]; fused: nb_layernorm_fused */
nb_module *nb_module_groupnorm(int groups, int64_t channels, nb_dtype dt);         /* weight (ones), bias (zeros) [C], eps 1e-5; x:[N,C,H,W] -> [N,C,H,W]; groups divide C */
nb_module *nb_module_dropout(double keep_prob, nb_rng *rng);                       /* x:A -> A; keep_prob in (0,1] (inverted dropout); rng borrowed, must outlive the module; identity in eval */

/* ---- sequence modules (lib/nn/gpt.c); x:[N,T,D] ---- */
nb_module *nb_module_embedding(int64_t vocab, int64_t dim, nb_dtype dt, nb_init init);       /* weight [V,D]; ids i64 [..] -> [..,D] */
nb_module *nb_module_temporal_linear(int64_t in, int64_t out, nb_dtype dt, nb_init init);    /* weight [in,out], bias [out]; x:[..,in] -> [..,out] */
nb_module *nb_module_rnn(int64_t in, int64_t hidden, nb_dtype dt, nb_init init);            /* wx [D,H], wh [H,H], b [H]; x:[N,T,D] -> [N,T,H] from h0 = 0 */
nb_module *nb_module_lstm(int64_t in, int64_t hidden, nb_dtype dt, nb_init init);           /* wx [D,4H], wh [H,4H], b [4H]; x:[N,T,D] -> [N,T,H] from h0 = c0 = 0 */
/* children c_attn (C -> 3C: q, k, v) and c_proj (C -> C, initialised with proj_init); x:[B,T,C] ->
 * [B,T,C]: n_head heads of C/n_head, causal */
nb_module *nb_module_causal_self_attention(int64_t c, int64_t n_head, nb_dtype dt, nb_init init, nb_init proj_init);
/* pre-norm Transformer block: children ln_1, attn, ln_2, mlp (c_fc C -> 4C, GELU, c_proj 4C -> C);
 * x + attn(ln_1(x)), then + mlp(ln_2(x)); x:[B,T,C] -> [B,T,C] */
nb_module *nb_module_transformer_block(int64_t c, int64_t n_head, nb_dtype dt, nb_init init, nb_init proj_init);

/* A GPT (GPT-2's architecture): children wte [V,C] and wpe [maxT,C] (Embedding), h (the n_layer
 * blocks, "h.0" ...), ln_f; its forward maps token ids i64 [B,T] (T <= max_seq_len) to logits
 * [B,T,V] = ln_f(x)·wteᵀ: the output projection is tied to the token embedding (no weight of its own).
 * GPT-2's initialisation: weights N(0, 0.02²), the residual projections (attn.c_proj, mlp.c_proj)
 * N(0, (0.02/√(2·n_layer))²), wpe N(0, 0.01²), biases 0, layernorms 1 and 0; from `seed`. */
typedef struct {
    int64_t vocab_size, max_seq_len, n_layer, n_head, n_embd;   /* defaults 256, 128, 4, 4, 256 */
    nb_dtype dtype;                                            /* NB_F32 */
    uint64_t seed;                                             /* 0 */
} nb_gpt_config;
nb_gpt_config nb_gpt_defaults(void);
nb_module *nb_gpt(const nb_gpt_config *cfg);
/* logits:[B,T,V] targets:i64 [B,T] -> [] = mean over the B·T positions of -log softmax(logits)[target] */
nb_tensor *nb_gpt_loss(nb_tensor *logits, nb_tensor *targets);
/* llm.c's GPT-2 checkpoints (lib/io/llmc.c): a header of 256 int32 (20240326, version 3, maxT, V, L,
 * NH, C, Vp) then float32 parameters in llm.c's order (wte [Vp,C], wpe, ln1w, ln1b, qkvw [L,3C,C],
 * qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb), linear weights
 * [out,in] (transposed to and from nabla's [in,out]); the output projection tied to wte. Loading
 * builds the GPT the header describes in dt (wte's padding rows V..Vp dropped) and checks the file's
 * size against it; saving pads V to a multiple of 128 with zero rows and writes atomically. */
nb_module *nb_gpt_load_llmc(const char *path, nb_dtype dt);
int nb_gpt_save_llmc(nb_module *gpt, const char *path);

/* ---- containers (lib/nn/sequential.c) ---- */
/* children named "0", "1", ...; forward chains them. Takes ownership of the n children; when one is
 * NULL (a failed constructor, whose message is kept) or on any error, frees them all and returns NULL. */
nb_module *nb_module_sequential(int n, nb_module *const *children);               /* x -> children[n-1](..children[0](x)) */
/* appends child under a name of its own ("fc1", "bn1", ...); takes ownership: child is freed on failure
 * (so a NULL child from a failed constructor just returns -1 with the constructor's message) */
int nb_module_sequential_append(nb_module *seq, const char *name, nb_module *child);
/* ResNet basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), conv1 3x3 with stride, conv2 3x3
 * stride 1 (both pad 1); shortcut is the identity, or a Sequential of "conv" (1x1, stride) and "bn" when
 * stride != 1 or in_ch != out_ch. Children "conv1", "bn1", "conv2", "bn2" [, "shortcut"]. */
nb_module *nb_module_residual(int64_t in_ch, int64_t out_ch, int stride, nb_dtype dt, nb_init init, bool fused_bn); /* x:[N,in,H,W] -> [N,out,H',W'], H' = 1 + (H - 1)/stride */

#ifdef __cplusplus
}
#endif
#endif
