# libvmmresv — build, demo and test entry points.
#
#   make            build target/lib/libvmmresv.so.1 (+ .so link, .a, rlib)
#   make demo       build the .so, the /dev/vmmctl emulator and the C
#                   rsrvrctl port, then query, resize and query again
#   make test       every test (the README's test command)
#   make header     regenerate include/vmmresv.h with the pinned cbindgen
#   make check      header drift, export set, C header compile checks,
#                   man pages cover the header
#   make ci         every CI gate (.ci/ci.mk lists them; each is also a
#                   target of its own: make check-abi, make loom, ...)
#   make install    install like a system library (PREFIX, DESTDIR, ...:
#                   see "Installing" below); make uninstall undoes it
#   make check-man  every function the header declares has a man page
#                   with its exact prototype, and nothing else is documented
#   make check-man-lint   mandoc -T lint of man/ (needs mandoc)
#   make check-man-install   every function of the header found by
#                   man -w <function> after make install (needs man-db)
#
# Sources: the library in libvmmresv/, the shipped rsrvrctl port in
# cmd/rsrvrctl/, the tests' C programs in tests/c/, the /dev/vmmctl
# emulator in tests/emu/, the CI scripts and gates in .ci/.
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
BUILD_LIBDIR := $(TARGET_DIR)/lib
EMUDIR     := $(TARGET_DIR)/emu
CDIR       := $(TARGET_DIR)/c

STATICLIB  := $(RELEASE)/libvmmresv.a
SONAME     := libvmmresv.so.$(MAJOR)
SO_REAL    := $(BUILD_LIBDIR)/libvmmresv.so.$(VERSION)
SO_MAJOR   := $(BUILD_LIBDIR)/$(SONAME)
SO_DEV     := $(BUILD_LIBDIR)/libvmmresv.so
NATIVE_LIBS_FILE := $(TARGET_DIR)/native-static-libs

SRCS       := $(wildcard libvmmresv/*.rs libvmmresv/*/*.rs) Cargo.toml Cargo.lock

CWARN      := -std=c99 -Wall -Wextra -Werror -pedantic
EMU_SO     := $(EMUDIR)/libvmmctl_emu.so
EMU_CTL    := $(EMUDIR)/vmmemu_ctl
RSRVRCTL   := $(CDIR)/rsrvrctl
REPORT     := $(CDIR)/report
HANDLES    := $(CDIR)/handles
HADMIT     := $(CDIR)/hadmit
RSRVRCTL_SRC := cmd/rsrvrctl/rsrvrctl.c
VMMRESVADM   := $(CDIR)/vmmresvadm
VMMRESVADM_SRC := cmd/vmmresvadm/vmmresvadm.c
# The tests' C programs share tests/c/common.h.
TEST_CFLAGS  := -Itests/c
TEST_C_DEPS  := tests/c/common.h

ifeq ($(UNAME_S),SunOS)
# illumos ld: -M takes the same version-1 mapfile; -h sets the SONAME.
SO_LDFLAGS = -shared -Wl,-z,allextract $(STATICLIB) -Wl,-z,defaultextract \
	-Wl,-M,mapfile -Wl,-h,$(SONAME) -Wl,-z,defs
else
SO_LDFLAGS = -shared -Wl,--whole-archive $(STATICLIB) -Wl,--no-whole-archive \
	-Wl,--version-script=mapfile -Wl,-soname,$(SONAME) -Wl,-z,defs \
	-Wl,--gc-sections
endif

.PHONY: all lib emu c demo test check header clean install uninstall

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
	@mkdir -p $(BUILD_LIBDIR)
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

# C consumers, built only against include/vmmresv.h and the .so: the
# rsrvrctl port (cmd/rsrvrctl; make install builds it again without the
# build tree's RUNPATH), the tests' report printer and handle checker, and
# the demo's hugetlb admissions.
c: $(RSRVRCTL) $(VMMRESVADM) $(REPORT) $(HANDLES) $(HADMIT)

$(RSRVRCTL): $(RSRVRCTL_SRC) include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude -o $@ $(RSRVRCTL_SRC) \
		-L$(BUILD_LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(BUILD_LIBDIR))

# vmmresvadm(8), the administrative command (cmd/vmmresvadm): like rsrvrctl,
# only the installed header and the .so.
$(VMMRESVADM): $(VMMRESVADM_SRC) include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude -o $@ $(VMMRESVADM_SRC) \
		-L$(BUILD_LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(BUILD_LIBDIR))

