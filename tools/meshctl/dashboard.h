/* meshctl dashboard kiali|jaeger|prometheus (as istioctl dashboard): a
 * local web server for the service graph, the trace collector and search,
 * or a Prometheus scraping every agent. */
#ifndef MESHCTL_DASHBOARD_H
#define MESHCTL_DASHBOARD_H

/* `agent` is meshctl's --agent (NULL: none given). argv[0] is "dashboard".
 * Returns the exit status. */
int ctl_dashboard(const char *agent, int argc, char **argv);

#endif
