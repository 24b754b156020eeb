/* meshd-cni's parsing (tools/meshd-cni/cni.c): the runtime's environment
 * and CNI_ARGS give the command, the container, the netns and the pod's
 * namespace, name and UID, and every malformed one is refused with the
 * spec's error code (4: environment, 6: decoding, 1: version, 7: config);
 * ADD's result is the previous plugin's with the config's version;
 * VERSION lists 1.0 and 1.1; the conflist edit puts our entry last, once,
 * turns a .conf into a list, and removes only ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../tools/meshd-cni/cni.h"

/* The test's environment: NAME=VALUE strings. */
static const char *const *env_now;

static const char *env(const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = env_now; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

#define CONF_OK                                                                                    \
    "{\"cniVersion\":\"1.0.0\",\"name\":\"pods\",\"type\":\"meshd-cni\","                          \
    "\"prevResult\":{\"interfaces\":[{\"name\":\"eth0\"}],\"ips\":[]}}"

struct parse_case {
    const char *name;
    const char *env[8];
    const char *conf;
    int code;
    const char *msg; /* part of the message */
};

static void test_parse_errors_and_codes(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {"no command", {NULL}, CONF_OK, CNI_ERR_ENV, "CNI_COMMAND"},
        {"unknown command", {"CNI_COMMAND=FLY"}, CONF_OK, CNI_ERR_ENV, "CNI_COMMAND"},
        {"ADD without a container",
         {"CNI_COMMAND=ADD", "CNI_NETNS=/n", "CNI_IFNAME=eth0"},
         CONF_OK,
         CNI_ERR_ENV,
         "CNI_CONTAINERID"},
        {"ADD without an interface",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_NETNS=/n"},
         CONF_OK,
         CNI_ERR_ENV,
         "CNI_IFNAME"},
        {"ADD with a relative netns",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=n"},
         CONF_OK,
         CNI_ERR_ENV,
         "absolute"},
        {"CHECK without a netns",
         {"CNI_COMMAND=CHECK", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0"},
         CONF_OK,
         CNI_ERR_ENV,
         "absolute"},
        {"config not JSON",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=/n"},
         "{nope",
         CNI_ERR_DECODE,
         "network configuration"},
        {"config not an object",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=/n"},
         "[1]",
         CNI_ERR_DECODE,
         "not a JSON object"},
        {"duplicate keys",
         {"CNI_COMMAND=DEL", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0"},
         "{\"cniVersion\":\"1.0.0\",\"cniVersion\":\"1.1.0\"}",
         CNI_ERR_DECODE,
         "network configuration"},
        {"an old version",
         {"CNI_COMMAND=STATUS"},
         "{\"cniVersion\":\"0.2.0\"}",
         CNI_ERR_VERSION,
         "0.2.0"},
        {"no version", {"CNI_COMMAND=GC"}, "{}", CNI_ERR_VERSION, "cniVersion"},
        {"a relative socket",
         {"CNI_COMMAND=STATUS"},
         "{\"cniVersion\":\"1.1.0\",\"socket\":\"meshd.sock\"}",
         CNI_ERR_CONFIG,
         "socket"},
        {"a socket not a string",
         {"CNI_COMMAND=STATUS"},
         "{\"cniVersion\":\"1.1.0\",\"socket\":7}",
         CNI_ERR_CONFIG,
         "socket"},
        {"prevResult not an object",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=/n"},
         "{\"cniVersion\":\"1.0.0\",\"prevResult\":[]}",
         CNI_ERR_CONFIG,
         "prevResult"},
        {"bad CNI_ARGS",
         {"CNI_COMMAND=ADD", "CNI_CONTAINERID=c", "CNI_IFNAME=eth0", "CNI_NETNS=/n",
          "CNI_ARGS=K8S_POD_NAMESPACE"},
         CONF_OK,
         CNI_ERR_ENV,
         "KEY=VALUE"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        env_now = cases[i].env;
        struct cni_req req;
        char msg[512] = "";
        int code = cni_parse(env, cases[i].conf, strlen(cases[i].conf), &req, msg, sizeof(msg));
        if (code != cases[i].code || !strstr(msg, cases[i].msg))
            fail_msg("%s: code %d \"%s\", want %d \"%s\"", cases[i].name, code, msg, cases[i].code,
                     cases[i].msg);
        assert_null(req.conf);
    }
}

static void test_add_parsed_and_result_passed_through(void **state)
{
    (void)state;
    static const char *const e[] = {
        "CNI_COMMAND=ADD",
        "CNI_CONTAINERID=abc",
        "CNI_IFNAME=eth0",
        "CNI_NETNS=/var/run/netns/cni-1",
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=payments-v1-7d9;"
        "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=0b5e-11ef-9a",
        NULL};
    env_now = e;
    struct cni_req req;
    char msg[512];
    assert_int_equal(cni_parse(env, CONF_OK, strlen(CONF_OK), &req, msg, sizeof(msg)), 0);
    assert_int_equal(req.cmd, CNI_ADD);
    assert_string_equal(req.pod_ns, "shop");
    assert_string_equal(req.pod_name, "payments-v1-7d9");
    assert_string_equal(req.pod_uid, "0b5e-11ef-9a");
    assert_string_equal(req.netns, "/var/run/netns/cni-1");
    assert_string_equal(req.socket, CNI_SOCKET_DEFAULT);
    assert_string_equal(req.cni_version, "1.0.0");
    json_t *res = cni_add_result(&req);
    assert_string_equal(json_string_value(json_object_get(res, "cniVersion")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(res, "interfaces"), 0), "name")),
                        "eth0");
    json_decref(res);
    cni_req_free(&req);
    /* DEL without a netns (the sandbox is gone) and no prevResult. */
    static const char *const d[] = {"CNI_COMMAND=DEL", "CNI_CONTAINERID=abc", "CNI_IFNAME=eth0",
                                    NULL};
    env_now = d;
    const char conf[] = "{\"cniVersion\":\"1.1.0\",\"socket\":\"/run/meshd/n1/meshd.sock\"}";
    assert_int_equal(cni_parse(env, conf, strlen(conf), &req, msg, sizeof(msg)), 0);
    assert_int_equal(req.cmd, CNI_DEL);
    assert_null(req.netns);
    assert_string_equal(req.pod_ns, "");
    assert_string_equal(req.socket, "/run/meshd/n1/meshd.sock");
    assert_null(cni_add_result(&req)); /* not chained: no result to pass on */
    cni_req_free(&req);
}

struct args_case {
    const char *args;
    int code;
};

static void test_cni_args_table(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const struct args_case cases[] = {
        {"", 0},
        {"IgnoreUnknown=1", 0},
        {"K8S_POD_NAMESPACE=a;K8S_POD_NAME=b", 0},
        {"K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;;", 0},
        {"K8S_POD_NAMESPACE=a", CNI_ERR_ENV}, /* a name too */
        {"K8S_POD_NAME=b", CNI_ERR_ENV},      /* a namespace too */
        {"K8S_POD_NAMESPACE=A;K8S_POD_NAME=b", CNI_ERR_ENV},
        {"K8S_POD_NAMESPACE=a.b;K8S_POD_NAME=b", CNI_ERR_ENV}, /* a label, no dots */
        {"K8S_POD_NAMESPACE=a;K8S_POD_NAME=../x", CNI_ERR_ENV},
        {"K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=XYZ", CNI_ERR_ENV},
        {"K8S_POD_NAMESPACE=a;K8S_POD_NAMESPACE=c;K8S_POD_NAME=b", CNI_ERR_ENV},
        {"K8S_POD_NAMESPACE=;K8S_POD_NAME=b", CNI_ERR_ENV},
        {"garbage", CNI_ERR_ENV},
        {big, CNI_ERR_ENV},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cni_req req = {0};
        char msg[256] = "";
        int code = cni_parse_args(cases[i].args, &req, msg, sizeof(msg));
        if (code != cases[i].code)
            fail_msg("\"%.40s\": %d (%s), want %d", cases[i].args, code, msg, cases[i].code);
        if (code)
            assert_true(msg[0] != '\0');
    }
}

static void test_versions_and_errors(void **state)
{
    (void)state;
    assert_true(cni_version_supported("1.0.0"));
    assert_true(cni_version_supported("1.1.0"));
    assert_false(cni_version_supported("2.0.0"));
    assert_false(cni_version_supported(NULL));
    json_t *v = cni_version_result();
    char *s = json_dumps(v, JSON_COMPACT);
    assert_non_null(strstr(s, "\"1.0.0\",\"1.1.0\""));
    free(s);
    json_decref(v);
    json_t *e = cni_error("9.9", CNI_ERR_TRY_LATER, "m", NULL);
    assert_string_equal(json_string_value(json_object_get(e, "cniVersion")), "1.1.0");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 11);
    json_decref(e);
}

