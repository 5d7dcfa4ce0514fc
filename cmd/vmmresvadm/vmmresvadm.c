/* SPDX-License-Identifier: MPL-2.0 */
/*
 * vmmresvadm.c: administer the VMM reservoir and the admission ledger of
 * a bhyve host -- vmmresvadm(8).
 *
 * Built on the C ABI of libvmmresv only (vmmresv.h and -lvmmresv), like
 * rsrvrctl.  Subcommands, in the manner of the illumos administrative
 * commands (zpool, dladm):
 *
 *	status [-Hp] [-o field[,...]]	the reservoir, claims, ARC, memory
 *	report [-j]			the capacity report (JSON)
 *	reconcile [-nHp] [-o field[,...]]	reclaim dead claims, check totals
 *					(-n: what it would change, nothing written)
 *	claims [-Hp] [-o field[,...]]	every claim in the ledger
 *	check [-P pref] [-M model] [-c vcpus] [-Hp] [-o field[,...]] uuid size
 *					what an admission would decide now
 *	resize [-c chunk] size | N%	resize with progress
 *	metrics				Prometheus text exposition
 *	arc [-Hp] [-o field[,...]] [-l ledger] [-m memstat] [-r req [-a resv]]
 *					the ARC, its reservations, the guard
 *	arc hold | drop | reconcile | list | apply
 *					durable ARC reservations (no reservoir
 *					needed: vmmresv_arc_open())
 *
 * Every figure of status and metrics comes from one capacity report
 * (vmmresv_report_json()), so the figures of one run agree with each
 * other; this program reads them back from the report's JSON text with a
 * small reader of its own (the report is the library's output: well formed,
 * but the reader still checks what it walks).
 *
 * The host's memory and the ZFS ARC: on illumos the library reads a file
 * of `kstat -p` output, which this program makes by running kstat(8); on
 * other systems it reads <root>/proc/meminfo and, when present,
 * <root>/proc/spl/kstat/zfs/arcstats (root "/" or the -R option).
 *
 * The reservoir is /dev/vmmctl, or with -P hugetlb[:pagesize] a Linux
 * hugetlb pool (2 MiB pages by default), opened through the library the
 * same way (vmmresv_reservoir_open_hugetlb()): every subcommand then shows
 * and resizes the pool.
 *
 * -F profile=share (repeatable) gives a sizing profile's share for the
 * report's profiles (status, report, metrics) as a percentage with
 * decimals ("omicron=86.3%") or an exact fraction ("omicron=8630/10000"),
 * through vmmresv_admission_set_profile_fraction().
 *
 * Exit status: 0 success, 1 an error (the library's message), 2 usage,
 * 3 `arc hold` refused by the guard.
 */

#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmmresv.h>

/*
 * Options come before operands, as POSIX getopt(3) reads them; glibc's
 * would otherwise take "resize 8G -c 1G" too, which illumos refuses.
 */
#if defined(__GLIBC__)
#define	OPTS(s)	"+" s
#else
#define	OPTS(s)	s
#endif

#define	EXIT_OK		0
#define	EXIT_ERR	1
#define	EXIT_USAGE	2
#define	EXIT_REFUSED	3	/* arc hold: the guard said no */

/* The resize step when -c is not given. */
#define	DEFAULT_STEP	(UINT64_C(1) << 30)

#ifdef __sun
static const int use_kstat = 1;
#else
static const int use_kstat = 0;
#endif

static const char *prog_name = "vmmresvadm";
static const char *root_dir = NULL;	/* -R */
static int hugetlb = 0;			/* -P hugetlb[:pagesize] */
static uint64_t hugetlb_page = 0;	/* 0: 2 MiB */

/* -F profile=share: the shares the report's profiles apply. */
#define	MAX_SHARES	8
static struct {
	uint32_t	profile;
	uint64_t	num;
	uint64_t	den;
} shares[MAX_SHARES];
static size_t nshares = 0;

static void warnx_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* "<prog>: <message>\n" on stderr. */
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

static int bad_usage(const char *fmt, const char *arg);

static void
usage(void)
{
	(void) fprintf(stderr,
	    "usage: %s [-R root] [-P vmm | hugetlb[:pagesize]] subcommand "
	    "[arguments]\n"
	    "\tstatus [-Hp] [-o field[,...]]\n"
	    "\treport [-j]\n"
	    "\treconcile [-nHp] [-o field[,...]]\n"
	    "\tresize [-c chunk] size | N%%\n"
	    "\tmetrics\n"
	    "\tclaims [-Hp] [-o field[,...]]\n"
	    "\tcheck [-P require | prefer | never] [-M model] [-c vcpus] "
	    "[-Hp]\n\t    [-o field[,...]] uuid size\n"
	    "\tarc [-Hp] [-o field[,...]] [-l ledger] [-m memstat-file] "
	    "[-r request [-a reserved]]\n"
	    "\tarc hold [-Hp] [-o field[,...]] [-l ledger] uuid size "
	    "check-path\n"
	    "\tarc drop [-Hp] [-o field[,...]] [-l ledger] uuid\n"
	    "\tarc reconcile [-Hp] [-o field[,...]] [-l ledger] "
	    "[-g grace-seconds]\n"
	    "\tarc list [-Hp] [-o field[,...]] [-l ledger]\n"
	    "\tarc apply [-Hp] [-o field[,...]] [-l ledger] [-w seconds]\n"
	    "global -F profile=share: a profile's share for status, report "
	    "and metrics\n"
	    "\t(N%% with decimals, or numerator/denominator; repeatable)\n"
	    "fields of -o: property, value\n"
	    "fields of claims -o: uuid, pool, size, age, state, held, pid, "
	    "zone\n"
	    "fields of arc list -o: uuid, size, age, kind, vm, pid, check\n",
	    prog_name);
}

/* A usage error: the message, the usage, exit status 2. */
static int
bad_usage(const char *fmt, const char *arg)
{
	(void) fflush(stdout);
	(void) fprintf(stderr, "%s: ", prog_name);
	(void) fprintf(stderr, fmt, arg);
	(void) fputc('\n', stderr);
	usage();
	return (EXIT_USAGE);
}

/* A usage error about the option getopt(3) just read (optopt). */
static int
bad_option(const char *fmt)
{
	char opt[2];

	opt[0] = (char)optopt;
	opt[1] = '\0';
	return (bad_usage(fmt, opt));
}

/*
 * A library failure: "<what>: <strerror>", with the OS error's text when
 * the status is only "operating-system error"; exit status 1.
 */
static int
fail(const char *what, vmmresv_status st)
{
	int e = vmmresv_last_errno();

	if (st == VMMRESV_STATUS_IO && e != 0)
		warnx_("%s: %s (%s)", what, vmmresv_strerror(st), strerror(e));
	else
		warnx_("%s: %s", what, vmmresv_strerror(st));
	return (EXIT_ERR);
}

/*
 * A size for people: exact below 1 KiB, else at most three significant
 * digits and a binary unit ("8G", "15.2G", "810M"), as zfs(8) prints.
 */
static void
nicenum(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	uint64_t div = 1024;
	int u = 0;
	double v;

	if (n < 1024) {
		(void) snprintf(buf, len, "%" PRIu64, n);
		return;
	}
	while (u < 5 && n / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (n % div == 0) {
		(void) snprintf(buf, len, "%" PRIu64 "%c", n / div, units[u]);
		return;
	}
	v = (double)n / (double)div;
	if (v < 10.0)
		(void) snprintf(buf, len, "%.2f%c", v, units[u]);
	else if (v < 100.0)
		(void) snprintf(buf, len, "%.1f%c", v, units[u]);
	else
		(void) snprintf(buf, len, "%.0f%c", v, units[u]);
}

/* ------------------------------------------------------------------ */
/* Reading the report's JSON text.                                     */

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return (p);
}

/* Past the string starting at p (at its '"'), or NULL if unterminated. */
static const char *
skip_string(const char *p)
{
	for (p++; *p != '\0'; p++) {
		if (*p == '\\') {
			if (p[1] == '\0')
				return (NULL);
			p++;
		} else if (*p == '"') {
			return (p + 1);
		}
	}
	return (NULL);
}

/* Past the value starting at p, or NULL if it is malformed. */
static const char *
skip_value(const char *p)
{
	int depth = 0;

	p = skip_ws(p);
	do {
		if (*p == '\0')
			return (NULL);
		if (*p == '"') {
			if ((p = skip_string(p)) == NULL)
				return (NULL);
			continue;
		}
		if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return (NULL);
		} else if (depth == 0 && (*p == ',' || *p == ':')) {
			return (NULL);
		} else if (depth == 0) {
			/* A number or a literal: up to a delimiter. */
			while (*p != '\0' && *p != ',' && *p != '}' &&
			    *p != ']' && !isspace((unsigned char)*p))
				p++;
			return (p);
		}
		p++;
	} while (depth > 0);
	return (p);
}

/*
 * The value at `path` ("reservoir.size_bytes": object keys separated by
 * dots) in the JSON text `json`, or NULL if it is not there.
 */
static const char *
json_find(const char *json, const char *path)
{
	const char *p = skip_ws(json);

	while (*path != '\0') {
		const char *dot = strchr(path, '.');
		size_t klen = dot != NULL ? (size_t)(dot - path) : strlen(path);
		int found = 0;

		if (*p != '{')
			return (NULL);
		p = skip_ws(p + 1);
		while (*p == '"') {
			const char *key = p + 1, *end = skip_string(p);

			if (end == NULL)
				return (NULL);
			p = skip_ws(end);
			if (*p != ':')
				return (NULL);
			p = skip_ws(p + 1);
			if ((size_t)(end - 1 - key) == klen &&
			    strncmp(key, path, klen) == 0) {
				found = 1;
				break;
			}
			if ((p = skip_value(p)) == NULL)
				return (NULL);
			p = skip_ws(p);
			if (*p == ',')
				p = skip_ws(p + 1);
		}
		if (!found)
			return (NULL);
		path += klen;
		if (*path == '.')
			path++;
	}
	return (p);
}

/* The unsigned integer at `path`; 0 if found, -1 if absent or not one. */
static int
json_u64(const char *json, const char *path, uint64_t *out)
{
	const char *p = json_find(json, path);
	char *end;
	unsigned long long v;

	if (p == NULL || !isdigit((unsigned char)*p))
		return (-1);
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno != 0 || (*end != ',' && *end != '}' && *end != ']' &&
	    !isspace((unsigned char)*end)))
		return (-1);
	*out = (uint64_t)v;
	return (0);
}

/*
 * The string at `path`, without escapes (the report's names have none);
 * 0 if found, -1 if absent, not a string or too long for `buf`.
 */
