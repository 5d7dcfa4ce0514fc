/* SPDX-License-Identifier: MPL-2.0 */
/*
 * selftest.c: exercises the /dev/vmmctl emulator (vmmctl_emu.c) through
 * the same calls a consumer makes -- open() and ioctl() with the illumos
 * numbers -- and checks the results against vmm_reservoir.c semantics.
 *
 * Run (.ci/emu-selftest.sh does this):
 *   LD_PRELOAD=/path/libvmmemu.so ./selftest <scratch-dir> <vmmemu_ctl>
 * Exit 0 if every check passed, 1 otherwise.  Each section uses its own
 * state file under <scratch-dir>.
 */
#define _GNU_SOURCE
#include "vmmemu.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

/* glibc's fortified entry points, called directly to test them. */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);

#define MiB	(UINT64_C(1) << 20)
#define GiB	(UINT64_C(1) << 30)
#define SENTINEL ((size_t)0x5e5e5e5e5e5e5e5eULL)

static const char *scratch, *ctl_prog;
static pid_t ns_mid;	/* the middle process of spawn_ns_resizer */
static int failures, checks;
static const char *section = "";

#define CHECK(cond) do {						\
	int e_ = errno;							\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		fprintf(stderr, "FAIL [%s] %s:%d: %s (errno %d: %s)\n",	\
		    section, __FILE__, __LINE__, #cond, e_,		\
		    strerror(e_));					\
	}								\
	errno = e_;							\
} while (0)

/* The call failed with exactly this errno. */
#define CHECK_ERR(call, e) do {						\
	errno = 0;							\
	long r_ = (long)(call);						\
	int e2_ = errno;						\
	checks++;							\
	if (r_ != -1 || e2_ != (e)) {					\
		failures++;						\
		fprintf(stderr, "FAIL [%s] %s:%d: %s: got %ld/%s, "	\
		    "want -1/%s\n", section, __FILE__, __LINE__, #call,	\
		    r_, strerror(e2_), strerror(e));			\
	}								\
} while (0)

#define CHECK_OK(call) do {						\
	errno = 0;							\
	long r_ = (long)(call);						\
	int e2_ = errno;						\
	checks++;							\
	if (r_ != 0) {							\
		failures++;						\
		fprintf(stderr, "FAIL [%s] %s:%d: %s: got %ld (%s)\n",	\
		    section, __FILE__, __LINE__, #call, r_,		\
		    strerror(e2_));					\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);		\
	checks++;							\
	if (a_ != b_) {							\
		failures++;						\
		fprintf(stderr, "FAIL [%s] %s:%d: %s == %s: %" PRIu64	\
		    " != %" PRIu64 "\n", section, __FILE__, __LINE__,	\
		    #a, #b, a_, b_);					\
	}								\
} while (0)

/* Fatal: the rest cannot run. */
#define REQUIRE(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FATAL [%s] %s:%d: %s (%s)\n", section,	\
		    __FILE__, __LINE__, #cond, strerror(errno));	\
		exit(1);						\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
	    .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Silence stderr around calls whose fixture warnings are expected. */
static int saved_stderr = -1;

static void
quiet(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	int n = open("/dev/null", O_WRONLY | O_CLOEXEC);
	REQUIRE(saved_stderr >= 0 && n >= 0);
	REQUIRE(dup2(n, STDERR_FILENO) == STDERR_FILENO);
	close(n);
}

