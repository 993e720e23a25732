/* Classifiers with cs231n's contract (model.h): a module tree giving class scores, softmax
 * cross-entropy plus L2 on the Linear/Conv2d weights, and cs231n's nets built from the layer modules. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct nb_model_private {
    nb_rng rng;        /* borrowed by the Dropout modules; stable address (heap) */
    bool has_rng;
    char name[64];     /* m->name points here */
};

/* ---- validation helpers: each records "<who>: ..." and returns false ---- */

static bool check_positive(const char *who, const char *what, int64_t v)
{
    if (v > 0) return true;
    nb_error("%s: %s must be positive, got %lld", who, what, (long long)v);
    return false;
}

static bool check_reg(const char *who, double reg)
{
    if (reg >= 0 && isfinite(reg)) return true;
    nb_error("%s: reg %g must be finite and not negative", who, reg);
    return false;
}

static bool check_weight_scale(const char *who, double scale)
{
    if (scale >= 0 && isfinite(scale)) return true;
    nb_error("%s: weight_scale %g must be finite and not negative", who, scale);
    return false;
}

static bool check_dtype(const char *who, nb_dtype dt)
{
    if (dt == NB_F32 || dt == NB_F64) return true;
    nb_error("%s: dtype must be f32 or f64, got %s", who, nb_dtype_name(dt));
    return false;
}

static bool check_rng(const char *who, const nb_rng *rng)
{
    if (rng) return true;
    nb_error("%s: NULL generator", who);
    return false;
}

static bool check_model(const char *who, const nb_model *m)
{
    if (m && m->net) return true;
    nb_error("%s: NULL model%s", who, m ? " net" : "");
    return false;
}

/* ---- any model ---- */

