/* SPDX-License-Identifier: MPL-2.0 */
/*
 * vmmemu.h: shared by the /dev/vmmctl emulator (vmmctl_emu.c, an LD_PRELOAD
 * object), its CLI (vmmemu_ctl.c) and the self-test (selftest.c).
 *
 * Three parts:
 *  1. The illumos kernel ABI being emulated (ioctl numbers, structs), taken
 *     from illumos-gate usr/src/uts/intel/sys/vmm_dev.h and sys/vmm.h
 *     (interface version 18), and OS-8005's VM_ARC_RESV from the
 *     illumos-joyent usr/src/uts/i86pc/sys/vmm_dev.h of its two trees.
 *  2. The layout of the state file (env VMMEMU_STATE) shared by every
 *     process of one test: a header holding the counters of
 *     vmm_reservoir.c, then a fixed table of VMs.
 *  3. Helpers to lock/read/write that file, as static inline functions so
 *     that every program uses the same code.  The includer must define
 *     _GNU_SOURCE before any system header, and may define
 *     VMMEMU_SYS_OPEN / VMMEMU_SYS_CLOSE (the interposer points them at the
 *     real libc functions so that its own file accesses never recurse).
 *
 * LP64 only, like the kernel interface (vmm_open refuses non-LP64 callers
 * with EFBIG).
 */
#ifndef VMMEMU_H
#define VMMEMU_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before including vmmemu.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#if SIZE_MAX != UINT64_MAX || UINTPTR_MAX != UINT64_MAX
#error "the vmm ioctl ABI is LP64 only"
#endif

/* ------------------------------------------------------------------ */
/* 1. Kernel ABI                                                        */
/* ------------------------------------------------------------------ */

#define VMMEMU_PAGESIZE		((size_t)4096)
#define VMMEMU_PAGEOFFSET	(VMMEMU_PAGESIZE - 1)

/* sys/vmm_dev.h: ioctl numbers are plain ints, not _IOW()-style. */
#define VMMCTL_IOC_BASE		(('V' << 16) | ('M' << 8))	/* 0x564D00 */
#define VMM_IOC_BASE		(('v' << 16) | ('m' << 8))	/* 0x766D00 */
#define VMM_LOCK_IOC_BASE	(('v' << 16) | ('l' << 8))	/* 0x766C00 */

#define VMM_CREATE_VM		(VMMCTL_IOC_BASE | 0x01)
#define VMM_DESTROY_VM		(VMMCTL_IOC_BASE | 0x02)
#define VMM_VM_SUPPORTED	(VMMCTL_IOC_BASE | 0x03)
#define VMM_INTERFACE_VERSION	(VMMCTL_IOC_BASE | 0x04)
#define VMM_CHECK_IOMMU		(VMMCTL_IOC_BASE | 0x05)
#define VMM_RESV_QUERY		(VMMCTL_IOC_BASE | 0x10)
#define VMM_RESV_SET_TARGET	(VMMCTL_IOC_BASE | 0x11)
/* Pre-V9 meaning of 0x11 and 0x12: size passed BY VALUE (docs/kernel.md). */
#define VMM_RESV_ADD_LEGACY	(VMMCTL_IOC_BASE | 0x11)
#define VMM_RESV_REMOVE_LEGACY	(VMMCTL_IOC_BASE | 0x12)

#define VM_ALLOC_MEMSEG		(VMM_LOCK_IOC_BASE | 0x05)	/* 0x766C05 */
#define VM_DESTROY_SELF		(VMM_IOC_BASE | 0x25)		/* 0x766D25 */
/*
 * OS-8005's VM_ARC_RESV, in its two public illumos-joyent encodings: the
 * early tree's _IOW('v', IOCNUM_ARC_RESV = 258, uint64_t), length by
 * value; the later tree's (VMM_IOC_BASE | 0xfe), a pointer to a size_t
 * that vmm_sol_dev.c ddi_copyin()s.
 */
