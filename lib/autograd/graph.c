/* The dynamic graph: recording nodes, and the reverse-mode walk over them. */
#include "../internal.h"

static _Thread_local bool grad_off;
static _Thread_local uint64_t epoch;

bool nb_grad_enabled(void) { return !grad_off; }

bool nb_set_grad_enabled(bool on)
{
    bool was = !grad_off;
    grad_off = !on;
    return was;
}

nb_node *nb_record(const nb_op *op, nb_tensor *out, int n_in, nb_tensor *const *in)
{
    if (nb_anomaly_enabled()) nb_anomaly_check(op->name, out, n_in, in);
    if (grad_off || !out) return NULL;
    bool any = false;
    for (int i = 0; i < n_in; i++) any |= in[i] && in[i]->requires_grad;
    if (!any) return NULL;
    const size_t inputs = sizeof(nb_tensor *) * (size_t)n_in;
    nb_node *n = nb_scope_alloc(sizeof *n + inputs + sizeof(uint64_t) * (size_t)(n_in + 1));
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    n->in = (nb_tensor **)(n + 1);
    memcpy(n->in, in, inputs);
    n->versions = (uint64_t *)((char *)n->in + inputs);
    for (int i = 0; i < n_in; i++) n->versions[i] = in[i] && in[i]->version ? *in[i]->version : 0;
    n->versions[n_in] = out->version ? *out->version : 0;
    n->out = out;
    out->node = n;
    out->requires_grad = true;
    return n;
}

/* Reverse topological order of the tensors that require grad and reach root, by an iterative
 * depth-first search (no recursion, so graph depth is unlimited). order[0] is the deepest leaf,
 * order[count-1] is root. */
typedef struct { nb_tensor *t; int next; } frame;

static nb_tensor **topo_order(nb_tensor *root, int64_t *count)
{
    uint64_t mark = ++epoch;
    int64_t cap = 256, sp = 0, n = 0;
    frame *stack = nb_scratch(0, sizeof(frame) * (size_t)cap);
    nb_tensor **order = nb_scratch(1, sizeof(nb_tensor *) * (size_t)cap);
    if (!stack || !order) return NULL;
    root->visit = mark;
    stack[sp++] = (frame){ root, 0 };
    while (sp > 0) {
        frame *top = &stack[sp - 1];
        nb_node *node = top->t->node;
        if (node && top->next < node->n_in) {
            nb_tensor *child = node->in[top->next++];
            if (!child || !child->requires_grad || child->visit == mark) continue;
            child->visit = mark;
            if (sp == cap || n + sp >= cap) {
                cap *= 2;
                stack = nb_scratch(0, sizeof(frame) * (size_t)cap);
                order = nb_scratch(1, sizeof(nb_tensor *) * (size_t)cap);
                if (!stack || !order) return NULL;
            }
            stack[sp++] = (frame){ child, 0 };
        } else {
            order[n++] = top->t;
            sp--;
        }
    }
    *count = n;
    return order;
}

nb_tensor *nb_leaf_grad(nb_tensor *leaf);   /* lib/core/tensor.c */

/* -1 with a message when an input or the output of node, whose rule reads their values, was written
 * since the forward: the rule would compute the gradient of values the forward never saw */
static int check_versions(const char *who, const nb_node *node)
{
    if (node->op->values_unused) return 0;
    for (int i = 0; i <= node->n_in; i++) {
        const nb_tensor *t = i < node->n_in ? node->in[i] : node->out;
        if (!t || !t->version || *t->version == node->versions[i]) continue;
        char which[24] = "output";
        if (i < node->n_in) snprintf(which, sizeof which, "input %d", i);
        nb_error("%s: %s's %s (%s %s) was written after the forward (nb_fill, nb_copy_into, nb_set or an optimizer "
                 "step), and its gradient needs the values the forward used: run the forward again after the write",
                 who, node->op->name, which, nb_dtype_name(t->dtype), nb_shp(t));
        return -1;
    }
    return 0;
}

/* ---- releasing dead gradients during nb_backward ----
 * A gradient is dead once no tensor still waiting in the walk (order[0..live)) holds it in its
 * pending gradient, not even through a view. Dense ones made during this walk (after `mark`, so never
 * a forward tensor or the caller's) are released for reuse by later, large allocations of the walk:
 * the peak holds the live gradients, not all of them. */

