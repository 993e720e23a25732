/* A GPT as a page of tensor expressions: the whole model, its parameters as plain tensors, its
 * forward written with nabla's ops, and its gradients from the engine. It trains on a text (argv[1],
 * a file or folder; default Debian's fortunes) for a few hundred steps and samples from it. Compare lib/nn/gpt.c, which is the
 * same model as modules, and llm.c's train_gpt2.c, which writes every backward pass by hand.
 *   build/examples/gpt [TEXT] [STEPS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

enum { V = 256, T = 32, C = 64, H = 4, L = 2, B = 16 };   /* bytes, context, width, heads, blocks, batch */

typedef struct {                    /* one block's weights; Linear weights are [in, out] */
    nb_tensor *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fcproj_w, *fcproj_b;
} block;

typedef struct {
    nb_tensor *wte, *wpe, *lnf_w, *lnf_b;   /* token and position embeddings, final layernorm */
    block h[L];
} gpt;

static nb_tensor *weight(nb_rng *rng, int64_t rows, int64_t cols, double std)
{
    return nb_param(nb_randn(NB_F32, NB_SHAPE(rows, cols), rng, std));
}
static nb_tensor *vector(int64_t n, double value) { return nb_param(nb_full(NB_F32, NB_SHAPE(n), value)); }

/* x:[b,t,C] -> [b,t,C]: H heads of causal self-attention */
static nb_tensor *attention(const block *w, nb_tensor *x)
{
    const int64_t b = x->shape[0], t = x->shape[1];
    nb_tensor *qkv = nb_temporal_affine(x, w->qkv_w, w->qkv_b);                                   /* [B,T,3C] */
    nb_tensor *q = nb_permute(nb_reshape(nb_slice(qkv, 2, 0, C, 1), NB_SHAPE(b, t, H, C / H)), NB_AXES(0, 2, 1, 3));
    nb_tensor *k = nb_permute(nb_reshape(nb_slice(qkv, 2, C, 2 * C, 1), NB_SHAPE(b, t, H, C / H)), NB_AXES(0, 2, 1, 3));
    nb_tensor *v = nb_permute(nb_reshape(nb_slice(qkv, 2, 2 * C, 3 * C, 1), NB_SHAPE(b, t, H, C / H)), NB_AXES(0, 2, 1, 3));
    nb_tensor *y = nb_attention(q, k, v, true);                                                   /* [b,H,t,C/H] */
    y = nb_reshape(nb_contiguous(nb_permute(y, NB_AXES(0, 2, 1, 3))), NB_SHAPE(b, t, C));
    return nb_temporal_affine(y, w->proj_w, w->proj_b);
}

/* ids:[b,t] (t <= T) -> logits [b,t,V] */
static nb_tensor *forward(const gpt *m, nb_tensor *ids)
{
    nb_tensor *x = nb_add(nb_embedding(m->wte, ids), nb_slice(m->wpe, 0, 0, ids->shape[1], 1));   /* [b,t,C] */
    for (int l = 0; l < L; l++) {
        const block *w = &m->h[l];
        x = nb_add(x, attention(w, nb_layernorm(x, w->ln1_w, w->ln1_b, 1e-5)));
        nb_tensor *hidden = nb_gelu(nb_temporal_affine(nb_layernorm(x, w->ln2_w, w->ln2_b, 1e-5), w->fc_w, w->fc_b));
        x = nb_add(x, nb_temporal_affine(hidden, w->fcproj_w, w->fcproj_b));
    }
    x = nb_layernorm(x, m->lnf_w, m->lnf_b, 1e-5);
    return nb_matmul(x, nb_transpose(m->wte, 0, 1));                                              /* tied output */
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/usr/share/games/fortunes";
    const int steps = argc > 2 ? atoi(argv[2]) : 300;
    nb_text text;
    if (nb_text_load(&text, path, 0.1)) return fprintf(stderr, "%s\n", nb_last_error()), 1;

    nb_rng rng;
    nb_rng_seed(&rng, 1);
    gpt m = { weight(&rng, V, C, 0.02), weight(&rng, T, C, 0.01), vector(C, 1), vector(C, 0), { { 0 } } };
    for (int l = 0; l < L; l++)
        m.h[l] = (block){ vector(C, 1), vector(C, 0), weight(&rng, C, 3 * C, 0.02), vector(3 * C, 0),
                          weight(&rng, C, C, 0.02 / sqrt(2 * L)), vector(C, 0), vector(C, 1), vector(C, 0),
                          weight(&rng, C, 4 * C, 0.02), vector(4 * C, 0), weight(&rng, 4 * C, C, 0.02 / sqrt(2 * L)), vector(C, 0) };
    nb_tensor **params = (nb_tensor **)&m;   /* the struct is nothing but tensor pointers */
    const int n_params = (int)(sizeof m / sizeof(nb_tensor *));
    nb_optim_config cfg = nb_optim_defaults(NB_ADAMW);
    cfg.lr = 3e-3;
    nb_optimizer *opt = nb_optimizer_new(cfg, n_params, params, NULL);
    if (!opt) return fprintf(stderr, "%s\n", nb_last_error()), 1;

    nb_scope *step_scope = nb_scope_new();
    nb_scope_push(step_scope);
    for (int step = 1; step <= steps; step++) {
        nb_tensor *x, *y;
        nb_text_batch(&text, false, B, T, &rng, &x, &y);
        nb_optimizer_set_lr(opt, nb_lr_cosine(3e-3, step, steps, 3e-4));
        nb_optimizer_zero_grad(opt);
        nb_tensor *loss = nb_gpt_loss(forward(&m, x), y);
        if (!loss || nb_backward(loss) || nb_optimizer_step(opt)) return fprintf(stderr, "%s\n", nb_last_error()), 1;
        if (step % 50 == 0 || step == 1) printf("step %4d  loss %.4f\n", step, nb_item(loss));
        nb_scope_reset(step_scope);
    }

    /* sampling: the most recent T bytes in, the next byte drawn from the softmax of the last position */
    unsigned char context[T] = "\n";
    int len = 1;
    nb_set_grad_enabled(false);
    printf("sample: ");
    for (int i = 0; i < 200; i++) {
        nb_tensor *ids = nb_empty(NB_I64, NB_SHAPE(1, len));
        for (int k = 0; k < len; k++) nb_set(ids, k, context[k]);
        nb_tensor *p = nb_softmax(nb_slice(forward(&m, ids), 1, len - 1, len, 1), -1);   /* [1,1,V] */
        double u = nb_rng_uniform(&rng), acc = 0;
        int next = V - 1;
        for (int v = 0; v < V && next == V - 1; v++)
            if ((acc += nb_get(p, v)) > u) next = v;
        putchar(next);
        if (len == T) memmove(context, context + 1, T - 1), len--;
        context[len++] = (unsigned char)next;
        nb_scope_reset(step_scope);
    }
    printf("\n");
    nb_scope_pop();
    nb_scope_free(step_scope);
    nb_optimizer_free(opt);
    for (int i = 0; i < n_params; i++) nb_free(params[i]);
    nb_text_free(&text);
    nb_cleanup();
    return 0;
}
