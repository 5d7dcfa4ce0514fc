/* SPDX-License-Identifier: MPL-2.0 */
/*
 * qlaunch.c: a QEMU launcher for a Linux KVM host whose VMs take their
 * memory from the hugetlb pool, with the admission step of RFD 185 against
 * the pool (the "reservoir" of a Linux host).  Built only against
 * include/vmmresv.h and linked only with -lvmmresv.
 *
 *   qlaunch [-n] [-w] [-p require|prefer|never] [-H hugetlbfs-dir]
 *           [-r run-dir] -u <uuid> -m <MiB> -s <qmp-socket> <qemu-binary>
 *
 *   open the 2 MiB hugetlb pool (vmmresv_reservoir_open_hugetlb) and its
 *   admission ledger; vmmresv_admit(uuid, MiB, preference);
 *   REFUSE        -> print the reason and shortfall, start nothing, exit 4
 *   USE_RESERVOIR -> start QEMU with its RAM from hugetlbfs, preallocated
 *                    (memory-backend-file, mem-path=<dir>, prealloc=on)
 *   NO_RESERVOIR  -> start QEMU with ordinary memory, preallocated too
 *                    (memory-backend-ram, prealloc=on), so that the host's
 *                    available memory has dropped by the time the claim,
 *                    which counted on it, is committed
 *   then wait until QEMU holds its memory: QEMU answers the
 *   qmp_capabilities command on its QMP socket only after machine set-up,
 *   preallocation included (its greeting can come before: that is not
 *   enough); commit the claim.
 *   If QEMU exits first, abort the claim and exit 3 (QEMU's message, e.g.
 *   "unable to map backing store for guest RAM: Cannot allocate memory",
 *   is on stderr).  Once QEMU runs, print one line and wait for it to
 *   exit; exit 0 when it was stopped by a signal or exited 0.
 *
 * QEMU runs paused (-S) under TCG with no devices (-nodefaults): no KVM
 * is needed; its memory is what matters here.  QEMU dies with this
 * launcher (PR_SET_PDEATHSIG), so a killed launcher leaves no QEMU holding
 * pages its claim no longer covers.
 *
 * Options:
 *   -n        no library: query the pool and start with huge pages if its
 *             free - reserved pages cover the VM (query-then-launch, the
 *             race RFD 185 describes), else without them
 *   -w        after deciding, print "decided" and wait for a byte on stdin
 *             before starting QEMU (a test forces every launcher to decide
 *             before any QEMU starts)
 *   -p pref   require | prefer (default) | never
 *   -H dir    the hugetlbfs mount (default /dev/hugepages)
 *   -r dir    the run directory of the ledger (default: the library's)
 *
 * Output (stdout): "decided" with -w; then
 *   qlaunch: started pid=<qemu pid> hugepages=<0|1>
 * or "qlaunch: refused reason=<n> shortfall=<bytes>"
 * or "qlaunch: qemu failed hugepages=<0|1>".
 *
 * Exit status: 0 QEMU ran; 3 QEMU failed to start; 4 refused; 1 a library
 * or system error (message on stderr, with the status number); 2 usage.
 */

#define _GNU_SOURCE	/* prctl(PR_SET_PDEATHSIG): this launcher is Linux's */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h"

static void usage(void)
{
	fprintf(stderr,
	    "usage: qlaunch [-n] [-w] [-p require|prefer|never] "
	    "[-H hugetlbfs-dir] [-r run-dir]\n"
	    "               -u <uuid> -m <MiB> -s <qmp-socket> <qemu-binary>\n");
	exit(2);
}

static void die(const char *what, uint32_t st)
{
	fprintf(stderr, "qlaunch: %s: %s (status %u, errno %d)\n", what,
	    vmmresv_strerror(st), st, vmmresv_last_errno());
	exit(1);
}

/* Read from fd until `want` appears (or EOF / error); 0 when it did. */
static int read_until(int fd, const char *want)
{
	char buf[4096];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof (buf) - 1 - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, want) != NULL)
			return (0);
		if (have == sizeof (buf) - 1) {
			/* keep the tail, in case `want` straddles the cut */
			size_t keep = strlen(want);

			memmove(buf, buf + have - keep, keep);
			have = keep;
		}
	}
}

/*
 * Wait until QEMU answers on its QMP socket (it holds its memory then), or
 * exits.  1: running; 0: QEMU exited (its status in *status).
 */
static int wait_for_qemu(pid_t pid, const char *sock, int *status)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof (sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof (sa.sun_path)) {
		fprintf(stderr, "qlaunch: socket path too long: %s\n", sock);
		exit(2);
	}
	strcpy(sa.sun_path, sock);
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		int fd;

		if (w == pid)
			return (0);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("qlaunch: socket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof (sa)) == 0) {
			static const char caps[] =
			    "{\"execute\":\"qmp_capabilities\"}\n";
			/* No endless wait on a QEMU that hangs. */
			struct timeval tv = { 300, 0 };
			int ok = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
			    sizeof (tv)) == 0 &&
			    read_until(fd, "\"QMP\"") == 0 &&
			    send(fd, caps, sizeof (caps) - 1, MSG_NOSIGNAL) ==
			    (ssize_t)(sizeof (caps) - 1) &&
			    read_until(fd, "\"return\"") == 0;

			close(fd);
			if (ok)
				return (1);
		} else {
			close(fd);
		}
		sleep_ms(10);
	}
}

