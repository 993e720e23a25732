/* nb_matmul: values against the definition (2-D, size-1 dims, strided views, batched broadcast),
 * gradients to second order, the cs231n affine case and the error messages. */
#include "nbtest.h"

static const nb_dtype float_types[] = { NB_F32, NB_F64 };

/* element [batch.., row, col] of t, whose batch axes broadcast against the coordinates in `coord`
 * (given for `nd` output axes) */
static double element_at(const nb_tensor *t, const int64_t *coord, int nd, int64_t row, int64_t col)
{
    int64_t flat = 0;
    for (int d = 0; d < t->ndim - 2; d++) {
        int64_t c = t->shape[d] == 1 ? 0 : coord[d + nd - t->ndim];
        flat = flat * t->shape[d] + c;
    }
    flat = flat * t->shape[t->ndim - 2] + row;
    return nb_get(t, flat * t->shape[t->ndim - 1] + col);
}

/* checks out = a·b by the definition, in double, within tol */
static void assert_matmul(const nb_tensor *out, const nb_tensor *a, const nb_tensor *b, double tol)
{
    ck_assert_msg(out != NULL, "nb_matmul failed: %s", nb_last_error());
    int nd = out->ndim;
    int64_t k_len = a->shape[a->ndim - 1];
    for (int64_t o = 0; o < nb_numel(out); o++) {
        int64_t coord[NB_MAX_DIMS], rest = o;
        for (int d = nd - 1; d >= 0; d--) {
            coord[d] = rest % out->shape[d];
            rest /= out->shape[d];
        }
        double expect = 0;
        for (int64_t k = 0; k < k_len; k++)
            expect += element_at(a, coord, nd, coord[nd - 2], k) * element_at(b, coord, nd, k, coord[nd - 1]);
        ck_assert_msg(fabs(nb_get(out, o) - expect) <= tol, "element %lld: %.12g != %.12g", (long long)o,
                      nb_get(out, o), expect);
    }
}

/* [rows,cols] with random values, or the transpose of a random [cols,rows] (a strided view) */
static nb_tensor *matrix(nb_dtype dt, nb_rng *rng, int64_t rows, int64_t cols, bool transposed)
{
    if (!transposed) return nb_rand(dt, NB_SHAPE(rows, cols), rng, -1, 1);
    return nb_transpose(nb_rand(dt, NB_SHAPE(cols, rows), rng, -1, 1), 0, 1);
}

static double tolerance(nb_dtype dt) { return dt == NB_F32 ? 1e-5 : 1e-12; }

/* ---- forward ---- */

