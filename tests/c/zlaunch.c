/* SPDX-License-Identifier: MPL-2.0 */
/*
 * zlaunch.c: a VM launcher driven line by line, for the deployment-shape
 * tests (tests/zones.rs).  Like tests/c/zhyve.c it is a C consumer of the
 * admission ABI, built only against include/vmmresv.h and linked only with
 * -lvmmresv; unlike zhyve, the test decides when each step happens, so a
 * scenario ("A admits, B admits, then A's bhyve allocates") runs in that
 * exact order with no sleeps.
 *
 *   zlaunch [-l ledger-path] <path-to-bhyve>
 *
 * At start it opens the reservoir and the admission ledger (the library's
 * default, $VMMRESV_RUNDIR/admission.ledger, unless -l) and prints
 *   ready pid=<getpid()>
 * (the pid as this process's own PID namespace sees it).  Then it reads one
 * command per line on stdin and answers each with one line on stdout,
 * flushed:
 *
 *   admit <uuid> <MiB>   vmmresv_admit(REQUIRE) ->
 *                        admit status=N decision=N reason=N charged=B
 *                        shortfall=B pending=B
 *   commit <uuid>        -> commit status=N
 *   abort <uuid>         -> abort status=N
 *   reconcile            -> reconcile status=N live=N reclaimed=N
 *                           reclaimed_bytes=B before=B after=B
 *   bhyve <name> <MiB>   start bhyve -o memory.use_reservoir=true for VM
 *                        <name> and wait until it holds its memory or
 *                        exits -> bhyve ready | bhyve exit=N | bhyve
 *                        signal=N | bhyve error=<errno>.  Its stderr is
 *                        ours.  One bhyve at a time.
 *   stop                 close the running bhyve's stdin (the VM stops and
 *                        is destroyed) and reap it -> stop exit=N
 *   detach               the main thread starts a thread that serves the
 *                        following commands and then calls pthread_exit()
 *                        (on Linux the process then shows state Z in
 *                        /proc/<pid>/stat while it lives on) -> detach ok,
 *                        written by the new thread
 *   emfile <uuid> <MiB> <count> <nofile> <hold-us> <free-us>
 *                        short of file descriptors: RLIMIT_NOFILE (soft)
 *                        set to <nofile>, every descriptor but one taken,
 *                        and a second thread that keeps grabbing the last
 *                        one (for <hold-us> microseconds) and releasing it
 *                        (for <free-us>), as a busy launcher's other
 *                        threads would; then <count> admissions of <MiB>
 *                        (the UUID's last 4 hex digits replaced by the
 *                        attempt number), each granted one aborted at once;
 *                        then everything is given back ->
 *                        emfile granted=N refused=N errors=N
 *                        first_error=N last_shortfall=B
 *   quit                 exit 0 at once, claims and all (so does EOF)
 *
 * A malformed command is answered with "error <what>"; the process goes on.
 * Exit status: 0, or 1 if the reservoir or ledger cannot be opened (the
 * status on stderr), 2 usage.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h"	/* number(), set_cloexec() */

extern char **environ;

#define	MIB		((uint64_t)1 << 20)
#define	UUID_LEN	36
#define	LINE_MAX_LEN	512
#define	MAX_FILL	4096

static const char *progname = "zlaunch";
static const char *bhyve_path;
static vmmresv_reservoir *rsv;
static vmmresv_admission *adm;

/* The running bhyve, if any. */
static pid_t bhyve_pid = -1;
static int bhyve_stdin = -1;

static void
reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void) vprintf(fmt, ap);
	va_end(ap);
	(void) putchar('\n');
	(void) fflush(stdout);
}

