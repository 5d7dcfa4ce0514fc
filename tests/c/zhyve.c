/* SPDX-License-Identifier: MPL-2.0 */
/*
 * zhyve.c: a stand-in for SmartOS zhyve, the bhyve zone's init that starts
 * bhyve, with the admission step RFD 185 asks for ("zhyve will do a
 * propolis-style query of the reservoir, and set the use-reservoir
 * configuration accordingly before launching bhyve"; "if launching fails,
 * zhyve will just outright fail").  Built only against include/vmmresv.h
 * and linked only with -lvmmresv: it is a C consumer of the admission ABI.
 *
 *   zhyve [-q] [-x] [-n count] [--no-ledger] [-p require|prefer|never]
 *         [-l ledger-path] [-D ms] [-H ms] [-B ms]
 *         [-R root [-M model] [-F floor] [-c vcpus]] -u <uuid> -m <MiB>
 *         <path-to-bhyve>
 *
 * For each of `count` VM starts (a different VM each time: the last four
 * hex digits of the UUID are replaced by the iteration number):
 *
 *   query the reservoir; vmmresv_admit(uuid, MiB, preference);
 *   REFUSE        -> print the reason and shortfall, do not launch (RFD 185)
 *   USE_RESERVOIR -> launch bhyve with -o memory.use_reservoir=true
 *   NO_RESERVOIR  -> launch bhyve without it
 *   the claim is handed to bhyve (vmmresv_handoff(), VMMRESV_HANDOFF in
 *   its environment): bhyve adopts it and commits it once it holds the
 *   VM's memory (until then the claim is what keeps another VM from
 *   taking the same memory), and it lives while either process does;
 *   then wait for bhyve's ready byte (the VM holds its memory) or its exit:
 *   exit  -> vmmresv_abort (NOT_FOUND if bhyve gave it back itself),
 *            counted as "launch failed";
 *   finally close bhyve's stdin (the VM stops and is destroyed), waitpid.
 *
 * -x is the real zhyve's shape: one VM, and zhyve exec()s bhyve in its own
 * process after handing the claim over (the ledger descriptor survives
 * the exec, so the claim never lapses); bhyve commits it.
 *
 * --no-ledger is the world as it is today: query, and launch with the
 * reservoir if free >= size, else do not launch (no admit/commit).  Two
 * zhyves doing that at once can both see room, and one bhyve then finds the
 * reservoir short (the race RFD 185 describes).
 *
 * Options:
 *   -q        print only the summary line (and errors)
 *   -x        exec bhyve in place (one VM; no summary line)
 *   -n count  VM starts, one after another (default 1)
 *   -p pref   require (default) | prefer | never
 *   -l path   the admission ledger (default: the library's,
 *             $VMMRESV_RUNDIR/admission.ledger)
 *   -D ms     passed to bhyve: its memory allocation is that much late
 *   -H ms     the VM runs that long before zhyve stops it (default 0)
 *   -B ms     after a refusal, wait that long before the next VM start
 *             (default 0; an operator's retry delay), so that a refused
 *             zhyve keeps contending instead of racing through its starts
 *   -R root   admit under the host's policy (vmmresv_admit_vm): read the
 *             host's memory from <root>/proc/meminfo before each start and
 *             count guest memory + page_t + the overhead model against it
 *   -M model  the overhead model: fixed | proportional | pooled | vmadm
 *             (default) | eve-pillar
 *   -F floor  the worst memory state a start may leave the host in:
 *             high (default) | soft | hard | low | exhausted
 *   -c vcpus  the VM's virtual CPUs (default 1)
 *
 * Output: one line per VM start unless -q (on stdout, flushed before bhyve
 * is launched, so a test can act while a claim is held); at the end
 *   zhyve: admitted=%d refused=%d launch_failed=%d
 * where admitted counts launches (USE_RESERVOIR and NO_RESERVOIR).
 *
 * Exit status: 0 every launch succeeded; 3 some launch failed; 1 a library
 * or system error (message on stderr, with the vmmresv status number);
 * 2 usage.
 *
 * Without -x, deliberately different from the real zhyve: the real one
 * exec()s bhyve in its own process (zhyve is the zone's init); this one
 * forks bhyve (posix_spawn) and stays, so that it can run many VM starts
 * in one process.
 *
 * A ledger that is not the host-wide one (VMMRESV_RUNDIR or -l) is named
 * on stderr: two ledgers for one host protect nothing.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmmresv.h"
#include "common.h"	/* number(), sleep_ms(), set_cloexec() */

