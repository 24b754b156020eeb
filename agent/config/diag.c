/* Diagnostics list and formatting (see diag.h). */
#include "config/diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cfg_diags_init(struct cfg_diags *d)
{
    memset(d, 0, sizeof(*d));
    arena_init(&d->arena, 0);
}

void cfg_diags_fini(struct cfg_diags *d)
{
    free(d->v);
    arena_free(&d->arena);
    memset(d, 0, sizeof(*d));
}

const char *cfg_level_name(enum cfg_level l)
{
    switch (l) {
    case CFG_ERROR:
        return "Error";
    case CFG_WARNING:
        return "Warning";
    case CFG_INFO:
        return "Info";
    }
    return "?";
}

static const char *keep(struct cfg_diags *d, const char *s)
{
    return s ? arena_strdup(&d->arena, s) : NULL;
}

void cfg_diag_vadd(struct cfg_diags *d, enum cfg_level level, const char *code, const char *kind,
                   const char *ns, const char *name, const struct cfg_pos *pos, const char *fmt,
                   va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    cfg_diag_push(d, level, code, kind, ns, name, pos, msg);
}

void cfg_diag_push(struct cfg_diags *d, enum cfg_level level, const char *code, const char *kind,
                   const char *ns, const char *name, const struct cfg_pos *pos, const char *message)
{
    d->counts[level]++;
    if (d->n >= CFG_DIAGS_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct cfg_diag *v = realloc(d->v, cap * sizeof(*v));
        if (!v) {
            d->dropped++;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    struct cfg_diag *g = &d->v[d->n++];
    *g = (struct cfg_diag){
        .level = level,
        .code = code,
        .kind = kind,
        .ns = keep(d, ns),
        .name = keep(d, name),
        .message = keep(d, message),
    };
    if (pos && pos->file)
        g->pos = (struct cfg_pos){keep(d, pos->file), pos->line, pos->col};
}

void cfg_diag_add(struct cfg_diags *d, enum cfg_level level, const char *code,
                  const struct cfg_meta *meta, const struct cfg_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(d, level, code, meta ? cfg_kind_name(meta->kind) : NULL, meta ? meta->ns : NULL,
                  meta ? meta->name : NULL,
                  pos    ? pos
                  : meta ? &meta->pos
                         : NULL,
                  fmt, ap);
    va_end(ap);
}

static int strcmp_null(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

static int cmp_diag(const void *x, const void *y)
{
    const struct cfg_diag *a = x, *b = y;
    int c = strcmp_null(a->pos.file, b->pos.file);
    if (c)
        return c;
    if (a->pos.line != b->pos.line)
        return a->pos.line < b->pos.line ? -1 : 1;
    if (a->pos.col != b->pos.col)
        return a->pos.col < b->pos.col ? -1 : 1;
    c = strcmp_null(a->code, b->code);
    return c ? c : strcmp_null(a->message, b->message);
}

void cfg_diags_sort(struct cfg_diags *d)
{
    if (d->n > 1)
        qsort(d->v, d->n, sizeof(*d->v), cmp_diag);
}

void cfg_diag_format(const struct cfg_diag *g, char *buf, size_t len)
{
    char where[512] = "";
    if (g->kind && g->name) {
        if (g->ns && *g->ns)
            snprintf(where, sizeof(where), "%s %s/%s", g->kind, g->ns, g->name);
        else
            snprintf(where, sizeof(where), "%s %s", g->kind, g->name);
    }
    if (g->pos.file) {
        size_t n = strlen(where);
        snprintf(where + n, sizeof(where) - n, "%s%s:%u:%u", n ? " " : "", g->pos.file, g->pos.line,
                 g->pos.col);
    }
    snprintf(buf, len, "%s [%s] (%s) %s", cfg_level_name(g->level), g->code, where, g->message);
}
