/* A module tree's tensors in and out of a safetensors file, by dotted name (nabla/module.h). */
#include <nabla/module.h>
#include <nabla/safetensors.h>

#include <stdlib.h>
#include <string.h>

#include "../internal.h"

#define MODULE_FORMAT "nabla-module-1"

typedef struct {
    int n, cap;
    char **names;
    nb_tensor **tensors;
} tensor_list;

static int collect(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    tensor_list *l = ctx;
    if (l->n == l->cap) return -1;
    l->names[l->n] = strdup(name);
    l->tensors[l->n++] = t;
    return l->names[l->n - 1] ? 0 : -1;
}

static void list_free(tensor_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->tensors);
}

/* every tensor of m's tree with its dotted name, in walk order */
static int list_of(const char *op, nb_module *m, tensor_list *l)
{
    *l = (tensor_list){ 0 };
    int64_t count = nb_module_count(m, true);
    if (count < 0) return -1;
    l->cap = (int)count;
    l->names = calloc((size_t)count + 1, sizeof *l->names);
    l->tensors = calloc((size_t)count + 1, sizeof *l->tensors);
    if (!l->names || !l->tensors || nb_module_visit(m, collect, l) != 0) {
        list_free(l);
        nb_error("%s: out of memory listing the module's tensors", op);
        return -1;
    }
    return 0;
}

int nb_module_save(nb_module *m, const char *path)
{
    if (!m || !path) {
        nb_error("nb_module_save: NULL %s", m ? "path" : "module");
        return -1;
    }
    tensor_list l;
    if (list_of("nb_module_save", m, &l)) return -1;
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    int rc = w ? 0 : -1;
    rc = rc || nb_safetensors_writer_meta(w, "format", MODULE_FORMAT) || nb_safetensors_writer_meta(w, "kind", m->kind);
    for (int i = 0; rc == 0 && i < l.n; i++) rc = nb_safetensors_writer_add(w, l.names[i], l.tensors[i]);
    if (rc == 0) rc = nb_safetensors_writer_save(w, path);
    nb_safetensors_writer_free(w);
    list_free(&l);
    return rc ? -1 : 0;
}

/* appends "name" (or "name: detail") to a list of at most `shown` names, then counts the rest */
typedef struct {
    char text[1024];
    int count;
} name_list;

static void note(name_list *nl, const char *name, const char *detail)
{
    enum { SHOWN = 6 };
    size_t used = strlen(nl->text);
    if (nl->count < SHOWN && used < sizeof nl->text)
        snprintf(nl->text + used, sizeof nl->text - used, "%s%s%s%s", nl->count ? ", " : "", name, detail ? " " : "",
                 detail ? detail : "");
    else if (nl->count == SHOWN && used < sizeof nl->text)
        snprintf(nl->text + used, sizeof nl->text - used, ", ...");
    nl->count++;
}

static const nb_tensor *find(const nb_safetensors *st, const char *prefix, const char *name)
{
    const size_t plen = strlen(prefix);
    for (int i = 0; i < st->n; i++)
        if (!strncmp(st->names[i], prefix, plen) && !strcmp(st->names[i] + plen, name)) return st->tensors[i];
    return NULL;
}

int nb_module_load(nb_module *m, const char *path, const char *prefix, bool strict, nb_module_load_report *report)
{
    static const char op[] = "nb_module_load";
    if (!m || !path) {
        nb_error("%s: NULL %s", op, m ? "path" : "module");
        return -1;
    }
    if (!prefix) prefix = "";
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) return -1;
    tensor_list l;
    if (list_of(op, m, &l)) {
        nb_safetensors_free(st);
        return -1;
    }
    /* everything is checked before any value changes */
    name_list missing = { 0 }, unexpected = { 0 }, mismatched = { 0 };
    const nb_tensor **source = calloc((size_t)l.n + 1, sizeof *source);
    for (int i = 0; source && i < l.n; i++) {
        const nb_tensor *f = find(st, prefix, l.names[i]), *t = l.tensors[i];
        char detail[160];
        if (!f) {
            note(&missing, l.names[i], NULL);
        } else if (!nb_same_shape(f, t->ndim, t->shape) || f->dtype == NB_I64) {
            snprintf(detail, sizeof detail, "(%s %s in the file, %s %s in the model)", nb_dtype_name(f->dtype), nb_shp(f),
                     nb_dtype_name(t->dtype), nb_shp(t));
            note(&mismatched, l.names[i], detail);
        } else {
            source[i] = f;
        }
    }
    const size_t plen = strlen(prefix);
    for (int j = 0; source && j < st->n; j++) {
        if (strncmp(st->names[j], prefix, plen)) continue;
        bool known = false;
        for (int i = 0; i < l.n && !known; i++) known = !strcmp(st->names[j] + plen, l.names[i]);
        if (!known) note(&unexpected, st->names[j] + plen, NULL);
    }
    int rc = 0;
    if (!source) {
        nb_error("%s: out of memory", op);
        rc = -1;
    } else if (mismatched.count || (strict && (missing.count || unexpected.count))) {
        char what[3200] = "";
        const struct { const name_list *nl; const char *label; } parts[] = {
            { &missing, "missing" }, { &unexpected, "unexpected" }, { &mismatched, "of another shape or dtype" } };
        for (size_t k = 0; k < 3; k++)
            if (parts[k].nl->count)
                snprintf(what + strlen(what), sizeof what - strlen(what), "%s%d %s: %s", what[0] ? "; " : "",
                         parts[k].nl->count, parts[k].label, parts[k].nl->text);
        nb_error("%s: %s does not fit the model (%s%s%s%s): %s", op, path, strict ? "strict" : "not strict",
                 *prefix ? ", names under '" : "", prefix, *prefix ? "'" : "", what);
        rc = -1;
    }
    int loaded = 0;
    for (int i = 0; rc == 0 && i < l.n; i++)
        if (source[i]) {
            if (nb_copy_into(l.tensors[i], source[i])) rc = -1;
            else loaded++;
        }
    if (report) *report = (nb_module_load_report){ loaded, missing.count, unexpected.count };
    free(source);
    list_free(&l);
    nb_safetensors_free(st);
    return rc;
}
