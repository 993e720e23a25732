/* Models: cs231n C.8.3 TwoLayerNet scores and losses through the model API, initialisation, gradient
 * checks of every net (with and without reg, each normalisation, dropout with a fixed seed), eval-mode
 * scores, accuracy in batches, the regularised weights, names and config errors. */
#include "nbtest.h"

#include <stdio.h>

#define REL_BAR 1e-6   /* worst cs231n relative error allowed for a model's gradients (f64) */

/* ---- helpers ---- */

static void set_param(nb_model *m, const char *name, nb_tensor *value)
{
    nb_tensor *p = nb_module_find(m->net, name);
    ck_assert_msg(p != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_copy_into(p, value), 0);
}

static nb_tensor *labels(int n, const int64_t *values) { return nb_from_data(NB_I64, NB_SHAPE(n), values); }

/* random labels in [0, C) */
static nb_tensor *random_labels(int64_t n, int64_t C, nb_rng *rng)
{
    nb_tensor *y = nb_empty(NB_I64, NB_SHAPE(n));
    for (int64_t i = 0; i < n; i++) nb_set(y, i, (double)(nb_rng_next(rng) % (uint64_t)C));
    return y;
}

/* the parameters of a model (not its buffers), in walk order */
typedef struct { int n; nb_tensor *t[64]; } param_list;

static int collect_param(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    param_list *p = ctx;
    if (is_buffer) return 0;
    ck_assert_int_lt(p->n, 64);
    p->t[p->n++] = t;
    return 0;
}

static param_list params_of(nb_model *m)
{
    param_list p = { 0 };
    ck_assert_int_eq(nb_module_visit(m->net, collect_param, &p), 0);
    return p;
}

/* Biases of a Linear or Conv2d that feeds a BatchNorm directly (the next sibling): the batch mean
 * takes them out again, so their gradient is exactly 0 and the cs231n relative error of an exact 0
 * is only rounding noise over its 1e-8 floor. They are checked in absolute terms instead. */
static void cancelled_biases(nb_module *m, param_list *out)
{
    for (int i = 0; i < m->n_children; i++) {
        nb_module *c = m->children[i];
        bool affine = !strcmp(c->kind, "Linear") || !strcmp(c->kind, "Conv2d");
        if (affine && i + 1 < m->n_children && !strncmp(m->children[i + 1]->kind, "BatchNorm", 9))
            out->t[out->n++] = nb_module_tensor(c, "bias");
        cancelled_biases(c, out);
    }
}

static bool in_list(const param_list *l, const nb_tensor *t)
{
    for (int i = 0; i < l->n; i++)
        if (l->t[i] == t) return true;
    return false;
}

/* moves the 1-D parameters (biases, norm gamma/beta) off their initial 0s and 1s: the check runs at a
 * generic point, not with relus exactly at their kink (a dropped-out row times zero biases) */
static void jitter_vectors(nb_model *m, nb_rng *rng)
{
    param_list p = params_of(m);
    for (int i = 0; i < p.n; i++)
        if (p.t[i]->ndim == 1)
            for (int64_t k = 0; k < nb_numel(p.t[i]); k++) nb_set(p.t[i], k, nb_get(p.t[i], k) + nb_rng_uniform(rng) * 0.2 - 0.1);
}

/* the loss the model trains on, as a function of its parameters (perturbed in place by the check);
 * the dropout masks are the same at every evaluation: the model's generator is reseeded first */
typedef struct { nb_model *m; nb_tensor *x, *y; } loss_case;

static nb_tensor *model_loss_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n, (void)in;
    loss_case *c = ctx;
    if (nb_model_seed(c->m, 1234) < 0) return NULL;   /* 0: no generator, nothing to reseed */
    return nb_model_loss_expr(c->m, c->x, c->y);
}

/* gradcheck of the model's loss with respect to all its parameters (step eps, 0: the default);
 * prints the worst errors */
