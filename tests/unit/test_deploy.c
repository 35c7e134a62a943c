/*
 * Unit tests for deploy/: every Kubernetes manifest and the Swarm stack
 * parse as YAML (libyaml, through pkg/ciimport's line-numbered loader), the
 * worker configs they carry load with pkg/config, and the invariants
 * hold: the grace period outlasts the drain deadline, credentials come from
 * a secret mounted as a file (never an environment variable), the liveness
 * probe asks 127.0.0.1:9187/healthz, the worker runs as non-root, labels and
 * the agent name come from the downward API.  The Dockerfile is checked
 * line by line (multi-stage Debian 12, non-root, tini).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ciimport/internal.h"
#include "config/config.h"

#define K8S "deploy/kubernetes/"

static struct ci_doc doc;

static const struct ci_node *load(const char *path)
{
	struct ci_node *root = NULL;
	char *err = NULL;
	if (!ci_load_file(&doc, path, path, &root, &err))
		fail_msg("%s", err);
	assert_non_null(root);
	assert_int_equal(root->type, CI_MAP);
	return root;
}

/* The node at a path of keys ("spec", "template", ...) and list indexes ("#0"). */
static const struct ci_node *at(const struct ci_node *n, const char *path)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && n; k = strtok_r(NULL, ".", &save))
		n = k[0] == '#' ? (n->type == CI_SEQ && (size_t)atoi(k + 1) < n->n ? n->items[atoi(k + 1)] : NULL)
				: ci_get(n, k);
	if (!n)
		fail_msg("no %s", path);
	return n;
}

static const char *text(const struct ci_node *n, const char *path)
{
	const char *s = ci_str(at(n, path));
	if (!s)
		fail_msg("%s is not text", path);
	return s;
}

/* A worker config held as text: loaded with pkg/config, as the worker would. */
static int drain_timeout_of(const char *conf, const char *where)
{
	char path[] = "/tmp/test_deploy.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, conf, strlen(conf)), (ssize_t)strlen(conf));
	close(fd);
	struct ry_worker_config c;
	char *err = NULL;
	ry_config_init(&c);
	if (!ry_config_load_file(&c, path, &err) || !ry_config_check(&c, &err))
		fail_msg("%s: %s", where, err);
	unlink(path);
	assert_non_null(c.db);
	/* The password is in the secret file, never in the config. */
	assert_null(strstr(c.db, "password"));
	assert_non_null(strstr(c.db, "passfile=/var/lib/railyard/.pgpass"));
	int drain = c.drain_timeout_s;
	ry_config_release(&c);
	return drain;
}

/* Nowhere in the tree may a secret become an environment variable. */
static void no_secret_env(const struct ci_node *n, const char *file)
{
	if (!n || n->type == CI_SCALAR)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->type == CI_MAP && i % 2 == 0 &&
		    (strcmp(n->items[i]->text, "secretKeyRef") == 0 || strcmp(n->items[i]->text, "secretRef") == 0))
			fail_msg("%s:%d: a secret as an environment variable", file, n->items[i]->line);
		no_secret_env(n->items[i], file);
	}
}

static void kubernetes_manifests(void **state)
{
	(void)state;
	const struct ci_node *cm = load(K8S "configmap.yaml"), *ds = load(K8S "daemonset.yaml");
	const struct ci_node *secret = load(K8S "secret.example.yaml"), *kust = load(K8S "kustomization.yaml");

	assert_string_equal(text(cm, "kind"), "ConfigMap");
	assert_string_equal(text(ds, "kind"), "DaemonSet");
	assert_string_equal(text(secret, "kind"), "Secret");
	assert_string_equal(text(kust, "resources.#0"), "configmap.yaml");
	assert_string_equal(text(kust, "resources.#1"), "daemonset.yaml");
	for (const struct ci_node *const *m = (const struct ci_node *const[]){ cm, ds, secret, NULL }; *m; m++)
		assert_string_equal(text(*m, "metadata.namespace"), text(kust, "namespace"));
}