static int
json_str(const char *json, const char *path, char *buf, size_t len)
{
	const char *p = json_find(json, path), *end;
	size_t n;

	if (p == NULL || *p != '"' || (end = skip_string(p)) == NULL)
		return (-1);
	n = (size_t)(end - p - 2);
	if (n >= len || memchr(p + 1, '\\', n) != NULL)
		return (-1);
	(void) memcpy(buf, p + 1, n);
	buf[n] = '\0';
	return (0);
}

/* Whether the value at `path` is JSON null (or absent). */
static int
json_null(const char *json, const char *path)
{
	const char *p = json_find(json, path);

	return (p == NULL || strncmp(p, "null", 4) == 0);
}

/*
 * The `idx`th sizing profile of the report ("profiles": an array of
 * objects): its name and target.  0 if there, -1 if not.
 */
static int
json_profile(const char *json, size_t idx, char *name, size_t len,
    uint64_t *target)
{
	const char *p = json_find(json, "profiles");

	if (p == NULL || *p != '[')
		return (-1);
	p = skip_ws(p + 1);
	for (;;) {
		if (*p != '{')
			return (-1);
		if (idx == 0)
			return (json_str(p, "name", name, len) == 0 &&
			    json_u64(p, "target_bytes", target) == 0 ? 0 : -1);
		idx--;
		if ((p = skip_value(p)) == NULL)
			return (-1);
		p = skip_ws(p);
		if (*p != ',')
			return (-1);
		p = skip_ws(p + 1);
	}
}

static void
indent(FILE *f, int depth)
{
	int i;

	for (i = 0; i < depth; i++)
		(void) fputs("  ", f);
}

/*
 * Print JSON text indented by two spaces a level, a member a line, as
 * python's json.tool does; strings are copied as they are.
 */
static void
json_pretty(FILE *f, const char *p)
{
	int depth = 0;

	while (*p != '\0') {
		const char *q;

		switch (*p) {
		case '"':
			q = skip_string(p);
			if (q == NULL)
				q = p + strlen(p);
			(void) fwrite(p, 1, (size_t)(q - p), f);
			p = q;
			continue;
		case '{':
		case '[':
			q = skip_ws(p + 1);
			if (*q == (*p == '{' ? '}' : ']')) {
				(void) fputc(*p, f);
				(void) fputc(*q, f);
				p = q + 1;
				continue;
			}
			(void) fputc(*p, f);
			(void) fputc('\n', f);
			indent(f, ++depth);
			break;
		case '}':
		case ']':
			(void) fputc('\n', f);
			indent(f, depth > 0 ? --depth : 0);
			(void) fputc(*p, f);
			break;
		case ',':
			(void) fputs(",\n", f);
			indent(f, depth);
			break;
		case ':':
			(void) fputs(": ", f);
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			break;
		default:
			(void) fputc(*p, f);
			break;
		}
		p++;
	}
	(void) fputc('\n', f);
}

/* ------------------------------------------------------------------ */
/* The host: its memory, the ARC, the report.                          */

/*
 * illumos: run `kstat -p <statistic>` into a temporary file for the
 * library's kstat readers.  `path` receives the file's name, which the
 * caller unlinks.  0 on success.
 */
static int
kstat_to_file(const char *statistic, char *path, size_t len)
{
	char cmd[128];
	FILE *p, *out;
	char line[512];
	int fd, rc;

	(void) snprintf(path, len, "/tmp/vmmresvadm.XXXXXX");
	if ((fd = mkstemp(path)) < 0) {
		warnx_("cannot create a temporary file: %s", strerror(errno));
		return (-1);
	}
	if ((out = fdopen(fd, "w")) == NULL) {
		(void) close(fd);
		(void) unlink(path);
		return (-1);
	}
	(void) snprintf(cmd, sizeof (cmd), "/usr/bin/kstat -p %s", statistic);
	if ((p = popen(cmd, "r")) == NULL) {
		warnx_("cannot run kstat: %s", strerror(errno));
		(void) fclose(out);
		(void) unlink(path);
		return (-1);
	}
	while (fgets(line, sizeof (line), p) != NULL)
		(void) fputs(line, out);
	rc = pclose(p);
	if (fclose(out) != 0 || rc != 0) {
		warnx_("kstat -p %s failed", statistic);
		(void) unlink(path);
		return (-1);
	}
	return (0);
}

/* The host's memory. 0, or an exit status. */
static int
read_host(vmmresv_host_memory *host)
{
	char path[64];
	vmmresv_status st;

	if (!use_kstat) {
		st = vmmresv_host_read_linux(root_dir, host);
		return (st == VMMRESV_STATUS_OK ? 0 :
		    fail("cannot read the host's memory", st));
	}
	if (kstat_to_file("unix:0:system_pages", path, sizeof (path)) != 0)
		return (EXIT_ERR);
	st = vmmresv_host_read_kstat(path, host);
	(void) unlink(path);
	return (st == VMMRESV_STATUS_OK ? 0 :
	    fail("cannot read the host's memory", st));
}

/*
 * The ARC: `*have` 1 with `*arc` filled, or 0 on a host without ZFS
 * statistics.  0, or an exit status.
 */
static int
read_arc(vmmresv_arc_host *arc, int *have)
{
	char path[4096];
	struct stat sb;
	vmmresv_status st;

	*have = 0;
	if (!use_kstat) {
		(void) snprintf(path, sizeof (path),
		    "%s/proc/spl/kstat/zfs/arcstats",
		    root_dir != NULL ? root_dir : "");
		if (stat(path, &sb) != 0 && errno == ENOENT)
			return (0);
		st = vmmresv_arc_read_linux(root_dir, arc);
	} else {
		if (stat("/dev/zfs", &sb) != 0)
			return (0);
		if (kstat_to_file("zfs:0:arcstats", path, sizeof (path)) != 0)
			return (EXIT_ERR);
		st = vmmresv_arc_read_kstat(path, arc);
		(void) unlink(path);
	}
	if (st != VMMRESV_STATUS_OK)
		return (fail("cannot read the ARC's statistics", st));
	*have = 1;
	return (0);
}

/* Open the reservoir (and the ledger, if `adm` is not NULL). */
static int
open_host(vmmresv_reservoir **r, vmmresv_admission **adm)
{
	vmmresv_status st;

	*r = NULL;
	if (hugetlb) {
		st = vmmresv_reservoir_open_hugetlb(hugetlb_page,
		    VMMRESV_NODE_ANY, NULL, r);
		if (st != VMMRESV_STATUS_OK)
			return (fail("cannot open the hugetlb pool", st));
	} else if ((st = vmmresv_reservoir_open(NULL, NULL, r)) !=
	    VMMRESV_STATUS_OK) {
		return (fail("cannot open /dev/vmmctl", st));
	}
	if (adm == NULL)
		return (0);
	*adm = NULL;
	if ((st = vmmresv_admission_open(*r, NULL, adm)) != VMMRESV_STATUS_OK) {
		vmmresv_reservoir_close(*r);
		*r = NULL;
		return (fail("cannot open the admission ledger", st));
	}
	return (0);
}

/*
 * The capacity report's JSON text, which the caller frees.  NULL on
 * failure (reported).
 */
static char *
get_report(void)
{
	vmmresv_reservoir *r;
	vmmresv_admission *adm;
	vmmresv_host_memory host;
	vmmresv_arc_host arc;
	vmmresv_status st = VMMRESV_STATUS_OK;
	char *buf = NULL;
	size_t need = 0, i;
	int have_arc, tries;

	if (read_host(&host) != 0 || read_arc(&arc, &have_arc) != 0)
		return (NULL);
	if (open_host(&r, &adm) != 0)
		return (NULL);
	for (i = 0; i < nshares; i++) {
		st = vmmresv_admission_set_profile_fraction(adm,
		    shares[i].profile, shares[i].num, shares[i].den);
		if (st != VMMRESV_STATUS_OK) {
			(void) fail("cannot set a profile's share", st);
			goto out;
		}
	}
	/* The size can change between two calls: ask again, a few times. */
	for (tries = 0; tries < 8; tries++) {
		char *nbuf;

		st = vmmresv_report_json(adm, &host, NULL,
		    have_arc ? &arc : NULL, buf, buf == NULL ? 0 : need, &need);
		if (st != VMMRESV_STATUS_BUFFER_TOO_SMALL)
			break;
		if ((nbuf = realloc(buf, need)) == NULL) {
			warnx_("out of memory");
			free(buf);
			buf = NULL;
			goto out;
		}
		buf = nbuf;
	}
	if (st != VMMRESV_STATUS_OK || buf == NULL) {
		(void) fail("cannot make the capacity report", st);
		free(buf);
		buf = NULL;
	}
out:
	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(r);
	return (buf);
}

/* ------------------------------------------------------------------ */
/* Tables: -H, -p, -o.                                                 */

#define	F_PROPERTY	0x1
#define	F_VALUE		0x2

struct table_opts {
	int	scripted;	/* -H */
	int	parsable;	/* -p */
	int	fields[3];	/* -o, in order, ended by 0 */
};

/* Parse -o's list into `t->fields`. 0, or -1 for an unknown field. */
static int
parse_fields(const char *arg, struct table_opts *t, const char **bad)
{
	static char copy[256];
	char *tok, *save = NULL;
	int n = 0;

	(void) snprintf(copy, sizeof (copy), "%s", arg);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		int f;

		if (strcmp(tok, "property") == 0)
			f = F_PROPERTY;
		else if (strcmp(tok, "value") == 0)
			f = F_VALUE;
		else {
			*bad = tok;
			return (-1);
		}
		if (n >= 2) {
			*bad = tok;
			return (-1);
		}
		t->fields[n++] = f;
	}
	if (n == 0) {
		*bad = arg;
		return (-1);
	}
	t->fields[n] = 0;
	return (0);
}

/*
 * Parse a table subcommand's options: [-Hp] [-o field[,...]], no
 * operands.  0, or EXIT_USAGE (reported).
 */
