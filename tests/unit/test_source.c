/*
 * pkg/source against real git repositories made here: what a source is;
 * mirrors fetched only when a revision is missing (a known commit needs no
 * origin at all), under a lock that concurrent resolvers share safely;
 * each task gets its own tree of the commit; missing repositories and
 * revisions are errors that say which; input digests come from git's
 * object ids (and a stat cache for plain directories).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"
#include "source/source.h"

static char dir[64];
static char *origin, *state;

static void sh(const char *fmt, ...) RY_PRINTF(1, 2);

/* Runs a shell command in dir; fails the test when it fails. */
static void sh(const char *fmt, ...)
{
	va_list ap;
	char cmd[4096];
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *full = ry_asprintf("cd %s && { %s; } >/dev/null 2>&1", dir, cmd);
	int rc = system(full);
	free(full);
	if (rc != 0)
		fail_msg("command failed: %s", cmd);
}

static char *sh_out(const char *cmd)
{
	char *full = ry_asprintf("cd %s && %s", dir, cmd);
	FILE *p = popen(full, "r");
	char buf[512] = "";
	if (!fgets(buf, sizeof(buf), p))
		buf[0] = '\0';
	pclose(p);
	free(full);
	buf[strcspn(buf, "\n")] = '\0';
	return ry_strdup(buf);
}

#define GIT "git -c user.email=t@t -c user.name=t -c init.defaultBranch=main"

static int setup(void **s)
{
	(void)s;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-source-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	origin = ry_asprintf("%s/origin", dir);
	state = ry_asprintf("%s/state", dir);
	sh(GIT " init -q origin && cd origin && mkdir -p services/a services/b && "
	   "echo a > services/a/main.c && echo b > services/b/main.c && echo 1 > go.sum && "
	   "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh && ln -s services/a link && "
	   GIT " add -A && " GIT " commit -qm one");
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	ry_exec_remove_tree(dir);
	free(origin);
	free(state);
	return 0;
}

static void classify(void **s)
{
	(void)s;
	enum ry_source_kind k;
	char *err = NULL;
	assert_true(ry_source_classify("https://example.com/x.git", &k, &err));
	assert_int_equal(k, RY_SOURCE_GIT);
	assert_true(ry_source_classify("git@example.com:team/x.git", &k, &err));
	assert_int_equal(k, RY_SOURCE_GIT);
	assert_true(ry_source_classify(origin, &k, &err));
	assert_int_equal(k, RY_SOURCE_GIT);
	sh("git clone -q --bare origin bare.git && mkdir plain && echo x > plain/f");
	char *bare = ry_asprintf("%s/bare.git", dir), *plain = ry_asprintf("%s/plain", dir);
	assert_true(ry_source_classify(bare, &k, &err));
	assert_int_equal(k, RY_SOURCE_GIT);
	assert_true(ry_source_classify(plain, &k, &err));
	assert_int_equal(k, RY_SOURCE_DIR);
	assert_false(ry_source_classify("/nonexistent/repo", &k, &err));
	assert_string_equal(err, "source /nonexistent/repo: no such repository or directory");
	free(err);
	assert_false(ry_source_classify("--upload-pack=touch /tmp/x", &k, &err));
	free(err);
	free(bare);
	free(plain);
}