static void
cmd_admit(const char *uuid, const char *mib_s)
{
	long long mib = number(mib_s, 0, (long long)1 << 24);
	vmmresv_decision d;
	vmmresv_status st;

	if (uuid == NULL || mib <= 0) {
		reply("error admit <uuid> <MiB>");
		return;
	}
	(void) memset(&d, 0, sizeof (d));
	st = vmmresv_admit(adm, uuid, (uint64_t)mib * MIB,
	    VMMRESV_RESERVOIR_REQUIRE, &d);
	reply("admit status=%u decision=%u reason=%u charged=%" PRIu64
	    " shortfall=%" PRIu64 " pending=%" PRIu64, (unsigned)st,
	    (unsigned)d.decision, (unsigned)d.reason, d.charged_bytes,
	    d.shortfall_bytes, d.pending_bytes);
}

static void
cmd_reconcile(void)
{
	vmmresv_reconcile_report r;
	vmmresv_status st;

	(void) memset(&r, 0, sizeof (r));
	st = vmmresv_reconcile(adm, &r);
	reply("reconcile status=%u live=%" PRIu64 " reclaimed=%" PRIu64
	    " reclaimed_bytes=%" PRIu64 " before=%" PRIu64 " after=%" PRIu64,
	    (unsigned)st, r.live_claims, r.reclaimed_claims, r.reclaimed_bytes,
	    r.reservoir_claimed_before_bytes, r.reservoir_claimed_after_bytes);
}

static void
cmd_bhyve(const char *name, const char *mib_s)
{
	long long mib = number(mib_s, 0, (long long)1 << 24);
	char mibtext[32], rfd[32], c;
	char *args[10];
	int in[2], rd[2], err, status;
	posix_spawn_file_actions_t fa;
	ssize_t r;

	if (name == NULL || mib <= 0) {
		reply("error bhyve <name> <MiB>");
		return;
	}
	if (bhyve_pid > 0) {
		reply("error a bhyve is running");
		return;
	}
	if (pipe(in) != 0) {
		reply("bhyve error=%d", errno);
		return;
	}
	if (pipe(rd) != 0) {
		reply("bhyve error=%d", errno);
		(void) close(in[0]);
		(void) close(in[1]);
		return;
	}
	(void) set_cloexec(in[0]);
	(void) set_cloexec(in[1]);
	(void) set_cloexec(rd[0]);
	(void) snprintf(mibtext, sizeof (mibtext), "%lld", mib);
	(void) snprintf(rfd, sizeof (rfd), "%d", rd[1]);
	args[0] = (char *)bhyve_path;
	args[1] = "-o";
	args[2] = "memory.use_reservoir=true";
	args[3] = "-m";
	args[4] = mibtext;
	args[5] = "-R";
	args[6] = rfd;
	args[7] = (char *)name;
	args[8] = NULL;
	err = posix_spawn_file_actions_init(&fa);
	if (err == 0) {
		err = posix_spawn_file_actions_adddup2(&fa, in[0],
		    STDIN_FILENO);
		if (err == 0)
			err = posix_spawn(&bhyve_pid, bhyve_path, &fa, NULL,
			    args, environ);
		(void) posix_spawn_file_actions_destroy(&fa);
	}
	(void) close(in[0]);
	(void) close(rd[1]);
	if (err != 0) {
		bhyve_pid = -1;
		(void) close(in[1]);
		(void) close(rd[0]);
		reply("bhyve error=%d", err);
		return;
	}
	bhyve_stdin = in[1];
	do {
		r = read(rd[0], &c, 1);
	} while (r < 0 && errno == EINTR);
	(void) close(rd[0]);
	if (r == 1) {
		reply("bhyve ready");
		return;
	}
	/* It went away without its memory. */
	(void) close(bhyve_stdin);
	bhyve_stdin = -1;
	while (waitpid(bhyve_pid, &status, 0) < 0 && errno == EINTR)
		continue;
	bhyve_pid = -1;
	if (WIFEXITED(status))
		reply("bhyve exit=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		reply("bhyve signal=%d", WTERMSIG(status));
	else
		reply("bhyve status=%d", status);
}

static void
cmd_stop(void)
{
	int status = 0;

	if (bhyve_pid <= 0) {
		reply("error no bhyve");
		return;
	}
	(void) close(bhyve_stdin);
	bhyve_stdin = -1;
	while (waitpid(bhyve_pid, &status, 0) < 0 && errno == EINTR)
		continue;
	bhyve_pid = -1;
	reply("stop exit=%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The descriptor-grabbing thread of `emfile`. */
static pthread_mutex_t churn_mx = PTHREAD_MUTEX_INITIALIZER;
static int churn_stop;
static long churn_hold_us, churn_free_us;

static int
churn_stopped(void)
{
	int s;

	(void) pthread_mutex_lock(&churn_mx);
	s = churn_stop;
	(void) pthread_mutex_unlock(&churn_mx);
	return (s);
}

/* Spin (no sleep: the windows are microseconds) for `us` microseconds. */
static void
spin_us(long us)
{
	struct timespec t0, t;

	(void) clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		(void) clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000L +
	    (t.tv_nsec - t0.tv_nsec) / 1000L < us);
}

/* Hold the last free descriptor, leave it free, again and again. */
static void *
churn(void *arg)
{
	(void) arg;
	while (!churn_stopped()) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			spin_us(churn_hold_us);
			(void) close(fd);
		}
		spin_us(churn_free_us);
	}
	return (NULL);
}