static void check_model_gradients(const char *label, nb_model *m, nb_tensor *x, nb_tensor *y, bool kinks, double eps)
{
    loss_case c = { m, x, y };
    nb_clear_error();
    param_list all = params_of(m), zero = { 0 }, rest = { 0 };
    cancelled_biases(m->net, &zero);
    for (int i = 0; i < all.n; i++)
        if (!in_list(&zero, all.t[i])) rest.t[rest.n++] = all.t[i];
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.skip_kinks = kinks;
    if (eps > 0) o.eps = eps;
    nb_gradcheck_result r;
    int rc = nb_gradcheck(model_loss_fn, &c, rest.n, rest.t, &o, &r);
    printf("gradcheck %-44s reg %-4g params %2d checked %5lld skipped %3lld worst rel error %.2e", label, m->reg, rest.n,
           (long long)r.checked, (long long)r.skipped, r.max_rel_error);
    fflush(stdout);   /* a failing check ends the forked test without flushing */
    ck_assert_msg(rc == 1, "%s: gradcheck failed (rc %d): %s %s", label, rc, r.first_failure, nb_last_error());
    ck_assert_msg(r.max_rel_error <= REL_BAR, "%s: relative error %g > %g", label, r.max_rel_error, REL_BAR);
    ck_assert_int_gt(r.checked, 0);
    ck_assert_msg(r.skipped * 10 < r.checked, "%s: skipped %lld of %lld", label, (long long)r.skipped, (long long)r.checked);
    if (zero.n > 0) {
        /* analytic: 0 up to rounding; numeric: 0 up to the difference's noise */
        nb_model_seed(m, 1234);
        ck_assert_ptr_nonnull(nb_model_loss(m, x, y));
        double worst = 0;
        for (int i = 0; i < zero.n; i++)
            for (int64_t k = 0; k < nb_numel(zero.t[i]); k++) worst = fmax(worst, fabs(nb_get(zero.t[i]->grad, k)));
        rc = nb_gradcheck(model_loss_fn, &c, zero.n, zero.t, &o, &r);
        printf("; %d biases before batchnorm: |analytic| <= %.1e, |analytic - numeric| <= %.1e", zero.n, worst,
               r.max_abs_error);
        fflush(stdout);
        ck_assert_msg(rc == 1, "%s: gradcheck of the biases before batchnorm failed: %s", label, r.first_failure);
        ck_assert_msg(worst <= 1e-12, "%s: a bias before batchnorm has gradient %g", label, worst);
        ck_assert_msg(r.max_abs_error <= 1e-9, "%s: numeric gradient of a bias before batchnorm off by %g", label,
                      r.max_abs_error);
    }
    printf("\n");
    fflush(stdout);
}

/* ---- cs231n C.8.3 ---- */

typedef struct { nb_model *m; nb_tensor *x, *y; } cs231n_case;

static cs231n_case cs231n_two_layer(void)
{
    enum { N = 3, D = 5, H = 50, C = 7 };
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    cs231n_case t;
    t.m = nb_two_layer_net(D, H, C, 1e-3, 0.0, NB_F64, &rng);
    ck_assert_msg(t.m != NULL, "%s", nb_last_error());
    set_param(t.m, "fc1.weight", nbt_linspace(-0.7, 0.3, NB_SHAPE(D, H)));
    set_param(t.m, "fc1.bias", nbt_linspace(-0.1, 0.9, NB_SHAPE(H)));
    set_param(t.m, "fc2.weight", nbt_linspace(-0.3, 0.4, NB_SHAPE(H, C)));
    set_param(t.m, "fc2.bias", nbt_linspace(-0.9, 0.1, NB_SHAPE(C)));
    t.x = nb_transpose(nbt_linspace(-5.5, 4.5, NB_SHAPE(D, N)), 0, 1);   /* reshape(D,N).T */
    t.y = labels(N, (const int64_t[]){ 0, 5, 1 });
    return t;
}

START_TEST(cs231n_two_layer_scores)
{
    cs231n_case t = cs231n_two_layer();
    nb_tensor *scores = nb_model_scores(t.m, t.x);
    nbt_assert_shape(scores, 3, 7);
    ck_assert_ptr_null(scores->node);   /* no graph */
    double correct[21] = {
        11.53165108, 12.2917344,  13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096,
        12.05769098, 12.74614105, 13.43459113, 14.1230412,  14.81149128, 15.49994135, 16.18839143,
        12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319,
    };
    double total = 0;
    for (int i = 0; i < 21; i++) total += fabs(nb_get(scores, i) - correct[i]);
    printf("cs231n C.8.3 model scores: sum |scores - correct_scores| = %.3g\n", total);
    ck_assert_msg(total < 1e-6, "sum abs diff %g", total);
    ck_assert(!t.m->net->training);
    nb_model_free(t.m);
}
END_TEST

START_TEST(cs231n_two_layer_losses)
{
    cs231n_case t = cs231n_two_layer();
    nb_tensor *loss = nb_model_loss(t.m, t.x, t.y);
    ck_assert_msg(loss != NULL, "%s", nb_last_error());
    ck_assert_int_eq(loss->ndim, 0);
    ck_assert(t.m->net->training);
    double loss0 = nb_item(loss);
    nb_tensor *w1 = nb_module_find(t.m->net, "fc1.weight");
    ck_assert_ptr_nonnull(w1->grad);
    double g0 = nb_get(w1->grad, 7);

    t.m->reg = 1.0;
    double loss1 = nb_item(nb_model_loss(t.m, t.x, t.y));
    printf("cs231n C.8.3 model loss reg=0: %.17g (error %.3g); reg=1: %.17g (error %.3g)\n", loss0,
           fabs(loss0 - 3.4702243555953927), loss1, fabs(loss1 - 26.594842695238583));
    ck_assert_msg(fabs(loss0 - 3.4702243555953927) < 1e-10, "loss %.17g", loss0);
    ck_assert_msg(fabs(loss1 - 26.594842695238583) < 1e-10, "loss %.17g", loss1);
    /* grads were zeroed before the second backward: dW = dW_data + reg·W, not accumulated */
    ck_assert_double_eq_tol(nb_get(w1->grad, 7), g0 + 1.0 * nb_get(w1, 7), 1e-12);
    /* biases are not regularised */
    nb_tensor *b2 = nb_module_find(t.m->net, "fc2.bias");
    double gb = nb_get(b2->grad, 3);
    t.m->reg = 0;
    nb_model_loss(t.m, t.x, t.y);
    ck_assert_double_eq_tol(nb_get(b2->grad, 3), gb, 1e-15);
    /* the expression alone: same value, no backward */
    nb_module_zero_grad(t.m->net);
    nb_tensor *e = nb_model_loss_expr(t.m, t.x, t.y);
    ck_assert_double_eq_tol(nb_item(e), 3.4702243555953927, 1e-10);
    ck_assert_ptr_nonnull(e->node);
    ck_assert_double_eq(nb_get(b2->grad, 3), 0);
    nb_model_free(t.m);
}
END_TEST

