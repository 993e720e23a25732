/* Tensors: creation in every dtype, random numbers, views that share data, element access,
 * persistent tensors, scopes (memory stays flat across training steps) and their error messages. */
#include "nbtest.h"

static const nb_dtype all_dtypes[] = { NB_F32, NB_F64, NB_I64 };

/* ---- creation ---- */

/* a copy between overlapping views reads all of the source before it writes (issue 16's probe: a
 * matrix copied into its own transpose came out wrong, overlapping slices hit a memcpy overlap) */
START_TEST(test_copy_into_overlapping)
{
    nb_tensor *m = nb_reshape(nb_arange(NB_F64, 0, 9, 1), NB_SHAPE(3, 3)), *want = nb_copy(nb_transpose(m, 0, 1));
    ck_assert_int_eq(nb_copy_into(m, nb_transpose(m, 0, 1)), 0);
    nbt_assert_same_bits(m, want, "m = mᵀ", 0);
    nb_tensor *x = nb_arange(NB_F32, 0, 10, 1), *shifted = nb_arange(NB_F32, 0, 10, 1);
    ck_assert_int_eq(nb_copy_into(nb_slice(x, 0, 2, 10, 1), nb_slice(x, 0, 0, 8, 1)), 0);   /* x[2:] = x[:8] */
    for (int64_t i = 0; i < 10; i++) ck_assert_double_eq(nb_get(x, i), i < 2 ? i : i - 2);
    ck_assert_int_eq(nb_copy_into(nb_slice(shifted, 0, 0, 8, 1), nb_slice(shifted, 0, 2, 10, 1)), 0);   /* x[:8] = x[2:] */
    for (int64_t i = 0; i < 10; i++) ck_assert_double_eq(nb_get(shifted, i), i < 8 ? i + 2 : i);
    ck_assert_int_eq(nb_copy_into(x, x), 0);   /* the same view: nothing moves */
    ck_assert_double_eq(nb_get(x, 9), 7);
}
END_TEST

START_TEST(test_zeros_ones_full)
{
    for (int k = 0; k < 3; k++) {
        nb_dtype dt = all_dtypes[k];
        nb_tensor *z = nb_zeros(dt, NB_SHAPE(2, 3));
        nb_tensor *o = nb_ones(dt, NB_SHAPE(2, 3));
        nb_tensor *f = nb_full(dt, NB_SHAPE(3), 2.5);
        const double zeros[6] = { 0 }, ones[6] = { 1, 1, 1, 1, 1, 1 };
        const double full[3] = { 2.5, 2.5, 2.5 }, full_i64[3] = { 2, 2, 2 };
        nbt_assert_shape(z, 2, 3);
        nbt_assert_values(z, zeros, 0);
        nbt_assert_values(o, ones, 0);
        nbt_assert_values(f, dt == NB_I64 ? full_i64 : full, 0);
        ck_assert_int_eq(z->dtype, dt);
        ck_assert_int_eq(z->stride[0], 3);
        ck_assert_int_eq(z->stride[1], 1);
        ck_assert(nb_is_contiguous(z));
        ck_assert(!z->requires_grad && z->node == NULL && z->grad == NULL);
        ck_assert_ptr_eq(z->scope, nb_scope_current());
    }
}
END_TEST

