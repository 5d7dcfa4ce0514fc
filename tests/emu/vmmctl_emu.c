/* SPDX-License-Identifier: MPL-2.0 */
/*
 * vmmctl_emu.c: an LD_PRELOAD emulator of the illumos bhyve /dev/vmmctl
 * device and its VMM memory reservoir, for testing libvmmresv on Linux.
 *
 * It interposes open/open64/openat/openat64/__open_2/__open64_2 (and the
 * fortified __openat_2/__openat64_2), ioctl and close.  Opens of the ctl
 * path (env VMMEMU_DEVICE, default /dev/vmmctl) and of /dev/vmm/<name>
 * return a real, unique fd (a fresh open of /dev/null) that is recorded in
 * a table; ioctls on those fds are answered here, everything else is
 * forwarded to libc untouched.  Nothing is intercepted while VMMEMU_STATE
 * is unset.
 *
 * The reservoir follows illumos usr/src/uts/intel/io/vmm/vmm_reservoir.c
 * (vmmr_add, vmmr_remove, vmmr_set_target, vmmr_ioctl, vmmr_alloc,
 * vmmr_free) and vmm_sol_dev.c (vmm_open, vmm_ioctl, vmm_ctl_ioctl,
 * vmmdev_do_vm_create/destroy), and OS-8005's VM_ARC_RESV follows the two
 * illumos-joyent trees' usr/src/uts/i86pc/io/vmm/vmm_sol_dev.c.  Its state
 * lives in the file VMMEMU_STATE, shared by every process of one test and
 * locked with flock() wherever the kernel holds vmmr_lock.  Simplifications
 * are marked "SIMPLIFIED" below and listed in README.md.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -pedantic -fPIC -shared
 *            -o libvmmemu.so vmmctl_emu.c -ldl -lpthread
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE	/* we define open() etc. ourselves */

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>

static int emu_sys_open(const char *path, int flags, mode_t mode);
static int emu_sys_close(int fd);
#define VMMEMU_SYS_OPEN(p, f, m)	emu_sys_open((p), (f), (m))
#define VMMEMU_SYS_CLOSE(fd)		emu_sys_close(fd)
#include "vmmemu.h"

/* glibc's fortified entry points; declared only under _FORTIFY_SOURCE. */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);

/* ------------------------------------------------------------------ */
/* The real libc functions, resolved once (pthread_once).              */
/* ------------------------------------------------------------------ */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*close_fn)(int);
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);

static struct {
	open_fn		open, open64;
	openat_fn	openat, openat64;
	open2_fn	open_2, open64_2;
	openat2_fn	openat_2, openat64_2;
	ioctl_fn	ioctl;
	close_fn	close;
	fcntl_fn	fcntl, fcntl64;
	dup_fn		dup;
	dup2_fn		dup2;
	dup3_fn		dup3;
} real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* The fd table: our fds -> what they are. */
enum emu_kind { EMU_CTL = 1, EMU_INST = 2 };

struct emu_fd {
	int		fd;
	int		kind;
	int		writable;	/* opened with FWRITE */
	dev_t		rdev;		/* identity of the /dev/null open, */
	ino_t		ino;		/* to spot an fd replaced behind us */
	uint64_t	serial;		/* EMU_INST: which VM incarnation */
	char		name[VM_MAX_NAMELEN];
};

#define EMU_MAX_FDS	1024
static struct emu_fd fdtab[EMU_MAX_FDS];
static size_t fdtab_n;
static pthread_mutex_t fdtab_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * Descriptors of the state file that hold a liveness lock (vmmemu.h) for
 * an operation running in some thread.  A fork() copies them into the
 * child, and an OFD lock lives while any copy does: a child outliving a
 * dead resizer would keep its resize "alive".  So the child closes its
 * copies (the parent's locks stay, held by the parent's own copies).
 */
#define EMU_MAX_LIVE_FDS	64
static int live_fds[EMU_MAX_LIVE_FDS];
static size_t live_n;

static void fork_prepare(void) { (void) pthread_mutex_lock(&fdtab_mu); }
static void fork_parent(void) { (void) pthread_mutex_unlock(&fdtab_mu); }
static void
fork_child(void)
{
	for (size_t i = 0; i < live_n; i++)
		(void) emu_sys_close(live_fds[i]);
	live_n = 0;
	(void) pthread_mutex_unlock(&fdtab_mu);
}

/* Note fd as holding liveness locks (idempotent).  0 or EIO when full. */
static int
live_fd_register(int fd)
{
	int err = 0;
	(void) pthread_mutex_lock(&fdtab_mu);
	size_t i;
	for (i = 0; i < live_n && live_fds[i] != fd; i++)
		;
	if (i == live_n) {
		if (live_n < EMU_MAX_LIVE_FDS)
			live_fds[live_n++] = fd;
		else
			err = EIO;
	}
	(void) pthread_mutex_unlock(&fdtab_mu);
	return (err);
}

static void
live_fd_unregister(int fd)
{
	(void) pthread_mutex_lock(&fdtab_mu);
	for (size_t i = 0; i < live_n; i++) {
		if (live_fds[i] == fd) {
			live_fds[i] = live_fds[--live_n];
			break;
		}
	}
	(void) pthread_mutex_unlock(&fdtab_mu);
}

/* ISO C has no object->function pointer conversion; memcpy is exact. */
static void
resolve(void *dst, size_t sz, const char *name)
{
	void *sym = dlsym(RTLD_NEXT, name);
	memcpy(dst, &sym, sz);
}

