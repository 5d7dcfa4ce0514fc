/* SPDX-License-Identifier: MPL-2.0 */
/*
 * bhyve.c: a stand-in for illumos bhyve(8), only as far as a VM's memory
 * goes, for the admission tests (tests/admission_race.rs,
 * tests/admission_faults.rs).  Like the real bhyve (through libvmmapi) it
 * talks to /dev/vmmctl and /dev/vmm/<name> with ioctl(2), which the
 * LD_PRELOAD emulator of tests/emu provides on Linux.  It links
 * libvmmresv for one thing: when its launcher hands it the VM's admission
 * claim (VMMRESV_HANDOFF in the environment, from vmmresv_handoff()), it
 * adopts the claim before creating the VM and commits it once
 * vm_setup_memory() has the memory (or aborts it if the kernel refused),
 * so the claim lives while this process does, whatever happens to the
 * launcher.  The VM's name is its UUID.  VMMRESV_LEDGER names the ledger
 * when the launcher was given one.
 *
 *   bhyve [-o memory.use_reservoir=true|false] -m <MiB> [-R <ready-fd>]
 *         [-D <ms>] <vmname>
 *
 * What the real one does, and this one too (illumos-gate
 * usr/src/cmd/bhyve/bhyverun.c and usr/src/lib/libvmmapi/common/vmmapi.c):
 *  - "-o memory.use_reservoir=true" is the only way to ask for the
 *    reservoir: VMM_CREATE_VM then carries VCF_RESERVOIR_MEM (do_open()).
 *  - vm_create() opens /dev/vmmctl O_EXCL|O_RDWR for the one ioctl and
 *    closes it again (libvmmapi vm_do_ctl()).
 *  - The VM's device /dev/vmm/<name> is opened and its memory allocated
 *    with VM_ALLOC_MEMSEG (vm_setup_memory(); one sysmem segment here).
 *    The kernel checks the reservoir there, not at create: a reservoir VM
 *    whose reservoir is short gets ENOMEM.
 *  - The VM goes away with VM_DESTROY_SELF on its own device (illumos
 *    vm_destroy()).
 *
 * Deliberately different:
 *  - On ENOMEM the real bhyve prints "Unable to allocate memory (%llu),
 *    retrying in 1 second" and loops for ever.  This one prints that line
 *    once, destroys the VM and exits 4: a test must not hang.  (Exit 4 is
 *    what bhyve used for "Could not shrink ARC" in OS-8005.)
 *  - "Running the guest" is waiting for EOF on stdin: the launcher (zhyve)
 *    closes the pipe when the VM should stop.  Before that, once the
 *    memory is allocated, one byte is written to the ready fd (-R) so the
 *    launcher knows the VM holds its memory.
 *  - -D <ms>: sleep that long after creating the VM and before allocating
 *    its memory (a slow boot), for the fault tests.
 *  - Any other -o key is ignored (the real bhyve has many).
 *
 * Exit status: 0 the VM ran and was destroyed; 4 memory allocation
 * refused (ENOMEM); 1 any other error (a hand-off that cannot be adopted
 * included: no VM is created then); 2 usage.
 *
 * The ioctl numbers and structs come from tests/c/common.h, defined there
 * from illumos sys/vmm_dev.h (interface version 18, LP64); the real bhyve
 * gets them from <sys/vmm_dev.h>.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h"	/* sys/vmm_dev.h, number(), sleep_ms() */


#define	EXIT_USAGE	2
#define	EXIT_NOMEM	4

static const char *progname = "bhyve";

/* The adopted claim, if the launcher handed one over. */
static vmmresv_reservoir *resv;
static vmmresv_admission *adm;

/*
 * Adopt the claim in VMMRESV_HANDOFF, if any: 0, or 1 (message printed;
 * the VM must not be created without its claim).
 */
static int
adopt_claim(void)
{
	const char *tok = getenv("VMMRESV_HANDOFF");
	vmmresv_status st;

	if (tok == NULL)
		return (0);
	if ((st = vmmresv_reservoir_open(NULL, NULL, &resv)) !=
	    VMMRESV_STATUS_OK ||
	    (st = vmmresv_admission_open(resv, getenv("VMMRESV_LEDGER"),
	    &adm)) != VMMRESV_STATUS_OK ||
	    (st = vmmresv_adopt(adm, tok)) != VMMRESV_STATUS_OK) {
		(void) fprintf(stderr, "%s: cannot adopt the admission claim: "
		    "%s (status %u)\n", progname, vmmresv_strerror(st),
		    (unsigned)st);
		return (1);
	}
	/* Ours now: not for any program we might start. */
	(void) unsetenv("VMMRESV_HANDOFF");
	return (0);
}

/* Commit (the VM holds its memory) or abort the adopted claim. */
static int
settle_claim(const char *name, int commit)
{
	vmmresv_status st;

	if (adm == NULL)
		return (0);
	st = commit ? vmmresv_commit(adm, name, NULL) :
	    vmmresv_abort(adm, name, NULL);
	if (st != VMMRESV_STATUS_OK) {
		(void) fprintf(stderr, "%s: %s: %s (status %u)\n", progname,
		    commit ? "vmmresv_commit" : "vmmresv_abort",
		    vmmresv_strerror(st), (unsigned)st);
		return (1);
	}
	return (0);
}