START_TEST(test_scalar)
{
    for (int k = 0; k < 3; k++) {
        nb_tensor *s = nb_scalar(all_dtypes[k], -3.0);
        ck_assert_int_eq(s->ndim, 0);
        ck_assert_int_eq(nb_numel(s), 1);
        ck_assert(nb_item(s) == -3.0);
        char buf[16];
        ck_assert_int_eq(nb_shape_str(s, buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "[]");
    }
}
END_TEST

START_TEST(test_arange)
{
    const double up[5] = { 0, 1, 2, 3, 4 }, down[3] = { 5, 3, 1 }, quarters[4] = { 0, 0.25, 0.5, 0.75 };
    nb_tensor *a = nb_arange(NB_F64, 0, 5, 1);
    nbt_assert_shape(a, 5);
    nbt_assert_values(a, up, 0);
    a = nb_arange(NB_I64, 5, 0, -2);
    nbt_assert_shape(a, 3);
    nbt_assert_values(a, down, 0);
    a = nb_arange(NB_F32, 0, 1, 0.25);
    nbt_assert_shape(a, 4);
    nbt_assert_values(a, quarters, 0);
    nbt_assert_shape(nb_arange(NB_F32, 0, 0, 1), 0);    /* empty */
    nbt_assert_shape(nb_arange(NB_F32, 1, 0, 1), 0);    /* step points away from stop */
    nbt_assert_shape(nb_arange(NB_I64, 0, 10, 3), 4);   /* 0 3 6 9: ceil(10/3) */
    nbt_assert_error(nb_arange(NB_F32, 0, 1, 0), "nb_arange: bad range start=0 stop=1 step=0");
}
END_TEST

START_TEST(test_linspace)
{
    const double five[5] = { -1, -0.5, 0, 0.5, 1 }, one[1] = { 3 };
    for (int k = 0; k < 2; k++) {
        nb_tensor *l = nb_linspace(all_dtypes[k], -1, 1, 5);
        nbt_assert_shape(l, 5);
        nbt_assert_values(l, five, 0);
        /* NumPy: linspace(a, b, 1) is [a] */
        l = nb_linspace(all_dtypes[k], 3, 7, 1);
        nbt_assert_shape(l, 1);
        nbt_assert_values(l, one, 0);
        nbt_assert_shape(nb_linspace(all_dtypes[k], 0, 1, 0), 0);
    }
    /* the last element is exactly stop, not start + (n-1)·step rounded */
    nb_tensor *l = nb_linspace(NB_F64, 0.1, 0.7, 7);
    ck_assert(nb_get(l, 6) == 0.7);
    nbt_assert_error(nb_linspace(NB_F64, 0, 1, -1), "nb_linspace: negative count -1");
}
END_TEST

START_TEST(test_from_data)
{
    const float f[6] = { 1.5f, -2, 3, 4, 5, 6.25f };
    const double d[6] = { 1.5, -2, 3, 4, 5, 6.25 };
    const int64_t i[3] = { 7, -8, 9000000000LL };
    nb_tensor *tf = nb_from_data(NB_F32, NB_SHAPE(2, 3), f);
    nb_tensor *td = nb_from_data(NB_F64, NB_SHAPE(3, 2), d);
    nb_tensor *ti = nb_from_data(NB_I64, NB_SHAPE(3), i);
    nbt_assert_shape(tf, 2, 3);
    nbt_assert_shape(td, 3, 2);
    nbt_assert_values(tf, d, 0);
    nbt_assert_values(td, d, 0);
    ck_assert_ptr_ne(tf->data, f);   /* a copy */
    ck_assert_int_eq(((int64_t *)ti->data)[2], 9000000000LL);
    nbt_assert_error(nb_from_data(NB_F32, NB_SHAPE(2), NULL), "nb_from_data: NULL data");
}
END_TEST

START_TEST(test_from_doubles)
{
    const double v[4] = { 1.75, -2.5, 0.1, 1e10 };
    nb_tensor *f = nb_from_doubles(NB_F32, NB_SHAPE(2, 2), v);
    nb_tensor *d = nb_from_doubles(NB_F64, NB_SHAPE(4), v);
    nb_tensor *i = nb_from_doubles(NB_I64, NB_SHAPE(4), v);
    const double as_f32[4] = { 1.75, -2.5, (float)0.1, 1e10 }, as_i64[4] = { 1, -2, 0, 1e10 };
    nbt_assert_values(f, as_f32, 0);
    nbt_assert_values(d, v, 0);
    nbt_assert_values(i, as_i64, 0);   /* converts by truncation */
    nbt_assert_error(nb_from_doubles(NB_F64, NB_SHAPE(2), NULL), "nb_from_doubles: NULL values");
}
END_TEST

START_TEST(test_copy)
{
    const double v[6] = { 1, 2, 3, 4, 5, 6 }, vt[6] = { 1, 4, 2, 5, 3, 6 };
    for (int k = 0; k < 3; k++) {
        nb_tensor *x = nb_from_doubles(all_dtypes[k], NB_SHAPE(2, 3), v);
        nb_tensor *c = nb_copy(nb_transpose(x, 0, 1));
        nbt_assert_shape(c, 3, 2);
        nbt_assert_values(c, vt, 0);
        ck_assert(nb_is_contiguous(c));
        ck_assert_int_eq(c->dtype, all_dtypes[k]);
        ck_assert_ptr_ne(c->data, x->data);
    }
    /* a copy has no graph */
    nb_tensor *x = nb_ones(NB_F64, NB_SHAPE(2));
    nb_set_requires_grad(x, true);
    nb_tensor *c = nb_copy(nb_mul_scalar(x, 3));
    ck_assert(!c->requires_grad && c->node == NULL);
    ck_assert(nb_copy(NULL) == NULL);
}
END_TEST

START_TEST(test_eight_dims)
{
    nb_tensor *t = nb_ones(NB_F32, NB_SHAPE(1, 2, 1, 2, 1, 2, 1, 3));
    ck_assert_int_eq(t->ndim, 8);
    ck_assert_int_eq(nb_numel(t), 24);
    ck_assert_int_eq(t->stride[0], 24);
    ck_assert_int_eq(t->stride[7], 1);
    ck_assert(nb_item(nb_sum(t)) == 24);
    /* a full permutation of 8 axes and back */
    nb_tensor *p = nb_permute(t, NB_AXES(7, 6, 5, 4, 3, 2, 1, 0));
    nbt_assert_shape(p, 3, 1, 2, 1, 2, 1, 2, 1);
    char buf[64];
    nb_shape_str(t, buf, sizeof buf);
    ck_assert_str_eq(buf, "[1,2,1,2,1,2,1,3]");

    nb_shape nine = { 9, { 1, 1, 1, 1, 1, 1, 1, 1 } };
    nbt_assert_error(nb_zeros(NB_F32, nine), "nb_zeros: 9 dimensions given, at most 8 allowed");
    nbt_assert_error(nb_reshape(t, nine), "nb_reshape: 9 dimensions given, at most 8 allowed");
}
END_TEST

START_TEST(test_creation_errors)
{
    nbt_assert_error(nb_zeros(NB_F32, NB_SHAPE(2, -1)), "nb_zeros: negative size in shape [2,-1]");
    nbt_assert_error(nb_ones(NB_F64, NB_SHAPE(-3)), "nb_full: negative size in shape [-3]");
    nbt_assert_error(nb_empty(NB_I64, NB_SHAPE(4, -2, 1)), "nb_empty: negative size in shape [4,-2,1]");
    nbt_assert_error(nb_empty((nb_dtype)7, NB_SHAPE(2)), "nb_empty: unknown dtype 7");
    /* sizes whose product overflows are refused before anything is allocated */
    nbt_assert_error(nb_zeros(NB_F64, NB_SHAPE(1LL << 62, 4)), "nb_zeros: shape [4611686018427387904,4] has too many elements");
    nbt_assert_error(nb_expand(nb_scalar(NB_F32, 1), NB_SHAPE(1LL << 31, 1LL << 31, 4)),
                     "nb_expand: shape [2147483648,2147483648,4] has too many elements");
    nbt_assert_error(nb_arange(NB_F32, 0, 1e300, 1e-300), "nb_arange: bad range start=0 stop=1e+300 step=1e-300");
    nbt_assert_error(nb_linspace(NB_F32, 0, 1, INT64_MAX), "nb_linspace: shape [9223372036854775807] has too many elements");
    /* empty tensors are fine */
    nb_tensor *e = nb_zeros(NB_F64, NB_SHAPE(0, 3));
    nbt_assert_shape(e, 0, 3);
    ck_assert_int_eq(nb_numel(e), 0);
    ck_assert(nb_item(nb_sum(e)) == 0);
}
END_TEST

START_TEST(test_dtype_info)
{
    ck_assert_str_eq(nb_dtype_name(NB_F32), "f32");
    ck_assert_str_eq(nb_dtype_name(NB_F64), "f64");
    ck_assert_str_eq(nb_dtype_name(NB_I64), "i64");
    ck_assert_int_eq(nb_dtype_size(NB_F32), 4);
    ck_assert_int_eq(nb_dtype_size(NB_F64), 8);
    ck_assert_int_eq(nb_dtype_size(NB_I64), 8);
    nb_shape s = nb_shape_of(nb_zeros(NB_F32, NB_SHAPE(4, 5)));
    ck_assert_int_eq(s.ndim, 2);
    ck_assert_int_eq(s.d[0], 4);
    ck_assert_int_eq(s.d[1], 5);
}
END_TEST

/* ---- random numbers ---- */

START_TEST(test_rng_reproducible)
{
    nb_rng a, b, c;
    nb_rng_seed(&a, 1234);
    nb_rng_seed(&b, 1234);
    nb_rng_seed(&c, 1235);
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = nb_rng_next(&a);
        ck_assert(x == nb_rng_next(&b));
        same_as_c += x == nb_rng_next(&c);
    }
    ck_assert_int_eq(same_as_c, 0);

    /* tensors: same seed, same values; the generator advances between calls */
    nb_rng_seed(&a, 7);
    nb_rng_seed(&b, 7);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(50), &a, 1);
    nb_tensor *y = nb_randn(NB_F64, NB_SHAPE(50), &b, 1);
    nb_tensor *z = nb_randn(NB_F64, NB_SHAPE(50), &a, 1);
    ck_assert(memcmp(x->data, y->data, 50 * sizeof(double)) == 0);
    ck_assert(memcmp(x->data, z->data, 50 * sizeof(double)) != 0);
}
END_TEST

