/* Sequence modules and the GPT built from them, every forward a composition of the ops of nn.h:
 *   Embedding        weight [V,D]; ids i64 [..] -> [..,D]
 *   TemporalLinear   weight [in,out], bias [out]; x [..,in] -> [..,out]
 *   RNN, LSTM        wx, wh, b; x [N,T,D] -> [N,T,H] from a zero initial state
 *   CausalSelfAttention  c_attn (C -> 3C: q, k, v), c_proj (C -> C); n_head heads of C/n_head
 *                    (nb_attention_heads_fused: one op each way over the heads of the [B,T,3C]
 *                    projection, checked against the composed nb_attention over its sliced views)
 *   LayerNorm        ln_1, ln_2, ln_f through nb_layernorm_fused (checked against nb_layernorm)
 *   Block            pre-norm: x + attn(ln_1(x)), then + mlp(ln_2(x)), mlp = c_proj(gelu(c_fc(x)))
 *                    (nb_gelu_fused: one kernel each way, checked against the composed nb_gelu)
 *   GPT              wte, wpe, h (the blocks), ln_f; logits = ln_f(x)·wteᵀ (the output projection is
 *                    tied to the token embedding, as GPT-2 does) */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool float_dtype(const char *who, nb_dtype dt)
{
    if (dt == NB_F32 || dt == NB_F64) return true;
    nb_error("%s: dtype must be f32 or f64, got %s", who, nb_dtype_name(dt));
    return false;
}

static bool positive(const char *who, const char *what, int64_t v)
{
    if (v > 0) return true;
    nb_error("%s: %s must be positive, got %lld", who, what, (long long)v);
    return false;
}

/* nb_module_add_child that frees the child when it cannot be added (a NULL child keeps its message) */
static int adopt(nb_module *m, const char *name, nb_module *child)
{
    if (nb_module_add_child(m, name, child) == 0) return 0;
    nb_module_free(child);
    return -1;
}

/* m, or NULL after freeing it when rc says a step failed */
static nb_module *built(nb_module *m, int rc)
{
    if (rc == 0) return m;
    nb_module_free(m);
    return NULL;
}

/* ---- Embedding, TemporalLinear ---- */

static nb_tensor *embedding_forward(nb_module *m, nb_tensor *ids) { return nb_embedding(m->tensors[0], ids); }

nb_module *nb_module_embedding(int64_t vocab, int64_t dim, nb_dtype dt, nb_init init)
{
    static const char who[] = "nb_module_embedding";
    if (!positive(who, "vocab", vocab) || !positive(who, "dim", dim) || !float_dtype(who, dt)) return NULL;
    nb_module *m = nb_module_new("Embedding", embedding_forward, 0);
    if (!m) return NULL;
    return built(m, nb_module_add_tensor(m, "weight", nb_module_init_weight(who, init, dt, NB_SHAPE(vocab, dim), dim), false));
}

static nb_tensor *temporal_linear_forward(nb_module *m, nb_tensor *x)
{
    return nb_temporal_affine(x, m->tensors[0], m->tensors[1]);
}

nb_module *nb_module_temporal_linear(int64_t in, int64_t out, nb_dtype dt, nb_init init)
{
    static const char who[] = "nb_module_temporal_linear";
    if (!positive(who, "in", in) || !positive(who, "out", out) || !float_dtype(who, dt)) return NULL;
    nb_module *m = nb_module_new("TemporalLinear", temporal_linear_forward, 0);
    if (!m) return NULL;
    return built(m, nb_module_add_tensor(m, "weight", nb_module_init_weight(who, init, dt, NB_SHAPE(in, out), in), false) ||
                        nb_module_add_tensor(m, "bias", nb_zeros(dt, NB_SHAPE(out)), false));
}

/* ---- RNN, LSTM ---- */

static nb_tensor *recurrent_forward(nb_module *m, nb_tensor *x, bool lstm)
{
    if (!x) return nb_null_input(m->kind);
    if (x->ndim != 3) {
        nb_error("%s: expected x [N,T,D], got %s", m->kind, nb_shp(x));
        return NULL;
    }
    nb_tensor *h0 = nb_zeros(x->dtype, NB_SHAPE(x->shape[0], m->tensors[1]->shape[0]));
    return (lstm ? nb_lstm : nb_rnn)(x, h0, m->tensors[0], m->tensors[1], m->tensors[2]);
}
static nb_tensor *rnn_forward(nb_module *m, nb_tensor *x) { return recurrent_forward(m, x, false); }
static nb_tensor *lstm_forward(nb_module *m, nb_tensor *x) { return recurrent_forward(m, x, true); }

