/* libFuzzer target for nb_cifar_read: the input is the file content, read with records 0 (any whole
 * number of 3073-byte records) and, when it is a whole number of them, with that exact count. */
#include "nabla/data.h"
#include "fuzz_common.h"

#include <limits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    if (!path[0]) fuzz_path(path, sizeof path, "cifar", ".bin");
    fuzz_write_file(path, data, size);
    static const nb_dtype dts[] = { NB_F32, NB_F64, NB_I64 };
    nb_dtype dt = dts[size % 3];
    nb_tensor *x = NULL, *y = NULL;
    int rc = nb_cifar_read(path, dt, 0, &x, &y);
    if ((rc == 0) != (x != NULL && y != NULL) || (rc != 0 && (x || y))) {
        fprintf(stderr, "fuzz_cifar: return code %d does not match the outputs\n", rc);
        abort();
    }
    if (rc == 0) {
        int64_t n = nb_numel(y);
        if (size != (size_t)n * 3073 || nb_numel(x) != n * 3072) abort();
        for (int64_t i = 0; i < n; i++)
            if (nb_get(y, i) != data[(size_t)i * 3073] || nb_get(y, i) >= 10) abort();
        for (int64_t i = 0; i < nb_numel(x); i++)
            if (nb_get(x, i) != data[(size_t)(i / 3072) * 3073 + 1 + (size_t)(i % 3072)]) abort();
    }
    nb_free(x);
    nb_free(y);
    /* an explicit record count: right when the length fits, off by one otherwise */
    int64_t records = (int64_t)(size / 3073) + (size % 3073 != 0);
    if (records > 0) {
        rc = nb_cifar_read(path, dt, records, &x, &y);
        if (rc == 0 && size != (size_t)records * 3073) abort();
        nb_free(x);
        nb_free(y);
    }
    nb_scope_reset(NULL);
    nb_cleanup();
    return 0;
}