static void
resolve_all(void)
{
	resolve(&real.open, sizeof (real.open), "open");
	resolve(&real.open64, sizeof (real.open64), "open64");
	resolve(&real.openat, sizeof (real.openat), "openat");
	resolve(&real.openat64, sizeof (real.openat64), "openat64");
	resolve(&real.open_2, sizeof (real.open_2), "__open_2");
	resolve(&real.open64_2, sizeof (real.open64_2), "__open64_2");
	resolve(&real.openat_2, sizeof (real.openat_2), "__openat_2");
	resolve(&real.openat64_2, sizeof (real.openat64_2), "__openat64_2");
	resolve(&real.ioctl, sizeof (real.ioctl), "ioctl");
	resolve(&real.close, sizeof (real.close), "close");
	resolve(&real.fcntl, sizeof (real.fcntl), "fcntl");
	resolve(&real.fcntl64, sizeof (real.fcntl64), "fcntl64");
	resolve(&real.dup, sizeof (real.dup), "dup");
	resolve(&real.dup2, sizeof (real.dup2), "dup2");
	resolve(&real.dup3, sizeof (real.dup3), "dup3");
	if (real.fcntl64 == NULL)
		real.fcntl64 = real.fcntl;
	if (real.open == NULL || real.openat == NULL || real.ioctl == NULL ||
	    real.close == NULL || real.fcntl == NULL || real.dup == NULL ||
	    real.dup2 == NULL || real.dup3 == NULL) {
		static const char m[] = "vmmemu: cannot resolve libc symbols\n";
		(void) !write(STDERR_FILENO, m, sizeof (m) - 1);
		abort();
	}
	/* Keep the fd table consistent across fork() in threaded callers. */
	(void) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void
real_init(void)
{
	(void) pthread_once(&real_once, resolve_all);
}

static int
emu_sys_open(const char *path, int flags, mode_t mode)
{
	real_init();
	return (real.open(path, flags, mode));
}

static int
emu_sys_close(int fd)
{
	real_init();
	return (real.close(fd));
}

/* ------------------------------------------------------------------ */
/* fd table                                                            */
/* ------------------------------------------------------------------ */

/* Caller holds fdtab_mu. */
static ssize_t
fdtab_index(int fd)
{
	for (size_t i = 0; i < fdtab_n; i++) {
		if (fdtab[i].fd == fd)
			return ((ssize_t)i);
	}
	return (-1);
}

/* Caller holds fdtab_mu. */
static void
fdtab_remove_at(size_t i)
{
	fdtab[i] = fdtab[--fdtab_n];
}

/*
 * Copy the entry for fd into *out; 1 if fd is ours.  An entry whose fd no
 * longer refers to the file we opened (closed behind our back, e.g. by
 * dup2() or close_range(), and reused) is dropped: such an fd is not ours.
 */
static int
fdtab_lookup(int fd, struct emu_fd *out)
{
	struct stat sb;
	int found = 0;

	(void) pthread_mutex_lock(&fdtab_mu);
	ssize_t i = fdtab_index(fd);
	if (i >= 0) {
		int saved = errno;
		if (fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) &&
		    sb.st_rdev == fdtab[i].rdev && sb.st_ino == fdtab[i].ino) {
			*out = fdtab[i];
			found = 1;
		} else {
			fdtab_remove_at((size_t)i);
		}
		errno = saved;
	}
	(void) pthread_mutex_unlock(&fdtab_mu);
	return (found);
}

/* ------------------------------------------------------------------ */
/* Safe user copies (ddi_copyin/ddi_copyout)                           */
/* ------------------------------------------------------------------ */

/*
 * copyin through process_vm_readv(): a bad user address gives EFAULT
 * instead of SIGSEGV, and valgrind marks the kernel-side copy defined
 * without complaining about undefined padding in the caller's struct
 * (which a kernel copyin would not care about either).  If the syscall is
 * unavailable (ENOSYS, seccomp EPERM) fall back to memcpy.
 */
static int
emu_copyin(const void *uaddr, void *kbuf, size_t n)
{
	const void *volatile up = uaddr;
	if (up == NULL)
		return (EFAULT);
	int saved = errno;
	struct iovec l = { .iov_base = kbuf, .iov_len = n };
	struct iovec r = { .iov_base = (void *)(uintptr_t)uaddr, .iov_len = n };
	ssize_t got = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	int e = errno;
	errno = saved;
	if (got == (ssize_t)n)
		return (0);
	if (got >= 0 || e == EFAULT)
		return (EFAULT);
	memcpy(kbuf, uaddr, n);
	return (0);
}

/*
 * copyout: process_vm_writev() does the write and reports a bad address
 * (unmapped, read-only) as EFAULT; valgrind does not inspect the "remote"
 * address, so the deliberate bad-pointer tests are not memcheck errors.
 * The same bytes are then stored again with memcpy so that valgrind knows
 * the caller's buffer is now defined, as after a real ioctl.  Fallback as
 * for copyin.
 */
static int
emu_copyout(const void *kbuf, void *uaddr, size_t n)
{
	void *volatile up = uaddr;
	if (up == NULL)
		return (EFAULT);
	int saved = errno;
	struct iovec l = { .iov_base = (void *)(uintptr_t)kbuf, .iov_len = n };
	struct iovec r = { .iov_base = uaddr, .iov_len = n };
	ssize_t put = process_vm_writev(getpid(), &l, 1, &r, 1, 0);
	int e = errno;
	errno = saved;
	if (put >= 0 && put != (ssize_t)n)
		return (EFAULT);
	if (put < 0 && e == EFAULT)
		return (EFAULT);
	memcpy(uaddr, kbuf, n);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Environment                                                         */
/* ------------------------------------------------------------------ */

static int
emu_active(void)
{
	const char *s = getenv("VMMEMU_STATE");
	return (s != NULL && *s != '\0');
}

static const char *
emu_ctl_path(void)
{
	const char *s = getenv("VMMEMU_DEVICE");
	return ((s != NULL && *s != '\0') ? s : VMM_CTL_DEV);
}

/* VMMEMU_VERSION, default 18. */
static int
emu_version(void)
{
	const char *s = getenv("VMMEMU_VERSION");
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return (VMM_CURRENT_INTERFACE_VERSION);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > INT32_MAX) {
		vmmemu_warn("bad value VMMEMU_VERSION=\"%s\", using %d", s,
		    VMM_CURRENT_INTERFACE_VERSION);
		return (VMM_CURRENT_INTERFACE_VERSION);
	}
	return ((int)v);
}

/* A plain-integer env var; 0 if unset; -1 (reported) if malformed. */
static int
emu_env_u64(const char *name, uint64_t *out)
{
	return (vmmemu_env_size(name, 0, out));
}

/*
 * A scratch copy of the VM table (160 KiB) for one operation.  Heap, not
 * stack (callers' threads may have small stacks) and not static (no lock
 * to get stuck across fork()).
 */
static struct vmmemu_vm *
vmtab_alloc(void)
{
	return (calloc(VMMEMU_MAX_VMS, sizeof (struct vmmemu_vm)));
}

static void
emu_sleep_us(uint64_t us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_nsec = (long)(us % 1000000) * 1000
	};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* open()                                                              */
/* ------------------------------------------------------------------ */

