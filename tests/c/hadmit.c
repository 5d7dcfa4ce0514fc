/* SPDX-License-Identifier: MPL-2.0 */
/*
 * hadmit.c: admissions against the Linux hugetlb pool, for the demo
 * (make demo).  Built only against include/vmmresv.h and the .so.
 *
 *   hadmit [-r run-dir] [-p require|prefer|never] -s <pool MiB>
 *          -m <VM MiB> -n <count>
 *
 * Sizes the 2 MiB pool to <pool MiB> through the library (a reservoir
 * handle on the pool, vmmresv_reservoir_set_target), admits <count> VMs of
 * <VM MiB> one after another without starting any (their claims stay
 * pending, as while their QEMUs preallocate), prints each decision and the
 * pool's counters, then aborts every claim and puts the pool back to the
 * size it had.  Needs root (the pool is resized).
 *
 * Exit status: 0 done; 1 a library error (message on stderr); 2 usage.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h"

#define	MIB	(1024ULL * 1024)

static void usage(void)
{
	fprintf(stderr, "usage: hadmit [-r run-dir] [-p require|prefer|never] "
	    "-s <pool MiB> -m <VM MiB> -n <count>\n");
	exit(2);
}

static void die(const char *what, uint32_t st)
{
	fprintf(stderr, "hadmit: %s: %s (status %u, errno %d)\n", what,
	    vmmresv_strerror(st), st, vmmresv_last_errno());
	exit(1);
}

static const char *decision_name(uint32_t d)
{
	switch (d) {
	case VMMRESV_DECISION_USE_RESERVOIR:
		return ("with huge pages");
	case VMMRESV_DECISION_NO_RESERVOIR:
		return ("without huge pages");
	default:
		return ("refused");
	}
}

int main(int argc, char **argv)
{
	const char *run_dir = NULL;
	uint32_t pref = VMMRESV_RESERVOIR_PREFER, st;
	long long pool_mib = -1, vm_mib = -1, count = -1;
	struct vmmresv_reservoir *r = NULL;
	struct vmmresv_admission *a = NULL;
	struct vmmresv_hugetlb_counts c;
	uint64_t was;
	char uuid[48];
	int ch;

	while ((ch = getopt(argc, argv, "r:p:s:m:n:")) != -1) {
		switch (ch) {
		case 'r':
			run_dir = optarg;
			break;
		case 'p':
			if (strcmp(optarg, "require") == 0)
				pref = VMMRESV_RESERVOIR_REQUIRE;
			else if (strcmp(optarg, "prefer") == 0)
				pref = VMMRESV_RESERVOIR_PREFER;
			else if (strcmp(optarg, "never") == 0)
				pref = VMMRESV_RESERVOIR_NEVER;
			else
				usage();
			break;
		case 's':
			pool_mib = number(optarg, 0, 1 << 24);
			break;
		case 'm':
			vm_mib = number(optarg, 1, 1 << 24);
			break;
		case 'n':
			count = number(optarg, 1, 99);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || pool_mib < 0 || vm_mib < 0 || count < 0)
		usage();

	st = vmmresv_reservoir_open_hugetlb(0, VMMRESV_NODE_ANY, run_dir, &r);
	if (st != VMMRESV_STATUS_OK)
		die("vmmresv_reservoir_open_hugetlb", st);
	if ((st = vmmresv_hugetlb_query(r, &c)) != VMMRESV_STATUS_OK)
		die("vmmresv_hugetlb_query", st);
	was = c.total_bytes - c.surplus_bytes;
	st = vmmresv_reservoir_set_target(r, (uint64_t)pool_mib * MIB, 0,
	    NULL, NULL, NULL);
	if (st != VMMRESV_STATUS_OK)
		die("vmmresv_reservoir_set_target", st);
	if ((st = vmmresv_hugetlb_query(r, &c)) != VMMRESV_STATUS_OK)
		die("vmmresv_hugetlb_query", st);
	printf("pool: %llu MiB of %llu KiB pages, %llu MiB free\n",
	    (unsigned long long)(c.total_bytes / MIB),
	    (unsigned long long)(c.page_size_bytes / 1024),
	    (unsigned long long)(c.free_bytes / MIB));

	if ((st = vmmresv_admission_open(r, NULL, &a)) != VMMRESV_STATUS_OK)
		die("vmmresv_admission_open", st);
	for (long long i = 0; i < count; i++) {
		struct vmmresv_decision d;

		(void) snprintf(uuid, sizeof (uuid),
		    "4d0d0000-0000-4000-8000-%012lld", i);
		st = vmmresv_admit(a, uuid, (uint64_t)vm_mib * MIB, pref, &d);
		if (st != VMMRESV_STATUS_OK)
			die("vmmresv_admit", st);
		printf("VM %lld (%lld MiB): %s", i + 1, vm_mib,
		    decision_name(d.decision));
		if (d.decision == VMMRESV_DECISION_USE_RESERVOIR)
			printf(" (claims pending before it: %llu MiB)",
			    (unsigned long long)(d.pending_bytes / MIB));
		if (d.shortfall_bytes != 0)
			printf(" (the pool is %llu MiB short)",
			    (unsigned long long)(d.shortfall_bytes / MIB));
		printf("\n");
	}
	for (long long i = 0; i < count; i++) {
		(void) snprintf(uuid, sizeof (uuid),
		    "4d0d0000-0000-4000-8000-%012lld", i);
		st = vmmresv_abort(a, uuid, NULL);
		if (st != VMMRESV_STATUS_OK && st != VMMRESV_STATUS_NOT_FOUND)
			die("vmmresv_abort", st);
	}
	vmmresv_admission_close(a);
	st = vmmresv_reservoir_set_target(r, was, 0, NULL, NULL, NULL);
	if (st != VMMRESV_STATUS_OK)
		die("vmmresv_reservoir_set_target (restoring)", st);
	printf("pool: back to %llu MiB\n", (unsigned long long)(was / MIB));
	vmmresv_reservoir_close(r);
	return (0);
}
