/* Shared helpers for nabla's Check suites. */
#ifndef NBTEST_H
#define NBTEST_H

#include <check.h>
#include <math.h>
#include <string.h>

#include <nabla/nabla.h>

/* every element of t equals expected[i] within tol (absolute) */
#define nbt_assert_values(t, expected, tol)                                                          \
    do {                                                                                             \
        const nb_tensor *t_ = (t);                                                                   \
        ck_assert_msg(t_ != NULL, "tensor is NULL: %s", nb_last_error());                            \
        int64_t n_ = nb_numel(t_);                                                                   \
        for (int64_t i_ = 0; i_ < n_; i_++)                                                          \
            ck_assert_msg(fabs(nb_get(t_, i_) - (expected)[i_]) <= (tol), "element %lld: %.12g != %.12g", \
                          (long long)i_, nb_get(t_, i_), (double)(expected)[i_]);                    \
    } while (0)

/* t has the given shape */
#define nbt_assert_shape(t, ...)                                                                     \
    do {                                                                                             \
        const nb_tensor *t_ = (t);                                                                   \
        ck_assert_msg(t_ != NULL, "tensor is NULL: %s", nb_last_error());                            \
        nb_shape s_ = NB_SHAPE(__VA_ARGS__);                                                         \
        ck_assert_int_eq(t_->ndim, s_.ndim);                                                         \
        for (int i_ = 0; i_ < s_.ndim; i_++) ck_assert_int_eq(t_->shape[i_], s_.d[i_]);              \
    } while (0)

/* the call returned NULL and the recorded message is exactly `message` */
#define nbt_assert_error(result, message)                                                            \
    do {                                                                                             \
        nb_clear_error();                                                                            \
        const void *r_ = (result);                                                                   \
        ck_assert_msg(r_ == NULL, "expected failure: %s", message);                                  \
        ck_assert_str_eq(nb_last_error(), message);                                                  \
    } while (0)

/* nb_gradcheck passes and the worst relative error is below tol */
static inline void nbt_gradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *in, double tol, bool kinks)
{
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    o.skip_kinks = kinks;
    nb_gradcheck_result r;
    int rc = nb_gradcheck(f, ctx, n, in, &o, &r);
    ck_assert_msg(rc == 1, "gradcheck failed (rc %d): %s %s", rc, r.first_failure, nb_last_error());
    ck_assert_msg(r.max_rel_error < tol, "relative error %g >= %g", r.max_rel_error, tol);
    ck_assert_msg(r.checked > 0, "gradcheck checked nothing");
}

static inline void nbt_gradgradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *in, double tol)
{
    nb_gradcheck_opts o = nb_gradcheck_defaults();
    nb_gradcheck_result r;
    int rc = nb_gradgradcheck(f, ctx, n, in, &o, &r);
    ck_assert_msg(rc == 1, "gradgradcheck failed (rc %d): %s %s", rc, r.first_failure, nb_last_error());
    ck_assert_msg(r.max_rel_error < tol, "relative error %g >= %g", r.max_rel_error, tol);
    ck_assert_msg(r.checked > 0, "gradgradcheck checked nothing");
}

/* np.linspace(lo, hi, num=numel(shape)).reshape(shape), f64: how cs231n builds its test inputs */
static inline nb_tensor *nbt_linspace(double lo, double hi, nb_shape shape)
{
    int64_t n = 1;
    for (int i = 0; i < shape.ndim; i++) n *= shape.d[i];
    return nb_reshape(nb_linspace(NB_F64, lo, hi, n), shape);
}

/* a and b hold the same values, element by element, within tol */
static inline void nbt_assert_same(const nb_tensor *a, const nb_tensor *b, double tol)
{
    ck_assert_msg(a && b, "NULL tensor: %s", nb_last_error());
    ck_assert_int_eq(nb_numel(a), nb_numel(b));
    for (int64_t i = 0; i < nb_numel(a); i++)
        ck_assert_msg(fabs(nb_get(a, i) - nb_get(b, i)) <= tol, "element %lld: %.15g != %.15g", (long long)i,
                      nb_get(a, i), nb_get(b, i));
}

/* a and b are the same bits: dtype, shape, layout (dense tensors) and every byte; what/k name them */
static inline void nbt_assert_same_bits(const nb_tensor *a, const nb_tensor *b, const char *what, int k)
{
    ck_assert_msg(a && b, "%s %d is NULL: %s", what, k, nb_last_error());
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_int_eq(a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++) {
        ck_assert_int_eq(a->shape[i], b->shape[i]);
        ck_assert_int_eq(a->stride[i], b->stride[i]);
    }
    ck_assert_msg(!memcmp(a->data, b->data, (size_t)nb_numel(a) * nb_dtype_size(a->dtype)), "%s %d differs", what, k);
}

/* cs231n's relative error between two tensors of equal size: max |a-b| / max(1e-8, |a|+|b|) */
static inline double nbt_rel_error(const nb_tensor *a, const nb_tensor *b)
{
    ck_assert_msg(a && b, "NULL tensor: %s", nb_last_error());
    ck_assert_int_eq(nb_numel(a), nb_numel(b));
    double worst = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) {
        double x = nb_get(a, i), y = nb_get(b, i);
        worst = fmax(worst, fabs(x - y) / fmax(1e-8, fabs(x) + fabs(y)));
    }
    return worst;
}

/* a float64 leaf requiring grad with values uniform in [lo, hi) */
static inline nb_tensor *nbt_input(nb_rng *rng, nb_shape s, double lo, double hi)
{
    nb_tensor *t = nb_rand(NB_F64, s, rng, lo, hi);
    nb_set_requires_grad(t, true);
    return t;
}

/* Runs one suite; every test gets a fresh default scope (Check forks per test). Tests get the thread
 * counts they ask for, however busy the machine (meson runs the suites side by side). */
#define NBT_MAIN(suite_fn)                                                                           \
    int main(void)                                                                                   \
    {                                                                                                \
        nb_set_adaptive_threads(false);                                                              \
        SRunner *sr = srunner_create(suite_fn());                                                    \
        srunner_run_all(sr, CK_NORMAL);                                                              \
        int failed = srunner_ntests_failed(sr);                                                      \
        srunner_free(sr);                                                                            \
        nb_cleanup();                                                                                \
        return failed ? 1 : 0;                                                                       \
    }

#endif