START_TEST(two_layer_init)
{
    enum { N = 3, D = 5, H = 50, C = 7 };
    const double std = 1e-3;
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_model *m = nb_two_layer_net(D, H, C, std, 0.0, NB_F32, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_str_eq(m->name, "TwoLayerNet");
    ck_assert_int_eq(m->net->n_children, 3);
    ck_assert_str_eq(m->net->child_names[0], "fc1");
    ck_assert_str_eq(m->net->child_names[1], "relu1");
    ck_assert_str_eq(m->net->child_names[2], "fc2");
    const char *weights[2] = { "fc1.weight", "fc2.weight" }, *biases[2] = { "fc1.bias", "fc2.bias" };
    for (int k = 0; k < 2; k++) {
        nb_tensor *w = nb_module_find(m->net, weights[k]), *b = nb_module_find(m->net, biases[k]);
        ck_assert_int_eq(w->dtype, NB_F32);
        int64_t n = nb_numel(w);
        double mean = 0, sq = 0;
        for (int64_t i = 0; i < n; i++) mean += nb_get(w, i);
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) sq += (nb_get(w, i) - mean) * (nb_get(w, i) - mean);
        double sd = sqrt(sq / (double)n);   /* np.std */
        printf("TwoLayerNet init: %s std %.4g (want %g within 10%%)\n", weights[k], sd, std);
        ck_assert_msg(fabs(sd - std) < std / 10, "%s std %g", weights[k], sd);
        for (int64_t i = 0; i < nb_numel(b); i++) ck_assert_double_eq(nb_get(b, i), 0);
    }
    nbt_assert_shape(nb_module_find(m->net, "fc1.weight"), D, H);
    nbt_assert_shape(nb_module_find(m->net, "fc2.weight"), H, C);
    ck_assert_int_eq(nb_module_numel(m->net, true), D * H + H + H * C + C);
    nb_model_free(m);
}
END_TEST

/* ---- gradients ---- */

START_TEST(two_layer_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_model *m = nb_two_layer_net(5, 6, 4, 0.5, 0.0, NB_F64, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    jitter_vectors(m, &rng);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(3, 5), &rng, 1.0), *y = random_labels(3, 4, &rng);
    check_model_gradients("TwoLayerNet", m, x, y, false, 0);
    m->reg = 0.7;
    check_model_gradients("TwoLayerNet", m, x, y, false, 0);
    nb_model_free(m);
}
END_TEST

static const char *norm_name(nb_norm_kind k) { return k == NB_NORM_BATCH ? "batch" : k == NB_NORM_LAYER ? "layer" : "none"; }

/* FullyConnectedNet with 2 hidden layers, each normalisation, with and without dropout, reg 0 and 3.14 */
static void fc_gradients(nb_norm_kind norm, bool fused)
{
    static const int64_t hidden[2] = { 8, 6 };
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(4, 7), &rng, 1.0), *y = random_labels(4, 3, &rng);
    for (int dropout = 0; dropout < 2; dropout++) {
        nb_fc_config cfg = nb_fc_defaults();
        cfg.n_hidden = 2;
        cfg.hidden_dims = hidden;
        cfg.input_dim = 7;
        cfg.num_classes = 3;
        cfg.norm = norm;
        cfg.fused_bn = fused;
        cfg.keep_prob = dropout ? 0.6 : 1;
        cfg.weight_scale = 0.5;
        cfg.dtype = NB_F64;
        cfg.seed = 5;
        nb_model *m = nb_fully_connected_net(&cfg);
        ck_assert_msg(m != NULL, "%s", nb_last_error());
        jitter_vectors(m, &rng);
        char label[64];
        snprintf(label, sizeof label, "FullyConnectedNet norm %s%s%s", norm_name(norm), fused ? " (fused)" : "",
                 dropout ? " dropout" : "");
        for (int r = 0; r < 2; r++) {
            m->reg = r ? 3.14 : 0;
            check_model_gradients(label, m, x, y, false, 0);
        }
        nb_model_free(m);
    }
}

START_TEST(fc_gradients_none) { fc_gradients(NB_NORM_NONE, false); }
END_TEST
START_TEST(fc_gradients_batch) { fc_gradients(NB_NORM_BATCH, false); }
END_TEST
START_TEST(fc_gradients_batch_fused) { fc_gradients(NB_NORM_BATCH, true); }
END_TEST
START_TEST(fc_gradients_layer) { fc_gradients(NB_NORM_LAYER, false); }
END_TEST

