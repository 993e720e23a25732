/* nabla/dist.h — data-parallel training across processes with MPI (Open MPI: libopenmpi-dev).
 *
 * Every rank holds the whole model and runs the same program; each takes its shard of every
 * minibatch, and the gradients are summed over the ranks (weighted by each rank's share of the
 * batch) before the optimizer step, so K ranks with a global batch B follow the trajectory of one
 * process with batch B (up to summation order). Collectives move few large messages: tensors are
 * packed into buckets of bucket_bytes (4 MiB by default) and each bucket is one MPI call.
 *
 * Batchnorm: each rank normalises with the statistics of its own shard (as PyTorch's DDP does
 * without SyncBatchNorm), and the running statistics, which then differ per rank, are averaged over
 * the ranks (nb_dist_average) whenever they are used or saved — before every accuracy check and
 * checkpoint in the Solver. Models with batchnorm therefore match single-process training only
 * approximately; models without it, and without dropout, match it exactly up to rounding.
 *
 * Without MPI at build time (meson -Dmpi=disabled, or no MPI found) the library has the same API:
 * nb_dist_new fails with a clear error, nb_dist_launch returns no communicator, and the functions
 * taking a NULL nb_dist act as for one process.
 * Only the thread that created the nb_dist may call these functions. */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dist nb_dist;

/* traffic of the most recent collective that moved tensors */
typedef struct {
    int64_t messages;   /* MPI calls */
    int64_t bytes;      /* payload per rank */
} nb_dist_stats;

bool nb_dist_compiled(void);   /* true when nabla was built with MPI */

/* A communicator over MPI_COMM_WORLD (duplicated), for a program that has called MPI_Init (or
 * MPI_Init_thread). NULL with an error when MPI is not initialized or not compiled in. */
nb_dist *nb_dist_new(void);
/* For programs such as nabla-train: when started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE or PMIX_RANK) initializes MPI and sets *d to a new communicator, which nb_dist_finish
 * frees (finalizing MPI); otherwise sets *d to NULL (one process). -1 with an error when launched
 * by MPI but nabla was built without it or MPI fails to start. */
int nb_dist_launch(int *argc, char ***argv, nb_dist **d);
void nb_dist_finish(nb_dist *d);   /* nb_dist_free, then MPI_Finalize if nb_dist_launch started MPI */
void nb_dist_free(nb_dist *d);

int nb_dist_rank(const nb_dist *d);   /* 0 for NULL */
int nb_dist_size(const nb_dist *d);   /* 1 for NULL */
/* this rank's contiguous share [*begin, *end) of n items: sizes differ by at most one, in rank order */
void nb_dist_shard(const nb_dist *d, int64_t n, int64_t *begin, int64_t *end);
void nb_dist_set_bucket_bytes(nb_dist *d, int64_t bytes);   /* clamped to [1 KiB, 1 GiB] */
nb_dist_stats nb_dist_last_stats(const nb_dist *d);

/* The collectives below must be called by every rank in the same order with tensors of the same
 * shapes and dtypes (f32 or f64); a mismatch in total size is reported as an error. */
/* values of ts from rank 0 to every rank */
int nb_dist_broadcast(nb_dist *d, int n, nb_tensor *const *ts);
/* each grad = Σ over ranks of weight_r · grad_r (weight: this rank's share of the global batch, so
 * that mean losses sum to the global mean); tensors without a grad are skipped on every rank */
int nb_dist_allreduce_grads(nb_dist *d, int n, nb_tensor *const *params, double weight);
/* values of ts averaged over the ranks (batchnorm's running statistics) */
int nb_dist_average(nb_dist *d, int n, nb_tensor *const *ts);
/* v[0..n) summed over the ranks, in place (losses, counts) */
int nb_dist_sum(nb_dist *d, double *v, int n);
/* Agreement on failure: every rank passes whether it failed (its message being nb_last_error()).
 * Returns 0 when no rank failed; otherwise -1 on every rank, with the error
 * "rank R failed: <its message>" naming the lowest failing rank (and how many others failed). */
int nb_dist_check(nb_dist *d, bool failed);

#ifdef __cplusplus
}
#endif
#endif
