/* Printing in NumPy's layout: nested brackets, one common width so that columns align, at most
 * 8 fraction digits (the fewest that read back as the same value), scientific notation when the
 * magnitudes call for it, and "..." in place of the middle of long axes of big tensors.
 * The values are walked twice: once to choose the format, once to print. */
#include "../internal.h"

#include <math.h>
#include <stdlib.h>

#define PRECISION 8        /* most fraction digits shown */
#define SUMMARY_OVER 1000  /* tensors with more elements are summarised */
#define EDGE 3             /* elements kept at each end of a summarised axis */
#define LINE_WIDTH 75

typedef enum { INTEGER, POSITIONAL, SCIENTIFIC } style;

typedef struct {
    style style;
    int digits;        /* scientific: fraction digits of every mantissa */
    int left, right;   /* positional: widths before and after the '.' */
    int width;         /* every element is printed this wide */
} number_format;

typedef struct {
    const nb_tensor *t;
    bool summarize;
    FILE *f;
    int column;        /* characters on the current line */
    number_format fmt;
} printer;

/* ---- walking the shown elements ---- */

static bool is_cut(const printer *pr, int64_t n) { return pr->summarize && n > 2 * EDGE; }

/* the index after i along an axis of length n, jumping over the hidden middle */
static int64_t next_index(const printer *pr, int64_t n, int64_t i)
{
    return is_cut(pr, n) && i + 1 == EDGE ? n - EDGE : i + 1;
}

