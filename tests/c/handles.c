/* SPDX-License-Identifier: MPL-2.0 */
/*
 * handles.c: use after free, double free and stale handles, for every
 * handle type of the C ABI (vmmresv_reservoir, vmmresv_admission,
 * vmmresv_ledger, and the ARC handle vmmresv_arc of ABI 1.2).  Built only against include/vmmresv.h and linked only
 * with -lvmmresv, like the other C consumers; run against the /dev/vmmctl
 * emulator (LD_PRELOAD, VMMEMU_STATE, VMMRESV_RUNDIR) because a reservoir
 * handle needs a device.
 *
 * For each handle type:
 *   - the live handle works;
 *   - after its free/close, every kind of call on it returns
 *     VMMRESV_STATUS_INVALID_ARGUMENT (libvmmresv(3LIB): "a pointer that is
 *     not a live handle");
 *   - a second free/close of it returns (it is a no-op);
 *   - a new handle of the same type (which may reuse what the old one
 *     used) is not reachable through the stale one: calls through the
 *     stale handle still fail, a free of the stale handle leaves the new
 *     one working;
 *   - a handle of one type passed where another is expected is refused.
 *
 * None of this may touch freed memory: the test passes only if it also
 * runs clean under AddressSanitizer (.ci/sanitizers.sh) and valgrind
 * memcheck (tests/handles.rs).
 *
 * Regression (issue 13, item 1): run against the library as it was before
 * handles were made detectable after their free (a magic number in the
 * freed object, cleared by a store the optimiser removed), this program
 * failed, as seen: in a plain build every call on the freed ledger
 * returned OK (17 checks failed) and glibc then aborted it with
 * "free(): double free detected in tcache 2" (exit 134); built with
 * -fsanitize=address, ASan stopped it at the second vmmresv_ledger_free
 * with "attempting double-free"; under valgrind memcheck it exited 99
 * after 101 "Invalid read"s (the library reading the magic of freed
 * handles) and 3 "Invalid free()"s.
 *
 * Output: one "ok"/"FAIL" line per check, then "handles: N passed,
 * M failed".  Exit status 0 when every check passed, 1 otherwise.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vmmresv.h"

static int passed;
static int failed;

static void
check(int cond, const char *what)
{
	if (cond) {
		passed++;
		printf("ok   %s\n", what);
	} else {
		failed++;
		printf("FAIL %s\n", what);
	}
	(void) fflush(stdout);
}

static void
status_is(vmmresv_status got, vmmresv_status want, const char *what)
{
	if (got != want) {
		printf("     %s: got %u (%s), want %u (%s)\n", what,
		    (unsigned)got, vmmresv_strerror(got), (unsigned)want,
		    vmmresv_strerror(want));
	}
	check(got == want, what);
}

#define	INVALID	VMMRESV_STATUS_INVALID_ARGUMENT
#define	OK	VMMRESV_STATUS_OK

static const char uuid[] = "0badc0de-1111-4222-8333-444455556666";

static void
ledger_calls_fail(vmmresv_ledger *l, const char *tag)
{
	char what[128];
	uint64_t v = 77, w = 77;

	(void) snprintf(what, sizeof (what), "%s: claim", tag);
	status_is(vmmresv_ledger_claim(l, 1, &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: release", tag);
	status_is(vmmresv_ledger_release(l, 1), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: set_capacity", tag);
	status_is(vmmresv_ledger_set_capacity(l, 5, &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: usage", tag);
	status_is(vmmresv_ledger_usage(l, &v, &w), INVALID, what);
}

static void
test_ledger(void)
{
	vmmresv_ledger *l, *l2;
	uint64_t claimed = 0, cap = 0;

	printf("== vmmresv_ledger\n");
	status_is(vmmresv_ledger_new(10, &l), OK, "ledger: new");
	status_is(vmmresv_ledger_claim(l, 3, NULL), OK, "ledger: claim (live)");
	vmmresv_ledger_free(l);
	ledger_calls_fail(l, "ledger after free");
	vmmresv_ledger_free(l);
	check(1, "ledger: second free returned");
	ledger_calls_fail(l, "ledger after double free");

	/* A new ledger, perhaps where the old one was: not reachable. */
	status_is(vmmresv_ledger_new(20, &l2), OK, "ledger: new again");
	ledger_calls_fail(l, "stale ledger beside a new one");
	vmmresv_ledger_free(l);
	status_is(vmmresv_ledger_usage(l2, &claimed, &cap), OK,
	    "ledger: the new one survives a free of the stale one");
	check(claimed == 0 && cap == 20, "ledger: the new one is untouched");

	/* Many cycles: every stale handle stays dead. */
	{
		vmmresv_ledger *old[64];
		int i, bad = 0;

		for (i = 0; i < 64; i++) {
			if (vmmresv_ledger_new(1, &old[i]) != OK)
				bad++;
			vmmresv_ledger_free(old[i]);
		}
		for (i = 0; i < 64; i++) {
			if (vmmresv_ledger_claim(old[i], 0, NULL) != INVALID)
				bad++;
			vmmresv_ledger_free(old[i]);
		}
		check(bad == 0, "ledger: 64 freed handles stay dead");
	}
	status_is(vmmresv_ledger_claim(l2, 20, NULL), OK,
	    "ledger: the new one still works");
	vmmresv_ledger_free(l2);
	ledger_calls_fail(l2, "second ledger after free");
	vmmresv_ledger_free(NULL);
	check(1, "ledger: free(NULL) returned");
}

