/* Offline analysis of a configuration snapshot, as `istioctl analyze`
 * does it, plus what meshd's data path cannot honour (with what it
 * does instead). Used by `meshctl analyze` and on every reload. */
#ifndef MESHD_CONFIG_ANALYZE_H
#define MESHD_CONFIG_ANALYZE_H

#include "config/config.h"

void cfg_analyze(const struct cfg_snapshot *s, struct cfg_diags *diags);

#endif
