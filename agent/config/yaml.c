/* Event-driven composition of bounded YAML documents (see yaml.h). */
#include "config/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One collection under construction: its children gathered in a heap
 * vector, copied into the arena when the collection ends. */
struct frame {
    struct ynode *node;
    char *anchor; /* heap copy; registered when the node completes */
    const struct ynode **items;
    size_t n, cap;
};

struct anchor {
    char *name; /* heap */
    const struct ynode *node;
};

struct compose {
    struct yreader *r;
    struct arena *a;
    struct frame *stack;
    unsigned depth;
    struct anchor *anchors;
    unsigned nanchors;
    size_t nodes;
    size_t doc_start;
    const struct ynode *root;
};

static int fail(struct yreader *r, const yaml_mark_t *m, const char *fmt, const char *arg)
{
    snprintf(r->err, sizeof(r->err), fmt, arg);
    r->err_line = (uint32_t)m->line + 1;
    r->err_col = (uint32_t)m->column + 1;
    return -1;
}

static struct ynode *new_node(struct compose *c, enum ynode_type type, const yaml_mark_t *m)
{
    if (++c->nodes > c->r->lim.max_nodes) {
        fail(c->r, m, "document has more than %s nodes", "the allowed number of");
        return NULL;
    }
    struct ynode *n = arena_alloc(c->a, sizeof(*n));
    if (!n) {
        fail(c->r, m, "%s", "out of memory for the document");
        return NULL;
    }
    n->type = type;
    n->line = (uint32_t)m->line + 1;
    n->col = (uint32_t)m->column + 1;
    return n;
}

static int register_anchor(struct compose *c, char *name, const struct ynode *n,
                           const yaml_mark_t *m)
{
    if (!name)
        return 0;
    /* A redefined anchor shadows the earlier one, as YAML specifies. */
    for (unsigned i = 0; i < c->nanchors; i++) {
        if (strcmp(c->anchors[i].name, name) == 0) {
            free(c->anchors[i].name);
            c->anchors[i] = (struct anchor){name, n};
            return 0;
        }
    }
    if (c->nanchors >= c->r->lim.max_anchors) {
        free(name);
        return fail(c->r, m, "too many anchors (more than %s)", "the limit");
    }
    struct anchor *v = realloc(c->anchors, (c->nanchors + 1) * sizeof(*v));
    if (!v) {
        free(name);
        return fail(c->r, m, "%s", "out of memory");
    }
    c->anchors = v;
    c->anchors[c->nanchors++] = (struct anchor){name, n};
    return 0;
}

static char *dup_anchor(const yaml_char_t *anchor)
{
    return anchor ? strdup((const char *)anchor) : NULL;
}

/* Appends a finished node to the open collection, or makes it the root. */
static int add_child(struct compose *c, const struct ynode *n, const yaml_mark_t *m)
{
    if (c->depth == 0) {
        c->root = n;
        return 0;
    }
    struct frame *f = &c->stack[c->depth - 1];
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const struct ynode **v = realloc(f->items, cap * sizeof(*v));
        if (!v)
            return fail(c->r, m, "%s", "out of memory");
        f->items = v;
        f->cap = cap;
    }
    f->items[f->n++] = n;
    return 0;
}

static bool key_seen(const struct ypair *pairs, size_t n, const struct ynode *key)
{
    for (size_t i = 0; i < n; i++)
        if (key->type == YNODE_SCALAR && pairs[i].key->type == YNODE_SCALAR &&
            strcmp(pairs[i].key->scalar.s, key->scalar.s) == 0)
            return true;
    return false;
}

/* Merge key: the pairs of `src` (a mapping, or a sequence of mappings) not
 * already present are appended after the explicit ones. */
static size_t merge_count(const struct ynode *src)
{
    if (src->type == YNODE_MAP)
        return src->map.n;
    size_t total = 0;
    if (src->type == YNODE_SEQ)
        for (size_t i = 0; i < src->seq.n; i++)
            if (src->seq.v[i]->type == YNODE_MAP)
                total += src->seq.v[i]->map.n;
    return total;
}

static void merge_from(struct ypair *pairs, size_t *n, const struct ynode *src)
{
    if (src->type == YNODE_MAP) {
        for (size_t i = 0; i < src->map.n; i++)
            if (!key_seen(pairs, *n, src->map.v[i].key))
                pairs[(*n)++] = src->map.v[i];
    } else if (src->type == YNODE_SEQ) {
        for (size_t i = 0; i < src->seq.n; i++)
            if (src->seq.v[i]->type == YNODE_MAP)
                merge_from(pairs, n, src->seq.v[i]);
    }
}

