/* SPDX-License-Identifier: MPL-2.0 */
/*
 * vmmemu_ctl: inspect or (re)create the state of the /dev/vmmctl emulator.
 *
 *   vmmemu_ctl show   print the state as key=value lines (creating it from
 *                     the environment first if the file is missing)
 *   vmmemu_ctl init   (re)initialise the state from the environment
 *                     (VMMEMU_PHYSMEM, VMMEMU_PAGES_PP_MAXIMUM): an empty
 *                     reservoir and no VMs, as after boot
 *
 * The file is env VMMEMU_STATE; it is locked exactly as the emulator locks
 * it.  Exit 0 on success, 1 on error, 2 on usage errors.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -pedantic -o vmmemu_ctl
 *            vmmemu_ctl.c
 */
#define _GNU_SOURCE
#include "vmmemu.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: vmmemu_ctl show|init\n"
	    "  state file: $VMMEMU_STATE\n");
}

static int
show(void)
{
	struct vmmemu_state st;
	struct vmmemu_vm *tab;
	int err;

	if ((tab = calloc(VMMEMU_MAX_VMS, sizeof (*tab))) == NULL) {
		perror("vmmemu_ctl");
		return (1);
	}
	if ((err = vmmemu_state_open(&st, 0)) != 0 ||
	    (err = vmmemu_state_read_vms(&st, tab)) != 0) {
		if (st.fd >= 0)
			vmmemu_state_close(&st);
		free(tab);
		return (1);
	}
	/* Read-only: a dead resizer is shown as inactive, not cleaned up. */
	const struct vmmemu_hdr *h = &st.h;
	const int active = vmmemu_target_active(st.fd, h);
	printf("free=%" PRIu64 "\n", h->free_sz);
	printf("alloc=%" PRIu64 "\n", h->alloc_sz);
	printf("alloc_transient=%" PRIu64 "\n", h->alloc_transient_sz);
	printf("free_transient=%" PRIu64 "\n", h->free_transient_sz);
	printf("limit=%" PRIu64 "\n", h->limit);
	printf("physmem=%" PRIu64 "\n", h->physmem);
	printf("target_active=%d\n", active);
	printf("resizer_pid=%" PRId64 "\n", active ? h->resizer_pid : 0);
	printf("vm_count=%" PRIu64 "\n", h->vm_count);
	printf("grown_total=%" PRIu64 "\n", h->grown_total);
	printf("allocs_ok=%" PRIu64 "\n", h->allocs_ok);
	printf("allocs_refused=%" PRIu64 "\n", h->allocs_refused);
	printf("max_total_seen=%" PRIu64 "\n", h->max_total_seen);
	printf("limit_exceeded=%" PRIu64 "\n", h->limit_exceeded);
	/* Extra detail, after the documented keys. */
	printf("adding=%" PRIu64 "\n", h->adding_sz);
	printf("pages_pp_maximum=%" PRIu64 "\n", h->pages_pp_maximum);
	if (active)
		printf("target=%" PRIu64 "\n", h->target_sz);
	printf("eintr_given=%" PRIu64 "\n", h->eintr_given);
	printf("arc_resv_pages=%" PRIu64 "\n", h->arc_resv_pages);
	printf("arc_ioctls_byvalue=%" PRIu64 "\n", h->arc_ioctls_byvalue);
	printf("arc_ioctls_copyin=%" PRIu64 "\n", h->arc_ioctls_copyin);
	for (int i = 0; i < VMMEMU_MAX_VMS; i++) {
		if (!tab[i].in_use)
			continue;
		printf("vm=%.*s flags=%" PRIu64 " mem=%" PRIu64
		    " arc_resv=%" PRIu64 "\n", VM_MAX_NAMELEN, tab[i].name,
		    tab[i].flags, tab[i].mem, tab[i].arc_resv);
	}
	vmmemu_state_close(&st);
	free(tab);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("vmmemu_ctl: stdout");
		return (1);
	}
	return (0);
}

static int
init(void)
{
	struct vmmemu_state st;

	if (vmmemu_state_open(&st, 1) != 0)
		return (1);
	vmmemu_state_close(&st);
	return (0);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		usage(stderr);
		return (2);
	}
	if (strcmp(argv[1], "show") == 0)
		return (show());
	if (strcmp(argv[1], "init") == 0)
		return (init());
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return (0);
	}
	usage(stderr);
	return (2);
}
