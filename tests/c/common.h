/* SPDX-License-Identifier: MPL-2.0 */
/*
 * common.h: what the tests' C programs (tests/c/, benches/c/) share, so
 * that each is written once: the part of illumos <sys/vmm_dev.h> that a
 * bhyve uses, and small helpers.  Not part of the library or its header,
 * and not used by the shipped rsrvrctl (cmd/rsrvrctl/), which includes
 * nothing but <vmmresv.h> and the system's headers.
 *
 * Include it after the system headers and "vmmresv.h", with the program's
 * feature macro (_POSIX_C_SOURCE 200809L or _DEFAULT_SOURCE) defined first.
 * Everything here is static inline: a program that uses only some of it
 * gets no unused-function warning (the Makefile's -Wall -Wextra -Werror).
 */
#ifndef VMMRESV_TESTS_COMMON_H
#define	VMMRESV_TESTS_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/*
 * illumos sys/vmm_dev.h (interface version 18, LP64): plain int ioctl
 * numbers, not _IOW()-style.  The emulator (tests/emu/vmmemu.h) defines
 * the kernel's side of the same ABI, with layout assertions.
 */
#define	VMMCTL_IOC_BASE		(('V' << 16) | ('M' << 8))	/* 0x564D00 */
#define	VMM_IOC_BASE		(('v' << 16) | ('m' << 8))	/* 0x766D00 */
#define	VMM_LOCK_IOC_BASE	(('v' << 16) | ('l' << 8))	/* 0x766C00 */
#define	VMM_CREATE_VM		(VMMCTL_IOC_BASE | 0x01)
#define	VM_ALLOC_MEMSEG		(VMM_LOCK_IOC_BASE | 0x05)
#define	VM_DESTROY_SELF		(VMM_IOC_BASE | 0x25)
#define	VMM_CTL_DEV		"/dev/vmmctl"
#define	VMM_INST_DEV_PREFIX	"/dev/vmm/"
#define	VM_MAX_NAMELEN		128
#define	VM_MAX_SEG_NAMELEN	128
/* sys/vmm.h enum vm_create_flags */
#define	VCF_RESERVOIR_MEM	((uint64_t)1 << 0)
/* sys/vmm.h: the guest's system memory segment. */
#define	VM_SYSMEM		0

struct vm_create_req {
	char		name[VM_MAX_NAMELEN];
	uint64_t	flags;
};

struct vm_memseg {
	int		segid;
	size_t		len;
	char		name[VM_MAX_SEG_NAMELEN];
};

/* A whole decimal number in [min, max] (no sign, no blanks), or -1. */
static inline long long
number(const char *s, long long min, long long max)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return (-1);
	return (v);
}

/* Sleep ms milliseconds, through signals. */
static inline void
sleep_ms(long long ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		continue;
}

/* FD_CLOEXEC on fd: 0, or -1 with errno set. */
static inline int
set_cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);

	return (f < 0 ? -1 : fcntl(fd, F_SETFD, f | FD_CLOEXEC));
}

#endif	/* VMMRESV_TESTS_COMMON_H */