static int
table_options_flag(int argc, char **argv, struct table_opts *t,
    const char *optstring, int flag_letter, int *flag)
{
	const char *bad = NULL;
	int c;

	t->scripted = 0;
	t->parsable = 0;
	t->fields[0] = F_PROPERTY;
	t->fields[1] = F_VALUE;
	t->fields[2] = 0;
	optind = 1;
	while ((c = getopt(argc, argv, optstring)) != -1) {
		if (flag != NULL && c == flag_letter) {
			*flag = 1;
			continue;
		}
		switch (c) {
		case 'H':
			t->scripted = 1;
			break;
		case 'p':
			t->parsable = 1;
			break;
		case 'o':
			if (parse_fields(optarg, t, &bad) != 0)
				return (bad_usage("invalid field '%s' for -o",
				    bad));
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	return (0);
}

static int
table_options(int argc, char **argv, struct table_opts *t)
{
	return (table_options_flag(argc, argv, t, OPTS(":Hpo:"), 0, NULL));
}

/* One row of a property table. */
struct row {
	const char	*property;
	int		is_size;	/* value is bytes */
	int		present;	/* 0: printed as "-" */
	uint64_t	n;
	char		text[64];	/* the value when not a size */
};

static void
row_text(const struct row *r, int parsable, char *buf, size_t len)
{
	if (!r->present)
		(void) snprintf(buf, len, "-");
	else if (!r->is_size)
		(void) snprintf(buf, len, "%s", r->text);
	else if (parsable)
		(void) snprintf(buf, len, "%" PRIu64, r->n);
	else
		nicenum(r->n, buf, len);
}

static void
print_table(const struct table_opts *t, const struct row *rows, size_t n)
{
	size_t i, w = strlen("PROPERTY");
	int j;

	for (i = 0; i < n; i++) {
		if (strlen(rows[i].property) > w)
			w = strlen(rows[i].property);
	}
	if (!t->scripted) {
		for (j = 0; t->fields[j] != 0; j++) {
			int last = t->fields[j + 1] == 0;

			const char *h = t->fields[j] == F_PROPERTY ?
			    "PROPERTY" : "VALUE";

			if (last)
				(void) printf("%s", h);
			else
				(void) printf("%-*s  ", (int)w, h);
		}
		(void) printf("\n");
	}
	for (i = 0; i < n; i++) {
		char val[64];

		row_text(&rows[i], t->parsable, val, sizeof (val));
		for (j = 0; t->fields[j] != 0; j++) {
			int last = t->fields[j + 1] == 0;
			const char *s = t->fields[j] == F_PROPERTY ?
			    rows[i].property : val;

			if (t->scripted)
				(void) printf("%s%s", s, last ? "" : "\t");
			else if (last)
				(void) printf("%s", s);
			else
				(void) printf("%-*s  ", (int)w, s);
		}
		(void) printf("\n");
	}
}

static void
row_size(struct row *r, const char *property, const char *json,
    const char *path)
{
	r->property = property;
	r->is_size = 1;
	r->present = json_u64(json, path, &r->n) == 0;
	r->text[0] = '\0';
}

static void
row_string(struct row *r, const char *property, const char *json,
    const char *path)
{
	r->property = property;
	r->is_size = 0;
	r->n = 0;
	r->present = json_str(json, path, r->text, sizeof (r->text)) == 0;
}

/* ------------------------------------------------------------------ */
/* status                                                              */

/* Each row of status: its property, the report's path, a size or not. */
static const struct {
	const char	*property;
	const char	*path;
	int		is_size;
} status_rows[] = {
	{ "reservoir.size", "reservoir.size_bytes", 1 },
	{ "reservoir.free", "reservoir.free_bytes", 1 },
	{ "reservoir.allocated", "reservoir.allocated_bytes", 1 },
	{ "reservoir.transient", "reservoir.transient_allocated_bytes", 1 },
	{ "reservoir.limit", "reservoir.limit_bytes", 1 },
	{ "pending.reservoir", "reservoir.pending_claims_bytes", 1 },
	{ "pending.transient", "reservoir.pending_transient_claims_bytes", 1 },
	{ "pending.host", "host.pending_claims_bytes", 1 },
	{ "arc.size", "arc.size_bytes", 1 },
	{ "arc.target", "arc.target_bytes", 1 },
	{ "arc.floor", "arc.c_min_bytes", 1 },
	{ "arc.reserved", "arc.reserved_bytes", 1 },
	{ "memory.state", "memory_state.state", 0 },
	{ "memory.physical", "host.physmem_bytes", 1 },
	{ "memory.free", "host.free_bytes", 1 },
	{ "memory.min_free", "memory_state.min_free_bytes", 1 },
	{ "largest_vm.reservoir", "largest_vm.with_reservoir.guest_bytes", 1 },
	{ "largest_vm.reservoir.limited_by",
	    "largest_vm.with_reservoir.limited_by", 0 },
	{ "largest_vm.transient", "largest_vm.without_reservoir.guest_bytes",
	    1 },
	{ "largest_vm.transient.limited_by",
	    "largest_vm.without_reservoir.limited_by", 0 },
};

#define	NSTATUS	(sizeof (status_rows) / sizeof (status_rows[0]))
#define	MAX_PROFILES	8

static int
cmd_status(int argc, char **argv)
{
	struct table_opts t;
	struct row rows[NSTATUS + MAX_PROFILES];
	char names[MAX_PROFILES][64];
	char *json;
	size_t i, n = NSTATUS;
	int rc;

	if ((rc = table_options(argc, argv, &t)) != 0)
		return (rc);
	if ((json = get_report()) == NULL)
		return (EXIT_ERR);
	for (i = 0; i < NSTATUS; i++) {
		if (status_rows[i].is_size)
			row_size(&rows[i], status_rows[i].property, json,
			    status_rows[i].path);
		else
			row_string(&rows[i], status_rows[i].property, json,
			    status_rows[i].path);
	}
	/* Every row but the ARC's (null without ZFS) must be there. */
	for (i = 0; i < NSTATUS; i++) {
		if (!rows[i].present &&
		    strncmp(rows[i].property, "arc.", 4) != 0) {
			warnx_("the capacity report has no %s",
			    status_rows[i].path);
			free(json);
			return (EXIT_ERR);
		}
	}
	/* Then each sizing profile's reservoir size: "profile.<name>". */
	for (i = 0; i < MAX_PROFILES; i++) {
		char name[48];
		uint64_t v;

		if (json_profile(json, i, name, sizeof (name), &v) != 0)
			break;
		(void) snprintf(names[i], sizeof (names[i]), "profile.%s",
		    name);
		rows[n].property = names[i];
		rows[n].is_size = 1;
		rows[n].present = 1;
		rows[n].n = v;
		rows[n].text[0] = '\0';
		n++;
	}
	print_table(&t, rows, n);
	free(json);
	return (EXIT_OK);
}

/* ------------------------------------------------------------------ */
/* report                                                              */

static int
cmd_report(int argc, char **argv)
{
	int c, one_line = 0;
	char *json;

	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":j"))) != -1) {
		if (c == 'j')
			one_line = 1;
		else
			return (bad_option("unknown option -%s"));
	}
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	if ((json = get_report()) == NULL)
		return (EXIT_ERR);
	if (one_line)
		(void) printf("%s\n", json);
	else
		json_pretty(stdout, json);
	free(json);
	return (EXIT_OK);
}

/* ------------------------------------------------------------------ */
/* reconcile                                                           */

