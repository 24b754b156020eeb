/* Paged lists (see list.h). */
#include "kube/list.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/mirror.h"

/* RFC 3986 unreserved characters pass, every other byte is %XX. */
static int pct_encode(const char *s, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (o + (plain ? 1 : 3) >= len)
            return -E2BIG;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

int kube_list_query(const struct kube_list *l, const char *prefix, char *out, size_t len)
{
    int n =
        snprintf(out, len, "%slimit=%d%s", prefix, KUBE_LIST_PAGE, l->cont[0] ? "&continue=" : "");
    if (n < 0 || (size_t)n >= len)
        return -E2BIG;
    return l->cont[0] ? pct_encode(l->cont, out + n, len - (size_t)n) : 0;
}

int kube_list_add(struct kube_list *l, const char *name)
{
    if (l->n >= KUBE_LIST_OBJECTS)
        return -E2BIG;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **grown = realloc(l->names, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        l->names = grown;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return -ENOMEM;
    l->n++;
    return 0;
}

int kube_list_page(struct kube_list *l, const char *rv, const char *cont)
{
    if (l->pages == 0)
        snprintf(l->rv, sizeof(l->rv), "%s", rv);
    else if (strcmp(l->rv, rv) != 0)
        return -EINVAL; /* every page of one list is at one resourceVersion */
    l->pages++;
    if (!cont || !*cont) {
        l->cont[0] = '\0';
        return 0;
    }
    if (strlen(cont) >= sizeof(l->cont))
        return -EINVAL;
    snprintf(l->cont, sizeof(l->cont), "%s", cont);
    return 1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kube_list_sweep(struct kube_list *l, const char *dir, const char *resource)
{
    qsort(l->names, l->n, sizeof(*l->names), cmp_name);
    return kube_mirror_sweep(dir, resource, l->names, l->n);
}

void kube_list_reset(struct kube_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = l->cap = 0;
    l->cont[0] = l->rv[0] = '\0';
    l->pages = 0;
}
