/* Leveled logging to stderr: one line per event, with the subject first.
 *
 * Every line is "LEVEL subsystem: message". Anything a peer can trigger goes
 * through log_ratelimited() so a hostile client cannot flood the journal. */
#ifndef MESHD_CORE_LOG_H
#define MESHD_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

/* A token bucket per call site: at most `burst` lines, refilled at one per
 * second. Returns true when the caller may log; counts what it suppresses. */
struct log_ratelimit {
    uint64_t last_ns;
    uint32_t tokens;
    uint32_t suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, uint32_t burst);

#define log_ratelimited(level, ...)                                                                \
    do {                                                                                           \
        static struct log_ratelimit rl_; /* per call site; single-threaded loop */                 \
        if (log_ratelimit_ok(&rl_, 10))                                                            \
            log_msg(level, __VA_ARGS__);                                                           \
    } while (0)

#endif
