# libvmmresv — build, demo and test entry points.
#
#   make            build target/lib/libvmmresv.so.1 (+ .so link, .a, rlib)
#   make demo       build the .so, the /dev/vmmctl emulator and the C
#                   rsrvrctl port, then query, resize and query again
#   make test       every test (the README's test command)
#   make header     regenerate include/vmmresv.h with the pinned cbindgen
#   make check      header drift, export set, C header compile checks
#
# Why the .so is linked here and not by cargo: see the comment in mapfile.

CARGO      ?= cargo
CC         ?= cc
CBINDGEN   ?= cbindgen
CBINDGEN_VERSION := 0.29.4

UNAME_S    := $(shell uname -s)
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR      := $(word 1,$(subst ., ,$(VERSION)))

TARGET_DIR := target
RELEASE    := $(TARGET_DIR)/release
LIBDIR     := $(TARGET_DIR)/lib
EMUDIR     := $(TARGET_DIR)/emu
CDIR       := $(TARGET_DIR)/c

STATICLIB  := $(RELEASE)/libvmmresv.a
SONAME     := libvmmresv.so.$(MAJOR)
SO_REAL    := $(LIBDIR)/libvmmresv.so.$(VERSION)
SO_MAJOR   := $(LIBDIR)/$(SONAME)
SO_DEV     := $(LIBDIR)/libvmmresv.so
NATIVE_LIBS_FILE := $(TARGET_DIR)/native-static-libs

SRCS       := $(wildcard libvmmresv/*.rs libvmmresv/*/*.rs) Cargo.toml Cargo.lock

CWARN      := -std=c99 -Wall -Wextra -Werror -pedantic
EMU_SO     := $(EMUDIR)/libvmmctl_emu.so
EMU_CTL    := $(EMUDIR)/vmmemu_ctl
RSRVRCTL   := $(CDIR)/rsrvrctl

ifeq ($(UNAME_S),SunOS)
# illumos ld: -M takes the same version-1 mapfile; -h sets the SONAME.
SO_LDFLAGS = -shared -Wl,-z,allextract $(STATICLIB) -Wl,-z,defaultextract \
	-Wl,-M,mapfile -Wl,-h,$(SONAME) -Wl,-z,defs
else
SO_LDFLAGS = -shared -Wl,--whole-archive $(STATICLIB) -Wl,--no-whole-archive \
	-Wl,--version-script=mapfile -Wl,-soname,$(SONAME) -Wl,-z,defs \
	-Wl,--gc-sections
endif

.PHONY: all lib emu c demo test check header check-header check-exports \
	check-header-compiles check-illumos clean

all: lib

lib: $(SO_REAL) $(SO_MAJOR) $(SO_DEV)

# cargo decides whether the crate is fresh; make only asks when a source
# changed. The staticlib's native link line is captured from rustc so the
# .so (and later vmmresv.pc's Libs.private) link what the build needs.
$(STATICLIB): $(SRCS)
	@mkdir -p $(TARGET_DIR)
	$(CARGO) rustc --release --lib --quiet -- --print=native-static-libs \
		2> $(TARGET_DIR)/rustc-lib.log || { cat $(TARGET_DIR)/rustc-lib.log; exit 1; }
	@libs=$$(sed -n 's/.*native-static-libs: //p' $(TARGET_DIR)/rustc-lib.log | tail -n 1); \
	if [ -n "$$libs" ]; then echo "$$libs" > $(NATIVE_LIBS_FILE); fi
	@test -s $(NATIVE_LIBS_FILE) || { echo "no native-static-libs captured; run make clean"; exit 1; }
	@touch $@

$(SO_REAL): $(STATICLIB) mapfile
	@mkdir -p $(LIBDIR)
	$(CC) -o $@ $(SO_LDFLAGS) $$(cat $(NATIVE_LIBS_FILE))

$(SO_MAJOR): $(SO_REAL)
	ln -sf $(notdir $(SO_REAL)) $@

$(SO_DEV): $(SO_MAJOR)
	ln -sf $(SONAME) $@

# The /dev/vmmctl emulator (tests only; the library knows nothing of it).
emu: $(EMU_SO) $(EMU_CTL)

$(EMU_SO): tests/emu/vmmctl_emu.c tests/emu/vmmemu.h
	@mkdir -p $(EMUDIR)
	$(CC) -std=c11 -Wall -Wextra -Werror -pedantic -O2 -g -fPIC -shared \
		-o $@ tests/emu/vmmctl_emu.c -ldl -lpthread

$(EMU_CTL): tests/emu/vmmemu_ctl.c tests/emu/vmmemu.h
	@mkdir -p $(EMUDIR)
	$(CC) -std=c11 -Wall -Wextra -Werror -pedantic -O2 -g -o $@ tests/emu/vmmemu_ctl.c

# C consumers, built only against include/vmmresv.h and the .so.
c: $(RSRVRCTL)

$(RSRVRCTL): tests/c/rsrvrctl.c include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude -o $@ tests/c/rsrvrctl.c \
		-L$(LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(LIBDIR))

# The demo: an emulated 16 GiB host; query, grow to the RFD 185 default
# (75% of the limit) in 1 GiB chunks, query again.
demo: lib emu c
	@state=$$(mktemp -d) && trap 'rm -rf "$$state"' EXIT && \
	export VMMEMU_STATE=$$state/vmmctl.state VMMEMU_PHYSMEM=16G \
		VMMRESV_RUNDIR=$$state/run LD_PRELOAD=$(abspath $(EMU_SO)) && \
	echo "== rsrvrctl -q   (emulated 16 GiB host, empty reservoir)" && \
	$(RSRVRCTL) -q && \
	echo "== rsrvrctl -s 12288 -c 1024   (12 GiB in 1 GiB chunks)" && \
	$(RSRVRCTL) -s 12288 -c 1024 && \
	echo "== rsrvrctl -a 512" && \
	$(RSRVRCTL) -a 512 && \
	echo "== rsrvrctl -q" && \
	$(RSRVRCTL) -q

test: lib emu c
	$(CARGO) test --all-targets

header:
	@$(CBINDGEN) --version | grep -qx "cbindgen $(CBINDGEN_VERSION)" || \
		{ echo "need cbindgen $(CBINDGEN_VERSION): cargo install cbindgen --version $(CBINDGEN_VERSION) --locked"; exit 1; }
	$(CBINDGEN) --quiet --config cbindgen.toml --crate vmmresv --output include/vmmresv.h

check: check-header check-exports check-header-compiles

check-header:
	@$(CBINDGEN) --version | grep -qx "cbindgen $(CBINDGEN_VERSION)" || \
		{ echo "need cbindgen $(CBINDGEN_VERSION)"; exit 1; }
	@tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
	$(CBINDGEN) --quiet --config cbindgen.toml --crate vmmresv --output $$tmp && \
	if diff -u include/vmmresv.h $$tmp; then echo "header: include/vmmresv.h is up to date"; \
	else echo "header: include/vmmresv.h differs from the code: run make header"; exit 1; fi

check-exports: lib
	sh tests/check-exports.sh $(SO_REAL) mapfile include/vmmresv.h $(SONAME)

check-header-compiles:
	$(CC) $(CWARN) -fsyntax-only -x c include/vmmresv.h
	c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ include/vmmresv.h
	@echo "header: compiles standalone as C99 and C++"

check-illumos:
	$(CARGO) check --target x86_64-unknown-illumos --all-targets

clean:
	$(CARGO) clean
