/* Leveled, rate-limited logging (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Process-wide by nature: set once from flags or the admin API. */
static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level log_get_level(void)
{
    return current_level;
}

int log_level_parse(const char *name)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
                                                                          : "?";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    /* clang 14's analyzer misreads va_start here (a known false positive). */
    vsnprintf(line, sizeof(line), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], line);
}

bool log_ratelimit_ok(struct log_ratelimit *rl, uint32_t burst)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t refill = (now - rl->last_ns) / 1000000000ull;
    if (rl->last_ns == 0 || refill > 0) {
        uint64_t t = rl->last_ns == 0 ? burst : rl->tokens + refill;
        rl->tokens = t > burst ? burst : (uint32_t)t;
        rl->last_ns = now;
    }
    if (rl->tokens == 0) {
        rl->suppressed++;
        return false;
    }
    rl->tokens--;
    return true;
}
