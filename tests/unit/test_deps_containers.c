/*
 * Unit tests for the container, runtime and protobuf detectors of
 * pkg/deps.  Requirements: a Dockerfile's FROM and COPY --from of another
 * service's image are build edges (stages and public images are not), ARG
 * defaults are substituted, and COPY of another service's files counts
 * when compose builds with a wider context; compose ties services to
 * directories by build.context, depends_on/links are runtime edges, and
 * so are environment values and env_file entries whose address variables
 * name another service after .env substitution; a database image is a
 * service without root; Kubernetes env values (with $(VAR) expansion,
 * configMapKeyRef, envFrom) name services by Service objects and
 * workloads; templated YAML is skipped; a runtime cycle is a warning, a
 * build cycle an error with its path and evidence; proto imports are build
 * edges to the service owning the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static void dockerfiles(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "base/Dockerfile", "FROM debian:12\nRUN apt-get update\n" },
	     { "cart/go.mod", "module cart\n" },
	     { "cart/Dockerfile",
	       "ARG BASE=registry.example.com:5000/shop/base:1.4\n"
	       "FROM golang:1.22 AS build\n"
	       "COPY . /src\n"
	       "RUN go build \\\n"
	       "    -o /cart ./...\n"
	       "FROM ${BASE}\n"
	       "COPY --from=build /cart /cart\n"
	       "COPY --from=ghcr.io/acme/tools:latest /bin/tool /bin/tool\n"
	       "COPY --from=0 /x /x\n" },
	     { "tools/Dockerfile", "FROM alpine\n" },
	     { "node/Dockerfile", "FROM node:20\n" },
	     { "web/Dockerfile", "# syntax=docker/dockerfile:1\nFROM node:20-alpine\n" });
	assert_edge(&g, "cart", "base", RY_DEPS_BUILD, "cart/Dockerfile", 6);
	assert_edge(&g, "cart", "tools", RY_DEPS_BUILD, "cart/Dockerfile", 8);
	/* "FROM node:20" is the public image, not the service called node */
	assert_no_edge(&g, "web", "node");
	assert_int_equal(active_edges(&g), 2);
	assert_true(g.services[svc(&g, "cart")].has_dockerfile);
	assert_string_equal(g.services[svc(&g, "cart")].ecosystem, "go");
	release(&g, &cfg);
}

static const char compose[] =
	"x-common: &common\n"
	"  restart: always\n"
	"services:\n"
	"  web:\n"
	"    <<: *common\n"
	"    build: ./apps/web\n"
	"    depends_on:\n"
	"      api:\n"
	"        condition: service_healthy\n"
	"    environment:\n"
	"      API_URL: http://api-svc:8080/v1\n"
	"      CACHE_HOST: ${CACHE}\n"
	"      LOG_LEVEL: debug\n"
	"  api-svc:\n"
	"    build:\n"
	"      context: .\n"
	"      dockerfile: services/api/Dockerfile\n"
	"    image: acme/api:dev\n"
	"    links: [\"db:database\"]\n"
	"    env_file: config/api.env\n"
	"  db:\n"
	"    image: postgres:16\n"
	"  redis:\n"
	"    image: redis:7\n"
	"  api:\n"
	"    image: acme/api:dev\n";

static void compose_runtime_edges(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "docker-compose.yml", compose },
	     { ".env", "# compose substitution\nCACHE=redis:6379\n" },
	     { "config/api.env", "DATABASE_URL=postgres://u:p@db:5432/x\nPORT=8080\n" },
	     { "apps/web/package.json", "{\"name\": \"web\"}" },
	     { "apps/web/Dockerfile", "FROM node:20\n" },
	     { "services/api/go.mod", "module example.com/api\n" },
	     { "services/api/Dockerfile", "FROM golang:1.22\nCOPY libs/auth /auth\nCOPY services/api /src\n" },
	     { "libs/auth/go.mod", "module example.com/auth\n" });
	/* compose names map onto the repository's services */
	assert_edge(&g, "web", "api", RY_DEPS_RUNTIME, "docker-compose.yml", 8);
	assert_edge(&g, "web", "redis", RY_DEPS_RUNTIME, "docker-compose.yml", 12);
	assert_edge(&g, "api", "db", RY_DEPS_RUNTIME, "docker-compose.yml", 19);
	const struct ry_deps_edge *e = find_edge(&g, "api", "db", RY_DEPS_RUNTIME);
	assert_int_equal(e->more.n, 1);		/* the env_file line too */
	assert_string_equal(e->more.items[0], "config/api.env:1");
	/* the build context is the top: COPY libs/auth is the auth service's code */
	assert_edge(&g, "api", "auth", RY_DEPS_BUILD, "services/api/Dockerfile", 2);
	assert_null(g.services[svc(&g, "db")].root);
	assert_string_equal(g.services[svc(&g, "db")].ecosystem, "image");
	assert_string_equal(g.services[svc(&g, "api")].deploy_file, "docker-compose.yml");
	assert_int_equal(active_edges(&g), 4);
	assert_int_equal(g.warnings.n, 0);
	release(&g, &cfg);
}