static int cmp_key(const void *x, const void *y)
{
    const struct ynode *a = *(const struct ynode *const *)x, *b = *(const struct ynode *const *)y;
    if (a->type != YNODE_SCALAR || b->type != YNODE_SCALAR)
        return (int)a->type - (int)b->type;
    return strcmp(a->scalar.s, b->scalar.s);
}

/* Duplicate keys are an error (Kubernetes rejects them too). Sorted, so a
 * mapping with many keys costs O(n log n), not O(n^2). */
static int check_duplicates(struct compose *c, const struct frame *f, const yaml_mark_t *m)
{
    size_t nkeys = f->n / 2;
    if (nkeys < 2)
        return 0;
    const struct ynode **keys = malloc(nkeys * sizeof(*keys));
    if (!keys)
        return fail(c->r, m, "%s", "out of memory");
    for (size_t i = 0; i < nkeys; i++)
        keys[i] = f->items[2 * i];
    qsort(keys, nkeys, sizeof(*keys), cmp_key);
    for (size_t i = 1; i < nkeys; i++) {
        if (keys[i]->type == YNODE_SCALAR && cmp_key(&keys[i - 1], &keys[i]) == 0) {
            const struct ynode *k = keys[i - 1]->line > keys[i]->line ? keys[i - 1] : keys[i];
            c->r->err_line = k->line;
            c->r->err_col = k->col;
            snprintf(c->r->err, sizeof(c->r->err), "duplicate key \"%.100s\"", k->scalar.s);
            free(keys);
            return -1;
        }
    }
    free(keys);
    return 0;
}

#define YMERGE_MAX 1024 /* pairs a mapping may take from merge keys */

static int close_map(struct compose *c, struct frame *f, const yaml_mark_t *m)
{
    if (f->n % 2)
        return fail(c->r, m, "%s", "mapping with a key and no value");
    if (check_duplicates(c, f, m))
        return -1;
    size_t explicit = 0, merged = 0;
    for (size_t i = 0; i < f->n; i += 2) {
        if (yscalar_is(f->items[i], "<<") && f->items[i]->plain)
            merged += merge_count(f->items[i + 1]);
        else
            explicit ++;
    }
    if (merged > YMERGE_MAX)
        return fail(c->r, m, "merge keys bring more than %s pairs", "1024");
    struct ypair *pairs =
        arena_array(c->a, explicit + merged ? explicit + merged : 1, sizeof(*pairs));
    if (!pairs)
        return fail(c->r, m, "%s", "out of memory for the document");
    size_t n = 0;
    for (size_t i = 0; i < f->n; i += 2) {
        if (yscalar_is(f->items[i], "<<") && f->items[i]->plain)
            continue;
        pairs[n++] = (struct ypair){f->items[i], f->items[i + 1]};
    }
    for (size_t i = 0; i < f->n; i += 2)
        if (yscalar_is(f->items[i], "<<") && f->items[i]->plain)
            merge_from(pairs, &n, f->items[i + 1]);
    f->node->map.v = pairs;
    f->node->map.n = n;
    return 0;
}

static int close_seq(struct compose *c, struct frame *f, const yaml_mark_t *m)
{
    const struct ynode **v = arena_array(c->a, f->n ? f->n : 1, sizeof(*v));
    if (!v)
        return fail(c->r, m, "%s", "out of memory for the document");
    if (f->n)
        memcpy(v, f->items, f->n * sizeof(*v));
    f->node->seq.v = v;
    f->node->seq.n = f->n;
    return 0;
}

static int open_collection(struct compose *c, enum ynode_type type, const yaml_event_t *ev)
{
    if (c->depth >= c->r->lim.max_depth)
        return fail(c->r, &ev->start_mark, "nesting deeper than %s levels", "the allowed");
    struct ynode *n = new_node(c, type, &ev->start_mark);
    if (!n)
        return -1;
    const yaml_char_t *anchor =
        type == YNODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    c->stack[c->depth++] = (struct frame){.node = n, .anchor = dup_anchor(anchor)};
    return 0;
}

static int close_collection(struct compose *c, const yaml_event_t *ev)
{
    if (c->depth == 0) /* libyaml balances events; never trust that blindly */
        return fail(c->r, &ev->start_mark, "%s", "unbalanced collection end");
    struct frame *f = &c->stack[c->depth - 1];
    int rc = f->node->type == YNODE_MAP ? close_map(c, f, &ev->end_mark)
                                        : close_seq(c, f, &ev->end_mark);
    free(f->items);
    f->items = NULL;
    char *anchor = f->anchor;
    f->anchor = NULL;
    const struct ynode *n = f->node;
    c->depth--;
    if (rc) {
        free(anchor);
        return rc;
    }
    if (register_anchor(c, anchor, n, &ev->start_mark))
        return -1;
    return add_child(c, n, &ev->end_mark);
}

