/* The Kubernetes API watchers (see kube.h): one state machine a kind,
 * connect -> (TLS) -> request -> response, on the agent's loop. */
#include "kube/kube.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "kube/backoff.h"
#include "kube/conn.h"
#include "kube/list.h"
#include "kube/mirror.h"
#include "kube/stream.h"
#include "tls/conn.h"

struct kind {
    const char *group; /* "" for core */
    const char *versions[4];
    const char *resource, *kind;
    bool namespaced_only_node; /* Pods: this node's */
};

static const struct kind kinds[] = {
    {"", {"v1"}, "namespaces", "Namespace", false},
    {"", {"v1"}, "pods", "Pod", true},
    {"", {"v1"}, "services", "Service", false},
    {"", {"v1"}, "secrets", "Secret", false},
    {"discovery.k8s.io", {"v1"}, "endpointslices", "EndpointSlice", false},
    {"apps", {"v1"}, "deployments", "Deployment", false},
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3"},
     "virtualservices",
     "VirtualService",
     false},
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3"},
     "destinationrules",
     "DestinationRule",
     false},
    {"networking.istio.io", {"v1", "v1beta1", "v1alpha3"}, "gateways", "Gateway", false},
    {"networking.istio.io", {"v1", "v1beta1", "v1alpha3"}, "serviceentries", "ServiceEntry", false},
    {"networking.istio.io", {"v1", "v1beta1", "v1alpha3"}, "sidecars", "Sidecar", false},
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3"},
     "workloadentries",
     "WorkloadEntry",
     false},
    {"security.istio.io", {"v1", "v1beta1"}, "peerauthentications", "PeerAuthentication", false},
    {"security.istio.io", {"v1", "v1beta1"}, "authorizationpolicies", "AuthorizationPolicy", false},
    {"security.istio.io",
     {"v1", "v1beta1"},
     "requestauthentications",
     "RequestAuthentication",
     false},
    {"telemetry.istio.io", {"v1", "v1alpha1"}, "telemetries", "Telemetry", false},
    /* The Kubernetes Gateway API, served by the same engine (unserved in a
     * cluster without its CRDs: a 404, nothing to wait for). */
    {"gateway.networking.k8s.io", {"v1", "v1beta1"}, "gateways", "Gateway", false},
    {"gateway.networking.k8s.io", {"v1", "v1beta1"}, "httproutes", "HTTPRoute", false},
    {"gateway.networking.k8s.io",
     {"v1beta1", "v1alpha2"},
     "referencegrants",
     "ReferenceGrant",
     false},
    {"gateway.networking.k8s.io", {"v1alpha2"}, "tlsroutes", "TLSRoute", false},
    {"gateway.networking.k8s.io", {"v1alpha2"}, "tcproutes", "TCPRoute", false},
};

/* The mirror's directory for a kind: its resource, but two groups serve
 * `gateways`: the Gateway API's get a directory of their own. */
static const char *kind_dir(const struct kind *k)
{
    if (strcmp(k->group, "gateway.networking.k8s.io") == 0 && strcmp(k->resource, "gateways") == 0)
        return "gateways.gateway.networking.k8s.io";
    return k->resource;
}
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

enum wstate { W_WAIT, W_CONNECTING, W_HANDSHAKE, W_SENDING, W_READING };

struct watcher {
    struct kube *k;
    const struct kind *kind;
    size_t version;        /* index into kind->versions */
    char rv[KUBE_RV_MAX];  /* "": list next */
    struct kube_list list; /* the pages of the list under way */
    json_t *page;          /* a list page being mirrored, in slices; NULL: none */
    size_t page_i;         /* its next item */
    bool listing, synced, unserved;
    bool holding; /* a list of it is under way: the store's reloads held */
    enum wstate st;
    int fd;
    struct loop_io io, timer;
    struct tls_conn tls;
    bool tls_on;
    char req[8192]; /* a continue token and a bearer token fit */
    size_t req_len, req_off;
    struct kube_resp resp;
    struct kube_backoff bo;
    uint64_t started_ns; /* this attempt's connect */
};

struct kube {
    struct loop *loop;
    struct kube_target t;
    char *dir, *node;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    SSL_CTX *ssl;
    struct watcher w[NKINDS];
    struct kube_status st;
    void (*hold)(void *ctx, bool on); /* kube_opts.hold */
    void *hold_ctx;
    unsigned holding;  /* holders: watchers, the first sync */
    bool sync_holding; /* until every kind is listed once */
};