#define RELEASE_MIN ((int64_t)1 << 16)   /* bytes; smaller gradients are not worth the checks */
#define CANDIDATES_MAX 64

/* [lo, hi): the bytes t's elements occupy (strides are never negative) */
static void byte_range(const nb_tensor *t, const char **lo, const char **hi)
{
    int64_t last = 0;
    for (int i = 0; i < t->ndim; i++) last += (t->shape[i] - 1) * t->stride[i];
    *lo = t->data;
    *hi = (const char *)t->data + (last + 1) * (int64_t)nb_dtype_size(t->dtype);
}

static void release_dead(nb_tensor **candidates, int n, nb_tensor **order, int64_t live, nb_scope_mark mark)
{
    const char *done_lo[CANDIDATES_MAX], *done_hi[CANDIDATES_MAX];
    int n_done = 0;
    for (int c = 0; c < n; c++) {
        nb_tensor *g = candidates[c];
        int order_axes[NB_MAX_DIMS];
        int64_t bytes = nb_numel(g) * (int64_t)nb_dtype_size(g->dtype);
        if (bytes < RELEASE_MIN || !nb_dense_order(g, order_axes) || !nb_scope_since(mark, g->data)) continue;
        const char *lo, *hi;
        byte_range(g, &lo, &hi);
        bool dead = true;
        for (int d = 0; d < n_done && dead; d++) dead = hi <= done_lo[d] || lo >= done_hi[d];   /* once only */
        for (int64_t k = 0; k < live && dead; k++) {
            const nb_tensor *p = order[k]->pending_grad;
            if (!p || nb_numel(p) == 0) continue;
            const char *plo, *phi;
            byte_range(p, &plo, &phi);
            dead = hi <= plo || lo >= phi;
        }
        if (!dead) continue;
        nb_scope_release(g->data, (size_t)bytes);
        done_lo[n_done] = lo;
        done_hi[n_done++] = hi;
    }
}

/* Propagates dy from y through the graph. When leaves_grad, leaves' grad fields accumulate;
 * otherwise the pending gradients are left for the caller to read (and clear). */
