/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The C side of the admission benchmark (benches/admission.rs).
 *
 * Built twice by the benchmark, each time linked against
 * target/lib/libvmmresv.so.1 like any C consumer (-Iinclude -lvmmresv
 * -Wl,-rpath):
 *
 *  - as a shared object that the benchmark dlopen()s: the loops below are
 *    C code calling vmmresv_admit(), vmmresv_commit() and
 *    vmmresv_reservoir_query() through the PLT into the shared library, and
 *    the benchmark times one call of a loop per sample (the single
 *    Rust-to-C call is amortised over the loop);
 *
 *  - with -DADMIT_BENCH_MAIN as a program, admit_bench_worker, that the
 *    benchmark runs as other processes:
 *
 *      admit_bench_worker hold <count>
 *          admit <count> VMs of one page each (distinct UUIDs), print
 *          "held <count>", wait for EOF on stdin, abort every claim,
 *          print "released" and exit 0: pending claims held by another
 *          live process;
 *      admit_bench_worker launch <mode> <id> <vm-bytes>
 *          a launcher: for each line "<n>" read on stdin, make <n> VM
 *          starts and print "<admitted> <refused> <over> <errors>", until
 *          EOF. <mode> is
 *            ledger  vmmresv_admit (REQUIRE); if USE_RESERVOIR, create the
 *                    VM with the reservoir flag and allocate its memory,
 *                    then vmmresv_commit;
 *            flock   flock(LOCK_EX) on the lock file, query the reservoir,
 *                    compare, create + allocate if it fits,
 *                    flock(LOCK_UN): what operators serialise launches
 *                    with today;
 *            racy    query, compare, create + allocate if it fits: no
 *                    lock at all (RFD 185's race);
 *            floor   only the emulated kernel calls of a start (query,
 *                    create, allocate), no lock, no check;
 *          in every mode a VM that got its memory runs until the
 *          launcher's next start (it is destroyed first thing), and the
 *          last one is destroyed before the report.
 *          "over" counts allocations the kernel refused (ENOMEM) after the
 *          start was admitted: over-admissions.
 *
 * Every process finds the emulated host and the ledger through the
 * environment (LD_PRELOAD, VMMEMU_STATE, VMMRESV_RUNDIR and
 * ADMIT_BENCH_LOCK, the lock file of the flock mode) that the benchmark
 * sets.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h" /* tests/c/common.h: sys/vmm_dev.h (illumos) */

/* UUIDs the measured admit+commit rotates over (see ab_admit_commit). */
#define AB_ROTATE 256
#define AB_UUID_LEN 37

struct ab {
	struct vmmresv_reservoir *resv;
	struct vmmresv_admission *adm;
	int lockfd;
	char uuids[AB_ROTATE][AB_UUID_LEN];
	unsigned next;
};

static void fail(const char *what, vmmresv_status st)
{
	int e = vmmresv_last_errno();

	fprintf(stderr, "admit_bench[%ld]: %s: %s (status %u, errno %d)\n",
	    (long)getpid(), what, vmmresv_strerror((uint32_t)st),
	    (unsigned)st, e);
}

/* The UUID text of VM `n` of series `tag`. */
static void uuid_text(char out[AB_UUID_LEN], unsigned tag, unsigned long n)
{
	snprintf(out, AB_UUID_LEN, "be%06x-0000-4000-8000-%012lx",
	    tag & 0xffffffu, n & 0xffffffffffffUL);
}

struct ab *ab_open(unsigned tag);
void ab_close(struct ab *ab);
int ab_set_reservoir(struct ab *ab, uint64_t bytes);
int ab_pending(struct ab *ab, uint64_t *reservoir, uint64_t *transient);
uint64_t ab_racy(struct ab *ab, uint64_t iters, uint64_t bytes);
uint64_t ab_flock(struct ab *ab, uint64_t iters, uint64_t bytes);
uint64_t ab_admit_commit(struct ab *ab, uint64_t iters, uint64_t bytes);

/*
 * The reservoir (the device from the environment), the admission handle
 * (the ledger in $VMMRESV_RUNDIR) and the lock file $ADMIT_BENCH_LOCK.
 * NULL on failure (with a message).
 */
struct ab *ab_open(unsigned tag)
{
	struct ab *ab = calloc(1, sizeof(*ab));
	const char *lock = getenv("ADMIT_BENCH_LOCK");
	vmmresv_status st;

	if (ab == NULL)
		return NULL;
	ab->lockfd = -1;
	if ((st = vmmresv_reservoir_open(NULL, NULL, &ab->resv)) !=
	    VMMRESV_STATUS_OK) {
		fail("vmmresv_reservoir_open", st);
		goto bad;
	}
	if ((st = vmmresv_admission_open(ab->resv, NULL, &ab->adm)) !=
	    VMMRESV_STATUS_OK) {
		fail("vmmresv_admission_open", st);
		goto bad;
	}
	if (lock == NULL ||
	    (ab->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "admit_bench: lock file %s: %s\n",
		    lock ? lock : "(ADMIT_BENCH_LOCK unset)", strerror(errno));
		goto bad;
	}
	for (unsigned i = 0; i < AB_ROTATE; i++)
		uuid_text(ab->uuids[i], tag, i);
	return ab;
bad:
	ab_close(ab);
	return NULL;
}

void ab_close(struct ab *ab)
{
	if (ab == NULL)
		return;
	vmmresv_admission_close(ab->adm);
	vmmresv_reservoir_close(ab->resv);
	if (ab->lockfd >= 0)
		close(ab->lockfd);
	free(ab);
}

/* Resize the reservoir to `bytes` in one step; 0 on success. */
int ab_set_reservoir(struct ab *ab, uint64_t bytes)
{
	uint64_t reached = 0;
	vmmresv_status st = vmmresv_reservoir_set_target(ab->resv, bytes, 0,
	    NULL, NULL, &reached);

	if (st != VMMRESV_STATUS_OK) {
		fail("vmmresv_reservoir_set_target", st);
		return -1;
	}
	return 0;
}

int ab_pending(struct ab *ab, uint64_t *reservoir, uint64_t *transient)
{
	vmmresv_status st = vmmresv_admission_pending(ab->adm, reservoir,
	    transient);

	if (st != VMMRESV_STATUS_OK) {
		fail("vmmresv_admission_pending", st);
		return -1;
	}
	return 0;
}

/*
 * The racy baseline: `iters` times, query the reservoir and compare its
 * free memory with `bytes`. Returns how many fitted (the caller checks
 * all did; a failing query stops the loop early).
 */
uint64_t ab_racy(struct ab *ab, uint64_t iters, uint64_t bytes)
{
	uint64_t fit = 0;

	for (uint64_t i = 0; i < iters; i++) {
		struct vmmresv_query q;
		vmmresv_status st = vmmresv_reservoir_query(ab->resv, &q);

		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_reservoir_query", st);
			break;
		}
		if (q.free_bytes >= bytes)
			fit++;
	}
	return fit;
}

