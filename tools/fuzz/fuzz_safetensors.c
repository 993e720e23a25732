/* libFuzzer target for nb_safetensors_load: the input is the whole file. A file that loads is
 * checked for consistency (names, shapes within the file, lookups by name and metadata key) and
 * every value is read. */
#include "nabla/safetensors.h"
#include "fuzz_common.h"

#include <limits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    if (!path[0]) fuzz_path(path, sizeof path, "st", ".safetensors");
    fuzz_write_file(path, data, size);
    nb_safetensors *st = nb_safetensors_load(path);
    if (st) {
        int64_t bytes = 0;
        for (int i = 0; i < st->n; i++) {
            nb_tensor *t = st->tensors[i];
            if (!st->names[i] || !t) abort();
            if (nb_safetensors_get(st, st->names[i]) != t) abort();
            int64_t n = nb_numel(t);
            bytes += n * 8;
            volatile double sum = 0;
            for (int64_t k = 0; k < n; k++) sum += nb_get(t, k);
            (void)sum;
        }
        /* every tensor element comes from the file (at least 4 bytes each) */
        if (bytes / 2 > (int64_t)size) abort();
        for (int i = 0; i < st->n_meta; i++)
            if (!st->meta_keys[i] || !st->meta_values[i] ||
                nb_safetensors_meta(st, st->meta_keys[i]) == NULL)
                abort();
        nb_safetensors_free(st);
    }
    nb_scope_reset(NULL);
    nb_cleanup();
    return 0;
}
