/* nabla/safetensors.h — reading and writing tensors in the safetensors format.
 *
 * FORMAT (https://github.com/huggingface/safetensors)
 *   An 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON, then the data
 *   buffer. The JSON is an object: an optional "__metadata__" object of string values, and one
 *   entry per tensor, {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}, the offsets
 *   in bytes from the start of the data buffer. Values are little-endian and row-major; the tensors
 *   are contiguous, do not overlap and together cover the whole buffer. nabla reads and writes the
 *   dtypes F32, F64 and I64; a file holding any other dtype is rejected, naming the tensor.
 *
 * SAVING
 *   nb_safetensors_save and nb_safetensors_writer_save write atomically: the file is written
 *   under a temporary name in the same folder, synced, renamed over `path`, and the folder is
 *   synced, so after a crash `path` holds either the old file or the new one, never a mix. On
 *   failure the temporary file is removed and `path` is untouched (a symbolic link at `path` is
 *   replaced, not followed). The temporary file is "<path>.tmp.<pid>.<n>"; a successful save removes
 *   those left by writers that were killed (their pid no longer exists). Tensors may have any strides
 *   (views, transposes, broadcasts): their values are written in row-major order. Tensor names
 *   must be unique, valid UTF-8 and not "__metadata__"; metadata keys must be unique.
 *
 * LOADING
 *   nb_safetensors_load checks the whole file before using it — sizes, types, offsets, overlaps,
 *   gaps and trailing bytes — and never reads outside it; each error message names the file and
 *   the offending byte offset or tensor. The loaded tensors are persistent (see tensor.h) and
 *   owned by the returned nb_safetensors: do not nb_free them; copy them (nb_copy_into,
 *   nb_persist) to keep them after nb_safetensors_free.
 *
 * ERRORS
 *   As everywhere in nabla: NULL or -1 with a message read by nb_last_error().
 */
#ifndef NABLA_SAFETENSORS_H
#define NABLA_SAFETENSORS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded file: tensors in the order of the file's header, and its metadata. */
typedef struct {
    int n;                   /* tensors */
    char **names;            /* names[i] names tensors[i] */
    nb_tensor **tensors;     /* persistent, contiguous, owned by this struct */
    int n_meta;              /* "__metadata__" entries */
    char **meta_keys, **meta_values;
} nb_safetensors;

/* Writes n tensors and n_meta metadata pairs to path, atomically (see SAVING). 0 or -1. */
int nb_safetensors_save(const char *path, int n, const char *const *names, nb_tensor *const *tensors,
                        int n_meta, const char *const *meta_keys, const char *const *meta_values);

/* Reads and validates a whole file; NULL + error on any problem. Free with nb_safetensors_free. */
nb_safetensors *nb_safetensors_load(const char *path);

/* The tensor named name (owned by st), or NULL + error when absent. */
nb_tensor *nb_safetensors_get(const nb_safetensors *st, const char *name);

/* The metadata value for key (owned by st), or NULL when absent (no error recorded; a NULL st or
 * key records one). */
const char *nb_safetensors_meta(const nb_safetensors *st, const char *key);

void nb_safetensors_free(nb_safetensors *st);   /* frees the tensors too; NULL is a no-op */

/* An incremental writer for callers that produce tensors one by one (a module tree, then the
 * optimizer's state). add copies the values at once, so the tensor may change or be freed
 * afterwards; save may be called more than once. */
typedef struct nb_safetensors_writer nb_safetensors_writer;
nb_safetensors_writer *nb_safetensors_writer_new(void);
int nb_safetensors_writer_add(nb_safetensors_writer *w, const char *name, const nb_tensor *t);
int nb_safetensors_writer_meta(nb_safetensors_writer *w, const char *key, const char *value);
int nb_safetensors_writer_save(nb_safetensors_writer *w, const char *path);  /* atomic, as above */
void nb_safetensors_writer_free(nb_safetensors_writer *w);                    /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
