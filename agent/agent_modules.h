/* The agent's modules in start-up order (private to agent.c and
 * agent_modules.c).
 *
 * agent_run starts the modules in table order and stops a failed or a
 * finished run in two passes, each in reverse order: `stop` ends what
 * still flows (servers closed, pods handed over, tunnels and then
 * connections reset: their records still reach the modules below), then
 * `free` releases what is left once nothing refers to it (the proxies,
 * whose connections conns owned, telemetry, capture, configuration).
 * Every step accepts a module that never started. A module's pod hooks
 * attach in table order and detach in reverse: the pod's identity before
 * its proxies, its HBONE server last. */
#ifndef MESHD_AGENT_MODULES_H
#define MESHD_AGENT_MODULES_H

#include <stdbool.h>
#include <stdint.h>

#include "admin/commands.h"
#include "agent.h"
#include "core/loop.h"
#include "core/ticker.h"
#include "enroll/pods.h"
#include "policy/admit.h"

struct inbound;
struct kube;

struct agent {
    const struct agent_opts *opts;
    struct loop *loop;
    struct admin_view v; /* the running modules, as the admin side sees them */
    struct inbound *inbound;
    struct kube *kube;                 /* --kube: the API watchers */
    struct http_proxy *http_proxy;     /* the HTTP carrier (with a mesh) */
    struct http_inbound *http_inbound; /* its destination side: policy per request */
    struct admit_gate gate;
    struct ticker ticker;
    struct loop_io signal_io;
    struct ticker drain_ticker;
    uint64_t drain_deadline_ns; /* 0: not draining */
    char cgroup_path[256];
    char pin_dir[384];
    struct gateway *gateway; /* the ingress gateway (with a mesh) */
    struct tracer *tracer;   /* --trace-collector: spans per request; NULL: none */
};

struct agent_module {
    const char *name;
    int (*start)(struct agent *ag); /* 0, or nonzero (logged): start-up ends; NULL: none */
    void (*stop)(struct agent *ag); /* NULL: nothing flows through it */
    void (*free)(struct agent *ag); /* NULL: stop released everything */
    /* Fills the module's per-pod hooks; false: none (not running). */
    bool (*pod_hooks)(struct agent *ag, struct pod_hooks *out);
    void (*tick)(struct agent *ag, uint64_t now_ns); /* every second */
};

extern const struct agent_module agent_modules[];
extern const size_t agent_nmodules;

#endif