enum { DRAWS = 100000 };

static void moments(const nb_tensor *t, double *mean, double *std)
{
    double s = 0, s2 = 0;
    int64_t n = nb_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = nb_get(t, i);
        s += v;
        s2 += v * v;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

START_TEST(test_rng_distributions)
{
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    double lo = 1, hi = 0;
    for (int i = 0; i < DRAWS; i++) {
        double u = nb_rng_uniform(&rng);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    ck_assert(lo >= 0 && lo < 1e-3 && hi < 1 && hi > 1 - 1e-3);

    /* tolerances are about 5 standard errors of each estimate */
    double mean, std;
    moments(nb_rand(NB_F64, NB_SHAPE(DRAWS), &rng, 0, 1), &mean, &std);
    ck_assert_msg(fabs(mean - 0.5) < 0.005, "uniform mean %g", mean);
    ck_assert_msg(fabs(std - sqrt(1.0 / 12)) < 0.005, "uniform std %g", std);

    nb_tensor *r = nb_rand(NB_F32, NB_SHAPE(DRAWS), &rng, -3, 5);
    moments(r, &mean, &std);
    ck_assert_msg(fabs(mean - 1) < 0.05, "uniform [-3,5) mean %g", mean);
    for (int64_t i = 0; i < DRAWS; i++) ck_assert(nb_get(r, i) >= -3 && nb_get(r, i) <= 5);

    moments(nb_randn(NB_F64, NB_SHAPE(DRAWS), &rng, 1), &mean, &std);
    ck_assert_msg(fabs(mean) < 0.02, "normal mean %g", mean);
    ck_assert_msg(fabs(std - 1) < 0.02, "normal std %g", std);

    moments(nb_randn(NB_F32, NB_SHAPE(DRAWS), &rng, 0.01), &mean, &std);
    ck_assert_msg(fabs(mean) < 2e-4, "normal(0.01) mean %g", mean);
    ck_assert_msg(fabs(std - 0.01) < 2e-4, "normal(0.01) std %g", std);

    nb_tensor *b = nb_bernoulli(NB_F32, NB_SHAPE(DRAWS), &rng, 0.3);
    moments(b, &mean, &std);
    ck_assert_msg(fabs(mean - 0.3) < 0.01, "bernoulli frequency %g", mean);
    for (int64_t i = 0; i < DRAWS; i++) ck_assert(nb_get(b, i) == 0 || nb_get(b, i) == 1);
    moments(nb_bernoulli(NB_F64, NB_SHAPE(1000), &rng, 0), &mean, &std);
    ck_assert(mean == 0);
    moments(nb_bernoulli(NB_F64, NB_SHAPE(1000), &rng, 1), &mean, &std);
    ck_assert(mean == 1);

    /* each element is 1 exactly when the generator's next uniform is below p, in every dtype (p·2⁵³ not
     * an integer for 0.3 and 1/3) */
    const double ps[4] = { 0.3, 0.5, 1.0 / 3, 0.999 };
    const nb_dtype dts[3] = { NB_F32, NB_F64, NB_I64 };
    for (int k = 0; k < 4; k++)
        for (int d = 0; d < 3; d++) {
            nb_rng draws = rng;
            nb_tensor *mask = nb_bernoulli(dts[d], NB_SHAPE(1000), &rng, ps[k]);
            for (int64_t i = 0; i < 1000; i++)
                ck_assert_msg(nb_get(mask, i) == (nb_rng_uniform(&draws) < ps[k]), "p %g, %s, element %lld", ps[k],
                              nb_dtype_name(dts[d]), (long long)i);
            ck_assert(memcmp(&draws, &rng, sizeof rng) == 0);   /* one draw per element */
        }
}
END_TEST

START_TEST(test_rng_errors)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nbt_assert_error(nb_bernoulli(NB_F32, NB_SHAPE(2), &rng, 1.5), "nb_bernoulli: probability 1.5 outside [0, 1]");
    nbt_assert_error(nb_bernoulli(NB_F32, NB_SHAPE(2), &rng, NAN), "nb_bernoulli: probability nan outside [0, 1]");
    nbt_assert_error(nb_rand(NB_F32, NB_SHAPE(2), NULL, 0, 1), "nb_rand: NULL generator");
    nbt_assert_error(nb_randn(NB_F32, NB_SHAPE(-2), &rng, 1), "nb_randn: negative size in shape [-2]");
}
END_TEST

/* ---- views ---- */

START_TEST(test_reshape_view)
{
    nb_tensor *x = nb_arange(NB_F32, 0, 24, 1);
    nb_tensor *r = nb_reshape(x, NB_SHAPE(2, 3, 4));
    nbt_assert_shape(r, 2, 3, 4);
    ck_assert_ptr_eq(r->data, x->data);   /* contiguous: a view */
    ck_assert_int_eq(r->stride[0], 12);
    ck_assert_int_eq(r->stride[1], 4);
    nb_set(r, 5, 100);                    /* writes through to x */
    ck_assert(nb_get(x, 5) == 100);

    nb_tensor *inferred = nb_reshape(r, NB_SHAPE(4, -1));
    nbt_assert_shape(inferred, 4, 6);
    ck_assert_ptr_eq(inferred->data, x->data);
    nbt_assert_shape(nb_reshape(nb_scalar(NB_F64, 2), NB_SHAPE(1, 1)), 1, 1);
    nbt_assert_shape(nb_reshape(nb_ones(NB_F64, NB_SHAPE(1, 1)), NB_SHAPE0));
    nbt_assert_shape(nb_reshape(nb_zeros(NB_F64, NB_SHAPE(0, 3)), NB_SHAPE(3, -1, 2)), 3, 0, 2);
}
END_TEST

START_TEST(test_reshape_copy)
{
    /* x = [[0,1,2],[3,4,5]]; x^T = [[0,3],[1,4],[2,5]] is not row-major: flattening must copy */
    nb_tensor *x = nb_arange(NB_F64, 0, 6, 1);
    nb_tensor *t = nb_transpose(nb_reshape(x, NB_SHAPE(2, 3)), 0, 1);
    ck_assert(!nb_is_contiguous(t));
    nb_tensor *flat = nb_reshape(t, NB_SHAPE(6));
    const double expect[6] = { 0, 3, 1, 4, 2, 5 };
    nbt_assert_values(flat, expect, 0);
    ck_assert_ptr_ne(flat->data, x->data);
    ck_assert(nb_is_contiguous(flat));

    /* splitting an axis of the transpose keeps a view: [3,2] -> [3,2,1] and [3,1,2] */
    nb_tensor *split = nb_reshape(t, NB_SHAPE(3, 1, 2));
    ck_assert_ptr_eq(split->data, x->data);
    nbt_assert_values(split, expect, 0);
    /* x:[2,3,4] with axes 1,2 swapped: [2,4,3]; merging the leading axis with nothing else is a view */
    nb_tensor *y = nb_transpose(nb_reshape(nb_arange(NB_F64, 0, 24, 1), NB_SHAPE(2, 3, 4)), 1, 2);
    nb_tensor *merged = nb_reshape(y, NB_SHAPE(2, 2, 2, 3));
    ck_assert_ptr_eq(merged->data, y->data);
    for (int64_t i = 0; i < 24; i++) ck_assert(nb_get(merged, i) == nb_get(y, i));
    nb_tensor *copied = nb_reshape(y, NB_SHAPE(2, 12));
    ck_assert_ptr_ne(copied->data, y->data);
    for (int64_t i = 0; i < 24; i++) ck_assert(nb_get(copied, i) == nb_get(y, i));
}
END_TEST

START_TEST(test_reshape_errors)
{
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(2, 3));
    nbt_assert_error(nb_reshape(x, NB_SHAPE(4)), "nb_reshape: cannot reshape [2,3] (6 elements) into [4]");
    nbt_assert_error(nb_reshape(x, NB_SHAPE(4, -1)), "nb_reshape: cannot reshape [2,3] into [4,-1]");
    nbt_assert_error(nb_reshape(x, NB_SHAPE(-1, -1)), "nb_reshape: bad target shape [-1,-1] for [2,3]");
    nbt_assert_error(nb_reshape(x, NB_SHAPE(3, -2)), "nb_reshape: bad target shape [3,-2] for [2,3]");
}
END_TEST

