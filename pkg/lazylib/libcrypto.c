/*
 * libcrypto on first use (lazylib.h): the functions of OpenSSL's that
 * pkg/hash and the libpq linked into the binary (Makefile: libpq.a) call.
 * Loading it and libssl was 140 of the 246 page faults of every start
 * (its 21,000 relocations write the pages they are on), and most
 * commands never call it: a connection over a Unix socket without a
 * password uses neither TLS nor SCRAM, and `railyard submit` hashes
 * nothing.  The first digest, SCRAM exchange or TLS handshake opens it.
 * libcurl, opened the same way, links the same libcrypto.so.3: one copy.
 */
/* The HMAC_CTX and ENGINE calls are libpq's, deprecated in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "lazylib/wrap.h"

/* The BIO method getters return callbacks. */
typedef long (*bio_callback_ctrl_fn)(BIO *, int, BIO_info_cb *);
typedef int (*bio_fn)(BIO *);		/* create, destroy */
typedef long (*bio_ctrl_fn)(BIO *, int, long, void *);
typedef int (*bio_gets_fn)(BIO *, char *, int);
typedef int (*bio_puts_fn)(BIO *, const char *);

#define CRYPTO_SYMBOLS(F, V, H) \
	F(const unsigned char *, ASN1_STRING_get0_data, (const ASN1_STRING *x), (x)) \
	F(int, ASN1_STRING_length, (const ASN1_STRING *x), (x)) \
	V(BIO_clear_flags, (BIO *b, int flags), (b, flags)) \
	F(void *, BIO_get_ex_data, (const BIO *bio, int idx), (bio, idx)) \
	F(int, BIO_get_new_index, (void), ()) \
	F(long, BIO_int_ctrl, (BIO *bp, int cmd, long larg, int iarg), (bp, cmd, larg, iarg)) \
	V(BIO_meth_free, (BIO_METHOD *biom), (biom)) \
	F(bio_callback_ctrl_fn, BIO_meth_get_callback_ctrl, (const BIO_METHOD *biom), (biom)) \
	F(bio_fn, BIO_meth_get_create, (const BIO_METHOD *biom), (biom)) \
	F(bio_ctrl_fn, BIO_meth_get_ctrl, (const BIO_METHOD *biom), (biom)) \
	F(bio_fn, BIO_meth_get_destroy, (const BIO_METHOD *biom), (biom)) \
	F(bio_gets_fn, BIO_meth_get_gets, (const BIO_METHOD *biom), (biom)) \
	F(bio_puts_fn, BIO_meth_get_puts, (const BIO_METHOD *biom), (biom)) \
	F(BIO_METHOD *, BIO_meth_new, (int type, const char *name), (type, name)) \
	F(int, BIO_meth_set_callback_ctrl, \
	  (BIO_METHOD *biom, long (*callback_ctrl)(BIO *, int, BIO_info_cb *)), \
	  (biom, callback_ctrl)) \
	F(int, BIO_meth_set_create, (BIO_METHOD *biom, int (*create)(BIO *)), (biom, create)) \
	F(int, BIO_meth_set_ctrl, \
	  (BIO_METHOD *biom, long (*ctrl)(BIO *, int, long, void *)), (biom, ctrl)) \
	F(int, BIO_meth_set_destroy, \
	  (BIO_METHOD *biom, int (*destroy)(BIO *)), (biom, destroy)) \
	F(int, BIO_meth_set_gets, \
	  (BIO_METHOD *biom, int (*ossl_gets)(BIO *, char *, int)), (biom, ossl_gets)) \
	F(int, BIO_meth_set_puts, \
	  (BIO_METHOD *biom, int (*puts)(BIO *, const char *)), (biom, puts)) \
	F(int, BIO_meth_set_read, \
	  (BIO_METHOD *biom, int (*read)(BIO *, char *, int)), (biom, read)) \
	F(int, BIO_meth_set_write, \
	  (BIO_METHOD *biom, int (*write)(BIO *, const char *, int)), (biom, write)) \
	F(BIO *, BIO_new, (const BIO_METHOD *type), (type)) \
	F(const BIO_METHOD *, BIO_s_socket, (void), ()) \
	F(int, BIO_set_ex_data, (BIO *bio, int idx, void *data), (bio, idx, data)) \
	V(BIO_set_flags, (BIO *b, int flags), (b, flags)) \
	F(int, CRYPTO_memcmp, \
	  (const void *in_a, const void *in_b, size_t len), (in_a, in_b, len)) \
	F(ENGINE *, ENGINE_by_id, (const char *id), (id)) \
	F(int, ENGINE_finish, (ENGINE *e), (e)) \
	F(int, ENGINE_free, (ENGINE *e), (e)) \
	F(int, ENGINE_init, (ENGINE *e), (e)) \
	F(EVP_PKEY *, ENGINE_load_private_key, \
	  (ENGINE *e, const char *key_id, UI_METHOD *ui_method, void *callback_data), \
	  (e, key_id, ui_method, callback_data)) \
	V(ERR_clear_error, (void), ()) \
	F(unsigned long, ERR_get_error, (void), ()) \
	V(ERR_new, (void), ()) \
	H(ERR_vset_error) \
	F(const char *, ERR_reason_error_string, (unsigned long e), (e)) \
	V(ERR_set_debug, (const char *file, int line, const char *func), (file, line, func)) \
	F(int, EVP_DigestFinal_ex, \
	  (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s), (ctx, md, s)) \
	F(int, EVP_DigestInit_ex, \
	  (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl), (ctx, type, impl)) \
	F(int, EVP_DigestUpdate, (EVP_MD_CTX *ctx, const void *d, size_t cnt), (ctx, d, cnt)) \
	V(EVP_MD_CTX_free, (EVP_MD_CTX *ctx), (ctx)) \
	F(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ()) \
	F(const EVP_MD *, EVP_get_digestbyname, (const char *name), (name)) \
	F(const EVP_MD *, EVP_md5, (void), ()) \
	F(const EVP_MD *, EVP_sha1, (void), ()) \
	F(const EVP_MD *, EVP_sha224, (void), ()) \
	F(const EVP_MD *, EVP_sha256, (void), ()) \
	F(const EVP_MD *, EVP_sha384, (void), ()) \
	F(const EVP_MD *, EVP_sha512, (void), ()) \
	V(GENERAL_NAME_free, (GENERAL_NAME *a), (a)) \
	F(unsigned char *, HMAC, \
	  (const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data, \
	   size_t data_len, unsigned char *md, unsigned int *md_len), \
	  (evp_md, key, key_len, data, data_len, md, md_len)) \
	V(HMAC_CTX_free, (HMAC_CTX *ctx), (ctx)) \
	F(HMAC_CTX *, HMAC_CTX_new, (void), ()) \
	F(int, HMAC_Final, \
	  (HMAC_CTX *ctx, unsigned char *md, unsigned int *len), (ctx, md, len)) \
	F(int, HMAC_Init_ex, \
	  (HMAC_CTX *ctx, const void *key, int len, const EVP_MD *md, ENGINE *impl), \
	  (ctx, key, len, md, impl)) \
	F(int, HMAC_Update, \
	  (HMAC_CTX *ctx, const unsigned char *data, size_t len), (ctx, data, len)) \
	F(const char *, OBJ_nid2sn, (int n), (n)) \
	F(int, OPENSSL_sk_num, (const OPENSSL_STACK *st), (st)) \
	V(OPENSSL_sk_pop_free, (OPENSSL_STACK *st, void (*func)(void *)), (st, func)) \
	F(void *, OPENSSL_sk_value, (const OPENSSL_STACK *st, int i), (st, i)) \
	F(int, RAND_bytes, (unsigned char *buf, int num), (buf, num)) \
	F(int, RAND_poll, (void), ()) \
	F(int, RAND_status, (void), ()) \
	F(ASN1_STRING *, X509_NAME_ENTRY_get_data, (const X509_NAME_ENTRY *ne), (ne)) \
	F(X509_NAME_ENTRY *, X509_NAME_get_entry, \
	  (const X509_NAME *name, int loc), (name, loc)) \
	F(int, X509_NAME_get_index_by_NID, \
	  (const X509_NAME *name, int nid, int lastpos), (name, nid, lastpos)) \
	F(int, X509_STORE_load_locations, \
	  (X509_STORE *ctx, const char *file, const char *dir), (ctx, file, dir)) \
	F(int, X509_STORE_set_flags, (X509_STORE *ctx, unsigned long flags), (ctx, flags)) \
	F(int, X509_digest, \
	  (const X509 *data, const EVP_MD *type, unsigned char *md, unsigned int *len), \
	  (data, type, md, len)) \
	V(X509_free, (X509 *a), (a)) \
	F(void *, X509_get_ext_d2i, \
	  (const X509 *x, int nid, int *crit, int *idx), (x, nid, crit, idx)) \
	F(int, X509_get_signature_info, \
	  (X509 *x, int *mdnid, int *pknid, int *secbits, uint32_t *flags), \
	  (x, mdnid, pknid, secbits, flags)) \
	F(X509_NAME *, X509_get_subject_name, (const X509 *a), (a))

RY_LAZYLIB(crypto, CRYPTO_SYMBOLS, "libcrypto.so.3", "libssl3")

/* What ERR_raise() expands to, variadic: passed on through the va_list
 * form, which takes the same format and arguments. */
void ERR_set_error(int lib, int reason, const char *fmt, ...)
{
	va_list ap;
	load();
	va_start(ap, fmt);
	real.ERR_vset_error(lib, reason, fmt, ap);
	va_end(ap);
}
