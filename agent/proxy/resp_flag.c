/* The one name table of response flags (see resp_flag.h). */
#include "proxy/resp_flag.h"

static const char *const names[RESP_FLAG_COUNT] = {
    [RESP_FLAG_NONE] = "-",         [RESP_FLAG_UF] = "UF",   [RESP_FLAG_UT] = "UT",
    [RESP_FLAG_UC] = "UC",          [RESP_FLAG_DC] = "DC",   [RESP_FLAG_UO] = "UO",
    [RESP_FLAG_UH] = "UH",          [RESP_FLAG_NR] = "NR",   [RESP_FLAG_DENY] = "DENY",
    [RESP_FLAG_SELF_CALL] = "SELF", [RESP_FLAG_FI] = "FI",   [RESP_FLAG_DI] = "DI",
    [RESP_FLAG_URX] = "URX",        [RESP_FLAG_DPE] = "DPE", [RESP_FLAG_SI] = "SI",
};

const char *resp_flag_name(enum resp_flag f)
{
    return (unsigned)f < RESP_FLAG_COUNT ? names[f] : "?";
}

bool resp_flag_is_connect_failure(enum resp_flag f)
{
    return f == RESP_FLAG_UF || f == RESP_FLAG_UT;
}
