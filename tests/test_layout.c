/* Layout ops: slice (a view), pad, concat and cast — values, sharing, gradients and errors. */
#include "nbtest.h"

#include <stdint.h>

static const nb_dtype float_types[] = { NB_F32, NB_F64 };

/* 0, 1, 2, ... in the given shape */
static nb_tensor *counting(nb_dtype dt, nb_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.d[i];
    return nb_reshape(nb_arange(dt, 0, (double)n, 1), s);
}

/* A float64 leaf requiring grad. Modest values keep the rounding noise of central differences
 * (proportional to the size of f) far below the 1e-7 relative-error bar. */
static nb_tensor *input(nb_rng *rng, nb_shape s) { return nbt_input(rng, s, -0.25, 0.25); }

/* A second-order check differentiates a projected gradient numerically: elements whose second
 * derivative happens to be tiny see relatively more of that noise, so its bar is 1e-6. */
#define GRADGRAD_TOL 1e-6

/* ---- slice ---- */

START_TEST(test_slice_values)
{
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = nb_arange(float_types[k], 0, 10, 1);
        nb_tensor *tail = nb_slice(x, 0, -3, -1, 1);
        nbt_assert_shape(tail, 2);
        nbt_assert_values(tail, ((double[]){ 7, 8 }), 0);
        nbt_assert_values(nb_slice(x, 0, 1, 100, 3), ((double[]){ 1, 4, 7 }), 0);
        nbt_assert_values(nb_slice(x, 0, -100, 3, 1), ((double[]){ 0, 1, 2 }), 0);
        nbt_assert_values(nb_slice(x, 0, 0, INT64_MAX, INT64_MAX), ((double[]){ 0 }), 0);
        nbt_assert_shape(nb_slice(x, 0, 5, 2, 1), 0);
        nbt_assert_shape(nb_slice(x, 0, 12, 20, 1), 0);

        /* x[:, 1::2] and x[-2:, :] of a 3×4 matrix */
        nb_tensor *m = counting(float_types[k], NB_SHAPE(3, 4));
        nb_tensor *odd = nb_slice(m, 1, 1, INT64_MAX, 2);
        nbt_assert_shape(odd, 3, 2);
        nbt_assert_values(odd, ((double[]){ 1, 3, 5, 7, 9, 11 }), 0);
        nbt_assert_values(nb_slice(m, -2, -2, 3, 1), ((double[]){ 4, 5, 6, 7, 8, 9, 10, 11 }), 0);
        /* a slice of a transposed view: rows 1 and 3 of m^T */
        nbt_assert_values(nb_slice(nb_transpose(m, 0, 1), 0, 1, 4, 2), ((double[]){ 1, 5, 9, 3, 7, 11 }), 0);
    }
    /* i64 tensors (indices) slice too */
    nb_tensor *idx = nb_from_data(NB_I64, NB_SHAPE(4), (int64_t[]){ 3, 1, 4, 1 });
    nbt_assert_values(nb_slice(idx, 0, 1, 3, 1), ((double[]){ 1, 4 }), 0);
}
END_TEST

START_TEST(test_slice_is_a_view)
{
    nb_tensor *parent = counting(NB_F64, NB_SHAPE(3, 4));
    nb_tensor *s = nb_slice(parent, 1, 1, 4, 2);   /* columns 1 and 3 */
    ck_assert_int_eq(s->stride[0], 4);
    ck_assert_int_eq(s->stride[1], 2);
    ck_assert_ptr_eq(s->data, (double *)parent->data + 1);
    nb_set(parent, 5, 100);       /* parent[1][1] is s[1][0] */
    ck_assert_double_eq(nb_get(s, 2), 100);
    nb_set(s, 5, -7);             /* s[2][1] is parent[2][3] */
    ck_assert_double_eq(nb_get(parent, 11), -7);
}
END_TEST

typedef struct { int axis; int64_t start, stop, step; bool transposed, squared; } slice_case;