static nb_module *recurrent(const char *who, int64_t in, int64_t hidden, nb_dtype dt, nb_init init, bool lstm)
{
    if (!positive(who, "in", in) || !positive(who, "hidden", hidden) || !float_dtype(who, dt)) return NULL;
    const int64_t G = (lstm ? 4 : 1) * hidden;
    nb_module *m = nb_module_new(lstm ? "LSTM" : "RNN", lstm ? lstm_forward : rnn_forward, 0);
    if (!m) return NULL;
    return built(m, nb_module_add_tensor(m, "wx", nb_module_init_weight(who, init, dt, NB_SHAPE(in, G), in), false) ||
                        nb_module_add_tensor(m, "wh", nb_module_init_weight(who, init, dt, NB_SHAPE(hidden, G), hidden), false) ||
                        nb_module_add_tensor(m, "b", nb_zeros(dt, NB_SHAPE(G)), false));
}

nb_module *nb_module_rnn(int64_t in, int64_t hidden, nb_dtype dt, nb_init init)
{
    return recurrent("nb_module_rnn", in, hidden, dt, init, false);
}

nb_module *nb_module_lstm(int64_t in, int64_t hidden, nb_dtype dt, nb_init init)
{
    return recurrent("nb_module_lstm", in, hidden, dt, init, true);
}

/* ---- causal self-attention ---- */

typedef struct { int64_t n_head; } attention_config;

static nb_tensor *attention_forward(nb_module *m, nb_tensor *x)
{
    if (!x) return nb_null_input("CausalSelfAttention");
    if (x->ndim != 3) {
        nb_error("CausalSelfAttention: expected x [B,T,C], got %s", nb_shp(x));
        return NULL;
    }
    const int64_t H = ((const attention_config *)m->config)->n_head;
    nb_tensor *qkv = nb_module_forward(m->children[0], x);   /* [B,T,3C]: q, k, v */
    nb_tensor *y = nb_attention_heads_fused(qkv, H, true);    /* [B,T,C]: the heads side by side */
    return nb_module_forward(m->children[1], y);
}

/* the GPT-2 initialisation: weights N(0, 0.02²), each residual projection N(0, (0.02/√(2L))²) */
static nb_init normal(nb_rng *rng, double std) { return NB_INIT_NORMAL_SCALE(rng, std); }

nb_module *nb_module_causal_self_attention(int64_t c, int64_t n_head, nb_dtype dt, nb_init init, nb_init proj_init)
{
    static const char who[] = "nb_module_causal_self_attention";
    if (!positive(who, "the width", c) || !positive(who, "n_head", n_head)) return NULL;
    if (c % n_head) {
        nb_error("%s: n_head %lld must divide the width %lld", who, (long long)n_head, (long long)c);
        return NULL;
    }
    nb_module *m = nb_module_new("CausalSelfAttention", attention_forward, sizeof(attention_config));
    if (!m) return NULL;
    ((attention_config *)m->config)->n_head = n_head;
    return built(m, adopt(m, "c_attn", nb_module_temporal_linear(c, 3 * c, dt, init)) ||
                        adopt(m, "c_proj", nb_module_temporal_linear(c, c, dt, proj_init)));
}

/* ---- the pre-norm Transformer block ---- */

static nb_tensor *block_forward(nb_module *m, nb_tensor *x)
{
    nb_module *const *k = m->children;   /* ln_1, attn, ln_2, mlp */
    x = nb_add(x, nb_module_forward(k[1], nb_module_forward(k[0], x)));
    return nb_add(x, nb_module_forward(k[3], nb_module_forward(k[2], x)));
}

static nb_tensor *mlp_forward(nb_module *m, nb_tensor *x)
{
    return nb_module_forward(m->children[1], nb_gelu_fused(nb_module_forward(m->children[0], x)));
}

static nb_module *mlp(int64_t c, nb_dtype dt, nb_init init, nb_init proj_init)
{
    nb_module *m = nb_module_new("MLP", mlp_forward, 0);
    if (!m) return NULL;
    return built(m, adopt(m, "c_fc", nb_module_temporal_linear(c, 4 * c, dt, init)) ||
                        adopt(m, "c_proj", nb_module_temporal_linear(4 * c, c, dt, proj_init)));
}

nb_module *nb_module_transformer_block(int64_t c, int64_t n_head, nb_dtype dt, nb_init init, nb_init proj_init)
{
    nb_module *m = nb_module_new("Block", block_forward, 0);
    if (!m) return NULL;
    return built(m, adopt(m, "ln_1", nb_module_layernorm(c, dt, true)) ||
                        adopt(m, "attn", nb_module_causal_self_attention(c, n_head, dt, init, proj_init)) ||
                        adopt(m, "ln_2", nb_module_layernorm(c, dt, true)) || adopt(m, "mlp", mlp(c, dt, init, proj_init)));
}

/* ---- GPT ---- */

