/*
 * tls: the server's TLS context, built from the configuration (TLS 1.2
 * minimum, forward-secret AEAD suites only, server preference, no
 * renegotiation, no compression), and the self-signed certificate made on
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

/* Generate an EC P-256 key (mode 0600) and a self-signed certificate for
 * localhost and 127.0.0.1.  0 or -1 with *cause. */
int	 tls_selfsigned_create(const char *cert_path, const char *key_path,
	    char **cause);

#endif
