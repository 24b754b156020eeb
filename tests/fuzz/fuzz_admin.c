/* libFuzzer driver: the control socket's JSON request dispatch. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin/admin.h"

static json_t *echo(void *ctx, const json_t *req, char *err, size_t errlen)
{
    const char *pod = json_string_value(json_object_get(req, "pod"));
    if (!pod) {
        snprintf(err, errlen, "need pod");
        return NULL;
    }
    return json_pack("{s:s}", "pod", pod);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct admin_command cmds[] = {{"enroll", echo, NULL}, {"pods", echo, NULL}};
    if (size > ADMIN_MAX_REQUEST)
        return 0;
    json_decref(admin_dispatch(cmds, 2, (const char *)data, size));
    return 0;
}
