/* Indexing by i64 tensors: gather, scatter_add, index_select, index_add — forward values (f64 and
 * f32, strided inputs and indices), adjointness, a cross-entropy pick, first and second derivatives,
 * and every error message. */
#include "nbtest.h"

static nb_tensor *indices(nb_shape shape, const int64_t *values) { return nb_from_data(NB_I64, shape, values); }

static nb_tensor *values(nb_dtype dt, nb_shape shape, const double *v) { return nb_from_doubles(dt, shape, v); }

static const double x23[] = { 1, 2, 3, 4, 5, 6 };   /* [[1,2,3],[4,5,6]] */
static const double x32[] = { 1, 2, 3, 4, 5, 6 };   /* [[1,2],[3,4],[5,6]] */

/* random indices in [0, size) */
static nb_tensor *random_indices(nb_rng *rng, nb_shape shape, int64_t size)
{
    nb_tensor *t = nb_empty(NB_I64, shape);
    int64_t *v = t->data;
    for (int64_t i = 0; i < nb_numel(t); i++) v[i] = (int64_t)(nb_rng_next(rng) % (uint64_t)size);
    return t;
}

/* ---- forward values ---- */

START_TEST(gather_forward)
{
    nb_tensor *x = values(NB_F64, NB_SHAPE(2, 3), x23);
    nb_tensor *y = nb_gather(x, 1, indices(NB_SHAPE(2, 2), (int64_t[]){ 2, 0, 1, 1 }));
    nbt_assert_shape(y, 2, 2);
    nbt_assert_values(y, ((double[]){ 3, 1, 5, 5 }), 0);
    /* a negative axis counts from the end */
    nbt_assert_values(nb_gather(x, -1, indices(NB_SHAPE(2, 2), (int64_t[]){ 2, 0, 1, 1 })), ((double[]){ 3, 1, 5, 5 }), 0);
    /* along axis 0; the index may be shorter than x on the other axes, longer on the gathered one */
    y = nb_gather(x, 0, indices(NB_SHAPE(1, 3), (int64_t[]){ 1, 0, 1 }));
    nbt_assert_shape(y, 1, 3);
    nbt_assert_values(y, ((double[]){ 4, 2, 6 }), 0);
    y = nb_gather(x, 1, indices(NB_SHAPE(1, 4), (int64_t[]){ 2, 2, 0, 1 }));
    nbt_assert_shape(y, 1, 4);
    nbt_assert_values(y, ((double[]){ 3, 3, 1, 2 }), 0);
}
END_TEST

START_TEST(gather_forward_3d)
{
    /* x[a][b][c] = 12a + 4b + c; gathering along axis 1 gives 12a + 4·idx + c */
    nb_tensor *x = nb_reshape(nb_arange(NB_F64, 0, 24, 1), NB_SHAPE(2, 3, 4));
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *idx = random_indices(&rng, NB_SHAPE(2, 5, 4), 3);
    nb_tensor *y = nb_gather(x, 1, idx);
    nbt_assert_shape(y, 2, 5, 4);
    double expected[40];
    for (int i = 0; i < 40; i++) expected[i] = 12 * (i / 20) + 4 * nb_get(idx, i) + i % 4;
    nbt_assert_values(y, expected, 0);
}
END_TEST

START_TEST(gather_strided)
{
    /* x transposed to [[1,3,5],[2,4,6]], and a transposed index [[2,0],[1,1]] */
    nb_tensor *xt = nb_transpose(values(NB_F64, NB_SHAPE(3, 2), x32), 0, 1);
    nb_tensor *it = nb_transpose(indices(NB_SHAPE(2, 2), (int64_t[]){ 2, 1, 0, 1 }), 0, 1);
    nbt_assert_values(nb_gather(xt, 1, it), ((double[]){ 5, 1, 4, 4 }), 0);
    /* every other column of a [2,6] tensor */
    nb_tensor *wide = values(NB_F64, NB_SHAPE(2, 6), (double[]){ 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0 });
    nbt_assert_values(nb_gather(nb_slice(wide, 1, 0, 6, 2), 1, it), ((double[]){ 3, 1, 5, 5 }), 0);
}
END_TEST

