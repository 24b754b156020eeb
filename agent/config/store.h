/* The agent's live configuration: the current snapshot of --config DIR,
 * reloaded when the directory changes.
 *
 * A change (inotify, debounced) starts a load on a worker thread, so a
 * 50k-pod configuration never stalls the data path; the loop thread then
 * swaps the snapshot in with one pointer store. A load with errors is
 * reported (log, meshctl, metrics) and not applied: the last good
 * snapshot keeps serving. Snapshots are refcounted, so a connection may
 * hold the one it started with across any number of reloads.
 *
 * With a state directory, every applied load is persisted there
 * (config/persist.h). At start, if the directory does not load, the store
 * serves that persisted last good configuration (status.serving
 * CFG_SERVING_PERSISTED); with none, it serves an empty snapshot and says
 * so (CFG_SERVING_NONE): the agent then refuses inbound traffic to its
 * enrolled pods (fail closed) until a good load. In both cases
 * status.loaded stays false (not ready) until the operator's files load. */
#ifndef MESHD_CONFIG_STORE_H
#define MESHD_CONFIG_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/loop.h"

struct cfg_store;

struct cfg_store_opts {
    const char *dir;
    const char *root_namespace; /* NULL: istio-system */
    const char *domain;         /* NULL: cluster.local */
    const char *state_dir;      /* NULL: nothing persisted */
    unsigned debounce_ms;       /* 0: 200 */
    /* Called on the loop thread after a new snapshot is in place; `old`
     * is still valid during the call (NULL the first time). */
    void (*applied)(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old);
    void *ctx;
    /* Gateway servers' file certificates: only below it (cfg_load_opts). */
    const char *gateway_cert_dir;
};

#define CFG_STORE_MESSAGES 20 /* kept from the last rejected load */
#define CFG_STORE_CODES    32 /* distinct finding codes counted */

/* What analysis found in the applied configuration, by code. */
struct cfg_finding_count {
    const char *code; /* static */
    enum cfg_level level;
    uint32_t count;
};

enum cfg_serving {
    CFG_SERVING_NONE,      /* nothing good ever loaded: fail closed */
    CFG_SERVING_PERSISTED, /* the last good configuration of a previous run */
    CFG_SERVING_LIVE,      /* a load of the operator's directory */
};

struct cfg_store_status {
    bool loaded; /* some load succeeded: the snapshot is the operator's */
    enum cfg_serving serving;
    const char *persisted_version; /* "" when nothing is persisted */
    uint64_t persist_failures;     /* applied loads that could not be persisted */
    const char *version;
    uint64_t generation; /* snapshots applied so far */
    uint64_t applied, rejected;
    uint64_t unchanged; /* clean loads with the served version's content */
    uint64_t loaded_unix_ms;
    double last_load_seconds;
    /* The last rejected load (empty when the latest load was applied). */
    size_t nerrors;
    const char *errors[CFG_STORE_MESSAGES];
    /* Findings in the applied snapshot (warnings such as L7 fields meshd
     * cannot honour, analyzer errors Istio would apply anyway). */
    struct cfg_finding_count findings[CFG_STORE_CODES];
    size_t nfindings;
};

/* Loads DIR now (on the calling thread) and starts watching it. A first
 * load with errors leaves an empty snapshot in place (status.loaded false)
 * and is not fatal: fixing the files applies them. */
int cfg_store_new(struct loop *loop, const struct cfg_store_opts *opts, struct cfg_store **out);
/* Waits for a load in flight, then frees. Accepts NULL. */
void cfg_store_free(struct cfg_store *st);

/* Borrowed: valid until the next reload is applied; cfg_snapshot_ref() it
 * to keep it longer. Never NULL. */
struct cfg_snapshot *cfg_store_current(const struct cfg_store *st);
void cfg_store_status(const struct cfg_store *st, struct cfg_store_status *out);
/* True while no good configuration was ever served (CFG_SERVING_NONE):
 * callers refuse inbound traffic to enrolled pods. */
bool cfg_store_fail_closed(const struct cfg_store *st);
const char *cfg_serving_name(enum cfg_serving s);
/* Starts a reload now (as the watcher would). */
void cfg_store_reload(struct cfg_store *st);
/* Holds (on) or releases (off) reloads on changes: a writer mid-way through
 * a batch of files (the Kubernetes mirror's list of 1234 Secrets) makes
 * them one reload, not one per debounce window. Holds nest; a change while
 * held is noted, and the last release reloads once, debounced. */
void cfg_store_hold(struct cfg_store *st, bool on);

#endif
