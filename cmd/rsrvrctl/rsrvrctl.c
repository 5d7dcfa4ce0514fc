/* SPDX-License-Identifier: MPL-2.0 */
/*
 * rsrvrctl.c: a port of illumos /usr/lib/rsrvrctl onto libvmmresv.
 *
 * The original (illumos-gate usr/src/cmd/rsrvrctl/rsrvrctl.c, "Copyright
 * 2023 Oxide Computer Company") talks to
 * /dev/vmmctl with ioctl(2).  This port knows nothing of the device: every
 * operation goes through the library's C ABI (vmmresv.h), which is the
 * point -- it is the library's first C consumer, built only against the
 * installed header and -lvmmresv.
 *
 * Kept from the original:
 *  - the command line: getopt "a:r:s:c:qh", the usage text word for word,
 *    exactly one of -a, -r, -s, or -q alone; a repeated -a/-r/-s keeps its
 *    first value; a resize with -q runs the resize and ignores -q (order
 *    a > r > s > q); a repeated -c keeps its last value; leftover operands
 *    or an unknown option print the usage and exit 1; -h prints it to
 *    stderr and exits 0;
 *  - plain sizes are MiB, read as strtoul(3) base 0 reads them (decimal,
 *    0x hex, leading-0 octal);
 *  - the -q output, the "Reservoir size: N MiB" progress line of -s when
 *    SIGINFO arrives during the resize, and the error messages
 *    ("rsrvrctl: Could not add N bytes to reservoir: <reason>", ...);
 *  - -r clamps to the current size and does nothing (exit 0) on an empty
 *    reservoir; -s resumes after each interruption until the target is
 *    reached (the library's resize loop does what the original's did);
 *    -a and -r do not: the kernel's EINTR fails them, exit 1, "Could not
 *    add N bytes to reservoir: Interrupted system call" (the original
 *    err()ed on any error), through vmmresv_reservoir_resize() with
 *    VMMRESV_RESIZE_STOP_ON_SIGNAL.
 *
 * Deliberately different:
 *  - Garbage sizes are refused.  The original's strtoul had no end check
 *    ("12abc" was 12, "" was 0), wrapped negative input ("-5") and never
 *    checked the MiB-to-bytes multiplication for overflow.  Here each of
 *    these prints "Invalid size %s" (or "Invalid chunk size %s"), the
 *    usage, and exits 1.  A number must be the whole argument (leading and
 *    trailing blanks aside), so "099" (not octal) is refused too.  Sizes
 *    are checked before the device is opened (the original opened it
 *    first), so a typo is reported on a host without vmm too.
 *  - EXTENSION: a size with a unit is read by vmmresv_size_parse():
 *    "512M", "12G", "1.5T", "64GiB", "4096B" (units K M G T P E, binary).
 *    A percentage ("75%") is of the host's reservoir limit, which needs a
 *    query first; the result is rounded down to the page size (the limit
 *    itself is rarely page-aligned).  A size with a unit that is not a
 *    multiple of the 4 KiB page ("1.5K") is left for the library to
 *    refuse ("size or chunk is not page-aligned").  Plain numbers keep
 *    the original's meaning (MiB), never bytes.
 *  - A failed -q exits 1 ("Could not query reservoir info: ..."): the
 *    original perror()ed and exited 0, a bug not copied.
 *  - After a failed resize the size the reservoir stands at is printed
 *    ("rsrvrctl: reservoir size is now N MiB"), when the library could
 *    learn it; the original could not tell the operator.
 *  - Error reasons are the library's vmmresv_strerror() texts rather than
 *    strerror(errno) (plus the errno text for a plain OS error).
 *  - The usage line names the program by the basename of argv[0] (the
 *    original printed argv[0] as given), as err(3) does for messages.
 *  - Linux has no SIGINFO: where <signal.h> does not define it, SIGUSR1
 *    stands in for it (kill -USR1 <pid> shows the progress).
 *  - EXTENSION: -b SETTING applies the boot-time reservoir setting of RFD
 *    185 (what the SMF service smf/vmmresv-reservoir runs at boot): a
 *    whole percentage of the kernel's limit ("75%"), a size with a unit
 *    ("12G"), or "default" / "" for 75%, read by
 *    vmmresv_boot_setting_parse().  The target is computed by
 *    vmmresv_boot_target() (a size above the limit is clamped to it, with
 *    a warning; the result is rounded down to the -c chunk, or the page)
 *    and set like -s, with the same progress and EINTR handling.  It
 *    prints what it asked for and what the kernel reached, as
 *    "Label:\tvalue" lines like -q, so a boot log says both:
 *
 *	Boot setting:	75%
 *	Size limit MiB:	15592
 *	Previous MiB:	0
 *	Target MiB:	11264
 *	Reached MiB:	11264
 *
 *    Running it again with the same setting asks for the same size, which
 *    the kernel grants at once: -b is idempotent.  -b counts as one of the
 *    exclusive options (after -s in the order of precedence, before -q).
 *
 * Exit status: 0 on success (and after -r on an empty reservoir), 1 for
 * usage errors and failures, 2 for an invalid -b setting or chunk (so a
 * boot method can tell a configuration error from a failure).
 */

