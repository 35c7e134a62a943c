/*
 * pkg/lazylib: libcurl, libxml2, libarchive, libsystemd, libpq's
 * libgssapi_krb5 and libldap, and OpenSSL's libcrypto and libssl, are not
 * in the process until their first call, which then works as a direct
 * call would:
 * curl's setopt passes each kind of argument (long, object pointer,
 * callback, curl_off_t, blob) and getinfo each kind of answer; the
 * printf-like functions format their arguments; a library that cannot be
 * loaded ends the process with one line naming it and the package, and
 * status 70; libpq's GSSAPI name type is the library's; a digest is
 * right, and OpenSSL's error queue takes a formatted error.  This test
 * links none of the eight libraries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <gssapi/gssapi.h>
#include <ldap.h>
#include <libxml/tree.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/core.h"
#include "lazylib/wrap.h"

#define CONTENT "0123456789"

static bool loaded(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
	if (h)
		dlclose(h);
	return h != NULL;
}

static void use_curl(void) { curl_easy_cleanup(curl_easy_init()); }
static void use_xml(void) { xmlBufferFree(xmlBufferCreate()); }
static void use_archive(void) { archive_entry_free(archive_entry_new()); }
static void use_systemd(void) { assert_true(sd_notify(0, "STATUS=x") >= 0); }
static void use_ldap(void) { assert_string_equal(ldap_err2string(LDAP_SUCCESS), "Success"); }

/* SHA-256 of "abc" (FIPS 180-2's example), as pkg/hash computes digests;
 * then an error raised as libpq's SCRAM code raises one: ERR_raise_data
 * is ERR_new, ERR_set_debug and the variadic ERR_set_error. */
static void use_crypto(void)
{
	static const unsigned char abc[] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
		0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
		0xf2, 0x00, 0x15, 0xad,
	};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "abc", 3), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, md, &n), 1);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(n, sizeof(abc));
	assert_memory_equal(md, abc, sizeof(abc));

	ERR_clear_error();
	ERR_raise_data(ERR_LIB_USER, 42, "at %s:%d", "here", 7);
	unsigned long e = ERR_get_error();
	assert_int_equal(ERR_GET_LIB(e), ERR_LIB_USER);
	assert_int_equal(ERR_GET_REASON(e), 42);
	assert_int_equal(ERR_get_error(), 0);
}

/* What libpq does first for TLS: a context, its options, a connection. */
static void use_ssl(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	assert_non_null(ctx);
	assert_true(SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION) & SSL_OP_NO_COMPRESSION);
	SSL *ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* What libpq does first on a TCP connection (its credential check), and
 * importing the server's name as its GSSAPI authentication does. */
static void use_gssapi(void)
{
	OM_uint32 minor;
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	OM_uint32 major = gss_acquire_cred(&minor, GSS_C_NO_NAME, 0, GSS_C_NO_OID_SET,
					   GSS_C_INITIATE, &cred, NULL, NULL);
	if (major == GSS_S_COMPLETE)	/* a Kerberos ticket in this environment */
		gss_release_cred(&minor, &cred);
	char service[] = "postgres@db.example.com";
	gss_buffer_desc buf = { strlen(service), service };
	gss_name_t name = GSS_C_NO_NAME;
	assert_int_equal(gss_import_name(&minor, &buf, GSS_C_NT_HOSTBASED_SERVICE, &name),
			 GSS_S_COMPLETE);
	assert_int_equal(gss_release_name(&minor, &name), GSS_S_COMPLETE);
}

static void loaded_on_first_use(void **state)
{
	(void)state;
	static const struct {
		const char *soname;
		void (*first_use)(void);
	} libs[] = {
		/* first: libcurl needs these, so it would load them */
		{ "libcrypto.so.3", use_crypto },
		{ "libssl.so.3", use_ssl },
		{ "libgssapi_krb5.so.2", use_gssapi },
		{ "libldap-2.5.so.0", use_ldap },
		{ "libcurl.so.4", use_curl },
		{ "libxml2.so.2", use_xml },
		{ "libarchive.so.13", use_archive },
		{ "libsystemd.so.0", use_systemd },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(libs); i++) {
		if (loaded(libs[i].soname))
			fail_msg("%s is loaded before its first use", libs[i].soname);
		libs[i].first_use();
		if (!loaded(libs[i].soname))
			fail_msg("%s is not loaded after its first use", libs[i].soname);
	}
}