static int
cmd_reconcile(int argc, char **argv)
{
	struct table_opts t;
	vmmresv_reservoir *r;
	vmmresv_admission *adm;
	vmmresv_reconcile_report rep;
	vmmresv_status st;
	struct row rows[10];
	size_t i;
	int rc, dry_run = 0;

	if ((rc = table_options_flag(argc, argv, &t, OPTS(":nHpo:"), 'n',
	    &dry_run)) != 0)
		return (rc);
	if (open_host(&r, &adm) != 0)
		return (EXIT_ERR);
	/* -n: what a reconcile would change; nothing is written. */
	st = dry_run ? vmmresv_reconcile_dry_run(adm, &rep) :
	    vmmresv_reconcile(adm, &rep);
	if (st != VMMRESV_STATUS_OK) {
		rc = fail(dry_run ? "cannot read the admission ledger" :
		    "cannot reconcile the admission ledger", st);
		goto out;
	}
	{
		const struct {
			const char	*property;
			uint64_t	n;
			int		is_size;
		} v[10] = {
			{ "claims.live", rep.live_claims, 0 },
			{ "claims.reclaimed", rep.reclaimed_claims, 0 },
			{ "reclaimed", rep.reclaimed_bytes, 1 },
			{ "pending.reservoir.before",
			    rep.reservoir_claimed_before_bytes, 1 },
			{ "pending.reservoir.after",
			    rep.reservoir_claimed_after_bytes, 1 },
			{ "pending.transient.before",
			    rep.transient_claimed_before_bytes, 1 },
			{ "pending.transient.after",
			    rep.transient_claimed_after_bytes, 1 },
			{ "reservoir.size", rep.reservoir_size_bytes, 1 },
			{ "reservoir.free", rep.reservoir_free_bytes, 1 },
			{ "claims_beyond_free", rep.claims_beyond_free_bytes,
			    1 },
		};

		for (i = 0; i < 10; i++) {
			rows[i].property = v[i].property;
			rows[i].present = 1;
			rows[i].is_size = v[i].is_size;
			rows[i].n = v[i].n;
			(void) snprintf(rows[i].text, sizeof (rows[i].text),
			    "%" PRIu64, v[i].n);
		}
	}
	print_table(&t, rows, 10);
	if (rep.claims_beyond_free_bytes != 0) {
		char b[32];

		nicenum(rep.claims_beyond_free_bytes, b, sizeof (b));
		warnx_("warning: pending claims %s the reservoir's free "
		    "memory by %s: memory left the reservoir outside "
		    "admission", dry_run ? "would exceed" : "exceed", b);
	}
	rc = EXIT_OK;
out:
	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(r);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* resize                                                              */

static volatile sig_atomic_t interrupted = 0;

static void
on_interrupt(int sig)
{
	(void) sig;
	interrupted = 1;
}

struct progress {
	int		tty;		/* a bar, else plain lines */
	uint64_t	start;
	uint64_t	target;
	int		last_pct;	/* last percentage shown */
	int		last_decile;	/* last tenth shown as a line */
};

static int
percent(const struct progress *pr, uint64_t reached)
{
	uint64_t span, done;

	span = pr->target > pr->start ? pr->target - pr->start :
	    pr->start - pr->target;
	if (span == 0)
		return (100);
	if (pr->target > pr->start)
		done = reached > pr->start ? reached - pr->start : 0;
	else
		done = reached < pr->start ? pr->start - reached : 0;
	if (done >= span)
		return (100);
	/* Never 100 before the end. */
	return ((int)((double)done * 100.0 / (double)span) > 99 ? 99 :
	    (int)((double)done * 100.0 / (double)span));
}

#define	BAR_WIDTH	40

static void
show_progress(struct progress *pr, uint64_t reached, int final)
{
	char a[32], b[32];
	int pct = percent(pr, reached);

	nicenum(reached, a, sizeof (a));
	nicenum(pr->target, b, sizeof (b));
	if (pr->tty) {
		int i, fill = pct * BAR_WIDTH / 100;

		if (pct == pr->last_pct && !final)
			return;
		pr->last_pct = pct;
		(void) printf("\r[");
		for (i = 0; i < BAR_WIDTH; i++)
			(void) putchar(i < fill ? '#' : ' ');
		(void) printf("] %3d%%  %s of %s\033[K", pct, a, b);
		if (final)
			(void) putchar('\n');
		(void) fflush(stdout);
		return;
	}
	if (pct / 10 == pr->last_decile && !final)
		return;
	if (final && pct == pr->last_pct)
		return;
	pr->last_decile = pct / 10;
	pr->last_pct = pct;
	(void) printf("reservoir size %s of %s (%d%%)\n", a, b, pct);
	(void) fflush(stdout);
}

/*
 * The library calls this after each step the kernel interrupted (EINTR):
 * show where the resize stands; stop if the operator interrupted.
 */
static int
on_progress(uint64_t reached_bytes, uint64_t target_bytes, void *arg)
{
	struct progress *pr = arg;

	(void) target_bytes;
	show_progress(pr, reached_bytes, 0);
	return (interrupted ? 1 : 0);
}

/*
 * Parse a size operand: bytes with an optional binary unit ("12G"), or a
 * percentage of the kernel's limit.  0 on success.
 */
static int
parse_size_arg(const char *arg, int *is_percent)
{
	uint64_t v;
	size_t n = strlen(arg);

	*is_percent = n > 0 && arg[n - 1] == '%';
	return (vmmresv_size_parse(arg, *is_percent ? 1 : 0, &v) ==
	    VMMRESV_STATUS_OK ? 0 : -1);
}

static int
cmd_resize(int argc, char **argv)
{
	const char *chunk_arg = NULL, *size_arg;
	uint64_t chunk = 0, target, step, reached = VMMRESV_SIZE_UNKNOWN;
	uint64_t size;
	vmmresv_reservoir *r;
	vmmresv_query q;
	vmmresv_status st;
	struct progress pr;
	struct sigaction sa;
	char a[32], b[32];
	int c, pct, rc = EXIT_OK;

	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":c:"))) != -1) {
		switch (c) {
		case 'c':
			chunk_arg = optarg;
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (optind >= argc)
		return (bad_usage("%s", "resize: missing size"));
	if (optind + 1 < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind + 1]));
	size_arg = argv[optind];
	if (parse_size_arg(size_arg, &pct) != 0)
		return (bad_usage("invalid size '%s' (a size such as 64G, "
		    "or a percentage of the limit such as 75%%)", size_arg));
	if (chunk_arg != NULL &&
	    (vmmresv_size_parse(chunk_arg, 0, &chunk) != VMMRESV_STATUS_OK ||
	    chunk == 0 || chunk % VMMRESV_PAGESIZE != 0))
		return (bad_usage("invalid chunk '%s' (a nonzero multiple of "
		    "4K)", chunk_arg));

	if (open_host(&r, NULL) != 0)
		return (EXIT_ERR);
	if ((st = vmmresv_reservoir_query(r, &q)) != VMMRESV_STATUS_OK) {
		rc = fail("cannot query the reservoir", st);
		goto out;
	}
	size = q.free_bytes + q.alloc_bytes;
	st = vmmresv_size_parse(size_arg, pct ? q.limit_bytes : 0, &target);
	if (st == VMMRESV_STATUS_OK && pct)
		st = vmmresv_round_down(target, VMMRESV_PAGESIZE, &target);
	if (st != VMMRESV_STATUS_OK) {
		rc = fail("invalid size", st);
		goto out;
	}

	(void) memset(&sa, 0, sizeof (sa));
	sa.sa_handler = on_interrupt;
	(void) sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the kernel's resize stops (EINTR) and we stop. */
	(void) sigaction(SIGINT, &sa, NULL);
	(void) sigaction(SIGTERM, &sa, NULL);

	pr.tty = isatty(STDOUT_FILENO);
	pr.start = size;
	pr.target = target;
	pr.last_pct = -1;
	pr.last_decile = -1;
	nicenum(size, a, sizeof (a));
	nicenum(target, b, sizeof (b));
	(void) printf("resizing the reservoir from %s to %s\n", a, b);
	show_progress(&pr, size, 0);

	/*
	 * In steps of the chunk (1G by default), each a resize to the next
	 * size, so that the bar moves while the kernel works; the kernel's
	 * interruptions show through the progress callback.
	 */
	step = chunk != 0 ? chunk : DEFAULT_STEP;
	reached = size;
	/*
	 * A target beyond the limit would grow the reservoir step by step up
	 * to the limit and fail only then: let the library refuse it whole.
	 */
	if (target > size && (target > q.limit_bytes ||
	    q.alloc_transient_bytes > q.limit_bytes - target))
		step = target - size;
	while (reached != target && !interrupted) {
		uint64_t next;

		if (target > reached)
			next = target - reached > step ? reached + step :
			    target;
		else
			next = reached - target > step ? reached - step :
			    target;
		st = vmmresv_reservoir_resize(r, VMMRESV_RESIZE_TARGET, next,
		    chunk, 0, on_progress, &pr, &reached);
		if (st != VMMRESV_STATUS_OK)
			break;
		show_progress(&pr, reached, 0);
	}
	if (st == VMMRESV_STATUS_OK && interrupted)
		st = VMMRESV_STATUS_INTERRUPTED;
	if (st != VMMRESV_STATUS_OK) {
		if (pr.tty)
			(void) putchar('\n');
		rc = fail("cannot resize the reservoir", st);
		if (reached != VMMRESV_SIZE_UNKNOWN) {
			nicenum(reached, a, sizeof (a));
			warnx_("the reservoir's size is now %s (%" PRIu64
			    " bytes)", a, reached);
		}
		goto out;
	}
	show_progress(&pr, reached, 1);
out:
	vmmresv_reservoir_close(r);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* metrics                                                             */

static void
metric_head(const char *name, const char *help)
{
	(void) printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* One gauge with no labels, from the report; nothing if absent. */
static void
gauge(const char *json, const char *name, const char *help,
    const char *path)
{
	uint64_t v;

	if (json_u64(json, path, &v) != 0)
		return;
	metric_head(name, help);
	(void) printf("%s %" PRIu64 "\n", name, v);
}

static int
cmd_metrics(int argc, char **argv)
{
	static const char *const states[] = {
		"high", "soft", "hard", "low", "exhausted"
	};
	char *json, state[32], version[32], backend[32];
	uint64_t v;
	size_t i;
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":"))) != -1)
		return (bad_option("unknown option -%s"));
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	if ((json = get_report()) == NULL)
		return (EXIT_ERR);
	if (json_str(json, "memory_state.state", state, sizeof (state)) != 0 ||
	    json_str(json, "library_version", version, sizeof (version)) != 0 ||
	    json_str(json, "ledger.backend", backend, sizeof (backend)) != 0 ||
	    json_u64(json, "reservoir.size_bytes", &v) != 0) {
		warnx_("the capacity report lacks a figure metrics need");
		free(json);
		return (EXIT_ERR);
	}

	metric_head("vmmresv_info",
	    "The library's version and the kernel pool behind the reservoir.");
	(void) printf("vmmresv_info{version=\"%s\",backend=\"%s\"} 1\n",
	    version, backend);
	gauge(json, "vmmresv_reservoir_size_bytes",
	    "Size of the VMM reservoir (free plus allocated).",
	    "reservoir.size_bytes");
	gauge(json, "vmmresv_reservoir_free_bytes",
	    "Reservoir memory no VM holds.", "reservoir.free_bytes");
	gauge(json, "vmmresv_reservoir_allocated_bytes",
	    "Reservoir memory held by VMs.", "reservoir.allocated_bytes");
	gauge(json, "vmmresv_reservoir_transient_bytes",
	    "Memory of VMs running without the reservoir.",
	    "reservoir.transient_allocated_bytes");
	gauge(json, "vmmresv_reservoir_limit_bytes",
	    "The most reservoir plus transient memory can reach.",
	    "reservoir.limit_bytes");
	gauge(json, "vmmresv_reservoir_safe_max_bytes",
	    "The safe reservoir maximum (RFD 185 headroom).",
	    "headroom.safe_reservoir_max_bytes");
	gauge(json, "vmmresv_reservoir_recommended_target_bytes",
	    "The smaller of the default target and the safe maximum.",
	    "reservoir.recommended_target_bytes");

	metric_head("vmmresv_pending_claims_bytes",
	    "Memory claimed by admissions not yet committed, by pool.");
	{
		static const struct {
			const char *pool, *path;
		} pools[] = {
			{ "reservoir", "reservoir.pending_claims_bytes" },
			{ "transient",
			    "reservoir.pending_transient_claims_bytes" },
			{ "host", "host.pending_claims_bytes" },
		};

		for (i = 0; i < 3; i++) {
			if (json_u64(json, pools[i].path, &v) == 0)
				(void) printf("vmmresv_pending_claims_bytes"
				    "{pool=\"%s\"} %" PRIu64 "\n",
				    pools[i].pool, v);
		}
	}

	if (!json_null(json, "arc")) {
		gauge(json, "vmmresv_arc_size_bytes", "The ZFS ARC's size.",
		    "arc.size_bytes");
		gauge(json, "vmmresv_arc_target_bytes",
		    "The ARC target that follows from VM reservations.",
		    "arc.target_bytes");
		gauge(json, "vmmresv_arc_min_bytes",
		    "arc_c_min: the ARC never shrinks below it.",
		    "arc.c_min_bytes");
		gauge(json, "vmmresv_arc_max_bytes",
		    "arc_c_max: the ARC never grows above it.",
		    "arc.c_max_bytes");
		gauge(json, "vmmresv_arc_reserved_bytes",
		    "ARC room reserved for VMs.", "arc.reserved_bytes");
	}

	gauge(json, "vmmresv_memory_physical_bytes",
	    "Memory the kernel manages.", "host.physmem_bytes");
	gauge(json, "vmmresv_memory_free_bytes",
	    "Memory a new VM can have without reclaiming anything.",
	    "host.free_bytes");
	gauge(json, "vmmresv_memory_min_free_bytes",
	    "minFree: the free memory the high state needs.",
	    "memory_state.min_free_bytes");
	metric_head("vmmresv_memory_state",
	    "The host's memory state: 1 for the current one, else 0.");
	for (i = 0; i < sizeof (states) / sizeof (states[0]); i++)
		(void) printf("vmmresv_memory_state{state=\"%s\"} %d\n",
		    states[i], strcmp(states[i], state) == 0);

	metric_head("vmmresv_profile_target_bytes",
	    "The reservoir size each sizing profile gives (-F sets shares).");
	for (i = 0; i < 8; i++) {
		char name[48];

		if (json_profile(json, i, name, sizeof (name), &v) != 0)
			break;
		(void) printf("vmmresv_profile_target_bytes{profile=\"%s\"} %"
		    PRIu64 "\n", name, v);
	}

	metric_head("vmmresv_largest_vm_bytes",
	    "Guest memory of the largest VM that can start now, by pool.");
	if (json_u64(json, "largest_vm.with_reservoir.guest_bytes", &v) == 0)
		(void) printf("vmmresv_largest_vm_bytes{pool=\"reservoir\"} %"
		    PRIu64 "\n", v);
	if (json_u64(json, "largest_vm.without_reservoir.guest_bytes",
	    &v) == 0)
		(void) printf("vmmresv_largest_vm_bytes{pool=\"transient\"} %"
		    PRIu64 "\n", v);
	free(json);
	return (EXIT_OK);
}