START_TEST(test_matmul_values)
{
    for (int k = 0; k < 2; k++) {
        nb_tensor *a = nb_from_doubles(float_types[k], NB_SHAPE(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
        nb_tensor *b = nb_from_doubles(float_types[k], NB_SHAPE(3, 2), (double[]){ 7, 8, 9, 10, 11, 12 });
        nb_tensor *c = nb_matmul(a, b);
        nbt_assert_shape(c, 2, 2);
        ck_assert_int_eq(c->dtype, float_types[k]);
        nbt_assert_values(c, ((double[]){ 58, 64, 139, 154 }), 0);
        /* b^T·a^T = (a·b)^T, read through the transposes' strides */
        nbt_assert_values(nb_matmul(nb_transpose(b, 0, 1), nb_transpose(a, 0, 1)), ((double[]){ 58, 139, 64, 154 }), 0);
    }
}
END_TEST

START_TEST(test_matmul_unit_dims)
{
    /* every combination of M, K, N in {1, 3}, plus a few larger, with each operand plain or transposed */
    const int64_t sizes[][3] = { { 1, 1, 1 }, { 1, 3, 1 }, { 3, 1, 1 }, { 1, 1, 3 }, { 3, 3, 1 },
                                 { 3, 1, 3 }, { 1, 3, 3 }, { 3, 3, 3 }, { 1, 5, 4 }, { 6, 1, 5 } };
    nb_rng rng;
    nb_rng_seed(&rng, 10);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int layout = 0; layout < 4; layout++) {
                int64_t m = sizes[i][0], kk = sizes[i][1], n = sizes[i][2];
                nb_tensor *a = matrix(float_types[k], &rng, m, kk, layout & 1);
                nb_tensor *b = matrix(float_types[k], &rng, kk, n, layout & 2);
                nb_tensor *c = nb_matmul(a, b);
                nbt_assert_shape(c, m, n);
                assert_matmul(c, a, b, tolerance(float_types[k]));
            }
}
END_TEST

START_TEST(test_matmul_strided_views)
{
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = float_types[k];
        double tol = tolerance(dt);
        /* every other column: strides (8,2), a general stride BLIS reads in place */
        nb_tensor *a = nb_slice(nb_rand(dt, NB_SHAPE(5, 8), &rng, -1, 1), 1, 1, 8, 2);
        /* every other row: strides (6,1) */
        nb_tensor *b = nb_slice(nb_rand(dt, NB_SHAPE(8, 3), &rng, -1, 1), 0, 0, 8, 2);
        assert_matmul(nb_matmul(a, b), a, b, tol);
        /* every other row of a transposed matrix */
        nb_tensor *at = nb_slice(nb_transpose(nb_rand(dt, NB_SHAPE(4, 10), &rng, -1, 1), 0, 1), 0, 0, 10, 2);
        assert_matmul(nb_matmul(at, b), at, b, tol);
        /* strides (3,2): rows and columns interleave, a layout BLIS rejects (copied first) */
        nb_tensor *odd = nb_slice(nb_rand(dt, NB_SHAPE(4, 3), &rng, -1, 1), 1, 0, 3, 2);
        nb_tensor *small = nb_rand(dt, NB_SHAPE(2, 3), &rng, -1, 1);
        assert_matmul(nb_matmul(odd, small), odd, small, tol);
        /* broadcast (stride 0) operands */
        nb_tensor *row = nb_expand(nb_rand(dt, NB_SHAPE(1, 4), &rng, -1, 1), NB_SHAPE(3, 4));
        nb_tensor *col = nb_expand(nb_rand(dt, NB_SHAPE(4, 1), &rng, -1, 1), NB_SHAPE(4, 5));
        assert_matmul(nb_matmul(row, col), row, col, tol);
        /* big enough for BLIS's blocked kernels */
        nb_tensor *big_a = matrix(dt, &rng, 70, 50, true), *big_b = matrix(dt, &rng, 50, 90, false);
        assert_matmul(nb_matmul(big_a, big_b), big_a, big_b, dt == NB_F32 ? 1e-4 : 1e-11);
    }
}
END_TEST

START_TEST(test_matmul_reads_views_in_place)
{
    /* a transposed or general-stride operand costs no copy: the scope grows by the output only */
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    nb_tensor *a = nb_transpose(nb_rand(NB_F64, NB_SHAPE(64, 128), &rng, -1, 1), 0, 1);   /* [128,64], 64 KiB */
    nb_tensor *sliced = nb_slice(nb_rand(NB_F64, NB_SHAPE(128, 128), &rng, -1, 1), 1, 0, 128, 2);
    nb_tensor *b = nb_rand(NB_F64, NB_SHAPE(64, 8), &rng, -1, 1);
    size_t before = nb_scope_used(NULL);
    nb_tensor *c = nb_matmul(a, b);
    nb_tensor *d = nb_matmul(sliced, b);
    size_t grown = nb_scope_used(NULL) - before;
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(grown < 32 * 1024, "matmul allocated %zu bytes for two 8 KiB outputs", grown);
    assert_matmul(c, a, b, 1e-12);
    assert_matmul(d, sliced, b, 1e-12);
}
END_TEST