START_TEST(convnet_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    nb_convnet_config cfg = nb_convnet_defaults();
    cfg.in_c = 3, cfg.in_h = 8, cfg.in_w = 8;
    cfg.num_filters = 3, cfg.filter_size = 3, cfg.hidden_dim = 7, cfg.num_classes = 4;
    cfg.weight_scale = 0.3;
    cfg.dtype = NB_F64;
    nb_model *m = nb_three_layer_convnet(&cfg, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    jitter_vectors(m, &rng);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 8, 8), &rng, 1.0), *y = random_labels(2, 4, &rng);
    check_model_gradients("ThreeLayerConvNet (max-pool kinks skipped)", m, x, y, true, 0);
    m->reg = 0.5;
    check_model_gradients("ThreeLayerConvNet (max-pool kinks skipped)", m, x, y, true, 0);
    nb_model_free(m);
}
END_TEST

static void resnet_gradients(bool fused)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_resnet_config cfg = nb_resnet_defaults();
    cfg.in_c = 1, cfg.in_h = 8, cfg.in_w = 8, cfg.num_classes = 3;
    cfg.widths[0] = 2, cfg.widths[1] = 3, cfg.widths[2] = 4;
    cfg.blocks_per_stage = 1;
    cfg.fused_bn = fused;
    cfg.dtype = NB_F64;
    nb_model *m = nb_resnet(&cfg, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    jitter_vectors(m, &rng);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(3, 1, 8, 8), &rng, 1.0), *y = random_labels(3, 3, &rng);
    const char *label = fused ? "ResNet (fused bn)" : "ResNet";
    /* a step of 1e-5: perturbing an early weight moves the batch stats and so every later relu input;
     * with the default 1e-4 some of those cross 0 within the difference's reach */
    check_model_gradients(label, m, x, y, false, 1e-5);
    m->reg = 0.05;   /* its 0.5·reg·Σ W² is already ~1.5: a larger loss only adds rounding noise */
    check_model_gradients(label, m, x, y, false, 1e-5);
    nb_model_free(m);
}

START_TEST(resnet_gradients_composed) { resnet_gradients(false); }
END_TEST
START_TEST(resnet_gradients_fused) { resnet_gradients(true); }
END_TEST

/* nb_backward hands the memory of dead intermediate gradients to later ones (only plain backward;
 * nb_grad keeps every gradient): the leaf gradients are the same bits, with less scope memory */
typedef struct { int n; nb_tensor *t[64]; } tensor_list;

static int collect_params(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    tensor_list *l = ctx;
    if (!is_buffer && l->n < 64) l->t[l->n++] = t;
    return 0;
}

START_TEST(backward_reuses_dead_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_resnet_config cfg = nb_resnet_defaults();   /* 16 channels of 32x32 at batch 8: 0.5 MiB tensors */
    nb_model *m = nb_resnet(&cfg, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    tensor_list params = { 0 };
    nb_module_visit(m->net, collect_params, &params);
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(8, 3, 32, 32), &rng, 1.0), *y = random_labels(8, 10, &rng);
    nb_scope *scope = nb_scope_new();
    nb_scope_push(scope);
    size_t used[2];
    nb_tensor *grads[64];
    for (int k = 0; k < 2; k++) {   /* k = 0: nb_grad, 1: nb_backward */
        nb_scope_reset(scope);
        nb_module_zero_grad(m->net);
        nb_tensor *loss = nb_softmax_cross_entropy(nb_module_forward(m->net, x), y);
        size_t forward = nb_scope_used(scope);
        if (k == 0) ck_assert_int_eq(nb_grad(loss, NULL, params.n, params.t, grads, false), 0);
        else ck_assert_int_eq(nb_backward(loss), 0);
        used[k] = nb_scope_used(scope) - forward;
        if (k == 0)
            for (int i = 0; i < params.n; i++) grads[i] = nb_copy(grads[i]);   /* survive the reset */
    }
    nb_scope_pop();
    for (int i = 0; i < params.n; i++) nbt_assert_same_bits(grads[i], params.t[i]->grad, "gradient of parameter", i);
    printf("backward scope memory: nb_grad %.1f MiB, nb_backward %.1f MiB\n", used[0] / 1048576.0, used[1] / 1048576.0);
    ck_assert_msg(used[1] < used[0] * 3 / 4, "nb_backward used %zu bytes, nb_grad %zu", used[1], used[0]);
    nb_scope_free(scope);
    nb_model_free(m);
}
END_TEST

/* ---- behaviour ---- */