extern char **environ;

#define	EXIT_LAUNCH_FAILED	3
#define	EXIT_USAGE		2
#define	UUID_LEN		36
#define	MIB			((uint64_t)1 << 20)

static const char *progname = "zhyve";

struct opts {
	long		count;
	int		ledger;		/* 0 = --no-ledger */
	int		quiet;
	uint32_t	preference;
	const char	*ledger_path;
	int		exec_bhyve;	/* -x */
	const char	*uuid;
	long long	mib;
	long long	delay_ms;
	long long	hold_ms;
	long long	backoff_ms;
	const char	*bhyve;
	const char	*host_root;	/* -R: policy mode */
	uint32_t	model;
	uint32_t	floor;
	uint32_t	vcpus;
};

struct counts {
	int	admitted;
	int	refused;
	int	launch_failed;
};

static void
usage(void)
{
	(void) fprintf(stderr, "Usage: %s [-q] [-x] [-n count] [--no-ledger] "
	    "[-p require|prefer|never] [-l ledger-path] [-D ms] [-H ms] "
	    "[-B ms] [-R root [-M model] [-F floor] [-c vcpus]] "
	    "-u <uuid> -m <MiB> <path-to-bhyve>\n", progname);
	exit(EXIT_USAGE);
}

/* A library failure: say which call, the status and its number. */
static void
lib_fail(const char *what, vmmresv_status st)
{
	int e = vmmresv_last_errno();

	if (e != 0)
		(void) fprintf(stderr, "%s: %s: %s (status %u, errno %d: %s)\n",
		    progname, what, vmmresv_strerror((uint32_t)st),
		    (unsigned)st, e, strerror(e));
	else
		(void) fprintf(stderr, "%s: %s: %s (status %u)\n", progname,
		    what, vmmresv_strerror((uint32_t)st), (unsigned)st);
}

static int
uuid_ok(const char *u)
{
	size_t i;

	if (strlen(u) != UUID_LEN)
		return (0);
	for (i = 0; i < UUID_LEN; i++) {
		char c = u[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return (0);
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F'))) {
			return (0);
		}
	}
	return (1);
}

/* Names of the VMMRESV_OVERHEAD_* and VMMRESV_MEMSTATE_* values, by value. */
static const char *const model_names[] = { "", "fixed", "proportional",
    "pooled", "vmadm", "eve-pillar", NULL };
static const char *const state_names[] = { "", "high", "soft", "hard", "low",
    "exhausted", NULL };