$(REPORT): tests/c/report.c $(TEST_C_DEPS) include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude $(TEST_CFLAGS) -o $@ tests/c/report.c \
		-L$(BUILD_LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(BUILD_LIBDIR))

# Use after free and double free of every handle type (tests/handles.rs
# runs it plainly and under valgrind, .ci/sanitizers.sh under ASan).
$(HANDLES): tests/c/handles.c $(TEST_C_DEPS) include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude $(TEST_CFLAGS) -o $@ tests/c/handles.c \
		-L$(BUILD_LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(BUILD_LIBDIR))

$(HADMIT): tests/c/hadmit.c $(TEST_C_DEPS) include/vmmresv.h lib
	@mkdir -p $(CDIR)
	$(CC) $(CWARN) -g -Iinclude $(TEST_CFLAGS) -o $@ tests/c/hadmit.c \
		-L$(BUILD_LIBDIR) -lvmmresv -Wl,-rpath,$(abspath $(BUILD_LIBDIR))

# The demo: an emulated 16 GiB host; query, grow in 1 GiB chunks, add,
# query again, apply the boot-time setting (RFD 185's 75% of the limit, as
# the SMF method does), print the capacity report; then, on Linux
# as root, admit four VMs against a 96 MiB hugetlb pool (restored after).
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
	$(RSRVRCTL) -q && \
	echo "== rsrvrctl -b 75%   (the boot-time setting, as the SMF method applies it)" && \
	$(RSRVRCTL) -b 75% -c 1G && \
	mkdir -p $$state/root/proc && \
	printf 'MemTotal: 16777216 kB\nMemAvailable: 3145728 kB\n' > $$state/root/proc/meminfo && \
	echo "== report -d 512 -c 2   (the capacity report: 3 GiB free, 512 MiB of driver DMA)" && \
	$(REPORT) -R $$state/root -d 512 -c 2 && \
	echo "== hadmit -s 96 -m 32 -n 4   (Linux: four 32 MiB VMs against a 96 MiB hugetlb pool)" && \
	if [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] && [ -w /proc/sys/vm/nr_hugepages ]; then \
		$(HADMIT) -r $$state/run -s 96 -m 32 -n 4; \
	else \
		echo "skipped: the hugetlb pool cannot be resized here (it needs Linux with hugetlb support, root and a writable /proc/sys)"; \
	fi

test: lib emu c
	$(CARGO) test --all-targets

header:
	@$(CBINDGEN) --version | grep -qx "cbindgen $(CBINDGEN_VERSION)" || \
		{ echo "need cbindgen $(CBINDGEN_VERSION): cargo install cbindgen --version $(CBINDGEN_VERSION) --locked"; exit 1; }
	$(CBINDGEN) --quiet --config cbindgen.toml --crate vmmresv --output include/vmmresv.h

# The checks (gates of make ci, defined with the others in .ci/ci.mk).
check: check-header check-exports check-header-compiles check-man