/* a model without a net yet: the constructors need the generator's address before building it */
static nb_model *model_shell(const char *name, double reg)
{
    nb_model *m = calloc(1, sizeof *m);
    nb_model_private *p = calloc(1, sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        nb_error("nb_model: out of memory for a %s", name);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    m->reg = reg;
    m->name = p->name;
    m->priv = p;
    return m;
}

nb_model *nb_model_new(nb_module *net, double reg, const char *name)
{
    if (!net) return NULL;   /* the failed constructor's message stays */
    if (!check_reg("nb_model_new", reg)) {
        nb_module_free(net);
        return NULL;
    }
    nb_model *m = model_shell(name ? name : "Model", reg);
    if (!m) {
        nb_module_free(net);
        return NULL;
    }
    m->net = net;
    return m;
}

void nb_model_free(nb_model *m)
{
    if (!m) return;
    nb_module_free(m->net);
    free(m->priv);
    free(m);
}

int nb_model_seed(nb_model *m, uint64_t seed)
{
    if (!check_model("nb_model_seed", m)) return -1;
    if (!m->priv || !m->priv->has_rng) return 0;
    nb_rng_seed(&m->priv->rng, seed);
    return 1;
}

/* the "weight" of every Linear and Conv2d module, depth first in insertion order */
typedef struct { int max, count; nb_tensor **out; } weight_list;

static void collect_weights(nb_module *m, weight_list *w)
{
    if (!strcmp(m->kind, "Linear") || !strcmp(m->kind, "Conv2d")) {
        nb_tensor *t = nb_module_tensor(m, "weight");
        if (t) {
            if (w->count < w->max) w->out[w->count] = t;
            w->count++;
        }
    }
    for (int i = 0; i < m->n_children; i++) collect_weights(m->children[i], w);
}

int nb_model_reg_weights(nb_model *m, int max, nb_tensor **out)
{
    if (!check_model("nb_model_reg_weights", m)) return -1;
    if (max > 0 && !out) {
        nb_error("nb_model_reg_weights: NULL output array for %d weights", max);
        return -1;
    }
    weight_list w = { max > 0 ? max : 0, 0, out };
    collect_weights(m->net, &w);
    return w.count;
}

/* scores must be [N,C] for an x of N rows */
static nb_tensor *check_scores(const char *who, const nb_model *m, const nb_tensor *x, nb_tensor *s)
{
    if (!s) return NULL;
    if (s->ndim != 2 || s->shape[0] != x->shape[0]) {
        nb_error("%s: the %s net maps x %s to %s; expected scores [%lld,C]", who, m->name, nb_shp(x), nb_shp(s),
                 (long long)x->shape[0]);
        return NULL;
    }
    return s;
}

static bool check_x(const char *who, const nb_tensor *x)
{
    if (x->ndim >= 1) return true;
    nb_error("%s: x must have a batch axis [N,..], got %s", who, nb_shp(x));
    return false;
}

nb_tensor *nb_model_scores(nb_model *m, nb_tensor *x)
{
    const char *who = "nb_model_scores";
    if (!x) return nb_null_input("nb_model_scores");
    if (!check_model(who, m) || !check_x(who, x)) return NULL;
    nb_module_set_training(m->net, false);
    bool was = nb_set_grad_enabled(false);
    nb_tensor *s = nb_module_forward(m->net, x);
    nb_set_grad_enabled(was);
    return check_scores(who, m, x, s);
}

/* the loss expression shared by nb_model_loss and nb_model_loss_expr; messages name `who` */
static nb_tensor *loss_expr(const char *who, nb_model *m, nb_tensor *x, nb_tensor *y)
{
    if (!x || !y) return NULL;
    if (!check_model(who, m) || !check_x(who, x) || !check_reg(who, m->reg)) return NULL;
    nb_module_set_training(m->net, true);
    nb_tensor *loss = nb_softmax_cross_entropy(check_scores(who, m, x, nb_module_forward(m->net, x)), y);
    if (!loss || m->reg == 0) return loss;
    int n = nb_model_reg_weights(m, 0, NULL);
    if (n <= 0) return n < 0 ? NULL : loss;   /* nothing to regularise */
    nb_tensor **w = nb_scope_alloc(sizeof *w * (size_t)n);
    if (!w) return NULL;
    nb_model_reg_weights(m, n, w);
    return nb_add(loss, nb_l2_reg(n, w, m->reg));
}

nb_tensor *nb_model_loss_expr(nb_model *m, nb_tensor *x, nb_tensor *y) { return loss_expr("nb_model_loss_expr", m, x, y); }

nb_tensor *nb_model_loss(nb_model *m, nb_tensor *x, nb_tensor *y)
{
    if (!x || !y) return nb_null_input("nb_model_loss_expr");
    if (!check_model("nb_model_loss", m)) return NULL;
    nb_module_zero_grad(m->net);
    bool was = nb_set_grad_enabled(true);
    nb_tensor *loss = loss_expr("nb_model_loss", m, x, y);
    int rc = loss ? nb_backward(loss) : -1;
    nb_set_grad_enabled(was);
    return rc ? NULL : loss;
}

int nb_model_accuracy(nb_model *m, const nb_tensor *x, const nb_tensor *y, int64_t batch_size, double *acc)
{
    const char *who = "nb_model_accuracy";
    if (!x || !y) {
        nb_error_null(who, "x or y");
        return -1;
    }
    if (!check_model(who, m) || !check_x(who, x)) return -1;
    if (!acc) {
        nb_error("%s: NULL result pointer", who);
        return -1;
    }
    const int64_t N = x->shape[0];
    if (y->dtype != NB_I64 || y->ndim != 1 || y->shape[0] != N) {
        nb_error("%s: labels must be i64 [%lld] to match x %s, got %s %s", who, (long long)N, nb_shp(x),
                 nb_dtype_name(y->dtype), nb_shp(y));
        return -1;
    }
    if (N == 0) {
        nb_error("%s: x %s has no samples", who, nb_shp(x));
        return -1;
    }
    if (batch_size < 1) {
        nb_error("%s: batch_size must be positive, got %lld", who, (long long)batch_size);
        return -1;
    }
    nb_scope *scope = nb_scope_new();
    if (!scope) return -1;
    nb_scope_push(scope);
    bool was = nb_set_grad_enabled(false);
    int64_t correct = 0;
    int rc = 0;
    for (int64_t start = 0; start < N; start += batch_size) {
        int64_t stop = N - start < batch_size ? N : start + batch_size;
        /* a view of the rows: x is only read */
        nb_tensor *pred = nb_argmax(nb_model_scores(m, nb_slice((nb_tensor *)x, 0, start, stop, 1)), 1, false);
        if (!pred) {
            rc = -1;
            break;
        }
        for (int64_t i = start; i < stop; i++) correct += nb_get(pred, i - start) == nb_get(y, i);
        nb_scope_reset(scope);
    }
    nb_set_grad_enabled(was);
    nb_scope_pop();
    nb_scope_free(scope);
    if (rc == 0) *acc = (double)correct / (double)N;
    return rc;
}

/* ---- building the nets ---- */

/* appends child to seq under the name prefix + index (index 0: the prefix alone) */
static int append(nb_module *seq, const char *prefix, int index, nb_module *child)
{
    char name[NB_MODULE_NAME_MAX];
    if (index > 0) snprintf(name, sizeof name, "%s%d", prefix, index);
    else snprintf(name, sizeof name, "%s", prefix);
    return nb_module_sequential_append(seq, name, child);
}

/* m->net = the Sequential built by build(); frees the model on failure */
static nb_model *finish(nb_model *m, nb_module *net, int rc)
{
    if (rc != 0 || !net) {
        nb_module_free(net);
        nb_model_free(m);
        return NULL;
    }
    m->net = net;
    return m;
}

nb_model *nb_two_layer_net(int64_t input_dim, int64_t hidden_dim, int64_t num_classes, double weight_scale, double reg,
                           nb_dtype dt, nb_rng *rng)
{
    const char *who = "nb_two_layer_net";
    if (!check_positive(who, "input_dim", input_dim) || !check_positive(who, "hidden_dim", hidden_dim) ||
        !check_positive(who, "num_classes", num_classes) || !check_weight_scale(who, weight_scale) ||
        !check_reg(who, reg) || !check_dtype(who, dt) || !check_rng(who, rng))
        return NULL;
    nb_model *m = model_shell("TwoLayerNet", reg);
    if (!m) return NULL;
    nb_init init = NB_INIT_NORMAL_SCALE(rng, weight_scale);
    nb_module *net = nb_module_sequential(0, NULL);
    int rc = net ? 0 : -1;
    if (!rc) rc = append(net, "fc", 1, nb_module_linear(input_dim, hidden_dim, dt, init));
    if (!rc) rc = append(net, "relu", 1, nb_module_relu());
    if (!rc) rc = append(net, "fc", 2, nb_module_linear(hidden_dim, num_classes, dt, init));
    return finish(m, net, rc);
}

nb_fc_config nb_fc_defaults(void)
{
    return (nb_fc_config){
        .n_hidden = 0, .hidden_dims = NULL, .input_dim = 3 * 32 * 32, .num_classes = 10, .keep_prob = 1,
        .norm = NB_NORM_NONE, .reg = 0, .weight_scale = 1e-2, .dtype = NB_F32, .seed = 0, .fused_bn = false,
    };
}

nb_model *nb_fully_connected_net(const nb_fc_config *cfg)
{
    const char *who = "nb_fully_connected_net";
    if (!cfg) {
        nb_error("%s: NULL config", who);
        return NULL;
    }
    if (cfg->n_hidden < 0 || (cfg->n_hidden > 0 && !cfg->hidden_dims)) {
        nb_error("%s: n_hidden %d needs that many hidden_dims (%s)", who, cfg->n_hidden,
                 cfg->hidden_dims ? "given" : "NULL");
        return NULL;
    }
    for (int i = 0; i < cfg->n_hidden; i++)
        if (cfg->hidden_dims[i] <= 0) {
            nb_error("%s: hidden_dims[%d] must be positive, got %lld", who, i, (long long)cfg->hidden_dims[i]);
            return NULL;
        }
    if (!check_positive(who, "input_dim", cfg->input_dim) || !check_positive(who, "num_classes", cfg->num_classes) ||
        !check_weight_scale(who, cfg->weight_scale) || !check_reg(who, cfg->reg) || !check_dtype(who, cfg->dtype))
        return NULL;
    if (!(cfg->keep_prob > 0 && cfg->keep_prob <= 1)) {
        nb_error("%s: keep_prob %g must be in (0, 1] (1: no dropout)", who, cfg->keep_prob);
        return NULL;
    }
    if (cfg->norm != NB_NORM_NONE && cfg->norm != NB_NORM_BATCH && cfg->norm != NB_NORM_LAYER) {
        nb_error("%s: unknown normalization %d (NB_NORM_NONE, NB_NORM_BATCH or NB_NORM_LAYER)", who, (int)cfg->norm);
        return NULL;
    }
    nb_model *m = model_shell("FullyConnectedNet", cfg->reg);
    if (!m) return NULL;
    nb_rng *rng = &m->priv->rng;
    nb_rng_seed(rng, cfg->seed);
    m->priv->has_rng = true;
    nb_init init = NB_INIT_NORMAL_SCALE(rng, cfg->weight_scale);
    const nb_dtype dt = cfg->dtype;
    nb_module *net = nb_module_sequential(0, NULL);
    int rc = net ? 0 : -1;
    int64_t in = cfg->input_dim;
    for (int l = 1; !rc && l <= cfg->n_hidden; l++) {
        int64_t out = cfg->hidden_dims[l - 1];
        rc = append(net, "fc", l, nb_module_linear(in, out, dt, init));
        if (!rc && cfg->norm == NB_NORM_BATCH) rc = append(net, "bn", l, nb_module_batchnorm1d(out, dt, cfg->fused_bn));
        if (!rc && cfg->norm == NB_NORM_LAYER) rc = append(net, "ln", l, nb_module_layernorm(out, dt, false));
        if (!rc) rc = append(net, "relu", l, nb_module_relu());
        if (!rc && cfg->keep_prob < 1) rc = append(net, "drop", l, nb_module_dropout(cfg->keep_prob, rng));
        in = out;
    }
    if (!rc) rc = append(net, "fc", cfg->n_hidden + 1, nb_module_linear(in, cfg->num_classes, dt, init));
    return finish(m, net, rc);
}

nb_convnet_config nb_convnet_defaults(void)
{
    return (nb_convnet_config){
        .in_c = 3, .in_h = 32, .in_w = 32, .num_filters = 32, .filter_size = 7, .hidden_dim = 100, .num_classes = 10,
        .weight_scale = 1e-3, .reg = 0, .dtype = NB_F32, .fused_conv = true,
    };
}

nb_model *nb_three_layer_convnet(const nb_convnet_config *cfg, nb_rng *rng)
{
    const char *who = "nb_three_layer_convnet";
    if (!cfg) {
        nb_error("%s: NULL config", who);
        return NULL;
    }
    if (!check_positive(who, "in_c", cfg->in_c) || !check_positive(who, "in_h", cfg->in_h) ||
        !check_positive(who, "in_w", cfg->in_w) || !check_positive(who, "num_filters", cfg->num_filters) ||
        !check_positive(who, "hidden_dim", cfg->hidden_dim) || !check_positive(who, "num_classes", cfg->num_classes) ||
        !check_weight_scale(who, cfg->weight_scale) || !check_reg(who, cfg->reg) || !check_dtype(who, cfg->dtype) ||
        !check_rng(who, rng))
        return NULL;
    if (cfg->filter_size < 1 || cfg->filter_size % 2 == 0) {
        nb_error("%s: filter_size must be odd and positive (padding (k-1)/2 keeps the size), got %d", who, cfg->filter_size);
        return NULL;
    }
    if (cfg->in_h < 2 || cfg->in_w < 2) {
        nb_error("%s: the 2x2 max pool needs an image of at least 2x2, got %lldx%lld", who, (long long)cfg->in_h,
                 (long long)cfg->in_w);
        return NULL;
    }
    nb_model *m = model_shell("ThreeLayerConvNet", cfg->reg);
    if (!m) return NULL;
    nb_init init = NB_INIT_NORMAL_SCALE(rng, cfg->weight_scale);
    const nb_dtype dt = cfg->dtype;
    const int k = cfg->filter_size;
    const int64_t F = cfg->num_filters, pooled = F * (cfg->in_h / 2) * (cfg->in_w / 2);
    nb_module *net = nb_module_sequential(0, NULL);
    int rc = net ? 0 : -1;
    if (!rc) rc = append(net, "conv", 1, nb_module_conv2d(cfg->in_c, F, k, 1, (k - 1) / 2, dt, init));
    if (!rc) rc = append(net, "relu", 1, nb_module_relu());
    if (!rc) rc = append(net, "pool", 1, nb_module_max_pool2d(NB_WINDOW(2, 2, 0)));
    if (!rc) rc = append(net, "fc", 2, nb_module_linear(pooled, cfg->hidden_dim, dt, init));   /* flattens x */
    if (!rc) rc = append(net, "relu", 2, nb_module_relu());
    if (!rc) rc = append(net, "fc", 3, nb_module_linear(cfg->hidden_dim, cfg->num_classes, dt, init));
    nb_module_set_fused_conv(net, cfg->fused_conv);
    return finish(m, net, rc);
}

nb_resnet_config nb_resnet_defaults(void)
{
    return (nb_resnet_config){
        .in_c = 3, .in_h = 32, .in_w = 32, .num_classes = 10, .widths = { 16, 32, 64 }, .blocks_per_stage = 2,
        .fused_bn = true, .dtype = NB_F32, .reg = 0, .fused_conv = true,
    };
}

nb_model *nb_resnet(const nb_resnet_config *cfg, nb_rng *rng)
{
    const char *who = "nb_resnet";
    if (!cfg) {
        nb_error("%s: NULL config", who);
        return NULL;
    }
    if (!check_positive(who, "in_c", cfg->in_c) || !check_positive(who, "in_h", cfg->in_h) ||
        !check_positive(who, "in_w", cfg->in_w) || !check_positive(who, "num_classes", cfg->num_classes) ||
        !check_reg(who, cfg->reg) || !check_dtype(who, cfg->dtype) || !check_rng(who, rng))
        return NULL;
    for (int s = 0; s < 3; s++)
        if (cfg->widths[s] <= 0) {
            nb_error("%s: widths[%d] must be positive, got %lld", who, s, (long long)cfg->widths[s]);
            return NULL;
        }
    if (cfg->blocks_per_stage < 1) {
        nb_error("%s: blocks_per_stage must be at least 1, got %d", who, cfg->blocks_per_stage);
        return NULL;
    }
    nb_model *m = model_shell("ResNet", cfg->reg);
    if (!m) return NULL;
    nb_init init = NB_INIT_KAIMING_RELU(rng);
    const nb_dtype dt = cfg->dtype;
    nb_module *net = nb_module_sequential(0, NULL);
    int rc = net ? 0 : -1;
    if (!rc) rc = append(net, "conv", 1, nb_module_conv2d(cfg->in_c, cfg->widths[0], 3, 1, 1, dt, init));
    if (!rc) rc = append(net, "bn", 1, nb_module_batchnorm2d(cfg->widths[0], dt, cfg->fused_bn));
    if (!rc) rc = append(net, "relu", 1, nb_module_relu());
    int64_t in = cfg->widths[0];
    for (int s = 0; !rc && s < 3; s++) {
        nb_module *stage = nb_module_sequential(0, NULL);
        rc = stage ? 0 : -1;
        for (int b = 0; !rc && b < cfg->blocks_per_stage; b++) {
            int stride = s > 0 && b == 0 ? 2 : 1;
            rc = append(stage, "block", b + 1, nb_module_residual(in, cfg->widths[s], stride, dt, init, cfg->fused_bn));
            in = cfg->widths[s];
        }
        if (rc) nb_module_free(stage);
        else rc = append(net, "stage", s + 1, stage);
    }
    if (!rc) rc = append(net, "pool", 0, nb_module_global_avg_pool());
    if (!rc) rc = append(net, "fc", 0, nb_module_linear(in, cfg->num_classes, dt, init));
    nb_module_set_fused_conv(net, cfg->fused_conv);
    return finish(m, net, rc);
}
