/* Sequence layers of cs231n's assignment 3, composed from primitive ops (autodiff gives every
 * gradient, and gradients of gradients):
 *   embedding         rows of w picked by token ids (index_select)
 *   temporal affine   one affine map applied at every time step: [..,D] -> [..,M]
 *   vanilla RNN       h_t = tanh(x_t·Wx + h_{t-1}·Wh + b)
 *   LSTM              a = x_t·Wx + h_{t-1}·Wh + b split into the gates i, f, o (sigmoid) and g (tanh);
 *                     c_t = f·c_{t-1} + i·g, h_t = o·tanh(c_t)
 * The recurrences are unrolled over T in the graph: the backward through time is autodiff's. */
#include "../internal.h"

#include <stdio.h>

/* x, and every other operand given, float tensors of x's dtype */
static bool same_float(const char *op, const nb_tensor *x, int n, nb_tensor *const *others)
{
    if (!nb_check_float(op, x)) return false;
    for (int i = 0; i < n; i++)
        if (!nb_check_same_dtype(op, x, others[i])) return false;
    return true;
}

/* t has the given 1-D or 2-D shape; name names it in the message */
static bool check_shape(const char *op, const char *name, const nb_tensor *t, int ndim, int64_t d0, int64_t d1)
{
    const int64_t want[2] = { d0, d1 };
    if (nb_same_shape(t, ndim, want)) return true;
    nb_error("%s: %s is %s, expected %s", op, name, nb_shp(t), nb_shape_text(ndim, want));
    return false;
}

nb_tensor *nb_embedding(nb_tensor *w, nb_tensor *idx)
{
    static const char op[] = "nb_embedding";
    if (!w || !idx) return nb_null_input(op);
    if (!nb_check_float(op, w)) return NULL;
    if (w->ndim != 2) {
        nb_error("%s: the table must be [V,D], got %s", op, nb_shp(w));
        return NULL;
    }
    if (idx->dtype != NB_I64 || idx->ndim + 1 > NB_MAX_DIMS) {
        nb_error("%s: the ids must be i64 with at most %d axes, got %s %s", op, NB_MAX_DIMS - 1,
                 nb_dtype_name(idx->dtype), nb_shp(idx));
        return NULL;
    }
    nb_shape out = nb_shape_of(idx);
    out.d[out.ndim++] = w->shape[1];
    nb_tensor *flat = nb_reshape(idx, NB_SHAPE(nb_numel(idx)));
    return nb_reshape(nb_index_select(w, 0, flat), out);
}

nb_tensor *nb_temporal_affine(nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    static const char op[] = "nb_temporal_affine";
    if (!x || !w || !b) return nb_null_input(op);
    if (!same_float(op, x, 2, (nb_tensor *[]){ w, b })) return NULL;
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[0]) {
        nb_error("%s: x %s and w %s do not fit: expected x [..,D] and w [D,M]", op, nb_shp(x), nb_shp(w));
        return NULL;
    }
    const int64_t D = w->shape[0], M = w->shape[1];
    if (!check_shape(op, "b", b, 1, M, 0)) return NULL;
    /* one product of all time steps: [rows, D]·[D, M] */
    nb_shape out = nb_shape_of(x);
    out.d[out.ndim - 1] = M;
    nb_tensor *rows = nb_reshape(x, NB_SHAPE(nb_shape_numel(x->ndim - 1, x->shape), D));
    return nb_reshape(nb_matmul_bias(rows, w, b), out);
}

/* the recurrences' common checks: x [N,T,D] (or [N,D] for a step), h [N,H], wx [D,G·H], wh [H,G·H], b [G·H] */
static bool check_recurrence(const char *op, const nb_tensor *x, const nb_tensor *h, const nb_tensor *wx,
                             const nb_tensor *wh, const nb_tensor *b, int gates, int x_ndim)
{
    if (!same_float(op, x, 4, (nb_tensor *[]){ (nb_tensor *)h, (nb_tensor *)wx, (nb_tensor *)wh, (nb_tensor *)b }))
        return false;
    if (x->ndim != x_ndim) {
        nb_error("%s: x must be %s, got %s", op, x_ndim == 3 ? "[N,T,D]" : "[N,D]", nb_shp(x));
        return false;
    }
    if (h->ndim != 2 || h->shape[0] != x->shape[0]) {
        nb_error("%s: the hidden state is %s but x is %s: expected [%lld,H]", op, nb_shp(h), nb_shp(x),
                 (long long)x->shape[0]);
        return false;
    }
    const int64_t D = x->shape[x->ndim - 1], H = h->shape[1];
    return check_shape(op, "wx", wx, 2, D, gates * H) && check_shape(op, "wh", wh, 2, H, gates * H) &&
           check_shape(op, "b", b, 1, gates * H, 0);
}

