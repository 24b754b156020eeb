/* The last good configuration, kept in the state directory.
 *
 * An agent restarted while one of the operator's files is broken must not
 * serve its enrolled pods less policy than they had (an empty snapshot is
 * PERMISSIVE and allow-all). So every applied load is also written to
 * <state-dir>/config-last-good/: the files of the snapshot under their
 * relative names, byte for byte as the loader read them (loading the copy
 * gives the same content-hash version), and the version in a hidden
 * .meshd-version (the loader skips hidden entries). The store serves it at
 * start when the operator's directory does not load (config/store.h).
 *
 * Writing: the loader hands each file's bytes to cfg_stage_file() on the
 * reload worker (never the event loop) into config-last-good.new/; a clean
 * load is swapped in with one rename (RENAME_EXCHANGE), so a crash leaves
 * the old copy or the new one whole, never a mix. Bounded: at most
 * CFG_PERSIST_MAX_BYTES of files; a larger configuration is not persisted
 * and the stale copy is removed (a restart then fails closed rather than
 * serve an older policy). */
#ifndef MESHD_CONFIG_PERSIST_H
#define MESHD_CONFIG_PERSIST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define CFG_PERSIST_DIR       "config-last-good"
#define CFG_PERSIST_MAX_BYTES (64u << 20)
#define CFG_PERSIST_MAX_FILES 10000

/* One staging of a load's files. */
struct cfg_stage {
    char dir[PATH_MAX];   /* <state>/config-last-good.new */
    char final[PATH_MAX]; /* <state>/config-last-good */
    size_t bytes, files;
    int err; /* the first failure; later files are not written */
};

/* Removes a leftover staging directory and makes a fresh one. 0 or -errno. */
int cfg_stage_begin(struct cfg_stage *st, const char *state_dir);
/* The loader's file hook (cfg_load_opts.file_read): writes one file. A
 * name with a ".." or absolute component, an I/O error or the size bound
 * sets st->err and stops the staging. */
void cfg_stage_file(void *st, const char *name, const char *buf, size_t len);
/* Records `version` and swaps the staging in place of the persisted copy.
 * On an earlier staging error, removes both (see above) and returns it. */
int cfg_stage_commit(struct cfg_stage *st, const char *version);
/* Discards the staging (a rejected load, or the same version as kept). */
void cfg_stage_abort(struct cfg_stage *st);

/* <state>/config-last-good into buf; NULL if too long. */
const char *cfg_persist_path(const char *state_dir, char *buf, size_t len);
/* The persisted version (16 hex digits) into out; -ENOENT if none. */
int cfg_persist_version(const char *state_dir, char *out, size_t len);
/* Removes the persisted copy and any staging (uninstall). 0 or -errno. */
int cfg_persist_remove(const char *state_dir);

#endif