static void
cmd_emfile(char *const *w)
{
	const char *uuid = w[1];
	long long mib = number(w[2], 0, (long long)1 << 24);
	long long count = number(w[3], 0, 1000000);
	long long nofile = number(w[4], 0, MAX_FILL);
	long long hold = number(w[5], 0, 1000000);
	long long free_us = number(w[6], 0, 1000000);
	static int fill[MAX_FILL];
	int nfill = 0, granted = 0, refused = 0, errors = 0, fd;
	unsigned first_error = 0;
	uint64_t last_shortfall = 0;
	struct rlimit old, lim;
	pthread_t t;
	char u[UUID_LEN + 1];
	long long i;

	if (uuid == NULL || strlen(uuid) != UUID_LEN || mib <= 0 ||
	    count < 0 || nofile < 8 || hold < 0 || free_us < 0) {
		reply("error emfile <uuid> <MiB> <count> <nofile> <hold-us> "
		    "<free-us>");
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &old) != 0) {
		reply("error getrlimit %d", errno);
		return;
	}
	lim = old;
	lim.rlim_cur = (rlim_t)nofile;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
		reply("error setrlimit %d", errno);
		return;
	}
	/* Take every descriptor, then give one back. */
	while (nfill < MAX_FILL &&
	    (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fill[nfill++] = fd;
	if (nfill > 0)
		(void) close(fill[--nfill]);
	churn_stop = 0;
	churn_hold_us = (long)hold;
	churn_free_us = (long)free_us;
	if (pthread_create(&t, NULL, churn, NULL) != 0) {
		while (nfill > 0)
			(void) close(fill[--nfill]);
		(void) setrlimit(RLIMIT_NOFILE, &old);
		reply("error pthread_create");
		return;
	}
	for (i = 0; i < count; i++) {
		vmmresv_decision d;
		vmmresv_status st;

		(void) memcpy(u, uuid, UUID_LEN + 1);
		(void) snprintf(u + UUID_LEN - 4, 5, "%04llx", i & 0xffffLL);
		(void) memset(&d, 0, sizeof (d));
		st = vmmresv_admit(adm, u, (uint64_t)mib * MIB,
		    VMMRESV_RESERVOIR_REQUIRE, &d);
		if (st != VMMRESV_STATUS_OK) {
			errors++;
			if (first_error == 0)
				first_error = (unsigned)st;
		} else if (d.decision == VMMRESV_DECISION_REFUSE) {
			refused++;
			last_shortfall = d.shortfall_bytes;
		} else {
			granted++;
			/* Give it back (retrying while short of fds). */
			while (vmmresv_abort(adm, u, NULL) ==
			    VMMRESV_STATUS_IO)
				(void) sched_yield();
		}
	}
	(void) pthread_mutex_lock(&churn_mx);
	churn_stop = 1;
	(void) pthread_mutex_unlock(&churn_mx);
	(void) pthread_join(t, NULL);
	while (nfill > 0)
		(void) close(fill[--nfill]);
	(void) setrlimit(RLIMIT_NOFILE, &old);
	reply("emfile granted=%d refused=%d errors=%d first_error=%u "
	    "last_shortfall=%" PRIu64, granted, refused, errors, first_error,
	    last_shortfall);
}

static void *serve(void *arg);

static void
cmd_detach(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, serve, "detached") != 0) {
		reply("error pthread_create");
		return;
	}
	pthread_exit(NULL);
}