START_TEST(eval_scores_ignore_dropout)
{
    static const int64_t hidden[2] = { 8, 8 };
    nb_fc_config cfg = nb_fc_defaults();
    cfg.n_hidden = 2, cfg.hidden_dims = hidden, cfg.input_dim = 6, cfg.num_classes = 4;
    cfg.keep_prob = 0.5, cfg.dtype = NB_F64, cfg.seed = 11, cfg.weight_scale = 0.5;
    nb_model *drop = nb_fully_connected_net(&cfg);
    cfg.keep_prob = 1;
    nb_model *plain = nb_fully_connected_net(&cfg);   /* same seed: the same weights */
    ck_assert_msg(drop && plain, "%s", nb_last_error());
    ck_assert_str_eq(drop->net->child_names[2], "drop1");
    ck_assert_int_eq(plain->net->n_children, 5);   /* fc1 relu1 fc2 relu2 fc3 */
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(5, 6), &rng, 1.0), *y = random_labels(5, 4, &rng);
    nb_tensor *a = nb_model_scores(drop, x);
    ck_assert_int_eq(nb_model_seed(drop, 99), 1);
    nb_tensor *b = nb_model_scores(drop, x);
    nb_tensor *c = nb_model_scores(plain, x);
    for (int64_t i = 0; i < nb_numel(a); i++) {
        ck_assert_double_eq(nb_get(a, i), nb_get(b, i));
        ck_assert_double_eq(nb_get(a, i), nb_get(c, i));
    }
    /* training does depend on the masks, reproducibly from the seed */
    nb_model_seed(drop, 1);
    double l1 = nb_item(nb_model_loss(drop, x, y));
    nb_model_seed(drop, 2);
    double l2 = nb_item(nb_model_loss(drop, x, y));
    nb_model_seed(drop, 1);
    double l3 = nb_item(nb_model_loss(drop, x, y));
    ck_assert(l1 != l2);
    ck_assert_double_eq(l1, l3);
    ck_assert(l1 != nb_item(nb_model_loss(plain, x, y)));
    nb_model_free(drop);
    nb_model_free(plain);
}
END_TEST

START_TEST(accuracy_in_batches)
{
    enum { N = 10, C = 4 };
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    nb_model *m = nb_two_layer_net(6, 5, C, 0.5, 0, NB_F32, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(N, 6), &rng, 1.0);
    nb_tensor *pred = nb_argmax(nb_model_scores(m, x), 1, false);
    /* 7 labels right, 3 wrong */
    nb_tensor *y = nb_empty(NB_I64, NB_SHAPE(N));
    for (int i = 0; i < N; i++) nb_set(y, i, i % 3 == 1 ? ((int64_t)nb_get(pred, i) + 1) % C : nb_get(pred, i));
    size_t used = nb_scope_used(NULL);
    int64_t sizes[5] = { 1, 3, 4, 10, 64 };
    for (int k = 0; k < 5; k++) {
        double acc = -1;
        ck_assert_int_eq(nb_model_accuracy(m, x, y, sizes[k], &acc), 0);
        ck_assert_double_eq_tol(acc, 0.7, 1e-15);
    }
    ck_assert_uint_eq(nb_scope_used(NULL), used);   /* batches live in the function's own scope */
    ck_assert(!m->net->training);
    double acc = -1;
    ck_assert_int_eq(nb_model_accuracy(m, x, y, 0, &acc), -1);
    ck_assert_str_eq(nb_last_error(), "nb_model_accuracy: batch_size must be positive, got 0");
    ck_assert_int_eq(nb_model_accuracy(m, x, nb_zeros(NB_I64, NB_SHAPE(9)), 4, &acc), -1);
    ck_assert_str_eq(nb_last_error(), "nb_model_accuracy: labels must be i64 [10] to match x [10,6], got i64 [9]");
    ck_assert_int_eq(nb_model_accuracy(m, x, nb_zeros(NB_F32, NB_SHAPE(10)), 4, &acc), -1);
    ck_assert_str_eq(nb_last_error(), "nb_model_accuracy: labels must be i64 [10] to match x [10,6], got f32 [10]");
    ck_assert_int_eq(nb_model_accuracy(m, nb_zeros(NB_F32, NB_SHAPE(0, 6)), nb_zeros(NB_I64, NB_SHAPE(0)), 4, &acc), -1);
    ck_assert_str_eq(nb_last_error(), "nb_model_accuracy: x [0,6] has no samples");
    ck_assert_double_eq(acc, -1);   /* untouched on failure */
    nb_model_free(m);
}
END_TEST

START_TEST(regularised_weights)
{
    nb_rng rng;
    nb_rng_seed(&rng, 14);
    nb_tensor *w[16];
    /* FullyConnectedNet with batchnorm: the three fc weights, not the bn weight (gamma) */
    static const int64_t hidden[2] = { 4, 4 };
    nb_fc_config fc = nb_fc_defaults();
    fc.n_hidden = 2, fc.hidden_dims = hidden, fc.input_dim = 3, fc.num_classes = 2, fc.norm = NB_NORM_BATCH;
    nb_model *m = nb_fully_connected_net(&fc);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_model_reg_weights(m, 16, w), 3);
    ck_assert_ptr_eq(w[0], nb_module_find(m->net, "fc1.weight"));
    ck_assert_ptr_eq(w[1], nb_module_find(m->net, "fc2.weight"));
    ck_assert_ptr_eq(w[2], nb_module_find(m->net, "fc3.weight"));
    ck_assert_ptr_nonnull(nb_module_find(m->net, "bn2.running_var"));
    ck_assert_int_eq(nb_model_reg_weights(m, 0, NULL), 3);
    /* the reg term is 0.5·reg·Σ W² over those */
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(4, 3), &rng, 1.0), *y = random_labels(4, 2, &rng);
    double data = nb_item(nb_model_loss(m, x, y));
    m->reg = 0.25;
    double total = nb_item(nb_model_loss(m, x, y)), sq = 0;
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < nb_numel(w[k]); i++) sq += nb_get(w[k], i) * nb_get(w[k], i);
    ck_assert_double_eq_tol(total - data, 0.5 * 0.25 * sq, 1e-6);
    /* gamma's gradient has no reg term */
    nb_tensor *gamma = nb_module_find(m->net, "bn1.weight");
    double g = nb_get(gamma->grad, 0);
    m->reg = 0;
    nb_model_loss(m, x, y);
    ck_assert_double_eq_tol(nb_get(gamma->grad, 0), g, 1e-6);
    nb_model_free(m);

    /* tiny ResNet: stem conv, 2 + 3 + 3 block convs (projections in stages 2 and 3), fc */
    nb_resnet_config rc = nb_resnet_defaults();
    rc.in_c = 1, rc.in_h = 8, rc.in_w = 8, rc.widths[0] = 2, rc.widths[1] = 3, rc.widths[2] = 4, rc.blocks_per_stage = 1;
    m = nb_resnet(&rc, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_model_reg_weights(m, 16, w), 10);
    ck_assert_ptr_eq(w[0], nb_module_find(m->net, "conv1.weight"));
    ck_assert_ptr_eq(w[5], nb_module_find(m->net, "stage2.block1.shortcut.conv.weight"));
    ck_assert_ptr_eq(w[9], nb_module_find(m->net, "fc.weight"));
    ck_assert_int_eq(nb_model_reg_weights(m, 2, w), 10);   /* the count, even when more than fit */
    nb_model_free(m);
}
END_TEST