#define EMU_NEEDS_MODE(f) \
	(((f) & O_CREAT) != 0 || ((f) & O_TMPFILE) == O_TMPFILE)

/*
 * Decide whether path is one of ours and, if so, perform the open.
 * Returns 0 to forward to libc, 1 when handled (*ret set, errno set on
 * failure).
 */
static int
emu_try_open(const char *path, int flags, int *ret)
{
	const char *volatile vp = path;
	int kind;
	const char *name = NULL;

	if (vp == NULL || !emu_active())
		return (0);
	if (strcmp(path, emu_ctl_path()) == 0) {
		kind = EMU_CTL;
	} else if (strncmp(path, VMM_INST_DEV_PREFIX,
	    sizeof (VMM_INST_DEV_PREFIX) - 1) == 0) {
		kind = EMU_INST;
		name = path + sizeof (VMM_INST_DEV_PREFIX) - 1;
	} else {
		return (0);
	}
	real_init();

	int saved = errno, err = 0;
	struct emu_fd ent;
	memset(&ent, 0, sizeof (ent));
	ent.kind = kind;
	ent.writable = (flags & O_ACCMODE) == O_WRONLY ||
	    (flags & O_ACCMODE) == O_RDWR;

	/* What the VFS says before the driver is called: the node exists. */
	if ((flags & O_CREAT) && (flags & O_EXCL))
		err = EEXIST;
	else if (flags & O_DIRECTORY)
		err = ENOTDIR;

	if (err == 0 && kind == EMU_CTL) {
		/*
		 * vmm_open(): "Master control device must be opened
		 * exclusively" -- (flag & FEXCL) != FEXCL gives EINVAL.  The
		 * exclusivity is not tracked: many opens may coexist.
		 */
		if ((flags & O_EXCL) == 0)
			err = EINVAL;
	} else if (err == 0) {
		/* /dev/vmm/<name> exists only while VM <name> does. */
		size_t len = strnlen(name, VM_MAX_NAMELEN);
		if (len == 0 || len >= VM_MAX_NAMELEN ||
		    strchr(name, '/') != NULL) {
			err = ENOENT;
		} else {
			struct vmmemu_vm *tab = vmtab_alloc();
			struct vmmemu_state st;
			if (tab == NULL)
				err = ENOMEM;
			else if ((err = vmmemu_state_open(&st, 0)) == 0) {
				err = vmmemu_state_read_vms(&st, tab);
				if (err == 0) {
					int i = vmmemu_find_vm(tab, name);
					if (i < 0)
						err = ENOENT;
					else
						ent.serial = tab[i].serial;
				}
				vmmemu_state_close(&st);
			}
			free(tab);
			memcpy(ent.name, name, len + 1);
		}
	}
	if (err != 0) {
		errno = err;
		*ret = -1;
		return (1);
	}

	/* A real, unique fd; honour O_CLOEXEC and the access mode. */
	int fd = real.open("/dev/null",
	    (flags & (O_ACCMODE | O_CLOEXEC | O_NONBLOCK)));
	if (fd < 0) {
		*ret = -1;		/* errno from open, e.g. EMFILE */
		return (1);
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		err = errno;
		(void) real.close(fd);
		errno = err;
		*ret = -1;
		return (1);
	}
	ent.fd = fd;
	ent.rdev = sb.st_rdev;
	ent.ino = sb.st_ino;

	(void) pthread_mutex_lock(&fdtab_mu);
	ssize_t old = fdtab_index(fd);
	if (old >= 0) {
		fdtab[old] = ent;	/* stale entry for a reused number */
	} else if (fdtab_n < EMU_MAX_FDS) {
		fdtab[fdtab_n++] = ent;
	} else {
		err = EMFILE;
	}
	(void) pthread_mutex_unlock(&fdtab_mu);
	if (err != 0) {
		(void) real.close(fd);
		errno = err;
		*ret = -1;
		return (1);
	}
	errno = saved;
	*ret = fd;
	return (1);
}

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	int r;

	if (EMU_NEEDS_MODE(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	return (real.open(path, flags, mode));
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	int r;

	if (EMU_NEEDS_MODE(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.open64 != NULL)
		return (real.open64(path, flags, mode));
	return (real.open(path, flags | O_LARGEFILE, mode));
}

/* An absolute path ignores dirfd, and our paths are all absolute. */
int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	int r;

	if (EMU_NEEDS_MODE(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	return (real.openat(dirfd, path, flags, mode));
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	int r;

	if (EMU_NEEDS_MODE(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.openat64 != NULL)
		return (real.openat64(dirfd, path, flags, mode));
	return (real.openat(dirfd, path, flags | O_LARGEFILE, mode));
}

int
__open_2(const char *path, int flags)
{
	int r;

	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.open_2 != NULL)
		return (real.open_2(path, flags));
	return (real.open(path, flags));
}

int
__open64_2(const char *path, int flags)
{
	int r;

	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.open64_2 != NULL)
		return (real.open64_2(path, flags));
	return (real.open(path, flags | O_LARGEFILE));
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	int r;

	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.openat_2 != NULL)
		return (real.openat_2(dirfd, path, flags));
	return (real.openat(dirfd, path, flags));
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	int r;

	if (emu_try_open(path, flags, &r))
		return (r);
	real_init();
	if (real.openat64_2 != NULL)
		return (real.openat64_2(dirfd, path, flags));
	return (real.openat(dirfd, path, flags | O_LARGEFILE));
}

int
close(int fd)
{
	real_init();
	(void) pthread_mutex_lock(&fdtab_mu);
	ssize_t i = fdtab_index(fd);
	if (i >= 0)
		fdtab_remove_at((size_t)i);
	(void) pthread_mutex_unlock(&fdtab_mu);
	/*
	 * SIMPLIFIED: vmm_close() of an instance whose destroy is pending
	 * would finish the destroy here; the emulator destroys immediately.
	 */
	return (real.close(fd));
}

/* ------------------------------------------------------------------ */
/* The reservoir: vmm_reservoir.c                                      */
/* ------------------------------------------------------------------ */

/*
 * Take an in-flight slot for bytes, and its liveness lock on fd (our open
 * of the state file, kept until the addition is over).  The slot number,
 * or -1 if none is free or the lock cannot be taken (the addition is then
 * untracked: SIMPLIFIED, it leaks if we die now).
 */
static int
inflight_add(struct vmmemu_hdr *h, int fd, uint64_t bytes)
{
	for (int i = 0; i < VMMEMU_MAX_INFLIGHT; i++) {
		if (!h->inflight[i].in_use) {
			if (vmmemu_live_set(fd, VMMEMU_LIVE_INFLIGHT(i),
			    F_WRLCK) != 0)
				return (-1);
			h->inflight[i].in_use = 1;
			h->inflight[i].pid = getpid();
			h->inflight[i].bytes = bytes;
			return (i);
		}
	}
	return (-1);
}

static void
inflight_remove(struct vmmemu_hdr *h, int fd, int slot)
{
	if (slot >= 0) {
		h->inflight[slot].in_use = 0;
		h->inflight[slot].pid = 0;
		h->inflight[slot].bytes = 0;
		(void) vmmemu_live_set(fd, VMMEMU_LIVE_INFLIGHT(slot), F_UNLCK);
	}
}

/*
 * vmmr_add(sz, transient = false), lock held on entry and on return.
 *  - EOVERFLOW if alloc+free+adding+alloc_transient+free_transient+sz
 *    overflows, ENOSPC if it exceeds vmmr_total_limit;
 *  - adding_sz += sz, drop the lock while pages are reserved and created
 *    (here: sleep VMMEMU_CHUNK_DELAY_US), re-take it;
 *  - page allocation failure (here: VMMEMU_ENOMEM_AFTER, compared with the
 *    bytes ever grown) rolls this call back and gives ENOMEM; like the
 *    kernel, that is only discovered after the lock was dropped, so the
 *    doomed bytes count against the limit meanwhile;
 *  - else free_sz += sz.  adding_sz -= sz either way.
 *  - interrupt != 0: a signal arrives while page_xresv() waits for
 *    availrmem (its vmmr_resv_wait callback, delay_sig(), returns 0): the
 *    call takes the lock again, gives back adding_sz and returns EINTR,
 *    the chunk undone.
 * SIMPLIFIED: no per-page zeroing; the interruption is injected, not a
 * real signal (VMMEMU_EINTR_IN_ADD).
 */
static int
resv_add(struct vmmemu_state *st, uint64_t sz, int interrupt)
{
	struct vmmemu_hdr *h = &st->h;
	uint64_t delay_us, enomem_after;
	int err, enomem_set;

	if (emu_env_u64("VMMEMU_CHUNK_DELAY_US", &delay_us) != 0 ||
	    emu_env_u64("VMMEMU_ENOMEM_AFTER", &enomem_after) != 0)
		return (EIO);
	{
		const char *s = getenv("VMMEMU_ENOMEM_AFTER");
		enomem_set = (s != NULL && *s != '\0');
	}

	uint64_t total = h->alloc_sz, parts[4] = { h->free_sz, h->adding_sz,
	    h->alloc_transient_sz, h->free_transient_sz };
	for (int i = 0; i < 4; i++) {
		if (total > UINT64_MAX - parts[i])
			return (EOVERFLOW);
		total += parts[i];
	}
	if (total > UINT64_MAX - sz)
		return (EOVERFLOW);
	if (total + sz > h->limit)
		return (ENOSPC);

	h->adding_sz += sz;
	int slot = inflight_add(h, st->fd, sz);
	if ((err = vmmemu_state_write_hdr(st)) != 0)
		return (err);

	vmmemu_state_unlock(st);
	if (delay_us != 0)
		emu_sleep_us(delay_us);
	if ((err = vmmemu_state_relock(st)) != 0)
		return (err);

	h->adding_sz -= (sz <= h->adding_sz) ? sz : h->adding_sz;
	inflight_remove(h, st->fd, slot);
	if (interrupt) {
		h->eintr_given++;
		err = vmmemu_state_write_hdr(st);
		return (err != 0 ? err : EINTR);
	}
	if (enomem_set && (h->grown_total > enomem_after ||
	    sz > enomem_after - h->grown_total)) {
		err = vmmemu_state_write_hdr(st);
		return (err != 0 ? err : ENOMEM);
	}
	h->free_sz += sz;
	h->grown_total += sz;
	return (vmmemu_state_write_hdr(st));
}

/*
 * vmmr_remove(sz, transient = false), lock held.  Only free memory can
 * leave; the pages are destroyed with the lock held, so there is no
 * window and no interruption.
 */
static int
resv_remove(struct vmmemu_state *st, uint64_t sz)
{
	struct vmmemu_hdr *h = &st->h;

	if (sz > h->free_sz)
		return (ENOSPC);
	h->free_sz -= sz;
	return (vmmemu_state_write_hdr(st));
}

/*
 * Injected signals (SIMPLIFIED: a real signal does not interrupt the
 * emulator).  VMMEMU_EINTR_AFTER_CHUNKS=N, when set (0 included): a signal
 * is pending once this call has completed N chunks.  vmmr_set_target
 * looks for one at the top of every pass, the first too, so N = 0 stops
 * the call before anything is done, even with chunk 0.  With
 * VMMEMU_EINTR_IN_ADD=1 it arrives instead while the next growth chunk
 * waits in page_xresv(), which undoes that chunk; a shrink chunk cannot
 * be interrupted, so there it is seen at the top of the next pass.
 * VMMEMU_EINTR_LIMIT=K: at most K signals from this state, ever.
 */
struct emu_eintr {
	int		set;
	uint64_t	after;
	int		in_add;
	int		limited;
	uint64_t	limit;
};

static int
emu_env_set(const char *name)
{
	const char *v = getenv(name);
	return (v != NULL && *v != '\0');
}

static int
emu_eintr_config(struct emu_eintr *e)
{
	e->set = emu_env_set("VMMEMU_EINTR_AFTER_CHUNKS");
	e->in_add = vmmemu_env_flag("VMMEMU_EINTR_IN_ADD");
	e->limited = emu_env_set("VMMEMU_EINTR_LIMIT");
	if (emu_env_u64("VMMEMU_EINTR_AFTER_CHUNKS", &e->after) != 0 ||
	    emu_env_u64("VMMEMU_EINTR_LIMIT", &e->limit) != 0)
		return (EIO);
	return (0);
}

static int
emu_eintr_due(const struct emu_eintr *e, const struct vmmemu_hdr *h,
    uint64_t chunks)
{
	return (e->set && chunks >= e->after &&
	    (!e->limited || h->eintr_given < e->limit));
}

/*
 * vmmr_set_target(target_sz, chunk_sz, &result).  Returns an errno and
 * sets *resp = alloc + free as reached.  While the target is set, this
 * call holds the resizer's liveness lock (vmmemu.h) on its open of the
 * state file, so a resizer that dies -- in any PID namespace -- is seen
 * as gone by the next caller.
 */
static int
resv_set_target(size_t target, size_t chunk, size_t *resp)
{
	struct vmmemu_state st;
	struct emu_eintr ei;
	int err, live = 0;

	if ((err = emu_eintr_config(&ei)) != 0)
		return (err);
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		return (err);
	struct vmmemu_hdr *h = &st.h;
	if ((err = live_fd_register(st.fd)) != 0)
		goto out;

	if (vmmemu_reap_dead(st.fd, h) &&
	    (err = vmmemu_state_write_hdr(&st)) != 0)
		goto out;

	size_t current = h->alloc_sz + h->free_sz;
	*resp = current;		/* "in case of an early bail-out" */

	if ((target & VMMEMU_PAGEOFFSET) != 0 ||
	    (chunk & VMMEMU_PAGEOFFSET) != 0) {
		err = EINVAL;
		goto out;
	}
	if (target == VMMR_TARGET_INACTIVE) {
		err = EINVAL;
		goto out;
	}
	/* Before the busy check: succeeds even while another resize runs. */
	if (target == current) {
		err = 0;
		goto out;
	}
	if (h->target_sz != VMMR_TARGET_INACTIVE) {
		err = EALREADY;
		goto out;
	}
	if (vmmemu_live_set(st.fd, VMMEMU_LIVE_RESIZER, F_WRLCK) != 0) {
		vmmemu_warn("cannot take the resizer's liveness lock: %s",
		    strerror(errno));
		err = EIO;
		goto out;
	}
	live = 1;
	h->target_sz = target;
	h->resizer_pid = getpid();
	if ((err = vmmemu_state_write_hdr(&st)) != 0)
		goto out;

	uint64_t chunks = 0;
	do {
		const int due = emu_eintr_due(&ei, h, chunks);
		/* issig(JUSTLOOKING), then issig(FORREAL): at every pass. */
		if (due && (!ei.in_add || current > target)) {
			h->eintr_given++;
			err = EINTR;
			break;
		}
		size_t req;
		if (current > target) {
			req = current - target;
			if (chunk != 0 && req > chunk)
				req = chunk;
			err = resv_remove(&st, req);
		} else {
			req = target - current;
			if (chunk != 0 && req > chunk)
				req = chunk;
			err = resv_add(&st, req, due);
		}
		if (err == 0)
			chunks++;
		current = h->alloc_sz + h->free_sz;
	} while (err == 0 && current != target);

	if (err != EIO) {
		h->target_sz = VMMR_TARGET_INACTIVE;
		h->resizer_pid = 0;
		int werr = vmmemu_state_write_hdr(&st);
		if (werr != 0)
			err = werr;
	}
	*resp = current;
out:
	if (live)
		(void) vmmemu_live_set(st.fd, VMMEMU_LIVE_RESIZER, F_UNLCK);
	live_fd_unregister(st.fd);
	vmmemu_state_close(&st);
	return (err);
}

/*
 * The legacy (pre-V9) by-value VMM_RESV_ADD / VMM_RESV_REMOVE.  Their
 * vmmr_add/vmmr_remove began with VERIFY3U(sz & PAGEOFFSET, ==, 0), which
 * panics the machine (VERIFY is live in non-DEBUG kernels) -- e.g. when a
 * new-ABI caller passes a struct pointer to 0x564D11.
 */
static int
resv_legacy(unsigned long cmd, uintptr_t arg)
{
	struct vmmemu_state st;
	int err;

	if ((arg & VMMEMU_PAGEOFFSET) != 0) {
		static const char m[] = "vmmemu: PANIC: VERIFY3U(sz & "
		    "PAGEOFFSET, ==, 0) \xe2\x80\x94 legacy VMM_RESV_ADD got a "
		    "pointer\n";
		(void) !write(STDERR_FILENO, m, sizeof (m) - 1);
		abort();
	}
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		return (err);
	if ((err = live_fd_register(st.fd)) != 0)
		goto out;
	if (vmmemu_reap_dead(st.fd, &st.h) &&
	    (err = vmmemu_state_write_hdr(&st)) != 0)
		goto out;
	/* SIMPLIFIED: a zero size is accepted as a no-op addition. */
	if (cmd == VMM_RESV_ADD_LEGACY)
		err = (arg == 0) ? 0 : resv_add(&st, arg, 0);
	else
		err = resv_remove(&st, arg);
out:
	live_fd_unregister(st.fd);
	vmmemu_state_close(&st);
	return (err);
}

static int
ctl_resv_query(void *arg)
{
	struct vmmemu_state st;
	struct vmm_resv_query_rawmem q;
	uint64_t qsize;
	int err;

	if (emu_env_u64("VMMEMU_QUERY_SIZE", &qsize) != 0)
		return (EIO);
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		return (err);
	memset(&q, 0, sizeof (q));
	q.vrq_free_sz = st.h.free_sz;
	q.vrq_alloc_sz = st.h.alloc_sz;
	q.vrq_alloc_transient_sz = st.h.alloc_transient_sz;
	q.vrq_limit = st.h.limit;
	vmmemu_state_close(&st);

	/*
	 * The rawmem fork copies out 48 bytes whatever the caller's buffer
	 * is, with no version bump; any other value means upstream's 32.
	 */
	size_t n = sizeof (struct vmm_resv_query);
	if (qsize == sizeof (struct vmm_resv_query_rawmem)) {
		q.vrq_rawmem_total_sz = VMMEMU_RAWMEM_TOTAL_PATTERN;
		q.vrq_rawmem_free_sz = VMMEMU_RAWMEM_FREE_PATTERN;
		n = sizeof (q);
	}
	return (emu_copyout(&q, arg, n));
}

static int
ctl_resv_set_target(void *arg)
{
	struct vmm_resv_target tgt;
	int err;

	if (emu_copyin(arg, &tgt, sizeof (tgt)) != 0)
		return (EFAULT);
	err = resv_set_target(tgt.vrt_target_sz, tgt.vrt_chunk_sz,
	    &tgt.vrt_result_sz);
	/* vmmr_ioctl: copy back only on success or EINTR. */
	if (err == 0 || err == EINTR) {
		if (emu_copyout(&tgt, arg, sizeof (tgt)) != 0)
			err = EFAULT;
	}
	return (err);
}

/* ------------------------------------------------------------------ */
/* VMs: vmm_sol_dev.c, vm_alloc_memseg, vmmr_alloc/vmmr_free           */
/* ------------------------------------------------------------------ */

static int
ctl_create_vm(const struct emu_fd *ent, void *arg)
{
	struct vm_create_req req;
	struct vmmemu_state st;
	int err;

	if (!ent->writable)
		return (EPERM);
	if (emu_copyin(arg, &req, sizeof (req)) != 0)
		return (EFAULT);

	/* vmmdev_do_vm_create */
	size_t len = strnlen(req.name, VM_MAX_NAMELEN);
	if (len == 0)
		return (EINVAL);
	if (len >= VM_MAX_NAMELEN)
		return (ENAMETOOLONG);
	if (strchr(req.name, '/') != NULL)
		return (EINVAL);

	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		goto unlock;
	if ((err = vmmemu_state_read_vms(&st, vmtab)) != 0)
		goto out;
	if (vmmemu_find_vm(vmtab, req.name) >= 0) {
		err = EEXIST;
		goto out;
	}
	int slot = -1;
	for (int i = 0; i < VMMEMU_MAX_VMS; i++) {
		if (!vmtab[i].in_use) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		err = ENOMEM;	/* soft state / minor node exhaustion */
		goto out;
	}
	/*
	 * vm_create(): mem_transient = (flags & VCF_RESERVOIR_MEM) == 0.
	 * Unknown flag bits are not rejected and nothing is checked against
	 * the reservoir.  SIMPLIFIED: VCF_TRACK_DIRTY never gives ENOTSUP.
	 */
	struct vmmemu_vm vm;
	memset(&vm, 0, sizeof (vm));
	memcpy(vm.name, req.name, len + 1);
	vm.flags = req.flags;
	vm.transient = (req.flags & VCF_RESERVOIR_MEM) == 0;
	vm.serial = st.h.next_serial++;
	vm.in_use = 1;
	st.h.vm_count++;
	if ((err = vmmemu_state_write_vm(&st, (size_t)slot, &vm)) == 0)
		err = vmmemu_state_write_hdr(&st);
out:
	vmmemu_state_close(&st);
unlock:
	free(vmtab);
	return (err);
}

/*
 * vm_destroy() -> vm_free_memseg() -> vmmr_free(): reservoir memory goes
 * back to free (after zeroing, with the lock dropped in the kernel);
 * transient memory leaves the reservoir (VERIFY0(vmmr_remove(sz, true))).
 * Caller holds the state lock.
 */
static int
destroy_locked(struct vmmemu_state *st, size_t i, struct vmmemu_vm *vm)
{
	struct vmmemu_hdr *h = &st->h;
	int err;

	if (vm->transient) {
		h->alloc_transient_sz -= (vm->mem <= h->alloc_transient_sz) ?
		    vm->mem : h->alloc_transient_sz;
	} else {
		uint64_t m = (vm->mem <= h->alloc_sz) ? vm->mem : h->alloc_sz;
		h->alloc_sz -= m;
		h->free_sz += m;
	}
	memset(vm, 0, sizeof (*vm));
	if (h->vm_count > 0)
		h->vm_count--;
	if ((err = vmmemu_state_write_vm(st, i, vm)) != 0)
		return (err);
	return (vmmemu_state_write_hdr(st));
}

/*
 * SIMPLIFIED: the kernel's VMM_DESTROY_VM waits (interruptibly) until the
 * instance is no longer open, and VM_DESTROY_SELF defers the final
 * teardown, hence the return of the memory, to the last close.  The
 * emulator destroys at once; later ioctls on the instance fds get ENXIO,
 * as they would during a pending destroy.
 */
static int
ctl_destroy_vm(const struct emu_fd *ent, void *arg)
{
	struct vm_destroy_req req;
	struct vmmemu_state st;
	int err;

	if (!ent->writable)
		return (EPERM);
	if (emu_copyin(arg, &req, sizeof (req)) != 0)
		return (EFAULT);
	/* vmmdev_do_vm_destroy: crgetuid(cr) != 0 */
	if (vmmemu_env_flag("VMMEMU_UNPRIVILEGED"))
		return (EPERM);
	req.name[VM_MAX_NAMELEN - 1] = '\0';	/* bounded lookup */

	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		goto unlock;
	if ((err = vmmemu_state_read_vms(&st, vmtab)) != 0)
		goto out;
	int i = vmmemu_find_vm(vmtab, req.name);
	if (i < 0)
		err = ENOENT;
	else
		err = destroy_locked(&st, (size_t)i, &vmtab[i]);
out:
	vmmemu_state_close(&st);
unlock:
	free(vmtab);
	return (err);
}

/*
 * Find the VM behind an instance fd; ENXIO once it has been destroyed
 * (vmm_ioctl: VMM_DESTROY set -> ENXIO).  Caller holds the
 * state lock.
 */
static int
inst_find(struct vmmemu_state *st, const struct emu_fd *ent,
    struct vmmemu_vm *vmtab, int *idx)
{
	int err = vmmemu_state_read_vms(st, vmtab);
	if (err != 0)
		return (err);
	int i = vmmemu_find_vm(vmtab, ent->name);
	if (i < 0 || vmtab[i].serial != ent->serial)
		return (ENXIO);
	*idx = i;
	return (0);
}

/*
 * VM_ALLOC_MEMSEG -> vmmdev_alloc_memseg -> vm_alloc_memseg ->
 * vm_object_mem_allocate -> vmmr_alloc.  Any reservoir failure becomes
 * NULL and then ENOMEM.  Order as in vmm_ioctl: a destroyed instance gives
 * ENXIO before the argument is copied in.
 */
static int
inst_alloc_memseg(const struct emu_fd *ent, void *arg)
{
	struct vm_memseg seg;
	struct vmmemu_state st;
	int err, i;

	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) != 0)
		goto unlock;
	if ((err = inst_find(&st, ent, vmtab, &i)) != 0)
		goto out;
	if (emu_copyin(arg, &seg, sizeof (seg)) != 0) {
		err = EFAULT;
		goto out;
	}
	struct vmmemu_hdr *h = &st.h;
	struct vmmemu_vm *vm = &vmtab[i];
	const uint32_t sysmem = (seg.name[0] == '\0');	/* VM_MEMSEG_NAME */

	/* vm_alloc_memseg */
	if (seg.segid < 0 || seg.segid >= VM_MAX_MEMSEGS ||
	    seg.len == 0 || (seg.len & VMMEMU_PAGEOFFSET) != 0) {
		err = EINVAL;
		goto out;
	}
	if (vm->seg_len[seg.segid] != 0) {
		const uint32_t was = (vm->seg_sysmem >> seg.segid) & 1;
		err = (vm->seg_len[seg.segid] == seg.len && was == sysmem) ?
		    EEXIST : EINVAL;
		goto out;
	}

	if (vmmemu_reap_dead(st.fd, h) &&
	    (err = vmmemu_state_write_hdr(&st)) != 0)
		goto out;
	if (!vm->transient) {
		/* vmmr_alloc: sz > vmmr_free_sz -> ENOSPC, no waiting. */
		if (seg.len > h->free_sz) {
			err = ENOMEM;
		} else {
			h->free_sz -= seg.len;
			h->alloc_sz += seg.len;
		}
	} else {
		/*
		 * vmmr_add(sz, true) then allocate: limit -> ENOSPC,
		 * overflow -> EOVERFLOW, both ENOMEM here.  SIMPLIFIED: done
		 * atomically under the lock (the kernel drops it in
		 * page_xresv and could also fail with EINTR or ENOMEM);
		 * VMMEMU_ENOMEM_AFTER does not apply.
		 */
		uint64_t total = vmmemu_total(h);
		if (total == UINT64_MAX || total > UINT64_MAX - seg.len ||
		    total + seg.len > h->limit) {
			err = ENOMEM;
		} else {
			h->alloc_transient_sz += seg.len;
		}
	}
	if (err == ENOMEM) {
		h->allocs_refused++;
		int werr = vmmemu_state_write_hdr(&st);
		if (werr != 0)
			err = werr;
		goto out;
	}
	vm->seg_len[seg.segid] = seg.len;
	vm->seg_sysmem |= sysmem << seg.segid;
	vm->mem += seg.len;
	h->allocs_ok++;
	if ((err = vmmemu_state_write_vm(&st, (size_t)i, vm)) == 0)
		err = vmmemu_state_write_hdr(&st);
