/* One load in progress, shared by the loader (loader.c: documents to
 * decoders) and its file side (files.c: which files, within which bounds);
 * internal to the config module. */
#ifndef MESHD_CONFIG_LOAD_H
#define MESHD_CONFIG_LOAD_H

#include <openssl/evp.h>
#include <stdint.h>

#include "config/internal.h"

struct unapplied;

struct cfg_load {
    const struct cfg_load_opts *o;
    struct cfg_diags *diags;
    struct cfg_snapshot *s;
    EVP_MD_CTX *hash;
    size_t total;                /* bytes read so far, against o->max_total_bytes */
    struct cfg_list files;       /* heap: "path\0name\0", name for messages and the hash */
    struct unapplied *unapplied; /* heap: kinds not applied, one Info each */
    size_t nunapplied;
};

/* An Error about a file at line:col; fmt takes two strings. */
void cfg_load_error(struct cfg_load *L, const char *file, uint32_t line, uint32_t col,
                    const char *code, const char *fmt, const char *a, const char *b);

/* Adds `path` (a file, or a directory walked depth-first in name order)
 * to L->files, within o->max_files. Unreadable entries are Errors, not
 * failures: 0, or -ENOMEM / -E2BIG. */
int cfg_load_collect(struct cfg_load *L, const char *path);

/* A whole regular file (NUL-terminated, heap, the caller frees), within
 * o->max_file_bytes and what is left of o->max_total_bytes; NULL with an
 * Error otherwise. */
char *cfg_load_read(struct cfg_load *L, const char *path, const char *name, size_t *len);

#endif