/* x·wx + h·wh + b */
static nb_tensor *gate_inputs(nb_tensor *x, nb_tensor *h, nb_tensor *wx, nb_tensor *wh, nb_tensor *b)
{
    return nb_add(nb_add(nb_matmul(x, wx), nb_matmul(h, wh)), b);
}

nb_tensor *nb_rnn_step(nb_tensor *x, nb_tensor *h, nb_tensor *wx, nb_tensor *wh, nb_tensor *b)
{
    static const char op[] = "nb_rnn_step";
    if (!x || !h || !wx || !wh || !b) return nb_null_input(op);
    if (!check_recurrence(op, x, h, wx, wh, b, 1, 2)) return NULL;
    return nb_tanh(gate_inputs(x, h, wx, wh, b));
}

int nb_lstm_step(nb_tensor *x, nb_tensor *h, nb_tensor *c, nb_tensor *wx, nb_tensor *wh, nb_tensor *b,
                 nb_tensor **h_next, nb_tensor **c_next)
{
    static const char op[] = "nb_lstm_step";
    if (!h_next || !c_next) {
        nb_error("%s: NULL output pointers", op);
        return -1;
    }
    *h_next = *c_next = NULL;
    if (!x || !h || !c || !wx || !wh || !b) return nb_null_input(op), -1;
    if (!check_recurrence(op, x, h, wx, wh, b, 4, 2) || !nb_check_same_dtype(op, x, c)) return -1;
    if (!nb_same_shape(c, h->ndim, h->shape)) {
        nb_error("%s: the cell state is %s but the hidden state is %s", op, nb_shp(c), nb_shp(h));
        return -1;
    }
    const int64_t H = h->shape[1];
    nb_tensor *a = gate_inputs(x, h, wx, wh, b);   /* [N,4H]: i, f, o, g */
    nb_tensor *i = nb_sigmoid(nb_slice(a, 1, 0, H, 1)), *f = nb_sigmoid(nb_slice(a, 1, H, 2 * H, 1));
    nb_tensor *o = nb_sigmoid(nb_slice(a, 1, 2 * H, 3 * H, 1)), *g = nb_tanh(nb_slice(a, 1, 3 * H, 4 * H, 1));
    *c_next = nb_add(nb_mul(f, c), nb_mul(i, g));
    *h_next = nb_mul(o, nb_tanh(*c_next));
    return *h_next ? 0 : -1;
}

/* [N,T,H] from the T states [N,H] */
static nb_tensor *stack_time(int64_t T, nb_tensor **states)
{
    for (int64_t t = 0; t < T; t++) {
        nb_tensor *s = states[t];
        states[t] = s ? nb_reshape(s, NB_SHAPE(s->shape[0], 1, s->shape[1])) : NULL;
    }
    return nb_concat((int)T, states, 1);
}

/* the unrolled recurrence: step(x_t, state) for t = 0..T-1; lstm keeps a cell state too */
static nb_tensor *unroll(const char *op, nb_tensor *x, nb_tensor *h0, nb_tensor *wx, nb_tensor *wh, nb_tensor *b,
                         bool lstm)
{
    if (!x || !h0 || !wx || !wh || !b) return nb_null_input(op);
    if (!check_recurrence(op, x, h0, wx, wh, b, lstm ? 4 : 1, 3)) return NULL;
    const int64_t N = x->shape[0], T = x->shape[1], H = h0->shape[1];
    if (T < 1 || T > INT32_MAX) {
        nb_error("%s: x %s has no time steps", op, nb_shp(x));
        return NULL;
    }
    nb_tensor **states = nb_scope_alloc(sizeof *states * (size_t)T);
    if (!states) return NULL;
    nb_tensor *h = h0, *c = lstm ? nb_zeros(x->dtype, NB_SHAPE(N, H)) : NULL;
    for (int64_t t = 0; t < T; t++) {
        nb_tensor *xt = nb_reshape(nb_slice(x, 1, t, t + 1, 1), NB_SHAPE(N, x->shape[2]));
        if (lstm) {
            if (nb_lstm_step(xt, h, c, wx, wh, b, &h, &c)) return NULL;
        } else if (!(h = nb_rnn_step(xt, h, wx, wh, b))) {
            return NULL;
        }
        states[t] = h;
    }
    return stack_time(T, states);
}

nb_tensor *nb_rnn(nb_tensor *x, nb_tensor *h0, nb_tensor *wx, nb_tensor *wh, nb_tensor *b)
{
    return unroll("nb_rnn", x, h0, wx, wh, b, false);
}

nb_tensor *nb_lstm(nb_tensor *x, nb_tensor *h0, nb_tensor *wx, nb_tensor *wh, nb_tensor *b)
{
    return unroll("nb_lstm", x, h0, wx, wh, b, true);
}