static void w_start(struct watcher *w);

static void arm(struct watcher *w, uint32_t ms)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L + 1}};
    timerfd_settime(w->timer.fd, 0, &its, NULL);
}

static const char *api_version(const struct watcher *w, char *buf, size_t len)
{
    const char *v = w->kind->versions[w->version];
    if (!*w->kind->group)
        return v;
    snprintf(buf, len, "%s/%s", w->kind->group, v);
    return buf;
}

static void w_close(struct watcher *w)
{
    if (w->st >= W_CONNECTING) {
        loop_del(w->k->loop, &w->io);
        if (w->tls_on)
            tls_conn_deinit(&w->tls); /* closes fd */
        else
            close(w->fd);
        w->tls_on = false;
        w->fd = -1;
        kube_resp_fini(&w->resp);
    }
    w->st = W_WAIT;
}

/* The attempt is over: `delay_ms` 0 goes on at once (a watch that ended,
 * a relist), else after that long. */
static void w_next(struct watcher *w, uint32_t delay_ms)
{
    w_close(w);
    arm(w, delay_ms);
}

/* The configuration store reloads once for all the lists under way. */
/* The configuration store reloads once for what holds it: the first sync
 * (nothing loads before it anyway) and each list of several pages; a
 * one-page list is one burst of writes, which the debounce makes one
 * reload without waiting for the other kinds. */
static void k_hold(struct kube *k, bool *holding, bool on)
{
    if (*holding == on)
        return;
    *holding = on;
    bool edge = on ? k->holding++ == 0 : --k->holding == 0;
    if (edge && k->hold)
        k->hold(k->hold_ctx, on);
}

static void w_hold(struct watcher *w, bool on)
{
    k_hold(w->k, &w->holding, on);
}

/* A list is over: done, failed, or to start again. */
static void w_list_reset(struct watcher *w)
{
    kube_list_reset(&w->list);
    w_hold(w, false);
}

static void page_drop(struct watcher *w)
{
    json_decref(w->page);
    w->page = NULL;
    w->page_i = 0;
}

static void w_fail(struct watcher *w, const char *what, int err)
{
    uint32_t d = kube_backoff_next(&w->bo);
    page_drop(w);
    w_list_reset(w); /* a list cut between pages starts again */
    w->k->st.errors++;
    log_ratelimited(LOG_WARN, "kube: %s: %s (%s); again in %u ms", w->kind->resource, what,
                    err ? strerror(err < 0 ? -err : err) : "-", d);
    w_next(w, d);
}

static int build_request(struct watcher *w)
{
    struct kube *k = w->k;
    char path[1024], auth[3072], query[KUBE_CONT_MAX * 3 + 512] = "";
    const struct kind *kd = w->kind;
    if (*kd->group)
        snprintf(path, sizeof(path), "/apis/%s/%s/%s", kd->group, kd->versions[w->version],
                 kd->resource);
    else
        snprintf(path, sizeof(path), "/api/%s/%s", kd->versions[w->version], kd->resource);
    char sel[400] = "";
    if (kd->namespaced_only_node)
        snprintf(sel, sizeof(sel), "fieldSelector=spec.nodeName%%3D%s&", k->node);
    if (w->listing) {
        query[0] = '?';
        if (kube_list_query(&w->list, sel, query + 1, sizeof(query) - 1) != 0)
            return -E2BIG;
    } else {
        /* The server ends a watch after timeoutSeconds; spread them as
         * client-go does (5 to 10 minutes). */
        unsigned timeout = 300 + (unsigned)(kube_backoff_next(&(struct kube_backoff){
                                                .base_ms = 300, .cap_ms = 300, .rng = w->bo.rng}) %
                                            300);
        snprintf(query, sizeof(query),
                 "?%swatch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u", sel,
                 w->rv, timeout);
    }
    int err = kube_auth_header(&k->t, auth, sizeof(auth));
    if (err)
        return err;
    char hostport[300];
    snprintf(hostport, sizeof(hostport), strchr(k->t.host, ':') ? "[%s]:%u" : "%s:%u", k->t.host,
             k->t.port);
    int n = snprintf(w->req, sizeof(w->req),
                     "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: meshd\r\n"
                     "Accept: application/json\r\n%sConnection: close\r\n\r\n",
                     path, query, hostport, auth);
    memset(auth, 0, sizeof(auth));
    if (n < 0 || (size_t)n >= sizeof(w->req))
        return -E2BIG;
    w->req_len = (size_t)n;
    w->req_off = 0;
    return 0;
}

