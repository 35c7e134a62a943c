/*
 * pkg/archive: an artifact's bytes depend only on what the outputs hold
 * (not on mtimes, owners, permission noise or the order outputs are
 * listed); what cannot be restored safely is refused at creation; a
 * restore checks the digest and never writes outside the tree, leaving it
 * untouched when anything is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "exec/exec.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-archive-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ry_exec_remove_tree(dir);
	return 0;
}

static char *at(const char *rel)
{
	return ry_asprintf("%s/%s", dir, rel);
}

static void put(const char *rel, const char *content, mode_t mode)
{
	char *p = at(rel);
	char *parent = ry_strdup(p);
	*strrchr(parent, '/') = '\0';
	char *err = NULL;
	assert_true(ry_exec_mkdirs(parent, &err));
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	free(parent);
	free(p);
}

static char *slurp(const char *rel)
{
	char *p = at(rel);
	FILE *f = fopen(p, "r");
	free(p);
	if (!f)
		return NULL;
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return ry_strdup(buf);
}

/* Archives outputs of tree rel_root (under dir) into file name; returns the info. */
static bool make(const char *root, const char *name, const char *const *outs,
		 struct ry_archive_info *info, char **err)
{
	struct ry_strlist l = { 0 };
	for (size_t i = 0; outs[i]; i++)
		ry_strlist_add(&l, outs[i]);
	char *r = at(root), *f = at(name);
	int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	bool ok = ry_archive_create(r, &l, fd, info, err);
	close(fd);
	free(r);
	free(f);
	ry_strlist_release(&l);
	return ok;
}

static enum ry_archive_status restore(const char *name, const char *digest, const char *dest,
				      char **err)
{
	char *f = at(name), *d = at(dest);
	char *e = NULL;
	assert_true(ry_exec_mkdirs(d, &e));
	int fd = open(f, O_RDONLY);
	assert_true(fd >= 0);
	enum ry_archive_status st = ry_archive_extract(fd, digest, d, err);
	close(fd);
	free(f);
	free(d);
	return st;
}

static void build_tree(const char *root)
{
	char *p;
	p = ry_asprintf("%s/dist/app", root);
	put(p, "binary\n", 0755);
	free(p);
	p = ry_asprintf("%s/dist/lib/util.txt", root);
	put(p, "util\n", 0600);
	free(p);
	p = ry_asprintf("%s/report.txt", root);
	put(p, "ok\n", 0644);
	free(p);
	char *link = at(root), *l2 = ry_asprintf("%s/dist/current", link);
	assert_int_equal(symlink("lib/util.txt", l2), 0);
	free(link);
	free(l2);
}

static void same_content_same_digest(void **state)
{
	(void)state;
	const char *outs[] = { "dist", "report.txt", NULL };
	const char *reversed[] = { "report.txt", "dist/", NULL };
	struct ry_archive_info a, b, c;
	char *err = NULL;

	build_tree("t1");
	build_tree("t2");
	/* noise that must not matter: mtimes, group/other bits */
	char *p = at("t2/report.txt");
	struct timeval old[2] = { { 1000, 0 }, { 1000, 0 } };
	assert_int_equal(utimes(p, old), 0);
	assert_int_equal(chmod(p, 0664), 0);
	free(p);
	assert_true(make("t1", "a.tar.zst", outs, &a, &err));
	assert_true(make("t2", "b.tar.zst", reversed, &b, &err));
	assert_string_equal(a.digest, b.digest);
	assert_int_equal(a.entries, 6);	/* dist, dist/app, dist/current, dist/lib, util, report */
	assert_non_null(strstr(a.manifest, "\"dist/current\":\"symlink:lib/util.txt\""));
	/* a content change is a different artifact */
	put("t2/dist/lib/util.txt", "util 2\n", 0644);
	assert_true(make("t2", "c.tar.zst", outs, &c, &err));
	assert_string_not_equal(a.digest, c.digest);
	/* so is an executable bit */
	ry_archive_info_release(&c);
	p = at("t2/dist/lib/util.txt");
	put("t2/dist/lib/util.txt", "util\n", 0755);
	free(p);
	assert_true(make("t2", "c.tar.zst", outs, &c, &err));
	assert_string_not_equal(a.digest, c.digest);
	ry_archive_info_release(&a);
	ry_archive_info_release(&b);
	ry_archive_info_release(&c);
}

static void unsafe_outputs_refused(void **state)
{
	(void)state;
	static const struct {
		const char *out;
		const char *msg;
	} cases[] = {
		{ "/etc/passwd", "absolute" },
		{ "../x", "\"..\" component" },
		{ "dist/../../x", "\"..\" component" },
		{ "a//b", "empty component" },
		{ "./dist", "\".\" component" },
		{ "missing/file", "output missing/file does not exist" },
		{ "escape", "leaves the tree" },
	};
	struct ry_archive_info info;
	char *p = at("t/escape");
	put("t/ok", "x", 0644);
	assert_int_equal(symlink("../../etc/passwd", p), 0);
	free(p);
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++) {
		const char *outs[] = { cases[i].out, NULL };
		char *err = NULL;
		assert_false(make("t", "x.tar.zst", outs, &info, &err));
		if (!strstr(err, cases[i].msg))
			fail_msg("output %s: error \"%s\" lacks \"%s\"", cases[i].out, err, cases[i].msg);
		free(err);
	}
}

