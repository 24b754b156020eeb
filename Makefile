# meshd — one entry point for building, testing and running the mesh agent.
#
#   make            build build/meshd and build/meshctl (BPF objects + skeletons)
#   make test       unit tests (cmocka) then end-to-end tests in network namespaces
#   make demo       two-node topology, real curl through the mesh, then clean up
#   make bench      benchmarks with a baseline measured in the same run
#   make deps       install every build/test dependency from Debian (idempotent)
#   make vmtest     the kernel matrix: e2e tests in qemu on Debian's 6.1 and 6.12
#                   (and the host's) kernels, and two guests across two kernels
#   make vmlinux    regenerate vmlinux/<arch>/vmlinux.h from the running kernel's BTF
#   make lint       clang-format check, no call cycles between files, cppcheck, clang-tidy
#   make image      the container image of deploy/Containerfile (buildah; skips where none runs)
#
# Options: V=1 (show commands), SANITIZE=1 (ASan+UBSan build in build-san/).

ARCH      ?= $(shell uname -m)
BPF_ARCH  := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))
SANITIZE  ?= 0
BUILD     ?= $(if $(filter 1,$(SANITIZE)),build-san,build)

CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

PKGS      := libbpf libelf zlib openssl yaml-0.1 jansson libnghttp2 libmnl libpcre2-8
# llhttp (Node's HTTP/1 parser) as Debian's node-llhttp ships it: C sources
# to build into the agent, not a library.
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wno-unused-parameter -fno-strict-aliasing \
             -D_GNU_SOURCE -Iinclude -Iagent -I$(BUILD) -Itests/unit -I$(LLHTTP_INC) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -lssl -lcrypto -lyaml -ljansson -lnghttp2 -lmnl -lpcre2-8) -lpthread
ifeq ($(SANITIZE),1)
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
              -Iinclude -Ibpf -Ivmlinux/$(ARCH)