#define _POSIX_C_SOURCE 200809L
#define __EXTENSIONS__		/* illumos: SIGINFO beside POSIX names */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmresv.h"

#ifdef SIGINFO
#define	PROGRESS_SIGNAL		SIGINFO
#define	PROGRESS_SIGNAL_NAME	"SIGINFO"
#else
/* Linux has no SIGINFO (illumos and the BSDs do): SIGUSR1 stands in. */
#define	PROGRESS_SIGNAL		SIGUSR1
#define	PROGRESS_SIGNAL_NAME	"SIGUSR1"
#endif

#define	MIB	(UINT64_C(1024) * 1024)

static const char *prog_name = "rsrvrctl";

static void warnx_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* err(3)'s warnx(): "<prog>: <message>\n" on stderr. */
static void
warnx_(const char *fmt, ...)
{
	va_list ap;

	(void) fflush(stdout);
	(void) fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	(void) vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void) fputc('\n', stderr);
}

/* The original's usage text, verbatim; the caller returns the exit code. */
static void
usage(void)
{
	(void) fprintf(stderr,
	    "Usage: %s [-a add] [-r remove] [-q]\n"
	    "\t-a <SZ> add SZ MiB to the reservoir\n"
	    "\t-r <SZ> remove SZ MiB from the reservoir\n"
	    "\t-s <SZ> set reservoir to SZ MiB, if possible\n"
	    "\t-c <SZ> use SZ MiB chunks when performing resize ops\n"
	    "\t-q query reservoir state\n"
	    "\t-b <SETTING> apply a boot-time setting (N%%, a size, or default)\n",
	    prog_name);
}

/*
 * The library's description of a failure, with the OS error text added
 * when the status is only "operating-system error".  Must be called right
 * after the failing call: the errno is per thread and per last call.
 */
static const char *
reason(vmmresv_status st, char *buf, size_t len)
{
	const char *msg = vmmresv_strerror(st);
	int e = vmmresv_last_errno();

	if (st == VMMRESV_STATUS_IO && e != 0) {
		(void) snprintf(buf, len, "%s (%s)", msg, strerror(e));
		return (buf);
	}
	/* The kernel's EINTR, worded as the original's err(3) worded it. */
	if (st == VMMRESV_STATUS_INTERRUPTED && e == EINTR)
		return (strerror(e));
	return (msg);
}

/* A size argument: bytes, or a percentage of the limit to resolve later. */
enum size_kind { SIZE_BYTES, SIZE_PERCENT };

struct size_arg {
	const char	*text;
	enum size_kind	kind;
	uint64_t	bytes;
};

/*
 * Parse a size argument.  A plain number (the whole argument, blanks
 * aside) is MiB, read like the original's strtoul(arg, NULL, 0) but with
 * its end, its sign and the multiplication checked.  Anything else must
 * end in a unit letter or '%' and is read by vmmresv_size_parse().
 * Returns 1 on success, 0 for an invalid size.
 */
