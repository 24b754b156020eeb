/* Live configuration with off-loop reloads (see store.h). */
#include "config/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config/analyze.h"
#include "config/persist.h"
#include "core/container.h"
#include "core/dirwatch.h"
#include "core/log.h"

/* What one load produced; written by the worker, read by the loop after
 * the eventfd says it is done (the thread join orders the memory). */
struct load_result {
    struct cfg_snapshot *snap;
    struct cfg_diags diags;
    size_t load_errors; /* before analysis: these reject the load */
    double seconds;
    int err;
    /* Persistence, done on the worker too: the version now on disk, and
     * the error of a clean load that could not be written (0: none). */
    char persisted[17];
    int persist_err;
};

struct cfg_store {
    struct loop *loop; /* borrowed */
    struct cfg_store_opts opts;
    struct cfg_load_opts load_opts;
    char *dir;
    char *state_dir; /* NULL: no persistence */
    char persisted[17];
    struct dirwatch *watch;
    struct loop_io done_io; /* eventfd: the worker finished */
    pthread_t worker;
    bool busy, again;   /* a load is running; another change came meanwhile */
    unsigned holds;     /* cfg_store_hold: changes noted, not loaded */
    atomic_bool cancel; /* cfg_store_free: the load in flight gives up */
    bool held_change;   /* a change came while held */
    struct load_result result;
    struct cfg_snapshot *current;
    struct cfg_store_status status;
    char version[17];
    char *errors[CFG_STORE_MESSAGES];
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void load_into(const struct cfg_store *st, struct load_result *r)
{
    double t0 = now_seconds();
    const char *paths[] = {st->dir};
    struct cfg_load_opts o = st->load_opts;
    struct cfg_stage stage = {0};
    bool staging = st->state_dir && cfg_stage_begin(&stage, st->state_dir) == 0;
    if (staging) {
        o.file_read = cfg_stage_file;
        o.file_read_ctx = &stage;
    }
    cfg_diags_init(&r->diags);
    r->snap = NULL;
    r->err = cfg_load(paths, 1, &o, &r->diags, &r->snap);
    /* What the loader finds (syntax, schema, duplicates, unknown kinds or
     * versions of meshd's API groups) rejects the load; other projects'
     * kinds are Info; what the analyzers find (a reference to nothing, a
     * conflict) is reported, as istioctl would, and applied as Istio
     * would apply it. */
    r->load_errors = r->diags.counts[CFG_ERROR];
    if (!r->err)
        cfg_analyze(r->snap, &r->diags);
    cfg_diags_sort(&r->diags);
    /* A clean load is applied: persist it unless that version is kept. */
    snprintf(r->persisted, sizeof(r->persisted), "%s", st->persisted);
    r->persist_err = 0;
    bool changed =
        !r->err && !r->load_errors && strcmp(cfg_snapshot_version(r->snap), st->persisted) != 0;
    if (staging && changed) {
        r->persist_err = cfg_stage_commit(&stage, cfg_snapshot_version(r->snap));
        snprintf(r->persisted, sizeof(r->persisted), "%s",
                 r->persist_err ? "" : cfg_snapshot_version(r->snap));
    } else if (staging) {
        cfg_stage_abort(&stage);
    } else if (st->state_dir && changed) {
        r->persist_err = stage.err ? stage.err : -EIO;
        cfg_persist_remove(st->state_dir); /* never leave an older copy */
        r->persisted[0] = '\0';
    }
    r->seconds = now_seconds() - t0;
}

static void clear_errors(struct cfg_store *st)
{
    for (size_t i = 0; i < st->status.nerrors; i++) {
        free(st->errors[i]);
        st->errors[i] = NULL;
    }
    st->status.nerrors = 0;
}

static void *release_main(void *arg)
{
    cfg_snapshot_unref(arg);
    return NULL;
}

/* Unmapping a large snapshot's arena takes milliseconds: drop the last
 * reference on a short-lived thread rather than on the event loop. */
static void release_off_loop(struct cfg_snapshot *s)
{
    pthread_t t;
    pthread_attr_t attr;
    if (!s)
        return;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&t, &attr, release_main, s);
        pthread_attr_destroy(&attr);
        if (err == 0)
            return;
    }
    cfg_snapshot_unref(s);
}

static void count_findings(struct cfg_store *st, const struct cfg_diags *d)
{
    st->status.nfindings = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = 0;
        while (k < st->status.nfindings &&
               (strcmp(st->status.findings[k].code, d->v[i].code) != 0 ||
                st->status.findings[k].level != d->v[i].level))
            k++;
        if (k == st->status.nfindings) {
            if (k == CFG_STORE_CODES)
                continue;
            st->status.findings[k] = (struct cfg_finding_count){d->v[i].code, d->v[i].level, 0};
            st->status.nfindings++;
        }
        st->status.findings[k].count++;
    }
}

