/* llm.c's GPT-2 checkpoints (train_gpt2.c's gpt2_124M.bin format) in and out of nb_gpt.
 *   header: 256 little-endian int32: 20240326, version 3, maxT, V, L, NH, C, Vp (V padded), 0...
 *   then float32 parameters, in this order: wte [Vp,C], wpe [maxT,C], ln1w [L,C], ln1b [L,C],
 *   qkvw [L,3C,C], qkvb [L,3C], attprojw [L,C,C], attprojb [L,C], ln2w [L,C], ln2b [L,C],
 *   fcw [L,4C,C], fcb [L,4C], fcprojw [L,C,4C], fcprojb [L,C], lnfw [C], lnfb [C].
 * llm.c stores linear weights [out,in]; nabla's are [in,out], so those are transposed either way.
 * The output projection is tied to wte in both. Rows V..Vp of wte are padding: dropped on reading,
 * written as zeros. */
#include "../internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAGIC 20240326
#define VERSION 3
#define HEADER_INTS 256

/* one array of the file: the nabla tensor it holds (%d: the layer), per layer or once, transposed */
typedef struct { const char *name; bool per_layer, transposed; } array;
static const array arrays[] = {
    { "wte.weight", false, false },           { "wpe.weight", false, false },
    { "h.%d.ln_1.weight", true, false },      { "h.%d.ln_1.bias", true, false },
    { "h.%d.attn.c_attn.weight", true, true }, { "h.%d.attn.c_attn.bias", true, false },
    { "h.%d.attn.c_proj.weight", true, true }, { "h.%d.attn.c_proj.bias", true, false },
    { "h.%d.ln_2.weight", true, false },      { "h.%d.ln_2.bias", true, false },
    { "h.%d.mlp.c_fc.weight", true, true },    { "h.%d.mlp.c_fc.bias", true, false },
    { "h.%d.mlp.c_proj.weight", true, true },  { "h.%d.mlp.c_proj.bias", true, false },
    { "ln_f.weight", false, false },          { "ln_f.bias", false, false },
};
#define N_ARRAYS (int)(sizeof arrays / sizeof arrays[0])

/* the tensor of array a at layer l */
static nb_tensor *tensor_of(nb_module *gpt, const array *a, int l)
{
    char name[64];
    snprintf(name, sizeof name, a->name, l);
    return nb_module_find(gpt, name);
}