START_TEST(test_matmul_batched)
{
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = float_types[k];
        double tol = tolerance(dt);
        nb_tensor *a = nb_rand(dt, NB_SHAPE(2, 1, 3, 4), &rng, -1, 1);
        nb_tensor *b = nb_rand(dt, NB_SHAPE(3, 4, 5), &rng, -1, 1);
        nb_tensor *c = nb_matmul(a, b);
        nbt_assert_shape(c, 2, 3, 3, 5);
        assert_matmul(c, a, b, tol);
        /* a 2-D operand broadcasts over the other's batch, on either side */
        nb_tensor *m = nb_rand(dt, NB_SHAPE(3, 4), &rng, -1, 1);
        nb_tensor *bb = nb_rand(dt, NB_SHAPE(2, 4, 5), &rng, -1, 1);
        nbt_assert_shape(nb_matmul(m, bb), 2, 3, 5);
        assert_matmul(nb_matmul(m, bb), m, bb, tol);
        nb_tensor *ab = nb_rand(dt, NB_SHAPE(2, 5, 3), &rng, -1, 1);
        nbt_assert_shape(nb_matmul(ab, m), 2, 5, 4);
        assert_matmul(nb_matmul(ab, m), ab, m, tol);
        /* with b the same in every batch, batches of whole rows run as one product of all rows; rows
         * that do not follow each other (every other row, batch axes swapped) as a product per batch */
        nb_tensor *a4 = nb_rand(dt, NB_SHAPE(2, 3, 5, 3), &rng, -1, 1);
        assert_matmul(nb_matmul(a4, m), a4, m, tol);
        nb_tensor *every_other = nb_slice(a4, 2, 0, INT64_MAX, 2), *swapped = nb_transpose(a4, 0, 1);
        assert_matmul(nb_matmul(every_other, m), every_other, m, tol);
        assert_matmul(nb_matmul(swapped, m), swapped, m, tol);
        nb_tensor *one_row = nb_rand(dt, NB_SHAPE(4, 1, 3), &rng, -1, 1);   /* m = 1 */
        assert_matmul(nb_matmul(one_row, m), one_row, m, tol);
        /* batched transposed views: [2,5,4] -> [2,4,5] */
        nb_tensor *bt = nb_transpose(nb_rand(dt, NB_SHAPE(2, 5, 4), &rng, -1, 1), 1, 2);
        nb_tensor *a2 = nb_rand(dt, NB_SHAPE(2, 3, 4), &rng, -1, 1);
        assert_matmul(nb_matmul(a2, bt), a2, bt, tol);
        /* a batch axis moved innermost: a permuted view with batch stride 1 */
        nb_tensor *ap = nb_permute(nb_rand(dt, NB_SHAPE(3, 4, 2), &rng, -1, 1), NB_AXES(2, 0, 1));
        assert_matmul(nb_matmul(ap, bt), ap, bt, tol);
    }
}
END_TEST

START_TEST(test_matmul_empty)
{
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = float_types[k];
        /* K = 0: an empty sum is zero */
        nb_tensor *z = nb_matmul(nb_empty(dt, NB_SHAPE(2, 0)), nb_empty(dt, NB_SHAPE(0, 3)));
        nbt_assert_shape(z, 2, 3);
        nbt_assert_values(z, ((double[]){ 0, 0, 0, 0, 0, 0 }), 0);
        nbt_assert_shape(nb_matmul(nb_empty(dt, NB_SHAPE(0, 3)), nb_ones(dt, NB_SHAPE(3, 2))), 0, 2);
        nbt_assert_shape(nb_matmul(nb_ones(dt, NB_SHAPE(2, 3)), nb_empty(dt, NB_SHAPE(3, 0))), 2, 0);
        nbt_assert_shape(nb_matmul(nb_empty(dt, NB_SHAPE(0, 2, 3)), nb_ones(dt, NB_SHAPE(3, 4))), 0, 2, 4);
    }
}
END_TEST

/* C.8.1 of cs231n-cases.md: affine_forward, x flattened to [N, D] */
START_TEST(test_matmul_cs231n_affine)
{
    nb_tensor *x = nb_reshape(nb_linspace(NB_F64, -0.1, 0.5, 240), NB_SHAPE(2, 4, 5, 6));
    nb_tensor *w = nb_reshape(nb_linspace(NB_F64, -0.2, 0.3, 360), NB_SHAPE(120, 3));
    nb_tensor *b = nb_linspace(NB_F64, -0.3, 0.1, 3);
    nb_tensor *out = nb_add(nb_matmul(nb_reshape(x, NB_SHAPE(2, 120)), w), b);
    nbt_assert_shape(out, 2, 3);
    nbt_assert_values(out, ((double[]){ 1.49834967, 1.70660132, 1.91485297, 3.25553199, 3.5141327, 3.77273342 }), 1e-8);
}
END_TEST

/* ---- gradients ---- */

/* A float64 leaf requiring grad. Modest values keep the rounding noise of central differences
 * (proportional to the size of f) far below the 1e-7 relative-error bar. */
static nb_tensor *input(nb_rng *rng, nb_shape s) { return nbt_input(rng, s, -0.5, 0.5); }