/* NumPy's words for the values without digits; C would print "-nan" for some NaNs */
static const char *non_finite_text(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

typedef void (*value_fn)(double v, void *ctx);

static void visit(const printer *pr, int d, const char *p, value_fn fn, void *ctx)
{
    const nb_tensor *t = pr->t;
    if (d == t->ndim) {
        fn(nb_load(t->dtype, p), ctx);
        return;
    }
    int64_t step = t->stride[d] * (int64_t)nb_dtype_size(t->dtype);
    for (int64_t i = 0; i < t->shape[d]; i = next_index(pr, t->shape[d], i)) visit(pr, d + 1, p + i * step, fn, ctx);
}

/* ---- choosing the format ---- */

/* the fewest fraction digits (at most PRECISION) with which v reads back as itself in its dtype */
static int shortest_digits(double v, nb_dtype dt, bool scientific)
{
    char buf[64];
    for (int d = 0; d < PRECISION; d++) {
        snprintf(buf, sizeof buf, scientific ? "%.*e" : "%.*f", d, v);
        double back = strtod(buf, NULL);
        if (dt == NB_F32 ? (float)back == (float)v : back == v) return d;
    }
    return PRECISION;
}

typedef struct { double max_abs, min_abs; } magnitudes;   /* over finite nonzero values */

static void measure_magnitude(double v, void *ctx)
{
    magnitudes *m = ctx;
    double a = fabs(v);
    if (!isfinite(v) || a == 0) return;
    m->max_abs = fmax(m->max_abs, a);
    m->min_abs = fmin(m->min_abs, a);
}

typedef struct {
    nb_dtype dtype;
    number_format *fmt;
    int fixed;         /* scientific: the widest mantissa sign, '.' and exponent, without digits */
    int non_finite;    /* widest "nan", "-inf" */
} width_pass;

static int max_int(int a, int b) { return a > b ? a : b; }

static void measure_width(double v, void *ctx)
{
    width_pass *w = ctx;
    number_format *fmt = w->fmt;
    char buf[64];
    if (fmt->style == INTEGER) {
        fmt->width = max_int(fmt->width, snprintf(buf, sizeof buf, "%lld", (long long)v));
    } else if (!isfinite(v)) {
        w->non_finite = max_int(w->non_finite, (int)strlen(non_finite_text(v)));
    } else if (fmt->style == SCIENTIFIC) {
        int d = shortest_digits(v, w->dtype, true);
        fmt->digits = max_int(fmt->digits, d);
        w->fixed = max_int(w->fixed, snprintf(buf, sizeof buf, "%.*e", d, v) - d + (d == 0));
    } else {
        int d = shortest_digits(v, w->dtype, false);
        int len = snprintf(buf, sizeof buf, "%.*f", d, v);
        fmt->left = max_int(fmt->left, len - (d > 0 ? d + 1 : 0));
        fmt->right = max_int(fmt->right, d);
    }
}

/* NumPy's rule: scientific when the largest magnitude reaches 1e8, the smallest is below 1e-4,
 * or they span more than three decades */
static number_format choose_format(const printer *pr)
{
    const nb_tensor *t = pr->t;
    number_format fmt = { INTEGER, 0, 0, 0, 0 };
    if (t->dtype != NB_I64) {
        magnitudes m = { 0, INFINITY };
        visit(pr, 0, t->data, measure_magnitude, &m);
        bool scientific = m.max_abs > 0 && (m.max_abs >= 1e8 || m.min_abs < 1e-4 || m.max_abs / m.min_abs > 1e3);
        fmt.style = scientific ? SCIENTIFIC : POSITIONAL;
    }
    width_pass w = { t->dtype, &fmt, 0, 0 };
    visit(pr, 0, t->data, measure_width, &w);
    if (fmt.style == SCIENTIFIC) fmt.width = max_int(w.fixed + fmt.digits, w.non_finite);
    if (fmt.style == POSITIONAL) {
        fmt.width = max_int(fmt.left + 1 + fmt.right, w.non_finite);
        fmt.left = fmt.width - 1 - fmt.right;   /* a wide "nan" pushes the numbers right */
    }
    return fmt;
}

/* ---- printing ---- */

static void put_value(printer *pr, double v)
{
    const number_format *fmt = &pr->fmt;
    char buf[80];
    if (fmt->style == INTEGER) {
        snprintf(buf, sizeof buf, "%*lld", fmt->width, (long long)v);
    } else if (!isfinite(v)) {
        snprintf(buf, sizeof buf, "%*s", fmt->width, non_finite_text(v));
    } else if (fmt->style == SCIENTIFIC) {
        char m[64];
        int len = snprintf(m, sizeof m, "%.*e", fmt->digits, v);
        if (fmt->digits == 0) {   /* "1e-05" -> "1.e-05", as NumPy writes it */
            char *e = strchr(m, 'e');
            memmove(e + 1, e, (size_t)(m + len - e) + 1);
            *e = '.';
        }
        snprintf(buf, sizeof buf, "%*s", fmt->width, m);
    } else {
        int d = shortest_digits(v, pr->t->dtype, false);
        char num[64];
        int len = snprintf(num, sizeof num, "%.*f", d, v);
        int before = len - (d > 0 ? d + 1 : 0);
        /* align on the '.': pad the integer part on the left, the fraction on the right */
        snprintf(buf, sizeof buf, "%*s%.*s.%-*s", fmt->left - before, "", before, num, fmt->right,
                 d > 0 ? num + before + 1 : "");
    }
    pr->column += fprintf(pr->f, "%s", buf);
}

/* between two items of axis d: a space (wrapping long rows) on the last axis; otherwise one
 * newline per axis below d, then the indent of the open brackets */
static void put_separator(printer *pr, int d, int next_width)
{
    int ndim = pr->t->ndim;
    bool last_axis = d == ndim - 1;
    if (last_axis && pr->column + 1 + next_width <= LINE_WIDTH - ndim) {
        pr->column += fprintf(pr->f, " ");
        return;
    }
    for (int i = 0; i < (last_axis ? 1 : ndim - 1 - d); i++) fputc('\n', pr->f);
    pr->column = fprintf(pr->f, "%*s", d + 1, "");
}

static void put_axis(printer *pr, int d, const char *p)
{
    const nb_tensor *t = pr->t;
    int64_t n = t->shape[d], step = t->stride[d] * (int64_t)nb_dtype_size(t->dtype);
    bool last_axis = d == t->ndim - 1;
    pr->column += fprintf(pr->f, "[");
    for (int64_t i = 0; i < n; i = next_index(pr, n, i)) {
        if (i > 0 && is_cut(pr, n) && i == n - EDGE) {
            put_separator(pr, d, 3);
            pr->column += fprintf(pr->f, "...");
        }
        if (i > 0) put_separator(pr, d, last_axis ? pr->fmt.width : 0);
        if (last_axis) put_value(pr, nb_load(t->dtype, p + i * step));
        else put_axis(pr, d + 1, p + i * step);
    }
    pr->column += fprintf(pr->f, "]");
}

int nb_fprint(FILE *f, const nb_tensor *t)
{
    if (!t) return -1;   /* keep the message of whatever produced the NULL */
    if (!f) {
        nb_error("nb_fprint: NULL file");
        return -1;
    }
    printer pr = { t, nb_numel(t) > SUMMARY_OVER, f, 0, { INTEGER, 0, 0, 0, 0 } };
    if (nb_numel(t) == 0) {
        fputs("[]", f);
    } else {
        pr.fmt = choose_format(&pr);
        if (t->ndim == 0) put_value(&pr, nb_load(t->dtype, t->data));
        else put_axis(&pr, 0, t->data);
    }
    return fprintf(f, "\n%s %s\n", nb_dtype_name(t->dtype), nb_shp(t)) < 0 ? -1 : 0;
}

int nb_print(const nb_tensor *t) { return nb_fprint(stdout, t); }
