/*
 * siphash: SipHash-2-4 (Aumasson and Bernstein), a keyed 64-bit hash for
 * hash tables whose keys come from clients: without the key, nobody can
 * pick names that all land in one bucket.
 */
#ifndef NETSOCK_SIPHASH_H
#define NETSOCK_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN	16

/* A fresh random key (from getentropy; on failure it says so in the log
 * and the key is all zeros: slower under attack, never wrong). */
void		siphash_key_random(uint8_t key[SIPHASH_KEY_LEN]);
uint64_t	siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data,
		    size_t len);

#endif
