/* SPDX-License-Identifier: MPL-2.0 */
/*
 * report.c: prints the host capacity report, as an operator's tool or a
 * Triton agent feeding CNAPI would.  Built only against include/vmmresv.h
 * and linked only with -lvmmresv: a C consumer of the report ABI.
 *
 *   report [-R root] [-A arc-root] [-K kstat-file] [-d driver-dma-MiB]
 *          [-z zone-caps-MiB] [-o os-reserve-MiB] [-b buffer-MiB]
 *          [-c vcpus] [-e earmark-MiB] [-f numerator/denominator]
 *
 *   -R root       read the host's memory from <root>/proc/meminfo
 *                 (default "/")
 *   -K file       read it from `kstat -p unix:0:system_pages` output
 *                 instead (illumos)
 *   -A arc-root   read the ARC from <arc-root>/proc/spl/kstat/zfs/arcstats
 *                 (default: no ARC)
 *   -d, -z, -o, -b  the named headroom inputs, in MiB
 *   -c vcpus      vCPUs of the VM shape "largest VM" is computed for
 *   -e MiB        omicron's control-plane earmark (omicron profile)
 *   -f n/d        the omicron profile's share as an exact fraction
 *                 (vmmresv_admission_set_profile_fraction(); 8630/10000
 *                 is 86.3%)
 *
 * The report is asked for with the needed-size protocol: first with a
 * 16-byte buffer (which must come back BUFFER_TOO_SMALL with the size),
 * then with exactly that size.  Output: the JSON text and a newline.
 * Exit status: 0 ok; 1 a library error (message on stderr with the
 * vmmresv status number); 2 usage.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmmresv.h>

static int
fail(const char *what, vmmresv_status s)
{
	(void) fprintf(stderr, "report: %s: %s (vmmresv status %u)\n", what,
	    vmmresv_strerror(s), (unsigned)s);
	return (1);
}

static int
mib(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v > UINT64_MAX >> 20)
		return (-1);
	*out = (uint64_t)v << 20;
	return (0);
}

int
main(int argc, char **argv)
{
	const char *root = NULL, *arc_root = NULL, *kstat = NULL;
	vmmresv_report_inputs in;
	vmmresv_host_memory host;
	vmmresv_arc_host arc;
	vmmresv_reservoir *r = NULL;
	vmmresv_admission *a = NULL;
	vmmresv_status s;
	char small[16], *buf;
	size_t need = 0, again = 0;
	uint64_t num = 0, den = 0;
	int c, rc = 1, frac = 0;

	(void) memset(&in, 0, sizeof (in));
	while ((c = getopt(argc, argv, "R:A:K:d:z:o:b:c:e:f:")) != -1) {
		uint64_t *dst = NULL;
		switch (c) {
		case 'R': root = optarg; continue;
		case 'A': arc_root = optarg; continue;
		case 'K': kstat = optarg; continue;
		case 'd': dst = &in.driver_dma_bytes; break;
		case 'z': dst = &in.zone_caps_bytes; break;
		case 'o': dst = &in.os_reserve_bytes; break;
		case 'b': dst = &in.overcommit_buffer_bytes; break;
		case 'e': dst = &in.omicron_earmark_bytes; break;
		case 'f': {
			char *end;
			errno = 0;
			num = strtoull(optarg, &end, 10);
			if (errno == 0 && end != optarg && *end == '/') {
				const char *d = end + 1;
				den = strtoull(d, &end, 10);
				if (errno == 0 && end != d && *end == '\0') {
					frac = 1;
					continue;
				}
			}
			(void) fprintf(stderr, "report: bad fraction: %s\n",
			    optarg);
			return (2);
		}
		case 'c':
			in.reference_vcpus = (uint32_t)strtoul(optarg, NULL, 10);
			continue;
		default:
			(void) fprintf(stderr, "usage: report [-R root] "
			    "[-A arc-root] [-K kstat-file] [-d MiB] [-z MiB] "
			    "[-o MiB] [-b MiB] [-c vcpus] [-e MiB] [-f n/d]\n");
			return (2);
		}
		if (mib(optarg, dst) != 0) {
			(void) fprintf(stderr, "report: bad size: %s\n", optarg);
			return (2);
		}
	}

	s = kstat != NULL ? vmmresv_host_read_kstat(kstat, &host) :
	    vmmresv_host_read_linux(root, &host);
	if (s != VMMRESV_STATUS_OK)
		return (fail("reading the host's memory", s));
	if (arc_root != NULL &&
	    (s = vmmresv_arc_read_linux(arc_root, &arc)) != VMMRESV_STATUS_OK)
		return (fail("reading the ARC", s));
	if ((s = vmmresv_reservoir_open(NULL, NULL, &r)) != VMMRESV_STATUS_OK)
		return (fail("opening /dev/vmmctl", s));
	if ((s = vmmresv_admission_open(r, NULL, &a)) != VMMRESV_STATUS_OK) {
		rc = fail("opening the admission ledger", s);
		goto out;
	}
	if (frac && (s = vmmresv_admission_set_profile_fraction(a,
	    VMMRESV_PROFILE_OMICRON, num, den)) != VMMRESV_STATUS_OK) {
		rc = fail("setting omicron's share", s);
		goto out;
	}

	s = vmmresv_report_json(a, &host, &in, arc_root != NULL ? &arc : NULL,
	    small, sizeof (small), &need);
	if (s != VMMRESV_STATUS_BUFFER_TOO_SMALL || need <= sizeof (small)) {
		(void) fprintf(stderr, "report: a 16-byte buffer gave status "
		    "%u, needed %zu\n", (unsigned)s, need);
		goto out;
	}
	if ((buf = malloc(need)) == NULL) {
		(void) fprintf(stderr, "report: out of memory\n");
		goto out;
	}
	s = vmmresv_report_json(a, &host, &in, arc_root != NULL ? &arc : NULL,
	    buf, need, &again);
	if (s != VMMRESV_STATUS_OK) {
		/* The reservoir can change between the calls: say so. */
		rc = fail("the report (second call)", s);
		free(buf);
		goto out;
	}
	if (strlen(buf) + 1 != again) {
		(void) fprintf(stderr, "report: length %zu, needed %zu\n",
		    strlen(buf), again);
		free(buf);
		goto out;
	}
	(void) printf("%s\n", buf);
	free(buf);
	rc = 0;
out:
	vmmresv_admission_close(a);
	vmmresv_reservoir_close(r);
	return (rc);
}