static void
usage(void)
{
	(void) fprintf(stderr, "Usage: %s [-o memory.use_reservoir=true] "
	    "-m <MiB> [-R <ready-fd>] [-D <ms>] <vmname>\n", progname);
	exit(EXIT_USAGE);
}

/* libvmmapi vm_create(): one ioctl on a fresh O_EXCL open of vmmctl. */
static int
vm_create(const char *name, uint64_t flags)
{
	struct vm_create_req req;
	int fd, err = 0;

	(void) memset(&req, 0, sizeof (req));
	(void) snprintf(req.name, sizeof (req.name), "%s", name);
	req.flags = flags;
	fd = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return (errno);
	if (ioctl(fd, VMM_CREATE_VM, &req) != 0)
		err = errno;
	(void) close(fd);
	return (err);
}

static void
destroy(int vmfd)
{
	if (ioctl(vmfd, VM_DESTROY_SELF, 0) != 0)
		(void) fprintf(stderr, "%s: VM_DESTROY_SELF: %s\n", progname,
		    strerror(errno));
	(void) close(vmfd);
}

int
main(int argc, char **argv)
{
	uint64_t flags = 0;
	long long mib = -1, ready_fd = -1, delay_ms = 0;
	unsigned long long memsize;
	char path[sizeof (VMM_INST_DEV_PREFIX) + VM_MAX_NAMELEN];
	struct vm_memseg seg;
	const char *name;
	int c, err, vmfd;
	char buf[64];

	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash != NULL ? slash + 1 : argv[0];
	}
	while ((c = getopt(argc, argv, "o:m:R:D:")) != -1) {
		switch (c) {
		case 'o':
			if (strcmp(optarg, "memory.use_reservoir=true") == 0)
				flags |= VCF_RESERVOIR_MEM;
			else if (strcmp(optarg,
			    "memory.use_reservoir=false") == 0)
				flags &= ~VCF_RESERVOIR_MEM;
			break;
		case 'm':
			/* At most 16 TiB: MiB * 2^20 stays far from wrapping. */
			mib = number(optarg, 1, (long long)1 << 24);
			if (mib < 0)
				usage();
			break;
		case 'R':
			ready_fd = number(optarg, 0, INT_MAX);
			if (ready_fd < 0)
				usage();
			break;
		case 'D':
			delay_ms = number(optarg, 0, 3600000);
			if (delay_ms < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (mib < 0 || optind != argc - 1)
		usage();
	name = argv[optind];
	if (strlen(name) == 0 || strlen(name) >= VM_MAX_NAMELEN)
		usage();
	memsize = (unsigned long long)mib << 20;
	if (adopt_claim() != 0)
		return (1);

	if ((err = vm_create(name, flags)) != 0) {
		(void) fprintf(stderr, "%s: Unable to create VM %s: %s\n",
		    progname, name, strerror(err));
		return (1);
	}
	(void) snprintf(path, sizeof (path), "%s%s", VMM_INST_DEV_PREFIX, name);
	vmfd = open(path, O_RDWR | O_CLOEXEC);
	if (vmfd < 0) {
		(void) fprintf(stderr, "%s: open %s: %s\n", progname, path,
		    strerror(errno));
		return (1);
	}
	if (delay_ms > 0)
		sleep_ms(delay_ms);

	/* vm_setup_memory(): the sysmem segment. */
	(void) memset(&seg, 0, sizeof (seg));
	seg.segid = VM_SYSMEM;
	seg.len = (size_t)memsize;
	if (ioctl(vmfd, VM_ALLOC_MEMSEG, &seg) != 0) {
		err = errno;
		if (err == ENOMEM) {
			/* The real bhyve sleeps 1 s and retries for ever. */
			(void) fprintf(stderr, "Unable to allocate memory "
			    "(%llu), retrying in 1 second\n", memsize);
			destroy(vmfd);
			(void) settle_claim(name, 0);
			return (EXIT_NOMEM);
		}
		(void) fprintf(stderr, "%s: VM_ALLOC_MEMSEG: %s\n", progname,
		    strerror(err));
		destroy(vmfd);
		return (1);
	}

	/* The VM holds its memory: the kernel accounts it now. */
	if (settle_claim(name, 1) != 0) {
		destroy(vmfd);
		return (1);
	}
	/* Tell the launcher. */
	if (ready_fd >= 0) {
		ssize_t w;
		do {
			w = write((int)ready_fd, "R", 1);
		} while (w < 0 && errno == EINTR);
		if (w != 1) {
			(void) fprintf(stderr, "%s: write ready fd: %s\n",
			    progname, strerror(errno));
			destroy(vmfd);
			return (1);
		}
		(void) close((int)ready_fd);
	}

	/* The guest runs until the launcher closes our stdin. */
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf, sizeof (buf));
		if (r == 0)
			break;
		if (r < 0 && errno != EINTR)
			break;
	}
	destroy(vmfd);
	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(resv);
	return (0);
}