#define VM_ARC_RESV_BYVALUE	0x80087702UL
#define VM_ARC_RESV_COPYIN	(VMM_IOC_BASE | 0xfe)		/* 0x766DFE */

#define VMM_CTL_DEV		"/dev/vmmctl"
#define VMM_INST_DEV_PREFIX	"/dev/vmm/"

#define VM_MAX_NAMELEN		128
#define VM_MAX_SEG_NAMELEN	128
/* illumos vmm.c: VM_MAX_MEMSEGS (segment ids 0..4). */
#define VM_MAX_MEMSEGS		5

#define VCF_RESERVOIR_MEM	((uint64_t)1 << 0)
#define VCF_TRACK_DIRTY		((uint64_t)1 << 1)

#define VMM_CURRENT_INTERFACE_VERSION	18
/* SET_TARGET replaced the by-value RESV_ADD at interface version 9. */
#define VMM_VERSION_SET_TARGET		9
/* propolis: before V6 only vmmctl answered VMM_INTERFACE_VERSION. */
#define VMM_VERSION_INSTANCE_VERSION	6

/* vmm_reservoir.c: VMMR_TARGET_INACTIVE */
#define VMMR_TARGET_INACTIVE	SIZE_MAX

struct vm_create_req {
	char		name[VM_MAX_NAMELEN];
	uint64_t	flags;
};

struct vm_destroy_req {
	char		name[VM_MAX_NAMELEN];
};

struct vmm_resv_query {
	size_t	vrq_free_sz;
	size_t	vrq_alloc_sz;
	size_t	vrq_alloc_transient_sz;
	size_t	vrq_limit;
};

/*
 * grwilson/oxide-illumos@397736a8 "rawmem" fork: 6 x size_t with no version
 * bump.  Emitted when VMMEMU_QUERY_SIZE=48.
 */
struct vmm_resv_query_rawmem {
	size_t	vrq_free_sz;
	size_t	vrq_alloc_sz;
	size_t	vrq_alloc_transient_sz;
	size_t	vrq_limit;
	size_t	vrq_rawmem_total_sz;
	size_t	vrq_rawmem_free_sz;
};
/* Recognisable values for the two fork-only fields. */
#define VMMEMU_RAWMEM_TOTAL_PATTERN	((size_t)0x5241574d454d0001ULL)
#define VMMEMU_RAWMEM_FREE_PATTERN	((size_t)0x5241574d454d0002ULL)

struct vmm_resv_target {
	size_t	vrt_target_sz;
	size_t	vrt_chunk_sz;
	size_t	vrt_result_sz;
};

struct vm_memseg {
	int	segid;
	size_t	len;
	char	name[VM_MAX_SEG_NAMELEN];
};

_Static_assert(sizeof (struct vm_create_req) == 136, "vm_create_req");
_Static_assert(offsetof(struct vm_create_req, flags) == 128, "flags");
_Static_assert(sizeof (struct vm_destroy_req) == 128, "vm_destroy_req");
_Static_assert(sizeof (struct vmm_resv_query) == 32, "vmm_resv_query");
_Static_assert(sizeof (struct vmm_resv_query_rawmem) == 48, "rawmem query");
_Static_assert(sizeof (struct vmm_resv_target) == 24, "vmm_resv_target");
_Static_assert(offsetof(struct vmm_resv_target, vrt_result_sz) == 16, "rs");
_Static_assert(offsetof(struct vm_memseg, segid) == 0, "segid");
_Static_assert(offsetof(struct vm_memseg, len) == 8, "len after 4B pad");
_Static_assert(offsetof(struct vm_memseg, name) == 16, "name");
_Static_assert(sizeof (struct vm_memseg) == 144, "vm_memseg");

/* ------------------------------------------------------------------ */
/* 2. State file                                                        */
/* ------------------------------------------------------------------ */

