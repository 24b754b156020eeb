/* Decoding helpers shared by the per-kind decoders (see decode.h). */
#include "config/decode.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"

static struct cfg_pos pos_of(const struct cfg_dec *d, const struct ynode *at)
{
    if (at)
        return (struct cfg_pos){d->file, at->line, at->col};
    return d->meta ? d->meta->pos : (struct cfg_pos){d->file, 0, 0};
}

static void report(struct cfg_dec *d, enum cfg_level level, const char *code,
                   const struct ynode *at, const char *fmt, va_list ap)
{
    char msg[400], full[700];
    vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    if (d->pathlen)
        snprintf(full, sizeof(full), "%s: %s", d->path, msg);
    else
        snprintf(full, sizeof(full), "%s", msg);
    struct cfg_pos pos = pos_of(d, at);
    const struct cfg_meta *m = d->meta;
    cfg_diag_push(d->diags, level, code, m ? cfg_kind_name(m->kind) : NULL, m ? m->ns : NULL,
                  m ? m->name : NULL, &pos, full);
}

void dec_error(struct cfg_dec *d, const struct ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, CFG_ERROR, IST_SCHEMA, at, fmt, ap);
    va_end(ap);
    d->failed = true;
}

void dec_warn(struct cfg_dec *d, const struct ynode *at, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, CFG_WARNING, code, at, fmt, ap);
    va_end(ap);
}

size_t dec_push(struct cfg_dec *d, const char *field)
{
    size_t mark = d->pathlen;
    if (!*field)
        return mark;
    int n = snprintf(d->path + d->pathlen, sizeof(d->path) - d->pathlen, "%s%s",
                     d->pathlen ? "." : "", field);
    if (n > 0)
        d->pathlen +=
            (size_t)n < sizeof(d->path) - d->pathlen ? (size_t)n : sizeof(d->path) - d->pathlen - 1;
    return mark;
}

size_t dec_push_index(struct cfg_dec *d, size_t i)
{
    size_t mark = d->pathlen;
    int n = snprintf(d->path + d->pathlen, sizeof(d->path) - d->pathlen, "[%zu]", i);
    if (n > 0)
        d->pathlen +=
            (size_t)n < sizeof(d->path) - d->pathlen ? (size_t)n : sizeof(d->path) - d->pathlen - 1;
    return mark;
}

void dec_pop(struct cfg_dec *d, size_t mark)
{
    d->pathlen = mark;
    d->path[mark] = '\0';
}

static bool spend(struct cfg_dec *d, const struct ynode *at, size_t n)
{
    if (d->budget < n) {
        if (d->budget != 0)
            dec_error(d, at, "document expands to too many nodes (aliases?)");
        d->budget = 0;
        d->failed = true;
        return false;
    }
    d->budget -= n;
    return true;
}

/* "expected X, got Y" at `v`, with the field on the path. */
static bool type_error(struct cfg_dec *d, const struct ynode *v, const char *field,
                       const char *expected)
{
    size_t m = dec_push(d, field);
    dec_error(d, v, "expected %s, got %s", expected, ynode_type_name(v));
    dec_pop(d, m);
    return false;
}

static bool value_error(struct cfg_dec *d, const struct ynode *v, const char *field,
                        const char *what)
{
    size_t m = dec_push(d, field);
    dec_error(d, v, "%s: \"%.80s\"", what, v->type == YNODE_SCALAR ? v->scalar.s : "?");
    dec_pop(d, m);
    return false;
}

bool dec_each(struct cfg_dec *d, const struct ynode *map, size_t *i, const char **key,
              const struct ynode **value)
{
    if (ynode_is_null(map))
        return false;
    if (map->type != YNODE_MAP) {
        if (*i == 0)
            dec_error(d, map, "expected a mapping, got %s", ynode_type_name(map));
        return false;
    }
    while (*i < map->map.n) {
        const struct ypair *p = &map->map.v[(*i)++];
        if (!spend(d, p->key, 1))
            return false;
        if (p->key->type != YNODE_SCALAR) {
            dec_error(d, p->key, "mapping key must be a string, got %s", ynode_type_name(p->key));
            continue;
        }
        *key = p->key->scalar.s;
        *value = p->value;
        return true;
    }
    return false;
}