/* The index of `v` in `names` (from 1), or 0. */
static uint32_t
lookup(const char *v, const char *const *names)
{
	uint32_t i;

	for (i = 1; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0)
			return (i);
	}
	return (0);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	int i;

	(void) memset(o, 0, sizeof (*o));
	o->count = 1;
	o->ledger = 1;
	o->preference = VMMRESV_RESERVOIR_REQUIRE;
	o->mib = -1;
	o->model = VMMRESV_OVERHEAD_VMADM;
	o->floor = VMMRESV_MEMSTATE_HIGH;
	o->vcpus = 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-ledger") == 0) {
			o->ledger = 0;
			continue;
		}
		if (strcmp(a, "-q") == 0) {
			o->quiet = 1;
			continue;
		}
		if (strcmp(a, "-x") == 0) {
			o->exec_bhyve = 1;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (a[1] == '\0' || a[2] != '\0' || v == NULL)
			usage();
		i++;
		switch (a[1]) {
		case 'n':
			if ((o->count = (long)number(v, 0, INT_MAX)) < 0)
				usage();
			break;
		case 'p':
			if (strcmp(v, "require") == 0)
				o->preference = VMMRESV_RESERVOIR_REQUIRE;
			else if (strcmp(v, "prefer") == 0)
				o->preference = VMMRESV_RESERVOIR_PREFER;
			else if (strcmp(v, "never") == 0)
				o->preference = VMMRESV_RESERVOIR_NEVER;
			else
				usage();
			break;
		case 'l':
			o->ledger_path = v;
			break;
		case 'u':
			if (!uuid_ok(v))
				usage();
			o->uuid = v;
			break;
		case 'm':
			if ((o->mib = number(v, 1, (long long)1 << 24)) < 0)
				usage();
			break;
		case 'D':
			if ((o->delay_ms = number(v, 0, 3600000)) < 0)
				usage();
			break;
		case 'H':
			if ((o->hold_ms = number(v, 0, 3600000)) < 0)
				usage();
			break;
		case 'B':
			if ((o->backoff_ms = number(v, 0, 3600000)) < 0)
				usage();
			break;
		case 'R':
			o->host_root = v;
			break;
		case 'M':
			if ((o->model = lookup(v, model_names)) == 0)
				usage();
			break;
		case 'F':
			if ((o->floor = lookup(v, state_names)) == 0)
				usage();
			break;
		case 'c':
			if ((o->vcpus = (uint32_t)number(v, 1, 4096)) == (uint32_t)-1)
				usage();
			break;
		default:
			usage();
		}
	}
	if (i != argc - 1 || o->uuid == NULL || o->mib < 0 ||
	    (o->exec_bhyve && (o->count != 1 || !o->ledger)))
		usage();
	o->bhyve = argv[i];
}

static const char *
decision_name(uint32_t d)
{
	switch (d) {
	case VMMRESV_DECISION_USE_RESERVOIR:
		return ("use_reservoir");
	case VMMRESV_DECISION_NO_RESERVOIR:
		return ("no_reservoir");
	case VMMRESV_DECISION_REFUSE:
		return ("refuse");
	default:
		return ("?");
	}
}

static const char *
reason_name(uint32_t r)
{
	switch (r) {
	case VMMRESV_REASON_OK:
		return ("ok");
	case VMMRESV_REASON_ALREADY_ADMITTED:
		return ("already_admitted");
	case VMMRESV_REASON_RESERVOIR_FULL:
		return ("reservoir_full");
	case VMMRESV_REASON_RESERVOIR_NOT_WANTED:
		return ("reservoir_not_wanted");
	case VMMRESV_REASON_TRANSIENT_LIMIT:
		return ("transient_limit");
	case VMMRESV_REASON_ARC_GUARD:
		return ("arc_guard");
	case VMMRESV_REASON_MEMORY_STATE:
		return ("memory_state");
	case VMMRESV_REASON_HELD_ELSEWHERE:
		return ("held_elsewhere");
	default:
		return ("?");
	}
}

static void
close_pair(int p[2])
{
	(void) close(p[0]);
	(void) close(p[1]);
}

/*
 * A running bhyve: its pid, the write end of its stdin (closing it stops
 * the VM) and the read end of its ready pipe.
 */
struct bhyve {
	pid_t	pid;
	int	stdin_w;
	int	ready_r;
};

/*
 * Start bhyve.  Every fd of ours is close-on-exec except the ready pipe's
 * write end, whose number bhyve is given with -R; its stdin is a pipe.
 * Returns 0 or an errno.
 */
/*
 * bhyve's arguments (-R <rfd> unless rfd is NULL) into args (16 slots).
 */
