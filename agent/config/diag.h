/* Configuration diagnostics: what the loader and the analyzers say about a
 * set of resources, in istioctl analyze's shape:
 *
 *   Error [IST0101] (VirtualService default/payments vs.yaml:12) Referenced ...
 *
 * Codes are Istio's where Istio has one (IST0101 reference not found, IST0106
 * schema, ...) and meshd's own (MSHxxxx) where it does not. Bounded: past
 * CFG_DIAGS_MAX messages the rest are counted, not kept. */
#ifndef MESHD_CONFIG_DIAG_H
#define MESHD_CONFIG_DIAG_H

#include <stdarg.h>
#include <stddef.h>

#include "config/model.h"
#include "core/arena.h"

enum cfg_level { CFG_ERROR, CFG_WARNING, CFG_INFO };

struct cfg_diag {
    enum cfg_level level;
    const char *code;
    const char *kind; /* resource kind name, or NULL (a file, not a resource) */
    const char *ns, *name;
    struct cfg_pos pos; /* file NULL: none */
    const char *message;
};

#define CFG_DIAGS_MAX 2000

struct cfg_diags {
    struct cfg_diag *v;
    size_t n, cap;
    size_t dropped;
    size_t counts[3]; /* by level, including dropped */
    struct arena arena;
};

void cfg_diags_init(struct cfg_diags *d);
void cfg_diags_fini(struct cfg_diags *d);

/* `meta` (or NULL) names the resource; `pos` (or NULL: the resource's). */
void cfg_diag_add(struct cfg_diags *d, enum cfg_level level, const char *code,
                  const struct cfg_meta *meta, const struct cfg_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void cfg_diag_vadd(struct cfg_diags *d, enum cfg_level level, const char *code, const char *kind,
                   const char *ns, const char *name, const struct cfg_pos *pos, const char *fmt,
                   va_list ap) __attribute__((format(printf, 8, 0)));

/* The same with a formatted message. */
void cfg_diag_push(struct cfg_diags *d, enum cfg_level level, const char *code, const char *kind,
                   const char *ns, const char *name, const struct cfg_pos *pos,
                   const char *message);

const char *cfg_level_name(enum cfg_level l);
/* Stable order for output: file, line, column, then code. */
void cfg_diags_sort(struct cfg_diags *d);
/* One line, istioctl's shape, NUL-terminated (truncated to len). */
void cfg_diag_format(const struct cfg_diag *g, char *buf, size_t len);

/* meshd's codes; Istio's are written inline where used. */
#define MSH_YAML_SYNTAX     "MSH0100"
#define MSH_UNKNOWN_KIND    "MSH0101"
#define MSH_DUPLICATE       "MSH0102"
#define MSH_UNKNOWN_FIELD   "MSH0103"
#define MSH_FILE            "MSH0104"
#define MSH_L7_IGNORED      "MSH0201"
#define MSH_WEIGHTS         "MSH0202"
#define MSH_DR_CONFLICT     "MSH0203"
#define MSH_PA_CONFLICT     "MSH0204"
#define MSH_NOT_APPLIED     "MSH0205"
#define MSH_INJECTION_LABEL "MSH0206"
#define MSH_GWAPI           "MSH0207" /* Gateway API binding (Istio's status conditions) */
#define IST_NOT_FOUND       "IST0101"
#define IST_NOT_IN_MESH     "IST0102"
#define IST_SCHEMA          "IST0106"
#define IST_VS_CONFLICT     "IST0109"
#define IST_NO_WORKLOADS    "IST0127"
#define IST_SUBSET_NO_PODS  "IST0173"
#define IST_DR_UNKNOWN_HOST "IST0174"

#endif