static void kubernetes_invariants(void **state)
{
	(void)state;
	const struct ci_node *cm = load(K8S "configmap.yaml"), *ds = load(K8S "daemonset.yaml");
	const struct ci_node *secret = load(K8S "secret.example.yaml");
	const char *conf = ci_str(ci_get(at(cm, "data"), "worker.conf"));
	assert_non_null(conf);
	int drain = drain_timeout_of(conf, K8S "configmap.yaml");

	const struct ci_node *pod = at(ds, "spec.template.spec");
	long grace = atol(text(pod, "terminationGracePeriodSeconds"));
	if (grace <= drain || grace > drain + 120)
		fail_msg("terminationGracePeriodSeconds %ld: want drain_timeout_s %d plus a margin of up to 120 s",
			 grace, drain);

	const struct ci_node *c = at(pod, "containers.#0");
	const struct ci_node *probe = at(c, "livenessProbe.exec.command");
	assert_int_equal(probe->n, 4);
	assert_string_equal(probe->items[0]->text, "/usr/local/bin/railyard-healthcheck");
	assert_string_equal(probe->items[1]->text, "127.0.0.1");
	assert_string_equal(probe->items[2]->text, "9187");
	assert_string_equal(probe->items[3]->text, "/healthz");

	/* Non-root, no privilege escalation, nothing writable but volumes. */
	assert_string_equal(text(pod, "securityContext.runAsNonRoot"), "true");
	assert_true(atol(text(pod, "securityContext.runAsUser")) > 0);
	assert_string_equal(text(c, "securityContext.allowPrivilegeEscalation"), "false");
	assert_string_equal(text(c, "securityContext.readOnlyRootFilesystem"), "true");
	assert_string_equal(text(c, "securityContext.capabilities.drop.#0"), "ALL");

	/* The secret is a read-only file volume, of the Secret the example creates. */
	no_secret_env(ds, K8S "daemonset.yaml");
	const struct ci_node *vols = at(pod, "volumes"), *mounts = at(c, "volumeMounts");
	const char *secret_vol = NULL, *podinfo_vol = NULL, *config_vol = NULL;
	for (size_t i = 0; i < vols->n; i++) {
		if (ci_get(vols->items[i], "secret")) {
			secret_vol = text(vols->items[i], "name");
			assert_string_equal(text(vols->items[i], "secret.secretName"), text(secret, "metadata.name"));
		}
		if (ci_get(vols->items[i], "downwardAPI")) {
			podinfo_vol = text(vols->items[i], "name");
			assert_string_equal(text(vols->items[i], "downwardAPI.items.#0.fieldRef.fieldPath"),
					    "metadata.annotations");
			assert_string_equal(text(vols->items[i], "downwardAPI.items.#0.path"), "annotations");
		}
		if (ci_get(vols->items[i], "configMap")) {
			config_vol = text(vols->items[i], "name");
			assert_string_equal(text(vols->items[i], "configMap.name"), text(cm, "metadata.name"));
		}
	}
	assert_non_null(secret_vol);
	assert_non_null(podinfo_vol);
	assert_non_null(config_vol);
	bool secret_mounted = false;
	for (size_t i = 0; i < mounts->n; i++) {
		if (strcmp(text(mounts->items[i], "name"), secret_vol) == 0) {
			secret_mounted = true;
			assert_string_equal(text(mounts->items[i], "readOnly"), "true");
			assert_string_equal(text(mounts->items[i], "mountPath"), "/etc/railyard/secret");
		}
	}
	assert_true(secret_mounted);

	/* The entrypoint is told where things are; the agent is named after the node. */
	const struct ci_node *env = at(c, "env");
	bool name_from_node = false, podinfo = false;
	for (size_t i = 0; i < env->n; i++) {
		const char *n = text(env->items[i], "name");
		if (strcmp(n, "RAILYARD_AGENT_NAME") == 0)
			name_from_node = strcmp(text(env->items[i], "valueFrom.fieldRef.fieldPath"), "spec.nodeName") == 0;
		if (strcmp(n, "RAILYARD_PODINFO_DIR") == 0)
			podinfo = strcmp(text(env->items[i], "value"), "/etc/railyard/podinfo") == 0;
	}
	assert_true(name_from_node);
	assert_true(podinfo);
	assert_non_null(ci_str(ci_get(at(ds, "spec.template.metadata.annotations"), "railyard.dev/labels")));
	assert_string_equal(ci_str(ci_get(at(ds, "spec.selector.matchLabels"), "app.kubernetes.io/name")),
			    ci_str(ci_get(at(ds, "spec.template.metadata.labels"), "app.kubernetes.io/name")));
}