START_TEST(test_permute_transpose)
{
    nb_tensor *x = nb_reshape(nb_arange(NB_F64, 0, 24, 1), NB_SHAPE(2, 3, 4));
    nb_tensor *p = nb_permute(x, NB_AXES(2, 0, 1));
    nbt_assert_shape(p, 4, 2, 3);
    ck_assert_ptr_eq(p->data, x->data);
    ck_assert_int_eq(p->stride[0], 1);
    ck_assert_int_eq(p->stride[1], 12);
    ck_assert_int_eq(p->stride[2], 4);
    /* p[i][j][k] = x[j][k][i] = 12j + 4k + i */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) ck_assert(nb_get(p, i * 6 + j * 3 + k) == 12 * j + 4 * k + i);
    nbt_assert_shape(nb_permute(x, NB_AXES(-1, 0, -2)), 4, 2, 3);

    nb_tensor *t = nb_transpose(x, -1, 0);
    nbt_assert_shape(t, 4, 3, 2);
    ck_assert_ptr_eq(t->data, x->data);
    ck_assert(nb_get(t, 1) == 12);    /* t[0][0][1] = x[1][0][0] */
    nbt_assert_shape(nb_transpose(x, 1, 1), 2, 3, 4);

    nbt_assert_error(nb_permute(x, NB_AXES(1, 0)), "nb_permute: 2 axes given for [2,3,4]");
    nbt_assert_error(nb_permute(x, NB_AXES(0, 1, 0)), "nb_permute: axis 0 repeated for [2,3,4]");
    nbt_assert_error(nb_permute(x, NB_AXES(0, 1, 3)), "nb_permute: axis 3 out of range for [2,3,4]");
    nbt_assert_error(nb_transpose(x, 0, 3), "nb_transpose: axis 3 out of range for [2,3,4]");
    nbt_assert_error(nb_transpose(x, -4, 0), "nb_transpose: axis -4 out of range for [2,3,4]");
}
END_TEST