/* Loop thread: apply a clean load, or report and keep the last good one. */
static void finish_load(struct cfg_store *st, struct load_result *r)
{
    const struct cfg_diags *d = &r->diags;
    size_t errors = r->load_errors;
    snprintf(st->persisted, sizeof(st->persisted), "%s", r->persisted);
    if (r->persist_err) {
        st->status.persist_failures++;
        log_error("config: version %s applies but cannot be persisted in %s (%s): a restart "
                  "on broken files would refuse inbound traffic until a good load",
                  r->snap ? cfg_snapshot_version(r->snap) : "?", st->state_dir,
                  strerror(-r->persist_err));
    }
    if (r->err || errors) {
        st->status.rejected++;
        clear_errors(st);
        log_error("config: %s rejected (%zu error%s); still serving version %s", st->dir, errors,
                  errors == 1 ? "" : "s", st->version);
        for (size_t i = 0; i < d->n; i++) {
            if (d->v[i].level != CFG_ERROR || strncmp(d->v[i].code, "MSH02", 5) == 0)
                continue;
            char line[1200];
            cfg_diag_format(&d->v[i], line, sizeof(line));
            if (st->status.nerrors < CFG_STORE_MESSAGES) {
                log_error("config: %s", line);
                st->errors[st->status.nerrors++] = strdup(line);
            }
        }
        if (r->err)
            log_error("config: load failed: %s", strerror(-r->err));
        release_off_loop(r->snap);
    } else if (st->status.loaded && strcmp(cfg_snapshot_version(r->snap), st->version) == 0) {
        /* Same content (an editor's temporary file, a touch): nothing to
         * apply, no new generation, nothing for the data path to redo. */
        st->status.unchanged++;
        clear_errors(st);
        log_debug("config: %s unchanged (version %s)", st->dir, st->version);
        release_off_loop(r->snap);
    } else {
        /* Findings are worth a line each, once per applied version. */
        for (size_t i = 0; i < d->n && i < 50; i++) {
            if (d->v[i].level == CFG_INFO)
                continue;
            char line[1200];
            cfg_diag_format(&d->v[i], line, sizeof(line));
            log_warn("config: %s", line);
        }
        struct cfg_snapshot *old = st->current;
        st->current = r->snap;
        snprintf(st->version, sizeof(st->version), "%s", cfg_snapshot_version(r->snap));
        clear_errors(st);
        count_findings(st, d);
        if (!st->status.loaded && st->status.rejected)
            log_info("config: %s loads again: serving the operator's configuration", st->dir);
        st->status.loaded = true;
        st->status.serving = CFG_SERVING_LIVE;
        st->status.applied++;
        st->status.generation++;
        st->status.loaded_unix_ms = unix_ms();
        st->status.last_load_seconds = r->seconds;
        log_info("config: version %s applied (%zu files, %.3f s)", st->version,
                 cfg_snapshot_files(r->snap), r->seconds);
        if (st->opts.applied)
            st->opts.applied(st->opts.ctx, st->current, old);
        release_off_loop(old);
    }
    cfg_diags_fini(&r->diags);
}

/* Start-up on a directory that does not load: the last good configuration
 * of a previous run, if it loads clean and is the version recorded with
 * it; otherwise nothing, and the agent fails closed. */
static void serve_persisted(struct cfg_store *st)
{
    char path[PATH_MAX];
    struct cfg_snapshot *snap = NULL;
    struct cfg_diags d;
    cfg_diags_init(&d);
    if (st->state_dir && st->persisted[0] && cfg_persist_path(st->state_dir, path, sizeof(path))) {
        const char *paths[] = {path};
        if (cfg_load(paths, 1, &st->load_opts, &d, &snap) == 0 &&
            (d.counts[CFG_ERROR] || strcmp(cfg_snapshot_version(snap), st->persisted) != 0)) {
            log_error("config: the persisted configuration in %s does not load as version %s; "
                      "not used (removed: the next good load is persisted afresh)",
                      path, st->persisted);
            cfg_snapshot_unref(snap);
            snap = NULL;
            cfg_persist_remove(st->state_dir);
            st->persisted[0] = '\0';
        }
    }
    cfg_diags_fini(&d);
    if (!snap) {
        st->status.serving = CFG_SERVING_NONE;
        log_error("config: %s does not load and no usable last good configuration is "
                  "persisted: refusing inbound traffic to enrolled pods (fail closed) until it "
                  "loads",
                  st->dir);
        return;
    }
    cfg_snapshot_unref(st->current);
    st->current = snap;
    snprintf(st->version, sizeof(st->version), "%s", cfg_snapshot_version(snap));
    st->status.serving = CFG_SERVING_PERSISTED;
    log_error("config: %s does not load: serving the last good configuration, version %s, "
              "persisted in %s, until it does (not ready)",
              st->dir, st->version, path);
}

static void *worker_main(void *arg)
{
    struct cfg_store *st = arg;
    load_into(st, &st->result);
    uint64_t one = 1;
    /* An eventfd write of 1 cannot fail short of a bug. */
    if (write(st->done_io.fd, &one, sizeof(one)) != sizeof(one))
        abort();
    return NULL;
}

