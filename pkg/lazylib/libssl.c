/*
 * libssl on first use (lazylib.h), for the libpq linked into the binary
 * (Makefile: libpq.a): the functions its TLS connections call.  A
 * connection over a Unix socket never calls them; one over TCP with
 * sslmode other than disable opens the library at its first attempt
 * (libcrypto.so.3, which libssl needs, comes with it: libcrypto.c).
 */
#include <openssl/ssl.h>

#include "lazylib/wrap.h"

#define SSL_SYMBOLS(F, V, H) \
	F(int, OPENSSL_init_ssl, \
	  (uint64_t opts, const OPENSSL_INIT_SETTINGS *settings), (opts, settings)) \
	F(int, SSL_CIPHER_get_bits, (const SSL_CIPHER *c, int *alg_bits), (c, alg_bits)) \
	F(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c), (c)) \
	F(long, SSL_CTX_ctrl, \
	  (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg)) \
	V(SSL_CTX_free, (SSL_CTX *ctx), (ctx)) \
	F(X509_STORE *, SSL_CTX_get_cert_store, (const SSL_CTX *ctx), (ctx)) \
	F(int, SSL_CTX_load_verify_locations, \
	  (SSL_CTX *ctx, const char *CAfile, const char *CApath), (ctx, CAfile, CApath)) \
	F(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *meth), (meth)) \
	V(SSL_CTX_set_default_passwd_cb, (SSL_CTX *ctx, pem_password_cb *cb), (ctx, cb)) \
	V(SSL_CTX_set_default_passwd_cb_userdata, (SSL_CTX *ctx, void *u), (ctx, u)) \
	F(uint64_t, SSL_CTX_set_options, (SSL_CTX *ctx, uint64_t op), (ctx, op)) \
	F(int, SSL_CTX_use_certificate_chain_file, \
	  (SSL_CTX *ctx, const char *file), (ctx, file)) \
	F(int, SSL_check_private_key, (const SSL *ctx), (ctx)) \
	F(uint64_t, SSL_clear_options, (SSL *s, uint64_t op), (s, op)) \
	F(int, SSL_connect, (SSL *ssl), (ssl)) \
	F(long, SSL_ctrl, (SSL *ssl, int cmd, long larg, void *parg), (ssl, cmd, larg, parg)) \
	V(SSL_free, (SSL *ssl), (ssl)) \
	F(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s)) \
	F(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s), (s)) \
	F(const COMP_METHOD *, SSL_get_current_compression, (const SSL *s), (s)) \
	F(int, SSL_get_error, (const SSL *s, int ret_code), (s, ret_code)) \
	F(const char *, SSL_get_version, (const SSL *s), (s)) \
	F(SSL *, SSL_new, (SSL_CTX *ctx), (ctx)) \
	F(int, SSL_pending, (const SSL *s), (s)) \
	F(int, SSL_read, (SSL *ssl, void *buf, int num), (ssl, buf, num)) \
	V(SSL_set_bio, (SSL *s, BIO *rbio, BIO *wbio), (s, rbio, wbio)) \
	F(int, SSL_set_ex_data, (SSL *ssl, int idx, void *data), (ssl, idx, data)) \
	F(uint64_t, SSL_set_options, (SSL *s, uint64_t op), (s, op)) \
	V(SSL_set_verify, (SSL *s, int mode, SSL_verify_cb callback), (s, mode, callback)) \
	F(int, SSL_shutdown, (SSL *s), (s)) \
	F(int, SSL_use_PrivateKey, (SSL *ssl, EVP_PKEY *pkey), (ssl, pkey)) \
	F(int, SSL_use_PrivateKey_file, \
	  (SSL *ssl, const char *file, int type), (ssl, file, type)) \
	F(int, SSL_write, (SSL *ssl, const void *buf, int num), (ssl, buf, num)) \
	F(const SSL_METHOD *, TLS_method, (void), ())

RY_LAZYLIB(ssl, SSL_SYMBOLS, "libssl.so.3", "libssl3")
