/* The layer modules: each owns its parameters and forwards through a functional layer of nn.h. */
#include "../internal.h"

/* ---- Linear: y = x·W + b ---- */

static nb_tensor *linear_forward(nb_module *m, nb_tensor *x)
{
    return nb_affine(x, m->tensors[0], m->tensors[1]);
}

nb_module *nb_module_linear(int64_t in, int64_t out, nb_dtype dt, nb_init init)
{
    if (in <= 0 || out <= 0) {
        nb_error("nb_module_linear: sizes must be positive, got in %lld out %lld", (long long)in, (long long)out);
        return NULL;
    }
    if (dt != NB_F32 && dt != NB_F64) {
        nb_error("nb_module_linear: dtype must be f32 or f64, got %s", nb_dtype_name(dt));
        return NULL;
    }
    nb_module *m = nb_module_new("Linear", linear_forward, 0);
    if (!m) return NULL;
    if (nb_module_add_tensor(m, "weight", nb_module_init_weight("nb_module_linear", init, dt, NB_SHAPE(in, out), in), false) ||
        nb_module_add_tensor(m, "bias", nb_zeros(dt, NB_SHAPE(out)), false)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- Conv2d: cross-correlation with zero padding ---- */

typedef struct { int stride, pad; bool fused; } conv_config;

static nb_tensor *conv2d_forward(nb_module *m, nb_tensor *x)
{
    const conv_config *c = m->config;
    return (c->fused ? nb_conv2d_fused : nb_conv2d)(x, m->tensors[0], m->tensors[1], c->stride, c->pad);
}

void nb_module_set_fused_conv(nb_module *m, bool fused)
{
    if (!m) return;
    if (m->forward == conv2d_forward) ((conv_config *)m->config)->fused = fused;
    for (int i = 0; i < m->n_children; i++) nb_module_set_fused_conv(m->children[i], fused);
}

nb_module *nb_module_conv2d(int64_t in_ch, int64_t out_ch, int k, int stride, int pad, nb_dtype dt, nb_init init)
{
    if (in_ch <= 0 || out_ch <= 0 || k <= 0 || stride <= 0 || pad < 0) {
        nb_error("nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch %lld out_ch %lld k %d "
                 "stride %d pad %d",
                 (long long)in_ch, (long long)out_ch, k, stride, pad);
        return NULL;
    }
    if (dt != NB_F32 && dt != NB_F64) {
        nb_error("nb_module_conv2d: dtype must be f32 or f64, got %s", nb_dtype_name(dt));
        return NULL;
    }
    nb_module *m = nb_module_new("Conv2d", conv2d_forward, sizeof(conv_config));
    if (!m) return NULL;
    *(conv_config *)m->config = (conv_config){ stride, pad, true };
    if (nb_module_add_tensor(m, "weight", nb_module_init_weight("nb_module_conv2d", init, dt, NB_SHAPE(out_ch, in_ch, k, k), in_ch * k * k), false) ||
        nb_module_add_tensor(m, "bias", nb_zeros(dt, NB_SHAPE(out_ch)), false)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- parameter-free layers ---- */

static nb_tensor *relu_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_relu(x);
}

nb_module *nb_module_relu(void) { return nb_module_new("ReLU", relu_forward, 0); }

static nb_tensor *max_pool2d_forward(nb_module *m, nb_tensor *x)
{
    return nb_max_pool2d(x, *(const nb_window *)m->config);
}

nb_module *nb_module_max_pool2d(nb_window w)
{
    if (w.kh <= 0 || w.kw <= 0 || w.stride_h <= 0 || w.stride_w <= 0 || w.pad_h < 0 || w.pad_w < 0 || w.pad_h > w.kh / 2 ||
        w.pad_w > w.kw / 2) {
        nb_error("nb_module_max_pool2d: need a positive window and stride and 0 <= pad <= k/2, got kernel (%d, %d), "
                 "stride (%d, %d), padding (%d, %d)",
                 w.kh, w.kw, w.stride_h, w.stride_w, w.pad_h, w.pad_w);
        return NULL;
    }
    nb_module *m = nb_module_new("MaxPool2d", max_pool2d_forward, sizeof(nb_window));
    if (m) *(nb_window *)m->config = w;
    return m;
}

static nb_tensor *global_avg_pool_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    return nb_global_avg_pool(x);
}

nb_module *nb_module_global_avg_pool(void) { return nb_module_new("GlobalAvgPool", global_avg_pool_forward, 0); }

static nb_tensor *flatten_forward(nb_module *m, nb_tensor *x)
{
    (void)m;
    if (!x) return NULL;
    if (x->ndim < 1) {
        nb_error("Flatten: expected x with a batch axis [N,..], got %s", nb_shp(x));
        return NULL;
    }
    int64_t d = 1;
    for (int i = 1; i < x->ndim; i++) d *= x->shape[i];
    return nb_reshape(x, NB_SHAPE(x->shape[0], d));
}

nb_module *nb_module_flatten(void) { return nb_module_new("Flatten", flatten_forward, 0); }

/* ---- batchnorm ---- */

#define BN_MOMENTUM 0.9
#define NORM_EPS 1e-5

typedef struct { bool fused, spatial; double momentum, eps; } bn_config;

/* running = momentum·running + (1 - momentum)·batch, values only (as nb_batchnorm does) */
static int update_running(nb_tensor *running, nb_tensor *batch, double momentum)
{
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *next = nb_add(nb_mul_scalar(running, momentum), nb_mul_scalar(batch, 1.0 - momentum));
    int rc = next ? nb_copy_into(running, next) : -1;
    nb_set_grad_enabled(prev);
    return rc;
}

/* train mode through the fused kernel: bn(x), or with relu relu(bn(x)), or with skip too relu(bn(x) + skip);
 * x is [N,C] or, when spatial, [N,C,H,W] */
static nb_tensor *bn_fused_train(nb_module *m, const bn_config *c, nb_tensor *x, bool relu, nb_tensor *skip)
{
    const char *who = c->spatial ? "BatchNorm2d" : "BatchNorm1d";
    nb_tensor *gamma = m->tensors[0], *beta = m->tensors[1];
    int64_t C = gamma->shape[0];
    int want = c->spatial ? 4 : 2;
    if (x->ndim != want || x->shape[1] != C) {
        nb_error("%s: expected x %s with %lld %s, got %s", who, c->spatial ? "[N,C,H,W]" : "[N,D]", (long long)C,
                 c->spatial ? "channels" : "features", nb_shp(x));
        return NULL;
    }
    if (nb_numel(x) == 0) {
        nb_error("%s: empty batch %s in training mode", who, nb_shp(x));
        return NULL;
    }
    nb_tensor *mean = NULL, *var = NULL;
    nb_tensor *out = skip ? nb_batchnorm_add_relu_fused(x, gamma, beta, skip, c->eps, &mean, &var)
                     : (relu ? nb_batchnorm_relu_fused : nb_batchnorm_fused)(x, gamma, beta, c->eps, &mean, &var);
    if (!out) return NULL;
    if (update_running(m->tensors[2], mean, c->momentum) || update_running(m->tensors[3], var, c->momentum)) return NULL;
    return out;
}

static nb_tensor *batchnorm_forward(nb_module *m, nb_tensor *x)
{
    const bn_config *c = m->config;
    if (!x) return NULL;
    if (m->training && c->fused) return bn_fused_train(m, c, x, false, NULL);
    nb_norm_state st = { m->tensors[2], m->tensors[3], c->momentum, c->eps };
    return c->spatial ? nb_spatial_batchnorm(x, m->tensors[0], m->tensors[1], &st, m->training)
                      : nb_batchnorm(x, m->tensors[0], m->tensors[1], &st, m->training);
}

/* weight (ones) and bias (zeros) parameters of n features, as norms have them */
static int add_affine(nb_module *m, int64_t n, nb_dtype dt)
{
    return nb_module_add_tensor(m, "weight", nb_ones(dt, NB_SHAPE(n)), false) ||
                   nb_module_add_tensor(m, "bias", nb_zeros(dt, NB_SHAPE(n)), false)
               ? -1
               : 0;
}

/* ---- relu after a module: one fused kernel where the module has one ---- */

static bool is_fused_conv(const nb_module *m) { return m->forward == conv2d_forward && ((const conv_config *)m->config)->fused; }

static bool is_fused_bn_training(const nb_module *m)
{
    return m->forward == batchnorm_forward && m->training && ((const bn_config *)m->config)->fused;
}

nb_tensor *nb_module_forward_relu(nb_module *m, nb_tensor *x)
{
    if (!x || !m) return nb_relu(nb_module_forward(m, x));
    if (is_fused_conv(m)) {
        const conv_config *c = m->config;
        return nb_conv2d_relu_fused(x, m->tensors[0], m->tensors[1], c->stride, c->pad);
    }
    if (is_fused_bn_training(m)) return bn_fused_train(m, m->config, x, true, NULL);
    return nb_relu(nb_module_forward(m, x));
}

nb_tensor *nb_module_forward_add_relu(nb_module *m, nb_tensor *x, nb_tensor *skip)
{
    if (x && m && skip && is_fused_bn_training(m)) return bn_fused_train(m, m->config, x, true, skip);
    return nb_relu(nb_add(nb_module_forward(m, x), skip));
}

static bool is_pool_2x2(const nb_module *m)
{
    const nb_window two = NB_WINDOW(2, 2, 0);
    return m->forward == max_pool2d_forward && !memcmp(m->config, &two, sizeof two);
}

int nb_module_forward_fused(nb_module *const *ch, int n, nb_tensor **x)
{
    if (n >= 3 && ch[0] && ch[1] && ch[2] && is_fused_conv(ch[0]) && ch[1]->forward == relu_forward && is_pool_2x2(ch[2])) {
        const conv_config *c = ch[0]->config;
        *x = nb_conv2d_relu_pool_fused(*x, ch[0]->tensors[0], ch[0]->tensors[1], c->stride, c->pad);
        return 3;
    }
    if (n >= 2 && ch[1] && ch[1]->forward == relu_forward) {
        *x = nb_module_forward_relu(ch[0], *x);
        return 2;
    }
    *x = nb_module_forward(ch[0], *x);
    return 1;
}

static bool check_float_dtype(const char *who, nb_dtype dt)
{
    if (dt == NB_F32 || dt == NB_F64) return true;
    nb_error("%s: dtype must be f32 or f64, got %s", who, nb_dtype_name(dt));
    return false;
}

static nb_module *batchnorm(const char *who, const char *kind, int64_t n, nb_dtype dt, bool fused, bool spatial)
{
    if (n <= 0) {
        nb_error("%s: %s must be positive, got %lld", who, spatial ? "channels" : "features", (long long)n);
        return NULL;
    }
    if (!check_float_dtype(who, dt)) return NULL;
    nb_module *m = nb_module_new(kind, batchnorm_forward, sizeof(bn_config));
    if (!m) return NULL;
    *(bn_config *)m->config = (bn_config){ fused, spatial, BN_MOMENTUM, NORM_EPS };
    if (add_affine(m, n, dt) || nb_module_add_tensor(m, "running_mean", nb_zeros(dt, NB_SHAPE(n)), true) ||
        nb_module_add_tensor(m, "running_var", nb_zeros(dt, NB_SHAPE(n)), true)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

nb_module *nb_module_batchnorm1d(int64_t features, nb_dtype dt, bool fused)
{
    return batchnorm("nb_module_batchnorm1d", "BatchNorm1d", features, dt, fused, false);
}

nb_module *nb_module_batchnorm2d(int64_t channels, nb_dtype dt, bool fused)
{
    return batchnorm("nb_module_batchnorm2d", "BatchNorm2d", channels, dt, fused, true);
}

/* ---- layernorm and groupnorm ---- */

typedef struct { int groups; double eps; bool fused; } norm_config;

static nb_tensor *layernorm_forward(nb_module *m, nb_tensor *x)
{
    const norm_config *c = m->config;
    return (c->fused ? nb_layernorm_fused : nb_layernorm)(x, m->tensors[0], m->tensors[1], c->eps);
}

nb_module *nb_module_layernorm(int64_t features, nb_dtype dt, bool fused)
{
    if (features <= 0) {
        nb_error("nb_module_layernorm: features must be positive, got %lld", (long long)features);
        return NULL;
    }
    if (!check_float_dtype("nb_module_layernorm", dt)) return NULL;
    nb_module *m = nb_module_new("LayerNorm", layernorm_forward, sizeof(norm_config));
    if (!m) return NULL;
    *(norm_config *)m->config = (norm_config){ 0, NORM_EPS, fused };
    if (add_affine(m, features, dt)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

static nb_tensor *groupnorm_forward(nb_module *m, nb_tensor *x)
{
    const norm_config *c = m->config;
    return nb_groupnorm(x, m->tensors[0], m->tensors[1], c->groups, c->eps);
}

nb_module *nb_module_groupnorm(int groups, int64_t channels, nb_dtype dt)
{
    if (groups <= 0 || channels <= 0 || channels % groups != 0) {
        nb_error("nb_module_groupnorm: groups %d must be positive and divide the %lld channels", groups, (long long)channels);
        return NULL;
    }
    if (!check_float_dtype("nb_module_groupnorm", dt)) return NULL;
    nb_module *m = nb_module_new("GroupNorm", groupnorm_forward, sizeof(norm_config));
    if (!m) return NULL;
    *(norm_config *)m->config = (norm_config){ groups, NORM_EPS, false };
    if (add_affine(m, channels, dt)) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- dropout ---- */

typedef struct { double keep_prob; nb_rng *rng; } dropout_config;

static nb_tensor *dropout_forward(nb_module *m, nb_tensor *x)
{
    const dropout_config *c = m->config;
    return nb_dropout(x, c->keep_prob, c->rng, m->training);
}

nb_module *nb_module_dropout(double keep_prob, nb_rng *rng)
{
    if (!(keep_prob > 0 && keep_prob <= 1)) {
        nb_error("nb_module_dropout: keep_prob %g must be in (0, 1]", keep_prob);
        return NULL;
    }
    if (!rng) {
        nb_error("nb_module_dropout: NULL generator");
        return NULL;
    }
    nb_module *m = nb_module_new("Dropout", dropout_forward, sizeof(dropout_config));
    if (m) *(dropout_config *)m->config = (dropout_config){ keep_prob, rng };
    return m;
}
