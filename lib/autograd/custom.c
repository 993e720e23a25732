/* Custom ops (nabla/custom.h): a user's forward and backward callbacks as one graph node. */
#include <nabla/custom.h>

#include "../internal.h"

/* One call's context, in the scope of the call. The node's op is the context's first member, so the
 * rule finds its context from node->op; the node's inputs are the user's inputs, then the saved
 * tensors (which need no gradient: they are there for the version checks). */
struct nb_custom_ctx {
    nb_op op;                               /* first: node->op points here */
    nb_op raw_op;                           /* "<name> backward": the gradients of a raw kernel, no rule */
    char raw_name[96];
    const nb_custom_op *custom;
    void *user;
    int n_in, n_saved;
    nb_tensor *in[NB_CUSTOM_MAX_INPUTS];
    nb_tensor *saved[NB_CUSTOM_MAX_SAVED];
    nb_tensor *out;
    bool in_forward;
};

/* the node's rule: the user's backward, with grad mode off and its results recorded without a rule
 * when it is a raw kernel and a graph of the gradients is being built */
static int custom_backward(nb_node *node, nb_tensor *gout, nb_tensor **gin)
{
    nb_custom_ctx *ctx = (nb_custom_ctx *)node->op;
    const bool create_graph = nb_grad_enabled();
    if (!ctx->custom->raw_backward) return ctx->custom->backward(ctx, gout, gin);
    bool was = nb_set_grad_enabled(false);
    int rc = ctx->custom->backward(ctx, gout, gin);
    nb_set_grad_enabled(was);
    if (rc != 0 || !create_graph) return rc;
    nb_tensor *deps[NB_CUSTOM_MAX_INPUTS + NB_CUSTOM_MAX_SAVED + 2];
    int n_deps = 0;
    for (int i = 0; i < node->n_in; i++) deps[n_deps++] = node->in[i];
    deps[n_deps++] = gout;
    deps[n_deps++] = ctx->out;
    for (int i = 0; i < ctx->n_in; i++) {
        if (!gin[i]) continue;
        /* a fresh header, so that recording never replaces the node of a tensor the user handed back */
        if (gin[i]->node || !gin[i]->scope || gin[i]->requires_grad) gin[i] = nb_detach(gin[i]);
        if (!gin[i]) return -1;
        nb_record(&ctx->raw_op, gin[i], n_deps, deps);
    }
    return 0;
}

nb_tensor *nb_custom(const nb_custom_op *op, int n, nb_tensor *const *in, void *user)
{
    if (!op || !op->name || !op->forward) {
        nb_error("nb_custom: %s", !op ? "NULL op" : !op->name ? "the op has no name" : "the op has no forward");
        return NULL;
    }
    if (n < 1 || n > NB_CUSTOM_MAX_INPUTS || !in) {
        nb_error("%s: %d inputs (custom ops take 1 to %d)", op->name, !in ? 0 : n, NB_CUSTOM_MAX_INPUTS);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!in[i]) return nb_null_input(op->name);
    nb_custom_ctx *ctx = nb_scope_alloc(sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    snprintf(ctx->raw_name, sizeof ctx->raw_name, "%s backward", op->name);
    ctx->op = (nb_op){ .name = op->name, .backward = op->backward ? custom_backward : NULL };
    ctx->raw_op = (nb_op){ .name = ctx->raw_name, .backward = NULL };
    ctx->custom = op;
    ctx->user = user;
    ctx->n_in = n;
    memcpy(ctx->in, in, sizeof(nb_tensor *) * (size_t)n);

    ctx->in_forward = true;
    bool was = nb_set_grad_enabled(false);
    nb_tensor *out = op->forward(ctx, n, in);
    nb_set_grad_enabled(was);
    ctx->in_forward = false;
    if (!out) {
        if (!nb_last_error()[0]) nb_error("%s: the forward returned NULL without recording an error", op->name);
        return NULL;
    }
    /* an input handed back, or a persistent tensor: the node gets a header of its own */
    if (out->node || !out->scope || out->requires_grad) out = nb_detach(out);
    if (!out) return NULL;
    ctx->out = out;
    nb_tensor *node_in[NB_CUSTOM_MAX_INPUTS + NB_CUSTOM_MAX_SAVED];
    memcpy(node_in, in, sizeof(nb_tensor *) * (size_t)n);
    memcpy(node_in + n, ctx->saved, sizeof(nb_tensor *) * (size_t)ctx->n_saved);
    bool float_out = out->dtype == NB_F32 || out->dtype == NB_F64;
    if (float_out) nb_record(&ctx->op, out, n + ctx->n_saved, node_in);
    else if (nb_anomaly_enabled()) nb_anomaly_check(op->name, out, n, in);
    return out;
}

int nb_custom_save(nb_custom_ctx *ctx, nb_tensor *t)
{
    if (!ctx || !t) {
        nb_error_null("nb_custom_save", !ctx ? "context" : "tensor");
        return -1;
    }
    if (!ctx->in_forward) {
        nb_error("nb_custom_save: %s: tensors are saved in the forward", ctx->custom->name);
        return -1;
    }
    if (ctx->n_saved == NB_CUSTOM_MAX_SAVED) {
        nb_error("nb_custom_save: %s: more than %d saved tensors", ctx->custom->name, NB_CUSTOM_MAX_SAVED);
        return -1;
    }
    ctx->saved[ctx->n_saved++] = t;
    return 0;
}

/* the i-th of a context's n tensors, or NULL with "<fn>: <op>: no <what> i (n <what>s)" */
static nb_tensor *nth(const char *fn, const nb_custom_ctx *ctx, nb_tensor *const *list, int n, int i, const char *what)
{
    if (!ctx) {
        nb_error("%s: NULL context", fn);
        return NULL;
    }
    if (i < 0 || i >= n) {
        nb_error("%s: %s: no %s %d (%d %ss)", fn, ctx->custom->name, what, i, n, what);
        return NULL;
    }
    return list[i];
}

nb_tensor *nb_custom_saved(const nb_custom_ctx *ctx, int i)
{
    return nth("nb_custom_saved", ctx, ctx ? ctx->saved : NULL, ctx ? ctx->n_saved : 0, i, "saved tensor");
}

nb_tensor *nb_custom_input(const nb_custom_ctx *ctx, int i)
{
    return nth("nb_custom_input", ctx, ctx ? ctx->in : NULL, ctx ? ctx->n_in : 0, i, "input");
}

nb_tensor *nb_custom_output(const nb_custom_ctx *ctx)
{
    if (!ctx || !ctx->out) {
        nb_error("nb_custom_output: %s", !ctx ? "NULL context" : "the output exists only after the forward");
        return NULL;
    }
    return ctx->out;
}

bool nb_custom_needs_grad(const nb_custom_ctx *ctx, int i)
{
    return ctx && i >= 0 && i < ctx->n_in && ctx->in[i]->requires_grad;
}

void *nb_custom_user(const nb_custom_ctx *ctx) { return ctx ? ctx->user : NULL; }