static void on_line(void *ctx, const char *line, size_t len);

static void w_start(struct watcher *w)
{
    struct kube *k = w->k;
    w->listing = w->rv[0] == '\0';
    if (!w->synced)
        k_hold(k, &k->sync_holding, true);
    if (!w->listing) /* a watch holds nothing, whatever path led here */
        w_hold(w, false);
    int err = build_request(w);
    if (err) {
        w_fail(w, "credentials", err);
        return;
    }
    kube_resp_init(&w->resp, !w->listing, w->listing ? KUBE_LIST_MAX : KUBE_LINE_MAX, on_line, w);
    w->fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->fd < 0) {
        kube_resp_fini(&w->resp);
        w_fail(w, "socket", -errno);
        return;
    }
    int one = 1;
    setsockopt(w->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    w->st = W_CONNECTING;
    w->started_ns = loop_now_ns();
    w->io.fd = w->fd;
    if (loop_add(k->loop, &w->io, EPOLLOUT) != 0) {
        w_fail(w, "loop", -errno);
        return;
    }
    if (connect(w->fd, (struct sockaddr *)&k->addr, k->addrlen) != 0 && errno != EINPROGRESS) {
        w_fail(w, "connect", -errno);
        return;
    }
    /* A deadline for the whole attempt: a list or a quiet watch (the server
     * sends a bookmark at least every minute, and ends it in 10). */
    arm(w, w->listing ? 60000 : 660000);
}

/* Until every kind is listed, the mirror holds a file that does not load
 * (a YAML error naming why): the store keeps serving the last good
 * configuration, or none and fails closed, and is not ready, instead of
 * serving half a cluster's policy. */
#define SYNCING_FILE KUBE_MIRROR_SYNCING

static void syncing_mark(const struct kube *k, bool on)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", k->dir, SYNCING_FILE);
    if (!on) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("# meshd --kube: the first list of every kind is not in yet; this file\n"
              "# goes once it is, and the configuration follows the API server.\n"
              "waiting for the API server: [\n",
              f);
        fclose(f);
    }
}

static void w_synced(struct watcher *w)
{
    if (w->synced)
        return;
    w->synced = true;
    if (++w->k->st.synced == w->k->st.kinds) {
        syncing_mark(w->k, false);
        k_hold(w->k, &w->k->sync_holding, false);
        log_info("kube: every kind listed: the configuration follows the API server");
    }
}

/* A page of 500 objects takes a second or more to mirror on a loaded
 * disk: it is mirrored in slices of this long, the loop running between
 * them (SIGTERM, the admin socket, the data path wait no longer). */
#define PAGE_SLICE_NS (20 * 1000000ull)

/* The rest of w->page into the mirror, or one slice of it (the watcher's
 * timer calls again); then the next page, or after the last the sweep of
 * what no page named, and the watch. */
static void apply_page(struct watcher *w)
{
    struct kube *k = w->k;
    json_t *items = json_object_get(w->page, "items"), *meta = json_object_get(w->page, "metadata");
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    const char *cont = json_string_value(json_object_get(meta, "continue"));
    char av[128];
    size_t n = json_array_size(items);
    uint64_t until = loop_now_ns() + PAGE_SLICE_NS;
    int err = 0;
    while (!err && w->page_i < n) {
        if (w->page_i % 8 == 0 && w->page_i && loop_now_ns() >= until) {
            k->st.page_slices++;
            arm(w, 0);
            return;
        }
        json_t *obj = json_array_get(items, w->page_i++);
        char name[320];
        if (kube_mirror_name(obj, name, sizeof(name)) != 0 ||
            kube_mirror_put(k->dir, kind_dir(w->kind), obj, api_version(w, av, sizeof(av)),
                            w->kind->kind) != 0) {
            k->st.bad_objects++;
            log_ratelimited(LOG_WARN, "kube: %s: an item without a valid name, skipped",
                            w->kind->resource);
            continue;
        }
        err = kube_list_add(&w->list, name);
    }
    int more = err ? err : kube_list_page(&w->list, rv, cont);
    page_drop(w);
    if (more < 0) {
        w_fail(w, more == -E2BIG ? "list: past its bound" : "list: a page that does not follow",
               more);
        return;
    }
    w->k->st.lists++;
    if (more) { /* the next page, at once */
        w_next(w, 0);
        return;
    }
    int gone = kube_list_sweep(&w->list, k->dir, kind_dir(w->kind));
    log_debug("kube: %s: listed %zu in %u page%s at %s (%d gone)", w->kind->resource, w->list.n,
              w->list.pages, w->list.pages == 1 ? "" : "s", w->list.rv, gone > 0 ? gone : 0);
    snprintf(w->rv, sizeof(w->rv), "%s", w->list.rv);
    w_list_reset(w);
    w_synced(w);
    kube_backoff_reset(&w->bo);
    w_next(w, 0);
}