static const char k8s[] =
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata:\n"
	"  name: frontend\n"
	"spec:\n"
	"  template:\n"
	"    metadata:\n"
	"      labels: {app: frontend}\n"
	"    spec:\n"
	"      containers:\n"
	"        - name: server\n"
	"          image: gcr.io/shop/frontend:v1\n"
	"          envFrom:\n"
	"            - configMapRef: {name: frontend-config}\n"
	"          env:\n"
	"            - name: CART_PORT\n"
	"              value: \"7070\"\n"
	"            - name: CART_SERVICE_ADDR\n"
	"              value: \"cart-svc.shop.svc.cluster.local:$(CART_PORT)\"\n"
	"            - name: CURRENCY_ADDR\n"
	"              valueFrom:\n"
	"                configMapKeyRef: {name: frontend-config, key: currency}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata:\n"
	"  name: cart-svc\n"
	"spec:\n"
	"  selector:\n"
	"    app: cartservice\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: ConfigMap\n"
	"metadata: {name: frontend-config}\n"
	"data:\n"
	"  currency: currencyservice:7000\n"
	"  ADS_HOST: adservice\n"
	"---\n"
	"apiVersion: apps/v1\n"
	"kind: StatefulSet\n"
	"metadata: {name: cartservice}\n"
	"spec:\n"
	"  template:\n"
	"    metadata: {labels: {app: cartservice, tier: back}}\n"
	"    spec:\n"
	"      containers: [{name: c, image: cartservice}]\n";

static void kubernetes_runtime_edges(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "deploy/app.yaml", k8s },
	     { "deploy/chart/templates/x.yaml", "apiVersion: v1\nkind: {{ .Values.kind }}\n" },
	     { "src/frontend/go.mod", "module frontend\n" },
	     { "src/frontend/Dockerfile", "FROM scratch\n" },
	     { "src/cartservice/Dockerfile", "FROM scratch\n" },
	     { "src/currencyservice/package.json", "{\"name\": \"currency\"}" },
	     { "src/currencyservice/Dockerfile", "FROM node:20\n" },
	     { "src/adservice/build.gradle", "" },
	     { "src/adservice/Dockerfile", "FROM eclipse-temurin:21\n" },
	     { "openapi.yaml", "openapi: 3.0.0\ninfo: {title: x}\n" });
	assert_edge(&g, "frontend", "cartservice", RY_DEPS_RUNTIME, "deploy/app.yaml", 19);
	assert_edge(&g, "frontend", "currency", RY_DEPS_RUNTIME, "deploy/app.yaml", 36);
	assert_edge(&g, "frontend", "adservice", RY_DEPS_RUNTIME, "deploy/app.yaml", 37);
	assert_int_equal(active_edges(&g), 3);
	assert_int_equal(g.warnings.n, 0);
	bool templated = false;
	for (size_t i = 0; i < g.notes.n; i++)
		templated |= strstr(g.notes.items[i], "templated YAML") != NULL;
	assert_true(templated);
	release(&g, &cfg);
}

static void images_built_without_a_dockerfile(void **state)
{
	(void)state;
	/* Spring Boot services built by Jib or buildpacks: no Dockerfile, the
	 * compose file names their images after the artifacts */
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "pom.xml", "<project><groupId>p</groupId><artifactId>petclinic</artifactId>"
			  "<packaging>pom</packaging></project>" },
	     { "customers-service/pom.xml",
	       "<project><groupId>p</groupId><artifactId>customers-service</artifactId></project>" },
	     { "config-server/pom.xml",
	       "<project><groupId>p</groupId><artifactId>config-server</artifactId></project>" },
	     { "docker-compose.yml",
	       "services:\n"
	       "  config:\n"
	       "    image: springcommunity/config-server\n"
	       "  customers:\n"
	       "    image: springcommunity/customers-service:3.2\n"
	       "    depends_on: [config]\n"
	       "  db:\n"
	       "    image: mysql:8\n" });
	assert_edge(&g, "customers-service", "config-server", RY_DEPS_RUNTIME, "docker-compose.yml", 6);
	assert_int_equal(g.nservices, 4);	/* the three poms and the database image */
	assert_string_equal(g.services[svc(&g, "customers-service")].deploy_name, "customers");
	release(&g, &cfg);
}