static void test_conflist_edit(void **state)
{
    (void)state;
    json_t *list = json_loads("{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"plugins\":["
                              "{\"type\":\"bridge\"},{\"type\":\"meshd-cni\",\"socket\":\"/old\"},"
                              "{\"type\":\"portmap\"}]}",
                              0, NULL);
    json_t *out = cni_conflist_insert(list, "/run/meshd/meshd.sock");
    char *s = json_dumps(json_object_get(out, "plugins"), JSON_COMPACT);
    assert_string_equal(s, "[{\"type\":\"bridge\"},{\"type\":\"portmap\"},"
                           "{\"type\":\"meshd-cni\",\"socket\":\"/run/meshd/meshd.sock\"}]");
    free(s);
    json_t *again = cni_conflist_insert(out, "/run/meshd/meshd.sock");
    assert_true(json_equal(again, out)); /* idempotent */
    json_t *gone = cni_conflist_remove(again);
    s = json_dumps(json_object_get(gone, "plugins"), JSON_COMPACT);
    assert_string_equal(s, "[{\"type\":\"bridge\"},{\"type\":\"portmap\"}]");
    free(s);
    json_decref(list);
    json_decref(out);
    json_decref(again);
    json_decref(gone);
    json_t *conf =
        json_loads("{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"type\":\"bridge\"}", 0, NULL);
    out = cni_conflist_insert(conf, "/s");
    s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"plugins\":["
                           "{\"type\":\"bridge\"},{\"socket\":\"/s\",\"type\":\"meshd-cni\"}]}");
    free(s);
    json_decref(out);
    json_decref(conf);
    json_t *junk = json_loads("{\"foo\":1}", 0, NULL);
    assert_null(cni_conflist_insert(junk, "/s"));
    json_decref(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors_and_codes),
        cmocka_unit_test(test_add_parsed_and_result_passed_through),
        cmocka_unit_test(test_cni_args_table),
        cmocka_unit_test(test_versions_and_errors),
        cmocka_unit_test(test_conflist_edit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