static void
bhyve_args(const struct opts *o, int use_reservoir, const char *name,
    char *mib, size_t mlen, char *rfd, char *dly, size_t dlen, char **args)
{
	int n = 0;

	(void) snprintf(mib, mlen, "%lld", o->mib);
	(void) snprintf(dly, dlen, "%lld", o->delay_ms);
	args[n++] = (char *)o->bhyve;
	if (use_reservoir) {
		args[n++] = "-o";
		args[n++] = "memory.use_reservoir=true";
	}
	args[n++] = "-m";
	args[n++] = mib;
	if (rfd != NULL) {
		args[n++] = "-R";
		args[n++] = rfd;
	}
	if (o->delay_ms > 0) {
		args[n++] = "-D";
		args[n++] = dly;
	}
	args[n++] = (char *)name;
	args[n] = NULL;
}

/*
 * Put the hand-off token (and the ledger's path, if -l named one) in the
 * environment bhyve gets; NULL takes them out again.  0 or an errno.
 */
static int
handoff_env(const struct opts *o, const char *token)
{
	if (token == NULL) {
		(void) unsetenv("VMMRESV_HANDOFF");
		(void) unsetenv("VMMRESV_LEDGER");
		return (0);
	}
	if (setenv("VMMRESV_HANDOFF", token, 1) != 0)
		return (errno);
	if (o->ledger_path != NULL &&
	    setenv("VMMRESV_LEDGER", o->ledger_path, 1) != 0)
		return (errno);
	return (0);
}

static int
launch(const struct opts *o, int use_reservoir, const char *name,
    const char *token, struct bhyve *b)
{
	char mib[32], rfd[32], dly[32];
	char *args[16];
	int in[2], rd[2], err;
	posix_spawn_file_actions_t fa;

	if (pipe(in) != 0)
		return (errno);
	if (pipe(rd) != 0) {
		err = errno;
		close_pair(in);
		return (err);
	}
	if (set_cloexec(in[0]) != 0 || set_cloexec(in[1]) != 0 ||
	    set_cloexec(rd[0]) != 0) {
		err = errno;
		close_pair(in);
		close_pair(rd);
		return (err);
	}
	(void) snprintf(rfd, sizeof (rfd), "%d", rd[1]);
	bhyve_args(o, use_reservoir, name, mib, sizeof (mib), rfd, dly,
	    sizeof (dly), args);

	if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
		close_pair(in);
		close_pair(rd);
		return (err);
	}
	/* in[0] != 0: stdin is open (main makes sure), so dup2 is real. */
	err = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	if (err == 0)
		err = handoff_env(o, token);
	if (err == 0)
		err = posix_spawn(&b->pid, o->bhyve, &fa, NULL, args, environ);
	(void) handoff_env(o, NULL);
	(void) posix_spawn_file_actions_destroy(&fa);
	(void) close(in[0]);
	(void) close(rd[1]);
	if (err != 0) {
		(void) close(in[1]);
		(void) close(rd[0]);
		return (err);
	}
	b->stdin_w = in[1];
	b->ready_r = rd[0];
	return (0);
}

/* 1: bhyve said it holds its memory; 0: it went away first. */
static int
wait_ready(const struct bhyve *b)
{
	char c;
	ssize_t r;

	do {
		r = read(b->ready_r, &c, 1);
	} while (r < 0 && errno == EINTR);
	return (r == 1);
}

/* Stop the VM (EOF on bhyve's stdin) and reap bhyve; its wait status. */
static int
finish(struct bhyve *b)
{
	int status = 0;

	(void) close(b->stdin_w);
	(void) close(b->ready_r);
	while (waitpid(b->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			(void) fprintf(stderr, "%s: waitpid: %s\n", progname,
			    strerror(errno));
			return (-1);
		}
	}
	return (status);
}

