/* Numerical gradient checking: analytic gradients from nb_grad against float64 central differences
 * of the scalar L = Σ f(x)·r, for a fixed random projection r.
 * The check runs in two private scopes: `keep` holds the projection and the analytic gradients,
 * `eval` holds one evaluation of f and is reset before the next, so memory does not grow with the
 * number of elements checked. */
#include "../internal.h"

#include <stdio.h>

#include <math.h>

/* a fourth difference / h above this (relative) marks a kink */
#define KINK_TOLERANCE 1e-6

nb_gradcheck_opts nb_gradcheck_defaults(void)
{
    return (nb_gradcheck_opts){ .eps = 1e-4, .atol = 1e-5, .rtol = 1e-3, .skip_kinks = false, .seed = 0x5eed };
}

typedef struct {
    const char *who;            /* "nb_gradcheck" or "nb_gradgradcheck", for messages */
    nb_fn f;
    void *ctx;
    int n;
    nb_tensor *const *inputs;
    nb_gradcheck_opts opts;
} problem;

static bool broadcast_axis(const nb_tensor *t)
{
    for (int i = 0; i < t->ndim; i++)
        if (t->stride[i] == 0 && t->shape[i] > 1) return true;
    return false;
}

static int validate(const problem *p)
{
    if (!p->f || p->n < 0 || (p->n > 0 && !p->inputs)) {
        nb_error("%s: NULL function or inputs", p->who);
        return -1;
    }
    for (int k = 0; k < p->n; k++)
        if (!p->inputs[k]) return -1;   /* keep the message of whatever produced the NULL */
    int wrt = 0;
    for (int k = 0; k < p->n; k++) {
        const nb_tensor *x = p->inputs[k];
        if (!x->requires_grad) continue;
        if (x->dtype != NB_F64) {
            nb_error("%s: input %d is %s %s; gradients are checked in f64", p->who, k, nb_dtype_name(x->dtype), nb_shp(x));
            return -1;
        }
        /* perturbing one element of an expanded tensor would move all its aliases at once */
        if (broadcast_axis(x)) {
            nb_error("%s: input %d %s is broadcast (stride 0); pass the tensor before nb_expand", p->who, k, nb_shp(x));
            return -1;
        }
        wrt++;
    }
    if (wrt == 0) {
        nb_error("%s: no input requires grad", p->who);
        return -1;
    }
    if (!(p->opts.eps > 0)) {
        nb_error("%s: eps must be positive, got %g", p->who, p->opts.eps);
        return -1;
    }
    return 0;
}

/* the inputs that require grad, in order; returns their count */
static int inputs_with_grad(int n, nb_tensor *const *inputs, nb_tensor **wrt)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (inputs[i]->requires_grad) wrt[k++] = inputs[i];
    return k;
}

static nb_tensor **tensor_array(int n) { return nb_scope_alloc(sizeof(nb_tensor *) * (size_t)(n > 0 ? n : 1)); }

/* Random weights of magnitude in [0.5, 1.5) with random signs: a weight near 0 would make an
 * element's gradient so small that rounding noise dominates its relative error. */
static nb_tensor *random_weights(nb_dtype dt, nb_shape shape, nb_rng *rng)
{
    nb_tensor *w = nb_empty(dt, shape);
    int64_t count = nb_numel(w);
    for (int64_t i = 0; i < count; i++) {
        double magnitude = 0.5 + nb_rng_uniform(rng);
        nb_set(w, i, nb_rng_uniform(rng) < 0.5 ? -magnitude : magnitude);
    }
    return w;
}

/* false, with "<who>: f returned NULL: <its message>" (or "... without a message"), when y is NULL */
static bool returned(const char *who, const nb_tensor *y)
{
    if (y) return true;
    char why[768];
    snprintf(why, sizeof why, "%s", nb_last_error());
    if (why[0]) nb_error("%s: f returned NULL: %s", who, why);
    else nb_error("%s: f returned NULL without recording an error", who);
    return false;
}

/* r: fixed random weights of f's output shape y */
static nb_tensor *projection(const char *who, const nb_tensor *y, nb_rng *rng)
{
    if (!returned(who, y) || !nb_check_float(who, y)) return NULL;
    return random_weights(y->dtype, nb_shape_of(y), rng);
}

