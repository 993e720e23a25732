/* Scaled dot-product attention in one op (nn.h's nb_attention composes the same from matmul,
 * mul_scalar, where and softmax: six tensors of [..,T,T] forward, more backward):
 *   S = q·kᵀ; per row, in place: scaled by 1/√D, the positions a causal row may not see left out,
 *   softmax -> P; out = P·v, laid out in q's axis order so that [B,H,T,D] heads cut from a [B,T,3C]
 *   projection come back as [B,T,H,E] rows without a copy. The products run in register tiles, one
 *   head at a time, at the AVX-512 level (below), and through BLIS otherwise.
 * nb_attention_heads_fused takes that projection itself: its heads are views, and the backward
 * writes dq, dk and dv into one [B,T,3C] gradient (three sliced inputs would each get a zero-filled
 * [B,T,3C] gradient, then two sums).
 * Backward, a kernel (once-differentiable) that keeps only P from the forward:
 *   dv = Pᵀ·g, dP = g·vᵀ, dS = P⊙(dP − Σ_j dP⊙P)/√D per row in place, dq = dS·k, dk = dSᵀ·q. */
#include "../internal.h"
#include "vmath.h"

#include <math.h>

/* one row to its softmax(scale·row) in place: float rows in vector operations (vmath.h) */
static inline void row_softmax_float(float *row, int64_t n, float scale) { nb_row_softmax_f32(row, row, n, scale); }
static inline void row_softmax_double(double *row, int64_t n, double scale)
{
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; j++) max = row[j] > max ? row[j] : max;
    for (int64_t j = 0; j < n; j++) sum += row[j] = exp(scale * (row[j] - max));
    for (int64_t j = 0; j < n; j++) row[j] /= sum;
}

/* the length a causal row of len entries is processed to: whole vectors of lanes where the row has
 * room (the entries past len masked), not a scalar tail per row (it was a sixth of a head's forward) */
static inline int64_t padded_length(int64_t len, int64_t T)
{
    const int64_t whole = (len + NB_VMATH_LANES - 1) / NB_VMATH_LANES * NB_VMATH_LANES;
    return whole < T ? whole : T;
}

/* Rows [first, first + n) of S ([rows,T], row r is query r % T) to P in place; and rows of dP to
 * dS = P⊙(dP − Σ_j dP⊙P)·scale in place (P is 0 where a causal row sees nothing). */
#define ROW_KERNELS(ISA, ATTR, E)                                                                             \
    ATTR static void softmax_rows_##E##_##ISA(E *s, int64_t first, int64_t n, int64_t T, E scale, bool causal) \
    {                                                                                                         \
        for (int64_t r = first; r < first + n; r++) {                                                         \
            E *row = s + r * T;                                                                               \
            const int64_t len = causal ? r % T + 1 : T, padded = padded_length(len, T);                      \
            for (int64_t j = len; j < padded; j++) row[j] = -INFINITY;   /* e^-inf = 0: out of the sum */     \
            row_softmax_##E(row, padded, scale);                                                              \
            for (int64_t j = padded; j < T; j++) row[j] = 0;                                                  \
        }                                                                                                     \
    }                                                                                                         \
    ATTR static void softmax_grad_rows_##E##_##ISA(E *dp, const E *p, int64_t first, int64_t n, int64_t T,   \
                                                   E scale, bool causal)                                      \
    {                                                                                                         \
        for (int64_t r = first; r < first + n; r++) {                                                         \
            E *d = dp + r * T;                                                                                \
            const E *y = p + r * T;   /* 0 past len; d there may be anything, so it is zeroed first */       \
            const int64_t len = causal ? r % T + 1 : T, padded = padded_length(len, T);                      \
            const int64_t whole = padded / NB_VMATH_LANES * NB_VMATH_LANES;                                   \
            for (int64_t j = len; j < padded; j++) d[j] = 0;                                                  \
            E lane_dot[NB_VMATH_LANES] = { 0 }, dot = 0;                                                      \
            for (int64_t j = 0; j < whole; j += NB_VMATH_LANES)                                               \
                for (int l = 0; l < NB_VMATH_LANES; l++) lane_dot[l] += d[j + l] * y[j + l];                  \
            for (int l = 0; l < NB_VMATH_LANES; l++) dot += lane_dot[l];                                      \
            for (int64_t j = whole; j < padded; j++) dot += d[j] * y[j];                                      \
            for (int64_t j = 0; j < padded; j++) d[j] = y[j] * (d[j] - dot) * scale;                          \
            for (int64_t j = len; j < T; j++) d[j] = 0;                                                       \
        }                                                                                                     \
    }