/* One page of a list, parsed; the connection is done with. */
static void apply_list(struct watcher *w)
{
    size_t len;
    const char *body = kube_resp_body(&w->resp, &len);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *items = json_object_get(root, "items"), *meta = json_object_get(root, "metadata");
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (!json_is_array(items) || !rv || !kube_rv_valid(rv)) {
        json_decref(root);
        w_fail(w, "list: not a Kubernetes list", -EBADMSG);
        return;
    }
    w_close(w);
    page_drop(w);
    const char *cont = json_string_value(json_object_get(meta, "continue"));
    if (cont && *cont) /* more pages: one reload for them all */
        w_hold(w, true);
    w->page = root;
    apply_page(w);
}

static void on_line(void *ctx, const char *line, size_t len)
{
    struct watcher *w = ctx;
    struct kube *k = w->k;
    struct kube_event ev;
    char av[128];
    if (kube_event_parse(line, len, &ev) != 0) {
        k->st.bad_objects++;
        log_ratelimited(LOG_WARN, "kube: %s: a watch event that is not one, skipped",
                        w->kind->resource);
        return;
    }
    k->st.events++;
    switch (ev.type) {
    case KUBE_ERROR:
        log_info("kube: %s: watch ERROR %d", w->kind->resource, ev.code);
        if (ev.code == 410) {
            w->rv[0] = '\0'; /* Gone: relist when the stream ends */
            k->st.relists++;
            log_info("kube: %s: resourceVersion too old (410): relisting", w->kind->resource);
        }
        break;
    case KUBE_BOOKMARK:
        snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
        break;
    case KUBE_DELETED:
        kube_mirror_delete(k->dir, kind_dir(w->kind), ev.object);
        snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
        break;
    default:
        if (kube_mirror_put(k->dir, kind_dir(w->kind), ev.object, api_version(w, av, sizeof(av)),
                            w->kind->kind) != 0) {
            k->st.bad_objects++;
            log_ratelimited(LOG_WARN, "kube: %s: an object without a valid name, skipped",
                            w->kind->resource);
        }
        snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
    }
    kube_event_clear(&ev);
}

/* A watch that lived a while before it was cut is resumed at once; one
 * cut as soon as it started backs off (a server or proxy that cuts every
 * stream must not make a busy loop). */
static bool watch_lived(const struct watcher *w)
{
    return loop_now_ns() - w->started_ns >= 1000000000ull;
}

/* A complete response (or a watch the server ended). */
static void w_response(struct watcher *w)
{
    int status = w->resp.status;
    if (status == 200 && w->listing) {
        apply_list(w);
        return;
    }
    if (status == 200 && (w->rv[0] || watch_lived(w))) {
        /* The watch ended: resume from w->rv, or relist after a 410. */
        kube_backoff_reset(&w->bo);
        w_next(w, 0);
        return;
    }
    if (status == 200 || status == 410) {
        /* Gone again right after a list: the server's versions move faster
         * than we list, or it is broken; relist, but backing off. A 410
         * for a list's continue token (expired): the list from its start. */
        if (status == 410)
            w->k->st.relists++;
        if (status == 410 && w->list.pages)
            log_info("kube: %s: the list's continue token expired (410): listing again from "
                     "the first page",
                     w->kind->resource);
        w->rv[0] = '\0';
        w_list_reset(w);
        w_next(w, watch_lived(w) ? 0 : kube_backoff_next(&w->bo));
        return;
    }
    if (status == 404 && w->listing && !w->synced) {
        /* This version is not served: the next one, or none at all. */
        w_list_reset(w);
        if (w->version + 1 < 4 && w->kind->versions[w->version + 1]) {
            w->version++;
            w_next(w, 0);
            return;
        }
        if (!w->unserved)
            log_info("kube: %s: not served by this API server", w->kind->resource);
        w->unserved = true;
        w->version = 0;
        w_next(w, w->bo.cap_ms);
        w_synced(w); /* nothing to wait for */
        return;
    }
    char what[48];
    snprintf(what, sizeof(what), "%s: HTTP %d", w->listing ? "list" : "watch", status);
    w_fail(w, what, 0);
}