static nb_tensor *slice_fn(void *ctx, int n, nb_tensor *const *in)
{
    const slice_case *c = ctx;
    nb_tensor *x = c->transposed ? nb_transpose(in[0], 0, 1) : in[0];
    nb_tensor *y = nb_slice(x, c->axis, c->start, c->stop, c->step);
    return c->squared ? nb_square(y) : y;
}

START_TEST(test_slice_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *x = input(&rng, NB_SHAPE(4, 6));
    const slice_case cases[] = {
        { 1, -5, 6, 2, false, false },          /* columns 1, 3, 5 */
        { 0, 1, -1, 1, false, false },          /* rows 1, 2 */
        { 0, 1, INT64_MAX, 2, true, false },    /* rows 1, 3, 5 of x^T: non-contiguous input */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nbt_gradcheck(slice_fn, (void *)&cases[i], 1, &x, 1e-7, false);
        slice_case sq = cases[i];
        sq.squared = true;   /* a nonlinear f, so the second derivative runs through unslice's backward */
        nbt_gradcheck(slice_fn, &sq, 1, &x, 1e-7, false);
        nbt_gradgradcheck(slice_fn, &sq, 1, &x, GRADGRAD_TOL);
    }
}
END_TEST

START_TEST(test_slice_gradient_values)
{
    /* d Σ x[1::2] / dx places ones at the sliced positions and zeros elsewhere */
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(5));
    nb_set_requires_grad(x, true);
    ck_assert_int_eq(nb_backward(nb_sum(nb_slice(x, 0, 1, 5, 2))), 0);
    nbt_assert_values(x->grad, ((double[]){ 0, 1, 0, 1, 0 }), 0);
}
END_TEST

START_TEST(test_slice_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nbt_assert_error(nb_slice(x, 1, 0, 3, 0), "nb_slice: step 0 must be positive, slicing axis 1 of [2,3]");
    nbt_assert_error(nb_slice(x, -1, 0, 3, -1), "nb_slice: step -1 must be positive, slicing axis 1 of [2,3]");
    nbt_assert_error(nb_slice(x, 2, 0, 1, 1), "nb_slice: axis 2 out of range for [2,3]");
    nbt_assert_error(nb_slice(nb_scalar(NB_F64, 1), 0, 0, 1, 1), "nb_slice: axis 0 out of range for []");
    nbt_assert_error(nb_slice(NULL, 0, 0, 1, 1), "nb_slice: NULL input");
}
END_TEST

/* ---- pad ---- */