static void swarm_stack(void **state)
{
	(void)state;
	const struct ci_node *stack = load("deploy/swarm/railyard-stack.yml");
	FILE *f = fopen("deploy/swarm/worker.conf", "r");
	char conf[4096];
	assert_non_null(f);
	size_t n = fread(conf, 1, sizeof(conf) - 1, f);
	fclose(f);
	conf[n] = '\0';
	int drain = drain_timeout_of(conf, "deploy/swarm/worker.conf");

	const struct ci_node *w = at(stack, "services.worker");
	long grace = atol(text(w, "stop_grace_period"));
	assert_non_null(strstr(text(w, "stop_grace_period"), "s"));
	if (grace <= drain || grace > drain + 120)
		fail_msg("stop_grace_period %lds: want drain_timeout_s %d plus a margin", grace, drain);
	assert_string_equal(text(w, "secrets.#0.source"), "railyard_pgpass");
	assert_string_equal(text(w, "secrets.#0.mode"), "0400");
	assert_string_equal(text(w, "secrets.#0.uid"), "10001");
	assert_string_equal(text(w, "environment.RAILYARD_SECRET_DIR"), "/run/secrets");
	assert_string_equal(text(w, "secrets.#0.target"), "pgpass");
	assert_non_null(ci_get(at(stack, "secrets"), "railyard_pgpass"));
	assert_string_equal(text(w, "configs.#0.target"), "/etc/railyard/worker.conf");
	const struct ci_node *hc = at(w, "healthcheck.test");
	assert_int_equal(hc->n, 5);
	assert_string_equal(hc->items[2]->text, "127.0.0.1");
	assert_string_equal(hc->items[3]->text, "9187");
	assert_string_equal(hc->items[4]->text, "/healthz");
	assert_string_equal(text(w, "deploy.mode"), "global");
	assert_string_equal(text(w, "init"), "true");
	/* No credential among the environment variables. */
	const struct ci_node *env = at(w, "environment");
	for (size_t i = 0; i + 1 < env->n; i += 2)
		if (strstr(env->items[i]->text, "PASS") || strstr(env->items[i]->text, "SECRET_KEY"))
			fail_msg("environment %s looks like a credential", env->items[i]->text);
}

static void dockerfile(void **state)
{
	(void)state;
	FILE *f = fopen("deploy/Dockerfile", "r");
	char line[1024];
	int from_debian = 0, stages = 0;
	bool user = false, tini = false, copy_from_build = false, health = false, slim_last = false;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "FROM ", 5) == 0) {
			stages++;
			from_debian += strncmp(line, "FROM debian:12", 14) == 0;
			slim_last = strstr(line, "debian:12-slim") != NULL;
		}
		if (strncmp(line, "USER ", 5) == 0)
			user = atoi(line + 5) > 0;
		if (strncmp(line, "ENTRYPOINT ", 11) == 0)
			tini = strstr(line, "\"/usr/bin/tini\", \"--\"") != NULL;
		copy_from_build |= strncmp(line, "COPY --from=build ", 18) == 0;
		health |= strstr(line, "\"127.0.0.1\", \"9187\", \"/healthz\"") != NULL;
	}
	fclose(f);
	assert_int_equal(stages, 2);
	assert_int_equal(from_debian, 2);
	assert_true(slim_last);
	assert_true(user);
	assert_true(tini);
	assert_true(copy_from_build);
	assert_true(health);
}

static int teardown(void **state)
{
	(void)state;
	ci_doc_release(&doc);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kubernetes_manifests),
		cmocka_unit_test(kubernetes_invariants),
		cmocka_unit_test(swarm_stack),
		cmocka_unit_test(dockerfile),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