static nb_tensor *gpt_forward(nb_module *m, nb_tensor *ids)
{
    static const char who[] = "GPT";
    if (!ids) return nb_null_input(who);
    nb_tensor *wte = m->children[0]->tensors[0], *wpe = m->children[1]->tensors[0];
    if (ids->dtype != NB_I64 || ids->ndim != 2) {
        nb_error("%s: expected token ids i64 [B,T], got %s %s", who, nb_dtype_name(ids->dtype), nb_shp(ids));
        return NULL;
    }
    const int64_t T = ids->shape[1];
    if (T < 1 || T > wpe->shape[0]) {
        nb_error("%s: %lld tokens per sequence; the model takes 1 to %lld", who, (long long)T, (long long)wpe->shape[0]);
        return NULL;
    }
    nb_tensor *x = nb_add(nb_embedding(wte, ids), nb_slice(wpe, 0, 0, T, 1));   /* [B,T,C] */
    nb_module *blocks = m->children[2];
    for (int l = 0; l < blocks->n_children; l++) x = nb_module_forward(blocks->children[l], x);
    x = nb_module_forward(m->children[3], x);
    return nb_matmul(x, nb_transpose(wte, 0, 1));   /* [B,T,V]: tied to the token embedding */
}

/* the Sequential of the n_layer blocks, named 0, 1, ... */
static nb_module *blocks(const nb_gpt_config *cfg, nb_init init, nb_init proj)
{
    nb_module *seq = nb_module_sequential(0, NULL);
    int rc = seq ? 0 : -1;
    for (int64_t l = 0; rc == 0 && l < cfg->n_layer; l++) {
        char name[24];
        snprintf(name, sizeof name, "%lld", (long long)l);
        rc = nb_module_sequential_append(seq, name, nb_module_transformer_block(cfg->n_embd, cfg->n_head, cfg->dtype, init, proj));
    }
    return built(seq, rc);
}

nb_gpt_config nb_gpt_defaults(void)
{
    return (nb_gpt_config){ .vocab_size = 256, .max_seq_len = 128, .n_layer = 4, .n_head = 4, .n_embd = 256,
                            .dtype = NB_F32, .seed = 0 };
}

nb_module *nb_gpt(const nb_gpt_config *cfg)
{
    static const char who[] = "nb_gpt";
    if (!cfg) {
        nb_error("%s: NULL configuration", who);
        return NULL;
    }
    if (!positive(who, "vocab_size", cfg->vocab_size) || !positive(who, "max_seq_len", cfg->max_seq_len) ||
        !positive(who, "n_layer", cfg->n_layer) || !positive(who, "n_head", cfg->n_head) ||
        !positive(who, "n_embd", cfg->n_embd) || !float_dtype(who, cfg->dtype))
        return NULL;
    if (cfg->n_embd % cfg->n_head) {
        nb_error("%s: n_head %lld must divide n_embd %lld", who, (long long)cfg->n_head, (long long)cfg->n_embd);
        return NULL;
    }
    nb_rng rng;
    nb_rng_seed(&rng, cfg->seed);
    const nb_dtype dt = cfg->dtype;
    const nb_init init = normal(&rng, 0.02), proj = normal(&rng, 0.02 / sqrt(2.0 * (double)cfg->n_layer));
    nb_module *m = nb_module_new("GPT", gpt_forward, 0);
    if (!m) return NULL;
    return built(m, adopt(m, "wte", nb_module_embedding(cfg->vocab_size, cfg->n_embd, dt, init)) ||
                        adopt(m, "wpe", nb_module_embedding(cfg->max_seq_len, cfg->n_embd, dt, normal(&rng, 0.01))) ||
                        adopt(m, "h", blocks(cfg, init, proj)) || adopt(m, "ln_f", nb_module_layernorm(cfg->n_embd, dt, true)));
}

int64_t nb_gpt_n_head(const nb_module *gpt)
{
    if (!gpt || gpt->forward != gpt_forward || gpt->children[2]->n_children < 1) return -1;
    const nb_module *attn = gpt->children[2]->children[0]->children[1];
    return ((const attention_config *)attn->config)->n_head;
}

nb_tensor *nb_gpt_loss(nb_tensor *logits, nb_tensor *targets)
{
    static const char who[] = "nb_gpt_loss";
    if (!logits || !targets) return nb_null_input(who);
    if (logits->ndim != 3 || targets->ndim != 2 || targets->shape[0] != logits->shape[0] ||
        targets->shape[1] != logits->shape[1]) {
        nb_error("%s: logits %s and targets %s: expected [B,T,V] and [B,T]", who, nb_shp(logits), nb_shp(targets));
        return NULL;
    }
    const int64_t rows = logits->shape[0] * logits->shape[1];
    return nb_softmax_cross_entropy(nb_reshape(logits, NB_SHAPE(rows, logits->shape[2])), nb_reshape(targets, NB_SHAPE(rows)));
}