void dec_unknown(struct cfg_dec *d, const char *key, const struct ynode *value)
{
    size_t m = dec_push(d, key);
    dec_warn(d, value, MSH_UNKNOWN_FIELD, "unknown field (ignored)");
    dec_pop(d, m);
}

void *dec_seq(struct cfg_dec *d, const struct ynode *v, const char *field, size_t elem, size_t *n)
{
    *n = 0;
    if (ynode_is_null(v))
        return NULL;
    if (v->type != YNODE_SEQ) {
        type_error(d, v, field, "a list");
        return NULL;
    }
    if (!spend(d, v, v->seq.n))
        return NULL;
    void *arr = arena_array(d->arena, v->seq.n ? v->seq.n : 1, elem);
    if (!arr) {
        dec_error(d, v, "out of memory");
        return NULL;
    }
    *n = v->seq.n;
    return arr;
}

bool dec_str(struct cfg_dec *d, const struct ynode *v, const char *field, const char **out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "a string");
    /* The node lives in the document's arena: copy into the snapshot's. */
    *out = arena_strndup(d->arena, v->scalar.s, v->scalar.len);
    if (!*out) {
        dec_error(d, v, "out of memory");
        return false;
    }
    return true;
}

bool dec_uint(struct cfg_dec *d, const struct ynode *v, const char *field, uint64_t max,
              uint32_t *out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "an integer");
    /* Quoted digits are accepted: Kubernetes tooling writes ints as strings. */
    const char *s = v->scalar.s;
    if (!*s || !isdigit((unsigned char)s[0]))
        return value_error(d, v, field, "expected a non-negative integer");
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno || x > max) {
        char what[64];
        snprintf(what, sizeof(what), "expected an integer from 0 to %llu", (unsigned long long)max);
        return value_error(d, v, field, what);
    }
    *out = (uint32_t)x;
    return true;
}

bool dec_port(struct cfg_dec *d, const struct ynode *v, const char *field, uint16_t *out)
{
    uint32_t x = 0;
    if (ynode_is_null(v))
        return true;
    if (!dec_uint(d, v, field, 65535, &x))
        return false;
    if (x == 0)
        return value_error(d, v, field, "port must be 1-65535");
    *out = (uint16_t)x;
    return true;
}

bool dec_bool(struct cfg_dec *d, const struct ynode *v, const char *field, bool *out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "true or false");
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v->scalar.s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v->scalar.s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return value_error(d, v, field, "expected true or false");
}

int cfg_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1},
                 {"us", 1000},
                 {"µs", 1000},
                 {"ms", 1000000},
                 {"s", 1000000000ULL},
                 {"m", 60000000000ULL},
                 {"h", 3600000000000ULL}};
    const uint64_t limit = 10ULL * 365 * 24 * 3600000000000ULL;
    uint64_t total = 0;
    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -EINVAL;
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || errno || x < 0 || x > 1e18)
            return -EINVAL;
        s = end;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (!best_len)
            return -EINVAL;
        s += best_len;
        double add = x * (double)units[best].ns;
        if (add > (double)limit || total + (uint64_t)add > limit)
            return -ERANGE;
        total += (uint64_t)add;
    }
    *ns = total;
    return 0;
}

bool dec_duration(struct cfg_dec *d, const struct ynode *v, const char *field, uint64_t *ns)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "a duration");
    uint64_t x;
    if (cfg_parse_duration(v->scalar.s, &x) || x == 0)
        return value_error(d, v, field, "expected a positive duration such as 5s, 100ms or 1m");
    *ns = x;
    return true;
}

bool dec_ip(struct cfg_dec *d, const struct ynode *v, const char *field, struct meshd_addr *out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "an IP address");
    char buf[80];
    const char *s = v->scalar.s;
    if (strchr(s, ':'))
        snprintf(buf, sizeof(buf), "[%.60s]:0", s);
    else
        snprintf(buf, sizeof(buf), "%.60s:0", s);
    struct meshd_addr a;
    if (v->scalar.len > 45 || addr_parse(buf, &a))
        return value_error(d, v, field, "not an IP address");
    a.port = 0;
    *out = a;
    return true;
}