/* A file:// transfer of CONTENT, driven to its end through the multi
 * interface as pkg/curlev does. */
struct xfer {
	char path[64];
	char url[80];
	char body[32];
	size_t len;
	int timer_calls;	/* the multi's timer callback, with its data */
};

static size_t keep_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	assert_true(x->len + len < sizeof(x->body));
	memcpy(x->body + x->len, data, len);
	x->len += len;
	return len;
}

static int count_timer(CURLM *m, long timeout_ms, void *arg)
{
	(void)m;
	(void)timeout_ms;
	((struct xfer *)arg)->timer_calls++;
	return 0;
}

/* Runs easy to its end on a new multi; its result. */
static CURLcode run(CURL *easy, struct xfer *x)
{
	CURLM *m = curl_multi_init();
	assert_non_null(m);
	assert_int_equal(curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 2L), CURLM_OK);
	assert_int_equal(curl_multi_setopt(m, CURLMOPT_CONTENT_LENGTH_PENALTY_SIZE,
					   (curl_off_t)1 << 33), CURLM_OK);
	assert_int_equal(curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, count_timer), CURLM_OK);
	assert_int_equal(curl_multi_setopt(m, CURLMOPT_TIMERDATA, x), CURLM_OK);
	assert_int_equal(curl_multi_add_handle(m, easy), CURLM_OK);
	assert_true(x->timer_calls > 0);
	int running = 1, left;
	for (int i = 0; running && i < 1000; i++)
		assert_int_equal(curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running), CURLM_OK);
	assert_int_equal(running, 0);
	CURLMsg *msg = curl_multi_info_read(m, &left);
	assert_non_null(msg);
	assert_int_equal(msg->msg, CURLMSG_DONE);
	CURLcode rc = msg->data.result;
	assert_int_equal(curl_multi_remove_handle(m, easy), CURLM_OK);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	return rc;
}

/* A transfer that resumes from offset, set as a long or a curl_off_t. */
static CURL *resuming(struct xfer *x, bool large, curl_off_t offset)
{
	CURL *easy = curl_easy_init();
	assert_non_null(easy);
	x->len = 0;
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, x->url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_body), CURLE_OK);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEDATA, x), CURLE_OK);
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_PRIVATE, x), CURLE_OK);
	if (large)
		assert_int_equal(curl_easy_setopt(easy, CURLOPT_RESUME_FROM_LARGE, offset), CURLE_OK);
	else
		assert_int_equal(curl_easy_setopt(easy, CURLOPT_RESUME_FROM, (long)offset), CURLE_OK);
	return easy;
}

