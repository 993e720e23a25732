/* The module tree: owned named tensors and children, dotted-name walks, training mode. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PATH_MAX_LEN 256

nb_module *nb_module_new(const char *kind, nb_forward_fn forward, size_t config_size)
{
    if (!kind || !forward) {
        nb_error("nb_module_new: NULL kind or forward function");
        return NULL;
    }
    nb_module *m = calloc(1, sizeof *m);
    void *config = config_size ? calloc(1, config_size) : NULL;
    if (!m || (config_size && !config)) {
        free(m);
        free(config);
        nb_error("nb_module_new: out of memory for a %s", kind);
        return NULL;
    }
    m->kind = kind;
    m->forward = forward;
    m->training = true;
    m->config = config;
    return m;
}

static bool valid_name(const char *who, const nb_module *m, const char *name)
{
    if (!name || !name[0] || strlen(name) >= NB_MODULE_NAME_MAX || strchr(name, '.')) {
        nb_error("%s: bad name '%s' in a %s (1 to %d characters, no '.')", who, name ? name : "(null)", m->kind,
                 NB_MODULE_NAME_MAX - 1);
        return false;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensor_names[i], name)) goto taken;
    for (int i = 0; i < m->n_children; i++)
        if (!strcmp(m->child_names[i], name)) goto taken;
    return true;
taken:
    nb_error("%s: name '%s' already used in a %s", who, name, m->kind);
    return false;
}

int nb_module_add_tensor(nb_module *m, const char *name, nb_tensor *t, bool is_buffer)
{
    if (!t) {
        nb_error_null("nb_module_add_tensor", "tensor");
        return -1;
    }
    if (!m) {
        nb_error("nb_module_add_tensor: NULL module");
        return -1;
    }
    if (!valid_name("nb_module_add_tensor", m, name)) return -1;
    if (m->n_tensors == NB_MODULE_MAX_TENSORS) {
        nb_error("nb_module_add_tensor: a %s holds at most %d tensors", m->kind, NB_MODULE_MAX_TENSORS);
        return -1;
    }
    nb_tensor *p = is_buffer ? (t->scope || t->node ? nb_persist(t) : t) : nb_param(t);
    if (!p) return -1;
    int i = m->n_tensors++;
    snprintf(m->tensor_names[i], NB_MODULE_NAME_MAX, "%s", name);
    m->tensors[i] = p;
    m->is_buffer[i] = is_buffer;
    return 0;
}

int nb_module_add_child(nb_module *m, const char *name, nb_module *child)
{
    if (!child) return -1;
    if (!m) {
        nb_error("nb_module_add_child: NULL module");
        return -1;
    }
    if (!valid_name("nb_module_add_child", m, name)) return -1;
    int n = m->n_children + 1;
    nb_module **children = realloc(m->children, sizeof *children * (size_t)n);
    if (children) m->children = children;
    char(*names)[NB_MODULE_NAME_MAX] = realloc(m->child_names, sizeof *names * (size_t)n);
    if (names) m->child_names = names;
    if (!children || !names) {
        nb_error("nb_module_add_child: out of memory");
        return -1;
    }
    snprintf(m->child_names[n - 1], NB_MODULE_NAME_MAX, "%s", name);
    m->children[n - 1] = child;
    m->n_children = n;
    child->training = m->training;
    return 0;
}

nb_tensor *nb_module_tensor(const nb_module *m, const char *name)
{
    for (int i = 0; m && name && i < m->n_tensors; i++)
        if (!strcmp(m->tensor_names[i], name)) return m->tensors[i];
    return NULL;
}

nb_tensor *nb_module_forward(nb_module *m, nb_tensor *x)
{
    if (!x) return nb_null_input("nb_module_forward");
    if (!m) {
        nb_error("nb_module_forward: NULL module");
        return NULL;
    }
    return m->forward(m, x);
}

void nb_module_set_training(nb_module *m, bool training)
{
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->n_children; i++) nb_module_set_training(m->children[i], training);
}

/* depth-first walk with the dotted prefix in path[0..len) */
static int visit(nb_module *m, char *path, size_t len, nb_tensor_visit_fn fn, void *ctx)
{
    for (int i = 0; i < m->n_tensors; i++) {
        snprintf(path + len, PATH_MAX_LEN - len, "%s", m->tensor_names[i]);
        int rc = fn(path, m->tensors[i], m->is_buffer[i], ctx);
        if (rc) return rc;
    }
    for (int i = 0; i < m->n_children; i++) {
        int n = snprintf(path + len, PATH_MAX_LEN - len, "%s.", m->child_names[i]);
        if (n < 0 || len + (size_t)n >= PATH_MAX_LEN) {
            nb_error("nb_module_visit: names nested deeper than %d characters", PATH_MAX_LEN);
            return -1;
        }
        int rc = visit(m->children[i], path, len + (size_t)n, fn, ctx);
        if (rc) return rc;
    }
    return 0;
}