/* The same under flock(LOCK_EX) of the lock file. */
uint64_t ab_flock(struct ab *ab, uint64_t iters, uint64_t bytes)
{
	uint64_t fit = 0;

	for (uint64_t i = 0; i < iters; i++) {
		struct vmmresv_query q;
		vmmresv_status st;

		if (flock(ab->lockfd, LOCK_EX) != 0) {
			perror("admit_bench: flock");
			break;
		}
		st = vmmresv_reservoir_query(ab->resv, &q);
		if (st == VMMRESV_STATUS_OK && q.free_bytes >= bytes)
			fit++;
		if (flock(ab->lockfd, LOCK_UN) != 0) {
			perror("admit_bench: flock unlock");
			break;
		}
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_reservoir_query", st);
			break;
		}
	}
	return fit;
}

/*
 * The subject: `iters` times vmmresv_admit (REQUIRE) of `bytes` and
 * vmmresv_commit of the same VM, rotating over AB_ROTATE UUIDs. Returns
 * how many were admitted to the reservoir and committed with exactly the
 * bytes charged (the caller checks all were).
 */
uint64_t ab_admit_commit(struct ab *ab, uint64_t iters, uint64_t bytes)
{
	uint64_t ok = 0;

	for (uint64_t i = 0; i < iters; i++) {
		const char *u = ab->uuids[ab->next++ % AB_ROTATE];
		struct vmmresv_decision d;
		uint64_t released = 0;
		vmmresv_status st = vmmresv_admit(ab->adm, u, bytes,
		    VMMRESV_RESERVOIR_REQUIRE, &d);

		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_admit", st);
			break;
		}
		if (d.decision != VMMRESV_DECISION_USE_RESERVOIR) {
			fprintf(stderr, "admit_bench: decision %u reason %u "
			    "(shortfall %" PRIu64 ")\n", d.decision, d.reason,
			    d.shortfall_bytes);
			if (d.decision != VMMRESV_DECISION_REFUSE)
				(void) vmmresv_abort(ab->adm, u, NULL);
			break;
		}
		st = vmmresv_commit(ab->adm, u, &released);
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_commit", st);
			break;
		}
		if (released == d.charged_bytes)
			ok++;
	}
	return ok;
}