START_TEST(test_expand)
{
    const double row[3] = { 1, 2, 3 };
    nb_tensor *x = nb_from_doubles(NB_F32, NB_SHAPE(1, 3), row);
    nb_tensor *e = nb_expand(x, NB_SHAPE(4, 3));
    nbt_assert_shape(e, 4, 3);
    ck_assert_ptr_eq(e->data, x->data);
    ck_assert_int_eq(e->stride[0], 0);
    ck_assert_int_eq(e->stride[1], 1);
    for (int64_t i = 0; i < 12; i++) ck_assert(nb_get(e, i) == row[i % 3]);
    ck_assert(!nb_is_contiguous(e));

    /* new leading axes, and a column expanded sideways */
    nb_tensor *e3 = nb_expand(nb_reshape(x, NB_SHAPE(3)), NB_SHAPE(2, 2, 3));
    nbt_assert_shape(e3, 2, 2, 3);
    ck_assert_int_eq(e3->stride[0], 0);
    ck_assert_int_eq(e3->stride[1], 0);
    nb_tensor *col = nb_expand(nb_reshape(x, NB_SHAPE(3, 1)), NB_SHAPE(3, 5));
    ck_assert(nb_get(col, 7) == 2);     /* col[1][2] = x[1] */
    ck_assert_int_eq(col->stride[1], 0);
    nbt_assert_shape(nb_expand(x, NB_SHAPE(1, 3)), 1, 3);

    nb_tensor *m = nb_zeros(NB_F32, NB_SHAPE(2, 3));
    nbt_assert_error(nb_expand(m, NB_SHAPE(4, 3)), "nb_expand: cannot expand [2,3] to [4,3]");
    nbt_assert_error(nb_expand(m, NB_SHAPE(3)), "nb_expand: cannot expand [2,3] to [3]");
    nbt_assert_error(nb_expand(m, NB_SHAPE(-1, 3)), "nb_expand: negative size in shape [-1,3]");
}
END_TEST

START_TEST(test_contiguous)
{
    nb_tensor *x = nb_reshape(nb_arange(NB_F64, 0, 6, 1), NB_SHAPE(2, 3));
    ck_assert_ptr_eq(nb_contiguous(x), x);
    nb_tensor *c = nb_contiguous(nb_transpose(x, 0, 1));
    const double expect[6] = { 0, 3, 1, 4, 2, 5 };
    ck_assert(nb_is_contiguous(c));
    ck_assert_ptr_ne(c->data, x->data);
    nbt_assert_values(c, expect, 0);
    ck_assert_int_eq(c->stride[0], 2);
    /* an expanded view is materialised */
    nb_tensor *e = nb_contiguous(nb_expand(nb_scalar(NB_F32, 7), NB_SHAPE(2, 2)));
    ck_assert_int_eq(e->stride[0], 2);
    ck_assert(nb_get(e, 3) == 7);
}
END_TEST