typedef enum { PLAIN, TRANSPOSED, SLICED, EXPANDED } operand_view;

/* a·b after viewing both operands as `ctx` says */
static nb_tensor *matmul_fn(void *ctx, int n, nb_tensor *const *in)
{
    nb_tensor *a = in[0], *b = in[1];
    switch (*(const operand_view *)ctx) {
    case TRANSPOSED: return nb_matmul(nb_transpose(a, -1, -2), nb_transpose(b, -1, -2));
    case SLICED: return nb_matmul(nb_slice(a, -1, 0, INT64_MAX, 2), nb_slice(b, 0, 1, INT64_MAX, 2));
    case EXPANDED: return nb_matmul(nb_expand(a, NB_SHAPE(3, 4)), b);
    default: return nb_matmul(a, b);
    }
}

static void check_gradients(operand_view view, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[2] = { a, b };
    nbt_gradcheck(matmul_fn, &view, 2, in, 1e-7, false);
    nbt_gradgradcheck(matmul_fn, &view, 2, in, 1e-7);
}

START_TEST(test_matmul_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 20);
    check_gradients(PLAIN, input(&rng, NB_SHAPE(3, 4)), input(&rng, NB_SHAPE(4, 5)));
    check_gradients(PLAIN, input(&rng, NB_SHAPE(1, 3)), input(&rng, NB_SHAPE(3, 1)));   /* M = N = 1 */
    check_gradients(PLAIN, input(&rng, NB_SHAPE(4, 1)), input(&rng, NB_SHAPE(1, 2)));   /* K = 1 */
    check_gradients(TRANSPOSED, input(&rng, NB_SHAPE(4, 3)), input(&rng, NB_SHAPE(5, 4)));
    /* a:[3,8] -> every other column [3,4];  b:[9,2] -> rows 1,3,5,7 [4,2] */
    check_gradients(SLICED, input(&rng, NB_SHAPE(3, 8)), input(&rng, NB_SHAPE(9, 2)));
    /* a:[1,4] broadcast to [3,4] (stride 0 rows) */
    check_gradients(EXPANDED, input(&rng, NB_SHAPE(1, 4)), input(&rng, NB_SHAPE(4, 2)));
}
END_TEST

START_TEST(test_matmul_batched_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    check_gradients(PLAIN, input(&rng, NB_SHAPE(2, 1, 3, 2)), input(&rng, NB_SHAPE(3, 2, 2)));
    check_gradients(PLAIN, input(&rng, NB_SHAPE(3, 4)), input(&rng, NB_SHAPE(2, 4, 2)));
    check_gradients(TRANSPOSED, input(&rng, NB_SHAPE(2, 4, 3)), input(&rng, NB_SHAPE(1, 2, 4)));
    /* b 2-D under a batched a: the gradients of one product of all rows (a transposed: rows copied) */
    check_gradients(PLAIN, input(&rng, NB_SHAPE(2, 3, 4)), input(&rng, NB_SHAPE(4, 5)));
    check_gradients(PLAIN, input(&rng, NB_SHAPE(2, 2, 3, 4)), input(&rng, NB_SHAPE(4, 2)));
    check_gradients(TRANSPOSED, input(&rng, NB_SHAPE(2, 4, 3)), input(&rng, NB_SHAPE(5, 4)));
}
END_TEST

START_TEST(test_matmul_gradient_values)
{
    /* d Σ(a·b)/da = 1·b^T: row sums of b in every row; d/db = a^T·1: column sums of a in every column */
    nb_tensor *a = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    nb_tensor *b = nb_from_doubles(NB_F64, NB_SHAPE(3, 2), (double[]){ 7, 8, 9, 10, 11, 12 });
    nb_set_requires_grad(a, true);
    nb_set_requires_grad(b, true);
    nb_tensor *c = nb_matmul(a, b);
    ck_assert(c->requires_grad);
    ck_assert_int_eq(nb_backward(nb_sum(c)), 0);
    nbt_assert_values(a->grad, ((double[]){ 15, 19, 23, 15, 19, 23 }), 0);
    nbt_assert_values(b->grad, ((double[]){ 5, 5, 7, 7, 9, 9 }), 0);
    /* nothing is recorded with grad mode off */
    bool was = nb_set_grad_enabled(false);
    ck_assert(!nb_matmul(a, b)->requires_grad);
    nb_set_grad_enabled(was);
}
END_TEST

