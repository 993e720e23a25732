/* CIFAR-10 binary batch files (records of 1 label byte + 3072 pixel bytes, the R, G and B planes of
 * a 32x32 image) and the CIFAR-10 loader. File lengths are checked before anything is allocated;
 * labels while the records are read. */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_CHUNK 64 /* records per read */

/* The number of records in path, validated against `records` (> 0) or only for whole records (0). */
static int cifar_check(const char *op, const char *path, int64_t records, int64_t *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        nb_error("%s: %s: cannot open: %s", op, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        nb_error("%s: %s: not a regular file", op, path);
        return -1;
    }
    int64_t size = (int64_t)st.st_size;
    if (records > INT64_MAX / CIFAR_RECORD) {
        nb_error("%s: %s: %lld records of %d bytes cannot be in a file (their size overflows); the file has %lld bytes",
                 op, path, (long long)records, CIFAR_RECORD, (long long)size);
        return -1;
    }
    if (records > 0) {
        int64_t expected = records * CIFAR_RECORD;
        if (size < expected) {
            nb_error("%s: %s: truncated at offset %lld: expected %lld bytes (%lld records of %d bytes), got %lld", op,
                     path, (long long)size, (long long)expected, (long long)records, CIFAR_RECORD, (long long)size);
            return -1;
        }
        if (size > expected) {
            nb_error("%s: %s: %lld trailing byte%s at offset %lld: expected %lld records of %d bytes", op, path,
                     (long long)(size - expected), size - expected == 1 ? "" : "s", (long long)expected,
                     (long long)records, CIFAR_RECORD);
            return -1;
        }
    } else {
        if (size % CIFAR_RECORD != 0) {
            nb_error("%s: %s: length %lld is not a multiple of the %d-byte record (1 label byte + %d pixel bytes): "
                     "%lld bytes left over at offset %lld", op, path, (long long)size, CIFAR_RECORD, CIFAR_PIXELS,
                     (long long)(size % CIFAR_RECORD), (long long)(size - size % CIFAR_RECORD));
            return -1;
        }
        if (size == 0) {
            nb_error("%s: %s: empty file: expected records of %d bytes", op, path, CIFAR_RECORD);
            return -1;
        }
    }
    *count = size / CIFAR_RECORD;
    return 0;
}