#define VMMEMU_STATE_MAGIC	UINT64_C(0x31304d454d4d5600)	/* "\0VMMEM01" */
#define VMMEMU_STATE_VERSION	2
#define VMMEMU_MAX_VMS		1024
#define VMMEMU_MAX_INFLIGHT	64
#define VMMEMU_DEFAULT_PHYSMEM	(UINT64_C(16) << 30)

/*
 * A growth in flight with vmmr_lock dropped (vmmr_adding_sz share).  Its
 * owner holds the slot's liveness lock (below) meanwhile; pid is what the
 * owner's getpid() said, for show only: in another PID namespace it names
 * someone else.
 */
struct vmmemu_inflight {
	int64_t		pid;		/* informational; 0 with bytes 0 */
	uint64_t	bytes;
	uint64_t	in_use;		/* 1 = taken */
};

struct vmmemu_hdr {
	uint64_t	magic;
	uint32_t	version;
	uint32_t	hdr_size;
	uint32_t	vm_size;
	uint32_t	max_vms;
	/* Fixed at init, like vmmr_init() at module load. */
	uint64_t	physmem;		/* bytes */
	uint64_t	physmem_pages;
	uint64_t	pages_pp_maximum;
	uint64_t	limit;			/* vmmr_total_limit */
	/* vmm_reservoir.c counters, protected by the file lock. */
	uint64_t	free_sz;		/* vmmr_free_sz */
	uint64_t	free_transient_sz;	/* vmmr_free_transient_sz */
	uint64_t	adding_sz;		/* vmmr_adding_sz */
	uint64_t	alloc_sz;		/* vmmr_alloc_sz */
	uint64_t	alloc_transient_sz;	/* vmmr_alloc_transient_sz */
	uint64_t	target_sz;		/* vmmr_target_sz */
	int64_t		resizer_pid;		/* informational (see below) */
	/* Emulator statistics. */
	uint64_t	grown_total;		/* bytes added by SET_TARGET/ADD */
	uint64_t	allocs_ok;
	uint64_t	allocs_refused;
	uint64_t	max_total_seen;
	uint64_t	limit_exceeded;		/* invariant: stays 0 */
	uint64_t	vm_count;
	uint64_t	next_serial;
	struct vmmemu_inflight inflight[VMMEMU_MAX_INFLIGHT];
	uint64_t	eintr_given;		/* EINTRs injected so far */
	uint64_t	arc_resv_pages;		/* arc_virt_machine_reserved */
	uint64_t	arc_ioctls_byvalue;	/* 0x80087702 received */
	uint64_t	arc_ioctls_copyin;	/* 0x766DFE received */
	uint64_t	reserved[4];
};

struct vmmemu_vm {
	char		name[VM_MAX_NAMELEN];
	uint64_t	flags;		/* vm_create_req.flags as given */
	uint64_t	mem;		/* bytes held by all segments */
	uint64_t	serial;		/* unique per VM ever created */
	uint32_t	in_use;
	uint32_t	transient;	/* (flags & VCF_RESERVOIR_MEM) == 0 */
	uint64_t	seg_len[VM_MAX_MEMSEGS];	/* 0 = no segment */
	uint32_t	seg_sysmem;	/* bit i: segment i is sysmem */
	uint32_t	pad;
	uint64_t	arc_resv;	/* OS-8005 vm->arc_resv, pages */
};

_Static_assert(sizeof (struct vmmemu_hdr) % 8 == 0, "hdr alignment");
_Static_assert(sizeof (struct vmmemu_vm) % 8 == 0, "vm alignment");

#define VMMEMU_VM_OFFSET(i) \
	((off_t)(sizeof (struct vmmemu_hdr) + (size_t)(i) * \
	    sizeof (struct vmmemu_vm)))
#define VMMEMU_STATE_SIZE	VMMEMU_VM_OFFSET(VMMEMU_MAX_VMS)

/* ------------------------------------------------------------------ */
/* 3. Helpers                                                           */
/* ------------------------------------------------------------------ */