out:
	vmmemu_state_close(&st);
unlock:
	free(vmtab);
	return (err);
}

/* VM_DESTROY_SELF: like VMM_DESTROY_VM, no privilege or FWRITE check. */
static int
inst_destroy_self(const struct emu_fd *ent)
{
	struct vmmemu_state st;
	int err, i;

	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) == 0) {
		if ((err = inst_find(&st, ent, vmtab, &i)) == 0)
			err = destroy_locked(&st, (size_t)i, &vmtab[i]);
		vmmemu_state_close(&st);
	}
	free(vmtab);
	return (err);
}

/*
 * Which OS-8005 kernel is emulated (VMMEMU_ARC_RESV): 0 none (upstream
 * illumos: both numbers are ENOTTY), 1 the early tree (by value; it
 * predates VMM_INTERFACE_VERSION, so instance fds do not answer it), 2 the
 * later tree (copyin).  -1 for a bad value (reported).
 */
enum { ARC_NONE = 0, ARC_BYVALUE = 1, ARC_COPYIN = 2 };

static int
emu_arc_kernel(void)
{
	const char *s = getenv("VMMEMU_ARC_RESV");

	if (s == NULL || *s == '\0' || strcmp(s, "none") == 0)
		return (ARC_NONE);
	if (strcmp(s, "byvalue") == 0)
		return (ARC_BYVALUE);
	if (strcmp(s, "copyin") == 0)
		return (ARC_COPYIN);
	vmmemu_warn("bad value VMMEMU_ARC_RESV=\"%s\"", s);
	return (-1);
}