static void resolve_fetches_only_when_needed(void **s)
{
	(void)s;
	char commit[RY_DIGEST_HEX], again[RY_DIGEST_HEX];
	char *mirror = NULL, *err = NULL;
	char *head = sh_out("git -C origin rev-parse HEAD");
	assert_true(ry_source_resolve(state, origin, "main", commit, &mirror, &err));
	assert_string_equal(commit, head);
	free(mirror);
	/* a commit the mirror has: works with the origin gone */
	sh("mv origin origin.away");
	assert_true(ry_source_resolve(state, origin, head, again, &mirror, &err));
	assert_string_equal(again, head);
	free(mirror);
	/* a branch name must be fetched: the origin's absence is the error */
	assert_false(ry_source_resolve(state, origin, "main", again, &mirror, &err));
	assert_non_null(strstr(err, "cannot fetch"));
	assert_non_null(strstr(err, origin));
	free(err);
	sh("mv origin.away origin");
	/* a new commit appears upstream: fetched when asked for */
	sh("cd origin && echo 2 > go.sum && " GIT " commit -qam two");
	char *head2 = sh_out("git -C origin rev-parse HEAD");
	assert_true(ry_source_resolve(state, origin, head2, again, &mirror, &err));
	assert_string_equal(again, head2);
	free(mirror);
	/* a revision nobody has */
	assert_false(ry_source_resolve(state, origin, "0123456789012345678901234567890123456789",
				       again, &mirror, &err));
	assert_non_null(strstr(err, "revision 0123456789012345678901234567890123456789 not found in"));
	free(err);
	assert_false(ry_source_resolve(state, "/nonexistent/repo.git", "main", again, &mirror, &err));
	assert_non_null(strstr(err, "cannot fetch /nonexistent/repo.git"));
	free(err);
	free(head);
	free(head2);
}