static void
describe_exit(char *buf, size_t len, int status)
{
	if (status == -1)
		(void) snprintf(buf, len, "lost");
	else if (WIFEXITED(status))
		(void) snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void) snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		(void) snprintf(buf, len, "status 0x%x", (unsigned)status);
}

/*
 * One VM: launch bhyve, wait until it holds its memory, commit (with a
 * claim) or abort, stop it.  Returns 0, or 1 on a library/system error.
 */
static int
run_vm(const struct opts *o, vmmresv_admission *adm, const char *uuid,
    int use_reservoir, int claimed, struct counts *n)
{
	struct bhyve b;
	vmmresv_status st;
	char how[48], token[VMMRESV_HANDOFF_BUFSIZE];
	int err, status;

	n->admitted++;
	if (claimed && (st = vmmresv_handoff(adm, uuid, token, sizeof (token),
	    NULL)) != VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_handoff", st);
		(void) vmmresv_abort(adm, uuid, NULL);
		return (1);
	}
	if ((err = launch(o, use_reservoir, uuid, claimed ? token : NULL,
	    &b)) != 0) {
		/*
		 * posix_spawn reports an exec failure here (glibc) or as exit
		 * 127 of the child (elsewhere): a failed launch either way.
		 */
		(void) fprintf(stderr, "%s: cannot launch %s: %s\n", progname,
		    o->bhyve, strerror(err));
		if (claimed && (st = vmmresv_abort(adm, uuid, NULL)) !=
		    VMMRESV_STATUS_OK) {
			lib_fail("vmmresv_abort", st);
			return (1);
		}
		n->launch_failed++;
		return (0);
	}
	if (wait_ready(&b)) {
		/*
		 * bhyve allocated and committed the claim it adopted: the
		 * kernel accounts the memory now.
		 */
		if (o->hold_ms > 0)
			sleep_ms(o->hold_ms);
		status = finish(&b);
		if (status != 0) {
			describe_exit(how, sizeof (how), status);
			(void) fprintf(stderr, "%s: %s: bhyve failed after "
			    "start (%s)\n", progname, uuid, how);
			n->launch_failed++;
		}
		return (0);
	}
	/*
	 * bhyve went away without its memory.  If it adopted the claim it
	 * gave it back itself (NOT_FOUND here).
	 */
	status = finish(&b);
	if (claimed && (st = vmmresv_abort(adm, uuid, NULL)) !=
	    VMMRESV_STATUS_OK && st != VMMRESV_STATUS_NOT_FOUND) {
		lib_fail("vmmresv_abort", st);
		return (1);
	}
	describe_exit(how, sizeof (how), status);
	if (!o->quiet)
		(void) printf("%s: %s: launch failed (bhyve %s)\n", progname,
		    uuid, how);
	n->launch_failed++;
	return (0);
}

/*
 * The real zhyve's way: hand the claim over and become bhyve.  Returns
 * only on failure (1), after giving the claim back.
 */
static int
exec_vm(const struct opts *o, vmmresv_admission *adm, const char *uuid,
    int use_reservoir)
{
	char mib[32], dly[32], token[VMMRESV_HANDOFF_BUFSIZE];
	char *args[16];
	vmmresv_status st;
	int err;

	if ((st = vmmresv_handoff(adm, uuid, token, sizeof (token), NULL)) !=
	    VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_handoff", st);
		(void) vmmresv_abort(adm, uuid, NULL);
		return (1);
	}
	bhyve_args(o, use_reservoir, uuid, mib, sizeof (mib), NULL, dly,
	    sizeof (dly), args);
	if ((err = handoff_env(o, token)) == 0) {
		(void) fflush(stdout);
		(void) execv(o->bhyve, args);
		err = errno;
	}
	(void) handoff_env(o, NULL);
	(void) fprintf(stderr, "%s: cannot exec %s: %s\n", progname, o->bhyve,
	    strerror(err));
	(void) vmmresv_abort(adm, uuid, NULL);
	return (1);
}