static void
unquiet(void)
{
	fflush(stderr);
	REQUIRE(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

static char state_path[4096];

/* A new, not yet existing state file, and a clean emulator env. */
static void
fresh(const char *name, const char *physmem, const char *ppm)
{
	section = name;
	snprintf(state_path, sizeof (state_path), "%s/%s.state", scratch,
	    name);
	(void) unlink(state_path);
	setenv("VMMEMU_STATE", state_path, 1);
	static const char *const vars[] = { "VMMEMU_DEVICE",
	    "VMMEMU_PHYSMEM", "VMMEMU_PAGES_PP_MAXIMUM", "VMMEMU_VERSION",
	    "VMMEMU_UNPRIVILEGED", "VMMEMU_QUERY_SIZE",
	    "VMMEMU_ENOMEM_AFTER", "VMMEMU_CHUNK_DELAY_US",
	    "VMMEMU_EINTR_AFTER_CHUNKS", "VMMEMU_EINTR_IN_ADD",
	    "VMMEMU_EINTR_LIMIT", "VMMEMU_ARC_RESV" };
	for (size_t i = 0; i < sizeof (vars) / sizeof (vars[0]); i++)
		unsetenv(vars[i]);
	if (physmem != NULL)
		setenv("VMMEMU_PHYSMEM", physmem, 1);
	if (ppm != NULL)
		setenv("VMMEMU_PAGES_PP_MAXIMUM", ppm, 1);
}

static int
ctl_open(void)
{
	int fd = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
	REQUIRE(fd >= 0);
	return (fd);
}

static struct vmm_resv_query
query(int fd)
{
	struct vmm_resv_query q;
	memset(&q, 0xff, sizeof (q));
	CHECK_OK(ioctl(fd, VMM_RESV_QUERY, &q));
	return (q);
}

/* SET_TARGET; *result is SENTINEL unless the kernel copied out. */
static int
set_target(int fd, size_t target, size_t chunk, size_t *result)
{
	struct vmm_resv_target t = { .vrt_target_sz = target,
	    .vrt_chunk_sz = chunk, .vrt_result_sz = SENTINEL };
	int r = ioctl(fd, VMM_RESV_SET_TARGET, &t);
	int e = errno;
	if (result != NULL)
		*result = t.vrt_result_sz;
	errno = e;
	return (r);
}

/* The state header, read directly from the file under its lock. */
static struct vmmemu_hdr
state(void)
{
	struct vmmemu_state st;
	REQUIRE(vmmemu_state_open(&st, 0) == 0);
	struct vmmemu_hdr h = st.h;
	vmmemu_state_close(&st);
	return (h);
}

/* Invariants that must hold at the end of every section. */
static void
check_invariants(void)
{
	struct vmmemu_hdr h = state();
	CHECK_EQ(h.limit_exceeded, 0);
	CHECK(h.max_total_seen <= h.limit);
	CHECK_EQ(h.adding_sz, 0);
	CHECK_EQ(h.free_transient_sz, 0);
	CHECK(h.target_sz == VMMR_TARGET_INACTIVE);
}

static int
create_vm(int fd, const char *name, uint64_t flags)
{
	struct vm_create_req req;
	memset(&req, 0, sizeof (req));
	memcpy(req.name, name, strnlen(name, sizeof (req.name)));
	req.flags = flags;
	return (ioctl(fd, VMM_CREATE_VM, &req));
}

static int
destroy_vm(int fd, const char *name)
{
	struct vm_destroy_req req;
	memset(&req, 0, sizeof (req));
	memcpy(req.name, name, strnlen(name, sizeof (req.name)));
	return (ioctl(fd, VMM_DESTROY_VM, &req));
}

static int
inst_open(const char *name)
{
	char path[256];
	snprintf(path, sizeof (path), VMM_INST_DEV_PREFIX "%s", name);
	return (open(path, O_RDWR | O_CLOEXEC));
}

static int
alloc_memseg(int ifd, int segid, size_t len, const char *segname)
{
	struct vm_memseg seg;
	memset(&seg, 0, sizeof (seg));
	seg.segid = segid;
	seg.len = len;
	if (segname != NULL)
		strncpy(seg.name, segname, sizeof (seg.name) - 1);
	return (ioctl(ifd, VM_ALLOC_MEMSEG, &seg));
}

/* Run "vmmemu_ctl <cmd>", capture stdout; returns the exit status. */
static int
run_ctl(const char *cmd, char *out, size_t outsz)
{
	char line[8192];
	snprintf(line, sizeof (line), "'%s' %s", ctl_prog, cmd);
	FILE *f = popen(line, "r");
	REQUIRE(f != NULL);
	size_t n = fread(out, 1, outsz - 1, f);
	out[n] = '\0';
	int st = pclose(f);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
}

/* Value of "key=<n>" on a line of its own in text; -1 if absent. */
static int
show_get(const char *text, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return (0);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return (-1);
}

static uint64_t
show_val(const char *text, const char *key)
{
	uint64_t v = UINT64_MAX;
	checks++;
	if (show_get(text, key, &v) != 0) {
		failures++;
		fprintf(stderr, "FAIL [%s] key %s missing from show:\n%s\n",
		    section, key, text);
	}
	return (v);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (d == NULL)
		return (-1);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return (n);
}

/* Poll until the state satisfies pred (up to ~60 s, valgrind is slow). */
static int
wait_state(int (*pred)(const struct vmmemu_hdr *, uint64_t), uint64_t arg)
{
	for (int i = 0; i < 12000; i++) {
		struct vmmemu_hdr h = state();
		if (pred(&h, arg))
			return (1);
		sleep_ms(5);
	}
	return (0);
}

static int
adding_is(const struct vmmemu_hdr *h, uint64_t v)
{
	return (h->adding_sz == v);
}

/* ------------------------------------------------------------------ */
/* sections                                                            */
/* ------------------------------------------------------------------ */

static void
t_inactive(void)
{
	struct stat sb;
	int p[2], n = -1;

	section = "inactive";
	unsetenv("VMMEMU_STATE");
	if (stat(VMM_CTL_DEV, &sb) != 0) {
		CHECK_ERR(open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		    ENOENT);
	}
	CHECK_ERR(open(VMM_INST_DEV_PREFIX "x", O_RDWR), ENOENT);
	/* Unrelated fds are forwarded, active or not. */
	REQUIRE(pipe(p) == 0);
	REQUIRE(write(p[1], "abc", 3) == 3);
	CHECK_OK(ioctl(p[0], FIONREAD, &n));
	CHECK_EQ(n, 3);
	close(p[0]);
	close(p[1]);
}

static void
t_open(void)
{
	fresh("open", NULL, NULL);
	int fds_before = count_fds();

	CHECK_ERR(open(VMM_CTL_DEV, O_RDWR), EINVAL);
	CHECK_ERR(open(VMM_CTL_DEV, O_RDWR | O_CLOEXEC), EINVAL);
	CHECK_ERR(open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CREAT, 0600),
	    EEXIST);
	CHECK_ERR(open(VMM_CTL_DEV, O_RDONLY | O_EXCL | O_DIRECTORY),
	    ENOTDIR);

	int a = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
	int b = open(VMM_CTL_DEV, O_RDWR | O_EXCL);
	int c = open(VMM_CTL_DEV, O_WRONLY | O_EXCL | O_CLOEXEC);
	CHECK(a >= 0 && b >= 0 && c >= 0);
	CHECK(a != b && b != c && a != c);
	CHECK((fcntl(a, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK((fcntl(b, F_GETFD) & FD_CLOEXEC) == 0);
	CHECK((fcntl(c, F_GETFL) & O_ACCMODE) == O_WRONLY);
	struct stat sb;
	CHECK(fstat(a, &sb) == 0 && S_ISCHR(sb.st_mode));

	/* The version is the return value, on every fd. */
	CHECK_EQ(ioctl(a, VMM_INTERFACE_VERSION), 18);
	CHECK_EQ(ioctl(b, VMM_INTERFACE_VERSION, 0), 18);
	CHECK_EQ(ioctl(c, VMM_INTERFACE_VERSION), 18);
	setenv("VMMEMU_VERSION", "12", 1);
	CHECK_EQ(ioctl(a, VMM_INTERFACE_VERSION), 12);
	unsetenv("VMMEMU_VERSION");

	/* errno is left alone on success, like a real syscall. */
	errno = EDOM;
	CHECK_EQ(ioctl(a, VMM_INTERFACE_VERSION), 18);
	CHECK_EQ(errno, EDOM);
	struct vmm_resv_query q;
	errno = EDOM;
	int qrc = ioctl(a, VMM_RESV_QUERY, &q);
	CHECK_EQ(errno, EDOM);
	CHECK_EQ(qrc, 0);

	/* Unknown numbers, and instance numbers on the ctl fd. */
	CHECK_ERR(ioctl(a, VMMCTL_IOC_BASE | 0xff, &q), ENOTTY);
	CHECK_ERR(ioctl(a, VM_ALLOC_MEMSEG, &q), ENOTTY);
	CHECK_ERR(ioctl(a, VM_DESTROY_SELF, 0), ENOTTY);
	CHECK_ERR(ioctl(a, FIONREAD, &q), ENOTTY);
	CHECK_OK(ioctl(a, VMM_VM_SUPPORTED, 0));

	/* Every open entry point is intercepted. */
	int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(dfd >= 0);
	int v[7] = {
		open64(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		openat(AT_FDCWD, VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		openat(dfd, VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		openat64(dfd, VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		__open_2(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		__open64_2(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		__openat_2(dfd, VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
	};
	for (int i = 0; i < 7; i++) {
		CHECK(v[i] >= 0);
		CHECK_EQ(ioctl(v[i], VMM_INTERFACE_VERSION), 18);
		CHECK((fcntl(v[i], F_GETFD) & FD_CLOEXEC) != 0);
		CHECK_OK(close(v[i]));
	}
	CHECK_ERR(openat64(dfd, VMM_CTL_DEV, O_RDWR), EINVAL);
	CHECK_ERR(__open_2(VMM_CTL_DEV, O_RDWR), EINVAL);
	close(dfd);

	/* Other paths, and ioctls on other fds, go to libc untouched. */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(nul >= 0);
	CHECK_ERR(ioctl(nul, VMM_INTERFACE_VERSION), ENOTTY);
	close(nul);
	CHECK_ERR(open("/dev/vmmctl2", O_RDWR | O_EXCL), ENOENT);
	CHECK_ERR(open("/dev/vmmctl/", O_RDWR | O_EXCL), ENOENT);

	/* close() forgets the fd. */
	CHECK_OK(close(b));
	CHECK_ERR(ioctl(b, VMM_INTERFACE_VERSION), EBADF);

	/*
	 * An fd replaced behind our back (dup2) is not ours any more, be it
	 * a pipe or another character device.
	 */
	int p[2];
	REQUIRE(pipe(p) == 0);
	REQUIRE(dup2(p[0], c) == c);
	CHECK_ERR(ioctl(c, VMM_INTERFACE_VERSION), ENOTTY);
	close(p[0]);
	close(p[1]);
	int e1 = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	REQUIRE(e1 >= 0 && zero >= 0);
	REQUIRE(dup2(zero, e1) == e1);
	CHECK_ERR(ioctl(e1, VMM_INTERFACE_VERSION), ENOTTY);
	close(e1);
	close(zero);
	close(c);

	/*
	 * Copies of a vmm fd (dup, dup2, dup3, fcntl F_DUPFD[_CLOEXEC]) refer
	 * to the same open device and keep working after the original closes.
	 */
	{
		int o = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
		REQUIRE(o >= 0);
		int d1 = dup(o);
		int d2 = fcntl(o, F_DUPFD_CLOEXEC, 0);
		int d3 = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int d4 = open("/dev/null", O_RDONLY | O_CLOEXEC);
		REQUIRE(d1 >= 0 && d2 >= 0 && d3 >= 0 && d4 >= 0);
		REQUIRE(dup2(o, d3) == d3);
		REQUIRE(dup3(o, d4, O_CLOEXEC) == d4);
		CHECK_OK(close(o));
		CHECK(ioctl(d1, VMM_INTERFACE_VERSION) == 18);
		CHECK(ioctl(d2, VMM_INTERFACE_VERSION) == 18);
		CHECK(ioctl(d3, VMM_INTERFACE_VERSION) == 18);
		CHECK(ioctl(d4, VMM_INTERFACE_VERSION) == 18);
		CHECK(fcntl(d2, F_GETFD) == FD_CLOEXEC);
		close(d1);
		close(d2);
		close(d3);
		close(d4);
		CHECK_ERR(ioctl(d1, VMM_INTERFACE_VERSION), EBADF);
	}

	/* A fork()ed child shares the fd and the state. */
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct vmm_resv_query cq;
		_exit(ioctl(a, VMM_RESV_QUERY, &cq) == 0 &&
		    ioctl(a, VMM_INTERFACE_VERSION) == 18 ? 0 : 1);
	}
	int ws;
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

	/* VMMEMU_DEVICE moves the ctl node. */
	char alt[4200];
	snprintf(alt, sizeof (alt), "%s/vmmctl.alt", scratch);
	setenv("VMMEMU_DEVICE", alt, 1);
	int d = open(alt, O_RDWR | O_EXCL | O_CLOEXEC);
	CHECK(d >= 0);
	CHECK_EQ(ioctl(d, VMM_INTERFACE_VERSION), 18);
	close(d);
	if (stat(VMM_CTL_DEV, &sb) != 0) {
		CHECK_ERR(open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC),
		    ENOENT);
	}
	unsetenv("VMMEMU_DEVICE");

	/* A bad state variable is a loud fixture error (EIO). */
	setenv("VMMEMU_PHYSMEM", "12Q", 1);
	setenv("VMMEMU_STATE", "/nonexistent-dir/x.state", 1);
	quiet();
	int rc = ioctl(a, VMM_RESV_QUERY, &q);
	int qe = errno;
	unquiet();
	CHECK_ERR((errno = qe, rc), EIO);
	setenv("VMMEMU_STATE", state_path, 1);
	unsetenv("VMMEMU_PHYSMEM");

	CHECK_OK(close(a));
	/* No fd leaked by the emulator (state file, pipes, ...). */
	CHECK_EQ(count_fds(), fds_before);
	check_invariants();
}

static void
t_limit(void)
{
	/* Default: 16 GiB, pages_pp_maximum = pages/25 + 1024. */
	fresh("limit-default", NULL, NULL);
	int fd = ctl_open();
	struct vmm_resv_query q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 0);
	CHECK_EQ(q.vrq_alloc_sz, 0);
	CHECK_EQ(q.vrq_alloc_transient_sz, 0);
	/* ((4194304*10 - 168796*12) * 4096) / 10 */
	CHECK_EQ(q.vrq_limit, UINT64_C(16350203084));
	CHECK_EQ(q.vrq_limit, vmmemu_compute_limit(4194304,
	    4194304 / 25 + 1024));
	struct vmmemu_hdr h = state();
	CHECK_EQ(h.physmem, 16 * GiB);
	CHECK_EQ(h.pages_pp_maximum, 168796);
	close(fd);

	/* Explicit values; the suffixes are binary. */
	static const char *const ones[] = { "1G", "1g", "1024M", "1048576K",
	    "1073741824" };
	for (size_t i = 0; i < 5; i++) {
		fresh("limit-1g", ones[i], "1000");
		fd = ctl_open();
		q = query(fd);
		/* ((262144*10 - 1000*12) * 4096) / 10 */
		CHECK_EQ(q.vrq_limit, UINT64_C(1068826624));
		close(fd);
	}
	fresh("limit-1g-default-ppm", "1G", NULL);
	fd = ctl_open();
	CHECK_EQ(query(fd).vrq_limit, vmmemu_compute_limit(262144,
	    262144 / 25 + 1024));
	CHECK_EQ(query(fd).vrq_limit, UINT64_C(1017172787));
	/* Computed once: changing the env later changes nothing. */
	setenv("VMMEMU_PHYSMEM", "2T", 1);
	CHECK_EQ(query(fd).vrq_limit, UINT64_C(1017172787));
	close(fd);

	fresh("limit-tiny", "4M", NULL);	/* ppm*12 > pages*10: clamp */
	fd = ctl_open();
	CHECK_EQ(query(fd).vrq_limit, 0);
	close(fd);

	fresh("limit-bad", "1X", NULL);
	fd = ctl_open();
	struct vmm_resv_query bq;
	quiet();
	int rc = ioctl(fd, VMM_RESV_QUERY, &bq);
	int qe = errno;
	unquiet();
	CHECK_ERR((errno = qe, rc), EIO);
	close(fd);

	CHECK_EQ(vmmemu_parse_size("2T", &h.physmem), 0);
	CHECK_EQ(h.physmem, UINT64_C(2) << 40);
	CHECK_EQ(vmmemu_parse_size("", &h.physmem), -1);
	CHECK_EQ(vmmemu_parse_size("1GB", &h.physmem), -1);
	CHECK_EQ(vmmemu_parse_size("99999999999999999999", &h.physmem), -1);
	CHECK_EQ(vmmemu_parse_size("17179869184G", &h.physmem), -1);
}

static void
t_query(void)
{
	fresh("query", "1G", "1000");
	int fd = ctl_open();
	size_t r;
	CHECK_OK(set_target(fd, 64 * MiB, 0, &r));

	/* Bad buffers give EFAULT, never a crash. */
	CHECK_ERR(ioctl(fd, VMM_RESV_QUERY, NULL), EFAULT);
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	REQUIRE(munmap(m + pg, (size_t)pg) == 0);
	CHECK_ERR(ioctl(fd, VMM_RESV_QUERY, m + pg), EFAULT);
	/* Straddling into the unmapped page. */
	CHECK_ERR(ioctl(fd, VMM_RESV_QUERY, m + pg - 16), EFAULT);
	REQUIRE(mprotect(m, (size_t)pg, PROT_READ) == 0);
	CHECK_ERR(ioctl(fd, VMM_RESV_QUERY, m), EFAULT);
	munmap(m, (size_t)pg);

	/* Upstream: exactly 32 bytes written. */
	size_t buf[8];
	memset(buf, 0xa5, sizeof (buf));
	CHECK_OK(ioctl(fd, VMM_RESV_QUERY, buf));
	CHECK_EQ(buf[0], 64 * MiB);
	CHECK_EQ(buf[1], 0);
	CHECK_EQ(buf[2], 0);
	CHECK_EQ(buf[3], UINT64_C(1068826624));
	for (int i = 4; i < 8; i++)
		CHECK_EQ(buf[i], (size_t)0xa5a5a5a5a5a5a5a5ULL);

	/* The rawmem fork: 48 bytes, whatever the caller's buffer is. */
	setenv("VMMEMU_QUERY_SIZE", "48", 1);
	memset(buf, 0, sizeof (buf));
	CHECK_OK(ioctl(fd, VMM_RESV_QUERY, buf));
	CHECK_EQ(buf[0], 64 * MiB);
	CHECK_EQ(buf[3], UINT64_C(1068826624));
	CHECK_EQ(buf[4], VMMEMU_RAWMEM_TOTAL_PATTERN);
	CHECK_EQ(buf[5], VMMEMU_RAWMEM_FREE_PATTERN);
	CHECK_EQ(buf[6], 0);
	CHECK_EQ(buf[7], 0);
	setenv("VMMEMU_QUERY_SIZE", "32", 1);
	memset(buf, 0, sizeof (buf));
	CHECK_OK(ioctl(fd, VMM_RESV_QUERY, buf));
	CHECK_EQ(buf[4], 0);
	unsetenv("VMMEMU_QUERY_SIZE");

	/* Anyone may query: read-only fd, unprivileged caller. */
	int ro = open(VMM_CTL_DEV, O_RDONLY | O_EXCL | O_CLOEXEC);
	CHECK(ro >= 0);
	setenv("VMMEMU_UNPRIVILEGED", "1", 1);
	CHECK_EQ(query(ro).vrq_free_sz, 64 * MiB);
	unsetenv("VMMEMU_UNPRIVILEGED");
	close(ro);
	close(fd);
	check_invariants();
}

static void
t_set_target(void)
{
	const size_t L = 1068826624;	/* 1 GiB, ppm 1000 */
	size_t r;

	fresh("set-target", "1G", "1000");
	int fd = ctl_open();

	/* Privilege first, before the argument is even read. */
	setenv("VMMEMU_UNPRIVILEGED", "1", 1);
	CHECK_ERR(set_target(fd, 64 * MiB, 0, &r), EPERM);
	CHECK_EQ(r, SENTINEL);
	CHECK_ERR(ioctl(fd, VMM_RESV_SET_TARGET, NULL), EPERM);
	unsetenv("VMMEMU_UNPRIVILEGED");
	CHECK_ERR(ioctl(fd, VMM_RESV_SET_TARGET, NULL), EFAULT);

	/* Alignment and the sentinel: EINVAL, nothing copied out. */
	CHECK_ERR(set_target(fd, 4097, 0, &r), EINVAL);
	CHECK_EQ(r, SENTINEL);
	CHECK_ERR(set_target(fd, 8192, 100, &r), EINVAL);
	CHECK_EQ(r, SENTINEL);
	CHECK_ERR(set_target(fd, SIZE_MAX, 0, &r), EINVAL);
	CHECK_EQ(r, SENTINEL);

	/* Growth, one step and chunked; equal target returns at once. */
	CHECK_OK(set_target(fd, 256 * MiB, 0, &r));
	CHECK_EQ(r, 256 * MiB);
	CHECK_EQ(query(fd).vrq_free_sz, 256 * MiB);
	CHECK_OK(set_target(fd, 256 * MiB, 0, &r));
	CHECK_EQ(r, 256 * MiB);
	CHECK_OK(set_target(fd, 768 * MiB, 128 * MiB, &r));
	CHECK_EQ(r, 768 * MiB);
	CHECK_EQ(state().grown_total, 768 * MiB);
	/* A chunk larger than the change is just one step. */
	CHECK_OK(set_target(fd, 772 * MiB, GiB, &r));
	CHECK_EQ(r, 772 * MiB);

	/* Shrink. */
	CHECK_OK(set_target(fd, 512 * MiB, 64 * MiB, &r));
	CHECK_EQ(r, 512 * MiB);
	struct vmm_resv_query q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 512 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 0);
	CHECK_EQ(state().grown_total, 772 * MiB);

	/* Past the limit: ENOSPC, no copy-out; completed chunks stay. */
	CHECK(1024 * MiB > L && 896 * MiB <= L);
	CHECK_ERR(set_target(fd, 1024 * MiB, 0, &r), ENOSPC);
	CHECK_EQ(r, SENTINEL);
	CHECK_EQ(query(fd).vrq_free_sz, 512 * MiB);
	CHECK_ERR(set_target(fd, 1024 * MiB, 128 * MiB, &r), ENOSPC);
	CHECK_EQ(r, SENTINEL);
	CHECK_EQ(query(fd).vrq_free_sz, 896 * MiB);
	/* The failing chunk is not shrunk to fit (L - 896M > 64M). */
	CHECK(L - 896 * MiB > 64 * MiB);
	CHECK_ERR(set_target(fd, 1024 * MiB, 512 * MiB, &r), ENOSPC);
	CHECK_EQ(query(fd).vrq_free_sz, 896 * MiB);
	/* Exactly up to the limit's last whole page is fine. */
	size_t top = L & ~VMMEMU_PAGEOFFSET;
	CHECK_OK(set_target(fd, top, 0, &r));
	CHECK_EQ(r, top);
	CHECK_EQ(state().max_total_seen, top);
	CHECK_ERR(set_target(fd, top + 4096, 0, &r), ENOSPC);

	/* Copy-out failure after the work is done: EFAULT, effect stays. */
	long pg = sysconf(_SC_PAGESIZE);
	struct vmm_resv_target *t = mmap(NULL, (size_t)pg,
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(t != MAP_FAILED);
	t->vrt_target_sz = 128 * MiB;
	t->vrt_chunk_sz = 0;
	REQUIRE(mprotect(t, (size_t)pg, PROT_READ) == 0);
	CHECK_ERR(ioctl(fd, VMM_RESV_SET_TARGET, t), EFAULT);
	CHECK_EQ(query(fd).vrq_free_sz, 128 * MiB);
	munmap(t, (size_t)pg);

	/* Overflow: total + req wraps (a transient VM holds 8 KiB). */
	CHECK_OK(create_vm(fd, "ovf", 0));
	int ifd = inst_open("ovf");
	CHECK(ifd >= 0);
	CHECK_OK(alloc_memseg(ifd, 0, 8192, NULL));
	CHECK_ERR(set_target(fd, SIZE_MAX & ~VMMEMU_PAGEOFFSET, 0, &r),
	    EOVERFLOW);
	CHECK_EQ(r, SENTINEL);
	CHECK_OK(ioctl(ifd, VM_DESTROY_SELF, 0));
	close(ifd);
	/* Without transient memory it is merely too big. */
	CHECK_ERR(set_target(fd, SIZE_MAX & ~VMMEMU_PAGEOFFSET, 0, &r),
	    ENOSPC);

	CHECK_OK(set_target(fd, 0, 0, &r));
	CHECK_EQ(r, 0);
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz + q.vrq_alloc_sz + q.vrq_alloc_transient_sz,
	    0);
	close(fd);
	check_invariants();
}

static void
t_enomem(void)
{
	size_t r;

	fresh("enomem", NULL, NULL);
	int fd = ctl_open();
	setenv("VMMEMU_ENOMEM_AFTER", "768M", 1);
	/* Three chunks fit under the injected ceiling, the 4th fails. */
	CHECK_ERR(set_target(fd, GiB, 256 * MiB, &r), ENOMEM);
	CHECK_EQ(r, SENTINEL);
	CHECK_EQ(query(fd).vrq_free_sz, 768 * MiB);
	CHECK_EQ(state().grown_total, 768 * MiB);
	CHECK_EQ(state().adding_sz, 0);
	/* Unchunked: the one step rolls back entirely. */
	CHECK_ERR(set_target(fd, GiB, 0, &r), ENOMEM);
	CHECK_EQ(query(fd).vrq_free_sz, 768 * MiB);
	/* Shrinking is unaffected; the ceiling is on bytes ever added. */
	CHECK_OK(set_target(fd, 0, 0, &r));
	CHECK_ERR(set_target(fd, 4096, 0, &r), ENOMEM);
	CHECK_EQ(query(fd).vrq_free_sz, 0);
	unsetenv("VMMEMU_ENOMEM_AFTER");
	CHECK_OK(set_target(fd, GiB, 0, &r));
	CHECK_EQ(r, GiB);
	CHECK_EQ(state().grown_total, 768 * MiB + GiB);
	setenv("VMMEMU_ENOMEM_AFTER", "0", 1);
	CHECK_ERR(set_target(fd, GiB + 4096, 0, &r), ENOMEM);
	unsetenv("VMMEMU_ENOMEM_AFTER");
	close(fd);
	check_invariants();
}

static void
t_shrink_busy(void)
{
	size_t r;

	fresh("shrink-busy", "1G", "1000");
	int fd = ctl_open();
	CHECK_OK(set_target(fd, GiB - 256 * MiB, 0, &r));	/* 768M */
	CHECK_OK(create_vm(fd, "guest", VCF_RESERVOIR_MEM));
	int ifd = inst_open("guest");
	CHECK(ifd >= 0);
	CHECK_OK(alloc_memseg(ifd, 0, 256 * MiB, NULL));
	struct vmm_resv_query q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 512 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 256 * MiB);

	/* Only free memory can leave: unchunked fails with no change. */
	CHECK_ERR(set_target(fd, 0, 0, &r), ENOSPC);
	CHECK_EQ(r, SENTINEL);
	CHECK_EQ(query(fd).vrq_free_sz, 512 * MiB);
	/* Chunked: whole chunks leave while free allows, then ENOSPC. */
	CHECK_ERR(set_target(fd, 0, 192 * MiB, &r), ENOSPC);
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 128 * MiB);	/* 512 - 2 x 192 */
	CHECK_EQ(q.vrq_alloc_sz, 256 * MiB);
	/* Down to exactly the allocated part works. */
	CHECK_OK(set_target(fd, 256 * MiB, 0, &r));
	CHECK_EQ(r, 256 * MiB);
	CHECK_EQ(query(fd).vrq_free_sz, 0);
	/* target == alloc + free: immediate success. */
	CHECK_OK(set_target(fd, 256 * MiB, 4096, &r));
	CHECK_EQ(r, 256 * MiB);

	CHECK_OK(ioctl(ifd, VM_DESTROY_SELF, 0));
	close(ifd);
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 256 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 0);
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(fd);
	check_invariants();
}

static void
t_eintr(void)
{
	size_t r;
	int calls = 0, rc;

	fresh("eintr", NULL, NULL);
	int fd = ctl_open();
	setenv("VMMEMU_EINTR_AFTER_CHUNKS", "2", 1);
	/* 8 chunks, 2 per call: EINTR x 3 with progress, then success. */
	do {
		rc = set_target(fd, GiB, 128 * MiB, &r);
		calls++;
		if (rc != 0) {
			CHECK_EQ(errno, EINTR);
			CHECK_EQ(r, (size_t)calls * 256 * MiB);
		}
	} while (rc != 0 && errno == EINTR && calls < 20);
	CHECK_EQ(rc, 0);
	CHECK_EQ(calls, 4);
	CHECK_EQ(r, GiB);

	/* Shrinking is interrupted the same way. */
	setenv("VMMEMU_EINTR_AFTER_CHUNKS", "1", 1);
	calls = 0;
	do {
		rc = set_target(fd, 0, 256 * MiB, &r);
		calls++;
		if (rc != 0)
			CHECK_EQ(r, GiB - (size_t)calls * 256 * MiB);
	} while (rc != 0 && errno == EINTR && calls < 20);
	CHECK_EQ(rc, 0);
	CHECK_EQ(calls, 4);
	CHECK_EQ(r, 0);

	/* Chunk 0 is one step: with N = 1 it completes before the check. */
	CHECK_OK(set_target(fd, GiB, 0, &r));
	CHECK_EQ(r, GiB);
	/* The resize is not left active after EINTR. */
	CHECK_ERR(set_target(fd, 0, 512 * MiB, &r), EINTR);
	CHECK_EQ(r, 512 * MiB);
	CHECK(state().target_sz == VMMR_TARGET_INACTIVE);

	/*
	 * vmmr_set_target checks issig() at the top of every pass, the first
	 * included: EINTR with no progress at all, even with chunk 0, and
	 * the result copied out (the size it started from).
	 */
	setenv("VMMEMU_EINTR_AFTER_CHUNKS", "0", 1);
	r = SENTINEL;
	CHECK_ERR(set_target(fd, 2 * GiB, 0, &r), EINTR);
	CHECK_EQ(r, 512 * MiB);
	r = SENTINEL;
	CHECK_ERR(set_target(fd, 0, 128 * MiB, &r), EINTR);
	CHECK_EQ(r, 512 * MiB);
	CHECK_EQ(query(fd).vrq_free_sz, 512 * MiB);
	CHECK(state().target_sz == VMMR_TARGET_INACTIVE);
	/* ...and the equal target still returns at once. */
	CHECK_OK(set_target(fd, 512 * MiB, 0, &r));

	/* VMMEMU_EINTR_LIMIT: K signals in all, then the calls go through. */
	uint64_t given = state().eintr_given;
	setenv("VMMEMU_EINTR_LIMIT", "0", 1);
	CHECK_OK(set_target(fd, GiB, 0, &r));
	char lim[32];
	snprintf(lim, sizeof (lim), "%" PRIu64, given + 2);
	setenv("VMMEMU_EINTR_LIMIT", lim, 1);
	CHECK_ERR(set_target(fd, 2 * GiB, 0, &r), EINTR);
	CHECK_ERR(set_target(fd, 2 * GiB, 0, &r), EINTR);
	CHECK_EQ(r, GiB);
	CHECK_OK(set_target(fd, 2 * GiB, 0, &r));
	CHECK_EQ(r, 2 * GiB);
	CHECK_EQ(state().eintr_given, given + 2);
	unsetenv("VMMEMU_EINTR_LIMIT");

	/*
	 * vmmr_add interrupted inside a chunk (page_xresv's wait): that chunk
	 * is rolled back, earlier ones stay.  Chunk 0: nothing happens.
	 */
	setenv("VMMEMU_EINTR_IN_ADD", "1", 1);
	uint64_t grown = state().grown_total;
	CHECK_ERR(set_target(fd, 3 * GiB, 0, &r), EINTR);
	CHECK_EQ(r, 2 * GiB);
	CHECK_EQ(state().adding_sz, 0);
	CHECK_EQ(state().grown_total, grown);
	setenv("VMMEMU_EINTR_AFTER_CHUNKS", "2", 1);
	CHECK_ERR(set_target(fd, 3 * GiB, 256 * MiB, &r), EINTR);
	CHECK_EQ(r, 2 * GiB + 512 * MiB);
	CHECK_EQ(state().adding_sz, 0);
	/* A shrink chunk cannot be interrupted: seen at the next pass. */
	CHECK_ERR(set_target(fd, 0, 256 * MiB, &r), EINTR);
	CHECK_EQ(r, 2 * GiB);
	unsetenv("VMMEMU_EINTR_IN_ADD");
	unsetenv("VMMEMU_EINTR_AFTER_CHUNKS");
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(fd);
	check_invariants();
}

/* A child that sets a target with the given per-chunk delay. */
static pid_t
spawn_resizer(size_t target, size_t chunk, const char *delay_us)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		setenv("VMMEMU_CHUNK_DELAY_US", delay_us, 1);
		int fd = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
		size_t r;
		int rc = set_target(fd, target, chunk, &r);
		_exit(rc == 0 && r == target ? 0 : 1);
	}
	return (pid);
}

static void
t_concurrent(void)
{
	size_t r;
	int ws;

	fresh("concurrent", "1G", "1000");
	int fd = ctl_open();
	CHECK_OK(create_vm(fd, "tvm", 0));
	int ifd = inst_open("tvm");
	CHECK(ifd >= 0);

	/* A slow one-step growth to 768M: adding_sz = 768M for 3 s. */
	pid_t pid = spawn_resizer(768 * MiB, 0, "3000000");
	CHECK(wait_state(adding_is, 768 * MiB));

	/* A second resize is refused; nothing copied out. */
	CHECK_ERR(set_target(fd, 512 * MiB, 0, &r), EALREADY);
	CHECK_EQ(r, SENTINEL);
	/* ...unless it asks for the current size (0 until the child ends). */
	CHECK_OK(set_target(fd, 0, 0, &r));
	CHECK_EQ(r, 0);
	/* Queries are not blocked while the lock is dropped. */
	CHECK_EQ(query(fd).vrq_free_sz, 0);

	char out[65536];
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK_EQ(show_val(out, "target_active"), 1);
	CHECK_EQ(show_val(out, "resizer_pid"), pid);

	/* In-flight additions count against the limit (~1019 MiB). */
	CHECK_ERR(alloc_memseg(ifd, 0, 512 * MiB, NULL), ENOMEM);
	CHECK_OK(alloc_memseg(ifd, 0, 128 * MiB, NULL));

	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	struct vmm_resv_query q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 768 * MiB);
	CHECK_EQ(q.vrq_alloc_transient_sz, 128 * MiB);
	CHECK_ERR(alloc_memseg(ifd, 1, 256 * MiB, NULL), ENOMEM);
	CHECK_OK(alloc_memseg(ifd, 1, 64 * MiB, NULL));
	CHECK_EQ(state().allocs_refused, 2);
	CHECK_EQ(state().allocs_ok, 2);

	/* Chunked concurrent resize: EALREADY until it is done. */
	CHECK_OK(ioctl(ifd, VM_DESTROY_SELF, 0));
	close(ifd);
	pid = spawn_resizer(0, 256 * MiB, "0");
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	pid = spawn_resizer(512 * MiB, 128 * MiB, "500000");
	CHECK(wait_state(adding_is, 128 * MiB));
	CHECK_ERR(set_target(fd, 64 * MiB, 0, &r), EALREADY);
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	CHECK_EQ(query(fd).vrq_free_sz, 512 * MiB);
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(fd);
	check_invariants();
}

static int
proc_is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof (path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return (0);
	size_t n = fread(buf, 1, sizeof (buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return (rp != NULL && rp[1] == ' ' && rp[2] == 'Z');
}

static void
t_dead_resizer(void)
{
	size_t r;
	int ws;
	char out[65536];

	fresh("dead-resizer", NULL, NULL);
	int fd = ctl_open();

	/* A resizer killed mid-resize must not leave EALREADY for ever. */
	pid_t pid = spawn_resizer(256 * MiB, 0, "60000000");
	CHECK(wait_state(adding_is, 256 * MiB));
	CHECK_ERR(set_target(fd, 512 * MiB, 0, &r), EALREADY);
	REQUIRE(kill(pid, SIGKILL) == 0);
	/* Not reaped yet: a zombie counts as dead. */
	for (int i = 0; i < 4000 && !proc_is_zombie(pid); i++)
		sleep_ms(5);
	CHECK(proc_is_zombie(pid));
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK_EQ(show_val(out, "target_active"), 0);
	CHECK_EQ(show_val(out, "resizer_pid"), 0);
	CHECK_OK(set_target(fd, 128 * MiB, 0, &r));
	CHECK_EQ(r, 128 * MiB);
	/* Its in-flight chunk was rolled back. */
	CHECK_EQ(state().adding_sz, 0);
	CHECK_EQ(query(fd).vrq_free_sz, 128 * MiB);
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

	/* Same after reaping (ESRCH). */
	pid = spawn_resizer(256 * MiB, 0, "60000000");
	CHECK(wait_state(adding_is, 128 * MiB));
	REQUIRE(kill(pid, SIGKILL) == 0);
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK_OK(set_target(fd, 0, 0, &r));
	CHECK_EQ(r, 0);
	close(fd);
	check_invariants();
}

/*
 * Liveness across PID namespaces (launchers run each in its own PID and
 * mount namespace, sharing the state file).  A grandchild made by
 * unshare(CLONE_NEWPID | CLONE_NEWNS) + fork is pid 1 in its namespace:
 * a pid-based check from outside sees our own init there -- "alive" for
 * ever -- and one from inside sees no such pid as outside resizers.
 * Seen failing with the pid-based bookkeeping this replaced: after the
 * namespaced resizer was SIGKILLed, SET_TARGET kept answering EALREADY.
 * Forks a resizer in a new namespace; returns its pid as seen from here
 * (0 and a note if namespaces are not allowed).  In the child: set
 * target, chunk with a per-chunk delay, exit 0 if reached, 2 on EALREADY.
 */
static pid_t
spawn_ns_resizer(size_t target, size_t chunk, const char *delay_us)
{
	int p[2];
	REQUIRE(pipe(p) == 0);
	pid_t mid = fork();
	REQUIRE(mid >= 0);
	if (mid == 0) {
		close(p[0]);
		pid_t inner = -1;
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) == 0 &&
		    (inner = fork()) == 0) {
			close(p[1]);
			setenv("VMMEMU_CHUNK_DELAY_US", delay_us, 1);
			int fd = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
			size_t r;
			int rc = set_target(fd, target, chunk, &r);
			_exit(rc == 0 && r == target ? 0 :
			    rc != 0 && errno == EALREADY ? 2 : 1);
		}
		(void) !write(p[1], &inner, sizeof (inner));
		/* Wait so the grandchild is reaped here, not left to init. */
		int ws;
		if (inner > 0 && waitpid(inner, &ws, 0) == inner &&
		    WIFEXITED(ws))
			_exit(WEXITSTATUS(ws));
		_exit(inner > 0 ? 3 : 4);
	}
	close(p[1]);
	pid_t inner = -1;
	REQUIRE(read(p[0], &inner, sizeof (inner)) == (ssize_t)sizeof (inner));
	close(p[0]);
	if (inner <= 0) {
		int ws;
		(void) waitpid(mid, &ws, 0);
		fprintf(stderr, "note [%s]: no PID namespaces here (%s); "
		    "skipped\n", section, strerror(EPERM));
		return (0);
	}
	/* Reaped through mid; the caller waits for mid. */
	ns_mid = mid;
	return (inner);
}

static void
t_namespaces(void)
{
	size_t r;
	int ws;

	fresh("namespaces", NULL, NULL);
	int fd = ctl_open();

	/* Inner resizer, killed mid-chunk: seen as gone from outside. */
	pid_t pid = spawn_ns_resizer(256 * MiB, 0, "60000000");
	if (pid == 0) {
		close(fd);
		return;
	}
	CHECK(wait_state(adding_is, 256 * MiB));
	/* It recorded its own namespace's pid: 1. */
	CHECK_EQ(state().resizer_pid, 1);
	CHECK_ERR(set_target(fd, 512 * MiB, 0, &r), EALREADY);
	char out[65536];
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK_EQ(show_val(out, "target_active"), 1);
	REQUIRE(kill(pid, SIGKILL) == 0);
	REQUIRE(waitpid(ns_mid, &ws, 0) == ns_mid);
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK_EQ(show_val(out, "target_active"), 0);
	/* Not EALREADY for ever; its in-flight chunk is rolled back. */
	CHECK_OK(set_target(fd, 128 * MiB, 0, &r));
	CHECK_EQ(r, 128 * MiB);
	CHECK_EQ(state().adding_sz, 0);
	CHECK_EQ(query(fd).vrq_free_sz, 128 * MiB);

	/* Outer resizer alive: a resizer inside a namespace is refused. */
	pid_t outer = spawn_resizer(384 * MiB, 0, "3000000");
	CHECK(wait_state(adding_is, 256 * MiB));
	pid = spawn_ns_resizer(0, 0, "0");
	CHECK(pid > 0);
	REQUIRE(waitpid(ns_mid, &ws, 0) == ns_mid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
	REQUIRE(waitpid(outer, &ws, 0) == outer);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

	/* Two namespaces, both pid 1: one resize each, one after the other. */
	pid = spawn_ns_resizer(512 * MiB, 64 * MiB, "100000");
	pid_t first = ns_mid;
	CHECK(wait_state(adding_is, 64 * MiB));
	pid = spawn_ns_resizer(0, 0, "0");
	REQUIRE(waitpid(ns_mid, &ws, 0) == ns_mid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
	REQUIRE(waitpid(first, &ws, 0) == first);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	CHECK_EQ(query(fd).vrq_free_sz, 512 * MiB);
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(fd);
	check_invariants();
}

/* OS-8005's VM_ARC_RESV: the early kernel, the later one, neither. */
static void
t_arc_resv(void)
{
	fresh("arc-resv", NULL, NULL);
	int fd = ctl_open();
	CHECK_OK(create_vm(fd, "avm", 0));
	int ifd = inst_open("avm");
	uint64_t len = 3 * MiB + 1;

	/* Neither (upstream): both numbers ENOTTY, version answered. */
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_BYVALUE, (void *)(uintptr_t)GiB),
	    ENOTTY);
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_COPYIN, &len), ENOTTY);
	CHECK_EQ(ioctl(ifd, VMM_INTERFACE_VERSION, 0), 18);

	/* The early tree: the length by value; no version on instances. */
	setenv("VMMEMU_ARC_RESV", "byvalue", 1);
	CHECK_ERR(ioctl(ifd, VMM_INTERFACE_VERSION, 0), ENOTTY);
	CHECK_EQ(ioctl(fd, VMM_INTERFACE_VERSION, 0), 18);
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_COPYIN, &len), ENOTTY);
	CHECK_OK(ioctl(ifd, VM_ARC_RESV_BYVALUE, (void *)(uintptr_t)len));
	CHECK_EQ(state().arc_resv_pages, 769);	/* rounded up */

	/* The later tree: a pointer to a size_t; a length there is EFAULT. */
	setenv("VMMEMU_ARC_RESV", "copyin", 1);
	CHECK_EQ(ioctl(ifd, VMM_INTERFACE_VERSION, 0), 18);
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_BYVALUE, (void *)(uintptr_t)GiB),
	    ENOTTY);
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_COPYIN, (void *)(uintptr_t)4096),
	    EFAULT);
	len = GiB;
	CHECK_OK(ioctl(ifd, VM_ARC_RESV_COPYIN, &len));
	CHECK_EQ(state().arc_resv_pages, 769 + 262144);
	CHECK_EQ(state().arc_ioctls_byvalue, 3);
	CHECK_EQ(state().arc_ioctls_copyin, 4);
	char out[65536];
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK(strstr(out, "vm=avm flags=0 mem=0 arc_resv=262913\n") != NULL);
	CHECK_EQ(show_val(out, "arc_resv_pages"), 262913);
	setenv("VMMEMU_ARC_RESV", "bogus", 1);
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_COPYIN, &len), EIO);
	unsetenv("VMMEMU_ARC_RESV");
	/* A destroyed instance: ENXIO, as for every instance command. */
	CHECK_OK(destroy_vm(fd, "avm"));
	CHECK_ERR(ioctl(ifd, VM_ARC_RESV_COPYIN, &len), ENXIO);
	close(ifd);
	close(fd);
	check_invariants();
}