/*
 * VM_ARC_RESV on an instance fd, in either encoding.  Every call is
 * counted by number, known or not, so tests can tell what was sent.  The
 * kernel that knows the number runs vm_arc_resv(): pages =
 * roundup2(len, PAGE_SIZE) >> PAGE_SHIFT (wrapping as the kernel's does),
 * added to the VM's arc_resv and to arc_virt_machine_reserved.
 * SIMPLIFIED: no ARC, so arc_virt_machine_reserve()'s guard never refuses
 * (as written, comparing pages with bytes, it practically never does).
 */
static int
inst_arc_resv(const struct emu_fd *ent, unsigned long cmd, void *arg)
{
	struct vmmemu_state st;
	uint64_t len = 0;
	int err, i, kernel = emu_arc_kernel();

	if (kernel < 0)
		return (EIO);
	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) != 0) {
		free(vmtab);
		return (err);
	}
	if (cmd == VM_ARC_RESV_BYVALUE)
		st.h.arc_ioctls_byvalue++;
	else
		st.h.arc_ioctls_copyin++;
	if ((err = vmmemu_state_write_hdr(&st)) != 0)
		goto out;
	if ((err = inst_find(&st, ent, vmtab, &i)) != 0)
		goto out;
	if (cmd == VM_ARC_RESV_BYVALUE && kernel == ARC_BYVALUE) {
		/* vm_arc_resv(sc->vmm_vm, (uint64_t)arg): the value itself. */
		len = (uint64_t)(uintptr_t)arg;
	} else if (cmd == VM_ARC_RESV_COPYIN && kernel == ARC_COPYIN) {
		/* ddi_copyin(datap, &len, sizeof (len), md). */
		if (emu_copyin(arg, &len, sizeof (len)) != 0) {
			err = EFAULT;
			goto out;
		}
	} else {
		err = ENOTTY;
		goto out;
	}
	uint64_t pages = (len + VMMEMU_PAGEOFFSET) / VMMEMU_PAGESIZE;
	vmtab[i].arc_resv += pages;
	st.h.arc_resv_pages += pages;
	if ((err = vmmemu_state_write_vm(&st, (size_t)i, &vmtab[i])) == 0)
		err = vmmemu_state_write_hdr(&st);