static int on_scalar(struct compose *c, const yaml_event_t *ev)
{
    struct ynode *n = new_node(c, YNODE_SCALAR, &ev->start_mark);
    if (!n)
        return -1;
    n->scalar.len = ev->data.scalar.length;
    n->scalar.s = arena_strndup(c->a, (const char *)ev->data.scalar.value, ev->data.scalar.length);
    if (!n->scalar.s)
        return fail(c->r, &ev->start_mark, "%s", "out of memory for the document");
    /* A NUL inside a scalar would truncate it silently later: refuse it. */
    if (strlen(n->scalar.s) != n->scalar.len)
        return fail(c->r, &ev->start_mark, "%s", "scalar contains a NUL character");
    n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (register_anchor(c, dup_anchor(ev->data.scalar.anchor), n, &ev->start_mark))
        return -1;
    return add_child(c, n, &ev->start_mark);
}

static int on_alias(struct compose *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (unsigned i = c->nanchors; i-- > 0;)
        if (strcmp(c->anchors[i].name, name) == 0)
            return add_child(c, c->anchors[i].node, &ev->start_mark);
    return fail(c->r, &ev->start_mark,
                "unknown anchor \"%.100s\" (or an alias inside its own anchor)", name);
}

static void compose_fini(struct compose *c)
{
    for (unsigned i = 0; i < c->depth; i++) {
        free(c->stack[i].items);
        free(c->stack[i].anchor);
    }
    free(c->stack);
    for (unsigned i = 0; i < c->nanchors; i++)
        free(c->anchors[i].name);
    free(c->anchors);
}

/* Byte offset of a libyaml mark (0-based line, column in characters). */
static size_t mark_offset(const char *buf, size_t len, const yaml_mark_t *m)
{
    size_t off = 0;
    for (size_t line = 0; line < m->line && off < len; off++)
        line += buf[off] == '\n';
    for (size_t col = 0; off < len && buf[off] != '\n'; off++) {
        if (((unsigned char)buf[off] & 0xc0) == 0x80)
            continue; /* a UTF-8 continuation byte: same character */
        if (col++ == m->column)
            break;
    }
    return off;
}

static bool flow_colon_possible(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == ':' && strchr(",[]{}?", buf[i + 1]) && buf[i + 1])
            return true;
    return false;
}

/* One scan of the token stream: on libyaml's "x:]" refusal, the offsets
 * of the scalar; 1 when found, 0 when the stream scans (or fails) otherwise. */
static int find_flow_colon(const char *buf, size_t len, size_t *start, size_t *colon)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return 0;
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int found = 0;
    for (;;) {
        yaml_token_t t;
        if (!yaml_parser_scan(&p, &t)) {
            found = p.error == YAML_SCANNER_ERROR && p.problem &&
                    strcmp(p.problem, "found unexpected ':'") == 0 && p.context &&
                    strcmp(p.context, "while scanning a plain scalar") == 0;
            if (found) {
                *start = mark_offset(buf, len, &p.context_mark);
                *colon = mark_offset(buf, len, &p.problem_mark);
            }
            break;
        }
        bool end = t.type == YAML_STREAM_END_TOKEN;
        yaml_token_delete(&t);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    return found;
}

/* The copy with the scalar [start, end) single-quoted. */
static char *quote_range(const char *buf, size_t *len, size_t start, size_t end)
{
    size_t quotes = 0;
    for (size_t i = start; i < end; i++)
        quotes += buf[i] == '\'';
    size_t n = *len + 2 + quotes;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    memcpy(out, buf, start);
    o = start;
    out[o++] = '\'';
    for (size_t i = start; i < end; i++) {
        out[o++] = buf[i];
        if (buf[i] == '\'')
            out[o++] = '\'';
    }
    out[o++] = '\'';
    memcpy(out + o, buf + end, *len - end);
    o += *len - end;
    out[o] = '\0';
    *len = o;
    return out;
}

#define YFLOW_FIXES_MAX 1024

/* Quotes each flow scalar libyaml refuses for a ':' before a flow
 * indicator, as go-yaml reads it: the scalar runs to the next ',', '[',
 * ']', '{', '}', ": " or the end of the line. NULL: nothing to change. */