#ifdef ADMIT_BENCH_MAIN

/* One VM start's kernel side (libvmmapi's vm_create + vm_setup_memory). */
enum vm_result { VM_OK, VM_NOMEM, VM_ERROR };

static enum vm_result vm_start_stop(const char *name, uint64_t flags,
    uint64_t bytes, int *vmfd_out)
{
	struct vm_create_req req;
	struct vm_memseg seg;
	char path[16 + VM_MAX_NAMELEN];
	int fd, vmfd;

	*vmfd_out = -1;
	memset(&req, 0, sizeof(req));
	snprintf(req.name, sizeof(req.name), "%s", name);
	req.flags = flags;
	fd = open("/dev/vmmctl", O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, VMM_CREATE_VM, &req) != 0) {
		fprintf(stderr, "admit_bench: create VM %s: %s\n", name,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return VM_ERROR;
	}
	close(fd);
	snprintf(path, sizeof(path), "/dev/vmm/%s", name);
	vmfd = open(path, O_RDWR | O_CLOEXEC);
	if (vmfd < 0) {
		fprintf(stderr, "admit_bench: open %s: %s\n", path,
		    strerror(errno));
		return VM_ERROR;
	}
	*vmfd_out = vmfd;
	memset(&seg, 0, sizeof(seg));
	seg.segid = VM_SYSMEM;
	seg.len = (size_t)bytes;
	if (ioctl(vmfd, VM_ALLOC_MEMSEG, &seg) != 0) {
		if (errno == ENOMEM)
			return VM_NOMEM;
		fprintf(stderr, "admit_bench: VM_ALLOC_MEMSEG: %s\n",
		    strerror(errno));
		return VM_ERROR;
	}
	return VM_OK;
}

static int vm_destroy(int vmfd)
{
	int err = 0;

	if (vmfd < 0)
		return 0;
	if (ioctl(vmfd, VM_DESTROY_SELF, 0) != 0) {
		fprintf(stderr, "admit_bench: VM_DESTROY_SELF: %s\n",
		    strerror(errno));
		err = -1;
	}
	close(vmfd);
	return err;
}

struct counts {
	uint64_t admitted, refused, over, errors;
};

enum mode { M_LEDGER, M_FLOCK, M_RACY, M_FLOOR };

/*
 * One VM start of a launcher in `mode`. The launcher's previous VM (`*held`)
 * runs until this start begins: it is destroyed first, outside any lock,
 * and a VM that got its memory becomes the new `*held`. So up to one VM
 * per launcher holds reservoir memory at any time, 16 for a reservoir
 * with room for 4, and every mode meets a full reservoir.
 */
static void launch_one(struct ab *ab, enum mode mode, const char *uuid,
    const char *name, uint64_t bytes, struct counts *c, int *held)
{
	struct vmmresv_query q;
	struct vmmresv_decision d;
	vmmresv_status st;
	enum vm_result r;
	int vmfd = -1, locked = 0;

	if (vm_destroy(*held) != 0)
		c->errors++;
	*held = -1;
	switch (mode) {
	case M_LEDGER:
		st = vmmresv_admit(ab->adm, uuid, bytes,
		    VMMRESV_RESERVOIR_REQUIRE, &d);
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_admit", st);
			c->errors++;
			return;
		}
		if (d.decision == VMMRESV_DECISION_REFUSE) {
			c->refused++;
			return;
		}
		if (d.decision != VMMRESV_DECISION_USE_RESERVOIR) {
			fprintf(stderr, "admit_bench: decision %u\n",
			    d.decision);
			(void) vmmresv_abort(ab->adm, uuid, NULL);
			c->errors++;
			return;
		}
		r = vm_start_stop(name, VCF_RESERVOIR_MEM, bytes, &vmfd);
		st = vmmresv_commit(ab->adm, uuid, NULL);
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_commit", st);
			c->errors++;
		}
		break;
	case M_FLOCK:
	case M_RACY:
		if (mode == M_FLOCK) {
			if (flock(ab->lockfd, LOCK_EX) != 0) {
				perror("admit_bench: flock");
				c->errors++;
				return;
			}
			locked = 1;
		}
		st = vmmresv_reservoir_query(ab->resv, &q);
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_reservoir_query", st);
			c->errors++;
			r = VM_ERROR;
		} else if (q.free_bytes < bytes) {
			c->refused++;
			r = VM_ERROR;
		} else {
			r = vm_start_stop(name, VCF_RESERVOIR_MEM, bytes,
			    &vmfd);
		}
		if (locked && flock(ab->lockfd, LOCK_UN) != 0) {
			perror("admit_bench: flock unlock");
			c->errors++;
		}
		if (st != VMMRESV_STATUS_OK || q.free_bytes < bytes) {
			(void) vm_destroy(vmfd);
			return;
		}
		break;
	case M_FLOOR:
	default:
		st = vmmresv_reservoir_query(ab->resv, &q);
		if (st != VMMRESV_STATUS_OK) {
			fail("vmmresv_reservoir_query", st);
			c->errors++;
			return;
		}
		r = vm_start_stop(name, VCF_RESERVOIR_MEM, bytes, &vmfd);
		break;
	}
	switch (r) {
	case VM_OK:
		c->admitted++;
		*held = vmfd;
		return;
	case VM_NOMEM:
		c->over++;
		break;
	default:
		c->errors++;
	}
	if (vm_destroy(vmfd) != 0)
		c->errors++;
}