START_TEST(test_pad_values)
{
    for (int k = 0; k < 2; k++) {
        nb_tensor *x = nb_from_doubles(float_types[k], NB_SHAPE(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
        nb_tensor *p = nb_pad(x, 2, (int64_t[]){ 1, 0 }, (int64_t[]){ 0, 2 }, -1);
        nbt_assert_shape(p, 3, 5);
        ck_assert_int_eq(p->dtype, float_types[k]);
        nbt_assert_values(p, ((double[]){ -1, -1, -1, -1, -1, 1, 2, 3, -1, -1, 4, 5, 6, -1, -1 }), 0);
        /* a transposed input is read through its strides */
        nb_tensor *pt = nb_pad(nb_transpose(x, 0, 1), 2, (int64_t[]){ 0, 1 }, (int64_t[]){ 0, 0 }, 0);
        nbt_assert_shape(pt, 3, 3);
        nbt_assert_values(pt, ((double[]){ 0, 1, 4, 0, 2, 5, 0, 3, 6 }), 0);
        /* no padding is a copy of x */
        nbt_assert_values(nb_pad(x, 2, (int64_t[]){ 0, 0 }, (int64_t[]){ 0, 0 }, 9), ((double[]){ 1, 2, 3, 4, 5, 6 }), 0);
    }
    /* i64 pads with the value truncated to an integer */
    nb_tensor *pi = nb_pad(nb_from_data(NB_I64, NB_SHAPE(2), (int64_t[]){ 5, 6 }), 1, (int64_t[]){ 1 }, (int64_t[]){ 1 }, -1);
    ck_assert_int_eq(pi->dtype, NB_I64);
    nbt_assert_values(pi, ((double[]){ -1, 5, 6, -1 }), 0);
    /* a 0-d tensor has no axes to pad */
    nbt_assert_values(nb_pad(nb_scalar(NB_F64, 3), 0, NULL, NULL, 0), ((double[]){ 3 }), 0);
    /* n amounts pad the last n axes: an image's H and W only */
    nb_tensor *img = nb_ones(NB_F64, NB_SHAPE(1, 2, 1, 1));
    nb_tensor *padded = nb_pad(img, 2, (int64_t[]){ 1, 0 }, (int64_t[]){ 0, 1 }, 0);
    nbt_assert_shape(padded, 1, 2, 2, 2);
    nbt_assert_values(padded, ((double[]){ 0, 0, 1, 0, 0, 0, 1, 0 }), 0);
    /* padding an empty axis */
    nb_tensor *e = nb_pad(nb_zeros(NB_F64, NB_SHAPE(0, 2)), 2, (int64_t[]){ 1, 0 }, (int64_t[]){ 1, 0 }, 2);
    nbt_assert_shape(e, 2, 2);
    nbt_assert_values(e, ((double[]){ 2, 2, 2, 2 }), 0);
}
END_TEST

typedef struct { int64_t before[2], after[2]; bool transposed, squared; } pad_case;

static nb_tensor *pad_fn(void *ctx, int n, nb_tensor *const *in)
{
    const pad_case *c = ctx;
    nb_tensor *x = c->transposed ? nb_transpose(in[0], 0, 1) : in[0];
    nb_tensor *y = nb_pad(x, 2, c->before, c->after, 0.1);
    return c->squared ? nb_square(y) : y;
}

START_TEST(test_pad_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *x = input(&rng, NB_SHAPE(3, 4));
    const pad_case cases[] = {
        { { 1, 2 }, { 0, 1 }, false, false },
        { { 0, 0 }, { 2, 0 }, false, false },   /* padding on one axis only */
        { { 2, 1 }, { 1, 3 }, true, false },    /* transposed input */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nbt_gradcheck(pad_fn, (void *)&cases[i], 1, &x, 1e-7, false);
        pad_case sq = cases[i];
        sq.squared = true;
        nbt_gradcheck(pad_fn, &sq, 1, &x, 1e-7, false);
        nbt_gradgradcheck(pad_fn, &sq, 1, &x, GRADGRAD_TOL);
    }
}
END_TEST

START_TEST(test_pad_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nbt_assert_error(nb_pad(x, 2, (int64_t[]){ -1, 0 }, (int64_t[]){ 0, 0 }, 0),
                     "nb_pad: negative padding -1 before, 0 after on axis 0 of [2,3]");
    nbt_assert_error(nb_pad(x, 2, (int64_t[]){ 0, 0 }, (int64_t[]){ 0, -2 }, 0),
                     "nb_pad: negative padding 0 before, -2 after on axis 1 of [2,3]");
    nbt_assert_error(nb_pad(x, 2, NULL, (int64_t[]){ 0, 0 }, 0), "nb_pad: NULL padding amounts for [2,3]");
    nbt_assert_error(nb_pad(NULL, 1, (int64_t[]){ 0 }, (int64_t[]){ 0 }, 0), "nb_pad: NULL input");
    nbt_assert_error(nb_pad(x, 3, (int64_t[]){ 0, 0, 0 }, (int64_t[]){ 0, 0, 0 }, 0),
                     "nb_pad: 3 padding amounts for the 2 axes of [2,3]");
    nbt_assert_error(nb_pad(x, -1, NULL, NULL, 0), "nb_pad: -1 padding amounts for the 2 axes of [2,3]");
}
END_TEST

/* ---- concat ---- */

START_TEST(test_concat_values)
{
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = float_types[k];
        nb_tensor *rows[3] = {
            nb_from_doubles(dt, NB_SHAPE(1, 2), (double[]){ 1, 2 }),
            nb_from_doubles(dt, NB_SHAPE(2, 2), (double[]){ 3, 4, 5, 6 }),
            nb_from_doubles(dt, NB_SHAPE(1, 2), (double[]){ 7, 8 }),
        };
        nb_tensor *r = nb_concat(3, rows, 0);
        nbt_assert_shape(r, 4, 2);
        nbt_assert_values(r, ((double[]){ 1, 2, 3, 4, 5, 6, 7, 8 }), 0);

        nb_tensor *cols[3] = {
            nb_from_doubles(dt, NB_SHAPE(2, 1), (double[]){ 1, 2 }),
            /* a transposed input: [[3,5],[4,6]]^T = [[3,4],[5,6]] */
            nb_transpose(nb_from_doubles(dt, NB_SHAPE(2, 2), (double[]){ 3, 5, 4, 6 }), 0, 1),
            nb_from_doubles(dt, NB_SHAPE(2, 3), (double[]){ 7, 8, 9, 10, 11, 12 }),
        };
        nb_tensor *c = nb_concat(3, cols, -1);
        nbt_assert_shape(c, 2, 6);
        nbt_assert_values(c, ((double[]){ 1, 3, 4, 7, 8, 9, 2, 5, 6, 10, 11, 12 }), 0);
    }
    /* i64 tensors (labels) concatenate too */
    nb_tensor *labels[2] = { nb_from_data(NB_I64, NB_SHAPE(2), (int64_t[]){ 4, 2 }),
                             nb_from_data(NB_I64, NB_SHAPE(1), (int64_t[]){ 9 }) };
    nb_tensor *joined = nb_concat(2, labels, 0);
    ck_assert_int_eq(joined->dtype, NB_I64);
    nbt_assert_values(joined, ((double[]){ 4, 2, 9 }), 0);
    /* empty inputs contribute nothing */
    nb_tensor *two[2] = { nb_zeros(NB_F64, NB_SHAPE(0, 3)), nb_ones(NB_F64, NB_SHAPE(1, 3)) };
    nb_tensor *c = nb_concat(2, two, 0);
    nbt_assert_shape(c, 1, 3);
    nbt_assert_values(c, ((double[]){ 1, 1, 1 }), 0);
}
END_TEST

typedef struct { int axis; bool squared; } concat_case;

/* axis 0: in[0]:[2,3] ++ in[1]^T:[1,3] ++ in[2]:[3,3];  axis 1: in[0]:[3,2] ++ in[1]^T:[3,1] ++ in[2]:[3,3] */
static nb_tensor *concat_fn(void *ctx, int n, nb_tensor *const *in)
{
    const concat_case *c = ctx;
    nb_tensor *parts[3] = { in[0], nb_transpose(in[1], 0, 1), in[2] };
    nb_tensor *y = nb_concat(3, parts, c->axis);
    return c->squared ? nb_square(y) : y;
}

START_TEST(test_concat_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *along0[3] = { input(&rng, NB_SHAPE(2, 3)), input(&rng, NB_SHAPE(3, 1)),
                             input(&rng, NB_SHAPE(3, 3)) };
    nb_tensor *along1[3] = { input(&rng, NB_SHAPE(3, 2)), input(&rng, NB_SHAPE(1, 3)),
                             input(&rng, NB_SHAPE(3, 3)) };
    for (int axis = 0; axis < 2; axis++) {
        nb_tensor **in = axis == 0 ? along0 : along1;
        concat_case plain = { axis, false }, squared = { axis, true };
        nbt_gradcheck(concat_fn, &plain, 3, in, 1e-7, false);
        nbt_gradcheck(concat_fn, &squared, 3, in, 1e-7, false);
        nbt_gradgradcheck(concat_fn, &squared, 3, in, GRADGRAD_TOL);
    }
    /* only the inputs that require grad get one */
    nb_set_requires_grad(along0[1], false);
    concat_case plain = { 0, false };
    nbt_gradcheck(concat_fn, &plain, 3, along0, 1e-7, false);
}
END_TEST

START_TEST(test_concat_errors)
{
    nb_tensor *a = nb_zeros(NB_F64, NB_SHAPE(3, 4)), *b = nb_zeros(NB_F64, NB_SHAPE(3, 2));
    nb_tensor *bad_shape[3] = { a, b, nb_zeros(NB_F64, NB_SHAPE(2, 4)) };
    nbt_assert_error(nb_concat(3, bad_shape, 1), "nb_concat: input 2 is [2,4] but input 0 is [3,4]: only axis 1 may differ");
    nb_tensor *bad_rank[2] = { a, nb_zeros(NB_F64, NB_SHAPE(3, 4, 1)) };
    nbt_assert_error(nb_concat(2, bad_rank, 0), "nb_concat: input 1 is [3,4,1] but input 0 is [3,4]: only axis 0 may differ");
    nb_tensor *bad_dtype[2] = { a, nb_zeros(NB_F32, NB_SHAPE(3, 4)) };
    nbt_assert_error(nb_concat(2, bad_dtype, 0), "nb_concat: input 1 is f32 [3,4] but input 0 is f64 [3,4]");
    nbt_assert_error(nb_concat(2, bad_shape, 2), "nb_concat: axis 2 out of range for [3,4]");
    nbt_assert_error(nb_concat(0, bad_shape, 0), "nb_concat: no inputs (n = 0)");
    nbt_assert_error(nb_concat(1, NULL, 0), "nb_concat: no inputs (n = 1)");
    nb_tensor *with_null[2] = { a, NULL };
    nbt_assert_error(nb_concat(2, with_null, 0), "nb_concat: NULL input");
}
END_TEST

/* ---- cast ---- */

START_TEST(test_cast_values)
{
    nb_tensor *d = nb_from_doubles(NB_F64, NB_SHAPE(4), (double[]){ 1.5, -2.75, 0.1, 1e10 });
    nb_tensor *f = nb_cast(d, NB_F32);
    ck_assert_int_eq(f->dtype, NB_F32);
    nbt_assert_shape(f, 4);
    nbt_assert_values(f, ((double[]){ 1.5, -2.75, (float)0.1, 1e10 }), 0);
    nb_tensor *back = nb_cast(f, NB_F64);
    ck_assert_int_eq(back->dtype, NB_F64);
    nbt_assert_values(back, ((double[]){ 1.5, -2.75, (float)0.1, 1e10 }), 0);
    ck_assert_ptr_eq(nb_cast(d, NB_F64), d);   /* same dtype: x itself */

    /* float -> i64 truncates toward zero; i64 -> float is exact for small integers */
    nb_tensor *i = nb_cast(nb_from_doubles(NB_F32, NB_SHAPE(4), (double[]){ 2.9, -2.9, 0.5, 7 }), NB_I64);
    ck_assert_int_eq(i->dtype, NB_I64);
    nbt_assert_values(i, ((double[]){ 2, -2, 0, 7 }), 0);
    nb_tensor *from_i = nb_cast(i, NB_F64);
    ck_assert_int_eq(from_i->dtype, NB_F64);
    nbt_assert_values(from_i, ((double[]){ 2, -2, 0, 7 }), 0);
    /* a transposed input keeps its logical order */
    nb_tensor *t = nb_cast(nb_transpose(nb_from_doubles(NB_F64, NB_SHAPE(2, 2), (double[]){ 1, 2, 3, 4 }), 0, 1), NB_F32);
    nbt_assert_values(t, ((double[]){ 1, 3, 2, 4 }), 0);
}
END_TEST

START_TEST(test_cast_graph)
{
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 0.5, -1.25, 2 });
    nb_set_requires_grad(x, true);
    /* to i64 is not recorded */
    ck_assert(!nb_cast(x, NB_I64)->requires_grad);
    /* d Σ cast(x)·c / dx = c, in x's dtype */
    nb_tensor *c = nb_from_doubles(NB_F32, NB_SHAPE(3), (double[]){ 3, -0.5, 0.25 });
    nb_tensor *y = nb_cast(x, NB_F32);
    ck_assert(y->requires_grad);
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(y, c))), 0);
    ck_assert_int_eq(x->grad->dtype, NB_F64);
    nbt_assert_values(x->grad, ((double[]){ 3, -0.5, 0.25 }), 0);

    /* double backward through two casts: g = d Σ cast(x)² / dx = 2x, then d Σ g·s / dx = 2s */
    nb_tensor *g;
    ck_assert_int_eq(nb_grad(nb_sum(nb_square(nb_cast(x, NB_F32))), NULL, 1, &x, &g, true), 0);
    ck_assert_int_eq(g->dtype, NB_F64);
    nbt_assert_values(g, ((double[]){ 1, -2.5, 4 }), 0);
    nb_tensor *s = nb_from_doubles(NB_F64, NB_SHAPE(3), (double[]){ 1, 2, -3 });
    nb_tensor *gg;
    ck_assert_int_eq(nb_grad(nb_sum(nb_mul(g, s)), NULL, 1, &x, &gg, false), 0);
    nbt_assert_values(gg, ((double[]){ 2, 4, -6 }), 0);
}
END_TEST