/* L = Σ y·r; y must keep the shape it had when r was drawn */
static nb_tensor *project(const char *who, nb_tensor *y, nb_tensor *r)
{
    if (!returned(who, y)) return NULL;
    if (!nb_same_shape(y, r->ndim, r->shape)) {
        nb_error("%s: f returned %s after %s; its output shape must not depend on the values", who, nb_shp(y), nb_shp(r));
        return NULL;
    }
    return nb_sum(nb_mul(y, r));
}

/* dL/dwrt[i]; zeros when L does not depend on any input (a constant, e.g. the gradient of a linear f) */
static int gradients(nb_tensor *L, int k, nb_tensor *const *wrt, nb_tensor **grads, bool create_graph)
{
    if (!L) return -1;
    if (L->requires_grad) return nb_grad(L, NULL, k, wrt, grads, create_graph);
    for (int i = 0; i < k; i++)
        if (!(grads[i] = nb_zeros(wrt[i]->dtype, nb_shape_of(wrt[i])))) return -1;
    return 0;
}

/* L at the inputs' current values, evaluated in the (reset) eval scope */
static int loss_at(const problem *p, nb_scope *eval, nb_tensor *r, double *value)
{
    nb_scope_reset(eval);
    nb_tensor *L = project(p->who, p->f(p->ctx, p->n, p->inputs), r);
    if (!L) return -1;
    *value = nb_item(L);
    return 0;
}

static void tally(nb_gradcheck_result *res, const nb_gradcheck_opts *o, int input, int64_t element, double analytic,
                  double numeric)
{
    double diff = fabs(analytic - numeric);
    double rel = diff / fmax(1e-8, fabs(analytic) + fabs(numeric));
    /* NaN sticks: it must not be hidden by a later finite error */
    if (!isnan(res->max_rel_error) && !(rel <= res->max_rel_error)) res->max_rel_error = rel;
    if (!isnan(res->max_abs_error) && !(diff <= res->max_abs_error)) res->max_abs_error = diff;
    res->checked++;
    if (diff <= o->atol + o->rtol * fabs(numeric)) return;
    if (res->failed++ == 0)
        snprintf(res->first_failure, sizeof res->first_failure, "input %d element %lld: analytic %.10g numeric %.10g",
                 input, (long long)element, analytic, numeric);
}

/* Fourth-order central differences for every element of every input requiring grad, against
 * grads[]. Runs with grad mode off inside the eval scope; every perturbed value is restored, also
 * on error. */
static int compare_numeric(const problem *p, nb_scope *eval, nb_tensor *r, nb_tensor **grads, nb_gradcheck_result *res)
{
    const double h = p->opts.eps;
    double center = 0;   /* L(x): the same for every element, needed only to see kinks */
    int rc = p->opts.skip_kinks ? loss_at(p, eval, r, &center) : 0;
    for (int k = 0, g = 0; rc == 0 && k < p->n; k++) {
        nb_tensor *x = p->inputs[k];
        if (!x->requires_grad) continue;
        int64_t count = nb_numel(x);
        for (int64_t j = 0; rc == 0 && j < count; j++) {
            double x0 = nb_get(x, j), l[5] = { 0, 0, center, 0, 0 };   /* L at x0 + (i - 2)·h */
            for (int i = 0; rc == 0 && i < 5; i++) {
                if (i == 2) continue;
                nb_set(x, j, x0 + (i - 2) * h);
                rc = loss_at(p, eval, r, &l[i]);
            }
            nb_set(x, j, x0);
            if (rc != 0) break;
            /* the h² error terms of the steps h and 2h cancel, leaving O(h⁴) */
            double numeric = (8 * (l[3] - l[1]) - (l[4] - l[0])) / (12 * h);
            /* the fourth difference is O(h⁴) on smooth functions, O(h·jump) across a kink */
            double fourth = l[0] - 4 * l[1] + 6 * l[2] - 4 * l[3] + l[4];
            if (p->opts.skip_kinks && fabs(fourth) / h > KINK_TOLERANCE * (1 + fabs(numeric))) {
                res->skipped++;
                continue;
            }
            tally(res, &p->opts, k, j, nb_get(grads[g], j), numeric);
        }
        g++;
    }
    return rc;
}

