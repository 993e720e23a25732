/* nabla/data.h — data sets: IDX and CIFAR-10 files, train/validation/test splits, preprocessing,
 * minibatches with optional augmentation.
 *
 * FILES
 *   nb_idx_read reads one IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or plain;
 *   nb_cifar_read reads one CIFAR-10 binary batch file. Both validate everything they read and, on
 *   failure, return NULL / -1 with a message naming the file and the byte offset of the problem,
 *   e.g. "nb_idx_read: /data/train-images-idx3-ubyte.gz: truncated at offset 16: expected
 *   47040000 bytes of data, got 1024". Offsets count bytes of the uncompressed content (a damaged
 *   gzip stream is reported where reading stood when zlib, which reads ahead, detected it).
 *
 * DATA SETS
 *   An nb_dataset holds persistent tensors (they survive nb_scope_reset; nb_dataset_free frees
 *   them): images [N,C,H,W] in f32 or f64 scaled to [0,1], labels i64 [N]. The validation split
 *   is the last num_val samples of the official training set (the cs231n split); the test split
 *   is the official test set.
 *
 * MINIBATCHES
 *   An nb_batcher walks a data set in minibatches. Each batch is a copy of the chosen rows made in
 *   the CURRENT scope, so a training loop that resets its scope after every step does not grow:
 *
 *       nb_batcher *b = nb_batcher_new(ds.train_x, ds.train_y, 64, NB_BATCH_SHUFFLE, &rng);
 *       nb_tensor *xb, *yb;
 *       for (int epoch = 0; epoch < 10; epoch++) {
 *           while (nb_batcher_next(b, &xb, &yb) == 1) {
 *               ... forward, backward, optimizer step ...
 *               nb_scope_reset(NULL);
 *           }
 *       }
 *       nb_batcher_free(b);
 *
 *   Everything random (orders, samples, crops, flips) comes from a generator the batcher forks from
 *   the rng it is given, so the batches depend only on that rng's state at nb_batcher_new.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- files ---- */

/* Reads an IDX file, gzip-compressed or plain (told apart by content, not by name). The header is
 * validated: magic 0x00 0x00, data type 0x08 (unsigned byte: the only type MNIST-like sets use;
 * the others are reported as unsupported), 1 to NB_MAX_DIMS dimensions, each nonzero, and the
 * file must hold exactly the bytes the dimensions declare (neither fewer nor more).
 * Returns a persistent tensor of the file's shape (free it with nb_free) holding the raw values
 * 0..255 converted to dt (f32, f64, or i64 for labels); NULL with nb_last_error() on failure. */
nb_tensor *nb_idx_read(const char *path, nb_dtype dt);

/* Reads a CIFAR-10 binary batch file: records of 1 label byte followed by 3072 pixel bytes (the
 * 32×32 red plane, then green, then blue). The file length must be a whole number of 3073-byte
 * records, `records` of them when records > 0 (the official files hold 10000), any number >= 1 when
 * records is 0; every label must be < 10. On success *x is a persistent [n,3,32,32] tensor of the
 * raw pixel values 0..255 in dt (f32, f64 or i64), *y a persistent i64 [n] tensor of the labels; both
 * freed with nb_free. Returns 0, or -1 with *x = *y = NULL and a message naming the file and the
 * offset. */
int nb_cifar_read(const char *path, nb_dtype dt, int64_t records, nb_tensor **x, nb_tensor **y);

/* ---- data sets ---- */

typedef struct {
    nb_tensor *train_x, *train_y;   /* [N,C,H,W] f32/f64 in [0,1], i64 [N] */
    nb_tensor *val_x, *val_y;       /* the last num_val training samples; 0 rows when num_val is 0 */
    nb_tensor *test_x, *test_y;
    int64_t num_classes;            /* 10 for MNIST, Fashion-MNIST and CIFAR-10 */
    const char *name;               /* "mnist" (also for Fashion-MNIST) or "cifar10"; static */
    /* statistics the preprocessing functions computed on train and applied to every split, kept to
     * preprocess new inputs the same way; NULL until then; persistent, in the images' dtype */
    nb_tensor *mean_image;          /* [C,H,W], set by nb_dataset_subtract_mean_image */
    nb_tensor *channel_mean;        /* [C], set by nb_dataset_standardize */
    nb_tensor *channel_std;         /* [C], set by nb_dataset_standardize */
} nb_dataset;

/* Loads MNIST or Fashion-MNIST (same format) from dir: train-images-idx3-ubyte, train-labels-
 * idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each as NAME.gz or else NAME.
 * Images become [N,1,H,W] (28×28 for these sets) in dt (f32 or f64) scaled to [0,1]; the last
 * num_val training samples (0 <= num_val < 60000 for MNIST) form the validation split. Checks that
 * image files are 3-D and label files 1-D, that image and label counts agree, that train and test
 * images have the same size, and that every label is < 10.
 * Returns 0, or -1 with a message (naming the file and offset when a file is at fault); on failure
 * *ds is left zeroed and nothing is leaked. */
int nb_dataset_load_mnist(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val);

/* Loads the binary version of CIFAR-10 from dir (the extracted cifar-10-batches-bin folder, or its
 * parent): data_batch_1.bin ... data_batch_5.bin (training, in this order) and test_batch.bin,
 * each exactly 10000 records (see nb_cifar_read). Images [N,3,32,32] in dt (f32 or f64) scaled to
 * [0,1]; the last num_val of the 50000 training samples form the validation split. All six file
 * lengths are checked before anything is allocated, the labels while the records are read.
 * Returns 0, or -1 with a message naming the file and offset; on failure *ds is left zeroed. */