static void concurrent_resolvers_share_one_mirror(void **s)
{
	(void)s;
	pid_t kids[4];
	char *head = sh_out("git -C origin rev-parse HEAD");
	for (int i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			char commit[RY_DIGEST_HEX], *mirror = NULL, *err = NULL;
			bool ok = ry_source_resolve(state, origin, "main", commit, &mirror, &err) &&
				  strcmp(commit, head) == 0;
			char *dest = ry_asprintf("%s/tree%d", dir, i);
			ok = ok && ry_source_checkout(state, mirror, commit, dest, &err);
			_exit(ok ? 0 : 1);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char *n = sh_out("ls state/mirrors | grep -c '\\.git$'");
	assert_string_equal(n, "1");
	free(n);
	n = sh_out("ls state/snapshots | grep -vc lock");
	assert_string_equal(n, "1");
	free(n);
	free(head);
}

static void each_task_gets_its_own_tree(void **s)
{
	(void)s;
	char commit[RY_DIGEST_HEX], *mirror = NULL, *err = NULL;
	char *a = ry_asprintf("%s/ta", dir), *b = ry_asprintf("%s/tb", dir);
	assert_true(ry_source_resolve(state, origin, "main", commit, &mirror, &err));
	assert_true(ry_source_checkout(state, mirror, commit, a, &err));
	assert_true(ry_source_checkout(state, mirror, commit, b, &err));
	/* the same files as git checks out, exec bit and symlink included */
	sh("git clone -q origin ref && diff -r --no-dereference -x .git ref ta && test -x ta/run.sh && "
	   "test \"$(readlink ta/link)\" = services/a");
	/* a task writing its tree does not touch another's */
	sh("echo changed >> ta/services/a/main.c && rm tb/go.sum");
	sh("test \"$(cat tb/services/a/main.c)\" = a && test -f ta/go.sum");
	/* nor the host's snapshot */
	char *c = ry_asprintf("%s/tc", dir);
	assert_true(ry_source_checkout(state, mirror, commit, c, &err));
	sh("test \"$(cat tc/services/a/main.c)\" = a && test -f tc/go.sum");
	/* an existing destination is refused, not merged into */
	assert_false(ry_source_checkout(state, mirror, commit, a, &err));
	free(err);
	free(mirror);
	free(a);
	free(b);
	free(c);
}

static void git_input_values(void **s)
{
	(void)s;
	char commit[RY_DIGEST_HEX], *mirror = NULL, *err = NULL;
	struct ry_strlist in = { 0 }, v1 = { 0 }, v2 = { 0 };
	assert_true(ry_source_resolve(state, origin, "main", commit, &mirror, &err));
	ry_strlist_add(&in, "services/a/");
	ry_strlist_add(&in, "go.sum");
	ry_strlist_add(&in, "services/*/main.c");
	ry_strlist_add(&in, "missing/");
	ry_strlist_add(&in, ".");
	assert_true(ry_source_git_inputs(mirror, commit, &in, &v1, &err));
	assert_int_equal(v1.n, 5);
	char *tree_a = sh_out("echo tree $(git -C origin rev-parse HEAD:services/a)");
	char *blob = sh_out("echo blob $(git -C origin rev-parse HEAD:go.sum)");
	char *root = sh_out("echo tree $(git -C origin rev-parse 'HEAD^{tree}')");
	assert_string_equal(v1.items[0], tree_a);
	assert_string_equal(v1.items[1], blob);
	assert_true(strncmp(v1.items[2], "files ", 6) == 0);
	assert_string_equal(v1.items[3], "absent");
	assert_string_equal(v1.items[4], root);
	/* a change to services/b: services/a's value stays, the glob's moves */
	sh("cd origin && echo b2 > services/b/main.c && " GIT " commit -qam b");
	free(mirror);
	assert_true(ry_source_resolve(state, origin, "main", commit, &mirror, &err));
	assert_true(ry_source_git_inputs(mirror, commit, &in, &v2, &err));
	assert_string_equal(v1.items[0], v2.items[0]);
	assert_string_equal(v1.items[1], v2.items[1]);
	assert_string_not_equal(v1.items[2], v2.items[2]);
	assert_string_not_equal(v1.items[4], v2.items[4]);
	free(tree_a);
	free(blob);
	free(root);
	free(mirror);
	ry_strlist_release(&in);
	ry_strlist_release(&v1);
	ry_strlist_release(&v2);
}

static void plain_directory_inputs_and_copy(void **s)
{
	(void)s;
	struct ry_strlist in = { 0 }, v1 = { 0 }, v2 = { 0 }, v3 = { 0 };
	char *err = NULL;
	char *root = ry_asprintf("%s/origin", dir), *cache = ry_asprintf("%s/statcache", dir);
	ry_strlist_add(&in, "services/a/");
	ry_strlist_add(&in, "go.sum");
	ry_strlist_add(&in, "nothing");
	/* old files: trusted to the stat cache */
	sh("find origin -exec touch -h -d '2020-01-01' {} +");
	assert_true(ry_source_dir_inputs(root, &in, cache, &v1, &err));
	assert_int_equal(v1.n, 3);
	assert_true(strncmp(v1.items[0], "files ", 6) == 0);
	char *sum = sh_out("echo file $(sha256sum origin/go.sum | cut -c1-64)");
	assert_string_equal(v1.items[1], sum);
	assert_string_equal(v1.items[2], "absent");
	sh("grep -q origin/go.sum statcache");
	assert_true(ry_source_dir_inputs(root, &in, cache, &v2, &err));
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(v1.items[i], v2.items[i]);
	/* same size, new content: the stat changed (ctime), so it is re-read */
	sh("echo z > origin/services/a/main.c && touch -d '2020-01-01' origin/services/a/main.c");
	assert_true(ry_source_dir_inputs(root, &in, cache, &v3, &err));
	assert_string_not_equal(v1.items[0], v3.items[0]);
	assert_string_equal(v1.items[1], v3.items[1]);
	/* a plain directory source is copied, not shared */
	char *dest = ry_asprintf("%s/copy", dir);
	assert_true(ry_source_copy_tree(root, dest, &err));
	sh("diff -r --no-dereference origin copy && test -x copy/run.sh");
	free(dest);
	free(sum);
	free(root);
	free(cache);
	ry_strlist_release(&in);
	ry_strlist_release(&v1);
	ry_strlist_release(&v2);
	ry_strlist_release(&v3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(classify, setup, teardown),
		cmocka_unit_test_setup_teardown(resolve_fetches_only_when_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_resolvers_share_one_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(each_task_gets_its_own_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(git_input_values, setup, teardown),
		cmocka_unit_test_setup_teardown(plain_directory_inputs_and_copy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