static void w_read(struct watcher *w)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) { /* fair to the other users of the loop */
        ssize_t n =
            w->tls_on ? tls_conn_read(&w->tls, buf, sizeof(buf)) : read(w->fd, buf, sizeof(buf));
        if (n < 0 && !w->tls_on)
            n = errno == EAGAIN ? -EAGAIN : -errno;
        if (n == -EAGAIN)
            return;
        /* A cut TLS stream (no close_notify) reads as an error: for a
         * watch, as a cut like any EOF. */
        if (n < 0 && w->resp.lines)
            n = 0;
        if (n == 0) {
            int err = kube_resp_eof(&w->resp);
            if (err == 0)
                w_response(w);
            else if (w->resp.status == 200 && !w->listing && watch_lived(w))
                w_next(w, 0); /* cut: resume from w->rv at once, as a watch that ended */
            else if (w->resp.status == 200 && !w->listing)
                w_fail(w, "watch cut", err); /* cut again at once: back off */
            else
                w_fail(w, "response cut", err);
            return;
        }
        if (n < 0) {
            w_fail(w, "read", (int)n);
            return;
        }
        int err = kube_resp_feed(&w->resp, buf, (size_t)n);
        if (err) {
            w_fail(w, err == -EMSGSIZE ? "response past its bound" : "not HTTP", err);
            return;
        }
        if (w->resp.complete) {
            w_response(w);
            return;
        }
    }
}

static void on_io(struct loop_io *io, uint32_t events)
{
    struct watcher *w = (struct watcher *)((char *)io - offsetof(struct watcher, io));
    struct kube *k = w->k;
    if (w->st == W_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr || (events & (EPOLLERR | EPOLLHUP))) {
            w_fail(w, "connect", soerr ? -soerr : -ECONNREFUSED);
            return;
        }
        if (k->ssl) {
            if (tls_conn_init(&w->tls, k->ssl, w->fd, false) != 0) {
                w_fail(w, "TLS", -ENOMEM);
                return;
            }
            w->tls_on = true;
            if (!k->t.insecure && !SSL_set1_host(w->tls.ssl, k->t.host)) {
                w_fail(w, "TLS host", -EINVAL);
                return;
            }
            if (!strchr(k->t.host, ':') && inet_addr(k->t.host) == INADDR_NONE)
                SSL_set_tlsext_host_name(w->tls.ssl, k->t.host);
            w->st = W_HANDSHAKE;
        } else {
            w->st = W_SENDING;
        }
    }
    if (w->st == W_HANDSHAKE) {
        int err = tls_conn_handshake(&w->tls);
        if (err == -EAGAIN) {
            loop_set(k->loop, &w->io, w->tls.want_write ? EPOLLOUT : EPOLLIN);
            return;
        }
        if (err) {
            w_fail(w, w->tls.error[0] ? w->tls.error : "TLS handshake", err);
            return;
        }
        w->st = W_SENDING;
    }
    if (w->st == W_SENDING) {
        while (w->req_off < w->req_len) {
            ssize_t n =
                w->tls_on ? tls_conn_write(&w->tls, w->req + w->req_off, w->req_len - w->req_off)
                          : send(w->fd, w->req + w->req_off, w->req_len - w->req_off, MSG_NOSIGNAL);
            if (n < 0 && !w->tls_on)
                n = errno == EAGAIN ? -EAGAIN : -errno;
            if (n == -EAGAIN) {
                loop_set(k->loop, &w->io, EPOLLOUT);
                return;
            }
            if (n <= 0) {
                w_fail(w, "write", n ? (int)n : -EPIPE);
                return;
            }
            w->req_off += (size_t)n;
        }
        if (w->tls_on && tls_conn_flush(&w->tls) == -EAGAIN) {
            loop_set(k->loop, &w->io, EPOLLOUT);
            return;
        }
        memset(w->req, 0, w->req_len); /* it held the token */
        w->st = W_READING;
        if (!w->listing)
            k->st.watches++;
        loop_set(k->loop, &w->io, EPOLLIN);
    }
    if (w->st == W_READING)
        w_read(w);
}

