/* siphash: SipHash-2-4, as specified in the SipHash paper. */
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "siphash.h"

#define SIPHASH_ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

/* Little-endian 64-bit load, whatever the host's byte order. */
static uint64_t
siphash_load64(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
siphash_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = SIPHASH_ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = SIPHASH_ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = SIPHASH_ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = SIPHASH_ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = SIPHASH_ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = SIPHASH_ROTL(v[2], 32);
}

/* Two compression rounds per word. */
static void
siphash_compress(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	siphash_round(v);
	siphash_round(v);
	v[0] ^= m;
}

uint64_t
siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
	const uint8_t	*p = data;
	uint64_t	 k0 = siphash_load64(key), k1 = siphash_load64(key + 8);
	uint64_t	 v[4], last;
	size_t		 i, tail = len & 7;

	v[0] = k0 ^ 0x736f6d6570736575ULL;
	v[1] = k1 ^ 0x646f72616e646f6dULL;
	v[2] = k0 ^ 0x6c7967656e657261ULL;
	v[3] = k1 ^ 0x7465646279746573ULL;
	for (i = 0; i + 8 <= len; i += 8)
		siphash_compress(v, siphash_load64(p + i));
	/* The last word: the remaining bytes, and len mod 256 on top. */
	last = (uint64_t)(len & 0xff) << 56;
	while (tail > 0) {
		tail--;
		last |= (uint64_t)p[i + tail] << (8 * tail);
	}
	siphash_compress(v, last);
	/* Four finalization rounds. */
	v[2] ^= 0xff;
	siphash_round(v);
	siphash_round(v);
	siphash_round(v);
	siphash_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

void
siphash_key_random(uint8_t key[SIPHASH_KEY_LEN])
{
	if (getentropy(key, SIPHASH_KEY_LEN) != 0) {
		log_warn("getentropy");
		memset(key, 0, SIPHASH_KEY_LEN);
	}
}
