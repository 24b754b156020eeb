/* Loading YAML text through the real loader from a temporary directory,
 * for the config unit tests. */
#ifndef MESHD_TEST_CONFIG_FIXTURE_H
#define MESHD_TEST_CONFIG_FIXTURE_H

#include "config/config.h"

struct cfg_fixture {
    char dir[64];
    struct cfg_diags diags;
    struct cfg_snapshot *snap;
};

/* Writes `yaml` to DIR/input.yaml and loads DIR (asserts on I/O failure). */
void cfg_fixture_load(struct cfg_fixture *f, const char *yaml);
/* Loads, then runs the analyzers too. */
void cfg_fixture_analyze(struct cfg_fixture *f, const char *yaml);
/* The first diagnostic with this code, or NULL. */
const struct cfg_diag *cfg_fixture_diag(const struct cfg_fixture *f, const char *code);
/* Every diagnostic on stderr (for a failing test's log). */
void cfg_fixture_dump(const struct cfg_fixture *f);
void cfg_fixture_free(struct cfg_fixture *f);

#endif