static void
t_legacy(void)
{
	fresh("legacy", "1G", "1000");
	setenv("VMMEMU_VERSION", "8", 1);
	int fd = ctl_open();
	CHECK_EQ(ioctl(fd, VMM_INTERFACE_VERSION), 8);

	/* VMM_RESV_ADD / VMM_RESV_REMOVE take the size by value. */
	CHECK_OK(ioctl(fd, VMM_RESV_ADD_LEGACY, (void *)(uintptr_t)(64 * MiB)));
	CHECK_EQ(query(fd).vrq_free_sz, 64 * MiB);
	CHECK_OK(ioctl(fd, VMM_RESV_REMOVE_LEGACY,
	    (void *)(uintptr_t)(32 * MiB)));
	CHECK_EQ(query(fd).vrq_free_sz, 32 * MiB);
	CHECK_ERR(ioctl(fd, VMM_RESV_REMOVE_LEGACY,
	    (void *)(uintptr_t)(64 * MiB)), ENOSPC);
	CHECK_ERR(ioctl(fd, VMM_RESV_ADD_LEGACY, (void *)(uintptr_t)GiB),
	    ENOSPC);
	CHECK_OK(ioctl(fd, VMM_RESV_ADD_LEGACY, (void *)0));
	CHECK_EQ(state().grown_total, 64 * MiB);

	/*
	 * Legacy additions are not serialised by a target: two can overlap,
	 * and one in flight (lock dropped) counts against the limit.
	 */
	pid_t adder = fork();
	REQUIRE(adder >= 0);
	if (adder == 0) {
		setenv("VMMEMU_CHUNK_DELAY_US", "3000000", 1);
		_exit(ioctl(fd, VMM_RESV_ADD_LEGACY,
		    (void *)(uintptr_t)(768 * MiB)) == 0 ? 0 : 1);
	}
	CHECK(wait_state(adding_is, 768 * MiB));
	CHECK_ERR(ioctl(fd, VMM_RESV_ADD_LEGACY,
	    (void *)(uintptr_t)(256 * MiB)), ENOSPC);
	CHECK_OK(ioctl(fd, VMM_RESV_ADD_LEGACY, (void *)(uintptr_t)(64 * MiB)));
	int aws;
	REQUIRE(waitpid(adder, &aws, 0) == adder);
	CHECK(WIFEXITED(aws) && WEXITSTATUS(aws) == 0);
	CHECK_EQ(query(fd).vrq_free_sz, (32 + 768 + 64) * MiB);
	CHECK_OK(ioctl(fd, VMM_RESV_REMOVE_LEGACY,
	    (void *)(uintptr_t)(832 * MiB)));
	CHECK_EQ(query(fd).vrq_free_sz, 32 * MiB);

	/* Privilege is checked before the size is looked at. */
	setenv("VMMEMU_UNPRIVILEGED", "1", 1);
	CHECK_ERR(ioctl(fd, VMM_RESV_ADD_LEGACY, (void *)(uintptr_t)4097),
	    EPERM);
	CHECK_ERR(ioctl(fd, VMM_RESV_REMOVE_LEGACY,
	    (void *)(uintptr_t)4097), EPERM);
	unsetenv("VMMEMU_UNPRIVILEGED");

	/* A SET_TARGET struct pointer sent to a pre-V9 kernel: panic. */
	int p[2];
	REQUIRE(pipe(p) == 0);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		static size_t page[1024] __attribute__((aligned(4096)));
		struct vmm_resv_target *t = (void *)&page[1];
		t->vrt_target_sz = 128 * MiB;
		(void) ioctl(fd, VMM_RESV_SET_TARGET, t);
		_exit(0);	/* not reached */
	}
	close(p[1]);
	char err[8192];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof (err) - 1 &&
	    (k = read(p[0], err + n, sizeof (err) - 1 - n)) > 0)
		n += (size_t)k;
	err[n] = '\0';
	close(p[0]);
	int ws;
	REQUIRE(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
	CHECK(strstr(err, "vmmemu: PANIC: VERIFY3U(sz & PAGEOFFSET, ==, 0) "
	    "\xe2\x80\x94 legacy VMM_RESV_ADD got a pointer") != NULL);
	CHECK_EQ(query(fd).vrq_free_sz, 32 * MiB);

	/* Instance fds answer the version from V6 on. */
	CHECK_OK(create_vm(fd, "old", VCF_RESERVOIR_MEM));
	int ifd = inst_open("old");
	CHECK(ifd >= 0);
	CHECK_EQ(ioctl(ifd, VMM_INTERFACE_VERSION), 8);
	setenv("VMMEMU_VERSION", "5", 1);
	CHECK_ERR(ioctl(ifd, VMM_INTERFACE_VERSION), ENOTTY);
	CHECK_EQ(ioctl(fd, VMM_INTERFACE_VERSION), 5);
	CHECK_OK(ioctl(ifd, VM_DESTROY_SELF, 0));
	close(ifd);

	/* From V9: 0x11 is SET_TARGET and 0x12 is gone. */
	setenv("VMMEMU_VERSION", "9", 1);
	size_t r;
	CHECK_ERR(ioctl(fd, VMM_RESV_REMOVE_LEGACY,
	    (void *)(uintptr_t)(32 * MiB)), ENOTTY);
	CHECK_OK(set_target(fd, 0, 0, &r));
	CHECK_EQ(r, 0);
	unsetenv("VMMEMU_VERSION");
	CHECK_ERR(ioctl(fd, VMM_RESV_REMOVE_LEGACY, (void *)0), ENOTTY);
	close(fd);
	check_invariants();
}