START_TEST(test_strided_access)
{
    nb_tensor *x = nb_reshape(nb_arange(NB_F64, 0, 6, 1), NB_SHAPE(2, 3));
    nb_tensor *t = nb_transpose(x, 0, 1);   /* [[0,3],[1,4],[2,5]] */
    ck_assert(nb_get(t, 1) == 3);
    ck_assert(nb_get(t, 4) == 2);
    ck_assert_int_eq(nb_set(t, 1, -3), 0);  /* t[0][1] is x[1][0] */
    ck_assert(nb_get(x, 3) == -3);

    double out[6];
    ck_assert_int_eq(nb_to_doubles(t, out), 0);
    const double expect[6] = { 0, -3, 1, 4, 2, 5 };
    for (int i = 0; i < 6; i++) ck_assert(out[i] == expect[i]);

    /* a slice with a step: columns 1 and 3 of [[0..3],[4..7],[8..11]], starting inside the data */
    nb_tensor *m = nb_reshape(nb_arange(NB_F32, 0, 12, 1), NB_SHAPE(3, 4));
    nb_tensor *cols = nb_slice(m, 1, 1, 4, 2);
    nbt_assert_shape(cols, 3, 2);
    const double odd[6] = { 1, 3, 5, 7, 9, 11 };
    nbt_assert_values(cols, odd, 0);
    ck_assert_int_eq(nb_set(cols, 3, -7), 0);
    ck_assert(nb_get(m, 7) == -7);
    nb_tensor *flat = nb_reshape(cols, NB_SHAPE(6));   /* not expressible with strides: a copy */
    ck_assert(nb_get(flat, 3) == -7 && nb_get(flat, 5) == 11);
    nb_tensor *rows = nb_reshape(nb_slice(m, 0, 1, 3, 1), NB_SHAPE(8));   /* whole rows: a view */
    ck_assert_ptr_eq(rows->data, (float *)m->data + 4);
    ck_assert(nb_get(rows, 3) == -7);

    /* every element of an expanded view is the one shared element */
    nb_tensor *s = nb_scalar(NB_F32, 1);
    nb_tensor *e = nb_expand(s, NB_SHAPE(3, 2));
    nb_set(e, 5, 9);
    ck_assert(nb_item(s) == 9);
    ck_assert(nb_get(e, 0) == 9);

    /* fill and copy_into through strides, converting dtypes */
    ck_assert_int_eq(nb_fill(nb_permute(x, NB_AXES(1, 0)), 2), 0);
    for (int64_t i = 0; i < 6; i++) ck_assert(nb_get(x, i) == 2);
    nb_tensor *f = nb_zeros(NB_F32, NB_SHAPE(3, 2));
    nb_tensor *src = nb_reshape(nb_arange(NB_I64, 0, 6, 1), NB_SHAPE(2, 3));
    ck_assert_int_eq(nb_copy_into(f, nb_transpose(src, 0, 1)), 0);
    const double srct[6] = { 0, 3, 1, 4, 2, 5 };
    nbt_assert_values(f, srct, 0);
}
END_TEST

START_TEST(test_access_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nb_clear_error();
    ck_assert(isnan(nb_item(x)));
    ck_assert_str_eq(nb_last_error(), "nb_item: expected one element, got [2,3]");
    nb_clear_error();
    ck_assert(isnan(nb_get(x, 6)));
    ck_assert_str_eq(nb_last_error(), "nb_get: index 6 out of range for [2,3]");
    nb_clear_error();
    ck_assert_int_eq(nb_set(x, -1, 0), -1);
    ck_assert_str_eq(nb_last_error(), "nb_set: index -1 out of range for [2,3]");
    nb_clear_error();
    ck_assert_int_eq(nb_copy_into(x, nb_zeros(NB_F64, NB_SHAPE(3, 2))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_copy_into: shapes differ: [2,3] and [3,2]");
    nb_clear_error();
    ck_assert(isnan(nb_item(nb_zeros(NB_F64, NB_SHAPE(0)))));
    ck_assert_str_eq(nb_last_error(), "nb_item: expected one element, got [0]");
    /* nb_item of any one-element tensor */
    ck_assert(nb_item(nb_full(NB_I64, NB_SHAPE(1, 1, 1), 5)) == 5);
}
END_TEST

/* ---- persistence ---- */

START_TEST(test_param_persist)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *w0 = nb_randn(NB_F32, NB_SHAPE(3, 4), &rng, 1);
    double expect[12];
    nb_to_doubles(w0, expect);
    nb_tensor *w = nb_param(w0);
    nb_tensor *buf = nb_persist(nb_transpose(w0, 0, 1));
    ck_assert(w != w0 && w->scope == NULL && buf->scope == NULL);
    ck_assert(w->requires_grad && !buf->requires_grad);
    ck_assert(nb_is_contiguous(buf));
    nbt_assert_shape(buf, 4, 3);

    /* a step that makes a persistent gradient, then the scope goes away */
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(w, w))), 0);
    ck_assert(w->grad != NULL && w->grad->scope == NULL);
    nb_scope_reset(NULL);
    nb_tensor *junk = nb_full(NB_F32, NB_SHAPE(100), -1);   /* reuses the scope's memory */
    ck_assert(junk != NULL);
    nbt_assert_values(w, expect, 0);
    for (int i = 0; i < 12; i++) ck_assert(nb_get(w->grad, i) == (float)(2 * (float)expect[i]));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) ck_assert(nb_get(buf, i * 3 + j) == expect[j * 4 + i]);

    /* a persistent tensor made a parameter is the same tensor */
    ck_assert_ptr_eq(nb_param(buf), buf);
    ck_assert(buf->requires_grad);
    nb_zero_grad(w);
    ck_assert(nb_get(w->grad, 0) == 0);
    nb_free(w);
    nb_free(buf);
    nb_free(NULL);
    nb_free(junk);   /* scoped: a no-op */
    ck_assert(nb_get(junk, 0) == -1);

    nbt_assert_error(nb_param(nb_zeros(NB_I64, NB_SHAPE(2))), "nb_param: expected a f32 or f64 tensor, got i64 [2]");
    ck_assert(nb_param(NULL) == NULL && nb_persist(NULL) == NULL);
}
END_TEST

