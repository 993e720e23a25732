/* Containers: Sequential (a chain of children) and the ResNet basic block. */
#include "../internal.h"

#include <stdio.h>

/* ---- Sequential ---- */

static nb_tensor *sequential_forward(nb_module *m, nb_tensor *x)
{
    for (int i = 0; x && i < m->n_children;) i += nb_module_forward_fused(m->children + i, m->n_children - i, &x);
    return x;
}

static nb_module *new_sequential(void) { return nb_module_new("Sequential", sequential_forward, 0); }

nb_module *nb_module_sequential(int n, nb_module *const *children)
{
    bool ok = n >= 0 && (n == 0 || children);
    if (!ok) {
        nb_error("nb_module_sequential: bad children (n %d, array %s)", n, children ? "given" : "NULL");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!children[i]) ok = false;   /* a failed constructor: its message stays */
    nb_module *seq = ok ? new_sequential() : NULL;
    int i = 0;
    for (; seq && i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (nb_module_add_child(seq, name, children[i])) break;
    }
    if (seq && i == n) return seq;
    /* the children added so far belong to seq; free it and the rest */
    for (int j = seq ? i : 0; j < n; j++) nb_module_free(children[j]);
    nb_module_free(seq);
    return NULL;
}

int nb_module_sequential_append(nb_module *seq, const char *name, nb_module *child)
{
    if (!child) return -1;
    if (!seq || seq->forward != sequential_forward) {
        if (seq) nb_error("nb_module_sequential_append: a %s is not a Sequential", seq->kind);
        else nb_error("nb_module_sequential_append: NULL module");
        nb_module_free(child);
        return -1;
    }
    if (nb_module_add_child(seq, name, child)) {
        nb_module_free(child);
        return -1;
    }
    return 0;
}

/* ---- the residual basic block ---- */

typedef struct { bool projection; } residual_config;

/* nb_module_add_child that frees the child when it cannot be added */
static int adopt(nb_module *m, const char *name, nb_module *child)
{
    if (!nb_module_add_child(m, name, child)) return 0;
    nb_module_free(child);
    return -1;
}

static nb_tensor *residual_forward(nb_module *m, nb_tensor *x)
{
    const residual_config *c = m->config;
    nb_module **ch = m->children;
    nb_tensor *h = nb_module_forward_relu(ch[1], nb_module_forward(ch[0], x));   /* relu(bn1(conv1(x))) */
    nb_tensor *s = c->projection ? nb_module_forward(ch[4], x) : x;
    return nb_module_forward_add_relu(ch[3], nb_module_forward(ch[2], h), s);   /* relu(bn2(conv2 h) + s) */
}

nb_module *nb_module_residual(int64_t in_ch, int64_t out_ch, int stride, nb_dtype dt, nb_init init, bool fused_bn)
{
    if (in_ch <= 0 || out_ch <= 0 || stride <= 0) {
        nb_error("nb_module_residual: need positive in_ch, out_ch and stride, got in_ch %lld out_ch %lld stride %d",
                 (long long)in_ch, (long long)out_ch, stride);
        return NULL;
    }
    nb_module *m = nb_module_new("Residual", residual_forward, sizeof(residual_config));
    if (!m) return NULL;
    bool projection = stride != 1 || in_ch != out_ch;
    ((residual_config *)m->config)->projection = projection;
    int rc = adopt(m, "conv1", nb_module_conv2d(in_ch, out_ch, 3, stride, 1, dt, init));
    if (!rc) rc = adopt(m, "bn1", nb_module_batchnorm2d(out_ch, dt, fused_bn));
    if (!rc) rc = adopt(m, "conv2", nb_module_conv2d(out_ch, out_ch, 3, 1, 1, dt, init));
    if (!rc) rc = adopt(m, "bn2", nb_module_batchnorm2d(out_ch, dt, fused_bn));
    if (!rc && projection) {
        nb_module *sc = new_sequential();
        if (!sc) rc = -1;
        if (!rc) rc = nb_module_sequential_append(sc, "conv", nb_module_conv2d(in_ch, out_ch, 1, stride, 0, dt, init));
        if (!rc) rc = nb_module_sequential_append(sc, "bn", nb_module_batchnorm2d(out_ch, dt, fused_bn));
        if (rc) nb_module_free(sc);
        else rc = adopt(m, "shortcut", sc);
    }
    if (rc) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}