/* ------------------------------------------------------------------ */
/* claims                                                              */

/*
 * Column tables (claims, arc list): one line per item, the fields chosen
 * with -o from a list of column definitions (index 0 unused).
 */
struct column {
	const char	*name;	/* for -o */
	const char	*head;	/* the header */
};

#define	MAX_COLUMNS	16
#define	CELL_LEN	1100	/* the longest cell: a check path of 1024 */

/*
 * Parse -o's list against `cols` (1..ncols) into `fields` (ended by 0).
 * 0, or EXIT_USAGE (reported).
 */
static int
parse_columns(const char *arg, const struct column *cols, int ncols,
    int *fields)
{
	char copy[256];
	char *tok, *save = NULL;
	int nf = 0;

	(void) snprintf(copy, sizeof (copy), "%s", arg);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		int f;

		for (f = 1; f <= ncols; f++) {
			if (strcmp(tok, cols[f].name) == 0)
				break;
		}
		if (f > ncols || nf >= MAX_COLUMNS - 1)
			return (bad_usage("invalid field '%s' for -o", tok));
		fields[nf++] = f;
	}
	if (nf == 0)
		return (bad_usage("invalid field '%s' for -o", arg));
	fields[nf] = 0;
	return (0);
}

/* Formats item `i`'s field `f` into buf. */
typedef void (*cell_fn)(size_t i, int f, char *buf, size_t len, void *arg);

/*
 * Print `n` items, columns aligned (or tab-separated when `scripted`,
 * with no header).
 */
static void
print_columns(const struct column *cols, const int *fields, int scripted,
    size_t n, cell_fn cell, void *arg)
{
	size_t width[MAX_COLUMNS], i;
	char b[CELL_LEN];
	int j, nf;

	for (nf = 0; fields[nf] != 0; nf++)
		width[nf] = strlen(cols[fields[nf]].head);
	for (i = 0; i < n; i++) {
		for (j = 0; j < nf; j++) {
			cell(i, fields[j], b, sizeof (b), arg);
			if (strlen(b) > width[j])
				width[j] = strlen(b);
		}
	}
	if (!scripted) {
		for (j = 0; j < nf; j++) {
			if (j + 1 == nf)
				(void) printf("%s\n", cols[fields[j]].head);
			else
				(void) printf("%-*s  ", (int)width[j],
				    cols[fields[j]].head);
		}
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < nf; j++) {
			cell(i, fields[j], b, sizeof (b), arg);
			if (j + 1 == nf)
				(void) printf("%s\n", b);
			else if (scripted)
				(void) printf("%s\t", b);
			else
				(void) printf("%-*s  ", (int)width[j], b);
		}
	}
}

/* One of the library's list functions (needed-size protocol). */
typedef vmmresv_status (*fetch_fn)(void *handle, void *buf, size_t n,
    size_t *count);

/*
 * A list from `fetch` into a buffer this allocates (*list, which the
 * caller frees): asked again while it does not fit, since the number can
 * change between two calls.  0, or EXIT_ERR (reported with `what`).
 */
static int
fetch_list(fetch_fn fetch, void *handle, size_t size, void **list,
    size_t *count, const char *what)
{
	vmmresv_status st = VMMRESV_STATUS_OK;
	size_t n = 0;
	int tries;

	for (tries = 0; tries < 8; tries++) {
		void *nl;

		st = fetch(handle, *list, n, count);
		if (st != VMMRESV_STATUS_BUFFER_TOO_SMALL)
			break;
		n = *count + 8;
		if ((nl = realloc(*list, n * size)) == NULL) {
			warnx_("out of memory");
			return (EXIT_ERR);
		}
		*list = nl;
	}
	return (st == VMMRESV_STATUS_OK ? 0 : fail(what, st));
}

static vmmresv_status
claims_fetch(void *h, void *buf, size_t n, size_t *count)
{
	return (vmmresv_claims_list(h, buf, n, count));
}

static vmmresv_status
holds_fetch(void *h, void *buf, size_t n, size_t *count)
{
	return (vmmresv_arc_list(h, buf, n, count));
}

#define	C_UUID	1
#define	C_POOL	2
#define	C_SIZE	3
#define	C_AGE	4
#define	C_STATE	5
#define	C_HELD	6
#define	C_PID	7
#define	C_ZONE	8
#define	C_MAX	8

static const struct column claim_fields[C_MAX + 1] = {
	{ NULL, NULL },
	{ "uuid", "UUID" },
	{ "pool", "POOL" },
	{ "size", "SIZE" },
	{ "age", "AGE" },
	{ "state", "STATE" },
	{ "held", "HELD" },
	{ "pid", "PID" },
	{ "zone", "ZONE" },
};

static const char *
claim_pool_name(uint32_t pool)
{
	switch (pool) {
	case VMMRESV_CLAIM_POOL_RESERVOIR:
		return ("reservoir");
	case VMMRESV_CLAIM_POOL_TRANSIENT:
		return ("transient");
	case VMMRESV_CLAIM_POOL_ARC:
		return ("arc");
	case VMMRESV_CLAIM_POOL_HOST:
		return ("host");
	default:
		return ("unknown");
	}
}

static const char *
claim_state_name(uint32_t state)
{
	switch (state) {
	case VMMRESV_CLAIM_RESERVING:
		return ("reserving");
	case VMMRESV_CLAIM_CLAIMED:
		return ("claimed");
	case VMMRESV_CLAIM_RELEASING:
		return ("releasing");
	default:
		return ("unknown");
	}
}

/* An age for people: "42s", "5m07s", "3h05m", "2d04h". */
static void
nice_age(uint64_t s, char *buf, size_t len)
{
	if (s < 60)
		(void) snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		(void) snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s",
		    s / 60, s % 60);
	else if (s < 86400)
		(void) snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m",
		    s / 3600, (s % 3600) / 60);
	else
		(void) snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h",
		    s / 86400, (s % 86400) / 3600);
}

struct claims_view {
	const vmmresv_claim_info	*list;
	int				parsable;
	uint64_t			now;
};

static void
claim_field(size_t i, int f, char *buf, size_t len, void *arg)
{
	const struct claims_view *v = arg;
	const vmmresv_claim_info *c = &v->list[i];
	int parsable = v->parsable;
	uint64_t age = v->now > c->claimed_at ? v->now - c->claimed_at : 0;

	switch (f) {
	case C_UUID:
		(void) snprintf(buf, len, "%.36s", c->vm_uuid);
		break;
	case C_POOL:
		(void) snprintf(buf, len, "%s", claim_pool_name(c->pool));
		break;
	case C_SIZE:
		if (parsable)
			(void) snprintf(buf, len, "%" PRIu64, c->bytes);
		else
			nicenum(c->bytes, buf, len);
		break;
	case C_AGE:
		if (parsable)
			(void) snprintf(buf, len, "%" PRIu64, age);
		else
			nice_age(age, buf, len);
		break;
	case C_STATE:
		(void) snprintf(buf, len, "%s", claim_state_name(c->state));
		break;
	case C_HELD:
		/* A durable ARC reservation needs no holder. */
		(void) snprintf(buf, len, "%s", c->durable ? "durable" :
		    c->held ? "yes" : "no");
		break;
	case C_PID:
		(void) snprintf(buf, len, "%" PRIu32, c->taker_pid);
		break;
	default:
		(void) snprintf(buf, len, "%" PRIu64, c->zone_id);
		break;
	}
}

static int
cmd_claims(int argc, char **argv)
{
	int fields[MAX_COLUMNS] = { C_UUID, C_POOL, C_SIZE, C_AGE, C_STATE,
	    C_HELD, C_PID, C_ZONE, 0 };
	int scripted = 0, parsable = 0, c, rc;
	size_t count = 0;
	vmmresv_claim_info *list = NULL;
	void *buf = NULL;
	vmmresv_reservoir *r;
	vmmresv_admission *adm;
	struct claims_view view;

	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":Hpo:"))) != -1) {
		switch (c) {
		case 'H':
			scripted = 1;
			break;
		case 'p':
			parsable = 1;
			break;
		case 'o':
			if ((rc = parse_columns(optarg, claim_fields, C_MAX,
			    fields)) != 0)
				return (rc);
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	if (open_host(&r, &adm) != 0)
		return (EXIT_ERR);
	rc = fetch_list(claims_fetch, adm, sizeof (*list), &buf, &count, "cannot list the claims");
	list = buf;
	if (rc != 0)
		goto out;
	view.list = list;
	view.parsable = parsable;
	view.now = (uint64_t)time(NULL);
	print_columns(claim_fields, fields, scripted, count, claim_field,
	    &view);
	rc = EXIT_OK;
out:
	free(list);
	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(r);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* check                                                               */

/* A VM UUID in its canonical text: 8-4-4-4-12 hex digits. */
static int
uuid_ok(const char *u)
{
	size_t i;

	if (strlen(u) != 36)
		return (0);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return (0);
		} else if (!isxdigit((unsigned char)u[i])) {
			return (0);
		}
	}
	return (1);
}