START_TEST(names_and_shapes)
{
    nb_rng rng;
    nb_rng_seed(&rng, 15);
    static const int64_t hidden[3] = { 5, 4, 3 };
    nb_fc_config fc = nb_fc_defaults();
    fc.n_hidden = 3, fc.hidden_dims = hidden, fc.input_dim = 2 * 3 * 2, fc.num_classes = 6, fc.norm = NB_NORM_LAYER;
    fc.keep_prob = 0.9;
    nb_model *m = nb_fully_connected_net(&fc);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    const char *expect[13] = { "fc1", "ln1", "relu1", "drop1", "fc2", "ln2", "relu2", "drop2", "fc3", "ln3", "relu3", "drop3", "fc4" };
    ck_assert_int_eq(m->net->n_children, 13);
    for (int i = 0; i < 13; i++) ck_assert_str_eq(m->net->child_names[i], expect[i]);
    nbt_assert_shape(nb_module_find(m->net, "ln2.weight"), 4);
    nbt_assert_shape(nb_module_find(m->net, "fc4.weight"), 3, 6);
    /* affine flattens: x [N,2,3,2] */
    nbt_assert_shape(nb_model_scores(m, nb_zeros(NB_F32, NB_SHAPE(2, 2, 3, 2))), 2, 6);
    nb_model_free(m);

    /* no hidden layer: a softmax classifier */
    fc = nb_fc_defaults();
    fc.input_dim = 4;
    m = nb_fully_connected_net(&fc);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_int_eq(m->net->n_children, 1);
    nbt_assert_shape(nb_module_find(m->net, "fc1.weight"), 4, 10);
    nb_model_free(m);

    /* the cs231n-sized ThreeLayerConvNet on 3x32x32 */
    nb_convnet_config cc = nb_convnet_defaults();
    m = nb_three_layer_convnet(&cc, &rng);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_str_eq(m->name, "ThreeLayerConvNet");
    nbt_assert_shape(nb_module_find(m->net, "conv1.weight"), 32, 3, 7, 7);
    nbt_assert_shape(nb_module_find(m->net, "fc2.weight"), 32 * 16 * 16, 100);
    nbt_assert_shape(nb_module_find(m->net, "fc3.weight"), 100, 10);
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(2, 3, 32, 32), &rng, 1.0);
    nbt_assert_shape(nb_model_scores(m, x), 2, 10);
    nb_tensor *loss = nb_model_loss(m, x, random_labels(2, 10, &rng));
    ck_assert_msg(loss && fabs(nb_item(loss) - log(10)) < 0.05, "loss %g, want about log 10", loss ? nb_item(loss) : NAN);
    nb_model_free(m);

    /* the default ResNet on 3x32x32 and on 1x28x28 (MNIST) */
    nb_resnet_config rc = nb_resnet_defaults();
    for (int k = 0; k < 2; k++) {
        if (k == 1) rc.in_c = 1, rc.in_h = 28, rc.in_w = 28;
        m = nb_resnet(&rc, &rng);
        ck_assert_msg(m != NULL, "%s", nb_last_error());
        ck_assert_str_eq(m->name, "ResNet");
        ck_assert_ptr_nonnull(nb_module_find(m->net, "stage3.block2.bn2.running_mean"));
        nbt_assert_shape(nb_module_find(m->net, "stage2.block1.conv1.weight"), 32, 16, 3, 3);
        nbt_assert_shape(nb_module_find(m->net, "fc.weight"), 64, 10);
        x = nb_randn(NB_F32, NB_SHAPE(2, rc.in_c, rc.in_h, rc.in_w), &rng, 1.0);
        loss = nb_model_loss(m, x, random_labels(2, 10, &rng));
        ck_assert_msg(loss != NULL, "%s", nb_last_error());
        ck_assert(isfinite(nb_item(loss)));
        ck_assert_ptr_nonnull(nb_module_find(m->net, "stage1.block1.conv2.weight")->grad);
        nbt_assert_shape(nb_model_scores(m, x), 2, 10);
        nb_model_free(m);
    }
}
END_TEST

