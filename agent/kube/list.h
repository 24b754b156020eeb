/* A list read in pages (limit + continue, as client-go's pager): the
 * continue token and resourceVersion between pages, and the names of
 * every object seen in all of them, for the sweep that follows the last
 * page (what the API no longer has leaves the mirror only once the whole
 * list is in).
 *
 * Bounds: KUBE_LIST_PAGE objects a page (the server may send fewer), a
 * continue token of KUBE_CONT_MAX - 1 bytes, KUBE_LIST_OBJECTS objects in
 * all (past it the list fails, and the mirror stays as it was). Any
 * failure between pages (a cut, a 410 for an expired token) starts the
 * list again from its first page. Pure but for the sweep's files. */
#ifndef MESHD_KUBE_LIST_H
#define MESHD_KUBE_LIST_H

#include <stddef.h>

#include "kube/stream.h"

#define KUBE_LIST_PAGE    500
#define KUBE_CONT_MAX     1024
#define KUBE_LIST_OBJECTS (1u << 20)

struct kube_list {
    char cont[KUBE_CONT_MAX]; /* "": the first page next */
    char rv[KUBE_RV_MAX];     /* the first page's resourceVersion */
    char **names;             /* heap: mirror file names of the pages so far */
    size_t n, cap;
    unsigned pages;
};

/* The list's query parameters for its next page, after `prefix` (e.g. a
 * field selector and its '&'): "limit=500" and, past the first page,
 * "&continue=" with the token percent-encoded. 0 or -E2BIG. */
int kube_list_query(const struct kube_list *l, const char *prefix, char *out, size_t len);
/* Records one object's mirror file name. 0, -E2BIG past
 * KUBE_LIST_OBJECTS, or -ENOMEM. */
int kube_list_add(struct kube_list *l, const char *name);
/* A page is in: its resourceVersion (kept from the first page) and its
 * continue token (NULL or "" on the last). 1 when more pages follow, 0
 * when this was the last, -EINVAL for a token past its bound or a page
 * whose resourceVersion is not the first page's. */
int kube_list_page(struct kube_list *l, const char *rv, const char *cont);
/* After the last page: removes from <dir>/<resource> every file no page
 * named. Returns how many went, or -errno. */
int kube_list_sweep(struct kube_list *l, const char *dir, const char *resource);
/* Forgets the pages so far: the next page is the first. */
void kube_list_reset(struct kube_list *l);

#endif