static int
cmd_check(int argc, char **argv)
{
	struct table_opts t;
	const char *bad = NULL, *model = NULL;
	uint32_t pref = VMMRESV_RESERVOIR_PREFER, vcpus = 1, kind = 0;
	vmmresv_reservoir *r;
	vmmresv_admission *adm;
	vmmresv_host_memory host;
	vmmresv_arc_host arc;
	vmmresv_policy policy;
	vmmresv_vm vm;
	vmmresv_vm_decision d;
	vmmresv_status st;
	struct row rows[18];
	size_t i;
	int c, rc, have_arc;
	char *end;

	t.scripted = 0;
	t.parsable = 0;
	t.fields[0] = F_PROPERTY;
	t.fields[1] = F_VALUE;
	t.fields[2] = 0;
	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":P:M:c:Hpo:"))) != -1) {
		switch (c) {
		case 'P':
			if (strcmp(optarg, "require") == 0)
				pref = VMMRESV_RESERVOIR_REQUIRE;
			else if (strcmp(optarg, "prefer") == 0)
				pref = VMMRESV_RESERVOIR_PREFER;
			else if (strcmp(optarg, "never") == 0)
				pref = VMMRESV_RESERVOIR_NEVER;
			else
				return (bad_usage("invalid preference '%s' "
				    "(require, prefer or never)", optarg));
			break;
		case 'M':
			model = optarg;
			break;
		case 'c': {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !isdigit((unsigned char)optarg[0]) ||
			    v > UINT32_MAX)
				return (bad_usage("invalid vCPU count '%s'",
				    optarg));
			vcpus = (uint32_t)v;
			break;
		}
		case 'H':
			t.scripted = 1;
			break;
		case 'p':
			t.parsable = 1;
			break;
		case 'o':
			if (parse_fields(optarg, &t, &bad) != 0)
				return (bad_usage("invalid field '%s' for -o",
				    bad));
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (argc - optind < 2)
		return (bad_usage("%s", "check needs a VM UUID and a size"));
	if (argc - optind > 2)
		return (bad_usage("unexpected operand '%s'",
		    argv[optind + 2]));
	if (!uuid_ok(argv[optind]))
		return (bad_usage("invalid VM UUID '%s'", argv[optind]));
	(void) memset(&vm, 0, sizeof (vm));
	vm.vcpus = vcpus;
	if (vmmresv_size_parse(argv[optind + 1], 0, &vm.guest_bytes) !=
	    VMMRESV_STATUS_OK || vm.guest_bytes == 0)
		return (bad_usage("invalid size '%s'", argv[optind + 1]));
	if (model != NULL) {
		/* By the library's own names: "fixed", "vmadm", ... */
		for (kind = 1; kind < 64; kind++) {
			if (strcmp(vmmresv_overhead_model_name(kind), model) ==
			    0)
				break;
		}
		if (kind == 64)
			return (bad_usage("unknown overhead model '%s'",
			    model));
	}
	if (read_host(&host) != 0 || read_arc(&arc, &have_arc) != 0)
		return (EXIT_ERR);
	if (open_host(&r, &adm) != 0)
		return (EXIT_ERR);
	if (model != NULL) {
		(void) vmmresv_policy_default(&policy);
		policy.overhead_model = kind;
		if ((st = vmmresv_admission_set_policy(adm, &policy)) !=
		    VMMRESV_STATUS_OK) {
			rc = fail("cannot set the policy", st);
			goto out;
		}
	}
	if (have_arc &&
	    (st = vmmresv_admission_set_arc(adm, &arc)) != VMMRESV_STATUS_OK) {
		rc = fail("cannot use the ARC's statistics", st);
		goto out;
	}
	st = vmmresv_admit_vm_check(adm, argv[optind], &vm, pref, &host, &d);
	if (st != VMMRESV_STATUS_OK) {
		rc = fail("cannot check the admission", st);
		goto out;
	}
	{
		const struct {
			const char	*property;
			const char	*text;
			uint64_t	n;
		} v[18] = {
			{ "decision",
			    vmmresv_decision_name(d.decision.decision), 0 },
			{ "reason", vmmresv_reason_name(d.decision.reason), 0 },
			{ "charged", NULL, d.decision.charged_bytes },
			{ "shortfall", NULL, d.decision.shortfall_bytes },
			{ "reservoir.free", NULL, d.decision.free_bytes },
			{ "pending", NULL, d.decision.pending_bytes },
			{ "guest", NULL, d.guest_bytes },
			{ "page_t", NULL, d.page_t_bytes },
			{ "overhead", NULL, d.overhead_bytes },
			{ "overhead.model",
			    vmmresv_overhead_model_name(d.overhead_model), 0 },
			{ "host", NULL, d.host_bytes },
			{ "memory.free", NULL, d.free_bytes },
			{ "arc.shrink", NULL, d.arc_shrink_bytes },
			{ "pending.host", NULL, d.pending_bytes },
			{ "memory.free_after", NULL, d.free_after_bytes },
			{ "memory.state_after",
			    vmmresv_memory_state_name(d.state_after), 0 },
			{ "memory.floor",
			    vmmresv_memory_state_name(d.floor_state), 0 },
			{ "memory.floor_bytes", NULL, d.floor_bytes },
		};

		for (i = 0; i < 18; i++) {
			rows[i].property = v[i].property;
			rows[i].present = 1;
			rows[i].is_size = v[i].text == NULL;
			rows[i].n = v[i].n;
			(void) snprintf(rows[i].text, sizeof (rows[i].text),
			    "%s", v[i].text != NULL ? v[i].text : "");
		}
	}
	print_table(&t, rows, 18);
	rc = EXIT_OK;
out:
	vmmresv_admission_close(adm);
	vmmresv_reservoir_close(r);
	return (rc);
}

/*
 * -F profile=share: a profile by its library name, its share as a
 * percentage with up to 15 decimals ("86.3%") or numerator/denominator
 * ("8630/10000").  0, or -1 if malformed.
 */
static int
parse_share(const char *arg)
{
	const char *eq = strchr(arg, '='), *p;
	uint32_t profile;
	uint64_t num = 0, den = 1;
	int digits = 0, decimals = -1;
	char name[32];

	if (eq == NULL || (size_t)(eq - arg) >= sizeof (name) ||
	    nshares >= MAX_SHARES)
		return (-1);
	(void) memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	for (profile = 1; profile < 64; profile++) {
		if (strcmp(vmmresv_profile_name(profile), name) == 0)
			break;
	}
	if (profile == 64)
		return (-1);
	p = eq + 1;
	if (strchr(p, '/') != NULL) {
		char *end;

		if (!isdigit((unsigned char)*p))
			return (-1);
		errno = 0;
		num = strtoull(p, &end, 10);
		if (errno != 0 || *end != '/' ||
		    !isdigit((unsigned char)end[1]))
			return (-1);
		p = end + 1;
		den = strtoull(p, &end, 10);
		if (errno != 0 || *end != '\0')
			return (-1);
	} else {
		/* Digits, at most one '.', then '%': exact as num / den. */
		den = 100;
		for (; *p != '%'; p++) {
			if (*p == '.' && decimals < 0) {
				decimals = 0;
				continue;
			}
			if (!isdigit((unsigned char)*p) || digits >= 17)
				return (-1);
			num = num * 10 + (uint64_t)(*p - '0');
			digits++;
			if (decimals >= 0) {
				decimals++;
				den *= 10;
			}
		}
		if (digits == 0 || p[1] != '\0' || decimals == 0)
			return (-1);
	}
	/* The library refuses a zero denominator or a share above 1. */
	shares[nshares].profile = profile;
	shares[nshares].num = num;
	shares[nshares].den = den;
	nshares++;
	return (0);
}

/* ------------------------------------------------------------------ */
/* arc                                                                 */

/* Append a size row (a property whose value is bytes). */
static void
arc_row(struct row *rows, size_t *n, const char *property, uint64_t v)
{
	struct row *r = &rows[(*n)++];

	r->property = property;
	r->is_size = 1;
	r->present = 1;
	r->n = v;
	r->text[0] = '\0';
}

/* Parse a size operand of -r or -a; `zero_ok` if 0 is allowed. */
static int
arc_size_opt(const char *arg, int zero_ok, uint64_t *out)
{
	return (vmmresv_size_parse(arg, 0, out) == VMMRESV_STATUS_OK &&
	    (zero_ok || *out != 0) ? 0 : -1);
}

/* -l ledger of the arc subcommands: NULL for the run directory's. */
static const char *arc_ledger = NULL;

/*
 * Parse [-Hp] [-o field[,...]] [-l ledger], and the verb's own option
 * `-<extra> value` when `extra` is not 0 (its value in *extra_arg), and
 * exactly `nops` operands (returned in *ops).  0, or EXIT_USAGE
 * (reported).
 */