int nb_module_visit(nb_module *m, nb_tensor_visit_fn fn, void *ctx)
{
    if (!m || !fn) {
        nb_error("nb_module_visit: NULL module or function");
        return -1;
    }
    char path[PATH_MAX_LEN] = "";
    return visit(m, path, 0, fn, ctx);
}

typedef struct { const char *name; nb_tensor *found; } find_ctx;

static int match(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)is_buffer;
    find_ctx *f = ctx;
    if (strcmp(name, f->name)) return 0;
    f->found = t;
    return 1;
}

nb_tensor *nb_module_find(nb_module *m, const char *dotted_name)
{
    if (!m || !dotted_name) {
        nb_error("nb_module_find: NULL module or name");
        return NULL;
    }
    find_ctx f = { dotted_name, NULL };
    nb_module_visit(m, match, &f);
    if (!f.found) nb_error("nb_module_find: no tensor named '%s' in this %s", dotted_name, m->kind);
    return f.found;
}

typedef struct { bool with_buffers; int64_t count, numel; } count_ctx;

static int count(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    count_ctx *c = ctx;
    if (is_buffer && !c->with_buffers) return 0;
    c->count++;
    c->numel += nb_numel(t);
    return 0;
}

int64_t nb_module_count(nb_module *m, bool with_buffers)
{
    count_ctx c = { with_buffers, 0, 0 };
    if (m) nb_module_visit(m, count, &c);
    return c.count;
}

int64_t nb_module_numel(nb_module *m, bool with_buffers)
{
    count_ctx c = { with_buffers, 0, 0 };
    if (m) nb_module_visit(m, count, &c);
    return c.numel;
}

static int zero_grad(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name, (void)is_buffer, (void)ctx;
    nb_zero_grad(t);
    return 0;
}

void nb_module_zero_grad(nb_module *m)
{
    if (m) nb_module_visit(m, zero_grad, NULL);
}

void nb_module_free(nb_module *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) nb_free(m->tensors[i]);
    for (int i = 0; i < m->n_children; i++) nb_module_free(m->children[i]);
    free(m->children);
    free(m->child_names);
    free(m->config);
    free(m);
}

/* ---- initialisation ---- */

nb_tensor *nb_module_init_weight(const char *op, nb_init init, nb_dtype dt, nb_shape shape, int64_t fan_in)
{
    double std = init.kind == NB_INIT_KAIMING ? sqrt(2.0 / (double)(fan_in > 0 ? fan_in : 1)) : init.scale;
    if (!init.rng) {
        nb_error("%s: weight initialisation needs a generator (init.rng is NULL)", op);
        return NULL;
    }
    if (!(std >= 0) || !isfinite(std)) {
        nb_error("%s: bad weight scale %g", op, std);
        return NULL;
    }
    return nb_randn(dt, shape, init.rng, std);
}
