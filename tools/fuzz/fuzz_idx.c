/* libFuzzer target for nb_idx_read: the input is the file content (plain or gzip: the reader tells
 * them apart by content), read under a plain name and under a .gz name, in every dtype. */
#include "nabla/data.h"
#include "fuzz_common.h"

#include <limits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char plain[PATH_MAX], gz[PATH_MAX];
    if (!plain[0]) {
        fuzz_path(plain, sizeof plain, "idx", "");
        fuzz_path(gz, sizeof gz, "idx", ".gz");
    }
    fuzz_write_file(plain, data, size);
    fuzz_write_file(gz, data, size);
    static const nb_dtype dts[] = { NB_F32, NB_F64, NB_I64 };
    /* the dtype only changes the conversion: vary it with the input rather than tripling the cost */
    nb_dtype dt = dts[size % 3];
    nb_tensor *a = nb_idx_read(plain, dt);
    nb_tensor *b = nb_idx_read(gz, dt);
    /* the name must not matter */
    if ((a == NULL) != (b == NULL)) {
        fprintf(stderr, "fuzz_idx: plain and .gz names disagree\n");
        abort();
    }
    if (a) {
        /* touch every element so that a short fill shows up under MSan/ASan as a use of bad memory */
        volatile double sum = 0;
        int64_t n = nb_numel(a);
        for (int64_t i = 0; i < n; i++) sum += nb_get(a, i);
        (void)sum;
    }
    nb_free(a);
    nb_free(b);
    nb_scope_reset(NULL);
    nb_cleanup();
    return 0;
}
