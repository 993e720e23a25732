/* Anomaly mode: finds the first op whose output holds NaN or Inf (like torch's detect_anomaly).
 *
 * Every op that can be differentiated passes its output through nb_record; with the mode on,
 * nb_record hands it here first. An output that is not finite although its inputs are names the op
 * that produced the anomaly; a non-finite input names the op that first received one (the value came
 * from outside the graph: data, parameters, or an op without a gradient). Backward rules run with the
 * forward op's name in `inside`, so a NaN made while differentiating names both. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>

static _Thread_local bool anomaly_on;
static _Thread_local const char *inside;      /* the forward op whose backward rule is running */
static _Thread_local char first[512];

bool nb_anomaly_enabled(void) { return anomaly_on; }

bool nb_set_anomaly_mode(bool on)
{
    bool was = anomaly_on;
    anomaly_on = on;
    if (on && !was) first[0] = '\0';
    return was;
}

const char *nb_anomaly(void) { return first[0] ? first : NULL; }

void nb_anomaly_clear(void) { first[0] = '\0'; }

const char *nb_anomaly_enter_backward(const char *forward_op)
{
    const char *was = inside;
    inside = forward_op;
    return was;
}

void nb_anomaly_leave_backward(const char *was) { inside = was; }

typedef struct {
    int64_t seen;       /* elements scanned before the current row */
    int64_t at;         /* flat index of the first non-finite element, or -1 */
    double value;
} scan;

#define SCAN_ROW(name, T)                                                      \
    static void name(int64_t n, char **p, const int64_t *s, void *ctx)        \
    {                                                                          \
        scan *sc = ctx;                                                        \
        if (sc->at >= 0) return;                                               \
        for (int64_t i = 0; i < n; i++) {                                      \
            double v = *(const T *)(p[0] + i * s[0]);                          \
            if (!isfinite(v)) {                                                \
                sc->at = sc->seen + i;                                         \
                sc->value = v;                                                 \
                return;                                                        \
            }                                                                  \
        }                                                                      \
        sc->seen += n;                                                         \
    }
SCAN_ROW(scan_f32, float)
SCAN_ROW(scan_f64, double)

/* the first non-finite element of t in row-major order, or -1 (integer tensors are always finite) */
static int64_t first_non_finite(const nb_tensor *t, double *value)
{
    if (t->dtype != NB_F32 && t->dtype != NB_F64) return -1;
    scan sc = { 0, -1, 0 };
    nb_loop l;
    nb_loop_init(&l, t->ndim, t->shape);
    nb_loop_add(&l, t);
    nb_loop_run(&l, t->dtype == NB_F32 ? scan_f32 : scan_f64, &sc);
    *value = sc.value;
    return sc.at;
}

static const char *value_name(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* "nb_div", "nb_div (in the backward of nb_log)", or for op NULL "the backward of nb_log" */
static void describe_op(char *buf, size_t size, const char *op)
{
    if (!op) snprintf(buf, size, "the backward of %s", inside);
    else if (inside) snprintf(buf, size, "%s (in the backward of %s)", op, inside);
    else snprintf(buf, size, "%s", op);
}

void nb_anomaly_check(const char *op, const nb_tensor *out, int n_in, nb_tensor *const *in)
{
    if (!anomaly_on || first[0] || !out) return;
    double v;
    int64_t at = first_non_finite(out, &v);
    if (at < 0) return;
    char who[160];
    describe_op(who, sizeof who, op);
    for (int i = 0; i < n_in; i++) {
        double vin;
        int64_t at_in = in[i] ? first_non_finite(in[i], &vin) : -1;
        if (at_in >= 0) {
            snprintf(first, sizeof first, "anomaly: %s received %s at element %lld of its input %d %s",
                     who, value_name(vin), (long long)at_in, i, nb_shp(in[i]));
            return;
        }
    }
    snprintf(first, sizeof first, "anomaly: %s produced %s at element %lld of its output %s from finite inputs",
             who, value_name(v), (long long)at, nb_shp(out));
}