static char *quote_flow_colons(const char *buf, size_t *len)
{
    if (!flow_colon_possible(buf, *len))
        return NULL;
    char *cur = NULL;
    size_t start, colon;
    /* Each fix rescans the input: bound the total work (64 MiB scanned). */
    for (size_t fixes = 0; fixes < YFLOW_FIXES_MAX && fixes * *len <= (64u << 20); fixes++) {
        const char *b = cur ? cur : buf;
        if (!find_flow_colon(b, *len, &start, &colon) || colon <= start || colon >= *len)
            break;
        size_t end = colon;
        while (end < *len && !strchr(",[]{}\n\r", b[end]) &&
               !(b[end] == ':' && end + 1 < *len && (b[end + 1] == ' ' || b[end + 1] == '\t')))
            end++;
        char *next = quote_range(b, len, start, end);
        if (!next)
            break;
        free(cur);
        cur = next;
    }
    return cur;
}

void yreader_init(struct yreader *r, const char *buf, size_t len, const struct ylimits *lim)
{
    memset(r, 0, sizeof(*r));
    r->lim = lim ? *lim : YLIMITS_DEFAULT;
    yaml_parser_initialize(&r->parser);
    r->owned = quote_flow_colons(buf, &len);
    yaml_parser_set_input_string(&r->parser, (const unsigned char *)(r->owned ? r->owned : buf),
                                 len);
}

void yreader_fini(struct yreader *r)
{
    yaml_parser_delete(&r->parser);
    free(r->owned);
    r->owned = NULL;
}

static int parse_error(struct yreader *r)
{
    const yaml_mark_t *m = &r->parser.problem_mark;
    if (r->parser.context)
        snprintf(r->err, sizeof(r->err), "%s %s", r->parser.problem ? r->parser.problem : "error",
                 r->parser.context);
    else
        snprintf(r->err, sizeof(r->err), "%s", r->parser.problem ? r->parser.problem : "error");
    r->err_line = (uint32_t)m->line + 1;
    r->err_col = (uint32_t)m->column + 1;
    return -1;
}

int yreader_next(struct yreader *r, struct arena *a, struct ydoc *out)
{
    if (r->done)
        return 0;
    struct compose c = {.r = r, .a = a};
    c.stack = calloc(r->lim.max_depth ? r->lim.max_depth : 1, sizeof(*c.stack));
    if (!c.stack) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return -1;
    }
    bool in_doc = false;
    int rc = -1;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&r->parser, &ev)) {
            rc = parse_error(r);
            break;
        }
        if (in_doc && ev.end_mark.index - c.doc_start > r->lim.max_doc_bytes) {
            rc = fail(r, &ev.start_mark, "document larger than %s bytes", "the allowed");
            yaml_event_delete(&ev);
            break;
        }
        int step = 0, finished = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            r->done = true;
            finished = 1;
            rc = 0;
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_doc = true;
            c.doc_start = ev.start_mark.index;
            out->line = (uint32_t)ev.start_mark.line + 1;
            out->col = (uint32_t)ev.start_mark.column + 1;
            break;
        case YAML_DOCUMENT_END_EVENT:
            out->root = c.root;
            finished = 1;
            rc = 1;
            break;
        case YAML_SCALAR_EVENT:
            step = on_scalar(&c, &ev);
            break;
        case YAML_ALIAS_EVENT:
            step = on_alias(&c, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            step = open_collection(&c, YNODE_SEQ, &ev);
            break;
        case YAML_MAPPING_START_EVENT:
            step = open_collection(&c, YNODE_MAP, &ev);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            step = close_collection(&c, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (step) {
            rc = -1;
            break;
        }
        if (finished)
            break;
    }
    if (rc < 0)
        r->done = true;
    compose_fini(&c);
    return rc;
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
    if (!map || map->type != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->map.n; i++)
        if (yscalar_is(map->map.v[i].key, key))
            return map->map.v[i].value;
    return NULL;
}

bool yscalar_is(const struct ynode *n, const char *s)
{
    return n && n->type == YNODE_SCALAR && strcmp(n->scalar.s, s) == 0;
}

bool ynode_is_null(const struct ynode *n)
{
    if (!n)
        return true;
    if (n->type != YNODE_SCALAR || !n->plain)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(n->scalar.s, nulls[i]) == 0)
            return true;
    return false;
}

const char *ynode_type_name(const struct ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YNODE_SCALAR:
        return "a scalar";
    case YNODE_SEQ:
        return "a list";
    case YNODE_MAP:
        return "a mapping";
    }
    return "?";
}
