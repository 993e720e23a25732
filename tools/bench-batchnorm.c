/* bench-batchnorm: backward time of batchnorm as one fused primitive (closed-form backward) versus
 * composed from primitive ops, side by side in one run, median of interleaved repetitions.
 *   bench-batchnorm [--n N] [--d D] [--reps R] [--dtype f32|f64] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nabla/nabla.h>

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seconds for one backward of Σ bn(x)·r, forward excluded; -1 on error */
static double time_backward(nb_module *bn, nb_tensor *x, nb_tensor *r, nb_scope *scope)
{
    nb_scope_push(scope);
    nb_tensor *loss = nb_sum(nb_mul(nb_module_forward(bn, x), r));
    double t0 = seconds();
    int rc = loss ? nb_backward(loss) : -1;
    double t = seconds() - t0;
    nb_scope_pop();
    nb_scope_reset(scope);
    return rc ? -1 : t;
}

int main(int argc, char **argv)
{
    int64_t n = 512, d = 1024;
    int reps = 31;
    nb_dtype dt = NB_F32;
    static const struct option options[] = { { "n", required_argument, 0, 'n' }, { "d", required_argument, 0, 'd' },
                                             { "reps", required_argument, 0, 'r' }, { "dtype", required_argument, 0, 't' },
                                             { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (c == 'n') n = atoll(optarg);
        else if (c == 'd') d = atoll(optarg);
        else if (c == 'r') reps = atoi(optarg);
        else if (c == 't' && (!strcmp(optarg, "f32") || !strcmp(optarg, "f64"))) dt = optarg[1] == '3' ? NB_F32 : NB_F64;
        else {
            fprintf(stderr, "usage: bench-batchnorm [--n N] [--d D] [--reps R] [--dtype f32|f64]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (n < 2 || d < 1 || reps < 1) {
        fprintf(stderr, "bench-batchnorm: need n >= 2, d >= 1, reps >= 1\n");
        return 2;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *fused = nb_module_batchnorm1d(d, dt, true), *composed = nb_module_batchnorm1d(d, dt, false);
    nb_tensor *x = nb_param(nb_randn(dt, NB_SHAPE(n, d), &rng, 1.0));
    nb_tensor *r = nb_persist(nb_randn(dt, NB_SHAPE(n, d), &rng, 1.0));
    nb_scope *scope = nb_scope_new();
    double *tf = calloc((size_t)reps, sizeof *tf), *tc = calloc((size_t)reps, sizeof *tc);
    if (!fused || !composed || !x || !r || !scope || !tf || !tc) {
        fprintf(stderr, "bench-batchnorm: %s\n", nb_last_error());
        return 1;
    }
    for (int i = 0; i < reps; i++) {   /* interleaved, so drift hits both alike */
        tf[i] = time_backward(fused, x, r, scope);
        tc[i] = time_backward(composed, x, r, scope);
        if (tf[i] < 0 || tc[i] < 0) {
            fprintf(stderr, "bench-batchnorm: %s\n", nb_last_error());
            return 1;
        }
    }
    qsort(tf, (size_t)reps, sizeof *tf, by_value);
    qsort(tc, (size_t)reps, sizeof *tc, by_value);
    double mf = tf[reps / 2], mc = tc[reps / 2];
    printf("batchnorm backward, x [%lld,%lld] %s, median of %d\n", (long long)n, (long long)d, nb_dtype_name(dt), reps);
    printf("  fused     %8.3f ms  (min %.3f, max %.3f)\n", 1e3 * mf, 1e3 * tf[0], 1e3 * tf[reps - 1]);
    printf("  composed  %8.3f ms  (min %.3f, max %.3f)\n", 1e3 * mc, 1e3 * tc[0], 1e3 * tc[reps - 1]);
    printf("  fused is %.2fx faster\n", mc / mf);
    free(tf);
    free(tc);
    nb_scope_free(scope);
    nb_free(x);
    nb_free(r);
    nb_module_free(fused);
    nb_module_free(composed);
    nb_cleanup();
    return 0;
}
