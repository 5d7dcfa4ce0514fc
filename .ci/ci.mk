# SPDX-License-Identifier: MPL-2.0
#
# The CI gates of libvmmresv, one make target each (included by the
# Makefile; run from the top of the repository).
#
#   make ci          every gate below, in this order; keeps going after a
#                    failed gate, lists the failed (and skipped) gates at the
#                    end and fails if any failed. .ci/run installs the tools
#                    and runs it: that is all CI does.
#   make <gate>      one gate alone.
#   make ci-gates    list the gates.
#
# A gate that needs a tool that may be missing (cbindgen 0.29.4, mandoc,
# man-db's man, xmllint, the illumos target, gcc's sanitizer runtimes,
# abigail-tools, nightly Miri, nightly + cargo-fuzz) checks for it first;
# when it is missing the gate prints a loud "SKIPPED: <gate>: <why>"
# (.ci/skip.sh) and succeeds, and make ci lists it again at the end.
# Nothing else skips:
# `make test` (the README's test command) always runs.
#
#   check-format            cargo fmt --check
#   clippy                  cargo clippy --all-targets, warnings denied
#   check-doc               cargo doc of the library, warnings denied (the
#                           Rust API is documented: #![warn(missing_docs)],
#                           every intra-doc link resolves)
#   test                    every test (the Makefile's, the README's command)
#   bench-quick-ledger      benches/ledger.rs, one short round: ratios to the
#   bench-quick-admission   goals printed, not gated (timings on a shared
#                           machine are noise); fails only if a benchmark
#                           cannot build or run or a check in it fails
#                           (over-admission, a claim left behind, a failing
#                           C call): benches/README.md
#   hugetlb-race            tests/hugetlb_pool.rs and hugetlb_race.rs again
#                           (they are part of make test), their output
#                           shown: the pool's behaviour, the race counted
#                           with and without the ledger; SKIPPED where the
#                           pool cannot be resized (not root, no hugetlb, a
#                           read-only /proc/sys)
#   hugetlb-qemu            tests/hugetlb_qemu.rs again, its output shown:
#                           real QEMU started from the pool; SKIPPED as
#                           above or without qemu-system-x86_64
#   check-valgrind          tests/rsrvrctl.rs again with every rsrvrctl run
#                           under valgrind memcheck (no error, no definite
#                           leak)
#   emu-selftest            the /dev/vmmctl emulator's self-test, natively
#                           and under valgrind: .ci/emu-selftest.sh
#   loom                    model checking of the lock-free ledgers
#                           (tests/loom_*.rs): every interleaving of 2-3
#                           threads up to loom's preemption bound
#   check-header            include/vmmresv.h is what cbindgen makes of the
#                           code (cbindgen 0.29.4)
#   check-header-compiles   the header alone compiles as C99 and C++11
#   check-exports           the .so exports exactly the header's functions,
#                           in the mapfile's version nodes: .ci/check-exports.sh
#   check-man-lint          mandoc -T lint of man/: .ci/check-man.sh --lint
#   check-man               the man pages document exactly the header's
#                           functions, prototypes and statuses: .ci/check-man.sh
#   check-man-install       make install into a scratch DESTDIR, in the man3/
#                           layout and in illumos's (man3lib/, man3vmmresv/),
#                           then every header function, libvmmresv(3lib) and
#                           the section 8 pages resolve with man -w (man-db;
#                           mandoc's mman too when present), by name and by
#                           section, to the page that documents them:
#                           .ci/check-man-install.sh
#   check-readme            the README's install example compiles and prints
#                           what the README shows: .ci/readme-example.sh
#   examples                the Rust examples (examples/: a VM start, a
#                           resize with progress) built and run against the
#                           emulator, their output checked: .ci/examples.sh
#   check-smf               the SMF manifest is well-formed XML (xmllint,
#                           no network; the DTD's element order is
#                           tests/smf.rs, part of make test)
#   check-illumos           cargo check --target x86_64-unknown-illumos
#   sanitizers              the C programs (cmd/, tests/c/) with ASan+LSan and
#                           UBSan through scenarios against the emulator:
#                           .ci/sanitizers.sh
#   check-abi               the .so against abi/libvmmresv.so.1.abi (abidiff):
#                           .ci/check-abi.sh check (abi/README.md)
#   check-abi-selftest      the ABI check fails where it must:
#                           .ci/check-abi.sh selftest
#   miri                    the library's unit tests under Miri (isolation
#                           on; tests that need the file system, /proc,
#                           clocks or system calls are ignored there, each
#                           with its reason)
#   fuzz-build              cargo +nightly fuzz build (fuzz/README.md)
#   fuzz-<target>           one fuzz target for FUZZ_SECONDS (60) from its
#                           committed seeds into a scratch corpus; a crash, a
#                           hang (-timeout=30) or a build failure fails it.
#                           make fuzz runs them all.
#
# Not gates: make abi-baseline (rewrite the ABI baseline, abi/README.md).