static int
arc_verb_options(int argc, char **argv, struct table_opts *t, int nops,
    char ***ops, int extra, const char **extra_arg)
{
	const char *bad = NULL;
	char optstring[16];
	int c;

	(void) snprintf(optstring, sizeof (optstring), "%s:Hpo:l:%s",
	    OPTS(""), extra != 0 ? "X:" : "");
	if (extra != 0)
		optstring[strlen(optstring) - 2] = (char)extra;
	t->scripted = 0;
	t->parsable = 0;
	t->fields[0] = F_PROPERTY;
	t->fields[1] = F_VALUE;
	t->fields[2] = 0;
	optind = 1;
	while ((c = getopt(argc, argv, optstring)) != -1) {
		if (extra != 0 && c == extra) {
			*extra_arg = optarg;
			continue;
		}
		switch (c) {
		case 'H':
			t->scripted = 1;
			break;
		case 'p':
			t->parsable = 1;
			break;
		case 'o':
			if (parse_fields(optarg, t, &bad) != 0)
				return (bad_usage("invalid field '%s' for -o",
				    bad));
			break;
		case 'l':
			arc_ledger = optarg;
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (argc - optind > nops)
		return (bad_usage("unexpected operand '%s'",
		    argv[optind + nops]));
	if (argc - optind < nops)
		return (bad_usage("%s", "missing operand"));
	*ops = argv + optind;
	return (0);
}

/* A count of seconds for -g or -w: 0 to `max`.  0, or -1. */
static int
seconds_arg(const char *arg, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	if (arg[0] < '0' || arg[0] > '9')
		return (-1);
	*out = strtoul(arg, &end, 10);
	return (errno != 0 || *end != '\0' || *out > max ? -1 : 0);
}

/* Open the ARC handle on the ledger of -l (or the run directory's). */
static int
arc_open_handle(vmmresv_arc **a)
{
	vmmresv_status st = vmmresv_arc_open(arc_ledger, a);

	if (st != VMMRESV_STATUS_OK)
		return (fail(arc_ledger != NULL ? arc_ledger :
		    "cannot open the ledger", st));
	return (0);
}

/* The ARC's figures, which a hold and a target need. */
static int
arc_host_needed(vmmresv_arc_host *arc)
{
	int rc, have = 0;

	if ((rc = read_arc(arc, &have)) != 0)
		return (rc);
	if (!have) {
		warnx_("no ZFS ARC on this host");
		return (EXIT_ERR);
	}
	return (0);
}

static void
text_row(struct row *rows, size_t *n, const char *property, const char *v)
{
	struct row *r = &rows[(*n)++];

	r->property = property;
	r->is_size = 0;
	r->present = 1;
	r->n = 0;
	(void) snprintf(r->text, sizeof (r->text), "%s", v);
}

static void
count_row(struct row *rows, size_t *n, const char *property, uint64_t v)
{
	char b[32];

	(void) snprintf(b, sizeof (b), "%" PRIu64, v);
	text_row(rows, n, property, b);
}

/*
 * arc hold [-Hp] [-o field[,...]] [-l ledger] uuid size check-path: a
 * durable reservation for the VM, lasting until `arc drop` or until
 * check-path is gone (past the grace) at an `arc reconcile`.  Exit status
 * 3 when the guard refuses it.
 */
static int
arc_hold(int argc, char **argv)
{
	struct table_opts t;
	vmmresv_arc_host arc;
	vmmresv_arc_reservation res;
	vmmresv_arc *a;
	vmmresv_status st;
	struct row rows[8];
	size_t n = 0;
	uint64_t size;
	char **ops;
	int rc;

	if ((rc = arc_verb_options(argc, argv, &t, 3, &ops, 0, NULL)) != 0)
		return (rc);
	if (!uuid_ok(ops[0]))
		return (bad_usage("invalid UUID '%s'", ops[0]));
	if (vmmresv_size_parse(ops[1], 0, &size) != VMMRESV_STATUS_OK ||
	    size == 0)
		return (bad_usage("invalid size '%s'", ops[1]));
	if (ops[2][0] != '/')
		return (bad_usage("the check path '%s' must be absolute",
		    ops[2]));
	if ((rc = arc_host_needed(&arc)) != 0)
		return (rc);
	if ((rc = arc_open_handle(&a)) != 0)
		return (rc);
	st = vmmresv_arc_hold(a, ops[0], ops[2], size, &arc, &res);
	vmmresv_arc_free(a);
	if (st != VMMRESV_STATUS_OK)
		return (fail("cannot reserve ARC room", st));
	text_row(rows, &n, "hold.reserved", res.reserved ? "yes" : "no");
	text_row(rows, &n, "hold.already", res.already ? "yes" : "no");
	arc_row(rows, &n, "hold.size", res.bytes);
	arc_row(rows, &n, "hold.shortfall", res.shortfall_bytes);
	arc_row(rows, &n, "arc.reserved", res.total_reserved_bytes);
	arc_row(rows, &n, "arc.target", res.target_bytes);
	print_table(&t, rows, n);
	if (res.reserved && res.already && res.bytes < size) {
		char held[32], asked[32];

		nicenum(res.bytes, held, sizeof (held));
		nicenum(size, asked, sizeof (asked));
		warnx_("%s already holds %s, less than the %s asked: drop it "
		    "first to change its size", ops[0], held, asked);
		return (EXIT_REFUSED);
	}
	return (res.reserved ? EXIT_OK : EXIT_REFUSED);
}

/* arc drop [-Hp] [-o field[,...]] [-l ledger] uuid */
static int
arc_drop(int argc, char **argv)
{
	struct table_opts t;
	vmmresv_arc *a;
	vmmresv_status st;
	struct row rows[2];
	size_t n = 0;
	uint64_t released = 0;
	char **ops;
	int rc;

	if ((rc = arc_verb_options(argc, argv, &t, 1, &ops, 0, NULL)) != 0)
		return (rc);
	if (!uuid_ok(ops[0]))
		return (bad_usage("invalid UUID '%s'", ops[0]));
	if ((rc = arc_open_handle(&a)) != 0)
		return (rc);
	st = vmmresv_arc_drop(a, ops[0], &released);
	vmmresv_arc_free(a);
	if (st != VMMRESV_STATUS_OK)
		return (fail("cannot release the reservation", st));
	arc_row(rows, &n, "drop.released", released);
	print_table(&t, rows, n);
	return (EXIT_OK);
}

/* arc reconcile [-Hp] [-o field[,...]] [-l ledger] [-g grace-seconds] */
static int
arc_reconcile(int argc, char **argv)
{
	struct table_opts t;
	vmmresv_arc_reconcile_report rep;
	vmmresv_arc *a;
	vmmresv_status st;
	struct row rows[8];
	size_t n = 0;
	uint32_t grace = VMMRESV_ARC_GRACE_DEFAULT;
	const char *grace_arg = NULL;
	char **ops;
	int rc;

	if ((rc = arc_verb_options(argc, argv, &t, 0, &ops, 'g', &grace_arg)) !=
	    0)
		return (rc);
	if (grace_arg != NULL) {
		unsigned long g;

		if (seconds_arg(grace_arg, UINT32_MAX, &g) != 0)
			return (bad_usage("invalid grace '%s' for -g (seconds)",
			    grace_arg));
		grace = (uint32_t)g;
	}
	if ((rc = arc_open_handle(&a)) != 0)
		return (rc);
	st = vmmresv_arc_reconcile(a, grace, &rep);
	vmmresv_arc_free(a);
	if (st != VMMRESV_STATUS_OK)
		return (fail("cannot reconcile the ARC reservations", st));
	count_row(rows, &n, "durable.kept", rep.kept);
	count_row(rows, &n, "durable.unknown", rep.unknown);
	count_row(rows, &n, "durable.freed", rep.freed);
	arc_row(rows, &n, "durable.freed_size", rep.freed_bytes);
	count_row(rows, &n, "dead.reclaimed", rep.reclaimed_claims);
	arc_row(rows, &n, "dead.reclaimed_size", rep.reclaimed_bytes);
	arc_row(rows, &n, "arc.reserved", rep.reserved_after_bytes);
	print_table(&t, rows, n);
	return (EXIT_OK);
}

enum { H_UUID = 1, H_SIZE, H_AGE, H_KIND, H_VM, H_PID, H_CHECK, H_MAX = H_CHECK };

static const struct column hold_fields[H_MAX + 1] = {
	{ NULL, NULL },
	{ "uuid", "UUID" },
	{ "size", "SIZE" },
	{ "age", "AGE" },
	{ "kind", "KIND" },
	{ "vm", "VM" },
	{ "pid", "PID" },
	{ "check", "CHECK" },
};

static const char *
hold_vm_name(uint32_t s)
{
	switch (s) {
	case VMMRESV_ARC_VM_PROCESS:
		return ("-");
	case VMMRESV_ARC_VM_PRESENT:
		return ("present");
	case VMMRESV_ARC_VM_GONE:
		return ("gone");
	default:
		return ("unknown");
	}
}

struct holds_view {
	const vmmresv_arc_hold_info	*list;
	int				parsable;
	uint64_t			now;
};

static void
hold_field(size_t i, int f, char *buf, size_t len, void *arg)
{
	const struct holds_view *v = arg;
	const vmmresv_arc_hold_info *h = &v->list[i];
	int parsable = v->parsable;
	uint64_t age = v->now > h->reserved_at ? v->now - h->reserved_at : 0;

	switch (f) {
	case H_UUID:
		(void) snprintf(buf, len, "%.36s", h->vm_uuid);
		break;
	case H_SIZE:
		if (parsable)
			(void) snprintf(buf, len, "%" PRIu64, h->bytes);
		else
			nicenum(h->bytes, buf, len);
		break;
	case H_AGE:
		if (parsable)
			(void) snprintf(buf, len, "%" PRIu64, age);
		else
			nice_age(age, buf, len);
		break;
	case H_KIND:
		(void) snprintf(buf, len, "%s", h->durable ? "durable" :
		    "process");
		break;
	case H_VM:
		(void) snprintf(buf, len, "%s", hold_vm_name(h->vm_state));
		break;
	case H_PID:
		(void) snprintf(buf, len, "%" PRIu32, h->taker_pid);
		break;
	default:
		(void) snprintf(buf, len, "%s", h->vm_check_path[0] != '\0' ?
		    h->vm_check_path : "-");
		break;
	}
}

/* arc list [-Hp] [-o field[,...]] [-l ledger]: every ARC reservation. */
static int
arc_list(int argc, char **argv)
{
	int fields[MAX_COLUMNS] = { H_UUID, H_SIZE, H_AGE, H_KIND, H_VM, H_PID,
	    H_CHECK, 0 };
	int scripted = 0, parsable = 0, c, rc;
	size_t count = 0;
	vmmresv_arc_hold_info *list = NULL;
	void *buf = NULL;
	vmmresv_arc *a;
	struct holds_view view;

	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":Hpo:l:"))) != -1) {
		switch (c) {
		case 'H':
			scripted = 1;
			break;
		case 'p':
			parsable = 1;
			break;
		case 'l':
			arc_ledger = optarg;
			break;
		case 'o':
			if ((rc = parse_columns(optarg, hold_fields, H_MAX,
			    fields)) != 0)
				return (rc);
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	if ((rc = arc_open_handle(&a)) != 0)
		return (rc);
	rc = fetch_list(holds_fetch, a, sizeof (*list), &buf, &count, "cannot list the ARC reservations");
	list = buf;
	if (rc != 0)
		goto out;
	view.list = list;
	view.parsable = parsable;
	view.now = (uint64_t)time(NULL);
	print_columns(hold_fields, fields, scripted, count, hold_field, &view);
	rc = EXIT_OK;
out:
	free(list);
	vmmresv_arc_free(a);
	return (rc);
}

static int
on_arc_progress(uint64_t arc_size, uint64_t goal, void *arg)
{
	(void) arg;
	if (isatty(STDERR_FILENO))
		(void) fprintf(stderr, "\rARC %" PRIu64 " MiB, goal %" PRIu64
		    " MiB ", arc_size >> 20, goal >> 20);
	return (interrupted ? 1 : 0);
}

/*
 * arc apply [-Hp] [-o field[,...]] [-l ledger] [-w seconds]: make Linux
 * OpenZFS's zfs_arc_max follow the reservations (under the -R root), and
 * with -w wait up to that long for the ARC to shrink to the target.
 */
static int
arc_apply(int argc, char **argv)
{
	struct table_opts t;
	vmmresv_arc_host arc;
	vmmresv_arc *a;
	vmmresv_status st;
	struct row rows[6];
	size_t n = 0;
	uint64_t written = 0, target = 0, resv = 0, size = 0;
	unsigned long wait_s = 0;
	const char *wait_arg = NULL;
	int rc, waiting = 0;
	char **ops;

	if ((rc = arc_verb_options(argc, argv, &t, 0, &ops, 'w', &wait_arg)) !=
	    0)
		return (rc);
	if (wait_arg != NULL) {
		if (seconds_arg(wait_arg, 86400, &wait_s) != 0)
			return (bad_usage("invalid wait '%s' for -w (seconds, "
			    "at most 86400)", wait_arg));
		waiting = 1;
	}
	if ((rc = arc_host_needed(&arc)) != 0)
		return (rc);
	if ((rc = arc_open_handle(&a)) != 0)
		return (rc);
	st = vmmresv_arc_apply(a, root_dir, &arc, &written);
	if (st == VMMRESV_STATUS_OK)
		st = vmmresv_arc_target(a, &arc, &target, &resv);
	vmmresv_arc_free(a);
	if (st == VMMRESV_STATUS_UNSUPPORTED) {
		warnx_("no reservation is left, but zfs_arc_max was 0 (the "
		    "module's default) before the first one, which OpenZFS "
		    "cannot take back while loaded: the limit stays until the "
		    "zfs module is reloaded");
		return (EXIT_ERR);
	}
	if (st != VMMRESV_STATUS_OK)
		return (fail("cannot apply the ARC target", st));
	arc_row(rows, &n, "arc.reserved", resv);
	arc_row(rows, &n, "arc.target", target);
	rows[n].property = "zfs_arc_max.written";
	rows[n].is_size = 1;
	rows[n].present = written != 0;
	rows[n].n = written;
	rows[n].text[0] = '\0';
	n++;
	if (waiting && resv != 0) {
		uint64_t goal = target + arc.slack_bytes;
		struct sigaction sa;

		(void) memset(&sa, 0, sizeof (sa));
		sa.sa_handler = on_interrupt;
		(void) sigemptyset(&sa.sa_mask);
		(void) sigaction(SIGINT, &sa, NULL);
		(void) sigaction(SIGTERM, &sa, NULL);
		st = vmmresv_arc_wait_linux(root_dir, goal,
		    (uint32_t)(wait_s * 1000), on_arc_progress, NULL, &size);
		if (isatty(STDERR_FILENO))
			(void) fprintf(stderr, "\n");
		arc_row(rows, &n, "arc.size", size);
		text_row(rows, &n, "wait", st == VMMRESV_STATUS_OK ?
		    "reached" : st == VMMRESV_STATUS_TIMEOUT ? "timeout" :
		    st == VMMRESV_STATUS_INTERRUPTED ? "interrupted" :
		    "failed");
		print_table(&t, rows, n);
		if (st != VMMRESV_STATUS_OK)
			return (fail("the ARC did not reach its target", st));
		return (EXIT_OK);
	}
	print_table(&t, rows, n);
	return (EXIT_OK);
}

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
} arc_verbs[] = {
	{ "hold", arc_hold },
	{ "drop", arc_drop },
	{ "reconcile", arc_reconcile },
	{ "list", arc_list },
	{ "apply", arc_apply },
};