#ifndef VMMEMU_SYS_OPEN
#define VMMEMU_SYS_OPEN(p, f, m)	open((p), (f), (m))
#endif
#ifndef VMMEMU_SYS_CLOSE
#define VMMEMU_SYS_CLOSE(fd)		close(fd)
#endif

static inline void vmmemu_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A config/state error in the test fixture itself: always say so. */
static inline void
vmmemu_warn(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(buf, sizeof (buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vmmemu: %s\n", buf);
}

/*
 * Parse a byte count: decimal digits, optionally followed by one binary
 * suffix K, M, G or T (either case).  Returns 0, or -1 on bad input or
 * overflow.
 */
static inline int
vmmemu_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (s == NULL || *s < '0' || *s > '9')
		return (-1);
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return (-1);
		v = v * 10 + d;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K': mult = UINT64_C(1) << 10; p++; break;
	case 'm': case 'M': mult = UINT64_C(1) << 20; p++; break;
	case 'g': case 'G': mult = UINT64_C(1) << 30; p++; break;
	case 't': case 'T': mult = UINT64_C(1) << 40; p++; break;
	default:
		return (-1);
	}
	if (*p != '\0')
		return (-1);
	if (v != 0 && mult > UINT64_MAX / v)
		return (-1);
	*out = v * mult;
	return (0);
}

/*
 * Read a size-valued env var.  Unset or empty gives dflt.  A malformed
 * value is reported and gives -1 (callers turn that into EIO).
 */
static inline int
vmmemu_env_size(const char *name, uint64_t dflt, uint64_t *out)
{
	const char *s = getenv(name);

	if (s == NULL || *s == '\0') {
		*out = dflt;
		return (0);
	}
	if (vmmemu_parse_size(s, out) != 0) {
		vmmemu_warn("bad value %s=\"%s\"", name, s);
		return (-1);
	}
	return (0);
}

/* Boolean env var: set, non-empty and not "0". */
static inline int
vmmemu_env_flag(const char *name)
{
	const char *s = getenv(name);
	return (s != NULL && *s != '\0' && strcmp(s, "0") != 0);
}

/*
 * vmmr_init(): "all of physmem less 120% of pages_pp_maximum".  Computed
 * once.  The kernel would wrap if pages_pp_maximum*12 > physmem*10 (a tiny
 * machine); the emulator clamps to 0 instead.
 */
static inline uint64_t
vmmemu_compute_limit(uint64_t physmem_pages, uint64_t pages_pp_maximum)
{
	if (physmem_pages > UINT64_MAX / 10 / VMMEMU_PAGESIZE ||
	    pages_pp_maximum > UINT64_MAX / 12)
		return (0);
	uint64_t a = physmem_pages * 10, b = pages_pp_maximum * 12;
	if (b >= a)
		return (0);
	return (((a - b) * VMMEMU_PAGESIZE) / 10);
}

/* Fill a fresh header from the environment.  0 or -1 (bad env). */
static inline int
vmmemu_hdr_init(struct vmmemu_hdr *h)
{
	uint64_t physmem, ppm;

	if (vmmemu_env_size("VMMEMU_PHYSMEM", VMMEMU_DEFAULT_PHYSMEM,
	    &physmem) != 0)
		return (-1);
	uint64_t pages = physmem / VMMEMU_PAGESIZE;
	/*
	 * init_pages_pp_maximum(): (availrmem_initial - avrmem_delta)/25 +
	 * btop(4 MiB).  Simplified: physmem pages stand in for availrmem, and
	 * the floor tune.t_minarmem + 100 is not applied.
	 */
	if (vmmemu_env_size("VMMEMU_PAGES_PP_MAXIMUM", pages / 25 + 1024,
	    &ppm) != 0)
		return (-1);

	memset(h, 0, sizeof (*h));
	h->magic = VMMEMU_STATE_MAGIC;
	h->version = VMMEMU_STATE_VERSION;
	h->hdr_size = (uint32_t)sizeof (struct vmmemu_hdr);
	h->vm_size = (uint32_t)sizeof (struct vmmemu_vm);
	h->max_vms = VMMEMU_MAX_VMS;
	h->physmem = pages * VMMEMU_PAGESIZE;
	h->physmem_pages = pages;
	h->pages_pp_maximum = ppm;
	h->limit = vmmemu_compute_limit(pages, ppm);
	h->target_sz = VMMR_TARGET_INACTIVE;
	h->next_serial = 1;
	return (0);
}