int main(int argc, char **argv)
{
	int no_library = 0, wait_go = 0, c;
	uint32_t pref = VMMRESV_RESERVOIR_PREFER;
	const char *hugedir = "/dev/hugepages", *run_dir = NULL;
	const char *uuid = NULL, *sock = NULL, *qemu;
	unsigned long mib = 0;
	struct vmmresv_reservoir *r = NULL;
	struct vmmresv_admission *a = NULL;
	int huge = 0, status = 0;
	uint32_t st;
	pid_t pid, parent;

	while ((c = getopt(argc, argv, "nwp:H:r:u:m:s:")) != -1) {
		switch (c) {
		case 'n':
			no_library = 1;
			break;
		case 'w':
			wait_go = 1;
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
		case 'H':
			hugedir = optarg;
			break;
		case 'r':
			run_dir = optarg;
			break;
		case 'u':
			uuid = optarg;
			break;
		case 'm': {
			long long v = number(optarg, 1, 1 << 20);

			if (v < 0)
				usage();
			mib = (unsigned long)v;
			break;
		}
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || uuid == NULL || mib == 0 || sock == NULL)
		usage();
	qemu = argv[optind];

	st = vmmresv_reservoir_open_hugetlb(0, VMMRESV_NODE_ANY, run_dir, &r);
	if (st != VMMRESV_STATUS_OK)
		die("vmmresv_reservoir_open_hugetlb", st);
	if (no_library) {
		struct vmmresv_hugetlb_counts q;

		st = vmmresv_hugetlb_query(r, &q);
		if (st != VMMRESV_STATUS_OK)
			die("vmmresv_hugetlb_query", st);
		huge = pref != VMMRESV_RESERVOIR_NEVER &&
		    q.free_bytes >= q.reserved_bytes &&
		    q.free_bytes - q.reserved_bytes >= (uint64_t)mib << 20;
	} else {
		struct vmmresv_decision d;

		st = vmmresv_admission_open(r, NULL, &a);
		if (st != VMMRESV_STATUS_OK)
			die("vmmresv_admission_open", st);
		st = vmmresv_admit(a, uuid, (uint64_t)mib << 20, pref, &d);
		if (st != VMMRESV_STATUS_OK)
			die("vmmresv_admit", st);
		if (d.decision == VMMRESV_DECISION_REFUSE) {
			if (wait_go)
				printf("decided\n");
			printf("qlaunch: refused reason=%u shortfall=%llu\n",
			    d.reason, (unsigned long long)d.shortfall_bytes);
			fflush(stdout);
			vmmresv_admission_close(a);
			vmmresv_reservoir_close(r);
			return (4);
		}
		huge = d.decision == VMMRESV_DECISION_USE_RESERVOIR;
	}
	if (wait_go) {
		char b;

		printf("decided\n");
		fflush(stdout);
		if (read(STDIN_FILENO, &b, 1) != 1) {
			fprintf(stderr, "qlaunch: no go on stdin\n");
			return (1);
		}
	}

	parent = getpid();
	pid = fork();
	if (pid < 0) {
		perror("qlaunch: fork");
		return (1);
	}
	if (pid == 0) {
		char mem[64], backend[4096], qmp[4096];
		char *args[24];
		int n = 0;

		int devnull;

		/* QEMU dies with the launcher (and not after a race). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		(void) snprintf(mem, sizeof (mem), "%luM", mib);
		if (huge)
			(void) snprintf(backend, sizeof (backend),
			    "memory-backend-file,id=ram,size=%luM,mem-path=%s,"
			    "prealloc=on,share=on", mib, hugedir);
		else
			(void) snprintf(backend, sizeof (backend),
			    "memory-backend-ram,id=ram,size=%luM,prealloc=on",
			    mib);
		(void) snprintf(qmp, sizeof (qmp), "unix:%s,server=on,wait=off",
		    sock);
		args[n++] = (char *)qemu;
		args[n++] = "-S";
		args[n++] = "-nodefaults";
		args[n++] = "-display";
		args[n++] = "none";
		args[n++] = "-accel";
		args[n++] = "tcg,tb-size=16";
		args[n++] = "-m";
		args[n++] = mem;
		args[n++] = "-machine";
		args[n++] = "pc,memory-backend=ram";
		args[n++] = "-object";
		args[n++] = backend;
		args[n++] = "-qmp";
		args[n++] = qmp;
		args[n] = NULL;
		/* stdin is the test's go-channel, not QEMU's. */
		devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
			_exit(127);
		execv(qemu, args);
		perror("qlaunch: exec qemu");
		_exit(127);
	}

	if (!wait_for_qemu(pid, sock, &status)) {
		if (a != NULL) {
			st = vmmresv_abort(a, uuid, NULL);
			if (st != VMMRESV_STATUS_OK)
				die("vmmresv_abort", st);
		}
		printf("qlaunch: qemu failed hugepages=%d\n", huge);
		fflush(stdout);
		return (3);
	}
	if (a != NULL) {
		st = vmmresv_commit(a, uuid, NULL);
		if (st != VMMRESV_STATUS_OK) {
			/* Not a VM this host admitted: it does not run. */
			(void) kill(pid, SIGKILL);
			(void) waitpid(pid, NULL, 0);
			die("vmmresv_commit", st);
		}
	}
	printf("qlaunch: started pid=%ld hugepages=%d\n", (long)pid, huge);
	fflush(stdout);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	vmmresv_admission_close(a);
	vmmresv_reservoir_close(r);
	return ((WIFSIGNALED(status) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) == 0)) ? 0 : 3);
}