/* The whole check, in the keep scope (already pushed); grad mode is on. */
static int compare(const problem *p, nb_scope *eval, nb_gradcheck_result *res)
{
    nb_tensor *y = p->f(p->ctx, p->n, p->inputs);
    nb_rng rng;
    nb_rng_seed(&rng, p->opts.seed);
    nb_tensor *r = projection(p->who, y, &rng);
    nb_tensor **wrt = tensor_array(p->n), **grads = tensor_array(p->n);
    if (!r || !wrt || !grads) return -1;
    int k = inputs_with_grad(p->n, p->inputs, wrt);
    if (gradients(project(p->who, y, r), k, wrt, grads, false) != 0) return -1;

    nb_set_grad_enabled(false);
    nb_scope_push(eval);
    int rc = compare_numeric(p, eval, r, grads, res);
    nb_scope_pop();
    return rc;
}

static int run_check(const problem *p, nb_gradcheck_result *res)
{
    memset(res, 0, sizeof *res);
    if (validate(p) != 0) return -1;
    nb_scope *keep = nb_scope_new(), *eval = nb_scope_new();
    int rc = -1;
    if (keep && eval) {
        nb_scope_push(keep);
        bool was = nb_set_grad_enabled(true);
        rc = compare(p, eval, res);
        nb_set_grad_enabled(was);
        nb_scope_pop();
    }
    nb_scope_free(keep);
    nb_scope_free(eval);
    if (rc != 0) return -1;
    return res->failed ? 0 : 1;
}

int nb_gradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *inputs, const nb_gradcheck_opts *opts,
                 nb_gradcheck_result *result)
{
    nb_gradcheck_result local;
    problem p = { "nb_gradcheck", f, ctx, n, inputs, opts ? *opts : nb_gradcheck_defaults() };
    return run_check(&p, result ? result : &local);
}

/* ---- second derivatives: gradcheck of x -> Σ_i (dL/dx_i)·s_i with L = Σ f(x)·r ---- */

typedef struct {
    nb_fn f;
    void *ctx;
    const char *who;
    nb_tensor *r;        /* projection of f's output */
    nb_tensor **s;       /* projection of each gradient, one per input requiring grad */
} second_order;

/* The gradient is differentiable (create_graph) exactly when the caller has grad mode on: during
 * the analytic pass, not during the numerical evaluations. */
static nb_tensor *projected_gradient(void *ctx, int n, nb_tensor *const *inputs)
{
    const second_order *so = ctx;
    bool create_graph = nb_set_grad_enabled(true);
    nb_tensor **wrt = tensor_array(n), **grads = tensor_array(n);
    nb_tensor *L = wrt && grads ? project(so->who, so->f(so->ctx, n, inputs), so->r) : NULL;
    int k = wrt ? inputs_with_grad(n, inputs, wrt) : 0;
    int rc = gradients(L, k, wrt, grads, create_graph);
    nb_set_grad_enabled(create_graph);
    nb_tensor *out = NULL;
    for (int i = 0; rc == 0 && i < k; i++) {
        nb_tensor *term = nb_sum(nb_mul(grads[i], so->s[i]));
        out = out ? nb_add(out, term) : term;
        if (!out) break;
    }
    return out;
}

int nb_gradgradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *inputs, const nb_gradcheck_opts *opts,
                     nb_gradcheck_result *result)
{
    nb_gradcheck_result local;
    if (!result) result = &local;
    problem first = { "nb_gradgradcheck", f, ctx, n, inputs, opts ? *opts : nb_gradcheck_defaults() };
    memset(result, 0, sizeof *result);
    if (validate(&first) != 0) return -1;

    /* the projections live in their own scope, under the check's scopes */
    nb_scope *outer = nb_scope_new();
    if (!outer) return -1;
    nb_scope_push(outer);
    bool was = nb_set_grad_enabled(false);
    second_order so = { f, ctx, first.who, NULL, tensor_array(n) };
    nb_rng rng;
    nb_rng_seed(&rng, first.opts.seed);
    so.r = projection(first.who, f(ctx, n, inputs), &rng);
    int rc = so.r && so.s ? 0 : -1;
    for (int i = 0, k = 0; rc == 0 && i < n; i++)
        if (inputs[i]->requires_grad && !(so.s[k++] = random_weights(NB_F64, nb_shape_of(inputs[i]), &rng))) rc = -1;
    nb_set_grad_enabled(was);
    if (rc == 0) {
        problem second = first;
        second.f = projected_gradient;
        second.ctx = &so;
        rc = run_check(&second, result);
    }
    nb_scope_pop();
    nb_scope_free(outer);
    return rc;
}
