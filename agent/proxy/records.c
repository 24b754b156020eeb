/* Bounded ring of finished connection records (see records.h). */
#include "proxy/records.h"

#include <errno.h>
#include <stdlib.h>

struct records {
    size_t capacity, count, next;
    struct conn_record slot[];
};

const char *conn_state_name(enum conn_state s)
{
    switch (s) {
    case CONN_CONNECTING:
        return "connecting";
    case CONN_OPEN:
        return "open";
    case CONN_CLOSED:
        return "closed";
    case CONN_FAILED:
        return "failed";
    }
    return "?";
}

int records_new(size_t capacity, struct records **out)
{
    if (capacity == 0)
        return -EINVAL;
    struct records *r = calloc(1, sizeof(*r) + capacity * sizeof(r->slot[0]));
    if (!r)
        return -ENOMEM;
    r->capacity = capacity;
    *out = r;
    return 0;
}

void records_free(struct records *r)
{
    free(r);
}

struct conn_record *records_push(struct records *r, const struct conn_record *rec)
{
    struct conn_record *kept = &r->slot[r->next];
    *kept = *rec;
    r->next = (r->next + 1) % r->capacity;
    if (r->count < r->capacity)
        r->count++;
    return kept;
}

size_t records_count(const struct records *r)
{
    return r->count;
}

const struct conn_record *records_get(const struct records *r, size_t i)
{
    if (i >= r->count)
        return NULL;
    size_t oldest = (r->next + r->capacity - r->count) % r->capacity;
    return &r->slot[(oldest + i) % r->capacity];
}