/* Read commands until quit or EOF; then exit the process. */
static void *
serve(void *arg)
{
	char line[LINE_MAX_LEN];

	if (arg != NULL)
		reply("detach ok");
	while (fgets(line, sizeof (line), stdin) != NULL) {
		char *w[8];
		char *save = NULL, *p;
		int n = 0;

		for (p = strtok_r(line, " \t\r\n", &save); p != NULL && n < 8;
		    p = strtok_r(NULL, " \t\r\n", &save))
			w[n++] = p;
		while (n < 8)
			w[n++] = NULL;
		if (w[0] == NULL)
			continue;
		if (strcmp(w[0], "pid") == 0) {
			reply("pid %ld", (long)getpid());
		} else if (strcmp(w[0], "admit") == 0) {
			cmd_admit(w[1], w[2]);
		} else if (strcmp(w[0], "commit") == 0 ||
		    strcmp(w[0], "abort") == 0) {
			vmmresv_status st = w[1] == NULL ?
			    VMMRESV_STATUS_NULL_ARGUMENT : w[0][0] == 'c' ?
			    vmmresv_commit(adm, w[1], NULL) :
			    vmmresv_abort(adm, w[1], NULL);
			reply("%s status=%u", w[0], (unsigned)st);
		} else if (strcmp(w[0], "reconcile") == 0) {
			cmd_reconcile();
		} else if (strcmp(w[0], "bhyve") == 0) {
			cmd_bhyve(w[1], w[2]);
		} else if (strcmp(w[0], "stop") == 0) {
			cmd_stop();
		} else if (strcmp(w[0], "detach") == 0) {
			cmd_detach();
		} else if (strcmp(w[0], "emfile") == 0) {
			cmd_emfile(w);
		} else if (strcmp(w[0], "quit") == 0) {
			break;
		} else {
			reply("error unknown command %s", w[0]);
		}
	}
	exit(0);
	/* NOTREACHED */
	return (NULL);
}

int
main(int argc, char **argv)
{
	const char *ledger = NULL;
	vmmresv_status st;
	int i = 1;

	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash != NULL ? slash + 1 : argv[0];
	}
	if (i + 1 < argc && strcmp(argv[i], "-l") == 0) {
		ledger = argv[i + 1];
		i += 2;
	}
	if (i != argc - 1) {
		(void) fprintf(stderr, "Usage: %s [-l ledger-path] "
		    "<path-to-bhyve>\n", progname);
		return (2);
	}
	bhyve_path = argv[i];
	/* A bhyve's death must not kill us through a closed pipe. */
	(void) signal(SIGPIPE, SIG_IGN);
	if ((st = vmmresv_reservoir_open(NULL, NULL, &rsv)) !=
	    VMMRESV_STATUS_OK) {
		(void) fprintf(stderr, "%s: vmmresv_reservoir_open: %s "
		    "(status %u)\n", progname, vmmresv_strerror((uint32_t)st),
		    (unsigned)st);
		return (1);
	}
	if ((st = vmmresv_admission_open(rsv, ledger, &adm)) !=
	    VMMRESV_STATUS_OK) {
		(void) fprintf(stderr, "%s: vmmresv_admission_open: %s "
		    "(status %u)\n", progname, vmmresv_strerror((uint32_t)st),
		    (unsigned)st);
		return (1);
	}
	reply("ready pid=%ld", (long)getpid());
	(void) serve(NULL);
	return (0);
}
