/* tls: server TLS context and the built-in self-signed certificate. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "xmalloc.h"

/*
 * TLS 1.2: ECDHE key exchange with AEAD ciphers only.  TLS 1.3 suites are
 * all forward-secret AEAD.  AES-128-GCM comes first in both: as secure
 * for this use and cheaper per byte than AES-256, which matters when
 * every message is encrypted once per recipient.
 */
#define TLS_CIPHERS_12	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define TLS_SUITES_13	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:" \
	"TLS_AES_256_GCM_SHA384"
#define TLS_CERT_DAYS	3650
/*
 * Key exchange: elliptic curves only.  OpenSSL's default list also offers
 * the finite-field groups up to ffdhe8192, whose key generation costs the
 * server many milliseconds per handshake for whoever asks for it.
 */
#define TLS_GROUPS	"X25519:P-256:P-384"

/*
 * Session-ticket keys, for TLS 1.2 tickets and TLS 1.3 resumption alike,
 * shared by every context (a reload keeps resumption working).  [0]
 * encrypts new tickets; [1], the one before, still decrypts, and what it
 * decrypts gets a new ticket.  Both live only in this process's memory.
 */
#define TLS_TICKET_NAME_LEN	16
struct tls_ticket_key {
	unsigned char	 name[TLS_TICKET_NAME_LEN];
	unsigned char	 aes[32];	/* AES-256-CBC */
	unsigned char	 hmac[32];	/* HMAC-SHA256 */
	int		 valid;
};
static struct tls_ticket_key	 tls_ticket_keys[2];

/* The first OpenSSL error as text, for a cause line. */
static const char *
tls_error(void)
{
	static char	 buf[256];
	unsigned long	 e = ERR_get_error();

	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int
tls_write_key(const char *path, EVP_PKEY *key, char **cause)
{
	FILE	*f;
	int	 fd, ok;

	/* Created 0600 from the start: the key is never world-readable. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || !ok) {
		xasprintf(cause, "%s: cannot write key", path);
		unlink(path);
		return -1;
	}
	return 0;
}

static int
tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	int		 ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static X509 *
tls_make_cert(EVP_PKEY *key)
{
	X509		*x;
	X509_NAME	*name;
	unsigned char	 serial[16];
	BIGNUM		*bn;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f;	/* a positive serial */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
		BN_free(bn);
		goto fail;
	}
	BN_free(bn);
	if (!X509_set_version(x, 2) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)TLS_CERT_DAYS * 86400) == NULL ||
	    !X509_set_pubkey(x, key))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"netsockd self-signed", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	if (!tls_add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
	    !tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !tls_add_ext(x, NID_key_usage, "critical,digitalSignature") ||
	    !tls_add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    !tls_add_ext(x, NID_subject_key_identifier, "hash"))
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

int
tls_selfsigned_create(const char *cert_path, const char *key_path,
    char **cause)
{
	EVP_PKEY	*key;
	X509		*x = NULL;
	FILE		*f;
	int		 rc = -1;

	if ((key = EVP_EC_gen("P-256")) == NULL) {
		xasprintf(cause, "cannot generate key: %s", tls_error());
		return -1;
	}
	if ((x = tls_make_cert(key)) == NULL) {
		xasprintf(cause, "cannot make certificate: %s", tls_error());
		goto out;
	}
	if (tls_write_key(key_path, key, cause) == -1)
		goto out;
	if ((f = fopen(cert_path, "wx")) == NULL) {
		xasprintf(cause, "%s: %s", cert_path, strerror(errno));
		unlink(key_path);
		goto out;
	}
	if (!PEM_write_X509(f, x) || fclose(f) != 0) {
		xasprintf(cause, "%s: cannot write certificate", cert_path);
		unlink(cert_path);
		unlink(key_path);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
tls_ticket_rotate(void)
{
	struct tls_ticket_key	*k = &tls_ticket_keys[0];

	OPENSSL_cleanse(&tls_ticket_keys[1], sizeof(tls_ticket_keys[1]));
	tls_ticket_keys[1] = *k;
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		/* No new tickets until a rotation works; old ones still do. */
		OPENSSL_cleanse(k, sizeof(*k));
		ERR_clear_error();
		return -1;
	}
	k->valid = 1;
	return 0;
}

void
tls_ticket_free(void)
{
	OPENSSL_cleanse(tls_ticket_keys, sizeof(tls_ticket_keys));
}

/* Give the ticket MAC its key: HMAC-SHA256. */
static int
tls_ticket_mac(EVP_MAC_CTX *hctx, struct tls_ticket_key *k)
{
	OSSL_PARAM	 params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * OpenSSL asks for a key to seal a new ticket (enc) or for the key a
 * ticket names.  0 means no ticket (full handshake next time), or an
 * unknown key (full handshake now); 2 means "valid, but issue a new one".
 */
static int
tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key	*k;
	int			 i;

	if (enc) {
		k = &tls_ticket_keys[0];
		if (!k->valid)
			return 0;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(
		    EVP_aes_256_cbc())) != 1)
			return -1;
		memcpy(name, k->name, sizeof(k->name));
		if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) || !tls_ticket_mac(hctx, k))
			return -1;
		return 1;
	}
	for (i = 0; i < 2; i++) {
		k = &tls_ticket_keys[i];
		if (k->valid && CRYPTO_memcmp(name, k->name,
		    sizeof(k->name)) == 0)
			break;
	}
	if (i == 2)
		return 0;
	if (!tls_ticket_mac(hctx, k) ||
	    !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
		return -1;
	return i == 0 ? 1 : 2;
}

