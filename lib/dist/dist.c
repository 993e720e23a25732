/* Data-parallel collectives over MPI (see dist.h): tensors packed into buckets, one MPI call per
 * bucket. The MPI calls are in the transport section; without MPI (NB_HAVE_MPI unset) no nb_dist
 * can be made, so nothing reaches it. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef NB_HAVE_MPI
#include <mpi.h>
#endif

#define DEFAULT_BUCKET_BYTES (4 << 20)
#define MESSAGE_BYTES 256   /* of a failing rank's error, as rank 0 receives it */

struct nb_dist {
#ifdef NB_HAVE_MPI
    MPI_Comm comm;
#endif
    int rank, size;
    bool started_mpi;        /* nb_dist_launch called MPI_Init */
    int64_t bucket_bytes;
    char *bucket;            /* bucket_bytes, allocated on first use */
    char *messages;          /* size·MESSAGE_BYTES: the failing ranks' errors, gathered on rank 0 */
    nb_dist_stats last;
};

bool nb_dist_compiled(void)
{
#ifdef NB_HAVE_MPI
    return true;
#else
    return false;
#endif
}

/* ---- transport ---- */

typedef enum { REDUCE_SUM, REDUCE_MAX, BROADCAST } collective;

#ifdef NB_HAVE_MPI
static int mpi_failed(const char *op, int code)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", code);
    nb_error("%s: MPI failed: %s", op, text);
    return -1;
}

/* buf[0..count) of dt (f32, f64 or i64) reduced in place over the ranks, or broadcast from rank 0 */
static int transport(nb_dist *d, const char *op, collective what, void *buf, int64_t count, nb_dtype dt)
{
    MPI_Datatype type = dt == NB_F32 ? MPI_FLOAT : dt == NB_F64 ? MPI_DOUBLE : MPI_INT64_T;
    int rc = what == BROADCAST ? MPI_Bcast(buf, (int)count, type, 0, d->comm)
                               : MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, type, what == REDUCE_SUM ? MPI_SUM : MPI_MAX,
                                               d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_failed(op, rc);
}

/* each rank's `text` (MESSAGE_BYTES) gathered into all (size·MESSAGE_BYTES) on rank 0 */
static int gather_messages(nb_dist *d, const char *text, char *all)
{
    int rc = MPI_Gather(text, MESSAGE_BYTES, MPI_CHAR, all, MESSAGE_BYTES, MPI_CHAR, 0, d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_failed("nb_dist_check", rc);
}
#else
static int transport(nb_dist *d, const char *op, collective what, void *buf, int64_t count, nb_dtype dt)
{
    (void)d, (void)what, (void)buf, (void)count, (void)dt;
    nb_error("%s: nabla was built without MPI", op);
    return -1;
}

static int gather_messages(nb_dist *d, const char *text, char *all)
{
    (void)d, (void)text, (void)all;
    nb_error("nb_dist_check: nabla was built without MPI");
    return -1;
}
#endif

/* ---- communicators ---- */

static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

nb_dist *nb_dist_new(void)
{
#ifdef NB_HAVE_MPI
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) {
        nb_error("nb_dist_new: MPI is %s: call MPI_Init first (or use nb_dist_launch)",
                 finalized ? "finalized" : "not initialized");
        return NULL;
    }
    nb_dist *d = calloc(1, sizeof *d);
    if (!d) {
        nb_error("nb_dist_new: out of memory");
        return NULL;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    if (rc != MPI_SUCCESS) {
        free(d);
        mpi_failed("nb_dist_new", rc);
        return NULL;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);   /* errors come back as codes, reported by name */
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    d->bucket_bytes = DEFAULT_BUCKET_BYTES;
    if (!(d->messages = calloc((size_t)d->size, MESSAGE_BYTES))) {
        nb_dist_free(d);
        nb_error("nb_dist_new: out of memory");
        return NULL;
    }
    return d;
#else
    nb_error("nb_dist_new: nabla was built without MPI (install libopenmpi-dev and reconfigure with -Dmpi=enabled)");
    return NULL;
#endif
}

int nb_dist_launch(int *argc, char ***argv, nb_dist **d)
{
    *d = NULL;
    if (!launched_by_mpi()) return 0;
#ifdef NB_HAVE_MPI
    int initialized = 0, provided = 0;
    MPI_Initialized(&initialized);
    /* OpenMP threads run the kernels, only this thread calls MPI */
    if (!initialized && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        nb_error("nb_dist_launch: MPI_Init_thread failed");
        return -1;
    }
    *d = nb_dist_new();
    if (!*d) return -1;
    (*d)->started_mpi = !initialized;
    return 0;
#else
    (void)argc, (void)argv;
    nb_error("nb_dist_launch: started by an MPI launcher, but nabla was built without MPI "
             "(install libopenmpi-dev and reconfigure with -Dmpi=enabled)");
    return -1;
#endif
}

void nb_dist_free(nb_dist *d)
{
    if (!d) return;
#ifdef NB_HAVE_MPI
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&d->comm);
#endif
    free(d->bucket);
    free(d->messages);
    free(d);
}

