/* Shared by the lib/data sources: paths and a sink that converts bytes into tensors. */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include "../internal.h"
#include "nabla/data.h"

#include <limits.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* the arguments every loader takes; zeroes *ds first (so nb_dataset_free is safe); 0 or -1 */
int nb_data_check_load_args(const char *op, nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val);

/* out = dir/name; -1 with "<op>: path too long" when it does not fit */
int nb_data_path(const char *op, char *out, size_t size, const char *dir, const char *name);

/* Bytes 0..255 converted to the sink's dtype and written into up to
 * two contiguous tensors of that dtype one after the other: the first until it is full, then the
 * second (a train/validation split). Float values are byte / divisor (255 scales to [0,1]). */
typedef struct {
    nb_tensor *t[2];
    int n, cur;
    int64_t pos;            /* elements written into t[cur] */
    nb_dtype dt;
    float f32[256];
    double f64[256];
} nb_sink;
void nb_sink_init(nb_sink *s, double divisor, nb_tensor *first, nb_tensor *second);
void nb_sink_put(nb_sink *s, const uint8_t *src, int64_t n); /* the caller guarantees room */

/* "f32 or f64" check for the loaders' image dtype */
bool nb_data_check_float_dtype(const char *op, nb_dtype dt);

#endif