static inline int
vmmemu_hdr_valid(const struct vmmemu_hdr *h)
{
	return (h->magic == VMMEMU_STATE_MAGIC &&
	    h->version == VMMEMU_STATE_VERSION &&
	    h->hdr_size == sizeof (struct vmmemu_hdr) &&
	    h->vm_size == sizeof (struct vmmemu_vm) &&
	    h->max_vms == VMMEMU_MAX_VMS &&
	    h->vm_count <= VMMEMU_MAX_VMS);
}

/* Full-length pread/pwrite; 0 or -1. */
static inline int
vmmemu_pread_full(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = pread(fd, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return (-1);
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return (0);
}

static inline int
vmmemu_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t r = pwrite(fd, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return (-1);
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return (0);
}

static inline int
vmmemu_flock(int fd, int op)
{
	int r;
	do {
		r = flock(fd, op);
	} while (r != 0 && errno == EINTR);
	return (r);
}

/*
 * Liveness, across PID namespaces.  A pid means nothing outside its own
 * namespace (two launchers in two namespaces can both be pid 2, and
 * kill(pid, 0) or /proc there reach a stranger or nothing), so the
 * emulator does not ask after pids: whoever runs a resize, or has an
 * addition in flight, holds a Linux open-file-description lock
 * (F_OFD_SETLK) on one byte of the state file, past its end, on the
 * descriptor it keeps open for that operation.  The kernel drops the lock
 * when that description's last descriptor closes, process death included,
 * whatever namespace the holder runs in, and a checker asks the kernel
 * (F_OFD_GETLK from its own description).  OFD locks, not POSIX record
 * locks: a POSIX lock belongs to the process and goes when the process
 * closes any descriptor of the file, which every emulated ioctl in
 * another thread does; an OFD lock is not touched by that.  The flock()
 * that serialises the state is a different lock: Linux keeps flock and
 * fcntl locks apart.
 */
#define VMMEMU_LIVE_OFF		((off_t)1 << 40)
#define VMMEMU_LIVE_RESIZER	VMMEMU_LIVE_OFF
#define VMMEMU_LIVE_INFLIGHT(i)	(VMMEMU_LIVE_OFF + 1 + (off_t)(i))

/* Take (F_WRLCK) or drop (F_UNLCK) a liveness byte.  0 or an errno. */
static inline int
vmmemu_live_set(int fd, off_t byte, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof (fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return (0);
		if (errno != EINTR)
			return (errno);
	}
}

/*
 * Is the liveness byte held by another open file description?  1 held,
 * 0 free, -1 could not tell -- which callers treat as alive: an error
 * while checking is never "dead".
 */
static inline int
vmmemu_live_held(int fd, off_t byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof (fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	for (;;) {
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0)
			return (fl.l_type != F_UNLCK);
		if (errno != EINTR)
			return (-1);
	}
}

/* Dead for sure: free (0), not "could not tell" (-1). */
static inline int
vmmemu_live_gone(int fd, off_t byte)
{
	return (vmmemu_live_held(fd, byte) == 0);
}

static inline uint64_t
vmmemu_sat_add(uint64_t a, uint64_t b)
{
	return (a > UINT64_MAX - b ? UINT64_MAX : a + b);
}

/* free + alloc + adding + alloc_transient + free_transient, saturating. */
static inline uint64_t
vmmemu_total(const struct vmmemu_hdr *h)
{
	uint64_t t = h->alloc_sz;
	t = vmmemu_sat_add(t, h->free_sz);
	t = vmmemu_sat_add(t, h->adding_sz);
	t = vmmemu_sat_add(t, h->alloc_transient_sz);
	t = vmmemu_sat_add(t, h->free_transient_sz);
	return (t);
}

/*
 * Is a SET_TARGET running in a live process?  fd: the caller's own open
 * of the state file (not the resizer's).
 */
static inline int
vmmemu_target_active(int fd, const struct vmmemu_hdr *h)
{
	return (h->target_sz != VMMR_TARGET_INACTIVE &&
	    !vmmemu_live_gone(fd, VMMEMU_LIVE_RESIZER));
}

/*
 * A process killed while it held a resize (or an addition with the lock
 * dropped) would otherwise leave EALREADY and an inflated adding_sz for
 * ever.  The kernel has no such case (the thread finishes or unwinds in
 * the kernel); the emulator treats the dead process's in-flight chunk as
 * rolled back.  Returns 1 if the header changed.
 */
static inline int
vmmemu_reap_dead(int fd, struct vmmemu_hdr *h)
{
	int changed = 0;

	if (h->target_sz != VMMR_TARGET_INACTIVE &&
	    vmmemu_live_gone(fd, VMMEMU_LIVE_RESIZER)) {
		h->target_sz = VMMR_TARGET_INACTIVE;
		h->resizer_pid = 0;
		changed = 1;
	}
	for (int i = 0; i < VMMEMU_MAX_INFLIGHT; i++) {
		struct vmmemu_inflight *f = &h->inflight[i];
		if (f->in_use &&
		    vmmemu_live_gone(fd, VMMEMU_LIVE_INFLIGHT(i))) {
			h->adding_sz -= (f->bytes <= h->adding_sz) ?
			    f->bytes : h->adding_sz;
			f->pid = 0;
			f->bytes = 0;
			f->in_use = 0;
			changed = 1;
		}
	}
	return (changed);
}

/* An open, locked state file and a copy of its header. */
struct vmmemu_state {
	int			fd;
	const char		*path;
	struct vmmemu_hdr	h;
};

static inline int
vmmemu_state_read_hdr(struct vmmemu_state *st)
{
	const char *path = st->path;

	if (vmmemu_pread_full(st->fd, &st->h, sizeof (st->h), 0) != 0) {
		vmmemu_warn("%s: cannot read state", path);
		return (EIO);
	}
	if (!vmmemu_hdr_valid(&st->h)) {
		vmmemu_warn("%s: corrupt or foreign state file", path);
		return (EIO);
	}
	return (0);
}

/*
 * Write the header back, first recording the invariant statistics: this
 * is called after every change.
 */
static inline int
vmmemu_state_write_hdr(struct vmmemu_state *st)
{
	struct vmmemu_hdr *h = &st->h;
	uint64_t total = vmmemu_total(h);

	if (total > h->max_total_seen)
		h->max_total_seen = total;
	if (total > h->limit)
		h->limit_exceeded++;
	if (vmmemu_pwrite_full(st->fd, h, sizeof (*h), 0) != 0) {
		vmmemu_warn("cannot write state");
		return (EIO);
	}
	return (0);
}

static inline void
vmmemu_state_close(struct vmmemu_state *st)
{
	if (st->fd >= 0) {
		(void) vmmemu_flock(st->fd, LOCK_UN);
		VMMEMU_SYS_CLOSE(st->fd);
		st->fd = -1;
	}
}

/* Initialise (or re-initialise) an open, locked file. */
static inline int
vmmemu_state_format(struct vmmemu_state *st)
{
	if (vmmemu_hdr_init(&st->h) != 0)
		return (EIO);
	if (ftruncate(st->fd, 0) != 0 ||
	    ftruncate(st->fd, VMMEMU_STATE_SIZE) != 0) {
		vmmemu_warn("cannot size state file: %s", strerror(errno));
		return (EIO);
	}
	/* The table is all zeroes (sparse); the header goes last. */
	if (vmmemu_pwrite_full(st->fd, &st->h, sizeof (st->h), 0) != 0) {
		vmmemu_warn("cannot write state");
		return (EIO);
	}
	return (0);
}

/*
 * Open the state file named by VMMEMU_STATE and take the lock ("locked
 * like the kernel's vmmr_lock mutex").  A fresh fd per operation, so that
 * threads and fork()ed children serialise on flock like everyone else.
 * Creates and initialises the file if it is missing or empty (size 0, or
 * a zero magic left by a crash between sizing and writing the header).
 * reinit != 0 re-initialises unconditionally (vmmemu_ctl init).
 * Returns 0 or an errno (EIO for fixture errors, with a message).
 */
static inline int
vmmemu_state_open(struct vmmemu_state *st, int reinit)
{
	const char *path = getenv("VMMEMU_STATE");
	struct stat sb;
	int err;

	st->fd = -1;
	st->path = path;
	if (path == NULL || *path == '\0') {
		vmmemu_warn("VMMEMU_STATE is not set");
		return (EIO);
	}
	st->fd = VMMEMU_SYS_OPEN(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (st->fd < 0) {
		vmmemu_warn("cannot open state file %s: %s", path,
		    strerror(errno));
		return (EIO);
	}
	if (vmmemu_flock(st->fd, LOCK_EX) != 0 || fstat(st->fd, &sb) != 0) {
		vmmemu_warn("cannot lock state file %s: %s", path,
		    strerror(errno));
		VMMEMU_SYS_CLOSE(st->fd);
		st->fd = -1;
		return (EIO);
	}
	if (!reinit && sb.st_size >= (off_t)sizeof (struct vmmemu_hdr)) {
		uint64_t magic = 0;
		if (vmmemu_pread_full(st->fd, &magic, sizeof (magic), 0) == 0 &&
		    magic == 0)
			reinit = 1;
	}
	if (reinit || sb.st_size == 0)
		err = vmmemu_state_format(st);
	else if (sb.st_size < VMMEMU_STATE_SIZE) {
		vmmemu_warn("%s: state file too short", path);
		err = EIO;
	} else
		err = vmmemu_state_read_hdr(st);
	if (err != 0)
		vmmemu_state_close(st);
	return (err);
}

/* Drop the lock (vmmr_lock released around page allocation). */
static inline void
vmmemu_state_unlock(struct vmmemu_state *st)
{
	(void) vmmemu_flock(st->fd, LOCK_UN);
}

/* Re-take the lock and re-read the header others may have changed. */
static inline int
vmmemu_state_relock(struct vmmemu_state *st)
{
	if (vmmemu_flock(st->fd, LOCK_EX) != 0)
		return (EIO);
	return (vmmemu_state_read_hdr(st));
}

/* Read the whole VM table (VMMEMU_MAX_VMS entries). */
static inline int
vmmemu_state_read_vms(struct vmmemu_state *st, struct vmmemu_vm *tab)
{
	if (vmmemu_pread_full(st->fd, tab,
	    sizeof (struct vmmemu_vm) * VMMEMU_MAX_VMS,
	    VMMEMU_VM_OFFSET(0)) != 0) {
		vmmemu_warn("cannot read VM table");
		return (EIO);
	}
	return (0);
}

static inline int
vmmemu_state_write_vm(struct vmmemu_state *st, size_t i,
    const struct vmmemu_vm *vm)
{
	if (vmmemu_pwrite_full(st->fd, vm, sizeof (*vm),
	    VMMEMU_VM_OFFSET(i)) != 0) {
		vmmemu_warn("cannot write VM table");
		return (EIO);
	}
	return (0);
}

/* Index of the in-use VM called name (NUL-terminated), or -1. */
static inline int
vmmemu_find_vm(const struct vmmemu_vm *tab, const char *name)
{
	for (int i = 0; i < VMMEMU_MAX_VMS; i++) {
		if (tab[i].in_use &&
		    strncmp(tab[i].name, name, VM_MAX_NAMELEN) == 0)
			return (i);
	}
	return (-1);
}

#endif /* VMMEMU_H */