START_TEST(scatter_add_forward)
{
    /* repeated indices add up */
    nb_tensor *src = values(NB_F64, NB_SHAPE(2, 2), (double[]){ 1, 2, 3, 4 });
    nb_tensor *y = nb_scatter_add(NB_SHAPE(2, 3), 1, indices(NB_SHAPE(2, 2), (int64_t[]){ 0, 0, 2, 1 }), src);
    nbt_assert_shape(y, 2, 3);
    nbt_assert_values(y, ((double[]){ 3, 0, 0, 0, 4, 3 }), 0);
    y = nb_scatter_add(NB_SHAPE(3, 2), 0, indices(NB_SHAPE(2, 2), (int64_t[]){ 2, 0, 2, 2 }), src);
    nbt_assert_values(y, ((double[]){ 0, 2, 0, 0, 4, 4 }), 0);
    /* a transposed src [[1,3],[2,4]] */
    y = nb_scatter_add(NB_SHAPE(2, 3), 1, indices(NB_SHAPE(2, 2), (int64_t[]){ 0, 0, 2, 1 }), nb_transpose(src, 0, 1));
    nbt_assert_values(y, ((double[]){ 4, 0, 0, 0, 4, 2 }), 0);
}
END_TEST

START_TEST(index_select_forward)
{
    nb_tensor *x = values(NB_F64, NB_SHAPE(3, 2), x32);
    nb_tensor *y = nb_index_select(x, 0, indices(NB_SHAPE(3), (int64_t[]){ 2, 0, 2 }));
    nbt_assert_shape(y, 3, 2);
    nbt_assert_values(y, ((double[]){ 5, 6, 1, 2, 5, 6 }), 0);
    y = nb_index_select(x, 1, indices(NB_SHAPE(1), (int64_t[]){ 1 }));
    nbt_assert_shape(y, 3, 1);
    nbt_assert_values(y, ((double[]){ 2, 4, 6 }), 0);
    nbt_assert_shape(nb_index_select(x, 0, indices(NB_SHAPE(0), (int64_t[]){ 0 })), 0, 2);
    /* transposed x [[1,3,5],[2,4,6]], columns 2 and 0 */
    y = nb_index_select(nb_transpose(x, 0, 1), 1, indices(NB_SHAPE(2), (int64_t[]){ 2, 0 }));
    nbt_assert_values(y, ((double[]){ 5, 1, 6, 2 }), 0);
}
END_TEST

START_TEST(index_select_forward_3d)
{
    /* x[a][b][c] = 12a + 4b + c; selecting along axis 2 gives 12a + 4b + idx[c] */
    nb_tensor *x = nb_reshape(nb_arange(NB_F64, 0, 24, 1), NB_SHAPE(2, 3, 4));
    int64_t idx[5] = { 3, 3, 0, 2, 1 };
    nb_tensor *y = nb_index_select(x, 2, indices(NB_SHAPE(5), idx));
    nbt_assert_shape(y, 2, 3, 5);
    double expected[30];
    for (int i = 0; i < 30; i++) expected[i] = 12 * (i / 15) + 4 * (i / 5 % 3) + (double)idx[i % 5];
    nbt_assert_values(y, expected, 0);
}
END_TEST

START_TEST(index_add_forward)
{
    nb_tensor *src = values(NB_F64, NB_SHAPE(3, 2), x32);
    nb_tensor *y = nb_index_add(NB_SHAPE(3, 2), 0, indices(NB_SHAPE(3), (int64_t[]){ 2, 0, 2 }), src);
    nbt_assert_shape(y, 3, 2);
    nbt_assert_values(y, ((double[]){ 3, 4, 0, 0, 6, 8 }), 0);
    /* along axis 1 into 4 columns, from a transposed src [[1,3,5],[2,4,6]] */
    y = nb_index_add(NB_SHAPE(2, 4), 1, indices(NB_SHAPE(3), (int64_t[]){ 3, 1, 3 }), nb_transpose(src, 0, 1));
    nbt_assert_values(y, ((double[]){ 0, 3, 0, 6, 0, 4, 0, 8 }), 0);
}
END_TEST