static void curl_arguments_pass_through(void **state)
{
	(void)state;
	struct xfer x = { .path = "/tmp/ry-test-lazylib-XXXXXX" };
	int fd = mkstemp(x.path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, CONTENT, strlen(CONTENT)), (ssize_t)strlen(CONTENT));
	close(fd);
	snprintf(x.url, sizeof(x.url), "file://%s", x.path);
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);

	/* Offsets past 32 bits must arrive whole: beyond the file's end. */
	static const struct {
		bool large;
		curl_off_t offset;
		CURLcode want;
	} resumes[] = {
		{ false, 2, CURLE_OK },
		{ false, (curl_off_t)1 << 32, CURLE_BAD_DOWNLOAD_RESUME },
		{ true, 7, CURLE_OK },
		{ true, ((curl_off_t)1 << 32) + 7, CURLE_BAD_DOWNLOAD_RESUME },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(resumes); i++) {
		CURL *easy = resuming(&x, resumes[i].large, resumes[i].offset);
		assert_int_equal(run(easy, &x), resumes[i].want);
		if (resumes[i].want == CURLE_OK) {
			size_t n = strlen(CONTENT) - (size_t)resumes[i].offset;
			assert_int_equal(x.len, n);
			assert_memory_equal(x.body, CONTENT + resumes[i].offset, n);
		}
		curl_easy_cleanup(easy);
	}

	/* a blob; each kind of answer getinfo gives */
	CURL *easy = resuming(&x, false, 0);
	struct curl_blob blob = { .data = (void *)"not a certificate", .len = 17,
				  .flags = CURL_BLOB_COPY };
	assert_int_equal(curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob), CURLE_OK);
	assert_int_equal(run(easy, &x), CURLE_OK);
	char *url = NULL;
	struct xfer *priv = NULL;
	long code = -1;
	curl_off_t size = -1;
	assert_int_equal(curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
	assert_string_equal(url, x.url);
	assert_int_equal(curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv), CURLE_OK);
	assert_ptr_equal(priv, &x);
	assert_int_equal(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
	assert_int_equal(code, 0);
	assert_int_equal(curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
	assert_int_equal(size, strlen(CONTENT));

	/* No kind of argument at all: refused, the argument never read. */
	assert_int_equal(curl_easy_setopt(easy, (CURLoption)50001, 1L), CURLE_UNKNOWN_OPTION);
	curl_easy_cleanup(easy);
	CURLM *m = curl_multi_init();
	assert_int_equal(curl_multi_setopt(m, (CURLMoption)50001, 1L), CURLM_UNKNOWN_OPTION);
	curl_multi_cleanup(m);
	unlink(x.path);
}

static void printf_like_functions_format(void **state)
{
	(void)state;
	struct archive *a = archive_read_new();
	archive_set_error(a, 22, "bad %s at %d%%", "entry", 7);
	assert_string_equal(archive_error_string(a), "bad entry at 7%");
	archive_read_free(a);

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ry-test-notify-%ld", (long)getpid());
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	unlink(sa.sun_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	assert_true(sd_notifyf(0, "STATUS=%s %d%%", "draining", 50) > 0);
	char got[64] = "";
	assert_true(recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT) > 0);
	assert_string_equal(got, "STATUS=draining 50%");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(sa.sun_path);
}

/*
 * libpq reads GSS_C_NT_HOSTBASED_SERVICE before its first GSSAPI call, so
 * pkg/lazylib defines it with the value RFC 2744 gives; it must be the
 * library's own, byte for byte.
 */
static void gssapi_name_type_is_the_librarys(void **state)
{
	(void)state;
	ry_lazylib_load_gssapi();
	void *h = dlopen("libgssapi_krb5.so.2", RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(h);
	gss_OID *theirs = dlsym(h, "GSS_C_NT_HOSTBASED_SERVICE");
	assert_non_null(theirs);
	assert_ptr_not_equal(*theirs, GSS_C_NT_HOSTBASED_SERVICE);
	assert_int_equal((*theirs)->length, GSS_C_NT_HOSTBASED_SERVICE->length);
	assert_memory_equal((*theirs)->elements, GSS_C_NT_HOSTBASED_SERVICE->elements,
			    (*theirs)->length);
	dlclose(h);
}

static void missing_library_exits_70_naming_it(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		struct ry_lazylib lib = { "libry-missing.so.0", "ry-missing", NULL };
		ry_lazylib_open(&lib);
		_exit(0);
	}
	close(p[1]);
	char out[512] = "";
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 70);
	const char *want = "railyard: error: cannot load libry-missing.so.0: ";
	if (strncmp(out, want, strlen(want)) != 0 || !strstr(out, "; install ry-missing") ||
	    strchr(out, '\n') != out + len - 1)
		fail_msg("not one line naming the library and the package: %s", out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loaded_on_first_use),
		cmocka_unit_test(curl_arguments_pass_through),
		cmocka_unit_test(printf_like_functions_format),
		cmocka_unit_test(gssapi_name_type_is_the_librarys),
		cmocka_unit_test(missing_library_exits_70_naming_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