int nb_dataset_load_cifar10(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val);

/* The same for a CIFAR-10-format folder whose files hold records_per_file records each (0: any
 * whole number, possibly different per file), e.g. a cut-down copy for quick experiments. */
int nb_dataset_load_cifar10_records(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val,
                                    int64_t records_per_file);

/* Frees every tensor of ds and zeroes it; a zeroed or already freed ds is fine. */
void nb_dataset_free(nb_dataset *ds);

/* Preprocessing, in place on every split; statistics come from train only and are accumulated in
 * double. Both need float images [N,C,...] (contiguous, as the loaders make them). */
/* Subtracts the mean training image ([C,H,W], kept in ds->mean_image) from all splits. */
int nb_dataset_subtract_mean_image(nb_dataset *ds);
/* Per channel (axis 1): x = (x - mean) / std with the mean and the population standard deviation
 * over the training samples and pixels (kept in ds->channel_mean and ds->channel_std); a channel
 * with std 0 is only centred. Afterwards each training channel has mean 0 and std 1. */
int nb_dataset_standardize(nb_dataset *ds);

/* ---- minibatches ---- */

typedef enum {
    NB_BATCH_SHUFFLE,    /* a fresh random permutation each epoch: every sample exactly once per epoch,
                            the last batch partial when batch_size does not divide N */
    NB_BATCH_SAMPLE,     /* cs231n: each batch drawn uniformly with replacement; an epoch is
                            max(N / batch_size, 1) batches */
    NB_BATCH_SEQUENTIAL, /* rows in order, last batch partial (evaluation); rng may be NULL */
} nb_batch_mode;

typedef struct nb_batcher nb_batcher;

/* A batcher over the rows (axis 0) of x and y (y may be NULL; otherwise its axis 0 must match x's).
 * x and y are not copied: they must outlive the batcher (persistent data sets do). Any dtypes and
 * strides. rng seeds the batcher's own generator (one number is drawn from rng); it is not kept.
 * Returns NULL with a message on bad arguments. */
nb_batcher *nb_batcher_new(const nb_tensor *x, const nb_tensor *y, int64_t batch_size, nb_batch_mode mode,
                           nb_rng *rng);

/* Random augmentation applied while copying each sample of x, which must be [N,...,H,W] and
 * contiguous: with crop_pad > 0 the image is zero-padded by crop_pad on every side and an H×W
 * window is cropped at a uniform random position (a shift of -crop_pad..crop_pad per axis); with
 * hflip it is then mirrored left-right with probability 1/2. Per sample, the crop offsets (row,
 * then column) are drawn before the flip. crop_pad 0 and hflip false turn augmentation off.
 * Returns 0 or -1. */
int nb_batcher_set_augment(nb_batcher *b, int crop_pad, bool hflip);

/* The next minibatch: *xb = [B,...] and *yb = [B,...] (NULL when y is NULL), copies in the current
 * scope. Returns 1 with a batch while the epoch lasts; 0 (and NULL batches) once it is over, after
 * which the following call starts the next epoch; -1 on error. */
int nb_batcher_next(nb_batcher *b, nb_tensor **xb, nb_tensor **yb);

int64_t nb_batcher_epoch(const nb_batcher *b);             /* epochs completed so far */
int64_t nb_batcher_batches_per_epoch(const nb_batcher *b); /* calls returning 1 per epoch */
void nb_batcher_free(nb_batcher *b);                       /* NULL is a no-op */

/* Rows [start, start+count) of x along axis 0 as a view in the current scope (no copy, no graph);
 * count is clipped at the end, so for (i = 0; i < N; i += chunk) nb_take_rows(x, i, chunk) walks x
 * in chunks. 0 <= start <= N and count >= 0, otherwise NULL with a message. */
nb_tensor *nb_take_rows(const nb_tensor *x, int64_t start, int64_t count);

/* ---- text for language models (lib/data/text.c) ----
 * A byte-level corpus: token ids are the bytes 0..255. nb_text_load reads a file, or every regular
 * file of a folder in name order (symbolic links and fortune's *.dat indexes skipped: Debian's
 * /usr/share/games/fortunes, package fortunes, is nabla-lm's default corpus), and splits it: the
 * last val_fraction of the bytes (in (0,1)) is the validation split. nb_text_batch draws `batch`
 * windows of len + 1 bytes at random offsets of one split from rng (so a seed gives the same
 * batches): x = the first len bytes, y = the next-byte targets, both i64 [batch,len] in the current
 * scope. -1 with a message naming the file or the sizes. */
typedef struct {
    uint16_t *ids;       /* the whole corpus as token ids (owned): bytes, or llm.c's GPT-2 tokens */
    int64_t n;           /* ids */
    int64_t n_train;     /* ids[0..n_train) train, ids[n_train..n) validate */
    int64_t vocab;       /* 256 for bytes; for token files one more than the largest id */
} nb_text;
int nb_text_load(nb_text *t, const char *path, double val_fraction);
/* llm.c's token file (a header of 256 int32: 20240520, version 1, the token count; then uint16
 * tokens) as a corpus, split as above; nb_tokens_save writes one (atomically) */
int nb_text_load_tokens(nb_text *t, const char *path, double val_fraction);
int nb_tokens_save(const char *path, const uint16_t *tokens, int64_t n);
int nb_text_batch(const nb_text *t, bool val, int64_t batch, int64_t len, nb_rng *rng, nb_tensor **x, nb_tensor **y);
void nb_text_free(nb_text *t);   /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