NB_FOR_ISA(ROW_KERNELS, float)
NB_FOR_ISA(ROW_KERNELS, double)
NB_ISA_FUNCTIONS(softmax_rows_float);
NB_ISA_FUNCTIONS(softmax_rows_double);
NB_ISA_FUNCTIONS(softmax_grad_rows_float);
NB_ISA_FUNCTIONS(softmax_grad_rows_double);

/* ---- one head's products in register tiles (the AVX-512 level) ----
 * BLIS packs both operands of every call, which for a head of [128,64] costs about as much as the
 * product (about 80 GFLOP/s here). Here each head's operands stay in cache, kᵀ and vᵀ are copied
 * transposed once per head, Pᵀ and dSᵀ are read in place, and the causal half of every product is
 * skipped. */

#define TILE_ROWS 8

/* which part of c = a·b a causal head needs; the tiles round it up, and the extra entries are
 * ignored (scores past a row's position) or products with P's zeros */
typedef enum {
    ALL,
    COLS_TO_ROW,   /* c[i][j] for j <= i: the scores */
    K_TO_ROW,      /* Σ over k <= i: a's row i is 0 past i (P·v, dS·k) */
    K_FROM_ROW     /* Σ over k >= i: a's row i is 0 before i (Pᵀ·g, dSᵀ·q) */
} causal_part;

/* c[M,N] = a[M,K]·b[K,N], rows lda, ldb, ldc elements apart, each row contiguous; `part` as above.
 * NAME reads a as stored (A_AT(i, k) = a[i·lda + k]) or transposed (a[k·lda + i]: Pᵀ·g and dSᵀ·q
 * without a transposed copy). */