START_TEST(forward_f32)
{
    nb_tensor *x = values(NB_F32, NB_SHAPE(2, 3), x23);
    nb_tensor *idx = indices(NB_SHAPE(2, 2), (int64_t[]){ 2, 0, 1, 1 });
    nb_tensor *y = nb_gather(x, 1, idx);
    ck_assert_int_eq(y->dtype, NB_F32);
    nbt_assert_values(y, ((double[]){ 3, 1, 5, 5 }), 0);
    nbt_assert_values(nb_scatter_add(NB_SHAPE(2, 3), 1, idx, y), ((double[]){ 1, 0, 3, 0, 10, 0 }), 0);
    nb_tensor *rows = indices(NB_SHAPE(3), (int64_t[]){ 1, 1, 0 });
    y = nb_index_select(x, 0, rows);
    ck_assert_int_eq(y->dtype, NB_F32);
    nbt_assert_values(y, ((double[]){ 4, 5, 6, 4, 5, 6, 1, 2, 3 }), 0);
    nbt_assert_values(nb_index_add(NB_SHAPE(2, 3), 0, rows, y), ((double[]){ 1, 2, 3, 8, 10, 12 }), 0);
}
END_TEST

/* ⟨gather(x), y⟩ = ⟨x, scatter_add(y)⟩ and ⟨index_select(x), y⟩ = ⟨x, index_add(y)⟩ */
START_TEST(adjoint_pairs)
{
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(4, 5, 3), &rng, 1);
    nb_tensor *idx = random_indices(&rng, NB_SHAPE(4, 7, 2), 5);
    nb_tensor *y = nb_randn(NB_F64, NB_SHAPE(4, 7, 2), &rng, 1);
    double lhs = nb_item(nb_sum(nb_mul(nb_gather(x, 1, idx), y)));
    double rhs = nb_item(nb_sum(nb_mul(x, nb_scatter_add(NB_SHAPE(4, 5, 3), 1, idx, y))));
    ck_assert_double_eq_tol(lhs, rhs, 1e-12);

    nb_tensor *sel = random_indices(&rng, NB_SHAPE(6), 3);
    nb_tensor *z = nb_randn(NB_F64, NB_SHAPE(4, 5, 6), &rng, 1);
    lhs = nb_item(nb_sum(nb_mul(nb_index_select(x, 2, sel), z)));
    rhs = nb_item(nb_sum(nb_mul(x, nb_index_add(NB_SHAPE(4, 5, 3), 2, sel, z))));
    ck_assert_double_eq_tol(lhs, rhs, 1e-12);
}
END_TEST

/* the negative log-likelihood of labels, picked from log-probabilities with gather */
START_TEST(cross_entropy_pick)
{
    const double p[] = { 0.7, 0.2, 0.1, 0.1, 0.3, 0.6 };
    double lp[6];
    for (int i = 0; i < 6; i++) lp[i] = log(p[i]);
    nb_tensor *log_probs = values(NB_F64, NB_SHAPE(2, 3), lp);
    nb_set_requires_grad(log_probs, true);
    nb_tensor *labels = indices(NB_SHAPE(2), (int64_t[]){ 0, 2 });
    nb_tensor *picked = nb_gather(log_probs, 1, nb_reshape(labels, NB_SHAPE(2, 1)));
    nbt_assert_shape(picked, 2, 1);
    nb_tensor *loss = nb_neg(nb_mean(picked));
    ck_assert_double_eq_tol(nb_item(loss), -(log(0.7) + log(0.6)) / 2, 1e-15);
    ck_assert_int_eq(nb_backward(loss), 0);
    nbt_assert_values(log_probs->grad, ((double[]){ -0.5, 0, 0, 0, 0, -0.5 }), 1e-15);
}
END_TEST

/* ---- derivatives ---- */

typedef struct {
    int axis;
    nb_tensor *index;
    nb_shape shape;     /* scatter_add / index_add output */
    bool transpose;     /* the input enters transposed (a strided view) */
    bool square;        /* square the result, so the second derivative is not zero */
} index_case;

static nb_tensor *prepare(const index_case *c, nb_tensor *x) { return c->transpose ? nb_transpose(x, 0, 1) : x; }
static nb_tensor *finish(const index_case *c, nb_tensor *y) { return c->square ? nb_square(y) : y; }