/* One VM start with admission.  0, or 1 on a library/system error. */
static int
start_admitted(const struct opts *o, vmmresv_reservoir *r,
    vmmresv_admission *adm, const char *uuid, struct counts *n)
{
	vmmresv_query q;
	vmmresv_decision d;
	vmmresv_status st;
	uint64_t bytes = (uint64_t)o->mib * MIB;

	if ((st = vmmresv_reservoir_query(r, &q)) != VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_reservoir_query", st);
		return (1);
	}
	(void) memset(&d, 0, sizeof (d));
	if (o->host_root != NULL) {
		vmmresv_host_memory host;
		vmmresv_vm vm;
		vmmresv_vm_decision vd;

		st = vmmresv_host_read_linux(o->host_root, &host);
		if (st != VMMRESV_STATUS_OK) {
			lib_fail("vmmresv_host_read_linux", st);
			return (1);
		}
		(void) memset(&vm, 0, sizeof (vm));
		vm.guest_bytes = bytes;
		vm.vcpus = o->vcpus;
		st = vmmresv_admit_vm(adm, uuid, &vm, o->preference, &host, &vd);
		if (st != VMMRESV_STATUS_OK) {
			lib_fail("vmmresv_admit_vm", st);
			return (1);
		}
		d = vd.decision;
		if (!o->quiet)
			(void) printf("%s: %s: policy model=%s guest=%" PRIu64
			    " page_t=%" PRIu64 " overhead=%" PRIu64 " host=%"
			    PRIu64 " free=%" PRIu64 " free_after=%" PRIu64
			    " state_after=%s floor=%s floor_bytes=%" PRIu64 "\n",
			    progname, uuid, vmmresv_overhead_model_name(
			    vd.overhead_model), vd.guest_bytes, vd.page_t_bytes,
			    vd.overhead_bytes, vd.host_bytes, vd.free_bytes,
			    vd.free_after_bytes,
			    vmmresv_memory_state_name(vd.state_after),
			    vmmresv_memory_state_name(vd.floor_state),
			    vd.floor_bytes);
	} else {
		st = vmmresv_admit(adm, uuid, bytes, o->preference, &d);
		if (st != VMMRESV_STATUS_OK) {
			lib_fail("vmmresv_admit", st);
			return (1);
		}
	}
	if (!o->quiet) {
		(void) printf("%s: %s: %s (%s) charged=%" PRIu64
		    " shortfall=%" PRIu64 " free=%" PRIu64 " pending=%" PRIu64
		    "\n", progname, uuid, decision_name(d.decision),
		    reason_name(d.reason), d.charged_bytes, d.shortfall_bytes,
		    d.free_bytes, d.pending_bytes);
		(void) fflush(stdout);
	}
	if (o->exec_bhyve && d.decision != VMMRESV_DECISION_REFUSE)
		return (exec_vm(o, adm, uuid,
		    d.decision == VMMRESV_DECISION_USE_RESERVOIR));
	switch (d.decision) {
	case VMMRESV_DECISION_REFUSE:
		/* RFD 185: do not launch a VM that cannot get its memory. */
		n->refused++;
		if (o->backoff_ms > 0)
			sleep_ms(o->backoff_ms);
		return (0);
	case VMMRESV_DECISION_USE_RESERVOIR:
		return (run_vm(o, adm, uuid, 1, 1, n));
	case VMMRESV_DECISION_NO_RESERVOIR:
		/* A claim on the transient room is held too (charged > 0). */
		return (run_vm(o, adm, uuid, 0, d.charged_bytes > 0, n));
	default:
		(void) fprintf(stderr, "%s: unknown decision %u\n", progname,
		    (unsigned)d.decision);
		return (1);
	}
}