void nb_dist_finish(nb_dist *d)
{
    bool finalize = d && d->started_mpi;
    nb_dist_free(d);
#ifdef NB_HAVE_MPI
    if (finalize) MPI_Finalize();
#else
    (void)finalize;
#endif
}

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_size(const nb_dist *d) { return d ? d->size : 1; }

void nb_dist_shard(const nb_dist *d, int64_t n, int64_t *begin, int64_t *end)
{
    const int64_t k = nb_dist_size(d), r = nb_dist_rank(d), q = n / k, extra = n % k;
    *begin = r * q + (r < extra ? r : extra);
    *end = *begin + q + (r < extra);
}

void nb_dist_set_bucket_bytes(nb_dist *d, int64_t bytes)
{
    if (!d) return;
    d->bucket_bytes = bytes < 1024 ? 1024 : bytes > (1 << 30) ? (1 << 30) : bytes;   /* MPI counts are ints */
    free(d->bucket);
    d->bucket = NULL;
}

nb_dist_stats nb_dist_last_stats(const nb_dist *d) { return d ? d->last : (nb_dist_stats){ 0 }; }

/* ---- bucketed collectives ---- */

typedef enum { GRADS, VALUES } source;
typedef struct { nb_tensor *t; int64_t from, count; } piece;   /* elements [from, from + count) of t */

/* the tensor whose elements travel for t: its grad or itself (NULL: skipped) */
static nb_tensor *payload(nb_tensor *t, source src) { return src == GRADS ? t->grad : t; }

static bool check_payload(const char *op, const nb_tensor *t)
{
    if (t->dtype != NB_F32 && t->dtype != NB_F64) {
        nb_error("%s: tensors must be f32 or f64, got %s %s", op, nb_dtype_name(t->dtype), nb_shp(t));
        return false;
    }
    if (!nb_is_contiguous(t)) {
        nb_error("%s: tensor %s is not contiguous", op, nb_shp(t));
        return false;
    }
    return true;
}

/* dst[k] = src[k]·scale for k < count, in dt */
static void copy_scaled(nb_dtype dt, const char *src, char *dst, int64_t count, double scale)
{
    if (dt == NB_F32)
        for (int64_t k = 0; k < count; k++) ((float *)dst)[k] = (float)(((const float *)src)[k] * scale);
    else
        for (int64_t k = 0; k < count; k++) ((double *)dst)[k] = ((const double *)src)[k] * scale;
}

/* Every rank must have valid tensors (a rank whose are not keeps its own error, and still takes part,
 * so that none waits for it) and move the same number of elements. */
static int agree_on_size(nb_dist *d, const char *op, int64_t total, bool valid)
{
    int64_t extremes[3] = { total, -total, !valid };
    if (transport(d, op, REDUCE_MAX, extremes, 3, NB_I64)) return -1;
    if (!valid) return -1;
    if (extremes[2]) nb_error("%s: another rank was given invalid tensors", op);
    else if (extremes[0] != total || -extremes[1] != total)
        nb_error("%s: the ranks hold different amounts of data (%lld to %lld elements)", op, (long long)-extremes[1],
                 (long long)extremes[0]);
    else return 0;
    return -1;
}

/* Packs the payloads of ts in order into buckets of one dtype (a large payload split over several),
 * scaled by scale_in; runs the collective on each bucket and unpacks it scaled by scale_out. */