nb_module *nb_gpt_load_llmc(const char *path, nb_dtype dt)
{
    static const char op[] = "nb_gpt_load_llmc";
    if (!path) {
        nb_error("%s: NULL path", op);
        return NULL;
    }
    int64_t size;
    int fd = nb_open_regular(path, &size);
    if (fd < 0) {
        nb_error("%s: %s: %s", op, path, fd == -2 ? "not a regular file" : strerror(errno));
        return NULL;
    }
    unsigned char header[HEADER_INTS * 4];
    nb_module *gpt = NULL;
    float *buf = NULL;
    if (size < (int64_t)sizeof header || read(fd, header, sizeof header) != (ssize_t)sizeof header) {
        nb_error("%s: %s: %lld bytes, shorter than the 1024-byte header", op, path, (long long)size);
        goto done;
    }
    if (nb_le32(header) != MAGIC || nb_le32(header + 4) != VERSION) {
        nb_error("%s: %s: not an llm.c GPT-2 float32 checkpoint of version %d (magic %d at offset 0, version %d at offset 4)",
                 op, path, VERSION, nb_le32(header), nb_le32(header + 4));
        goto done;
    }
    const int64_t maxT = nb_le32(header + 8), V = nb_le32(header + 12), L = nb_le32(header + 16), NH = nb_le32(header + 20),
                  C = nb_le32(header + 24), Vp = nb_le32(header + 28);
    if (maxT < 1 || V < 1 || L < 1 || NH < 1 || C < 1 || Vp < V || C % NH || C > (1 << 16) || Vp > (1 << 24) ||
        maxT > (1 << 20) || L > 1024) {
        nb_error("%s: %s: the header (offsets 8 to 31) gives maxT %lld, V %lld, L %lld, NH %lld, C %lld, Vp %lld: not a GPT",
                 op, path, (long long)maxT, (long long)V, (long long)L, (long long)NH, (long long)C, (long long)Vp);
        goto done;
    }
    const int64_t count = Vp * C + maxT * C + L * (12 * C * C + 13 * C) + 2 * C;
    if (size != (int64_t)sizeof header + 4 * count) {
        nb_error("%s: %s: %lld bytes; the header's sizes need %lld (1024 + 4 per parameter)", op, path, (long long)size,
                 (long long)(sizeof header + 4 * count));
        goto done;
    }
    nb_gpt_config cfg = { .vocab_size = V, .max_seq_len = maxT, .n_layer = L, .n_head = NH, .n_embd = C, .dtype = dt };
    if (!(gpt = nb_gpt(&cfg))) goto done;
    int64_t offset = (int64_t)sizeof header;
    for (int k = 0; k < N_ARRAYS && gpt; k++)
        for (int l = 0; l < (arrays[k].per_layer ? L : 1) && gpt; l++) {
            nb_tensor *t = tensor_of(gpt, &arrays[k], l);
            nb_shape s = nb_shape_of(t);
            if (k == 0) s.d[0] = Vp;   /* wte's padded rows */
            if (arrays[k].transposed) s = NB_SHAPE(s.d[1], s.d[0]);
            const int64_t n = nb_shape_numel(s.ndim, s.d);
            float *grown = realloc(buf, sizeof *buf * (size_t)n);
            if (grown) buf = grown;
            if (!grown || pread(fd, buf, (size_t)n * 4, offset) != (ssize_t)(n * 4)) {
                nb_error("%s: %s: cannot read %lld floats at offset %lld", op, path, (long long)n, (long long)offset);
                nb_module_free(gpt), gpt = NULL;
                break;
            }
            if (!nb_host_is_little()) nb_swap_bytes((unsigned char *)buf, (size_t)n * 4, 4);
            nb_tensor *values = nb_from_data(NB_F32, s, buf);
            if (arrays[k].transposed) values = nb_transpose(values, 0, 1);
            if (k == 0) values = nb_slice(values, 0, 0, V, 1);
            if (!values || nb_copy_into(t, values)) nb_module_free(gpt), gpt = NULL;
            offset += 4 * n;
        }
done:
    free(buf);
    close(fd);
    return gpt;
}

int nb_gpt_save_llmc(nb_module *gpt, const char *path)
{
    static const char op[] = "nb_gpt_save_llmc";
    if (!gpt || !path) {
        nb_error("%s: NULL %s", op, gpt ? "path" : "model");
        return -1;
    }
    const int64_t n_head = nb_gpt_n_head(gpt);
    if (n_head < 1) {
        nb_error("%s: the module is a %s, not an nb_gpt", op, gpt->kind);
        return -1;
    }
    nb_tensor *wte = gpt->children[0]->tensors[0], *wpe = gpt->children[1]->tensors[0];
    const int64_t V = wte->shape[0], C = wte->shape[1], maxT = wpe->shape[0], L = gpt->children[2]->n_children;
    const int64_t Vp = (V + 127) / 128 * 128;   /* llm.c pads the vocabulary to a multiple of 128 */
    unsigned char header[HEADER_INTS * 4] = { 0 };
    const int64_t fields[8] = { MAGIC, VERSION, maxT, V, L, n_head, C, Vp };
    for (int k = 0; k < 8; k++)
        for (int b = 0; b < 4; b++) header[4 * k + b] = (unsigned char)((uint64_t)fields[k] >> (8 * b));
    /* every array as a float32 view in the file's layout; the writer reads them through their strides */
    const int n = 3 + (int)(L * 12) + 2;
    nb_tensor **list = nb_scope_alloc(sizeof *list * (size_t)n);
    if (!list) return -1;
    int i = 0;
    for (int k = 0; k < N_ARRAYS; k++)
        for (int l = 0; l < (arrays[k].per_layer ? L : 1); l++) {
            nb_tensor *t = nb_cast(tensor_of(gpt, &arrays[k], l), NB_F32);
            list[i++] = arrays[k].transposed ? nb_transpose(t, 0, 1) : t;
            if (k == 0) list[i++] = nb_zeros(NB_F32, NB_SHAPE(Vp - V, C));   /* the padding rows */
        }
    for (int k = 0; k < n; k++)
        if (!list[k]) return -1;
    return nb_save_atomic(op, path, header, sizeof header, n, list);
}