static void cycles_name_their_path(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "pom.xml", "<project><groupId>s</groupId><artifactId>p</artifactId>"
			  "<packaging>pom</packaging></project>" },
	     { "services/orders/pom.xml",
	       "<project><groupId>s</groupId>\n<artifactId>orders</artifactId>\n<dependencies>\n"
	       "<dependency><groupId>s</groupId><artifactId>payments</artifactId></dependency>\n"
	       "</dependencies></project>\n" },
	     { "services/payments/pom.xml",
	       "<project><groupId>s</groupId>\n<artifactId>payments</artifactId>\n<dependencies>\n"
	       "<dependency><groupId>s</groupId><artifactId>orders</artifactId></dependency>\n"
	       "</dependencies></project>\n" },
	     { "docker-compose.yml",
	       "services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, depends_on: [a]}\n" });
	struct ry_strlist errors = { 0 }, warnings = { 0 };
	assert_int_equal(ry_deps_check_cycles(&g, NULL, &errors, &warnings, 5), 1);
	assert_int_equal(errors.n, 1);
	const char *want = "cycle: orders -> payments -> orders (build, services/payments/pom.xml:4)\n"
			   "  orders -> payments: build, services/orders/pom.xml:4\n"
			   "  payments -> orders: build, services/payments/pom.xml:4";
	assert_string_equal(errors.items[0], want);
	assert_int_equal(warnings.n, 1);
	assert_non_null(strstr(warnings.items[0], "runtime cycle (deploys are not ordered along it): "
						  "a -> b -> a (runtime, docker-compose.yml:3)"));
	bool *on = calloc(g.nedges, sizeof(bool));
	ry_deps_runtime_cycle_edges(&g, on);
	for (size_t i = 0; i < g.nedges; i++)
		assert_int_equal(on[i], g.edges[i].kind == RY_DEPS_RUNTIME);
	free(on);
	ry_strlist_release(&errors);
	ry_strlist_release(&warnings);
	release(&g, &cfg);
}

static void proto_imports(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "protos/shop/cart/v1/cart.proto",
	       "syntax = \"proto3\";\npackage shop.cart.v1;\nimport \"google/protobuf/empty.proto\";\n"
	       "import \"shop/money/v1/money.proto\";\n" },
	     { "protos/shop/money/v1/money.proto", "syntax = \"proto3\";\n" },
	     { "services/checkout/go.mod", "module checkout\n" },
	     { "services/checkout/api/checkout.proto",
	       "syntax = \"proto3\";\nimport public \"shop/cart/v1/cart.proto\";\n"
	       "import \"api/local.proto\";\nimport \"validate/validate.proto\";\n" },
	     { "services/checkout/api/local.proto", "" },
	     { "services/pricing/go.mod", "module pricing\n" },
	     { "services/pricing/money.proto", "syntax = \"proto3\";\n" },
	     { "services/billing/go.mod", "module billing\n" },
	     { "services/billing/b.proto", "import \"money.proto\";\n" });
	/* protos no service owns make one service per top-level directory */
	assert_string_equal(g.services[svc(&g, "protos")].ecosystem, "proto");
	assert_edge(&g, "checkout", "protos", RY_DEPS_BUILD, "services/checkout/api/checkout.proto", 2);
	/* "money.proto" could be pricing's or the shared one: no guess */
	assert_no_edge(&g, "billing", "pricing");
	assert_no_edge(&g, "billing", "protos");
	assert_int_equal(active_edges(&g), 1);
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dockerfiles),
		cmocka_unit_test(compose_runtime_edges),
		cmocka_unit_test(kubernetes_runtime_edges),
		cmocka_unit_test(images_built_without_a_dockerfile),
		cmocka_unit_test(cycles_name_their_path),
		cmocka_unit_test(proto_imports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