START_TEST(wrapping_a_net)
{
    nb_rng rng;
    nb_rng_seed(&rng, 16);
    nb_module *parts[2] = { nb_module_linear(3, 2, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 1)), nb_module_relu() };
    nb_model *m = nb_model_new(nb_module_sequential(2, parts), 0.5, NULL);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    ck_assert_str_eq(m->name, "Model");
    ck_assert_int_eq(nb_model_reg_weights(m, 0, NULL), 1);
    nb_tensor *loss = nb_model_loss(m, nb_ones(NB_F64, NB_SHAPE(2, 3)), labels(2, (const int64_t[]){ 0, 1 }));
    ck_assert_msg(loss != NULL, "%s", nb_last_error());
    nb_clear_error();
    ck_assert_int_eq(nb_model_seed(m, 1), 0);   /* no generator of its own: nothing to reseed, no error */
    ck_assert_str_eq(nb_last_error(), "");
    ck_assert_int_eq(nb_model_seed(NULL, 1), -1);
    ck_assert_str_eq(nb_last_error(), "nb_model_seed: NULL model");
    /* a net that does not give [N,C] scores */
    nb_module *flat[1] = { nb_module_global_avg_pool() };
    nb_model *bad = nb_model_new(nb_module_sequential(1, flat), 0, "Pool");
    nbt_assert_error(nb_model_scores(bad, nb_zeros(NB_F64, NB_SHAPE(2, 3, 4))),
                     "nb_global_avg_pool: expected a 4-D [N,C,H,W] x, got [2,3,4]");
    nb_model_free(bad);
    nb_module *id[1] = { nb_module_relu() };
    bad = nb_model_new(nb_module_sequential(1, id), 0, "Identity");
    nbt_assert_error(nb_model_scores(bad, nb_zeros(NB_F64, NB_SHAPE(2, 3, 4))),
                     "nb_model_scores: the Identity net maps x [2,3,4] to [2,3,4]; expected scores [2,C]");
    nbt_assert_error(nb_model_loss(bad, nb_zeros(NB_F64, NB_SHAPE(2, 3, 4)), labels(2, (const int64_t[]){ 0, 1 })),
                     "nb_model_loss: the Identity net maps x [2,3,4] to [2,3,4]; expected scores [2,C]");
    nb_model_free(bad);
    nbt_assert_error(nb_model_new(nb_module_relu(), -1, "X"), "nb_model_new: reg -1 must be finite and not negative");
    nbt_assert_error(nb_model_new(nb_module_linear(0, 1, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 1)), 0, "X"),
                     "nb_module_linear: sizes must be positive, got in 0 out 1");
    nb_model_free(m);
    nb_model_free(NULL);
}
END_TEST

/* ---- errors ---- */