out:
	vmmemu_state_close(&st);
	free(vmtab);
	return (err);
}

/* Is the instance still there?  For commands that do nothing else. */
static int
inst_check(const struct emu_fd *ent)
{
	struct vmmemu_state st;
	int err, i;

	struct vmmemu_vm *vmtab = vmtab_alloc();
	if (vmtab == NULL)
		return (ENOMEM);
	if ((err = vmmemu_state_open(&st, 0)) == 0) {
		err = inst_find(&st, ent, vmtab, &i);
		vmmemu_state_close(&st);
	}
	free(vmtab);
	return (err);
}

/* ------------------------------------------------------------------ */
/* ioctl()                                                             */
/* ------------------------------------------------------------------ */

/* vmm_ioctl + vmm_ctl_ioctl + vmmr_ioctl + vmmdev_do_ioctl. */
static int
emu_ioctl(const struct emu_fd *ent, unsigned long cmd, void *arg, int *rvalp)
{
	const int version = emu_version();

	*rvalp = 0;
	/*
	 * "Regardless of minor (vmmctl or instance)" -- since V6; and not on
	 * an instance of the early OS-8005 kernel, which predates it.
	 */
	if (cmd == VMM_INTERFACE_VERSION &&
	    (ent->kind == EMU_CTL || (version >= VMM_VERSION_INSTANCE_VERSION &&
	    emu_arc_kernel() != ARC_BYVALUE))) {
		*rvalp = version;
		return (0);
	}

	if (ent->kind == EMU_INST) {
		/* Each checks first that the instance still exists (ENXIO). */
		switch (cmd) {
		case VM_ALLOC_MEMSEG:
			return (inst_alloc_memseg(ent, arg));
		case VM_DESTROY_SELF:
			return (inst_destroy_self(ent));
		case VM_ARC_RESV_BYVALUE:
		case VM_ARC_RESV_COPYIN:
			return (inst_arc_resv(ent, cmd, arg));
		default: {
			int err = inst_check(ent);
			return (err != 0 ? err : ENOTTY);
		}
		}
	}

	switch (cmd) {
	case VMM_CREATE_VM:
		return (ctl_create_vm(ent, arg));
	case VMM_DESTROY_VM:
		return (ctl_destroy_vm(ent, arg));
	case VMM_VM_SUPPORTED:
		return (0);	/* the emulated host can run VMs */
	case VMM_CHECK_IOMMU:
		return (ENXIO);	/* and has no IOMMU */
	case VMM_RESV_QUERY:
		/* "anyone with access to vmmctl device can query" */
		return (ctl_resv_query(arg));
	case VMM_RESV_SET_TARGET:	/* == VMM_RESV_ADD_LEGACY */
		/* secpolicy_sys_config(cr, B_FALSE), checked first. */
		if (vmmemu_env_flag("VMMEMU_UNPRIVILEGED"))
			return (EPERM);
		if (version < VMM_VERSION_SET_TARGET)
			return (resv_legacy(cmd, (uintptr_t)arg));
		return (ctl_resv_set_target(arg));
	case VMM_RESV_REMOVE_LEGACY:
		if (version >= VMM_VERSION_SET_TARGET)
			return (ENOTTY);
		if (vmmemu_env_flag("VMMEMU_UNPRIVILEGED"))
			return (EPERM);
		return (resv_legacy(cmd, (uintptr_t)arg));
	default:
		return (ENOTTY);
	}
}

