/* Istio's workload labels from the configuration: what
 * tcp_labels_from_record() cannot know from the connection alone.
 *
 *   workload            the Deployment selecting the pod, else the pod name
 *   app, version        labels app / version (app.kubernetes.io/name|version)
 *   canonical service   service.istio.io/canonical-name, else app, else the workload
 *   canonical revision  service.istio.io/canonical-revision, else version, else "latest"
 *   principal           spiffe://<trust domain>/ns/<ns>/sa/<service account>
 *   destination service the Service the client addressed (outbound), else the
 *                       first Service selecting the destination pod
 * The local pod comes from the record's "ns/name", the peer from its
 * address (the endpoint for outbound, the client for inbound). */
#ifndef MESHD_TELEMETRY_WORKLOAD_LABELS_H
#define MESHD_TELEMETRY_WORKLOAD_LABELS_H

#include "config/config.h"
#include "telemetry/tcp_metrics.h"

struct conn_record;

void tcp_labels_from_config(const struct cfg_snapshot *s, const char *trust_domain,
                            const struct conn_record *rec, struct tcp_labels *l);

#endif