START_TEST(config_errors)
{
    nb_rng rng;
    nb_rng_seed(&rng, 17);
    nbt_assert_error(nb_two_layer_net(0, 4, 3, 1e-3, 0, NB_F32, &rng), "nb_two_layer_net: input_dim must be positive, got 0");
    nbt_assert_error(nb_two_layer_net(5, -4, 3, 1e-3, 0, NB_F32, &rng), "nb_two_layer_net: hidden_dim must be positive, got -4");
    nbt_assert_error(nb_two_layer_net(5, 4, 3, -1, 0, NB_F32, &rng),
                     "nb_two_layer_net: weight_scale -1 must be finite and not negative");
    nbt_assert_error(nb_two_layer_net(5, 4, 3, 1e-3, NAN, NB_F32, &rng), "nb_two_layer_net: reg nan must be finite and not negative");
    nbt_assert_error(nb_two_layer_net(5, 4, 3, 1e-3, 0, NB_I64, &rng), "nb_two_layer_net: dtype must be f32 or f64, got i64");
    nbt_assert_error(nb_two_layer_net(5, 4, 3, 1e-3, 0, NB_F32, NULL), "nb_two_layer_net: NULL generator");

    static const int64_t hidden[2] = { 4, 0 };
    nb_fc_config fc = nb_fc_defaults();
    nbt_assert_error(nb_fully_connected_net(NULL), "nb_fully_connected_net: NULL config");
    fc.n_hidden = 2;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: n_hidden 2 needs that many hidden_dims (NULL)");
    fc.hidden_dims = hidden;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: hidden_dims[1] must be positive, got 0");
    fc.n_hidden = 1;
    fc.keep_prob = 0;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: keep_prob 0 must be in (0, 1] (1: no dropout)");
    fc.keep_prob = 1.5;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: keep_prob 1.5 must be in (0, 1] (1: no dropout)");
    fc.keep_prob = 1;
    fc.norm = (nb_norm_kind)7;
    nbt_assert_error(nb_fully_connected_net(&fc),
                     "nb_fully_connected_net: unknown normalization 7 (NB_NORM_NONE, NB_NORM_BATCH or NB_NORM_LAYER)");
    fc.norm = NB_NORM_NONE;
    fc.n_hidden = -1;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: n_hidden -1 needs that many hidden_dims (given)");
    fc.n_hidden = 1;
    fc.num_classes = 0;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: num_classes must be positive, got 0");
    fc.num_classes = 10;
    fc.reg = -0.5;
    nbt_assert_error(nb_fully_connected_net(&fc), "nb_fully_connected_net: reg -0.5 must be finite and not negative");

    nb_convnet_config cc = nb_convnet_defaults();
    nbt_assert_error(nb_three_layer_convnet(&cc, NULL), "nb_three_layer_convnet: NULL generator");
    nbt_assert_error(nb_three_layer_convnet(NULL, &rng), "nb_three_layer_convnet: NULL config");
    cc.filter_size = 4;
    nbt_assert_error(nb_three_layer_convnet(&cc, &rng),
                     "nb_three_layer_convnet: filter_size must be odd and positive (padding (k-1)/2 keeps the size), got 4");
    cc.filter_size = 3;
    cc.in_h = 1;
    nbt_assert_error(nb_three_layer_convnet(&cc, &rng),
                     "nb_three_layer_convnet: the 2x2 max pool needs an image of at least 2x2, got 1x32");
    cc.in_h = 32;
    cc.num_filters = 0;
    nbt_assert_error(nb_three_layer_convnet(&cc, &rng), "nb_three_layer_convnet: num_filters must be positive, got 0");

    nb_resnet_config rc = nb_resnet_defaults();
    nbt_assert_error(nb_resnet(NULL, &rng), "nb_resnet: NULL config");
    nbt_assert_error(nb_resnet(&rc, NULL), "nb_resnet: NULL generator");
    rc.widths[1] = 0;
    nbt_assert_error(nb_resnet(&rc, &rng), "nb_resnet: widths[1] must be positive, got 0");
    rc.widths[1] = 32;
    rc.blocks_per_stage = 0;
    nbt_assert_error(nb_resnet(&rc, &rng), "nb_resnet: blocks_per_stage must be at least 1, got 0");
    rc.blocks_per_stage = 1;
    rc.dtype = NB_I64;
    nbt_assert_error(nb_resnet(&rc, &rng), "nb_resnet: dtype must be f32 or f64, got i64");

    /* using a model */
    nb_model *m = nb_two_layer_net(5, 4, 3, 1e-3, 0, NB_F64, &rng);
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 5)), *y = labels(2, (const int64_t[]){ 0, 2 });
    m->reg = -1;
    nbt_assert_error(nb_model_loss(m, x, y), "nb_model_loss: reg -1 must be finite and not negative");
    nbt_assert_error(nb_model_loss_expr(m, x, y), "nb_model_loss_expr: reg -1 must be finite and not negative");
    m->reg = 0;
    nbt_assert_error(nb_model_loss(m, x, labels(2, (const int64_t[]){ 0, 3 })),
                     "nb_softmax_cross_entropy: label 3 at position 1 is outside [0, 3)");
    nbt_assert_error(nb_model_scores(m, nb_zeros(NB_F64, NB_SHAPE(2, 4))), "nb_affine: w is [5,4] but x flattens to [2,4]");
    nbt_assert_error(nb_model_scores(m, nb_scalar(NB_F64, 1)), "nb_model_scores: x must have a batch axis [N,..], got []");
    nbt_assert_error(nb_model_scores(NULL, x), "nb_model_scores: NULL model");
    /* NULL in, NULL out, the first message kept */
    nb_clear_error();
    ck_assert_ptr_null(nb_model_loss(m, nb_reshape(x, NB_SHAPE(3)), y));
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [2,5] (10 elements) into [3]");
    ck_assert_ptr_null(nb_model_scores(m, NULL));
    double acc;
    ck_assert_int_eq(nb_model_accuracy(m, NULL, y, 4, &acc), -1);
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [2,5] (10 elements) into [3]");
    nb_model_free(m);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *values = tcase_create("values");
    tcase_set_timeout(values, 30);   /* the cs231n-sized nets, also under sanitizers */
    tcase_add_test(values, cs231n_two_layer_scores);
    tcase_add_test(values, cs231n_two_layer_losses);
    tcase_add_test(values, two_layer_init);
    tcase_add_test(values, eval_scores_ignore_dropout);
    tcase_add_test(values, accuracy_in_batches);
    tcase_add_test(values, regularised_weights);
    tcase_add_test(values, names_and_shapes);
    tcase_add_test(values, wrapping_a_net);
    tcase_add_test(values, config_errors);
    suite_add_tcase(s, values);
    TCase *grad = tcase_create("gradients");
    tcase_set_timeout(grad, 120);
    tcase_add_test(grad, two_layer_gradients);
    tcase_add_test(grad, fc_gradients_none);
    tcase_add_test(grad, fc_gradients_batch);
    tcase_add_test(grad, fc_gradients_batch_fused);
    tcase_add_test(grad, fc_gradients_layer);
    tcase_add_test(grad, convnet_gradients);
    tcase_add_test(grad, resnet_gradients_composed);
    tcase_add_test(grad, resnet_gradients_fused);
    tcase_add_test(grad, backward_reuses_dead_gradients);
    suite_add_tcase(s, grad);
    return s;
}

NBT_MAIN(model_suite)