bool dec_ips(struct cfg_dec *d, const struct ynode *v, const char *field, struct cfg_ips *out)
{
    size_t n;
    struct meshd_addr *arr = dec_seq(d, v, field, sizeof(*arr), &n);
    if (!arr)
        return !d->failed;
    size_t mark = dec_push(d, field);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t m = dec_push_index(d, i);
        if (dec_ip(d, v->seq.v[i], "", &arr[k]) && !ynode_is_null(v->seq.v[i]))
            k++;
        dec_pop(d, m);
    }
    dec_pop(d, mark);
    out->v = arr;
    out->n = k;
    return !d->failed;
}

bool dec_enum(struct cfg_dec *d, const struct ynode *v, const char *field, const char *const *names,
              int *out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_SCALAR)
        return type_error(d, v, field, "a string");
    for (int i = 0; names[i]; i++) {
        if (strcmp(v->scalar.s, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    char what[200];
    size_t off = (size_t)snprintf(what, sizeof(what), "expected one of");
    for (int i = 0; names[i] && off < sizeof(what); i++)
        off += (size_t)snprintf(what + off, sizeof(what) - off, "%s%s", i ? "|" : " ", names[i]);
    return value_error(d, v, field, what);
}

bool dec_strs(struct cfg_dec *d, const struct ynode *v, const char *field, struct cfg_strs *out)
{
    size_t n;
    const char **arr = dec_seq(d, v, field, sizeof(*arr), &n);
    if (!arr)
        return !d->failed;
    size_t mark = dec_push(d, field);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t m = dec_push_index(d, i);
        const char *s = NULL;
        if (dec_str(d, v->seq.v[i], "", &s) && s)
            arr[k++] = s;
        dec_pop(d, m);
    }
    dec_pop(d, mark);
    out->v = arr;
    out->n = k;
    return !d->failed;
}

static int cmp_kv(const void *x, const void *y)
{
    return strcmp(((const struct cfg_kv *)x)->key, ((const struct cfg_kv *)y)->key);
}

bool dec_labels(struct cfg_dec *d, const struct ynode *v, const char *field, struct cfg_labels *out)
{
    if (ynode_is_null(v))
        return true;
    if (v->type != YNODE_MAP)
        return type_error(d, v, field, "a mapping of strings");
    struct cfg_kv *kv = arena_array(d->arena, v->map.n ? v->map.n : 1, sizeof(*kv));
    if (!kv) {
        dec_error(d, v, "out of memory");
        return false;
    }
    size_t mark = dec_push(d, field);
    size_t n = 0;
    const char *k;
    const struct ynode *val;
    for (size_t i = 0; dec_each(d, v, &i, &k, &val);) {
        const char *s = "";
        if (!ynode_is_null(val) && !dec_str(d, val, k, &s))
            continue;
        kv[n].key = arena_strdup(d->arena, k);
        kv[n].value = s;
        if (kv[n].key && kv[n].value)
            n++;
    }
    dec_pop(d, mark);
    qsort(kv, n, sizeof(*kv), cmp_kv);
    out->v = kv;
    out->n = n;
    return !d->failed;
}

bool dec_match_labels(struct cfg_dec *d, const struct ynode *v, const char *field,
                      struct cfg_selector *out)
{
    if (ynode_is_null(v))
        return true;
    size_t mark = dec_push(d, field);
    out->set = true;
    const char *k;
    const struct ynode *val;
    for (size_t i = 0; dec_each(d, v, &i, &k, &val);) {
        if (strcmp(k, "matchLabels") == 0)
            dec_labels(d, val, k, &out->match);
        else if (strcmp(k, "matchExpressions") == 0)
            dec_warn(d, val, MSH_NOT_APPLIED,
                     "matchExpressions is not supported; only matchLabels selects workloads");
        else
            dec_unknown(d, k, val);
    }
    dec_pop(d, mark);
    return !d->failed;
}

bool cfg_valid_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

bool cfg_valid_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    char buf[254];
    memcpy(buf, s, n + 1);
    for (char *save = NULL, *p = strtok_r(buf, ".", &save); p; p = strtok_r(NULL, ".", &save))
        if (!cfg_valid_dns_label(p))
            return false;
    return s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}
