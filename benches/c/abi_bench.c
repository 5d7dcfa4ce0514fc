/*
 * The C side of the C ABI benchmark (benches/ledger.rs, group c_abi).
 *
 * Built by the benchmark itself as a small shared object linked against
 * target/lib/libvmmresv.so.1 (like any C consumer: -Iinclude -lvmmresv
 * -Wl,-rpath), then dlopen()ed by the benchmark. The loop below therefore
 * is C code calling vmmresv_ledger_claim() and vmmresv_ledger_release()
 * through the PLT into the shared library, exactly as a C program does;
 * the benchmark only times one call of abi_bench_loop() per sample, so
 * the Rust-to-C call around it is amortised over `iters` claim+release
 * pairs.
 *
 * Built with -DABI_BENCH_MAIN it is also a standalone program that times
 * the same loop with clock_gettime (a cross-check of the in-benchmark
 * figure; see benches/README.md):
 *
 *   cc -std=c99 -O2 -DABI_BENCH_MAIN -Iinclude -o /tmp/abi_bench \
 *       benches/c/abi_bench.c -Ltarget/lib -lvmmresv \
 *       -Wl,-rpath,$PWD/target/lib && /tmp/abi_bench
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vmmresv.h"

/* A ledger of `capacity_pages`, from the shared library; NULL on failure. */
struct vmmresv_ledger *abi_bench_new(uint64_t capacity_pages);
void abi_bench_free(struct vmmresv_ledger *ledger);
uint64_t abi_bench_loop(const struct vmmresv_ledger *ledger, uint64_t iters,
                        uint64_t pages);

struct vmmresv_ledger *abi_bench_new(uint64_t capacity_pages)
{
	struct vmmresv_ledger *l = NULL;

	if (vmmresv_ledger_new(capacity_pages, &l) != VMMRESV_STATUS_OK)
		return NULL;
	return l;
}

void abi_bench_free(struct vmmresv_ledger *ledger)
{
	vmmresv_ledger_free(ledger);
}

/*
 * `iters` times: claim `pages`, and release them if the claim was
 * admitted. Returns how many claims were admitted (the caller checks it
 * equals `iters`, so a refused or failing call cannot pass for a fast one).
 */
uint64_t abi_bench_loop(const struct vmmresv_ledger *ledger, uint64_t iters,
                        uint64_t pages)
{
	uint64_t admitted = 0;

	for (uint64_t i = 0; i < iters; i++) {
		uint64_t shortfall;

		if (vmmresv_ledger_claim(ledger, pages, &shortfall) ==
		    VMMRESV_STATUS_OK) {
			if (vmmresv_ledger_release(ledger, pages) == VMMRESV_STATUS_OK)
				admitted++;
		}
	}
	return admitted;
}

#ifdef ABI_BENCH_MAIN
int main(void)
{
	const uint64_t iters = 20000000;
	struct vmmresv_ledger *l = abi_bench_new(1024);
	struct timespec t0, t1;
	double best = 0;

	if (l == NULL)
		return 1;
	for (int round = 0; round < 5; round++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		uint64_t n = abi_bench_loop(l, iters, 1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (n != iters)
			return 1;
		double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		             (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
		if (round == 0 || ns < best)
			best = ns;
		printf("claim+release through the .so: %.2f ns/op\n", ns);
	}
	printf("best of 5: %.2f ns/op\n", best);
	abi_bench_free(l);
	return 0;
}
#endif