static int
parse_size(const char *arg, struct size_arg *out)
{
	const char *p = arg, *last = NULL;
	char *end;
	unsigned long long v;
	uint64_t bytes;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-')
		return (0);		/* strtoul would wrap it */

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (end != arg) {
		const char *q = end;

		while (isspace((unsigned char)*q))
			q++;
		if (*q == '\0') {
			if (errno != 0 || v > UINT64_MAX / MIB)
				return (0);
			out->text = arg;
			out->kind = SIZE_BYTES;
			out->bytes = (uint64_t)v * MIB;
			return (1);
		}
	}

	/* The extension: a unit or a percentage. */
	for (p = arg; *p != '\0'; p++) {
		if (!isspace((unsigned char)*p))
			last = p;
	}
	if (last == NULL || isdigit((unsigned char)*last))
		return (0);		/* a number with no unit is MiB only */
	if (*last == '%') {
		/* Check the syntax now; the limit comes after the open. */
		if (vmmresv_size_parse(arg, 1, &bytes) != VMMRESV_STATUS_OK)
			return (0);
		out->text = arg;
		out->kind = SIZE_PERCENT;
		out->bytes = 0;
		return (1);
	}
	if (vmmresv_size_parse(arg, 0, &bytes) != VMMRESV_STATUS_OK)
		return (0);
	out->text = arg;
	out->kind = SIZE_BYTES;
	out->bytes = bytes;
	return (1);
}

/*
 * Turn a percentage into bytes of the host's limit, rounded down to the
 * page.  Returns 1, or 0 if the text no longer parses (it did before).
 */
static int
resolve_percent(struct size_arg *sz, uint64_t limit)
{
	uint64_t bytes = 0;

	if (sz->kind != SIZE_PERCENT)
		return (1);
	if (limit != 0 &&
	    (vmmresv_size_parse(sz->text, limit, &bytes) != VMMRESV_STATUS_OK ||
	    vmmresv_round_down(bytes, VMMRESV_PAGESIZE, &bytes) !=
	    VMMRESV_STATUS_OK))
		return (0);
	sz->kind = SIZE_BYTES;
	sz->bytes = bytes;
	return (1);
}

/* Set by the progress signal's handler, consumed by the progress hook. */
static volatile sig_atomic_t caught_siginfo = 0;

static void
siginfo_handler(int sig, siginfo_t *sip, void *ucp)
{
	(void) sig;
	(void) sip;
	(void) ucp;
	caught_siginfo = 1;
}

/*
 * Called by the library after each step the kernel interrupted (EINTR):
 * print the size reached if the operator asked, then resume -- the
 * original's loop around VMM_RESV_SET_TARGET.
 */
static int
progress(uint64_t reached_bytes, uint64_t target_bytes, void *arg)
{
	(void) target_bytes;
	(void) arg;
	if (caught_siginfo) {
		caught_siginfo = 0;
		(void) printf("Reservoir size: %" PRIu64 " MiB\n",
		    reached_bytes / MIB);
		(void) fflush(stdout);
	}
	return (0);
}

/* The second line of a failed resize: where the reservoir stands. */
static void
report_reached(uint64_t reached)
{
	if (reached != VMMRESV_SIZE_UNKNOWN)
		warnx_("reservoir size is now %" PRIu64 " MiB", reached / MIB);
}

static int
do_add(vmmresv_reservoir *h, uint64_t sz, uint64_t chunk)
{
	uint64_t reached = VMMRESV_SIZE_UNKNOWN;
	char buf[256];
	vmmresv_status st;

	/* As the original: no retry after EINTR (err(1, ...) on any error). */
	st = vmmresv_reservoir_resize(h, VMMRESV_RESIZE_ADD, sz, chunk,
	    VMMRESV_RESIZE_STOP_ON_SIGNAL, NULL, NULL, &reached);
	if (st != VMMRESV_STATUS_OK) {
		warnx_("Could not add %" PRIu64 " bytes to reservoir: %s", sz,
		    reason(st, buf, sizeof (buf)));
		report_reached(reached);
		return (EXIT_FAILURE);
	}
	return (EXIT_SUCCESS);
}

