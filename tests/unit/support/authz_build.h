/* Compound-literal builders for the AuthorizationPolicy evaluator's
 * tests (policy/authz.h): a policy written as a table row, e.g.
 *   {.name = "p", .action = AUTHZ_DENY, RULES({TO({.paths = STRS("/admin*")})})}
 * Everything lives as long as the enclosing scope. */
#ifndef MESHD_TEST_AUTHZ_BUILD_H
#define MESHD_TEST_AUTHZ_BUILD_H

#include "policy/authz.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STRS(...)                                                                                  \
    ((struct authz_strings){(const char *const[]){__VA_ARGS__},                                    \
                            LEN(((const char *const[]){__VA_ARGS__}))})
#define PORTS(...)                                                                                 \
    ((struct authz_ports){(const uint16_t[]){__VA_ARGS__}, LEN(((const uint16_t[]){__VA_ARGS__}))})
#define FROM(...)                                                                                  \
    .from = (const struct authz_source[]){__VA_ARGS__},                                            \
    .nfrom = LEN(((const struct authz_source[]){__VA_ARGS__}))
#define TO(...)                                                                                    \
    .to = (const struct authz_operation[]){__VA_ARGS__},                                           \
    .nto = LEN(((const struct authz_operation[]){__VA_ARGS__}))
#define WHEN(...)                                                                                  \
    .when = (const struct authz_condition[]){__VA_ARGS__},                                         \
    .nwhen = LEN(((const struct authz_condition[]){__VA_ARGS__}))
#define RULES(...)                                                                                 \
    .rules = (const struct authz_rule[]){__VA_ARGS__},                                             \
    .nrules = LEN(((const struct authz_rule[]){__VA_ARGS__}))

#endif
