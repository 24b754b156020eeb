/* Watching a configuration directory tree for changes (inotify), with a
 * debounce: an editor's save or a `kubectl cp` produce bursts of events; the
 * callback runs once, `debounce_ms` after the last of them. New
 * subdirectories are watched as they appear. Bounded: at most
 * DIRWATCH_MAX_DIRS directories. */
#ifndef MESHD_CORE_DIRWATCH_H
#define MESHD_CORE_DIRWATCH_H

#include "core/loop.h"

#define DIRWATCH_MAX_DIRS 1024

struct dirwatch;
typedef void (*dirwatch_cb)(void *ctx);

int dirwatch_new(struct loop *loop, const char *root, unsigned debounce_ms, dirwatch_cb cb,
                 void *ctx, struct dirwatch **out);
void dirwatch_free(struct dirwatch *w);
/* As if the tree changed now: the callback runs debounce_ms from now, or
 * after the last change that follows. */
void dirwatch_poke(struct dirwatch *w);

#endif