/* A large 2-D product's gradients run as tasks shared by the threads (da, db, the bias's sum) when no
 * graph is recorded; under create_graph they are the ops of the rule.
 * Both give the same numbers, bit for bit, with a stored and a transposed a, with and without a bias, in
 * f32 and f64 (on two threads, unless other processes hold the CPUs: then both take the ops, and agree
 * all the more). */
START_TEST(test_matmul_gradients_side_by_side)
{
    nb_rng rng;
    nb_rng_seed(&rng, 23);
    const int was = nb_num_threads();
    nb_set_num_threads(2);
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 2; t++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                nb_tensor *a = nb_randn(float_types[d], t ? NB_SHAPE(160, 192) : NB_SHAPE(192, 160), &rng, 1);
                nb_tensor *b = nb_randn(float_types[d], NB_SHAPE(160, 176), &rng, 1);
                nb_tensor *bias = nb_randn(float_types[d], NB_SHAPE(176), &rng, 1);
                nb_tensor *w = nb_randn(float_types[d], NB_SHAPE(192, 176), &rng, 1);
                nb_tensor *xs[3] = { a, b, bias }, *fast[3], *ops[3];
                for (int i = 0; i < 3; i++) nb_set_requires_grad(xs[i], true);
                nb_tensor *a_used = t ? nb_transpose(a, 0, 1) : a;
                nb_tensor *product = with_bias ? nb_matmul_bias(a_used, b, bias) : nb_matmul(a_used, b);
                nb_tensor *y = nb_sum(nb_mul(product, w));
                const int n = with_bias ? 3 : 2;
                ck_assert_int_eq(nb_grad(y, NULL, n, xs, fast, false), 0);
                ck_assert_int_eq(nb_grad(y, NULL, n, xs, ops, true), 0);
                for (int i = 0; i < n; i++) nbt_assert_same_bits(fast[i], ops[i], "gradient", i);
                /* and the values: da = w·bᵀ (or its transpose), dbias = w's column sums */
                nb_tensor *da = nb_matmul(w, nb_transpose(b, 0, 1));
                nbt_assert_same(fast[0], t ? nb_transpose(da, 0, 1) : da, 0);
                if (with_bias) nbt_assert_same(fast[2], nb_sum_axes(w, NB_AXES(0), false), 0);
            }
    nb_set_num_threads(was);
}
END_TEST

/* ---- matmul with a bias ---- */

/* a·b + bias through the one op (or, ctx != NULL, a transposed a and a strided bias) */
static nb_tensor *matmul_bias_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    if (ctx) return nb_matmul_bias(nb_transpose(in[0], -1, -2), in[1], nb_slice(in[2], 0, 0, INT64_MAX, 2));
    return nb_matmul_bias(in[0], in[1], in[2]);
}

START_TEST(test_matmul_bias)
{
    nb_rng rng;
    nb_rng_seed(&rng, 22);
    for (int d = 0; d < 2; d++) {   /* the same numbers as matmul then add, bit for bit */
        nb_tensor *a = nb_randn(float_types[d], NB_SHAPE(2, 5, 7), &rng, 1), *b = nb_randn(float_types[d], NB_SHAPE(7, 3), &rng, 1);
        nb_tensor *bias = nb_randn(float_types[d], NB_SHAPE(3), &rng, 1);
        nbt_assert_same(nb_matmul_bias(a, b, bias), nb_add(nb_matmul(a, b), bias), 0);
    }
    nb_tensor *in[3] = { input(&rng, NB_SHAPE(2, 3, 4)), input(&rng, NB_SHAPE(4, 5)), input(&rng, NB_SHAPE(5)) };
    nbt_gradcheck(matmul_bias_fn, NULL, 3, in, 1e-7, false);
    nbt_gradgradcheck(matmul_bias_fn, NULL, 3, in, 1e-7);
    nb_tensor *tin[3] = { input(&rng, NB_SHAPE(4, 3)), input(&rng, NB_SHAPE(4, 2)), input(&rng, NB_SHAPE(4)) };
    nbt_gradcheck(matmul_bias_fn, &rng, 3, tin, 1e-7, false);
    /* k = 0: the bias alone */
    nbt_assert_values(nb_matmul_bias(nb_zeros(NB_F64, NB_SHAPE(2, 0)), nb_zeros(NB_F64, NB_SHAPE(0, 2)),
                                     nb_from_doubles(NB_F64, NB_SHAPE(2), (double[]){ 1, 2 })),
                      ((double[]){ 1, 2, 1, 2 }), 0);
    nbt_assert_error(nb_matmul_bias(nb_zeros(NB_F64, NB_SHAPE(2, 3)), nb_zeros(NB_F64, NB_SHAPE(3, 4)), nb_zeros(NB_F64, NB_SHAPE(3))),
                     "nb_matmul_bias: bias [3] does not fit [2,3] @ [3,4] (expected [4])");
    nbt_assert_error(nb_matmul_bias(nb_zeros(NB_F64, NB_SHAPE(2, 3)), nb_zeros(NB_F64, NB_SHAPE(3, 4)), nb_zeros(NB_F32, NB_SHAPE(4))),
                     "nb_matmul_bias: dtypes differ: f64 [2,3] and f32 [4]");
    nbt_assert_error(nb_matmul_bias(nb_zeros(NB_F64, NB_SHAPE(2, 3)), nb_zeros(NB_F64, NB_SHAPE(3, 4)), NULL), "nb_matmul_bias: NULL input");
}
END_TEST

