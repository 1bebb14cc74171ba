/*
 * stub_auth: auth.h for the whole-path fuzzer.  scrypt costs tens of
 * milliseconds a hash, far too slow for fuzzing, and its threads would make
 * runs irreproducible.  Jobs are queued as auth_submit() queues them, and
 * finish when the fuzzer says so (fuzz_auth_run), in submission order,
 * through the daemon's own callback (dispatch_auth_done).  A "hash" is
 * "plain:" and the password in hex: verifying is comparing, and anything
 * else stored is malformed (failed), as a corrupt hash would be.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "dispatch.h"
#include "fuzz_session.h"
#include "xmalloc.h"

/* Small, so that "server busy" is reachable too. */
#define STUB_AUTH_MAX	16
#define STUB_AUTH_TAG	"plain:"

struct stub_job {
	uint64_t	 cookie;
	char		*owner;		/* NULL: nobody charged */
	char		*verify;	/* NULL: no verification */
	size_t		 verify_len;
	char		*stored;	/* NULL: unknown user */
	char		*hash;		/* NULL: no new hash */
	size_t		 hash_len;
};

static struct stub_job	stub_jobs[STUB_AUTH_MAX];
static size_t		stub_njobs;

static char *
stub_memdup(const char *p, size_t len)
{
	char	*q = xmalloc(len + 1);

	memcpy(q, p, len);
	q[len] = '\0';
	return q;
}

static char *
stub_hash(const char *pw, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 tag = sizeof(STUB_AUTH_TAG) - 1, i;
	char			*h = xmalloc(tag + 2 * len + 1);

	memcpy(h, STUB_AUTH_TAG, tag);
	for (i = 0; i < len; i++) {
		h[tag + 2 * i] = hex[(unsigned char)pw[i] >> 4];
		h[tag + 2 * i + 1] = hex[(unsigned char)pw[i] & 0x0f];
	}
	h[tag + 2 * len] = '\0';
	return h;
}

static void
stub_job_clear(struct stub_job *j)
{
	free(j->owner);
	free(j->verify);
	free(j->stored);
	free(j->hash);
	memset(j, 0, sizeof(*j));
}

bool
auth_owner_full(struct auth *a, const char *owner)
{
	size_t	 i, n = 0;

	for (i = 0; i < stub_njobs; i++)
		if (stub_jobs[i].owner != NULL &&
		    strcmp(stub_jobs[i].owner, owner) == 0)
			n++;
	return n >= AUTH_MAX_PER_OWNER;
}

int
auth_submit(struct auth *a, const struct auth_job *job)
{
	struct stub_job	*j;

	if (job->verify_password == NULL && job->hash_password == NULL)
		return -1;
	if (stub_njobs == STUB_AUTH_MAX ||
	    (job->owner != NULL && auth_owner_full(a, job->owner)))
		return -1;
	j = &stub_jobs[stub_njobs++];
	j->cookie = job->cookie;
	if (job->owner != NULL)
		j->owner = xstrdup(job->owner);
	if (job->verify_password != NULL) {
		j->verify = stub_memdup(job->verify_password, job->verify_len);
		j->verify_len = job->verify_len;
		if (job->stored_hash != NULL)
			j->stored = xstrdup(job->stored_hash);
	}
	if (job->hash_password != NULL) {
		j->hash = stub_memdup(job->hash_password, job->hash_len);
		j->hash_len = job->hash_len;
	}
	return 0;
}

size_t
auth_pending(struct auth *a)
{
	return stub_njobs;
}

void
auth_set_cost(struct auth *a, int log2_n)
{
}

/* What the workers would have answered. */
static void
stub_job_run(const struct stub_job *j, struct auth_result *res)
{
	char	*h;

	memset(res, 0, sizeof(*res));
	res->cookie = j->cookie;
	/* account.c compares it with the account's hash (auth.h). */
	res->checked_hash = j->stored;
	if (j->verify != NULL && j->stored != NULL) {
		if (strncmp(j->stored, STUB_AUTH_TAG,
		    sizeof(STUB_AUTH_TAG) - 1) != 0)
			res->failed = true;
		else {
			h = stub_hash(j->verify, j->verify_len);
			res->verified = strcmp(h, j->stored) == 0;
			free(h);
		}
	}
	if (j->hash != NULL && (j->verify == NULL || res->verified))
		res->new_hash = stub_hash(j->hash, j->hash_len);
}

/* Finish the oldest job: as the workers would, or failed. */
static void
stub_job_finish(struct server *srv, bool fail)
{
	struct stub_job		 j;
	struct auth_result	 res;

	/* Off the queue first: the callback may submit again. */
	j = stub_jobs[0];
	memmove(&stub_jobs[0], &stub_jobs[1],
	    (stub_njobs - 1) * sizeof(stub_jobs[0]));
	memset(&stub_jobs[--stub_njobs], 0, sizeof(stub_jobs[0]));
	stub_job_run(&j, &res);
	if (fail) {
		free(res.new_hash);
		res.new_hash = NULL;
		res.verified = false;
		res.failed = true;
	}
	dispatch_auth_done(&res, srv);
	free(res.new_hash);
	stub_job_clear(&j);
}

size_t
fuzz_auth_run(struct server *srv, size_t max)
{
	size_t	 n;

	for (n = 0; n < max && stub_njobs > 0; n++)
		stub_job_finish(srv, false);
	return n;
}

void
fuzz_auth_fail(struct server *srv)
{
	if (stub_njobs > 0)
		stub_job_finish(srv, true);
}

size_t
fuzz_auth_queued(void)
{
	return stub_njobs;
}

void
fuzz_auth_reset(void)
{
	while (stub_njobs > 0)
		stub_job_clear(&stub_jobs[--stub_njobs]);
}