static int
do_remove(vmmresv_reservoir *h, uint64_t sz, uint64_t chunk)
{
	uint64_t reached = VMMRESV_SIZE_UNKNOWN, clamped = sz;
	vmmresv_query q;
	char buf[256];
	vmmresv_status st;

	/*
	 * Only for the message: the original named the clamped amount.  The
	 * library clamps under its resize lock; this unlocked look can only
	 * differ if another resize runs meanwhile.
	 */
	if (vmmresv_reservoir_query(h, &q) == VMMRESV_STATUS_OK &&
	    q.free_bytes <= UINT64_MAX - q.alloc_bytes &&
	    q.free_bytes + q.alloc_bytes < clamped)
		clamped = q.free_bytes + q.alloc_bytes;

	st = vmmresv_reservoir_resize(h, VMMRESV_RESIZE_REMOVE, sz, chunk,
	    VMMRESV_RESIZE_STOP_ON_SIGNAL, NULL, NULL, &reached);
	if (st != VMMRESV_STATUS_OK) {
		warnx_("Could not remove %" PRIu64 " bytes from reservoir: %s",
		    clamped, reason(st, buf, sizeof (buf)));
		report_reached(reached);
		return (EXIT_FAILURE);
	}
	return (EXIT_SUCCESS);
}

/* -s, and the resize of -b, which also wants the size reached. */
static int
do_set_target(vmmresv_reservoir *h, uint64_t sz, uint64_t chunk,
    uint64_t *reachedp)
{
	uint64_t reached = VMMRESV_SIZE_UNKNOWN;
	struct sigaction sa;
	char buf[256];
	vmmresv_status st;

	/* SA_SIGINFO and, as in the original, no SA_RESTART. */
	(void) memset(&sa, 0, sizeof (sa));
	sa.sa_sigaction = siginfo_handler;
	sa.sa_flags = SA_SIGINFO;
	(void) sigemptyset(&sa.sa_mask);
	if (sigaction(PROGRESS_SIGNAL, &sa, NULL) != 0) {
		warnx_("Could not configure " PROGRESS_SIGNAL_NAME
		    " handler: %s", strerror(errno));
		return (EXIT_FAILURE);
	}

	st = vmmresv_reservoir_set_target(h, sz, chunk, progress, NULL,
	    &reached);
	if (st != VMMRESV_STATUS_OK) {
		warnx_("Could not set reservoir size to %" PRIu64 " bytes: %s",
		    sz, reason(st, buf, sizeof (buf)));
		report_reached(reached);
		return (EXIT_FAILURE);
	}
	if (reachedp != NULL)
		*reachedp = reached;
	return (EXIT_SUCCESS);
}

/* Exit status of -b for a setting or chunk that cannot be used. */
#define	EXIT_BAD_SETTING	2

/* -b "default" and -b "" mean the library's default: NULL. */
static const char *
boot_setting_arg(const char *arg)
{
	const char *p = arg;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || strcmp(p, "default") == 0)
		return (NULL);
	return (arg);
}

/* The setting as the library understood it: "75%" or "12G". */
static void
format_setting(const vmmresv_boot_setting *s, char *buf, size_t len)
{
	char size[VMMRESV_SIZE_FORMAT_BUFSIZE];
	size_t n;

	if (s->kind == VMMRESV_BOOT_PERCENT) {
		(void) snprintf(buf, len, "%u%%", (unsigned)s->percent);
		return;
	}
	if (vmmresv_size_format(s->size_bytes, size, sizeof (size), NULL) !=
	    VMMRESV_STATUS_OK) {
		(void) snprintf(buf, len, "%" PRIu64 "B", s->size_bytes);
		return;
	}
	/* Under 1 KiB the size has no unit; the setting grammar wants one. */
	n = strlen(size);
	(void) snprintf(buf, len, "%s%s", size,
	    (n > 0 && isdigit((unsigned char)size[n - 1])) ? "B" : "");
}

