/* A bounded YAML reader: libyaml's event parser composed into a small node
 * tree per document, allocated in a caller's arena.
 *
 * Why not libyaml's own document loader: we need limits it does not have
 * (nesting depth, bytes and nodes per document, anchors) and positions on
 * every node for error messages. Aliases share the anchored node (the tree
 * is a DAG, never a cycle: an anchor is usable only once its node is
 * complete); consumers bound their walks with a node budget so an "alias
 * bomb" cannot expand without limit. YAML 1.1 merge keys (`<<: *base`)
 * are applied at composition: explicit keys win. */
#ifndef MESHD_CONFIG_YAML_H
#define MESHD_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/arena.h"

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode;
struct ypair {
    const struct ynode *key, *value;
};

struct ynode {
    enum ynode_type type;
    bool plain;         /* scalar written without quotes or tag: may be a number, bool, null */
    uint32_t line, col; /* 1-based */
    union {
        struct {
            const char *s; /* NUL-terminated */
            size_t len;
        } scalar;
        struct {
            const struct ynode *const *v;
            size_t n;
        } seq;
        struct {
            const struct ypair *v;
            size_t n;
        } map;
    };
};

struct ylimits {
    size_t max_doc_bytes;
    size_t max_nodes;   /* per document */
    unsigned max_depth; /* nesting of collections */
    unsigned max_anchors;
};

/* Kubernetes' own object limit is ~1.5 MiB; manifests nest a dozen deep. */
#define YLIMITS_DEFAULT                                                                            \
    ((struct ylimits){                                                                             \
        .max_doc_bytes = 2u << 20, .max_nodes = 200000, .max_depth = 64, .max_anchors = 1024})

struct ydoc {
    const struct ynode *root; /* NULL for an empty document */
    uint32_t line, col;       /* where the document starts */
};

struct yreader {
    yaml_parser_t parser;
    char *owned; /* heap: the input with flow scalars quoted (see yreader_init), or NULL */
    struct ylimits lim;
    bool done;
    /* Set when yreader_next() fails. */
    char err[256];
    uint32_t err_line, err_col;
};

/* `buf` must outlive the reader. A plain scalar ending in ':' inside a
 * flow collection ("[1.2.3.4, 2001:db8::]") is one scalar for Kubernetes
 * (go-yaml) and PyYAML; libyaml refuses it, so the reader quotes such
 * scalars in a private copy first (columns after one on its line shift). */
void yreader_init(struct yreader *r, const char *buf, size_t len, const struct ylimits *lim);
void yreader_fini(struct yreader *r);
/* 1: a document in *out (nodes in `a`); 0: end of stream; -1: error in
 * r->err at r->err_line:r->err_col (the stream cannot be read further). */
int yreader_next(struct yreader *r, struct arena *a, struct ydoc *out);

/* Lookups. NULL when absent or when `map` is not a mapping. */
const struct ynode *ymap_get(const struct ynode *map, const char *key);
bool yscalar_is(const struct ynode *n, const char *s);
/* A plain `~`, `null`, `Null`, `NULL` or empty scalar. */
bool ynode_is_null(const struct ynode *n);
const char *ynode_type_name(const struct ynode *n);

#endif