static void start_load(struct cfg_store *st)
{
    if (st->busy) {
        st->again = true;
        return;
    }
    st->again = false;
    int err = pthread_create(&st->worker, NULL, worker_main, st);
    if (err) {
        /* No thread: load here rather than miss the change. */
        log_warn("config: no reload thread (%s); loading on the event loop", strerror(err));
        struct load_result r;
        load_into(st, &r);
        finish_load(st, &r);
        return;
    }
    st->busy = true;
}

static void on_load_done(struct loop_io *io, uint32_t events)
{
    struct cfg_store *st = container_of(io, struct cfg_store, done_io);
    uint64_t n;
    if (read(io->fd, &n, sizeof(n)) != sizeof(n) || !st->busy)
        return;
    pthread_join(st->worker, NULL);
    st->busy = false;
    finish_load(st, &st->result);
    if (st->again)
        start_load(st);
}

static void on_change(void *ctx)
{
    struct cfg_store *st = ctx;
    if (st->holds) {
        st->held_change = true;
        log_debug("config: %s changed while held: one load once the writer is done", st->dir);
        return;
    }
    log_info("config: %s changed; reloading", st->dir);
    start_load(st);
}

void cfg_store_hold(struct cfg_store *st, bool on)
{
    if (!st)
        return;
    if (on) {
        st->holds++;
        return;
    }
    if (st->holds && --st->holds == 0 && st->held_change) {
        st->held_change = false;
        dirwatch_poke(st->watch); /* with the writer's last events: one reload */
    }
}

int cfg_store_new(struct loop *loop, const struct cfg_store_opts *opts, struct cfg_store **out)
{
    struct cfg_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->loop = loop;
    st->opts = *opts;
    atomic_init(&st->cancel, false);
    st->done_io.fd = -1;
    cfg_load_opts_default(&st->load_opts);
    if (opts->root_namespace)
        st->load_opts.root_namespace = opts->root_namespace;
    if (opts->domain)
        st->load_opts.domain = opts->domain;
    st->load_opts.gateway_cert_dir = opts->gateway_cert_dir;
    st->load_opts.cancel = &st->cancel;
    st->dir = strdup(opts->dir);
    int err = st->dir ? 0 : -ENOMEM;
    if (!err) {
        st->done_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        st->done_io.cb = on_load_done;
        err = st->done_io.fd < 0 ? -errno : loop_add(loop, &st->done_io, EPOLLIN);
    }
    if (!err) {
        /* An empty snapshot first, so there always is one. */
        struct cfg_diags none;
        cfg_diags_init(&none);
        err = cfg_load(NULL, 0, &st->load_opts, &none, &st->current);
        cfg_diags_fini(&none);
        snprintf(st->version, sizeof(st->version), "none");
    }
    if (!err && opts->state_dir && !(st->state_dir = strdup(opts->state_dir)))
        err = -ENOMEM;
    if (!err && st->state_dir &&
        cfg_persist_version(st->state_dir, st->persisted, sizeof(st->persisted)) != 0)
        st->persisted[0] = '\0';
    if (!err) {
        struct load_result r;
        load_into(st, &r);
        finish_load(st, &r);
        if (!st->status.loaded)
            serve_persisted(st);
        err = dirwatch_new(loop, st->dir, opts->debounce_ms ? opts->debounce_ms : 200, on_change,
                           st, &st->watch);
    }
    if (err) {
        cfg_store_free(st);
        return err;
    }
    *out = st;
    return 0;
}

void cfg_store_free(struct cfg_store *st)
{
    if (!st)
        return;
    if (st->busy) {
        atomic_store(&st->cancel, true); /* shutting down: its result is dropped */
        pthread_join(st->worker, NULL);
        cfg_snapshot_unref(st->result.snap);
        cfg_diags_fini(&st->result.diags);
    }
    dirwatch_free(st->watch);
    if (st->done_io.fd >= 0) {
        if (st->done_io.registered)
            loop_del(st->loop, &st->done_io);
        close(st->done_io.fd);
    }
    clear_errors(st);
    cfg_snapshot_unref(st->current);
    free(st->dir);
    free(st->state_dir);
    free(st);
}

struct cfg_snapshot *cfg_store_current(const struct cfg_store *st)
{
    return st->current;
}

bool cfg_store_fail_closed(const struct cfg_store *st)
{
    return st->status.serving == CFG_SERVING_NONE;
}

const char *cfg_serving_name(enum cfg_serving s)
{
    switch (s) {
    case CFG_SERVING_LIVE:
        return "live";
    case CFG_SERVING_PERSISTED:
        return "persisted";
    case CFG_SERVING_NONE:
        break;
    }
    return "none";
}

void cfg_store_status(const struct cfg_store *st, struct cfg_store_status *out)
{
    *out = st->status;
    out->version = st->version;
    out->persisted_version = st->persisted;
    for (size_t i = 0; i < st->status.nerrors; i++)
        out->errors[i] = st->errors[i];
}

void cfg_store_reload(struct cfg_store *st)
{
    start_load(st);
}