/*
 * -b: apply a boot-time setting.  The setting's syntax was checked before
 * the open; here the limit is known and the chunk can be checked.
 */
static int
do_boot(vmmresv_reservoir *h, const char *setting, uint64_t chunk)
{
	vmmresv_boot_plan t;
	vmmresv_query q;
	uint64_t reached = VMMRESV_SIZE_UNKNOWN;
	char buf[256], text[64];
	vmmresv_status st;
	int rc;

	if ((st = vmmresv_reservoir_query(h, &q)) != VMMRESV_STATUS_OK) {
		warnx_("Could not query reservoir info: %s",
		    reason(st, buf, sizeof (buf)));
		return (EXIT_FAILURE);
	}
	st = vmmresv_boot_target(h, setting, chunk, &t);
	if (st != VMMRESV_STATUS_OK) {
		warnx_("Could not compute the boot target of %s: %s",
		    setting != NULL ? setting : "default",
		    reason(st, buf, sizeof (buf)));
		/* Only the chunk can be unaligned: a configuration error. */
		return (st == VMMRESV_STATUS_UNALIGNED ||
		    st == VMMRESV_STATUS_PARSE_SIZE ?
		    EXIT_BAD_SETTING : EXIT_FAILURE);
	}
	format_setting(&t.setting, text, sizeof (text));
	(void) printf("Boot setting:\t%s\n"
	    "Size limit MiB:\t%" PRIu64 "\n"
	    "Previous MiB:\t%" PRIu64 "\n"
	    "Target MiB:\t%" PRIu64 "\n",
	    text, t.limit_bytes / MIB,
	    (q.free_bytes + q.alloc_bytes) / MIB, t.target_bytes / MIB);
	(void) fflush(stdout);
	if (t.clamped) {
		warnx_("boot setting %s is more than the size limit: "
		    "clamped to %" PRIu64 " MiB", text, t.target_bytes / MIB);
	}
	rc = do_set_target(h, t.target_bytes, chunk, &reached);
	if (rc == EXIT_SUCCESS)
		(void) printf("Reached MiB:\t%" PRIu64 "\n", reached / MIB);
	return (rc);
}

static int
do_query(vmmresv_reservoir *h)
{
	vmmresv_query q;
	char buf[256];
	vmmresv_status st;

	st = vmmresv_reservoir_query(h, &q);
	if (st != VMMRESV_STATUS_OK) {
		/* The original exited 0 here; a failed query is a failure. */
		warnx_("Could not query reservoir info: %s",
		    reason(st, buf, sizeof (buf)));
		return (EXIT_FAILURE);
	}
	(void) printf("Free MiB:\t%" PRIu64 "\n"
	    "Allocated MiB:\t%" PRIu64 "\n"
	    "Transient Allocated MiB:\t%" PRIu64 "\n"
	    "Size limit MiB:\t%" PRIu64 "\n",
	    q.free_bytes / MIB,
	    q.alloc_bytes / MIB,
	    q.alloc_transient_bytes / MIB,
	    q.limit_bytes / MIB);
	return (EXIT_SUCCESS);
}

/* Everything after a successful open; the caller closes the handle. */
static int
run(vmmresv_reservoir *h, char op, const char *arg, struct size_arg *sz,
    struct size_arg *chunk)
{
	if (op != 'q' &&
	    (sz->kind == SIZE_PERCENT || chunk->kind == SIZE_PERCENT)) {
		vmmresv_query q;
		char buf[256];
		vmmresv_status st = vmmresv_reservoir_query(h, &q);

		if (st != VMMRESV_STATUS_OK) {
			warnx_("Could not query reservoir sizing: %s",
			    reason(st, buf, sizeof (buf)));
			return (EXIT_FAILURE);
		}
		if (!resolve_percent(sz, q.limit_bytes)) {
			warnx_("Invalid size %s", sz->text);
			return (EXIT_FAILURE);
		}
		if (!resolve_percent(chunk, q.limit_bytes)) {
			warnx_("Invalid chunk size %s", chunk->text);
			return (EXIT_FAILURE);
		}
	}