static void
t_vms(void)
{
	const size_t L = 1068826624;
	size_t r;
	char out[65536];

	fresh("vms", "1G", "1000");
	int fd = ctl_open();
	int ro = open(VMM_CTL_DEV, O_RDONLY | O_EXCL | O_CLOEXEC);
	CHECK(ro >= 0);

	/* VMM_CREATE_VM checks. */
	CHECK_ERR(create_vm(ro, "a", 0), EPERM);
	CHECK_ERR(ioctl(fd, VMM_CREATE_VM, NULL), EFAULT);
	CHECK_ERR(create_vm(fd, "", 0), EINVAL);
	CHECK_ERR(create_vm(fd, "a/b", 0), EINVAL);
	struct vm_create_req big;
	memset(big.name, 'x', sizeof (big.name));
	big.flags = 0;
	CHECK_ERR(ioctl(fd, VMM_CREATE_VM, &big), ENAMETOOLONG);
	big.name[127] = '\0';
	CHECK_OK(ioctl(fd, VMM_CREATE_VM, &big));
	CHECK_OK(destroy_vm(fd, big.name));
	CHECK_OK(create_vm(fd, "resv", VCF_RESERVOIR_MEM));
	CHECK_ERR(create_vm(fd, "resv", 0), EEXIST);
	CHECK_OK(create_vm(fd, "trans", 0));
	/* Unknown bits are accepted; nothing checked against memory. */
	CHECK_OK(create_vm(fd, "odd", VCF_RESERVOIR_MEM | VCF_TRACK_DIRTY |
	    0x80));
	CHECK_EQ(state().vm_count, 3);

	/* Instance devices. */
	CHECK_ERR(inst_open("nope"), ENOENT);
	CHECK_ERR(open(VMM_INST_DEV_PREFIX, O_RDWR), ENOENT);
	CHECK_ERR(open(VMM_INST_DEV_PREFIX "resv/x", O_RDWR), ENOENT);
	int rfd = inst_open("resv");
	int rfd_ro = open(VMM_INST_DEV_PREFIX "resv", O_RDONLY);
	CHECK(rfd >= 0 && rfd_ro >= 0);
	CHECK_EQ(ioctl(rfd, VMM_INTERFACE_VERSION), 18);
	struct vmm_resv_query q;
	CHECK_ERR(ioctl(rfd, VMM_RESV_QUERY, &q), ENOTTY);
	CHECK_ERR(ioctl(rfd, VMM_CREATE_VM, &big), ENOTTY);

	/* Reservoir VM: from free memory only, ENOMEM when short. */
	CHECK_OK(set_target(fd, 512 * MiB, 0, &r));
	CHECK_ERR(ioctl(rfd, VM_ALLOC_MEMSEG, NULL), EFAULT);
	CHECK_ERR(alloc_memseg(rfd, 0, 0, NULL), EINVAL);
	CHECK_ERR(alloc_memseg(rfd, 0, 4097, NULL), EINVAL);
	CHECK_ERR(alloc_memseg(rfd, -1, 4096, NULL), EINVAL);
	CHECK_ERR(alloc_memseg(rfd, VM_MAX_MEMSEGS, 4096, NULL), EINVAL);
	CHECK_ERR(alloc_memseg(rfd, 0, 768 * MiB, NULL), ENOMEM);
	CHECK_OK(alloc_memseg(rfd, 0, 256 * MiB, NULL));
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 256 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 256 * MiB);
	CHECK_EQ(q.vrq_alloc_transient_sz, 0);
	CHECK_ERR(alloc_memseg(rfd, 0, 256 * MiB, NULL), EEXIST);
	CHECK_ERR(alloc_memseg(rfd, 0, 128 * MiB, NULL), EINVAL);
	CHECK_ERR(alloc_memseg(rfd, 0, 256 * MiB, "named"), EINVAL);
	CHECK_OK(alloc_memseg(rfd_ro, 1, MiB, "bootrom"));
	CHECK_ERR(alloc_memseg(rfd, 2, 256 * MiB, NULL), ENOMEM);
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 255 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 257 * MiB);
	/* Allocated memory cannot be removed. */
	CHECK_ERR(set_target(fd, 0, 0, &r), ENOSPC);

	/* Transient VM: added to the reservoir and allocated at once. */
	int tfd = inst_open("trans");
	CHECK(tfd >= 0);
	CHECK_OK(alloc_memseg(tfd, 0, 256 * MiB, NULL));
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 255 * MiB);
	CHECK_EQ(q.vrq_alloc_sz, 257 * MiB);
	CHECK_EQ(q.vrq_alloc_transient_sz, 256 * MiB);
	/* ...and counts against the same limit. */
	size_t room = L - 768 * MiB;		/* 251.3 MiB */
	CHECK_ERR(alloc_memseg(tfd, 1, 252 * MiB, NULL), ENOMEM);
	CHECK_OK(alloc_memseg(tfd, 1, 251 * MiB, NULL));
	room -= 251 * MiB;
	CHECK_ERR(set_target(fd, 512 * MiB + 4 * MiB, 0, &r), ENOSPC);
	CHECK_OK(set_target(fd, 512 * MiB + (room & ~VMMEMU_PAGEOFFSET), 0,
	    &r));
	CHECK_OK(set_target(fd, 512 * MiB, 0, &r));
	struct vmmemu_hdr h = state();
	CHECK_EQ(h.allocs_ok, 4);
	CHECK_EQ(h.allocs_refused, 3);

	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK(strstr(out, "vm=resv flags=1 mem=269484032 arc_resv=0\n") != NULL);
	CHECK(strstr(out, "vm=trans flags=0 mem=531628032 arc_resv=0\n") != NULL);
	CHECK(strstr(out, "vm=odd flags=131 mem=0 arc_resv=0\n") != NULL);
	CHECK_EQ(show_val(out, "vm_count"), 3);
	CHECK_EQ(show_val(out, "alloc"), 257 * MiB);
	CHECK_EQ(show_val(out, "alloc_transient"), 507 * MiB);

	/* VMM_DESTROY_VM: FWRITE, uid 0, existence. */
	CHECK_ERR(destroy_vm(ro, "resv"), EPERM);
	setenv("VMMEMU_UNPRIVILEGED", "1", 1);
	CHECK_ERR(destroy_vm(fd, "resv"), EPERM);
	unsetenv("VMMEMU_UNPRIVILEGED");
	CHECK_ERR(destroy_vm(fd, "nope"), ENOENT);
	CHECK_ERR(ioctl(fd, VMM_DESTROY_VM, NULL), EFAULT);
	CHECK_OK(destroy_vm(fd, "resv"));
	q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 512 * MiB);	/* back to free */
	CHECK_EQ(q.vrq_alloc_sz, 0);
	/* Its instance fds are dead, except for the version query. */
	CHECK_ERR(alloc_memseg(rfd, 3, MiB, NULL), ENXIO);
	CHECK_ERR(ioctl(rfd, VM_DESTROY_SELF, 0), ENXIO);
	CHECK_ERR(ioctl(rfd, 0x766d77, 0), ENXIO);
	CHECK_EQ(ioctl(rfd, VMM_INTERFACE_VERSION), 18);
	CHECK_ERR(inst_open("resv"), ENOENT);
	/* A new VM of the same name is not the old fds' VM. */
	CHECK_OK(create_vm(fd, "resv", VCF_RESERVOIR_MEM));
	CHECK_ERR(alloc_memseg(rfd, 0, MiB, NULL), ENXIO);
	int rfd2 = inst_open("resv");
	CHECK(rfd2 >= 0);
	CHECK_OK(alloc_memseg(rfd2, 0, MiB, NULL));
	CHECK_OK(ioctl(rfd2, VM_DESTROY_SELF, 0));
	close(rfd2);
	close(rfd);
	close(rfd_ro);

	/* VM_DESTROY_SELF: transient memory leaves the reservoir. */
	CHECK_OK(ioctl(tfd, VM_DESTROY_SELF, 0));
	q = query(fd);
	CHECK_EQ(q.vrq_alloc_transient_sz, 0);
	CHECK_EQ(q.vrq_free_sz, 512 * MiB);
	CHECK_ERR(ioctl(tfd, VM_DESTROY_SELF, 0), ENXIO);
	CHECK_ERR(inst_open("trans"), ENOENT);
	close(tfd);
	CHECK_OK(destroy_vm(fd, "odd"));
	CHECK_EQ(state().vm_count, 0);

	/* The VM table is finite: ENOMEM when full. */
	char name[32];
	int made = 0;
	for (int i = 0; i < VMMEMU_MAX_VMS + 1; i++) {
		snprintf(name, sizeof (name), "vm%d", i);
		if (create_vm(fd, name, 0) != 0) {
			CHECK_EQ(errno, ENOMEM);
			break;
		}
		made++;
	}
	CHECK_EQ(made, VMMEMU_MAX_VMS);
	for (int i = 0; i < made; i++) {
		snprintf(name, sizeof (name), "vm%d", i);
		CHECK_OK(destroy_vm(fd, name));
	}
	CHECK_EQ(state().vm_count, 0);
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(ro);
	close(fd);
	check_invariants();
}

