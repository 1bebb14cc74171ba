/*
 * tls: the server's TLS context, built from the configuration (TLS 1.2
 * minimum, forward-secret AEAD suites only, server preference, no
 * renegotiation, no compression, elliptic-curve key exchange only), the
 * rotating session-ticket keys, and the self-signed certificate made on
 * first start when no certificate is configured.  A reload builds a new
 * context aside; connections keep a reference to the one they started on.
 */
#ifndef NETSOCK_TLS_H
#define NETSOCK_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct config;

/*
 * Build a context from cfg.  With cfg->tls_self_signed, first make sure a
 * certificate and key exist at the configured paths (generating them if
 * neither does).  Returns a new context (SSL_CTX_free) or NULL with *cause.
 */
SSL_CTX	*tls_ctx_new(const struct config *cfg, char **cause);

/*
 * SHA-256 fingerprint of the context's certificate, as
 * "sha256 Fingerprint=AB:CD:..." (the form `openssl x509 -fingerprint
 * -sha256` prints), into buf.  Returns 0 or -1.
 */
int	 tls_ctx_fingerprint(SSL_CTX *ctx, char *buf, size_t len);

/*
 * Session tickets (TLS 1.2 and 1.3) are sealed with a key of ours that
 * rotates: every TLS_TICKET_ROTATE_SECONDS, and at reload.  A ticket
 * sealed with the key before the current one still resumes (and is
 * replaced by a new one); older ones mean a full handshake.
 */
#define TLS_TICKET_ROTATE_SECONDS	3600

/* A new current key; the current one becomes the previous, the previous
 * one is wiped.  0, or -1 (no randomness: no new tickets until a rotation
 * succeeds). */
int	 tls_ticket_rotate(void);
/* Wipe both keys (at exit). */
void	 tls_ticket_free(void);

/* Generate an EC P-256 key (mode 0600) and a self-signed certificate for
 * localhost and 127.0.0.1.  0 or -1 with *cause. */
int	 tls_selfsigned_create(const char *cert_path, const char *key_path,
	    char **cause);

#endif