/* One VM start as today: query, then launch if there was room. */
static int
start_unledgered(const struct opts *o, vmmresv_reservoir *r,
    const char *uuid, struct counts *n)
{
	vmmresv_query q;
	vmmresv_status st;
	uint64_t bytes = (uint64_t)o->mib * MIB;

	if ((st = vmmresv_reservoir_query(r, &q)) != VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_reservoir_query", st);
		return (1);
	}
	if (q.free_bytes < bytes) {
		if (!o->quiet)
			(void) printf("%s: %s: refuse (reservoir free %" PRIu64
			    " < %" PRIu64 ")\n", progname, uuid, q.free_bytes,
			    bytes);
		n->refused++;
		if (o->backoff_ms > 0)
			sleep_ms(o->backoff_ms);
		return (0);
	}
	if (!o->quiet) {
		(void) printf("%s: %s: use_reservoir (free %" PRIu64 ")\n",
		    progname, uuid, q.free_bytes);
		(void) fflush(stdout);
	}
	return (run_vm(o, NULL, uuid, 1, 0, n));
}

/* stdin, stdout, stderr open, so no pipe of ours lands on 0..2. */
static int
std_fds(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		if (open("/dev/null", O_RDWR) != fd)
			return (-1);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct counts n = { 0, 0, 0 };
	vmmresv_reservoir *r = NULL;
	vmmresv_admission *adm = NULL;
	vmmresv_status st;
	char uuid[UUID_LEN + 1];
	int failed = 0;
	long i;

	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash != NULL ? slash + 1 : argv[0];
	}
	parse(argc, argv, &o);
	if (std_fds() != 0) {
		(void) fprintf(stderr, "%s: cannot open /dev/null\n", progname);
		return (1);
	}

	if ((st = vmmresv_reservoir_open(NULL, NULL, &r)) !=
	    VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_reservoir_open", st);
		return (1);
	}
	if (o.ledger && (st = vmmresv_admission_open(r, o.ledger_path,
	    &adm)) != VMMRESV_STATUS_OK) {
		lib_fail("vmmresv_admission_open", st);
		vmmresv_reservoir_close(r);
		return (1);
	}
	if (o.ledger) {
		uint32_t origin = VMMRESV_LEDGER_ORIGIN_DEFAULT;

		(void) vmmresv_admission_ledger_origin(adm, &origin);
		if (origin == VMMRESV_LEDGER_ORIGIN_ENVIRONMENT ||
		    origin == VMMRESV_LEDGER_ORIGIN_ARGUMENT)
			(void) fprintf(stderr, "%s: note: admission ledger "
			    "from %s, not the host-wide setting (two ledgers "
			    "for one host protect nothing)\n", progname,
			    origin == VMMRESV_LEDGER_ORIGIN_ARGUMENT ? "-l" :
			    "VMMRESV_RUNDIR");
	}
	if (o.ledger && o.host_root != NULL) {
		vmmresv_policy p;

		(void) vmmresv_policy_default(&p);
		p.overhead_model = o.model;
		p.floor_state = o.floor;
		if ((st = vmmresv_admission_set_policy(adm, &p)) !=
		    VMMRESV_STATUS_OK) {
			lib_fail("vmmresv_admission_set_policy", st);
			vmmresv_admission_close(adm);
			vmmresv_reservoir_close(r);
			return (1);
		}
	}

	for (i = 0; i < o.count && !failed; i++) {
		/* A different VM each time: the UUID's last 4 hex digits. */
		(void) memcpy(uuid, o.uuid, UUID_LEN);
		(void) snprintf(uuid + UUID_LEN - 4, 5, "%04lx",
		    (unsigned long)i & 0xffffUL);
		if (o.ledger)
			failed = start_admitted(&o, r, adm, uuid, &n);
		else
			failed = start_unledgered(&o, r, uuid, &n);
	}

	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(r);
	(void) printf("%s: admitted=%d refused=%d launch_failed=%d\n",
	    progname, n.admitted, n.refused, n.launch_failed);
	if (failed)
		return (1);
	return (n.launch_failed == 0 ? 0 : EXIT_LAUNCH_FAILED);
}