static nb_tensor *gather_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const index_case *c = ctx;
    return finish(c, nb_gather(prepare(c, in[0]), c->axis, c->index));
}

static nb_tensor *scatter_add_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const index_case *c = ctx;
    return finish(c, nb_scatter_add(c->shape, c->axis, c->index, prepare(c, in[0])));
}

static nb_tensor *index_select_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const index_case *c = ctx;
    return finish(c, nb_index_select(prepare(c, in[0]), c->axis, c->index));
}

static nb_tensor *index_add_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const index_case *c = ctx;
    return finish(c, nb_index_add(c->shape, c->axis, c->index, prepare(c, in[0])));
}

/* gradcheck of f on x, then of f on transpose(x), then gradgradcheck of f² */
static void check_derivatives(nb_fn f, index_case c, nb_tensor *x, nb_tensor *x_transposed)
{
    nbt_gradcheck(f, &c, 1, &x, 1e-7, false);
    c.transpose = true;
    nbt_gradcheck(f, &c, 1, &x_transposed, 1e-7, false);
    c.transpose = false;
    c.square = true;
    nbt_gradgradcheck(f, &c, 1, &x, 1e-7);
}

START_TEST(gather_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    /* x:[3,4]; the index repeats positions, so the scatter in the backward adds up */
    index_case c = { .axis = 1, .index = random_indices(&rng, NB_SHAPE(3, 6), 4) };
    check_derivatives(gather_f, c, nbt_input(&rng, NB_SHAPE(3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4, 3), -1, 1));
    c = (index_case){ .axis = 0, .index = random_indices(&rng, NB_SHAPE(5, 2), 3) };
    check_derivatives(gather_f, c, nbt_input(&rng, NB_SHAPE(3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(4, 3), -1, 1));
}
END_TEST

START_TEST(scatter_add_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    index_case c = { .axis = 1, .index = random_indices(&rng, NB_SHAPE(3, 6), 4), .shape = NB_SHAPE(3, 4) };
    check_derivatives(scatter_add_f, c, nbt_input(&rng, NB_SHAPE(3, 6), -1, 1), nbt_input(&rng, NB_SHAPE(6, 3), -1, 1));
    c = (index_case){ .axis = 0, .index = random_indices(&rng, NB_SHAPE(5, 2), 3), .shape = NB_SHAPE(3, 4) };
    check_derivatives(scatter_add_f, c, nbt_input(&rng, NB_SHAPE(5, 2), -1, 1), nbt_input(&rng, NB_SHAPE(2, 5), -1, 1));
}
END_TEST

START_TEST(index_select_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    index_case c = { .axis = 0, .index = indices(NB_SHAPE(5), (int64_t[]){ 3, 0, 3, 1, 3 }) };
    check_derivatives(index_select_f, c, nbt_input(&rng, NB_SHAPE(4, 3), -1, 1), nbt_input(&rng, NB_SHAPE(3, 4), -1, 1));
    c.axis = 1;
    c.index = indices(NB_SHAPE(4), (int64_t[]){ 2, 2, 0, 1 });
    check_derivatives(index_select_f, c, nbt_input(&rng, NB_SHAPE(4, 3), -1, 1), nbt_input(&rng, NB_SHAPE(3, 4), -1, 1));
}
END_TEST

START_TEST(index_add_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    index_case c = { .axis = 0, .index = indices(NB_SHAPE(5), (int64_t[]){ 3, 0, 3, 1, 3 }), .shape = NB_SHAPE(4, 3) };
    check_derivatives(index_add_f, c, nbt_input(&rng, NB_SHAPE(5, 3), -1, 1), nbt_input(&rng, NB_SHAPE(3, 5), -1, 1));
    c = (index_case){ .axis = 1, .index = indices(NB_SHAPE(2), (int64_t[]){ 2, 2 }), .shape = NB_SHAPE(4, 3) };
    check_derivatives(index_add_f, c, nbt_input(&rng, NB_SHAPE(4, 2), -1, 1), nbt_input(&rng, NB_SHAPE(2, 4), -1, 1));
}
END_TEST

/* ---- errors ---- */

START_TEST(gather_errors)
{
    nb_tensor *x = values(NB_F64, NB_SHAPE(2, 3), x23);
    nbt_assert_error(nb_gather(x, 1, indices(NB_SHAPE(2, 2), (int64_t[]){ 0, 3, 1, 1 })),
                     "nb_gather: index 3 at position [0,1] is out of range [0,3) for axis 1 of [2,3]");
    nbt_assert_error(nb_gather(x, 0, indices(NB_SHAPE(2, 2), (int64_t[]){ 0, 1, -1, 0 })),
                     "nb_gather: index -1 at position [1,0] is out of range [0,2) for axis 0 of [2,3]");
    nbt_assert_error(nb_gather(x, 1, indices(NB_SHAPE(2), (int64_t[]){ 0, 1 })),
                     "nb_gather: index [2] must have 2 dimensions like [2,3]");
    nbt_assert_error(nb_gather(x, 1, indices(NB_SHAPE(3, 1), (int64_t[]){ 0, 1, 2 })),
                     "nb_gather: index [3,1] is larger than [2,3] along axis 0");
    nbt_assert_error(nb_gather(x, 1, values(NB_F64, NB_SHAPE(2, 1), x23)), "nb_gather: index must be i64, got f64 [2,1]");
    /* i64 values (labels) are gathered too, never recorded */
    nb_tensor *labels = nb_gather(indices(NB_SHAPE(2, 2), (int64_t[]){ 7, 8, 9, 10 }), 1, indices(NB_SHAPE(2, 1), (int64_t[]){ 1, 0 }));
    nbt_assert_values(labels, ((double[]){ 8, 9 }), 0);
    ck_assert(labels->dtype == NB_I64 && !labels->requires_grad);
    nbt_assert_error(nb_gather(x, 2, indices(NB_SHAPE(2, 1), (int64_t[]){ 0, 0 })), "nb_gather: axis 2 out of range for [2,3]");
}
END_TEST

START_TEST(scatter_add_errors)
{
    nb_tensor *src = values(NB_F64, NB_SHAPE(2, 1), x23);
    nb_tensor *idx = indices(NB_SHAPE(2, 1), (int64_t[]){ 0, 5 });
    nbt_assert_error(nb_scatter_add(NB_SHAPE(2, 3), 1, idx, src),
                     "nb_scatter_add: index 5 at position [1,0] is out of range [0,3) for axis 1 of [2,3]");
    nbt_assert_error(nb_scatter_add(NB_SHAPE(2, 3), 1, idx, values(NB_F64, NB_SHAPE(2, 2), x23)),
                     "nb_scatter_add: src [2,2] and index [2,1] differ in shape");
    nbt_assert_error(nb_scatter_add(NB_SHAPE(2, 3), -3, idx, src), "nb_scatter_add: axis -3 out of range for [2,3]");
    nbt_assert_error(nb_scatter_add(NB_SHAPE(-1, 3), 1, idx, src), "nb_scatter_add: negative size in shape [-1,3]");
    nbt_assert_error(nb_scatter_add(NB_SHAPE(1, 3), 1, idx, src), "nb_scatter_add: index [2,1] is larger than [1,3] along axis 0");
    nbt_assert_error(nb_scatter_add(NB_SHAPE(2, 3), 1, src, src), "nb_scatter_add: index must be i64, got f64 [2,1]");
}
END_TEST

START_TEST(index_select_errors)
{
    nb_tensor *x = values(NB_F64, NB_SHAPE(3, 2), x32);
    nbt_assert_error(nb_index_select(x, 0, indices(NB_SHAPE(2), (int64_t[]){ 0, 7 })),
                     "nb_index_select: index 7 at position [1] is out of range [0,3) for axis 0 of [3,2]");
    nbt_assert_error(nb_index_select(x, 1, indices(NB_SHAPE(1), (int64_t[]){ -2 })),
                     "nb_index_select: index -2 at position [0] is out of range [0,2) for axis 1 of [3,2]");
    nbt_assert_error(nb_index_select(x, 0, indices(NB_SHAPE(1, 2), (int64_t[]){ 0, 1 })),
                     "nb_index_select: index must be 1-D, got [1,2]");
    nbt_assert_error(nb_index_select(x, 0, values(NB_F32, NB_SHAPE(2), x32)), "nb_index_select: index must be i64, got f32 [2]");
    nbt_assert_error(nb_index_select(x, 2, indices(NB_SHAPE(1), (int64_t[]){ 0 })), "nb_index_select: axis 2 out of range for [3,2]");
}
END_TEST

START_TEST(index_add_errors)
{
    nb_tensor *idx = indices(NB_SHAPE(3), (int64_t[]){ 0, 1, 2 });
    nbt_assert_error(nb_index_add(NB_SHAPE(3, 2), 0, idx, values(NB_F64, NB_SHAPE(3, 3), (double[9]){ 0 })),
                     "nb_index_add: src [3,3] must be [3,2] for index [3] along axis 0 of [3,2]");
    nbt_assert_error(nb_index_add(NB_SHAPE(3, 2), 1, idx, values(NB_F64, NB_SHAPE(3, 3), (double[9]){ 0 })),
                     "nb_index_add: index 2 at position [2] is out of range [0,2) for axis 1 of [3,2]");
    nbt_assert_error(nb_index_add(NB_SHAPE(3, 2), 0, values(NB_F64, NB_SHAPE(3), x32), values(NB_F64, NB_SHAPE(3, 2), x32)),
                     "nb_index_add: index must be i64, got f64 [3]");
    nbt_assert_error(nb_index_add(NB_SHAPE(3, 2), 2, idx, values(NB_F64, NB_SHAPE(3, 2), x32)),
                     "nb_index_add: axis 2 out of range for [3,2]");
}
END_TEST

/* a NULL input gives NULL and keeps the message of whatever failed first */
START_TEST(null_inputs_keep_first_error)
{
    nb_tensor *x = values(NB_F64, NB_SHAPE(3, 2), x32), *idx = indices(NB_SHAPE(1), (int64_t[]){ 0 });
    nb_tensor *bad = nb_index_select(x, 5, idx);
    ck_assert_ptr_null(bad);
    const char *first = "nb_index_select: axis 5 out of range for [3,2]";
    ck_assert_str_eq(nb_last_error(), first);
    ck_assert_ptr_null(nb_gather(bad, 0, idx));
    ck_assert_ptr_null(nb_gather(x, 0, bad));
    ck_assert_ptr_null(nb_scatter_add(NB_SHAPE(3, 2), 0, bad, x));
    ck_assert_ptr_null(nb_scatter_add(NB_SHAPE(3, 2), 0, idx, bad));
    ck_assert_ptr_null(nb_index_select(bad, 0, idx));
    ck_assert_ptr_null(nb_index_select(x, 0, bad));
    ck_assert_ptr_null(nb_index_add(NB_SHAPE(3, 2), 0, bad, x));
    ck_assert_ptr_null(nb_index_add(NB_SHAPE(3, 2), 0, idx, bad));
    ck_assert_str_eq(nb_last_error(), first);
}
END_TEST

static Suite *index_suite(void)
{
    Suite *s = suite_create("index");
    TCase *forward = tcase_create("forward");
    tcase_add_test(forward, gather_forward);
    tcase_add_test(forward, gather_forward_3d);
    tcase_add_test(forward, gather_strided);
    tcase_add_test(forward, scatter_add_forward);
    tcase_add_test(forward, index_select_forward);
    tcase_add_test(forward, index_select_forward_3d);
    tcase_add_test(forward, index_add_forward);
    tcase_add_test(forward, forward_f32);
    tcase_add_test(forward, adjoint_pairs);
    tcase_add_test(forward, cross_entropy_pick);
    suite_add_tcase(s, forward);
    TCase *grads = tcase_create("gradients");
    tcase_add_test(grads, gather_gradients);
    tcase_add_test(grads, scatter_add_gradients);
    tcase_add_test(grads, index_select_gradients);
    tcase_add_test(grads, index_add_gradients);
    suite_add_tcase(s, grads);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, gather_errors);
    tcase_add_test(errors, scatter_add_errors);
    tcase_add_test(errors, index_select_errors);
    tcase_add_test(errors, index_add_errors);
    tcase_add_test(errors, null_inputs_keep_first_error);
    suite_add_tcase(s, errors);
    return s;
}

NBT_MAIN(index_suite)