	switch (op) {
	case 'a':
		return (do_add(h, sz->bytes, chunk->bytes));
	case 'r':
		return (do_remove(h, sz->bytes, chunk->bytes));
	case 's':
		return (do_set_target(h, sz->bytes, chunk->bytes, NULL));
	case 'b':
		return (do_boot(h, boot_setting_arg(arg), chunk->bytes));
	default:
		return (do_query(h));
	}
}

int
main(int argc, char *argv[])
{
	const char *opt_a = NULL, *opt_r = NULL, *opt_s = NULL, *opt_b = NULL;
	const char *arg;
	struct size_arg sz = { NULL, SIZE_BYTES, 0 };
	struct size_arg chunk = { NULL, SIZE_BYTES, 0 };
	unsigned resize_opts = 0;
	int opt_q = 0, c, rc;
	vmmresv_reservoir *h = NULL;
	vmmresv_status st;
	char op, buf[256];

	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *slash = strrchr(argv[0], '/');

		prog_name = (slash != NULL && slash[1] != '\0') ?
		    slash + 1 : argv[0];
	}

	while ((c = getopt(argc, argv, "a:r:s:b:c:qh")) != -1) {
		switch (c) {
		case 'a':
			if (opt_a == NULL) {
				resize_opts++;
				opt_a = optarg;
			}
			break;
		case 'r':
			if (opt_r == NULL) {
				resize_opts++;
				opt_r = optarg;
			}
			break;
		case 's':
			if (opt_s == NULL) {
				resize_opts++;
				opt_s = optarg;
			}
			break;
		case 'b':
			if (opt_b == NULL) {
				resize_opts++;
				opt_b = optarg;
			}
			break;
		case 'c':
			if (!parse_size(optarg, &chunk)) {
				warnx_("Invalid chunk size %s", optarg);
				usage();
				return (EXIT_FAILURE);
			}
			break;
		case 'q':
			opt_q = 1;
			break;
		case 'h':
			usage();
			return (EXIT_SUCCESS);
		default:
			usage();
			return (EXIT_FAILURE);
		}
	}

	if (optind < argc || (resize_opts == 0 && !opt_q) ||
	    resize_opts > 1) {
		usage();
		return (EXIT_FAILURE);
	}

	/* The original's precedence: a > r > s > q (and -b before -q). */
	if (opt_a != NULL) {
		op = 'a';
		arg = opt_a;
	} else if (opt_r != NULL) {
		op = 'r';
		arg = opt_r;
	} else if (opt_s != NULL) {
		op = 's';
		arg = opt_s;
	} else if (opt_b != NULL) {
		op = 'b';
		arg = opt_b;
	} else {
		op = 'q';
		arg = NULL;
	}
	if (op == 'b') {
		vmmresv_boot_setting bs;
		const char *setting = boot_setting_arg(arg);

		/* No usage here: the option was right, its value is not. */
		if (setting != NULL &&
		    (st = vmmresv_boot_setting_parse(setting, &bs)) !=
		    VMMRESV_STATUS_OK) {
			warnx_("Invalid boot setting %s: %s (a whole "
			    "percentage such as 75%%, a size with a unit such "
			    "as 12G, or default)", arg, vmmresv_strerror(st));
			return (EXIT_BAD_SETTING);
		}
	} else if (arg != NULL && !parse_size(arg, &sz)) {
		warnx_("Invalid size %s", arg);
		usage();
		return (EXIT_FAILURE);
	}

	/* NULL, NULL: /dev/vmmctl, and $VMMRESV_RUNDIR or the default. */
	st = vmmresv_reservoir_open(NULL, NULL, &h);
	if (st != VMMRESV_STATUS_OK) {
		warnx_("Could not open vmmctl: %s",
		    reason(st, buf, sizeof (buf)));
		usage();
		return (EXIT_FAILURE);
	}

	rc = run(h, op, arg, &sz, &chunk);
	vmmresv_reservoir_close(h);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		warnx_("Could not write to standard output");
		rc = EXIT_FAILURE;
	}
	return (rc);
}