/* ---- errors ---- */

START_TEST(test_matmul_errors)
{
    nb_tensor *a = nb_zeros(NB_F64, NB_SHAPE(2, 3));
    nbt_assert_error(nb_matmul(a, nb_zeros(NB_F64, NB_SHAPE(4, 5))), "nb_matmul: inner dimensions differ: [2,3] @ [4,5]");
    nbt_assert_error(nb_matmul(nb_zeros(NB_F64, NB_SHAPE(3)), nb_zeros(NB_F64, NB_SHAPE(3, 4))),
                     "nb_matmul: operands need at least 2 dimensions: [3] @ [3,4]");
    nbt_assert_error(nb_matmul(a, nb_zeros(NB_F64, NB_SHAPE(3))), "nb_matmul: operands need at least 2 dimensions: [2,3] @ [3]");
    nbt_assert_error(nb_matmul(nb_zeros(NB_F32, NB_SHAPE(2, 3)), nb_zeros(NB_F64, NB_SHAPE(3, 4))),
                     "nb_matmul: dtypes differ: f32 [2,3] and f64 [3,4]");
    nbt_assert_error(nb_matmul(nb_zeros(NB_I64, NB_SHAPE(2, 3)), nb_zeros(NB_I64, NB_SHAPE(3, 4))),
                     "nb_matmul: expected a f32 or f64 tensor, got i64 [2,3]");
    nbt_assert_error(nb_matmul(nb_zeros(NB_F64, NB_SHAPE(2, 2, 3)), nb_zeros(NB_F64, NB_SHAPE(3, 3, 4))),
                     "nb_matmul: batch dimensions do not broadcast: [2,2,3] @ [3,3,4]");
    nbt_assert_error(nb_matmul(NULL, a), "nb_matmul: NULL input");
    nbt_assert_error(nb_matmul(a, NULL), "nb_matmul: NULL input");
}
END_TEST

static Suite *matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("matmul");
    tcase_add_test(tc, test_matmul_values);
    tcase_add_test(tc, test_matmul_unit_dims);
    tcase_add_test(tc, test_matmul_strided_views);
    tcase_add_test(tc, test_matmul_reads_views_in_place);
    tcase_add_test(tc, test_matmul_batched);
    tcase_add_test(tc, test_matmul_empty);
    tcase_add_test(tc, test_matmul_cs231n_affine);
    tcase_add_test(tc, test_matmul_gradients);
    tcase_add_test(tc, test_matmul_batched_gradients);
    tcase_add_test(tc, test_matmul_gradient_values);
    tcase_add_test(tc, test_matmul_bias);
    tcase_add_test(tc, test_matmul_errors);
    suite_add_tcase(s, tc);
    /* two threads of its own: left out under ThreadSanitizer (tools/tsan.sh), which cannot see libgomp's barriers */
    TCase *threads = tcase_create("openmp");
    tcase_set_tags(threads, "openmp");
    tcase_add_test(threads, test_matmul_gradients_side_by_side);
    suite_add_tcase(s, threads);
    return s;
}

NBT_MAIN(matmul_suite)