/* Whether the daemon runs with group gid (its own or a supplementary). */
static int
tls_in_group(gid_t gid)
{
	gid_t	 groups[256];
	int	 n, i;

	if (gid == getegid())
		return 1;
	n = getgroups(sizeof(groups) / sizeof(groups[0]), groups);
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/*
 * A private key others may read is one leak away from impersonation.
 * Not fatal (the operator may have reasons), but said at every load.
 * Group-readable is how a daemon not running as root reads root's key
 * (root:netsock 0640): only a group the daemon is not in is a warning.
 */
static void
tls_check_key_mode(const char *path)
{
	struct stat	 st;
	char		 who[64];

	if (stat(path, &st) == -1)
		return;
	if (st.st_mode & S_IROTH)
		snprintf(who, sizeof(who), "everyone");
	else if ((st.st_mode & S_IRGRP) && !tls_in_group(st.st_gid))
		snprintf(who, sizeof(who), "group %u, which netsockd is not in",
		    (unsigned)st.st_gid);
	else
		return;
	log_warnx("%s: the private key is readable by %s (mode %04o); make "
	    "it readable by its owner only (chmod 600), or by a group of "
	    "netsockd's (chmod 640)", path, who,
	    (unsigned)(st.st_mode & 07777));
}

/* With the built-in certificate: make one when neither file exists. */
static int
tls_selfsigned_ensure(const struct config *cfg, char **cause)
{
	int	 have_cert = access(cfg->tls_certificate, F_OK) == 0;
	int	 have_key = access(cfg->tls_key, F_OK) == 0;

	if (have_cert && have_key)
		return 0;
	if (have_cert || have_key) {
		xasprintf(cause, "%s: found without its %s %s; remove it to "
		    "generate a new pair", have_cert ? cfg->tls_certificate :
		    cfg->tls_key, have_cert ? "key" : "certificate",
		    have_cert ? cfg->tls_key : cfg->tls_certificate);
		return -1;
	}
	return tls_selfsigned_create(cfg->tls_certificate, cfg->tls_key, cause);
}

SSL_CTX *
tls_ctx_new(const struct config *cfg, char **cause)
{
	SSL_CTX	*ctx;

	if (cfg->tls_self_signed && tls_selfsigned_ensure(cfg, cause) == -1)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		xasprintf(cause, "TLS context: %s", tls_error());
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		xasprintf(cause, "TLS minimum version: %s", tls_error());
		goto fail;
	}
	/*
	 * A peer that drops TCP without close_notify is just gone (EOF).
	 * Decrypted input (passwords too) is wiped once we have read it.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CLEANSE_PLAINTEXT);
	/*
	 * Idle sessions give their read and write buffers back.  A record
	 * the socket did not take is retried from conn's backlog, which is
	 * not where it was first written from.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * Resumption needs no server-side cache: TLS 1.3 tickets carry the
	 * session.  One ticket per handshake (not OpenSSL's two) halves the
	 * ticket cost of every connect.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	/* Ticket keys rotate on a timer (tls_ticket_rotate), not per context. */
	if (!tls_ticket_keys[0].valid && tls_ticket_rotate() == -1) {
		xasprintf(cause, "TLS ticket key: no random bytes");
		goto fail;
	}
	if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb)) {
		xasprintf(cause, "TLS ticket keys: %s", tls_error());
		goto fail;
	}
	if (!SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) ||
	    !SSL_CTX_set_ciphersuites(ctx, TLS_SUITES_13)) {
		xasprintf(cause, "TLS cipher list: %s", tls_error());
		goto fail;
	}
	if (!SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		xasprintf(cause, "TLS groups: %s", tls_error());
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1) {
		xasprintf(cause, "%s: cannot load certificate: %s",
		    cfg->tls_certificate, tls_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
	    SSL_FILETYPE_PEM) != 1) {
		xasprintf(cause, "%s: cannot load key: %s", cfg->tls_key,
		    tls_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		xasprintf(cause, "%s: key does not match certificate %s",
		    cfg->tls_key, cfg->tls_certificate);
		goto fail;
	}
	tls_check_key_mode(cfg->tls_key);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_ctx_fingerprint(SSL_CTX *ctx, char *buf, size_t len)
{
	X509		*x = SSL_CTX_get0_certificate(ctx);
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	size_t		 o;
	int		 n;

	if (x == NULL || !X509_digest(x, EVP_sha256(), md, &mdlen))
		return -1;
	n = snprintf(buf, len, "sha256 Fingerprint=");
	if (n < 0 || (size_t)n + mdlen * 3 > len)
		return -1;
	o = (size_t)n;
	for (i = 0; i < mdlen; i++)
		o += (size_t)snprintf(buf + o, len - o, i ? ":%02X" : "%02X",
		    md[i]);
	return 0;
}
