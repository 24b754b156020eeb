/* The Prometheus text exposition (format 0.0.4) as meshctl dashboard reads
 * it from agents (the control socket's "metrics" command) or from a
 * Prometheus server's /federate: samples of the metrics a caller asks for,
 * with their labels. Input is hostile: every line, label and sample count
 * is bounded; a malformed line is skipped and counted, never trusted. */
#ifndef MESHCTL_PROMTEXT_H
#define MESHCTL_PROMTEXT_H

#include <stddef.h>

#define PROM_MAX_LABELS    40
#define PROM_MAX_SAMPLES   50000
#define PROM_MAX_LINE      (64 * 1024)
#define PROM_MAX_LABEL_LEN 256

struct prom_label {
    char *name, *value; /* owned */
};

struct prom_sample {
    char *name;                /* owned */
    struct prom_label *labels; /* owned, nlabels of them */
    size_t nlabels;
    double value;
    int origin; /* the set's origin when it was parsed: which agent */
};

struct prom_set {
    struct prom_sample *v; /* owned */
    size_t n, cap;
    size_t malformed; /* lines skipped */
    size_t dropped;   /* samples past PROM_MAX_SAMPLES */
    int origin;       /* stamped on the samples prom_parse appends */
};

/* Appends the samples of `text` whose metric name starts with `prefix`
 * ("" for all) to `set`. 0, or -ENOMEM (the set keeps what it had). */
int prom_parse(struct prom_set *set, const char *text, size_t len, const char *prefix);
void prom_set_free(struct prom_set *set); /* leaves an empty set */

/* The value of label `name`, or "" when the sample has none. */
const char *prom_label(const struct prom_sample *s, const char *name);

#endif