/*
 * arc [-Hp] [-o field[,...]] [-m memstat-file] [-r request [-a reserved]]:
 * the ARC's figures, where the pages are (::memstat, whose budget then
 * becomes the ceiling), and the arc_c_min guard's verdict on a request
 * when all VMs hold `reserved` (no ledger: the guard alone).
 */
static int
cmd_arc(int argc, char **argv)
{
	struct table_opts t;
	const char *memstat = NULL, *bad = NULL;
	uint64_t request = 0, reserved = 0;
	vmmresv_arc_host arc;
	vmmresv_memstat ms;
	vmmresv_arc_guard g;
	vmmresv_arc *ah = NULL;
	vmmresv_status st;
	struct row rows[24];
	size_t n = 0;
	int c, rc, have = 0, have_reserved = 0;

	if (argc > 1) {
		size_t v;

		for (v = 0; v < sizeof (arc_verbs) / sizeof (arc_verbs[0]);
		    v++) {
			if (strcmp(argv[1], arc_verbs[v].name) == 0)
				return (arc_verbs[v].fn(argc - 1, argv + 1));
		}
	}
	t.scripted = 0;
	t.parsable = 0;
	t.fields[0] = F_PROPERTY;
	t.fields[1] = F_VALUE;
	t.fields[2] = 0;
	optind = 1;
	while ((c = getopt(argc, argv, OPTS(":Hpo:m:r:a:l:"))) != -1) {
		switch (c) {
		case 'H':
			t.scripted = 1;
			break;
		case 'p':
			t.parsable = 1;
			break;
		case 'o':
			if (parse_fields(optarg, &t, &bad) != 0)
				return (bad_usage("invalid field '%s' for -o",
				    bad));
			break;
		case 'm':
			memstat = optarg;
			break;
		case 'l':
			arc_ledger = optarg;
			break;
		case 'r':
			if (arc_size_opt(optarg, 0, &request) != 0)
				return (bad_usage("invalid request '%s' for -r",
				    optarg));
			break;
		case 'a':
			if (arc_size_opt(optarg, 1, &reserved) != 0)
				return (bad_usage("invalid size '%s' for -a",
				    optarg));
			have_reserved = 1;
			break;
		case ':':
			return (bad_option("option -%s needs an argument"));
		default:
			return (bad_option("unknown option -%s"));
		}
	}
	if (optind < argc)
		return (bad_usage("unexpected operand '%s'", argv[optind]));
	if (have_reserved && request == 0)
		return (bad_usage("%s", "option -a needs -r"));

	if ((rc = read_arc(&arc, &have)) != 0)
		return (rc);
	if (!have) {
		warnx_("no ZFS ARC on this host");
		return (EXIT_ERR);
	}
	if (memstat != NULL) {
		st = vmmresv_arc_read_memstat(memstat, &ms);
		if (st != VMMRESV_STATUS_OK)
			return (fail(memstat, st));
		if (ms.vm_and_arc_budget_bytes != 0)
			arc.ceiling_bytes = ms.vm_and_arc_budget_bytes;
	}

	arc_row(rows, &n, "arc.size", arc.arc_size_bytes);
	arc_row(rows, &n, "arc.floor", arc.arc_c_min_bytes);
	arc_row(rows, &n, "arc.max", arc.arc_c_max_bytes);
	arc_row(rows, &n, "arc.ceiling", arc.ceiling_bytes != 0 ?
	    arc.ceiling_bytes : arc.arc_c_max_bytes);
	arc_row(rows, &n, "arc.slack", arc.slack_bytes);
	/*
	 * The reservations and the target they imply, from the ledger.  A
	 * ledger that cannot be opened (no run directory, no permission)
	 * leaves the rows out, with the reason on standard error.
	 */
	if ((st = vmmresv_arc_open(arc_ledger, &ah)) == VMMRESV_STATUS_OK) {
		uint64_t target = 0, resv = 0;

		st = vmmresv_arc_target(ah, &arc, &target, &resv);
		vmmresv_arc_free(ah);
		if (st != VMMRESV_STATUS_OK)
			return (fail("cannot compute the ARC target", st));
		arc_row(rows, &n, "arc.reserved", resv);
		arc_row(rows, &n, "arc.target", target);
		if (!have_reserved)
			reserved = resv;
	} else if (request != 0 && !have_reserved) {
		/* The guard needs what is reserved: not knowing is no "0". */
		return (fail("cannot open the ledger (give the reservations "
		    "with -a)", st));
	} else {
		(void) fail("cannot open the ledger (no reservations shown)",
		    st);
	}
	if (memstat != NULL) {
		arc_row(rows, &n, "memstat.total", ms.physmem_bytes);
		arc_row(rows, &n, "memstat.kernel", ms.kernel_bytes);
		arc_row(rows, &n, "memstat.zfs_file_data",
		    ms.zfs_file_data_bytes);
		arc_row(rows, &n, "memstat.vmm", ms.vmm_bytes);
		arc_row(rows, &n, "memstat.free", ms.free_bytes);
		arc_row(rows, &n, "memstat.budget", ms.vm_and_arc_budget_bytes);
	}
	if (request != 0) {
		st = vmmresv_arc_guard_check(&arc, reserved, request, &g);
		if (st != VMMRESV_STATUS_OK)
			return (fail("cannot check the ARC guard", st));
		arc_row(rows, &n, "guard.request", request);
		arc_row(rows, &n, "guard.reserved", reserved);
		rows[n].property = "guard.admitted";
		rows[n].is_size = 0;
		rows[n].present = 1;
		rows[n].n = g.admitted;
		(void) snprintf(rows[n].text, sizeof (rows[n].text), "%s",
		    g.admitted ? "yes" : "no");
		n++;
		arc_row(rows, &n, "guard.need", g.need_bytes);
		arc_row(rows, &n, "guard.headroom", g.headroom_bytes);
		arc_row(rows, &n, "guard.shortfall", g.shortfall_bytes);
	}
	print_table(&t, rows, n);
	return (EXIT_OK);
}

/* ------------------------------------------------------------------ */

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
} subcommands[] = {
	{ "status", cmd_status },
	{ "report", cmd_report },
	{ "reconcile", cmd_reconcile },
	{ "resize", cmd_resize },
	{ "metrics", cmd_metrics },
	{ "claims", cmd_claims },
	{ "check", cmd_check },
	{ "arc", cmd_arc },
};

int
main(int argc, char *argv[])
{
	size_t i;
	int rc;

	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *slash = strrchr(argv[0], '/');

		prog_name = (slash != NULL && slash[1] != '\0') ?
		    slash + 1 : argv[0];
	}

	/* Global options, up to the subcommand: -R root, -h. */
	for (optind = 1; optind < argc && argv[optind][0] == '-';
	    optind++) {
		const char *o = argv[optind];

		if (strcmp(o, "--") == 0) {
			optind++;
			break;
		} else if (strcmp(o, "-h") == 0) {
			usage();
			return (EXIT_OK);
		} else if (strncmp(o, "-R", 2) == 0 && o[2] != '\0') {
			root_dir = o + 2;
		} else if (strcmp(o, "-R") == 0) {
			if (optind + 1 >= argc)
				return (bad_usage("option -%s needs an "
				    "argument", "R"));
			root_dir = argv[++optind];
		} else if (strcmp(o, "-P") == 0) {
			const char *pool;

			if (optind + 1 >= argc)
				return (bad_usage("option -%s needs an "
				    "argument", "P"));
			pool = argv[++optind];
			if (strcmp(pool, "vmm") == 0) {
				hugetlb = 0;
			} else if (strcmp(pool, "hugetlb") == 0) {
				hugetlb = 1;
				hugetlb_page = 0;
			} else if (strncmp(pool, "hugetlb:", 8) == 0 &&
			    vmmresv_size_parse(pool + 8, 0, &hugetlb_page) ==
			    VMMRESV_STATUS_OK && hugetlb_page != 0) {
				hugetlb = 1;
			} else {
				return (bad_usage("unknown pool '%s' (vmm, "
				    "hugetlb or hugetlb:pagesize)", pool));
			}
		} else if (strcmp(o, "-F") == 0) {
			if (optind + 1 >= argc)
				return (bad_usage("option -%s needs an "
				    "argument", "F"));
			if (parse_share(argv[++optind]) != 0)
				return (bad_usage("invalid share '%s' (profile="
				    "N%% or profile=numerator/denominator)",
				    argv[optind]));
		} else {
			return (bad_usage("unknown option %s", o));
		}
	}
	if (optind >= argc)
		return (bad_usage("%s", "missing subcommand"));

	for (i = 0; i < sizeof (subcommands) / sizeof (subcommands[0]); i++) {
		if (strcmp(argv[optind], subcommands[i].name) == 0)
			break;
	}
	if (i == sizeof (subcommands) / sizeof (subcommands[0]))
		return (bad_usage("unknown subcommand '%s'", argv[optind]));

	/* The subcommand parses its own options: argv[0] is its name. */
	rc = subcommands[i].fn(argc - optind, argv + optind);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warnx_("cannot write to standard output");
		rc = EXIT_ERR;
	}
	return (rc);
}
