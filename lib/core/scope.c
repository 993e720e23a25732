/* Scopes: per-thread arenas that hold one step's tensors and graph nodes.
 * Memory is a chain of blocks; reset rewinds to the first block and keeps them all, so a loop that
 * repeats the same ops allocates nothing from malloc after its first step. */
#include "../internal.h"

#include <stdlib.h>

#define ALIGN 64
#define MIN_BLOCK ((size_t)1 << 20)

typedef struct block {
    struct block *next;
    size_t size, used;
    char *data;
} block;

#define FREED_MAX 256            /* released chunks remembered for reuse until the next reset */
#define REUSE_MIN ((size_t)1 << 16)   /* only large requests look at them */

struct nb_scope {
    block *first, *cur;
    size_t reserved, used;
    nb_scope *below;            /* the scope under this one on the thread's stack */
    bool pushed;
    int n_freed;
    struct { char *p; size_t n; } freed[FREED_MAX];
};

static _Thread_local nb_scope *stack_top;
static _Thread_local nb_scope *default_scope;
static _Thread_local void *scratch[NB_SCRATCH_SLOTS];
static _Thread_local size_t scratch_size[NB_SCRATCH_SLOTS];

nb_scope *nb_scope_new(void)
{
    nb_scope *s = calloc(1, sizeof *s);
    if (!s) nb_error("nb_scope_new: out of memory");
    return s;
}

void nb_scope_push(nb_scope *s)
{
    if (!s || s->pushed) return;
    s->below = stack_top;
    s->pushed = true;
    stack_top = s;
}

void nb_scope_pop(void)
{
    if (!stack_top) return;
    nb_scope *s = stack_top;
    stack_top = s->below;
    s->below = NULL;
    s->pushed = false;
}

nb_scope *nb_scope_current(void)
{
    if (stack_top) return stack_top;
    if (!default_scope) default_scope = nb_scope_new();
    return default_scope;
}

void nb_scope_reset(nb_scope *s)
{
    if (!s) s = nb_scope_current();
    if (!s) return;
    for (block *b = s->first; b; b = b->next) b->used = 0;
    s->cur = s->first;
    s->used = 0;
    s->n_freed = 0;
}

nb_scope_mark nb_scope_mark_now(void)
{
    nb_scope *s = nb_scope_current();
    return (nb_scope_mark){ s ? s->cur : NULL, s && s->cur ? s->cur->used : 0 };
}

bool nb_scope_since(nb_scope_mark m, const void *p)
{
    nb_scope *s = nb_scope_current();
    if (!s) return false;
    bool after = m.block == NULL;   /* no block at the mark: everything in the scope came later */
    for (block *b = s->first; b; b = b->next) {
        const char *lo = b->data, *hi = b->data + b->used, *q = p;
        if (b == m.block) {
            if (q >= lo && q < hi) return q >= lo + m.used;
            after = true;
        } else if (q >= lo && q < hi) {
            return after;
        }
    }
    return false;
}

void nb_scope_release(void *p, size_t bytes)
{
    nb_scope *s = nb_scope_current();
    size_t n = bytes / ALIGN * ALIGN;   /* whole alignment units only: p is aligned, its tail may not be */
    if (!s || n < REUSE_MIN || s->n_freed == FREED_MAX) return;
    s->freed[s->n_freed].p = p;
    s->freed[s->n_freed].n = n;
    s->n_freed++;
}

/* the smallest released chunk that holds n bytes, cut to size (the rest stays released), or NULL */
static void *reuse(nb_scope *s, size_t n)
{
    int best = -1;
    for (int i = 0; i < s->n_freed; i++)
        if (s->freed[i].n >= n && (best < 0 || s->freed[i].n < s->freed[best].n)) best = i;
    if (best < 0) return NULL;
    char *p = s->freed[best].p;
    if (s->freed[best].n - n >= REUSE_MIN) {
        s->freed[best].p += n;
        s->freed[best].n -= n;
    } else {
        s->freed[best] = s->freed[--s->n_freed];
    }
    return p;
}

void nb_scope_free(nb_scope *s)
{
    if (!s || s->pushed) return;
    for (block *b = s->first, *next; b; b = next) {
        next = b->next;
        free(b->data);
        free(b);
    }
    if (s == default_scope) default_scope = NULL;
    free(s);
}

size_t nb_scope_reserved(const nb_scope *s)
{
    if (!s) s = nb_scope_current();
    return s ? s->reserved : 0;
}

size_t nb_scope_used(const nb_scope *s)
{
    if (!s) s = nb_scope_current();
    return s ? s->used : 0;
}

void nb_cleanup(void)
{
    nb_scope_free(default_scope);
    default_scope = NULL;
    for (int i = 0; i < NB_SCRATCH_SLOTS; i++) {
        free(scratch[i]);
        scratch[i] = NULL;
        scratch_size[i] = 0;
    }
}

static block *block_new(size_t size)
{
    block *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    size = (size + ALIGN - 1) / ALIGN * ALIGN;   /* aligned_alloc wants a multiple of the alignment (C11) */
    b->data = aligned_alloc(ALIGN, size);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->size = size;
    return b;
}

void *nb_scope_alloc(size_t bytes) { return nb_scope_alloc_in(nb_scope_current(), bytes); }

void *nb_scope_alloc_in(nb_scope *s, size_t bytes)
{
    if (!s) return NULL;
    size_t n = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (n == 0) n = ALIGN;
    if (n >= REUSE_MIN && s->n_freed > 0) {
        void *p = reuse(s, n);
        if (p) return p;
    }
    /* blocks after cur are empty until the next reset; take the first one with room */
    block *b = s->cur;
    while (b && b->size - b->used < n) b = b->next;
    if (!b) {
        size_t size = s->reserved / 2 > MIN_BLOCK ? s->reserved / 2 : MIN_BLOCK;
        if (size < n) size = n;
        b = block_new(size);
        if (!b) {
            nb_error("out of memory allocating %zu bytes in a scope", bytes);
            return NULL;
        }
        s->reserved += size;
        /* append after the last block so existing blocks keep their order */
        block **tail = &s->first;
        while (*tail) tail = &(*tail)->next;
        *tail = b;
    }
    s->cur = b;
    void *p = b->data + b->used;
    b->used += n;
    s->used += n;
    return p;
}

void *nb_scratch(int slot, size_t bytes)
{
    if (bytes <= scratch_size[slot]) return scratch[slot];
    size_t size = bytes > 2 * scratch_size[slot] ? bytes : 2 * scratch_size[slot];
    void *p = realloc(scratch[slot], size);
    if (!p) {
        nb_error("out of memory allocating %zu bytes of scratch", bytes);
        return NULL;
    }
    scratch[slot] = p;
    scratch_size[slot] = size;
    return p;
}