/* ---- scopes ---- */

static nb_tensor *dense(nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_add(nb_matmul(x, w), b); }

START_TEST(test_scope_training_loop)
{
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_tensor *w1 = nb_param(nb_randn(NB_F32, NB_SHAPE(4, 8), &rng, 0.5));
    nb_tensor *b1 = nb_param(nb_zeros(NB_F32, NB_SHAPE(8)));
    nb_tensor *w2 = nb_param(nb_randn(NB_F32, NB_SHAPE(8, 3), &rng, 0.5));
    nb_tensor *b2 = nb_param(nb_zeros(NB_F32, NB_SHAPE(3)));
    nb_tensor *x = nb_persist(nb_randn(NB_F32, NB_SHAPE(5, 4), &rng, 1));
    nb_tensor *y = nb_persist(nb_randn(NB_F32, NB_SHAPE(5, 3), &rng, 1));
    nb_tensor *params[4] = { w1, b1, w2, b2 };
    nb_scope_reset(NULL);

    size_t reserved_after_first = 0;
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < 100; step++) {
        nb_tensor *h = nb_relu(dense(x, w1, b1));
        nb_tensor *loss = nb_mean(nb_square(nb_sub(dense(h, w2, b2), y)));
        ck_assert_msg(nb_backward(loss) == 0, "%s", nb_last_error());
        last_loss = nb_item(loss);
        if (step == 0) first_loss = last_loss;
        bool was = nb_set_grad_enabled(false);
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(nb_copy_into(params[k], nb_sub(params[k], nb_mul_scalar(params[k]->grad, 0.05))), 0);
            nb_zero_grad(params[k]);
        }
        nb_set_grad_enabled(was);
        ck_assert(nb_scope_used(NULL) > 0);
        nb_scope_reset(NULL);
        ck_assert_int_eq(nb_scope_used(NULL), 0);
        if (step == 0) reserved_after_first = nb_scope_reserved(NULL);
        else ck_assert_int_eq(nb_scope_reserved(NULL), reserved_after_first);
    }
    ck_assert(reserved_after_first > 0);
    ck_assert_msg(last_loss < 0.5 * first_loss, "loss %g -> %g", first_loss, last_loss);
    for (int k = 0; k < 4; k++) nb_free(params[k]);
    nb_free(x);
    nb_free(y);
}
END_TEST

START_TEST(test_scope_push_pop)
{
    nb_scope *def = nb_scope_current();
    nb_tensor *d = nb_ones(NB_F64, NB_SHAPE(8));
    size_t def_used = nb_scope_used(def);
    ck_assert_ptr_eq(d->scope, def);

    nb_scope *s = nb_scope_new();
    nb_scope *inner = nb_scope_new();
    nb_scope_push(s);
    ck_assert_ptr_eq(nb_scope_current(), s);
    nb_tensor *t = nb_full(NB_F64, NB_SHAPE(1000), 3);
    ck_assert_ptr_eq(t->scope, s);
    ck_assert(nb_scope_used(s) >= 8000 && nb_scope_used(NULL) == nb_scope_used(s));
    ck_assert(nb_scope_reserved(s) >= nb_scope_used(s));
    ck_assert_int_eq(nb_scope_used(def), def_used);

    nb_scope_push(inner);
    nb_tensor *u = nb_add(t, t);    /* reads s, writes inner */
    ck_assert_ptr_eq(u->scope, inner);
    ck_assert(nb_get(u, 999) == 6);
    nb_scope_free(inner);           /* on the stack: refused */
    nb_scope_pop();
    ck_assert_ptr_eq(nb_scope_current(), s);
    nb_scope_pop();
    ck_assert_ptr_eq(nb_scope_current(), def);
    nb_scope_pop();                 /* empty stack: no-op */
    ck_assert_ptr_eq(nb_scope_current(), def);

    /* memory made in s stays valid after the pop, until s is reset */
    ck_assert(nb_get(t, 500) == 3);
    ck_assert(nb_get(d, 7) == 1);
    nb_scope_reset(s);
    ck_assert_int_eq(nb_scope_used(s), 0);
    ck_assert(nb_scope_reserved(s) > 0);
    nb_scope_free(s);
    nb_scope_free(inner);
    ck_assert_int_eq(nb_scope_used(NULL), def_used);
}
END_TEST