static void on_timer(struct loop_io *io, uint32_t events)
{
    (void)events;
    struct watcher *w = (struct watcher *)((char *)io - offsetof(struct watcher, timer));
    uint64_t n;
    if (read(io->fd, &n, sizeof(n)) < 0)
        return;
    if (w->st != W_WAIT) {
        w_fail(w, "no answer in time", -ETIMEDOUT);
        return;
    }
    if (w->page) { /* the next slice of a list page */
        apply_page(w);
        return;
    }
    w_start(w);
}

int kube_new(struct loop *loop, struct kube_target *target, const struct kube_opts *opts,
             struct kube **out)
{
    struct kube *k = calloc(1, sizeof(*k));
    if (!k) {
        kube_target_free(target);
        return -ENOMEM;
    }
    k->loop = loop;
    k->t = *target;
    memset(target, 0, sizeof(*target));
    k->dir = strdup(opts->mirror_dir);
    k->node = strdup(opts->node);
    k->hold = opts->hold;
    k->hold_ctx = opts->hold_ctx;
    int err = !k->dir || !k->node ? -ENOMEM : kube_resolve(&k->t, &k->addr, &k->addrlen);
    if (!err)
        err = kube_tls_ctx(&k->t, &k->ssl);
    if (err) {
        log_error("kube: API server %s:%u: %s", k->t.host, k->t.port,
                  err == -EINVAL ? "bad TLS material" : strerror(-err));
        kube_free(k);
        return err;
    }
    uint32_t cap = opts->backoff_cap_ms ? opts->backoff_cap_ms : 8000;
    for (size_t i = 0; i < NKINDS; i++) {
        struct watcher *w = &k->w[i];
        w->k = k;
        w->kind = &kinds[i];
        w->fd = -1;
        w->io.cb = on_io;
        w->timer.cb = on_timer;
        w->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        kube_backoff_init(&w->bo, 200, cap, loop_now_ns() ^ (i * 0x9e3779b97f4a7c15ull));
        if (w->timer.fd < 0 || (err = kube_mirror_prepare(k->dir, kind_dir(&kinds[i]))) != 0 ||
            loop_add(loop, &w->timer, EPOLLIN) != 0) {
            err = err ? err : -errno;
            log_error("kube: %s: %s", kinds[i].resource, strerror(-err));
            kube_free(k);
            return err;
        }
        k->st.kinds++;
        arm(w, 0);
    }
    syncing_mark(k, true);
    struct statfs fs;
    /* One file per object: on a disk file system with much churn a create
     * costs milliseconds of kernel time (ext4's inode allocator), a list of
     * thousands seconds; the DaemonSet's /run/meshd is tmpfs. */
    if (statfs(k->dir, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
        log_warn("kube: the mirror %s is not on tmpfs: lists of many objects are slower", k->dir);
    log_info("kube: watching %zu kinds at %s://%s:%u (Pods of node %s)", NKINDS,
             k->t.tls ? "https" : "http", k->t.host, k->t.port, k->node);
    *out = k;
    return 0;
}

void kube_free(struct kube *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < NKINDS; i++) {
        struct watcher *w = &k->w[i];
        if (!w->k)
            continue;
        w_close(w);
        page_drop(w);
        kube_list_reset(&w->list);
        if (w->timer.registered)
            loop_del(k->loop, &w->timer);
        if (w->timer.fd >= 0)
            close(w->timer.fd);
    }
    SSL_CTX_free(k->ssl);
    kube_target_free(&k->t);
    free(k->dir);
    free(k->node);
    free(k);
}

void kube_status(const struct kube *k, struct kube_status *out)
{
    *out = k->st;
}