# ---------------------------------------------------------------------
# Installing, as cargo-c and libpathrs install a Rust library with a C ABI:
#
#   make install PREFIX=/usr DESTDIR=/tmp/proto     (a package's proto area)
#   make uninstall PREFIX=/usr DESTDIR=/tmp/proto   (the same variables)
#
# installs, each under $(DESTDIR):
#   $(LIBDIR)/libvmmresv.so.1.M.P  the library as linked above (SONAME
#                                  libvmmresv.so.1)
#   $(LIBDIR)/libvmmresv.so.1      -> libvmmresv.so.1.M.P  (found at run time)
#   $(LIBDIR)/libvmmresv.so        -> libvmmresv.so.1      (found by -lvmmresv)
#   $(LIBDIR)/libvmmresv.a         for static linking (pkg-config --static)
#   $(INCLUDEDIR)/vmmresv.h
#   $(PKGCONFIGDIR)/vmmresv.pc     from vmmresv.pc.in; Libs.private is the
#                                  native-static-libs rustc printed for this
#                                  build (target/native-static-libs)
#   $(BINDIR)/rsrvrctl             the rsrvrctl port (cmd/rsrvrctl/rsrvrctl.c)
#   $(SBINDIR)/vmmresvadm          the administrative command
#                                  (cmd/vmmresvadm/vmmresvadm.c)
#   $(MAN3LIBDIR)/libvmmresv.3lib, $(MAN3DIR)/*.3vmmresv plus a link per
#   function named in a page's NAME (illumos MANLINKS: a relative symlink
#   beside the page), $(MAN8DIR)/rsrvrctl.8, vmmresv-reservoir.8,
#   vmmresvadm.8
#   $(SMFMANIFESTDIR)/vmmresv-reservoir.xml, $(SMFMETHODDIR)/vmmresv-reservoir
#                                  the SMF service (SMF=yes; see below)
#   $(MANIFEST)                    every path above (without DESTDIR)
#
# Where rsrvrctl goes. illumos delivers its rsrvrctl as /usr/lib/rsrvrctl: a
# private administrative program that boot scripts and operators run by its
# full path, not a command on PATH. The port keeps that status but not that
# path: BINDIR defaults to $(PREFIX)/lib/vmmresv, because
#   - /usr/lib/rsrvrctl belongs to the illumos package: overwriting it is a
#     packaging conflict that the next system update silently reverts, and
#     scripts that run /usr/lib/rsrvrctl should keep getting what they
#     were written against;
#   - $(PREFIX)/sbin would put a second, different "rsrvrctl" on admins'
#     PATH (it refuses garbage sizes, fails a failed -q, reads "12G" and
#     "75%": rsrvrctl(8)), shadowing or shadowed by PATH order.
# A distribution that wants the port to replace the original passes
# BINDIR=/usr/lib; one that wants it on PATH passes BINDIR=$(PREFIX)/sbin.
#
# Files are copied to a temporary name and renamed into place: a running
# bhyve or zhyve that maps the old libvmmresv.so.1 keeps its (unlinked)
# copy, where copying over it would change the pages under it.
# make uninstall removes exactly the paths listed in the manifest (checked
# first: absolute, no "..", only names this Makefile installs), then the
# package's own directories if they are empty; other directories stay.

DESTDIR      ?=
PREFIX       ?= /usr/local
# illumos keeps 64-bit objects in lib/64 (the 64-bit run-time linker
# searches /lib/64 and /usr/lib/64; /usr/lib is for 32-bit ones), and Rust
# builds libvmmresv for amd64 only.
ifeq ($(UNAME_S),SunOS)
LIBDIR       ?= $(PREFIX)/lib/64
else
LIBDIR       ?= $(PREFIX)/lib
endif
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BINDIR       ?= $(PREFIX)/lib/vmmresv
# vmmresvadm(8) is a command for operators, on PATH as zpool and dladm are.
SBINDIR      ?= $(PREFIX)/sbin
MANDIR       ?= $(PREFIX)/share/man
# Where the library's pages go, so that `man <function>` finds them. The
# files keep illumos's section suffixes everywhere (libvmmresv.3lib,
# vmmresv_admit.3vmmresv); the directories follow each system's man(1):
#   illumos  man3lib/ and man3vmmresv/, a directory per section as
#            illumos-gate installs libnvpair.3lib and nvlist_alloc.3nvpair:
#            its man searches every man* directory, and `man -s 3vmmresv
#            vmmresv_admit` names the section;
#   others   man3/, as Linux packages install a library's section-3 pages
#            with a suffix (SSL_new.3ssl, Foo.3pm): man-db finds a page in
#            man3/ with or without a section (`man vmmresv_admit`, `man 3
#            vmmresv_admit`, `man 3vmmresv vmmresv_admit`), and so does
#            mandoc's man without a mandoc.db, which searches man3vmmresv/
#            only when asked for that section.
# make check-man-install resolves every function with man -w in both.
ifeq ($(UNAME_S),SunOS)
MAN3LIBDIR   ?= $(MANDIR)/man3lib
MAN3DIR      ?= $(MANDIR)/man3vmmresv
else
MAN3LIBDIR   ?= $(MANDIR)/man3
MAN3DIR      ?= $(MANDIR)/man3
endif
MAN8DIR      ?= $(MANDIR)/man8
MANIFEST     ?= $(LIBDIR)/vmmresv/install.manifest