#define TILE_GEMM(ISA, ATTR, E, NAME, A_AT)                                                                    \
    ATTR NB_FMA static void NAME##_##E##_##ISA(int64_t M, int64_t N, int64_t K, const E *a, int64_t lda,       \
                                               const E *b, int64_t ldb, E *c, int64_t ldc, causal_part part)   \
    {                                                                                                          \
        typedef E vec __attribute__((vector_size(64)));                                                        \
        enum { L = 64 / sizeof(E), W = 2 * L };   /* a tile is TILE_ROWS rows of two 512-bit vectors */        \
        for (int64_t i0 = 0; i0 < M; i0 += TILE_ROWS) {                                                        \
            const int64_t rows = M - i0 < TILE_ROWS ? M - i0 : TILE_ROWS, end = i0 + rows;                     \
            const int64_t k0 = part == K_FROM_ROW ? i0 : 0, k1 = part == K_TO_ROW && end < K ? end : K;        \
            const int64_t n1 = part == COLS_TO_ROW && (end + W - 1) / W * W < N ? (end + W - 1) / W * W : N;   \
            for (int64_t j0 = 0; j0 < n1; j0 += W) {                                                           \
                const int64_t cols = n1 - j0 < W ? n1 - j0 : W;                                                \
                if (rows == TILE_ROWS && cols == W) {                                                          \
                    vec acc[TILE_ROWS][2];   /* zeroed as vectors: a memset becomes a slow `rep stos` */      \
                    for (int r = 0; r < TILE_ROWS; r++) acc[r][0] = acc[r][1] = (vec){ 0 };                    \
                    for (int64_t k = k0; k < k1; k++) {                                                        \
                        vec b0, b1;                                                                            \
                        memcpy(&b0, b + k * ldb + j0, sizeof b0);                                              \
                        memcpy(&b1, b + k * ldb + j0 + L, sizeof b1);                                          \
                        for (int r = 0; r < TILE_ROWS; r++) {                                                  \
                            const E ar = A_AT(i0 + r, k);                                                      \
                            acc[r][0] += ar * b0;                                                              \
                            acc[r][1] += ar * b1;                                                              \
                        }                                                                                      \
                    }                                                                                          \
                    for (int r = 0; r < TILE_ROWS; r++) {                                                     \
                        memcpy(c + (i0 + r) * ldc + j0, &acc[r][0], sizeof acc[r][0]);                         \
                        memcpy(c + (i0 + r) * ldc + j0 + L, &acc[r][1], sizeof acc[r][1]);                     \
                    }                                                                                          \
                } else {                                                                                       \
                    for (int r = 0; r < rows; r++)                                                             \
                        for (int64_t x = 0; x < cols; x++) {                                                   \
                            E sum = 0;                                                                         \
                            for (int64_t k = k0; k < k1; k++) sum += A_AT(i0 + r, k) * b[k * ldb + j0 + x];    \
                            c[(i0 + r) * ldc + j0 + x] = sum;                                                  \
                        }                                                                                      \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }
#define A_STORED(i, k) a[(i) * lda + (k)]
#define A_TRANSPOSED(i, k) a[(k) * lda + (i)]

/* t[c][r] = m[r][c] for an R×C m with rows ld elements apart */
#define TRANSPOSE(ISA, ATTR, E)                                                                                \
    ATTR static void transpose_##E##_##ISA(int64_t R, int64_t C, const E *m, int64_t ld, E *t)                \
    {                                                                                                          \
        for (int64_t r = 0; r < R; r++)                                                                        \
            for (int64_t c = 0; c < C; c++) t[c * R + r] = m[r * ld + c];                                      \
    }

/* one head's operands: q,k [T,D], v [T,E], their gradients and g [T,E], out [T,E] by row stride
 * (elements; every row contiguous); P [T,T] contiguous; scratch for kᵀ or vᵀ, and dS [T,T] */
typedef struct {
    const void *q, *k, *v, *g;
    void *out, *p, *dq, *dk, *dv;
    int64_t rq, rk, rv, rg, ro, rdq, rdk, rdv;
} head;

typedef struct {
    int64_t T, D, dim_v;   /* dim_v: v's width E */
    double scale;
    bool causal;
} head_shape;

#define HEAD_KERNELS(ISA, ATTR, E)                                                                             \
    TILE_GEMM(ISA, ATTR, E, tile_gemm, A_STORED)                                                               \
    TILE_GEMM(ISA, ATTR, E, tile_gemm_at, A_TRANSPOSED)                                                        \
    TRANSPOSE(ISA, ATTR, E)                                                                                    \
    ATTR static void head_forward_##E##_##ISA(const head *h, const head_shape *s, E *scratch)                  \
    {                                                                                                          \
        const int64_t T = s->T;                                                                                \
        transpose_##E##_##ISA(T, s->D, h->k, h->rk, scratch);   /* kᵀ [D,T] */                                 \
        tile_gemm_##E##_##ISA(T, T, s->D, h->q, h->rq, scratch, T, h->p, T, s->causal ? COLS_TO_ROW : ALL);    \
        softmax_rows_##E##_##ISA(h->p, 0, T, T, (E)s->scale, s->causal);                                       \
        tile_gemm_##E##_##ISA(T, s->dim_v, T, h->p, T, h->v, h->rv, h->out, h->ro, s->causal ? K_TO_ROW : ALL);    \
    }                                                                                                          \
    ATTR static void head_backward_##E##_##ISA(const head *h, const head_shape *s, E *scratch)                 \
    {                                                                                                          \
        const int64_t T = s->T, D = s->D;                                                                      \
        E *ds = scratch + (D > s->dim_v ? D : s->dim_v) * T;                                                   \
        if (h->dv) tile_gemm_at_##E##_##ISA(T, s->dim_v, T, h->p, T, h->g, h->rg, h->dv, h->rdv, s->causal ? K_FROM_ROW : ALL); \
        if (!h->dq && !h->dk) return;                                                                          \
        transpose_##E##_##ISA(T, s->dim_v, h->v, h->rv, scratch);   /* vᵀ [E,T] */                             \
        tile_gemm_##E##_##ISA(T, T, s->dim_v, h->g, h->rg, scratch, T, ds, T, s->causal ? COLS_TO_ROW : ALL);  \
        softmax_grad_rows_##E##_##ISA(ds, h->p, 0, T, T, (E)s->scale, s->causal);                              \
        if (h->dq) tile_gemm_##E##_##ISA(T, D, T, ds, T, h->k, h->rk, h->dq, h->rdq, s->causal ? K_TO_ROW : ALL); \
        if (h->dk) tile_gemm_at_##E##_##ISA(T, D, T, ds, T, h->q, h->rq, h->dk, h->rdk, s->causal ? K_FROM_ROW : ALL); \
    }
NB_FOR_ISA(HEAD_KERNELS, float)
NB_FOR_ISA(HEAD_KERNELS, double)
NB_ISA_FUNCTIONS(head_forward_float);
NB_ISA_FUNCTIONS(head_forward_double);
NB_ISA_FUNCTIONS(head_backward_float);
NB_ISA_FUNCTIONS(head_backward_double);

typedef enum { FORWARD, BACKWARD } pass;

/* the row kernel of `which` over all rows of s ([rows,T], contiguous), shared among the threads */
static void run_rows(pass which, nb_tensor *s, const nb_tensor *p, int64_t T, double scale, bool causal)
{
    const int64_t rows = T ? nb_numel(s) / T : 0;
    const int threads = rows * T >= 65536 ? nb_parallel_threads() : 1;
    const bool f32 = s->dtype == NB_F32;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int64_t team = nb_team_size(), me = nb_thread_index();
        const int64_t first = rows * me / team, n = rows * (me + 1) / team - first;
        if (which == FORWARD && f32) NB_ISA_PICK(softmax_rows_float)(s->data, first, n, T, (float)scale, causal);
        else if (which == FORWARD) NB_ISA_PICK(softmax_rows_double)(s->data, first, n, T, scale, causal);
        else if (f32) NB_ISA_PICK(softmax_grad_rows_float)(s->data, p->data, first, n, T, (float)scale, causal);
        else NB_ISA_PICK(softmax_grad_rows_double)(s->data, p->data, first, n, T, scale, causal);
    }
}

/* element offset of batch index i (row-major over the leading axes) in t */
static int64_t lead_offset(const nb_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 3; d >= 0; d--) {
        off += i % t->shape[d] * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}

/* the tiles run at the AVX-512 level on operands whose rows are contiguous (NULLs are skipped) */
static bool tiles_apply(int n, nb_tensor *const *ts)
{
    if (nb_isa_current() != NB_ISA_AVX512) return false;
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->shape[ts[i]->ndim - 1] > 1 && ts[i]->stride[ts[i]->ndim - 1] != 1) return false;
    return true;
}

/* every head's forward (out and P from q, k, v) or backward (dq, dk, dv from g and P; NULL ones are
 * skipped) in tiles, the heads shared among the threads; 0 or -1 */
static int run_heads(pass which, nb_tensor *q, nb_tensor *k, nb_tensor *v, nb_tensor *p, nb_tensor *out, nb_tensor *g,
                     nb_tensor *dq, nb_tensor *dk, nb_tensor *dv, double scale, bool causal)
{
    const int nd = q->ndim;
    const int64_t T = q->shape[nd - 2], D = q->shape[nd - 1], E = v->shape[nd - 1], heads = nb_shape_numel(nd - 2, q->shape);
    const size_t es = nb_dtype_size(q->dtype);
    const size_t per_thread = ((size_t)((D > E ? D : E) * T + T * T) * es + 63) / 64 * 64;   /* kᵀ or vᵀ, dS */
    const int threads = heads > 1 && heads * T * T * (D + E) >= 65536 ? nb_parallel_threads() : 1;
    char *scratch = nb_scope_alloc(per_thread * (size_t)threads);
    if (!scratch) return -1;
    const head_shape shape = { T, D, E, scale, causal };
    const bool f32 = q->dtype == NB_F32;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t i = 0; i < heads; i++) {
        char *at[9] = { NULL };
        nb_tensor *const ts[9] = { q, k, v, g, out, dq, dk, dv, NULL };
        for (int t = 0; t < 8; t++)
            if (ts[t]) at[t] = (char *)ts[t]->data + lead_offset(ts[t], i) * (int64_t)es;
        const int64_t row = nd - 2;
        head h = { at[0], at[1], at[2], at[3], at[4], (char *)p->data + (size_t)(i * T * T) * es, at[5], at[6], at[7],
                   q->stride[row], k->stride[row], v->stride[row], g ? g->stride[row] : 0, out ? out->stride[row] : 0,
                   dq ? dq->stride[row] : 0, dk ? dk->stride[row] : 0, dv ? dv->stride[row] : 0 };
        void *mine = scratch + per_thread * (size_t)nb_thread_index();
        if (which == FORWARD && f32) NB_ISA_PICK(head_forward_float)(&h, &shape, mine);
        else if (which == FORWARD) NB_ISA_PICK(head_forward_double)(&h, &shape, mine);
        else if (f32) NB_ISA_PICK(head_backward_float)(&h, &shape, mine);
        else NB_ISA_PICK(head_backward_double)(&h, &shape, mine);
    }
    return 0;
}