static int launcher(const char *mode_s, const char *id_s,
    const char *bytes_s)
{
	enum mode mode;
	unsigned id = (unsigned)strtoul(id_s, NULL, 10);
	uint64_t bytes = strtoull(bytes_s, NULL, 10);
	unsigned long k = 0;
	struct ab *ab;
	char line[64];

	if (strcmp(mode_s, "ledger") == 0)
		mode = M_LEDGER;
	else if (strcmp(mode_s, "flock") == 0)
		mode = M_FLOCK;
	else if (strcmp(mode_s, "racy") == 0)
		mode = M_RACY;
	else if (strcmp(mode_s, "floor") == 0)
		mode = M_FLOOR;
	else
		return 2;
	if ((ab = ab_open(0x100 + id)) == NULL)
		return 1;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		uint64_t n = strtoull(line, NULL, 10);
		struct counts c = { 0, 0, 0, 0 };
		int held = -1;

		for (uint64_t i = 0; i < n; i++, k++) {
			char uuid[AB_UUID_LEN], name[64];

			uuid_text(uuid, 0x100 + id, k);
			snprintf(name, sizeof(name), "ab-%u-%lu", id, k);
			launch_one(ab, mode, uuid, name, bytes, &c, &held);
		}
		/* The last VM stops before the report: none is left running. */
		if (vm_destroy(held) != 0)
			c.errors++;
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		    c.admitted, c.refused, c.over, c.errors);
		fflush(stdout);
	}
	ab_close(ab);
	return 0;
}

/* Hold `count` one-page claims until stdin reaches EOF. */
static int hold(const char *count_s)
{
	unsigned long n = strtoul(count_s, NULL, 10), i;
	struct ab *ab = ab_open(0xffff);
	char uuid[AB_UUID_LEN];
	int rc = 0;

	if (ab == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		struct vmmresv_decision d;
		vmmresv_status st;

		uuid_text(uuid, 0xffff, i);
		st = vmmresv_admit(ab->adm, uuid, 4096,
		    VMMRESV_RESERVOIR_REQUIRE, &d);
		if (st != VMMRESV_STATUS_OK) {
			fail("hold: vmmresv_admit", st);
			return 1;
		}
		if (d.decision != VMMRESV_DECISION_USE_RESERVOIR) {
			fprintf(stderr, "admit_bench: hold: claim %lu "
			    "refused\n", i);
			return 1;
		}
	}
	printf("held %lu\n", n);
	fflush(stdout);
	while (getchar() != EOF)
		continue;
	for (i = 0; i < n; i++) {
		vmmresv_status st;

		uuid_text(uuid, 0xffff, i);
		st = vmmresv_abort(ab->adm, uuid, NULL);
		if (st != VMMRESV_STATUS_OK) {
			fail("hold: vmmresv_abort", st);
			rc = 1;
		}
	}
	printf("released\n");
	fflush(stdout);
	ab_close(ab);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "hold") == 0)
		return hold(argv[2]);
	if (argc == 5 && strcmp(argv[1], "launch") == 0)
		return launcher(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: admit_bench_worker hold <count> | "
	    "launch ledger|flock|racy|floor <id> <vm-bytes>\n");
	return 2;
}
#endif
