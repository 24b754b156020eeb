/* Prometheus text exposition parser (see promtext.h): one line at a time,
 * name, optional {labels}, value, optional timestamp. */
#include "promtext.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

static void sample_clear(struct prom_sample *s)
{
    free(s->name);
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->labels[i].name);
        free(s->labels[i].value);
    }
    free(s->labels);
    memset(s, 0, sizeof(*s));
}

/* A quoted label value at *p (after the opening quote), unescaped into
 * out (at most PROM_MAX_LABEL_LEN-1 bytes). Returns false when malformed. */
static bool parse_value(const char **p, const char *end, char *out)
{
    size_t n = 0;
    for (const char *c = *p; c < end; c++) {
        char ch = *c;
        if (ch == '"') {
            out[n] = '\0';
            *p = c + 1;
            return true;
        }
        if (ch == '\\') {
            if (++c >= end)
                return false;
            ch = *c == 'n' ? '\n' : *c;
            if (*c != 'n' && *c != '\\' && *c != '"')
                return false;
        }
        if (n + 1 >= PROM_MAX_LABEL_LEN)
            return false;
        out[n++] = ch;
    }
    return false;
}

/* One sample line into s (which owns what it got, even on failure);
 * 1 parsed, 0 skipped (another metric), -1 malformed, -ENOMEM. */
static int parse_line(const char *p, const char *end, const char *prefix, struct prom_sample *s)
{
    const char *name = p;
    while (p < end && name_char(*p, p == name))
        p++;
    if (p == name)
        return -1;
    size_t plen = strlen(prefix);
    if ((size_t)(p - name) < plen || strncmp(name, prefix, plen) != 0)
        return 0;
    if (!(s->name = strndup(name, (size_t)(p - name))))
        return -ENOMEM;
    if (p < end && *p == '{') {
        p++;
        if (!(s->labels = calloc(PROM_MAX_LABELS, sizeof(*s->labels))))
            return -ENOMEM;
        for (;;) {
            while (p < end && (*p == ' ' || *p == ','))
                p++;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            const char *ln = p;
            while (p < end && name_char(*p, p == ln))
                p++;
            if (p == ln || (size_t)(p - ln) >= PROM_MAX_LABEL_LEN || p + 1 >= end || *p != '=' ||
                p[1] != '"' || s->nlabels >= PROM_MAX_LABELS)
                return -1;
            char value[PROM_MAX_LABEL_LEN];
            const char *vp = p + 2;
            if (!parse_value(&vp, end, value))
                return -1;
            struct prom_label *l = &s->labels[s->nlabels];
            l->name = strndup(ln, (size_t)(p - ln));
            l->value = strdup(value);
            s->nlabels++;
            if (!l->name || !l->value)
                return -ENOMEM;
            p = vp;
        }
    }
    if (s->nlabels) { /* give back the unused slots */
        struct prom_label *l = realloc(s->labels, s->nlabels * sizeof(*l));
        s->labels = l ? l : s->labels;
    }
    if (p >= end || (*p != ' ' && *p != '\t'))
        return -1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    char num[64];
    size_t nl = 0;
    while (p < end && *p != ' ' && *p != '\t' && nl + 1 < sizeof(num))
        num[nl++] = *p++;
    num[nl] = '\0';
    char *e;
    s->value = strtod(num, &e);
    /* A timestamp may follow (federation); anything else is malformed. */
    if (nl == 0 || *e != '\0')
        return -1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (p < end && ((*p >= '0' && *p <= '9') || *p == '-'))
        p++;
    return p == end ? 1 : -1;
}

int prom_parse(struct prom_set *set, const char *text, size_t len, const char *prefix)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p || *p == '#') {
            p = next;
            continue;
        }
        if ((size_t)(le - p) > PROM_MAX_LINE) {
            set->malformed++;
            p = next;
            continue;
        }
        struct prom_sample s = {0};
        int rc = parse_line(p, le, prefix, &s);
        p = next;
        if (rc == -ENOMEM) {
            sample_clear(&s);
            return rc;
        }
        if (rc <= 0) {
            set->malformed += rc < 0;
            sample_clear(&s);
            continue;
        }
        if (set->n >= PROM_MAX_SAMPLES) {
            set->dropped++;
            sample_clear(&s);
            continue;
        }
        if (set->n == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 256;
            struct prom_sample *nv = realloc(set->v, cap * sizeof(*nv));
            if (!nv) {
                sample_clear(&s);
                return -ENOMEM;
            }
            set->v = nv;
            set->cap = cap;
        }
        s.origin = set->origin;
        set->v[set->n++] = s;
    }
    return 0;
}

void prom_set_free(struct prom_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        sample_clear(&set->v[i]);
    free(set->v);
    memset(set, 0, sizeof(*set));
}

const char *prom_label(const struct prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return "";
}