/* a new tensor of a's shape with b's last axis, laid out in like's axis order by stride (the last axis
 * innermost), or row-major when like is NULL */
static nb_tensor *new_product(const char *op, const nb_tensor *a, const nb_tensor *b, const nb_tensor *like)
{
    int nd = a->ndim, order[NB_MAX_DIMS];
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
    shape[nd - 1] = b->shape[b->ndim - 1];
    for (int i = 0; i < nd; i++) order[i] = i;
    for (int i = 1; like && i < nd - 1; i++)   /* insertion sort of the leading axes, larger strides first */
        for (int j = i; j > 0 && like->stride[order[j]] > like->stride[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return nb_new_permuted(op, a->dtype, nd, shape, order);
}

/* out = a·b by BLIS (0 when the inner axis is empty); out, or NULL on failure */
static nb_tensor *product_into(nb_tensor *out, nb_tensor *a, nb_tensor *b)
{
    if (!out) return NULL;
    if (a->shape[a->ndim - 1] == 0) return nb_fill(out, 0) == 0 ? out : NULL;
    return nb_numel(out) == 0 || nb_batched_gemm(out, a, b, 0) == 0 ? out : NULL;
}

/* P ([..,T,T], row-major) and out = P·v into `out`; P or NULL */
static nb_tensor *attend(const char *op, nb_tensor *q, nb_tensor *k, nb_tensor *v, bool causal, double scale,
                         nb_tensor *out)
{
    nb_tensor *kt = nb_transpose(k, -1, -2);
    if (tiles_apply(4, (nb_tensor *[]){ q, k, v, out })) {
        nb_tensor *p = new_product(op, q, kt, NULL);
        return p && out && run_heads(FORWARD, q, k, v, p, out, NULL, NULL, NULL, NULL, scale, causal) == 0 ? p : NULL;
    }
    nb_tensor *p = product_into(new_product(op, q, kt, NULL), q, kt);   /* S, then P in place */
    if (!p) return NULL;
    run_rows(FORWARD, p, NULL, q->shape[q->ndim - 2], scale, causal);
    return product_into(out, p, v) ? p : NULL;
}

/* the gradients into dq, dk, dv (each NULL when not wanted) from g and the forward's P; 0 or -1 */
static int attend_backward(const char *op, nb_tensor *q, nb_tensor *k, nb_tensor *v, nb_tensor *p, nb_tensor *g,
                           bool causal, double scale, nb_tensor *dq, nb_tensor *dk, nb_tensor *dv)
{
    if (tiles_apply(7, (nb_tensor *[]){ q, k, v, g, dq, dk, dv }))
        return run_heads(BACKWARD, q, k, v, p, NULL, g, dq, dk, dv, scale, causal);
    if (dv && !product_into(dv, nb_transpose(p, -1, -2), g)) return -1;
    if (!dq && !dk) return 0;
    nb_tensor *vt = nb_transpose(v, -1, -2);
    nb_tensor *ds = product_into(new_product(op, g, vt, NULL), g, vt);   /* dP, then dS in place */
    if (!ds) return -1;
    run_rows(BACKWARD, ds, p, q->shape[q->ndim - 2], scale, causal);
    if (dq && !product_into(dq, ds, k)) return -1;
    if (dk && !product_into(dk, nb_transpose(ds, -1, -2), q)) return -1;
    return 0;
}

static int attention_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op attention_op = { .name = "nb_attention_fused", .backward = attention_backward };
static int heads_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op heads_op = { .name = "nb_attention_heads_fused", .backward = heads_backward };
/* the gradients when recorded under create_graph: no rule, once-differentiable */
static const nb_op attention_backward_op = { .name = "nb_attention_fused_backward", .backward = NULL };
static const nb_op heads_backward_op = { .name = "nb_attention_heads_fused_backward", .backward = NULL };

static int attention_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    static const char op[] = "nb_attention_fused_backward";
    nb_tensor *q = node->in[0], *k = node->in[1], *v = node->in[2], *grads[3] = { NULL, NULL, NULL };
    const bool was = nb_set_grad_enabled(false);
    int rc = 0;
    for (int i = 0; i < 3; i++)   /* each gradient in its input's layout */
        if (nb_needs_grad(node, i) && !(grads[i] = new_product(op, node->in[i], node->in[i], node->in[i]))) rc = -1;
    if (rc == 0) rc = attend_backward(op, q, k, v, node->saved, g, node->iarg[0], node->darg[0], grads[0], grads[1], grads[2]);
    nb_set_grad_enabled(was);
    nb_tensor *deps[4] = { q, k, v, g };   /* what the kernel read; recorded only under create_graph */
    for (int i = 0; rc == 0 && i < 3; i++)
        if (grads[i]) {
            nb_record(&attention_backward_op, grads[i], 4, deps);
            gin[i] = grads[i];
        }
    return rc;
}

/* q, k, v of one float dtype: q and k [..,T,D], v [..,T,E] with q's leading axes; or false */
static bool check_qkv(const char *op, const nb_tensor *q, const nb_tensor *k, const nb_tensor *v)
{
    if (!nb_check_float(op, q) || !nb_check_same_dtype(op, q, k) || !nb_check_same_dtype(op, q, v)) return false;
    bool fit = q->ndim >= 2 && nb_same_shape(k, q->ndim, q->shape) && v->ndim == q->ndim;
    for (int i = 0; fit && i < q->ndim - 1; i++) fit = v->shape[i] == q->shape[i];
    if (!fit)
        nb_error("%s: q %s, k %s and v %s: expected q and k [..,T,D] and v [..,T,E] with the same leading axes", op,
                 nb_shp(q), nb_shp(k), nb_shp(v));
    return fit;
}

static double scale_of(int64_t D) { return D ? 1 / sqrt((double)D) : 1; }

nb_tensor *nb_attention_fused(nb_tensor *q, nb_tensor *k, nb_tensor *v, bool causal)
{
    static const char op[] = "nb_attention_fused";
    if (!q || !k || !v) return nb_null_input(op);
    if (!check_qkv(op, q, k, v)) return NULL;
    const double scale = scale_of(q->shape[q->ndim - 1]);
    const bool was = nb_set_grad_enabled(false);
    nb_tensor *out = new_product(op, q, v, q), *p = attend(op, q, k, v, causal, scale, out);
    nb_set_grad_enabled(was);
    if (!p) return NULL;
    nb_tensor *in[3] = { q, k, v };
    nb_node *n = nb_record(&attention_op, out, 3, in);
    if (n) {
        n->saved = p;
        n->darg[0] = scale;
        n->iarg[0] = causal;
    }
    return out;
}

/* ---- heads cut from one [B,T,3C] projection ---- */

/* the [B,H,T,C/H] views of q, k and v (the thirds of qkv's last axis) and of y [B,T,C] (NULL: skipped) */
static void head_views(nb_tensor *qkv, nb_tensor *y, int64_t H, nb_tensor **heads, nb_tensor **y_heads)
{
    const int64_t B = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3, D = C / H;
    const int64_t es = (int64_t)nb_dtype_size(qkv->dtype);
    for (int i = 0; i < 3; i++)
        heads[i] = nb_view(qkv, 4, (int64_t[]){ B, H, T, D }, (int64_t[]){ T * 3 * C, D, 3 * C, 1 },
                           (char *)qkv->data + i * C * es);
    if (y) *y_heads = nb_view(y, 4, (int64_t[]){ B, H, T, D }, (int64_t[]){ T * C, D, C, 1 }, y->data);
}

static int heads_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    static const char op[] = "nb_attention_heads_fused_backward";
    nb_tensor *heads[3], *dheads[3], *g_heads;
    const bool was = nb_set_grad_enabled(false);
    nb_tensor *qkv = nb_contiguous(node->in[0]), *dqkv = nb_new(op, qkv->dtype, 3, qkv->shape), *gc = nb_contiguous(g);
    int rc = -1;
    if (qkv && dqkv && gc) {
        head_views(qkv, gc, node->iarg[1], heads, &g_heads);
        head_views(dqkv, NULL, node->iarg[1], dheads, NULL);
        rc = attend_backward(op, heads[0], heads[1], heads[2], node->saved, g_heads, node->iarg[0], node->darg[0],
                             dheads[0], dheads[1], dheads[2]);
    }
    nb_set_grad_enabled(was);
    if (rc != 0) return -1;
    nb_tensor *deps[2] = { node->in[0], g };   /* what the kernel read; recorded only under create_graph */
    nb_record(&heads_backward_op, dqkv, 2, deps);
    gin[0] = dqkv;
    return 0;
}