int
ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;
	struct emu_fd ent;

	/* Every caller passes at most one argument, as with glibc. */
	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);

	real_init();
	if (!fdtab_lookup(fd, &ent))
		return (real.ioctl(fd, request, arg));

	/*
	 * illumos's ioctl() takes an int command; a caller whose int has the
	 * top bit set (0x80087702) may reach glibc's unsigned long sign-
	 * extended.  The kernel reads 32 bits (Linux does the same).
	 */
	int saved = errno, rval;
	int err = emu_ioctl(&ent, (unsigned long)(uint32_t)request, arg, &rval);
	if (err != 0) {
		errno = err;
		return (-1);
	}
	errno = saved;
	return (rval);
}

/* ------------------------------------------------------------------ */
/* Descriptor copies: dup, dup2, dup3, fcntl(F_DUPFD[_CLOEXEC])        */
/* ------------------------------------------------------------------ */

/*
 * A copy of a vmm fd refers to the same open file in the kernel, so it
 * must keep working (a library may dup its ctl fd to give a second handle
 * its own lifetime).  Record the copy under its new number.
 */
static void
emu_copied(int from, int to)
{
	struct emu_fd ent;

	if (to < 0 || from == to || !fdtab_lookup(from, &ent))
		return;
	ent.fd = to;
	(void) pthread_mutex_lock(&fdtab_mu);
	ssize_t old = fdtab_index(to);
	if (old >= 0)
		fdtab[old] = ent;
	else if (fdtab_n < EMU_MAX_FDS)
		fdtab[fdtab_n++] = ent;
	(void) pthread_mutex_unlock(&fdtab_mu);
}