SKIP := sh .ci/skip.sh

LOOM_TESTS   := $(basename $(notdir $(wildcard tests/loom_*.rs)))
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
FUZZ_RUNS    := $(addprefix fuzz-,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
FUZZ_TOOLCHAIN ?= nightly
MIRI_TOOLCHAIN ?= nightly
ILLUMOS_TARGET := x86_64-unknown-illumos
# The sanitizer build's compiler: $(CC) when it was given (environment or
# command line), else gcc, whose libasan/libubsan .ci/run installs.
SAN_CC ?= $(if $(filter environment command,$(firstword $(origin CC))),$(CC),gcc)

CI_GATES := check-format clippy check-doc test hugetlb-race hugetlb-qemu \
	bench-quick-ledger bench-quick-admission check-valgrind emu-selftest loom \
	check-header check-header-compiles check-exports check-man-lint check-man \
	check-man-install check-readme examples check-smf check-illumos sanitizers \
	check-abi check-abi-selftest miri fuzz-build $(FUZZ_RUNS)

.PHONY: ci ci-gates check-format clippy check-doc hugetlb-race hugetlb-qemu examples bench-quick-ledger \
	bench-quick-admission check-valgrind emu-selftest loom check-header \
	check-header-compiles check-exports check-man-lint check-man \
	check-man-install check-readme check-smf check-illumos sanitizers \
	check-abi check-abi-selftest abi-baseline miri fuzz-build fuzz $(FUZZ_RUNS)

ci:
	@skips=$$(mktemp) && trap 'rm -f "$$skips"' EXIT; failed=; \
	for g in $(CI_GATES); do \
		printf '\n=== %s\n' "$$g"; \
		before=$$(wc -l < "$$skips"); \
		if CI_SKIPLOG="$$skips" $(MAKE) --no-print-directory $$g; then \
			if [ "$$(wc -l < "$$skips")" != "$$before" ]; then \
				echo "--- $$g: SKIPPED"; else echo "--- $$g: ok"; fi; \
		else \
			echo "--- $$g: FAILED"; failed="$$failed $$g"; \
		fi; \
	done; \
	echo; \
	if [ -s "$$skips" ]; then \
		echo "!!!!!!!! skipped gates (their tool could not be installed):"; \
		sed 's/^/SKIPPED: /' "$$skips"; \
	fi; \
	if [ -n "$$failed" ]; then printf 'CI FAILED: %s\n' $$failed; exit 1; fi; \
	echo "CI passed"

ci-gates:
	@printf '%s\n' $(CI_GATES)

check-format:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

check-doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --lib --locked

bench-quick-ledger bench-quick-admission: bench-quick-%:
	VMMRESV_BENCH_QUICK=1 $(CARGO) bench --locked --bench $*

check-valgrind: lib emu c
	VMMRESV_VALGRIND=1 $(CARGO) test --locked --test rsrvrctl

emu-selftest:
	sh .ci/emu-selftest.sh

loom:
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$(TARGET_DIR)/loom \
		$(CARGO) test --release --locked $(addprefix --test ,$(LOOM_TESTS))

check-header:
	@if $(CBINDGEN) --version 2>/dev/null | grep -qx "cbindgen $(CBINDGEN_VERSION)"; then \
		tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
		$(CBINDGEN) --quiet --config cbindgen.toml --crate vmmresv --output $$tmp && \
		if diff -u include/vmmresv.h $$tmp; then echo "header: include/vmmresv.h is up to date"; \
		else echo "header: include/vmmresv.h differs from the code: run make header"; exit 1; fi; \
	else \
		$(SKIP) check-header "cbindgen $(CBINDGEN_VERSION) is not installed (cargo install cbindgen --version $(CBINDGEN_VERSION) --locked)"; \
	fi

check-header-compiles:
	$(CC) $(CWARN) -fsyntax-only -x c include/vmmresv.h
	c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ include/vmmresv.h
	@echo "header: compiles standalone as C99 and C++"

check-exports: lib
	sh .ci/check-exports.sh $(SO_REAL) mapfile include/vmmresv.h $(SONAME)

check-man:
	sh .ci/check-man.sh include/vmmresv.h man

check-man-lint:
	@if command -v mandoc >/dev/null 2>&1; then sh .ci/check-man.sh --lint man; \
	else $(SKIP) check-man-lint "mandoc is not installed (Debian: apt-get install mandoc)"; fi

# Both layouts are given explicitly, so the gate checks the same two on
# every system (the Makefile picks one of them by uname: tests/install.rs
# checks that choice).
MAN_INSTALL = $(MAKE) --no-print-directory install PREFIX=/usr MANDIR=/usr/share/man

check-man-install: lib
	@if command -v man >/dev/null 2>&1; then \
		set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
		inst() { \
			$(MAN_INSTALL) DESTDIR="$$d/$$1" MAN3LIBDIR=/usr/share/man/$$2 \
				MAN3DIR=/usr/share/man/$$3 > "$$d/$$1.log" 2>&1 || \
				{ cat "$$d/$$1.log"; echo "man-install: make install failed"; exit 1; }; \
		}; \
		inst man3 man3 man3; \
		sh .ci/check-man-install.sh include/vmmresv.h "$$d/man3/usr/share/man" man3; \
		inst illumos man3lib man3vmmresv; \
		sh .ci/check-man-install.sh include/vmmresv.h "$$d/illumos/usr/share/man" illumos; \
	else $(SKIP) check-man-install "man is not installed (Debian: apt-get install man-db)"; fi

check-readme:
	bash .ci/readme-example.sh

# The hugetlb pool can be borrowed (the tests restore it) where this holds.
HUGETLB_OK = [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] && [ -w /proc/sys/vm/nr_hugepages ]
HUGETLB_WHY = the hugetlb pool cannot be resized here (it needs Linux with hugetlb support, root and a writable /proc/sys)

hugetlb-race: lib c
	@if $(HUGETLB_OK); then \
		$(CARGO) test --locked --test hugetlb_pool --test hugetlb_race -- --nocapture --test-threads 1; \
	else $(SKIP) hugetlb-race "$(HUGETLB_WHY)"; fi

hugetlb-qemu: lib c
	@if ! $(HUGETLB_OK); then $(SKIP) hugetlb-qemu "$(HUGETLB_WHY)"; \
	elif ! command -v qemu-system-x86_64 >/dev/null 2>&1; then \
		$(SKIP) hugetlb-qemu "qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)"; \
	else $(CARGO) test --locked --test hugetlb_qemu -- --nocapture; fi

examples: emu
	CARGO=$(CARGO) bash .ci/examples.sh

check-smf:
	@if command -v xmllint >/dev/null 2>&1; then \
		xmllint --noout --nonet smf/vmmresv-reservoir.xml && echo "smf: the manifest is well-formed XML"; \
	else $(SKIP) check-smf "xmllint is not installed (Debian: apt-get install libxml2-utils; tests/smf.rs still parses the manifest)"; fi

check-illumos:
	@if [ -d "$$(rustc --print sysroot)/lib/rustlib/$(ILLUMOS_TARGET)" ]; then \
		echo "$(CARGO) check --target $(ILLUMOS_TARGET) --all-targets"; \
		$(CARGO) check --target $(ILLUMOS_TARGET) --all-targets; \
	else $(SKIP) check-illumos "the $(ILLUMOS_TARGET) target is not installed (rustup target add $(ILLUMOS_TARGET))"; fi

sanitizers: lib emu
	@if printf 'int main(void) { return 0; }\n' | \
		$(SAN_CC) -fsanitize=address,undefined -x c -o /dev/null - 2>/dev/null; then \
		CC=$(SAN_CC) bash .ci/sanitizers.sh; \
	else $(SKIP) sanitizers "$(SAN_CC) cannot link -fsanitize=address,undefined (Debian: apt-get install libasan8 libubsan1)"; fi

HAVE_ABIGAIL = command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1
NO_ABIGAIL   = abidw/abidiff are not installed (Debian: apt-get install abigail-tools)

check-abi: lib
	@if $(HAVE_ABIGAIL); then bash .ci/check-abi.sh check; \
	else $(SKIP) check-abi "$(NO_ABIGAIL)"; fi

check-abi-selftest: lib
	@if $(HAVE_ABIGAIL); then bash .ci/check-abi.sh selftest; \
	else $(SKIP) check-abi-selftest "$(NO_ABIGAIL)"; fi

abi-baseline: lib
	bash .ci/check-abi.sh baseline

# Miri's sysroot is built by `cargo miri setup` (.ci/run runs it; a no-op
# once built): a setup that fails (its sources cannot be downloaded) skips.
miri:
	@log=$$(mktemp) && trap 'rm -f "$$log"' EXIT; \
	if ! $(CARGO) +$(MIRI_TOOLCHAIN) miri --version >/dev/null 2>&1; then \
		$(SKIP) miri "Miri is not installed (rustup toolchain install $(MIRI_TOOLCHAIN); rustup +$(MIRI_TOOLCHAIN) component add miri rust-src)"; \
	elif ! $(CARGO) +$(MIRI_TOOLCHAIN) miri setup > "$$log" 2>&1; then \
		$(SKIP) miri "cargo +$(MIRI_TOOLCHAIN) miri setup failed: $$(tail -n 1 "$$log")"; \
	else \
		echo "$(CARGO) +$(MIRI_TOOLCHAIN) miri test --lib"; \
		$(CARGO) +$(MIRI_TOOLCHAIN) miri test --lib; \
	fi

# The fuzz gates need a nightly toolchain, cargo-fuzz and the fuzz crate's
# dependencies (fetched here: a no-op once they are in cargo's cache), so
# that only a download server that cannot be reached skips.
FUZZ_READY = $(CARGO) +$(FUZZ_TOOLCHAIN) --version >/dev/null 2>&1 && \
	$(CARGO) fuzz --version >/dev/null 2>&1 && \
	$(CARGO) +$(FUZZ_TOOLCHAIN) fetch --quiet --manifest-path fuzz/Cargo.toml
NO_FUZZ = no $(FUZZ_TOOLCHAIN) toolchain, no cargo-fuzz, or the fuzz crate's dependencies could not be downloaded (rustup toolchain install $(FUZZ_TOOLCHAIN); cargo install cargo-fuzz --locked)

fuzz-build:
	@if $(FUZZ_READY); then \
		echo "$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz build"; \
		$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz build; \
	else $(SKIP) fuzz-build "$(NO_FUZZ)"; fi

# Seeds are read from fuzz/corpus/<target>; what libFuzzer finds goes to a
# scratch directory (the first corpus directory given), removed after.
$(FUZZ_RUNS): fuzz-%:
	@if $(FUZZ_READY); then \
		d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
		echo "$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz run $* $$d fuzz/corpus/$* -- -max_total_time=$(FUZZ_SECONDS) -timeout=30" && \
		$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz run $* "$$d" fuzz/corpus/$* -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=30; \
	else $(SKIP) fuzz-$* "$(NO_FUZZ)"; fi

fuzz: $(FUZZ_RUNS)
