/* meshctl proxy-config routes and meshctl authn tls-check (istioctl's
 * commands of those names): the configuration explained for one workload,
 * from the agent (`agent`, a control socket path) or offline with -f. */
#ifndef MESHCTL_EXPLAIN_H
#define MESHCTL_EXPLAIN_H

/* argv[0] is "routes" / "authn". Exit status 0, 1 on failure, 2 usage. */
int ctl_proxy_routes(const char *agent, int argc, char **argv, int json);
int ctl_tls_check(const char *agent, int argc, char **argv, int json);

#endif