static void round_trip(void **state)
{
	(void)state;
	const char *outs[] = { "dist", "report.txt", NULL };
	struct ry_archive_info a;
	char *err = NULL;
	build_tree("src");
	assert_true(make("src", "a.tar.zst", outs, &a, &err));
	put("dst/dist/old.txt", "kept\n", 0644);	/* a tree that already has files */
	assert_int_equal(restore("a.tar.zst", a.digest, "dst", &err), RY_ARCHIVE_OK);
	char *s = slurp("dst/dist/app");
	assert_string_equal(s, "binary\n");
	free(s);
	s = slurp("dst/dist/current");	/* through the restored symlink */
	assert_string_equal(s, "util\n");
	free(s);
	s = slurp("dst/dist/old.txt");
	assert_string_equal(s, "kept\n");
	free(s);
	struct stat sb;
	char *p = at("dst/dist/app");
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_mode & 0100);
	free(p);
	/* restoring twice replaces files in place */
	assert_int_equal(restore("a.tar.zst", a.digest, "dst", &err), RY_ARCHIVE_OK);
	ry_archive_info_release(&a);
}

/* No entry of dest's but keep: the directory lists only these names. */
static void assert_dir_only(const char *rel, const char *only)
{
	char *cmd = ry_asprintf("test \"$(ls -A %s/%s | tr '\\n' ' ')\" = \"%s\"", dir, rel, only);
	if (system(cmd) != 0)
		fail_msg("%s/%s should hold exactly: %s", dir, rel, only);
	free(cmd);
}

static void corrupt_archive_touches_nothing(void **state)
{
	(void)state;
	const char *outs[] = { "dist", NULL };
	struct ry_archive_info a;
	char *err = NULL;
	build_tree("src");
	assert_true(make("src", "a.tar.zst", outs, &a, &err));
	/* flip one byte in the middle */
	char *f = at("a.tar.zst");
	int fd = open(f, O_RDWR);
	unsigned char c;
	off_t mid = (off_t)(a.size / 2);
	assert_int_equal(pread(fd, &c, 1, mid), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, mid), 1);
	close(fd);
	free(f);
	put("dst/keep", "k", 0644);
	assert_int_equal(restore("a.tar.zst", a.digest, "dst", &err), RY_ARCHIVE_CORRUPT);
	free(err);
	err = NULL;
	assert_dir_only("dst", "keep ");
	ry_archive_info_release(&a);
	/* an intact archive under the wrong digest is corrupt too */
	assert_true(make("src", "b.tar.zst", outs, &a, &err));
	assert_int_equal(restore("b.tar.zst",
				 "0000000000000000000000000000000000000000000000000000000000000000",
				 "dst", &err), RY_ARCHIVE_CORRUPT);
	assert_non_null(strstr(err, "does not match"));
	free(err);
	assert_dir_only("dst", "keep ");
	ry_archive_info_release(&a);
}

/* An archive built by hand with an entry an honest one never has. */
static void hostile(const char *name, const char *path, const char *linkto, char digest[RY_DIGEST_HEX])
{
	char *f = at(name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_zstd(a);
	assert_int_equal(archive_write_open_filename(a, f), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	if (linkto) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, linkto);
		archive_entry_set_perm(e, 0777);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, 4);
	}
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (!linkto)
		archive_write_data(a, "evil", 4);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	char *err = NULL;
	int64_t size;
	assert_true(ry_hash_file(f, digest, &size, &err));
	free(f);
}

static void traversal_refused(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		const char *link;
	} cases[] = {
		{ "../evil", NULL }, { "a/../../evil", NULL }, { "/tmp/evil-abs", NULL },
		{ "ln", "/etc" }, { "ln", "../../outside" },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++) {
		char digest[RY_DIGEST_HEX], *err = NULL;
		hostile("h.tar.zst", cases[i].path, cases[i].link, digest);
		assert_int_equal(restore("h.tar.zst", digest, "dst/inner", &err), RY_ARCHIVE_CORRUPT);
		free(err);
		assert_dir_only("dst/inner", "");
		assert_dir_only("dst", "inner ");
	}
	assert_int_equal(access("/tmp/evil-abs", F_OK), -1);
}

static void symlink_in_tree_not_followed(void **state)
{
	(void)state;
	const char *outs[] = { "dist", NULL };
	struct ry_archive_info a;
	char *err = NULL;
	build_tree("src");
	assert_true(make("src", "a.tar.zst", outs, &a, &err));
	/* the tree has dist -> elsewhere (e.g. from the repository) */
	char *dst = at("dst"), *elsewhere = at("elsewhere"), *link = at("dst/dist");
	assert_true(ry_exec_mkdirs(dst, &err));
	assert_true(ry_exec_mkdirs(elsewhere, &err));
	assert_int_equal(symlink(elsewhere, link), 0);
	assert_int_equal(restore("a.tar.zst", a.digest, "dst", &err), RY_ARCHIVE_FAILED);
	assert_non_null(strstr(err, "in the way"));
	free(err);
	assert_dir_only("elsewhere", "");
	free(dst);
	free(elsewhere);
	free(link);
	ry_archive_info_release(&a);
}

static void path_rules(void **state)
{
	(void)state;
	const char *good[] = { "dist", "dist/", "services/cart/bin", "a.b/c-d_e", NULL };
	const char *bad[] = { "", "/abs", "..", "a/..", "a/./b", "a//b", "a\nb", NULL };
	for (size_t i = 0; good[i]; i++) {
		char *why = ry_archive_check_path(good[i]);
		if (why)
			fail_msg("\"%s\" refused: %s", good[i], why);
	}
	for (size_t i = 0; bad[i]; i++) {
		char *why = ry_archive_check_path(bad[i]);
		if (!why)
			fail_msg("\"%s\" accepted", bad[i]);
		free(why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_rules),
		cmocka_unit_test_setup_teardown(same_content_same_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(unsafe_outputs_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_archive_touches_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(traversal_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(symlink_in_tree_not_followed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
