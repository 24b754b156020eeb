/* The kernel side of tests/vm/bpf_probe.sh: asks the running kernel about
 * exactly the BPF features named on the command line, with libbpf's
 * probes (one tiny program or map each, so it is quick even under qemu
 * TCG, where `bpftool feature probe` takes a minute).
 *
 *   bpf_probe prog TYPE | map TYPE | helper PROG_TYPE ID  ...
 *
 * TYPE is libbpf's name (libbpf_bpf_prog_type_str, libbpf_bpf_map_type_str:
 * "sk_lookup", "ringbuf"); ID a helper's number (bpf_helper_defs.h). Prints
 * one line per question, "<question> yes" or "<question> no", and exits 0;
 * 2 on a malformed question or when the probe itself fails (no BPF at all,
 * no privilege), with the error.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prog_type_of(const char *name)
{
    for (int t = 0; t < 256; t++) {
        const char *s = libbpf_bpf_prog_type_str((enum bpf_prog_type)t);
        if (s && strcmp(s, name) == 0)
            return t;
    }
    return -1;
}

static int map_type_of(const char *name)
{
    for (int t = 0; t < 256; t++) {
        const char *s = libbpf_bpf_map_type_str((enum bpf_map_type)t);
        if (s && strcmp(s, name) == 0)
            return t;
    }
    return -1;
}

/* Prints the answer for libbpf's probe result r (1 yes, 0 no, <0 error). */
static int answer(const char *what, const char *arg, const char *arg2, int r)
{
    if (r < 0) {
        fprintf(stderr, "bpf_probe: %s %s%s%s: %s\n", what, arg, arg2 ? " " : "", arg2 ? arg2 : "",
                strerror(-r));
        return 2;
    }
    printf("%s %s%s%s %s\n", what, arg, arg2 ? " " : "", arg2 ? arg2 : "", r ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    while (i < argc) {
        const char *what = argv[i];
        int r, t;
        if (strcmp(what, "prog") == 0 && i + 1 < argc) {
            /* A type this libbpf does not know: the kernel cannot have it. */
            t = prog_type_of(argv[i + 1]);
            r = t < 0 ? 0 : libbpf_probe_bpf_prog_type((enum bpf_prog_type)t, NULL);
            if (answer(what, argv[i + 1], NULL, r))
                return 2;
            i += 2;
        } else if (strcmp(what, "map") == 0 && i + 1 < argc) {
            t = map_type_of(argv[i + 1]);
            r = t < 0 ? 0 : libbpf_probe_bpf_map_type((enum bpf_map_type)t, NULL);
            if (answer(what, argv[i + 1], NULL, r))
                return 2;
            i += 2;
        } else if (strcmp(what, "helper") == 0 && i + 2 < argc) {
            char *end;
            long id = strtol(argv[i + 2], &end, 10);
            if ((t = prog_type_of(argv[i + 1])) < 0 || *end || id <= 0 || id > 4096) {
                fprintf(stderr, "bpf_probe: bad helper question %s %s\n", argv[i + 1], argv[i + 2]);
                return 2;
            }
            r = libbpf_probe_bpf_helper((enum bpf_prog_type)t, (enum bpf_func_id)id, NULL);
            if (answer(what, argv[i + 1], argv[i + 2], r))
                return 2;
            i += 3;
        } else {
            fprintf(stderr, "usage: bpf_probe prog TYPE | map TYPE | helper PROG_TYPE ID ...\n");
            return 2;
        }
    }
    return 0;
}