static void
reservoir_calls_fail(vmmresv_reservoir *r, const char *tag)
{
	char what[128];
	vmmresv_query q;
	vmmresv_admission *a = (vmmresv_admission *)&q;
	uint32_t ver = 0;
	uint64_t v = 0;

	(void) snprintf(what, sizeof (what), "%s: query", tag);
	status_is(vmmresv_reservoir_query(r, &q), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: interface_version", tag);
	status_is(vmmresv_reservoir_interface_version(r, &ver), INVALID,
	    what);
	(void) snprintf(what, sizeof (what), "%s: default_target", tag);
	status_is(vmmresv_reservoir_default_target(r, VMMRESV_PAGESIZE, &v),
	    INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: add", tag);
	status_is(vmmresv_reservoir_add(r, VMMRESV_PAGESIZE, 0, NULL, NULL,
	    &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: admission_open", tag);
	status_is(vmmresv_admission_open(r, NULL, &a), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: admission_open sets NULL",
	    tag);
	check(a == NULL, what);
}

static void
test_reservoir(void)
{
	vmmresv_reservoir *r, *r2;
	vmmresv_query q;

	printf("== vmmresv_reservoir\n");
	status_is(vmmresv_reservoir_open(NULL, NULL, &r), OK,
	    "reservoir: open");
	status_is(vmmresv_reservoir_query(r, &q), OK, "reservoir: query (live)");
	vmmresv_reservoir_close(r);
	reservoir_calls_fail(r, "reservoir after close");
	vmmresv_reservoir_close(r);
	check(1, "reservoir: second close returned");
	reservoir_calls_fail(r, "reservoir after double close");

	status_is(vmmresv_reservoir_open(NULL, NULL, &r2), OK,
	    "reservoir: open again");
	reservoir_calls_fail(r, "stale reservoir beside a new one");
	vmmresv_reservoir_close(r);
	status_is(vmmresv_reservoir_query(r2, &q), OK,
	    "reservoir: the new one survives a close of the stale one");
	vmmresv_reservoir_close(r2);
	reservoir_calls_fail(r2, "second reservoir after close");
}

static void
admission_calls_fail(vmmresv_admission *a, const char *tag)
{
	char what[128];
	vmmresv_decision d;
	vmmresv_reconcile_report rep;
	uint64_t v = 0, w = 0;

	(void) snprintf(what, sizeof (what), "%s: admit", tag);
	status_is(vmmresv_admit(a, uuid, 1ULL << 20,
	    VMMRESV_RESERVOIR_PREFER, &d), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: commit", tag);
	status_is(vmmresv_commit(a, uuid, &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: abort", tag);
	status_is(vmmresv_abort(a, uuid, &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: pending", tag);
	status_is(vmmresv_admission_pending(a, &v, &w), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: reconcile", tag);
	status_is(vmmresv_reconcile(a, &rep), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: arc_release", tag);
	status_is(vmmresv_arc_release(a, uuid, &v), INVALID, what);
}

static void
test_admission(void)
{
	vmmresv_reservoir *r;
	vmmresv_admission *a, *a2;
	vmmresv_ledger *l;
	uint64_t v = 0, w = 0;

	printf("== vmmresv_admission\n");
	status_is(vmmresv_reservoir_open(NULL, NULL, &r), OK,
	    "admission: reservoir open");
	status_is(vmmresv_admission_open(r, NULL, &a), OK, "admission: open");
	status_is(vmmresv_admission_pending(a, &v, &w), OK,
	    "admission: pending (live)");
	vmmresv_admission_close(a);
	admission_calls_fail(a, "admission after close");
	vmmresv_admission_close(a);
	check(1, "admission: second close returned");
	admission_calls_fail(a, "admission after double close");

	status_is(vmmresv_admission_open(r, NULL, &a2), OK,
	    "admission: open again");
	admission_calls_fail(a, "stale admission beside a new one");
	vmmresv_admission_close(a);
	status_is(vmmresv_admission_pending(a2, &v, &w), OK,
	    "admission: the new one survives a close of the stale one");

	/* One type where another is expected. */
	{
		vmmresv_query q;

		status_is(vmmresv_reservoir_query(
		    (vmmresv_reservoir *)(void *)a2, &q), INVALID,
		    "admission as a reservoir: refused");
	}
	status_is(vmmresv_ledger_new(4, &l), OK, "ledger for type checks");
	status_is(vmmresv_ledger_claim((vmmresv_ledger *)(void *)a2, 1, NULL),
	    INVALID, "admission as a ledger: refused");
	status_is(vmmresv_admission_pending((vmmresv_admission *)(void *)l,
	    &v, &w), INVALID, "ledger as an admission: refused");
	/* A free of the wrong type frees nothing. */
	vmmresv_ledger_free((vmmresv_ledger *)(void *)a2);
	vmmresv_reservoir_close((vmmresv_reservoir *)(void *)l);
	status_is(vmmresv_admission_pending(a2, &v, &w), OK,
	    "admission survives a ledger free of it");
	status_is(vmmresv_ledger_claim(l, 1, NULL), OK,
	    "ledger survives a reservoir close of it");
	vmmresv_ledger_free(l);

	vmmresv_admission_close(a2);
	admission_calls_fail(a2, "second admission after close");
	vmmresv_reservoir_close(r);
	vmmresv_admission_close(NULL);
	vmmresv_reservoir_close(NULL);
	check(1, "admission, reservoir: close(NULL) returned");
}

static void
arc_calls_fail(vmmresv_arc *h, const char *tag)
{
	char what[128];
	vmmresv_arc_host host;
	vmmresv_arc_reservation res;
	vmmresv_arc_reconcile_report rep;
	size_t count = 7;
	uint64_t v = 0;

	(void) memset(&host, 0, sizeof (host));
	host.arc_c_min_bytes = 1ULL << 30;
	host.arc_c_max_bytes = 8ULL << 30;
	(void) snprintf(what, sizeof (what), "%s: hold", tag);
	status_is(vmmresv_arc_hold(h, uuid, "/nonexistent/vm.pid", 1ULL << 20,
	    &host, &res), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: drop", tag);
	status_is(vmmresv_arc_drop(h, uuid, &v), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: reconcile", tag);
	status_is(vmmresv_arc_reconcile(h, 0, &rep), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: list", tag);
	status_is(vmmresv_arc_list(h, NULL, 0, &count), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: target", tag);
	status_is(vmmresv_arc_target(h, &host, &v, NULL), INVALID, what);
	(void) snprintf(what, sizeof (what), "%s: apply", tag);
	status_is(vmmresv_arc_apply(h, "/nonexistent", &host, &v), INVALID,
	    what);
}

static void
test_arc(void)
{
	vmmresv_arc *h, *h2, *bad = (vmmresv_arc *)(void *)1;
	vmmresv_ledger *l;
	uint64_t v = 0;
	size_t count = 0;

	printf("== vmmresv_arc\n");
	status_is(vmmresv_arc_open(NULL, &h), OK, "arc: open (no reservoir)");
	status_is(vmmresv_arc_list(h, NULL, 0, &count), OK, "arc: list (live)");
	check(count == 0, "arc: nothing reserved");
	vmmresv_arc_free(h);
	arc_calls_fail(h, "arc after free");
	vmmresv_arc_free(h);
	check(1, "arc: second free returned");
	arc_calls_fail(h, "arc after double free");
	arc_calls_fail(bad, "arc: a pointer that was never a handle");

	status_is(vmmresv_arc_open(NULL, &h2), OK, "arc: open again");
	arc_calls_fail(h, "stale arc beside a new one");
	vmmresv_arc_free(h);
	status_is(vmmresv_arc_drop(h2, uuid, &v), OK,
	    "arc: the new one survives a free of the stale one");
	check(v == 0, "arc: nothing to drop");

	status_is(vmmresv_ledger_new(4, &l), OK, "ledger for arc type checks");
	status_is(vmmresv_ledger_claim((vmmresv_ledger *)(void *)h2, 1, NULL),
	    INVALID, "arc as a ledger: refused");
	status_is(vmmresv_arc_list((vmmresv_arc *)(void *)l, NULL, 0, &count),
	    INVALID, "ledger as an arc: refused");
	vmmresv_ledger_free((vmmresv_ledger *)(void *)h2);
	vmmresv_arc_free((vmmresv_arc *)(void *)l);
	status_is(vmmresv_arc_list(h2, NULL, 0, &count), OK,
	    "arc survives a ledger free of it");
	status_is(vmmresv_ledger_claim(l, 1, NULL), OK,
	    "ledger survives an arc free of it");
	vmmresv_ledger_free(l);
	vmmresv_arc_free(h2);
	arc_calls_fail(h2, "second arc after free");
	vmmresv_arc_free(NULL);
	check(1, "arc: free(NULL) returned");
}

int
main(void)
{
	test_ledger();
	test_reservoir();
	test_admission();
	test_arc();
	printf("handles: %d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
