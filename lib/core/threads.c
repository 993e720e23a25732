/* The thread counts of BLIS and of nabla's own OpenMP loops, set together. */
#include "../internal.h"

#include <blis.h>

int nb_set_num_threads(int n)
{
    if (n < 1) {
        nb_error("nb_set_num_threads: the thread count must be at least 1, got %d", n);
        return -1;
    }
    bli_thread_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    return 0;
}

int nb_num_threads(void) { return nb_parallel_threads(); }