/* Threads: concurrent creates, allocations and destroys. */
#define NTHREADS	8
#define NROUNDS		25

static int thread_errors;
static pthread_mutex_t thread_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long thread_ok, thread_refused;

static void *
worker(void *arg)
{
	int id = (int)(intptr_t)arg, errs = 0;
	unsigned long ok = 0, refused = 0;
	char name[64];

	int fd = open(VMM_CTL_DEV, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		errs++;
	for (int i = 0; i < NROUNDS && fd >= 0; i++) {
		snprintf(name, sizeof (name), "w%d-%d", id, i);
		uint64_t flags = (i % 2) ? VCF_RESERVOIR_MEM : 0;
		if (create_vm(fd, name, flags) != 0) {
			errs++;
			continue;
		}
		int ifd = inst_open(name);
		if (ifd < 0) {
			errs++;
			continue;
		}
		if (alloc_memseg(ifd, 0, 16 * MiB, NULL) == 0)
			ok++;
		else if (errno == ENOMEM)
			refused++;
		else
			errs++;
		if ((i % 3) == 0) {
			if (ioctl(ifd, VM_DESTROY_SELF, 0) != 0)
				errs++;
		} else if (destroy_vm(fd, name) != 0) {
			errs++;
		}
		close(ifd);
	}
	if (fd >= 0)
		close(fd);
	(void) pthread_mutex_lock(&thread_mu);
	thread_errors += errs;
	thread_ok += ok;
	thread_refused += refused;
	(void) pthread_mutex_unlock(&thread_mu);
	return (NULL);
}

static void
t_threads_procs(void)
{
	size_t r;
	pthread_t th[NTHREADS];

	/* Small reservoir and limit, so some allocations are refused. */
	fresh("threads", "128M", "1000");
	int fd = ctl_open();
	CHECK_OK(set_target(fd, 48 * MiB, 0, &r));
	for (int i = 0; i < NTHREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, worker,
		    (void *)(intptr_t)i) == 0);
	/* Meanwhile, resize back and forth. */
	for (int i = 0; i < 20; i++) {
		int rc = set_target(fd, (i % 2) ? 48 * MiB : 32 * MiB,
		    4 * MiB, &r);
		CHECK(rc == 0 || errno == ENOSPC || errno == EALREADY);
	}
	for (int i = 0; i < NTHREADS; i++)
		REQUIRE(pthread_join(th[i], NULL) == 0);
	CHECK_EQ(thread_errors, 0);
	CHECK_EQ(thread_ok + thread_refused, NTHREADS * NROUNDS);
	struct vmmemu_hdr h = state();
	CHECK_EQ(h.allocs_ok, thread_ok);
	CHECK_EQ(h.allocs_refused, thread_refused);
	CHECK_EQ(h.vm_count, 0);
	CHECK_EQ(h.alloc_sz, 0);
	CHECK_EQ(h.alloc_transient_sz, 0);

	/* Processes: the same against one shared state file. */
	pid_t pids[4];
	for (int p = 0; p < 4; p++) {
		pids[p] = fork();
		REQUIRE(pids[p] >= 0);
		if (pids[p] == 0) {
			thread_errors = 0;
			worker((void *)(intptr_t)(100 + p));
			_exit(thread_errors == 0 ? 0 : 1);
		}
	}
	for (int p = 0; p < 4; p++) {
		int ws;
		REQUIRE(waitpid(pids[p], &ws, 0) == pids[p]);
		CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	h = state();
	CHECK_EQ(h.allocs_ok + h.allocs_refused,
	    (uint64_t)(NTHREADS + 4) * NROUNDS);
	CHECK_EQ(h.vm_count, 0);
	CHECK_EQ(h.alloc_sz + h.alloc_transient_sz, 0);
	CHECK_OK(set_target(fd, 0, 0, &r));
	close(fd);
	check_invariants();
}

static void
t_ctl(void)
{
	char out[65536];

	fresh("ctl", NULL, NULL);
	/* show creates a missing state from the environment. */
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	static const char *const keys[] = { "free", "alloc",
	    "alloc_transient", "free_transient", "limit", "physmem",
	    "target_active", "resizer_pid", "vm_count", "grown_total",
	    "allocs_ok", "allocs_refused", "max_total_seen",
	    "limit_exceeded" };
	for (size_t i = 0; i < sizeof (keys) / sizeof (keys[0]); i++)
		CHECK_EQ(show_val(out, keys[i]), (i == 4) ?
		    UINT64_C(16350203084) : (i == 5) ? 16 * GiB : 0);

	/* init re-creates from the environment, discarding the old state. */
	int fd = ctl_open();
	size_t r;
	CHECK_OK(set_target(fd, 64 * MiB, 0, &r));
	CHECK_OK(create_vm(fd, "x", 1));
	setenv("VMMEMU_PHYSMEM", "2G", 1);
	CHECK_EQ(run_ctl("init", out, sizeof (out)), 0);
	struct vmm_resv_query q = query(fd);
	CHECK_EQ(q.vrq_free_sz, 0);
	CHECK_EQ(q.vrq_limit, vmmemu_compute_limit(524288,
	    524288 / 25 + 1024));
	CHECK_EQ(run_ctl("show", out, sizeof (out)), 0);
	CHECK_EQ(show_val(out, "physmem"), 2 * GiB);
	CHECK_EQ(show_val(out, "vm_count"), 0);
	CHECK(strstr(out, "vm=") == NULL);
	close(fd);

	CHECK_EQ(run_ctl("bogus 2>/dev/null", out, sizeof (out)), 2);
	CHECK_EQ(run_ctl("2>/dev/null", out, sizeof (out)), 2);
	setenv("VMMEMU_STATE", "/nonexistent-dir/x.state", 1);
	CHECK_EQ(run_ctl("show 2>/dev/null", out, sizeof (out)), 1);
	setenv("VMMEMU_STATE", state_path, 1);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: selftest <scratch-dir> <vmmemu_ctl>\n");
		return (2);
	}
	scratch = argv[1];
	ctl_prog = argv[2];
	setvbuf(stdout, NULL, _IONBF, 0);

	t_inactive();
	t_open();
	t_limit();
	t_query();
	t_set_target();
	t_enomem();
	t_shrink_busy();
	t_eintr();
	t_concurrent();
	t_dead_resizer();
	t_namespaces();
	t_arc_resv();
	t_legacy();
	t_vms();
	t_threads_procs();
	t_ctl();

	printf("selftest: %d checks, %d failures\n", checks, failures);
	return (failures == 0 ? 0 : 1);
}