nb_tensor *nb_attention_heads_fused(nb_tensor *qkv, int64_t n_head, bool causal)
{
    static const char op[] = "nb_attention_heads_fused";
    if (!qkv) return nb_null_input(op);
    if (!nb_check_float(op, qkv)) return NULL;
    if (qkv->ndim != 3 || qkv->shape[2] % 3 != 0 || n_head < 1 || (qkv->shape[2] / 3) % n_head != 0) {
        nb_error("%s: qkv %s and %lld heads: expected [B,T,3C] with C a multiple of the heads", op, nb_shp(qkv),
                 (long long)n_head);
        return NULL;
    }
    const bool was = nb_set_grad_enabled(false);
    nb_tensor *x = nb_contiguous(qkv);
    nb_tensor *y = nb_new(op, qkv->dtype, 3, (int64_t[]){ qkv->shape[0], qkv->shape[1], qkv->shape[2] / 3 });
    nb_tensor *heads[3], *y_heads, *p = NULL;
    const double scale = scale_of(qkv->shape[2] / 3 / n_head);
    if (x && y) {
        head_views(x, y, n_head, heads, &y_heads);
        p = attend(op, heads[0], heads[1], heads[2], causal, scale, y_heads);
    }
    nb_set_grad_enabled(was);
    if (!p) return NULL;
    nb_node *n = nb_record(&heads_op, y, 1, &qkv);
    if (n) {
        n->saved = p;
        n->darg[0] = scale;
        n->iarg[0] = causal;
        n->iarg[1] = n_head;
    }
    return y;
}
