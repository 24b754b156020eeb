/* Where meshctl dashboard's data comes from: the agents' control sockets
 * (status for the node name, "metrics" for the exposition, connections),
 * or a Prometheus server's /federate over plain HTTP (a small bounded GET
 * client: http:// only, DASH_GET_MAX bytes, DASH_GET_MS to answer). */
#ifndef MESHCTL_DASH_SOURCES_H
#define MESHCTL_DASH_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "promtext.h"

#define DASH_MAX_AGENTS 64
#define DASH_GET_MAX    (32u << 20)
#define DASH_GET_MS     5000
#define DASH_MAX_CONNS  50 /* recent connections per agent shown */

struct dash_agents {
    const char *sock[DASH_MAX_AGENTS]; /* borrowed: argv or the glob's strings */
    char node[DASH_MAX_AGENTS][254];   /* a node name: 253 at most */
    bool up[DASH_MAX_AGENTS];
    size_t n;
};

/* Adds `sock` (false past DASH_MAX_AGENTS). */
bool dash_agents_add(struct dash_agents *a, const char *sock);
/* With none given: every /run/meshd/NODE/meshd.sock. */
void dash_agents_discover(struct dash_agents *a);
/* Asks each for its status: the node names and which answer. Returns how
 * many answered. */
size_t dash_agents_probe(struct dash_agents *a);

/* Agent i's exposition text (malloc'd, *len set) or NULL. */
char *dash_agent_metrics(const struct dash_agents *a, size_t i, size_t *len);
/* All answering agents' samples into set (origin = the agent's index). */
void dash_scrape_agents(struct dash_agents *a, struct prom_set *set);
/* Prometheus's latest istio_* samples (/federate) into set; 0 or -errno
 * with the reason in err. */
int dash_scrape_prometheus(const char *base_url, struct prom_set *set, char *err, size_t errlen);
/* The newest DASH_MAX_CONNS connections of agent i, each with "node". */
json_t *dash_agent_connections(const struct dash_agents *a, size_t i);

/* GET url (http://host[:port]/path); body malloc'd and NUL-terminated. */
int dash_http_get(const char *url, char **body, size_t *len, int *status, char *err, size_t errlen);

#endif