static int bucketed(nb_dist *d, const char *op, collective what, source src, int n, nb_tensor *const *ts,
                    double scale_in, double scale_out)
{
    if (!d) return 0;   /* one process: nothing to exchange */
    int64_t total = 0;
    bool valid = true;
    for (int i = 0; valid && i < n; i++) {
        if (!ts || !ts[i]) {
            nb_error("%s: tensor %d is NULL", op, i);
            valid = false;
            break;
        }
        nb_tensor *t = payload(ts[i], src);
        valid = !t || check_payload(op, t);
        total += t ? nb_numel(t) : 0;
    }
    if (agree_on_size(d, op, total, valid)) return -1;
    if (!d->bucket) d->bucket = malloc((size_t)d->bucket_bytes);
    piece *pieces = malloc(sizeof *pieces * (size_t)(n > 0 ? n : 1));
    if (!d->bucket || !pieces) {
        free(pieces);
        nb_error("%s: out of memory for a %lld-byte bucket", op, (long long)d->bucket_bytes);
        return -1;
    }
    d->last = (nb_dist_stats){ 0 };
    int i = 0, rc = 0;
    int64_t from = 0;   /* the next element of payload i */
    while (rc == 0) {
        while (i < n && !payload(ts[i], src)) i++;
        if (i == n) break;
        const nb_dtype dt = payload(ts[i], src)->dtype;
        const int64_t es = (int64_t)nb_dtype_size(dt), cap = d->bucket_bytes / es;
        int np = 0;
        int64_t used = 0;
        while (i < n && used < cap) {   /* fill the bucket */
            nb_tensor *t = payload(ts[i], src);
            if (!t) {
                i++;
                continue;
            }
            if (t->dtype != dt) break;
            const int64_t left = nb_numel(t) - from, count = left < cap - used ? left : cap - used;
            copy_scaled(dt, (const char *)t->data + from * es, d->bucket + used * es, count, scale_in);
            pieces[np++] = (piece){ t, from, count };
            used += count;
            from += count;
            if (from == nb_numel(t)) i++, from = 0;
        }
        rc = transport(d, op, what, d->bucket, used, dt);
        d->last.messages++;
        d->last.bytes += used * es;
        int64_t at = 0;
        for (int p = 0; rc == 0 && p < np; at += pieces[p].count, p++)   /* unpack */
            copy_scaled(dt, d->bucket + at * es, (char *)pieces[p].t->data + pieces[p].from * es, pieces[p].count,
                        scale_out);
    }
    free(pieces);
    return rc;
}

int nb_dist_broadcast(nb_dist *d, int n, nb_tensor *const *ts)
{
    return bucketed(d, "nb_dist_broadcast", BROADCAST, VALUES, n, ts, 1, 1);
}

int nb_dist_allreduce_grads(nb_dist *d, int n, nb_tensor *const *params, double weight)
{
    if (!(weight >= 0 && weight <= 1)) {
        nb_error("nb_dist_allreduce_grads: weight %g outside [0, 1]", weight);
        return -1;
    }
    return bucketed(d, "nb_dist_allreduce_grads", REDUCE_SUM, GRADS, n, params, weight, 1);
}

int nb_dist_average(nb_dist *d, int n, nb_tensor *const *ts)
{
    return bucketed(d, "nb_dist_average", REDUCE_SUM, VALUES, n, ts, 1, 1.0 / nb_dist_size(d));
}

int nb_dist_sum(nb_dist *d, double *v, int n)
{
    return d ? transport(d, "nb_dist_sum", REDUCE_SUM, v, n, NB_F64) : 0;
}

int nb_dist_check(nb_dist *d, bool failed)
{
    if (!d) return failed ? -1 : 0;
    double count = failed;
    if (nb_dist_sum(d, &count, 1)) return -1;
    if (count == 0) return 0;
    char text[MESSAGE_BYTES] = "";
    if (failed) snprintf(text, sizeof text, "%s", nb_last_error()[0] ? nb_last_error() : "no message");
    if (gather_messages(d, text, d->messages)) return -1;
    int who = d->rank;
    const char *what = text;
    for (int r = 0; d->rank == 0 && r < d->size; r++)   /* rank 0 names the lowest failing rank */
        if (d->messages[r * MESSAGE_BYTES]) {
            who = r;
            what = d->messages + r * MESSAGE_BYTES;
            break;
        }
    char others[64] = "";
    if (count > 1) snprintf(others, sizeof others, " (%.0f ranks failed)", count);
    if (failed || d->rank == 0) nb_error("rank %d failed: %s%s", who, what, others);
    else nb_error("%.0f rank%s failed; rank 0 reports which", count, count > 1 ? "s" : "");
    return -1;
}