# Sources are found, not listed: a new module is a new file in its folder.
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
LIB_SRCS   := $(filter-out agent/main.c,$(wildcard agent/*.c agent/*/*.c))
LIB_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
CTL_SRCS   := $(wildcard tools/meshctl/*.c)
CTL_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(CTL_SRCS))
CNI_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/meshd-cni/*.c)) \
              $(BUILD)/tools/meshctl/agent_client.o $(BUILD)/agent/core/k8sname.o
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TEST_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/support/*.c))
LIBMESHD   := $(BUILD)/libmeshd.a
LLHTTP_OBJS := $(patsubst %,$(BUILD)/llhttp/%.o,api http llhttp)

.PHONY: all test unit e2e demo bench deps vmlinux lint format clean fuzz vmtest image FORCE
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BUILD)/meshd $(BUILD)/meshctl $(BUILD)/meshd-cni

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/lib/*.h include/meshd/*.h) vmlinux/$(ARCH)/vmlinux.h
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name meshd_$* > $@

# Every agent object may include a skeleton: build those first.
$(LIB_OBJS) $(BUILD)/agent/main.o $(CTL_OBJS): | $(SKELS)

$(BUILD)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Generated C: its own warnings, not ours.
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -I$(LLHTTP_INC) $(filter -fsanitize% -fno-omit% -fno-sanitize%,$(CFLAGS)) -c $< -o $@

$(LIBMESHD): $(LIB_OBJS) $(LLHTTP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/meshd: $(BUILD)/agent/main.o $(LIBMESHD)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# meshctl dashboard's web app, with cytoscape vendored from npm (make deps)
# at build time; without it the graph page says how to get it.
CYTOSCAPE := $(firstword $(wildcard tests/node/node_modules/cytoscape/dist/cytoscape.min.js) \
                         tools/meshctl/web/no-cytoscape.js)
WEB_SRCS  := $(filter-out %/no-cytoscape.js,$(wildcard tools/meshctl/web/*))
# Which cytoscape was embedded, rewritten only when that changes: the file
# npm extracts keeps its package's old mtime, so a timestamp alone would
# keep the stub embedded after make deps.
$(BUILD)/tools/meshctl/cytoscape.src: FORCE
	@mkdir -p $(@D)
	@echo '$(CYTOSCAPE)' | cmp -s - $@ || echo '$(CYTOSCAPE)' > $@
FORCE:
$(BUILD)/tools/meshctl/assets.c: tools/meshctl/embed.sh $(WEB_SRCS) $(CYTOSCAPE) \
                                 $(BUILD)/tools/meshctl/cytoscape.src
	$(call msg,EMBED,$@)
	@mkdir -p $(@D)
	$(Q)tools/meshctl/embed.sh $(WEB_SRCS) cytoscape.min.js=$(CYTOSCAPE) > $@
$(BUILD)/tools/meshctl/assets.o: $(BUILD)/tools/meshctl/assets.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itools/meshctl -c $< -o $@

# The dashboard's C modules are unit-tested apart from meshctl's main.
$(BUILD)/tests/test_dash_graph: $(BUILD)/tools/meshctl/graph.o $(BUILD)/tools/meshctl/promtext.o
$(BUILD)/tests/test_dash_traces: $(BUILD)/tools/meshctl/traces.o

$(BUILD)/meshctl: $(CTL_OBJS) $(BUILD)/tools/meshctl/assets.o $(LIBMESHD)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The CNI plugin: the runtime runs it, it asks meshd over the admin socket.
$(BUILD)/meshd-cni: $(CNI_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The copy its install step puts on the host (an image's libraries are not
# the host's): static.
$(BUILD)/meshd-cni-static: $(CNI_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -static $^ -ljansson -o $@

# Its parsing, unit-tested (the plugin's object before the library it uses).
$(BUILD)/tests/test_cni_args: $(BUILD)/tests/unit/test_cni_args.o $(BUILD)/tools/meshd-cni/cni.o \
		$(LIBMESHD)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -lm -o $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_SUPPORT_OBJS) $(LIBMESHD)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -lm -o $@

# The README's two commands work on a fresh machine: both install what is
# missing first (a no-op taking a fraction of a second once installed).
test: deps
	$(Q)$(MAKE) --no-print-directory unit e2e

unit: $(UNIT_BINS)
	$(Q)tests/unit/run.sh $(UNIT_BINS)

# Test-only BPF objects (e.g. a tc program that drops packets).
E2E_BPF := $(patsubst tests/e2e/bpf/%.bpf.c,$(BUILD)/tests/bpf/%.bpf.o,$(wildcard tests/e2e/bpf/*.bpf.c))
$(BUILD)/tests/bpf/%.bpf.o: tests/e2e/bpf/%.bpf.c vmlinux/$(ARCH)/vmlinux.h
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

e2e: all $(E2E_BPF) $(BUILD)/meshd-cni-static
	$(Q)MESHD_BUILD=$(BUILD) MESHD_SANITIZE=$(SANITIZE) tests/e2e/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)MESHD_BUILD=$(BUILD) tests/e2e/demo.sh

$(BUILD)/bench/hbone_tunnel: bench/hbone_tunnel.c $(BUILD)/tests/unit/support/tls_fixture.o $(LIBMESHD)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/decisions: bench/decisions.c $(LIBMESHD)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/config_load: bench/config_load.c $(LIBMESHD)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

bench: all $(BUILD)/bench/hbone_tunnel $(BUILD)/bench/decisions $(BUILD)/bench/config_load
	$(Q)$(BUILD)/bench/config_load
	$(Q)$(BUILD)/bench/decisions
	$(Q)$(BUILD)/bench/hbone_tunnel
	$(Q)MESHD_BUILD=$(BUILD) bench/run.sh

deps:
	$(Q)tools/deps.sh

fuzz: all
	$(Q)tests/fuzz/run.sh

# The kernel matrix's BPF feature probe (tests/vm/bpf_probe.sh runs it).
$(BUILD)/tests/vm_bpf_probe: tests/vm/bpf_probe.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< -o $@ -lbpf

vmtest: all $(BUILD)/tests/vm_bpf_probe
	$(Q)MESHD_BUILD=$(BUILD) tests/vm/matrix.sh

# deploy/Containerfile from the built binaries and Debian's files (no
# registry): tools/image.sh says what it did, or why it skipped.
image: all $(BUILD)/meshd-cni-static
	$(Q)MESHD_BUILD=$(BUILD) tools/image.sh

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

TIDY_FLAGS = $(filter-out -MMD -MP -Werror,$(CFLAGS))
SKEL_USERS = $(shell grep -l 'skel\.h"' $(LIB_SRCS))
FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' | grep -v '^vmlinux/')
format:
	clang-format -i $(FORMAT_SRCS)

lint: all
	$(Q)clang-format --dry-run -Werror $(FORMAT_SRCS)
	$(Q)tools/depgraph.sh $(BUILD)
	$(Q)cppcheck --quiet --error-exitcode=1 --inline-suppr --enable=warning,portability \
		--suppress=unknownMacro --suppress=missingIncludeSystem \
		--std=c11 -D__GNUC__ -Iinclude -Iagent agent tools tests/unit
	$(Q)clang-tidy --quiet $(filter-out $(SKEL_USERS),$(LIB_SRCS)) agent/main.c \
		$(CTL_SRCS) $(wildcard tools/meshd-cni/*.c) -- $(TIDY_FLAGS) 2>/dev/null
	@# The generated skeletons' error paths trip the analyzer's malloc model.
	$(Q)clang-tidy --quiet --checks=-clang-analyzer-unix.Malloc $(SKEL_USERS) -- \
		$(TIDY_FLAGS) 2>/dev/null

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