static nb_tensor *round_trip_fn(void *ctx, int n, nb_tensor *const *in)
{
    return nb_cast(nb_cast(in[0], NB_F32), NB_F64);
}

START_TEST(test_cast_gradcheck)
{
    /* Dyadic inputs and step keep x ± h exact in f32, so the numerical derivative is exact; the
     * analytic one is the projection rounded to f32 and back (relative error <= 2^-25). */
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), (double[]){ 0.25, -1.5, 3, 0.125, -0.75, 2.5 });
    nb_set_requires_grad(x, true);
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.eps = 0.0625;
    nb_gradcheck_result r;
    ck_assert_int_eq(nb_gradcheck(round_trip_fn, NULL, 1, &x, &o, &r), 1);
    ck_assert_msg(r.max_rel_error < 1e-7, "relative error %g", r.max_rel_error);
    ck_assert_int_eq(r.checked, 6);
}
END_TEST

START_TEST(test_cast_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2));
    nbt_assert_error(nb_cast(x, (nb_dtype)7), "nb_cast: unknown dtype 7 for [2]");
    nbt_assert_error(nb_cast(NULL, NB_F32), "nb_cast: NULL input");
    /* a NULL input keeps the first message */
    nb_tensor *bad = nb_reshape(x, NB_SHAPE(3));
    const char *first = "nb_reshape: cannot reshape [2] (2 elements) into [3]";
    ck_assert_str_eq(nb_last_error(), first);
    ck_assert_ptr_null(nb_slice(nb_pad(nb_cast(bad, NB_F32), 1, (int64_t[]){ 0 }, (int64_t[]){ 0 }, 0), 0, 0, 1, 1));
    ck_assert_str_eq(nb_last_error(), first);
}
END_TEST

static Suite *layout_suite(void)
{
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_slice_values);
    tcase_add_test(tc, test_slice_is_a_view);
    tcase_add_test(tc, test_slice_gradients);
    tcase_add_test(tc, test_slice_gradient_values);
    tcase_add_test(tc, test_slice_errors);
    tcase_add_test(tc, test_pad_values);
    tcase_add_test(tc, test_pad_gradients);
    tcase_add_test(tc, test_pad_errors);
    tcase_add_test(tc, test_concat_values);
    tcase_add_test(tc, test_concat_gradients);
    tcase_add_test(tc, test_concat_errors);
    tcase_add_test(tc, test_cast_values);
    tcase_add_test(tc, test_cast_graph);
    tcase_add_test(tc, test_cast_gradcheck);
    tcase_add_test(tc, test_cast_errors);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(layout_suite)