static int propagate(const char *who, nb_tensor *y, nb_tensor *dy, bool create_graph, bool leaves_grad,
                     nb_tensor ***order_out, int64_t *count_out)
{
    if (!y) {
        nb_error_null(who, "output");
        return -1;
    }
    if (!y->requires_grad) {
        nb_error("%s: the output %s does not require grad (no input requires grad, or grad mode was off)", who, nb_shp(y));
        return -1;
    }
    if (!dy) {
        if (nb_numel(y) != 1) {
            nb_error("%s: the output is %s, not a scalar: give its gradient explicitly", who, nb_shp(y));
            return -1;
        }
        dy = nb_full(y->dtype, nb_shape_of(y), 1.0);
        if (!dy) return -1;
    } else if (dy->dtype != y->dtype || !nb_same_shape(dy, y->ndim, y->shape)) {
        nb_error("%s: the output gradient is %s %s but the output is %s %s", who, nb_dtype_name(dy->dtype),
                 nb_shp(dy), nb_dtype_name(y->dtype), nb_shp(y));
        return -1;
    }
    int64_t count = 0;
    nb_tensor **order = topo_order(y, &count);
    if (!order) return -1;
    *order_out = order;
    *count_out = count;

    bool was = nb_set_grad_enabled(create_graph);
    int rc = 0;
    /* nb_grad's results are pending gradients the caller reads, and create_graph keeps them in the
     * new graph: only a plain nb_backward releases */
    const bool release = leaves_grad && !create_graph;
    const nb_scope_mark mark = nb_scope_mark_now();
    y->pending_grad = dy;
    for (int64_t i = count - 1; i >= 0 && rc == 0; i--) {
        if (nb_anomaly_enabled() && nb_anomaly()) {   /* stop before any leaf gradient changes */
            nb_error("%s: %s", who, nb_anomaly());
            rc = -1;
            break;
        }
        nb_tensor *t = order[i];
        nb_tensor *g = t->pending_grad;
        if (!g) continue;
        nb_node *node = t->node;
        if (!node) {
            if (leaves_grad) {
                nb_tensor *acc = nb_leaf_grad(t);
                if (!acc) rc = -1;
                else nb_accumulate(acc, g);
            }
            continue;
        }
        if (!node->op->backward) {
            nb_error("%s: %s cannot be differentiated%s", who, node->op->name,
                     create_graph ? " (it is once-differentiable)" : "");
            rc = -1;
            break;
        }
        nb_tensor **gin = check_versions(who, node) == 0 ? nb_scope_alloc(sizeof(nb_tensor *) * (size_t)node->n_in) : NULL;
        if (!gin) {
            rc = -1;
            break;
        }
        memset(gin, 0, sizeof(nb_tensor *) * (size_t)node->n_in);
        const char *outer = nb_anomaly_enter_backward(node->op->name);
        rc = node->op->backward(node, g, gin);
        for (int j = 0; rc == 0 && j < node->n_in; j++)
            if (gin[j]) nb_anomaly_check(NULL, gin[j], 1, &g);
        nb_anomaly_leave_backward(outer);
        if (rc != 0) break;
        nb_tensor *candidates[CANDIDATES_MAX];   /* gradients that may have died with this node */
        int n_candidates = 0;
        candidates[n_candidates++] = g;
        for (int j = 0; j < node->n_in; j++) {
            nb_tensor *x = node->in[j];
            if (!gin[j] || !x || !x->requires_grad) continue;
            if (gin[j]->dtype != x->dtype || !nb_same_shape(gin[j], x->ndim, x->shape)) {
                nb_error("%s: %s produced a gradient %s for its input %s", who, node->op->name, nb_shp(gin[j]), nb_shp(x));
                rc = -1;
                break;
            }
            nb_tensor *old = x->pending_grad;
            x->pending_grad = old ? nb_add(old, gin[j]) : gin[j];
            if (!x->pending_grad) {
                rc = -1;
                break;
            }
            if (old && n_candidates + 2 <= CANDIDATES_MAX) {   /* summed into a new tensor */
                candidates[n_candidates++] = old;
                candidates[n_candidates++] = gin[j];
            }
        }
        if (rc == 0 && release) release_dead(candidates, n_candidates, order, i, mark);
    }
    nb_set_grad_enabled(was);
    if (rc == 0 && nb_anomaly_enabled() && nb_anomaly()) {   /* made by the last rule */
        nb_error("%s: %s", who, nb_anomaly());
        rc = -1;
    }
    return rc;
}

static void clear_pending(nb_tensor **order, int64_t count)
{
    for (int64_t i = 0; i < count; i++) order[i]->pending_grad = NULL;
}

int nb_backward_with(nb_tensor *y, nb_tensor *dy)
{
    nb_tensor **order = NULL;
    int64_t count = 0;
    int rc = propagate("nb_backward", y, dy, false, true, &order, &count);
    if (order) clear_pending(order, count);
    return rc;
}

int nb_backward(nb_tensor *loss) { return nb_backward_with(loss, NULL); }

int nb_grad(nb_tensor *y, nb_tensor *dy, int n, nb_tensor *const *xs, nb_tensor **grads, bool create_graph)
{
    if (!y) {
        nb_error_null("nb_grad", "output");
        return -1;
    }
    if (n < 0 || (n > 0 && (!xs || !grads))) {
        nb_error("nb_grad: NULL inputs or outputs");
        return -1;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k]) {
            nb_error("nb_grad: input %d is NULL", k);
            return -1;
        }
    nb_tensor **order = NULL;
    int64_t count = 0;
    int rc = propagate("nb_grad", y, dy, create_graph, false, &order, &count);
    for (int k = 0; rc == 0 && k < n; k++) {
        /* a tensor y does not depend on has no pending gradient from this walk */
        bool reached = xs[k]->visit == epoch && xs[k]->pending_grad;
        grads[k] = reached ? xs[k]->pending_grad : nb_zeros(xs[k]->dtype, nb_shape_of(xs[k]));
        if (!grads[k]) rc = -1;
    }
    if (order) clear_pending(order, count);
    return rc;
}