/* dup2/dup3 close `to` first: forget what it was. */
static void
emu_forget(int fd)
{
	(void) pthread_mutex_lock(&fdtab_mu);
	ssize_t i = fdtab_index(fd);
	if (i >= 0)
		fdtab_remove_at((size_t)i);
	(void) pthread_mutex_unlock(&fdtab_mu);
}

int
dup(int fd)
{
	real_init();
	int r = real.dup(fd);
	if (r >= 0) {
		int saved = errno;
		emu_copied(fd, r);
		errno = saved;
	}
	return (r);
}

int
dup2(int fd, int to)
{
	real_init();
	int r = real.dup2(fd, to);
	if (r >= 0 && fd != to) {
		int saved = errno;
		emu_forget(to);
		emu_copied(fd, r);
		errno = saved;
	}
	return (r);
}

int
dup3(int fd, int to, int flags)
{
	real_init();
	int r = real.dup3(fd, to, flags);
	if (r >= 0) {
		int saved = errno;
		emu_forget(to);
		emu_copied(fd, r);
		errno = saved;
	}
	return (r);
}

static int
emu_fcntl(fcntl_fn f, int fd, int cmd, va_list ap)
{
	/*
	 * Every fcntl command takes at most one argument, an int or a
	 * pointer; reading it as a pointer-sized integer and passing it on
	 * unchanged is what libc's own wrappers do.
	 */
	intptr_t arg = va_arg(ap, intptr_t);
	int r = f(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		int saved = errno;
		emu_copied(fd, r);
		errno = saved;
	}
	return (r);
}

int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int r;

	real_init();
	va_start(ap, cmd);
	r = emu_fcntl(real.fcntl, fd, cmd, ap);
	va_end(ap);
	return (r);
}

int fcntl64(int, int, ...);

int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	int r;

	real_init();
	va_start(ap, cmd);
	r = emu_fcntl(real.fcntl64, fd, cmd, ap);
	va_end(ap);
	return (r);
}