START_TEST(test_scope_leaf_grad_lives_with_leaf)
{
    /* an input that requires grad, made in a long-lived scope, and steps in the default scope that
     * is reset after each: the gradient must live as long as its leaf, not as long as the step */
    nb_scope *data = nb_scope_new();
    nb_scope_push(data);
    const double xv[4] = { 1, 2, 3, 4 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(4), xv);
    nb_set_requires_grad(x, true);
    nb_scope_pop();
    for (int step = 1; step <= 3; step++) {
        nb_tensor *filler = nb_full(NB_F64, NB_SHAPE(256), 7);  /* reuses the last step's memory */
        nb_tensor *junk = nb_full(NB_F64, NB_SHAPE(4), -100);
        ck_assert(filler && junk);
        for (int i = 0; step > 1 && i < 4; i++) ck_assert(nb_get(x->grad, i) == -100 * 2 * xv[i] * (step - 1));
        ck_assert_msg(nb_backward(nb_sum(nb_mul(nb_mul(x, x), junk))) == 0, "step %d: %s", step, nb_last_error());
        for (int i = 0; i < 4; i++) ck_assert(nb_get(x->grad, i) == -100 * 2 * xv[i] * step);
        ck_assert_ptr_eq(x->grad->scope, data);
        nb_scope_reset(NULL);
    }
    nb_scope_free(data);
}
END_TEST

/* A scope grows by blocks of half what it holds: after a first block of 2 MiB + 64 bytes that is
 * 1 MiB + 32 bytes, which aligned_alloc(64, ...) refuses (the size must be a multiple of the
 * alignment; glibc accepted it, AddressSanitizer aborted and ThreadSanitizer returned NULL) */
START_TEST(test_scope_blocks_are_whole_alignments)
{
    nb_scope *s = nb_scope_new();
    nb_scope_push(s);
    nb_tensor *a = nb_empty(NB_F32, NB_SHAPE(((1 << 21) + 64) / 4));   /* fills the first block */
    nb_tensor *b = nb_empty(NB_F32, NB_SHAPE((1 << 19) / 4));          /* a second block of reserved / 2 */
    ck_assert_msg(a && b, "%s", nb_last_error());
    ck_assert_int_eq(nb_fill(b, 1.5), 0);
    ck_assert_double_eq(nb_get(b, (1 << 17) - 1), 1.5);
    ck_assert_uint_ge(nb_scope_reserved(s), ((size_t)1 << 21) + ((size_t)1 << 20));
    nb_scope_pop();
    nb_scope_free(s);
}
END_TEST

START_TEST(test_scope_large_and_reuse)
{
    /* an allocation larger than a block, then reuse after reset without new memory */
    nb_scope *s = nb_scope_new();
    nb_scope_push(s);
    for (int round = 0; round < 3; round++) {
        nb_tensor *big = nb_zeros(NB_F64, NB_SHAPE(300000));    /* 2.4 MB */
        nb_tensor *small = nb_ones(NB_F32, NB_SHAPE(10));
        ck_assert(big && small);
        ck_assert(((uintptr_t)big->data & 63) == 0 && ((uintptr_t)small->data & 63) == 0);
        ck_assert(nb_get(big, 299999) == 0 && nb_get(small, 9) == 1);
        size_t reserved = nb_scope_reserved(s);
        nb_scope_reset(s);
        if (round > 0) ck_assert_int_eq(nb_scope_reserved(s), reserved);
    }
    nb_scope_pop();
    nb_scope_free(s);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *c = tcase_create("creation");
    tcase_add_test(c, test_zeros_ones_full);
    tcase_add_test(c, test_scalar);
    tcase_add_test(c, test_arange);
    tcase_add_test(c, test_linspace);
    tcase_add_test(c, test_from_data);
    tcase_add_test(c, test_from_doubles);
    tcase_add_test(c, test_copy);
    tcase_add_test(c, test_eight_dims);
    tcase_add_test(c, test_creation_errors);
    tcase_add_test(c, test_dtype_info);
    suite_add_tcase(s, c);
    c = tcase_create("rng");
    tcase_add_test(c, test_rng_reproducible);
    tcase_add_test(c, test_rng_distributions);
    tcase_add_test(c, test_rng_errors);
    suite_add_tcase(s, c);
    c = tcase_create("views");
    tcase_add_test(c, test_reshape_view);
    tcase_add_test(c, test_reshape_copy);
    tcase_add_test(c, test_reshape_errors);
    tcase_add_test(c, test_permute_transpose);
    tcase_add_test(c, test_expand);
    tcase_add_test(c, test_contiguous);
    tcase_add_test(c, test_strided_access);
    tcase_add_test(c, test_access_errors);
    suite_add_tcase(s, c);
    c = tcase_create("memory");
    tcase_add_test(c, test_param_persist);
    tcase_add_test(c, test_scope_training_loop);
    tcase_add_test(c, test_scope_push_pop);
    tcase_add_test(c, test_scope_leaf_grad_lives_with_leaf);
    tcase_add_test(c, test_scope_large_and_reuse);
    tcase_add_test(c, test_scope_blocks_are_whole_alignments);
    tcase_add_test(c, test_copy_into_overlapping);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(tensor_suite)