/* Reads the n records of path: labels into ys, pixels into xs. */
static int cifar_read_records(const char *op, const char *path, int64_t n, nb_sink *xs, nb_sink *ys)
{
    const int fd = nb_open_regular(path, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd == -2) nb_error("%s: %s: not a regular file", op, path);
        else nb_error("%s: %s: cannot open: %s", op, path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    uint8_t *buf = malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD);
    if (!buf) {
        nb_error("%s: %s: out of memory", op, path);
        fclose(f);
        return -1;
    }
    int rc = -1;
    for (int64_t r = 0; r < n;) {
        int64_t k = n - r < CIFAR_CHUNK ? n - r : CIFAR_CHUNK;
        size_t want = (size_t)k * CIFAR_RECORD;
        size_t got = fread(buf, 1, want, f);
        if (got < want) {
            long long at = (long long)(r * CIFAR_RECORD + (int64_t)got);
            if (ferror(f))
                nb_error("%s: %s: read error at offset %lld: %s", op, path, at, strerror(errno));
            else
                nb_error("%s: %s: truncated at offset %lld: the file shrank while being read (expected %lld bytes)",
                         op, path, at, (long long)(n * CIFAR_RECORD));
            goto done;
        }
        for (int64_t i = 0; i < k; i++) {
            const uint8_t *rec = buf + i * CIFAR_RECORD;
            if (rec[0] >= CIFAR_CLASSES) {
                nb_error("%s: %s: label %d at offset %lld (record %lld) is out of range: labels must be < %d", op, path,
                         rec[0], (long long)((r + i) * CIFAR_RECORD), (long long)(r + i), CIFAR_CLASSES);
                goto done;
            }
            nb_sink_put(ys, rec, 1);
            nb_sink_put(xs, rec + 1, CIFAR_PIXELS);
        }
        r += k;
    }
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

int nb_cifar_read(const char *path, nb_dtype dt, int64_t records, nb_tensor **x, nb_tensor **y)
{
    const char *op = "nb_cifar_read";
    if (!x || !y) {
        nb_error("%s: NULL output", op);
        return -1;
    }
    *x = *y = NULL;
    if (!path) {
        nb_error("%s: NULL path", op);
        return -1;
    }
    if (dt != NB_F32 && dt != NB_F64 && dt != NB_I64) {
        nb_error("%s: unknown dtype %d", op, (int)dt);
        return -1;
    }
    if (records < 0) {
        nb_error("%s: records must be >= 0, got %lld", op, (long long)records);
        return -1;
    }
    int64_t n;
    if (cifar_check(op, path, records, &n) < 0) return -1;
    nb_tensor *tx = nb_new_persistent(op, dt, 4, (int64_t[]){ n, 3, 32, 32 });
    nb_tensor *ty = nb_new_persistent(op, NB_I64, 1, &n);
    nb_sink xs, ys;
    if (!tx || !ty) goto fail;
    nb_sink_init(&xs, 1.0, tx, NULL);
    nb_sink_init(&ys, 1.0, ty, NULL);
    if (cifar_read_records(op, path, n, &xs, &ys) < 0) goto fail;
    *x = tx;
    *y = ty;
    return 0;
fail:
    nb_free(tx);
    nb_free(ty);
    return -1;
}

#define CIFAR_FILES 6

int nb_dataset_load_cifar10_records(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val,
                                    int64_t records_per_file)
{
    const char *op = "nb_dataset_load_cifar10";
    static const char *const names[CIFAR_FILES] = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" };
    if (nb_data_check_load_args(op, ds, dir, dt, num_val)) return -1;
    if (records_per_file < 0) {
        nb_error("%s: records_per_file must be >= 0, got %lld", op, (long long)records_per_file);
        return -1;
    }

    /* dir may be the extracted cifar-10-batches-bin folder or its parent */
    char base[PATH_MAX], probe[PATH_MAX];
    struct stat st;
    if (nb_data_path(op, base, sizeof base, dir, "cifar-10-batches-bin") < 0) return -1;
    if (nb_data_path(op, probe, sizeof probe, dir, names[0]) < 0) return -1;
    if (stat(probe, &st) != 0 && stat(base, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* base stays the sub-folder */
    } else if (strlen(dir) < sizeof base) {
        strcpy(base, dir);
    }

    char paths[CIFAR_FILES][PATH_MAX];
    int64_t count[CIFAR_FILES], ntrain = 0;
    for (int i = 0; i < CIFAR_FILES; i++) {
        if (nb_data_path(op, paths[i], sizeof paths[i], base, names[i]) < 0) return -1;
        if (cifar_check(op, paths[i], records_per_file, &count[i]) < 0) return -1;
        if (i < CIFAR_FILES - 1) ntrain += count[i];
    }
    if (num_val >= ntrain) {
        nb_error("%s: num_val %lld must be less than the %lld training samples", op, (long long)num_val,
                 (long long)ntrain);
        return -1;
    }

    int64_t nt = ntrain - num_val, ntest = count[CIFAR_FILES - 1];
    ds->train_x = nb_new_persistent(op, dt, 4, (int64_t[]){ nt, 3, 32, 32 });
    ds->val_x = nb_new_persistent(op, dt, 4, (int64_t[]){ num_val, 3, 32, 32 });
    ds->test_x = nb_new_persistent(op, dt, 4, (int64_t[]){ ntest, 3, 32, 32 });
    ds->train_y = nb_new_persistent(op, NB_I64, 1, &nt);
    ds->val_y = nb_new_persistent(op, NB_I64, 1, &num_val);
    ds->test_y = nb_new_persistent(op, NB_I64, 1, &ntest);
    if (!ds->train_x || !ds->val_x || !ds->test_x || !ds->train_y || !ds->val_y || !ds->test_y) goto fail;

    nb_sink xs, ys;
    nb_sink_init(&xs, 255.0, ds->train_x, ds->val_x);
    nb_sink_init(&ys, 1.0, ds->train_y, ds->val_y);
    for (int i = 0; i < CIFAR_FILES - 1; i++)
        if (cifar_read_records(op, paths[i], count[i], &xs, &ys) < 0) goto fail;
    nb_sink_init(&xs, 255.0, ds->test_x, NULL);
    nb_sink_init(&ys, 1.0, ds->test_y, NULL);
    if (cifar_read_records(op, paths[CIFAR_FILES - 1], ntest, &xs, &ys) < 0) goto fail;

    ds->num_classes = CIFAR_CLASSES;
    ds->name = "cifar10";
    return 0;
fail:
    nb_dataset_free(ds);
    return -1;
}

int nb_dataset_load_cifar10(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val)
{
    return nb_dataset_load_cifar10_records(ds, dir, dt, num_val, 10000);
}