MAN3LIB_PAGES := man/libvmmresv.3lib
MAN3_PAGES    := $(sort $(wildcard man/*.3vmmresv))
MAN8_PAGES    := $(sort $(wildcard man/*.8))

# SMF (illumos): the boot-time reservoir service of smf/ (vmmresv-reservoir(8)).
# SMF's directories are fixed by the system, not by PREFIX. Installed by
# default on illumos only; SMF=yes installs it anywhere (a package's proto
# area built elsewhere). The method is told where BINDIR put rsrvrctl, the
# manifest where the method is.
ifeq ($(UNAME_S),SunOS)
SMF          ?= yes
else
SMF          ?= no
endif
SMFMANIFESTDIR ?= /lib/svc/manifest/system
SMFMETHODDIR   ?= /lib/svc/method

# The .pc file names its directories relative to ${prefix} where it can,
# so PKG_CONFIG_SYSROOT_DIR and pkg-config's --define-prefix work on it.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# The installed rsrvrctl must not point into the build tree (target/c/
# rsrvrctl has a RUNPATH of target/lib, for the tests). It gets no RUNPATH
# when LIBDIR is one the run-time linker searches anyway, else LIBDIR.
SYSTEM_LIBDIRS := /lib /usr/lib /lib64 /usr/lib64 /lib/64 /usr/lib/64 \
	/lib/amd64 /usr/lib/amd64 /lib/%-linux-gnu /usr/lib/%-linux-gnu
INSTALL_RPATH ?= $(if $(filter $(SYSTEM_LIBDIRS),$(LIBDIR)),,$(LIBDIR))
ifeq ($(UNAME_S),SunOS)
RPATH_FLAG = -Wl,-R,$(1)
else
RPATH_FLAG = -Wl,-rpath,$(1)
endif
INSTALL_BUILD := $(TARGET_DIR)/install

install: lib
	@mkdir -p $(INSTALL_BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		-e "s|@LIBS_PRIVATE@|$$(cat $(NATIVE_LIBS_FILE))|g" \
		vmmresv.pc.in > $(INSTALL_BUILD)/vmmresv.pc
	$(CC) $(CWARN) -O2 -g $(CFLAGS) -Iinclude -o $(INSTALL_BUILD)/rsrvrctl \
		$(RSRVRCTL_SRC) $(LDFLAGS) -L$(BUILD_LIBDIR) -lvmmresv \
		$(if $(INSTALL_RPATH),$(call RPATH_FLAG,$(INSTALL_RPATH)))
	$(CC) $(CWARN) -O2 -g $(CFLAGS) -Iinclude -o $(INSTALL_BUILD)/vmmresvadm \
		$(VMMRESVADM_SRC) $(LDFLAGS) -L$(BUILD_LIBDIR) -lvmmresv \
		$(if $(INSTALL_RPATH),$(call RPATH_FLAG,$(INSTALL_RPATH)))
	sed -e 's|/usr/lib/vmmresv/rsrvrctl|$(BINDIR)/rsrvrctl|g' \
		smf/vmmresv-reservoir > $(INSTALL_BUILD)/vmmresv-reservoir
	sed -e 's|/lib/svc/method/vmmresv-reservoir|$(SMFMETHODDIR)/vmmresv-reservoir|g' \
		smf/vmmresv-reservoir.xml > $(INSTALL_BUILD)/vmmresv-reservoir.xml
	@set -e; dest='$(DESTDIR)'; manifest='$(MANIFEST)'; \
	list=$$(mktemp); trap 'rm -f "$$list"' EXIT; \
	put() { \
		mkdir -p "$$dest$$3"; \
		cp "$$2" "$$dest$$3/.$$4.new"; chmod "$$1" "$$dest$$3/.$$4.new"; \
		mv -f "$$dest$$3/.$$4.new" "$$dest$$3/$$4"; \
		echo "$$3/$$4" >> "$$list"; echo "  install $$dest$$3/$$4"; \
	}; \
	lnk() { \
		mkdir -p "$$dest$$2"; rm -f "$$dest$$2/$$3"; ln -s "$$1" "$$dest$$2/$$3"; \
		echo "$$2/$$3" >> "$$list"; echo "  link    $$dest$$2/$$3 -> $$1"; \
	}; \
	put 0755 $(SO_REAL) '$(LIBDIR)' $(notdir $(SO_REAL)); \
	lnk $(notdir $(SO_REAL)) '$(LIBDIR)' $(SONAME); \
	lnk $(SONAME) '$(LIBDIR)' libvmmresv.so; \
	put 0644 $(STATICLIB) '$(LIBDIR)' libvmmresv.a; \
	put 0644 include/vmmresv.h '$(INCLUDEDIR)' vmmresv.h; \
	put 0644 $(INSTALL_BUILD)/vmmresv.pc '$(PKGCONFIGDIR)' vmmresv.pc; \
	put 0755 $(INSTALL_BUILD)/rsrvrctl '$(BINDIR)' rsrvrctl; \
	put 0755 $(INSTALL_BUILD)/vmmresvadm '$(SBINDIR)' vmmresvadm; \
	if [ '$(SMF)' = yes ]; then \
		put 0444 $(INSTALL_BUILD)/vmmresv-reservoir.xml '$(SMFMANIFESTDIR)' vmmresv-reservoir.xml; \
		put 0555 $(INSTALL_BUILD)/vmmresv-reservoir '$(SMFMETHODDIR)' vmmresv-reservoir; \
	fi; \
	for p in $(MAN3LIB_PAGES); do put 0644 "$$p" '$(MAN3LIBDIR)' "$${p##*/}"; done; \
	for p in $(MAN8_PAGES); do put 0644 "$$p" '$(MAN8DIR)' "$${p##*/}"; done; \
	for p in $(MAN3_PAGES); do \
		page=$${p##*/}; put 0644 "$$p" '$(MAN3DIR)' "$$page"; \
		for n in $$(awk '/^\.Sh /{ s=$$2 } s=="NAME" && $$1==".Nm" { print $$2 }' "$$p"); do \
			if [ "$$n.3vmmresv" != "$$page" ]; then lnk "$$page" '$(MAN3DIR)' "$$n.3vmmresv"; fi; \
		done; \
	done; \
	mkdir -p "$$dest$${manifest%/*}"; \
	if [ -f "$$dest$$manifest" ]; then cat "$$dest$$manifest" >> "$$list"; fi; \
	echo "$$manifest" >> "$$list"; \
	sort -u "$$list" > "$$dest$$manifest.new"; chmod 0644 "$$dest$$manifest.new"; \
	mv -f "$$dest$$manifest.new" "$$dest$$manifest"; \
	echo "  install $$dest$$manifest ($$(wc -l < "$$dest$$manifest") paths; make uninstall removes them)"

uninstall:
	@set -e; dest='$(DESTDIR)'; m='$(DESTDIR)$(MANIFEST)'; \
	if [ ! -f "$$m" ]; then \
		echo "uninstall: no $$m: nothing installed there (pass the DESTDIR and PREFIX/LIBDIR or MANIFEST make install had)" >&2; \
		exit 1; \
	fi; \
	while IFS= read -r p; do \
		case "$$p" in \
		/*) ;; \
		*) echo "uninstall: $$m: not an absolute path: '$$p'; nothing removed" >&2; exit 1;; \
		esac; \
		case "$$p" in \
		*//*|*/../*|*/..|*/./*|*/.) echo "uninstall: $$m: unsafe path: '$$p'; nothing removed" >&2; exit 1;; \
		esac; \
		case "$${p##*/}" in \
		libvmmresv.so*|libvmmresv.a|vmmresv.h|vmmresv.pc|rsrvrctl|rsrvrctl.8|libvmmresv.3lib|*.3vmmresv|install.manifest) ;; \
		vmmresvadm|vmmresvadm.8) ;; \
		vmmresv-reservoir|vmmresv-reservoir.xml|vmmresv-reservoir.8) ;; \
		*) echo "uninstall: $$m: not a file make install installs: '$$p'; nothing removed" >&2; exit 1;; \
		esac; \
	done < "$$m"; \
	while IFS= read -r p; do \
		if [ -e "$$dest$$p" ] || [ -h "$$dest$$p" ]; then rm -f "$$dest$$p"; echo "  rm $$dest$$p"; fi; \
	done < "$$m"; \
	rm -f "$$m"; \
	for d in "$${m%/*}" '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MAN3DIR)'; do \
		case "$$d" in *vmmresv) rmdir "$$d" 2>/dev/null && echo "  rmdir $$d" || true;; esac; \
	done

clean:
	$(CARGO) clean

# ---------------------------------------------------------------------
# CI: every gate is a target (make ci runs them all), defined in .ci/ci.mk
# with the scripts they run; .ci/run installs the tools and runs make ci.

include .ci/ci.mk
