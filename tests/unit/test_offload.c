/*
 * pkg/offload: work runs on pool threads, every done function on the loop
 * thread, oldest first per thread; freeing the pool finishes what was
 * queued and still reports it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "offload/offload.h"

#define JOBS 200

struct job {
	int n;
	pthread_t worked_on;
	pthread_t done_on;
	bool worked, done;
};

static pthread_t loop_thread;

static void work(void *arg)
{
	struct job *j = arg;
	j->worked_on = pthread_self();
	j->worked = true;
	if (j->n % 50 == 0)
		usleep(2000);	/* some jobs are slow */
}

static int done_count;

static void done(void *arg)
{
	struct job *j = arg;
	j->done_on = pthread_self();
	j->done = j->worked;	/* never before its work */
	done_count++;
}

static void work_on_threads_done_on_loop(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char *err = NULL;
	struct ry_offload *o = ry_offload_new(base, 3, &err);
	struct job *jobs = ry_calloc(JOBS, sizeof(*jobs));
	assert_non_null(o);
	loop_thread = pthread_self();
	done_count = 0;
	for (int i = 0; i < JOBS; i++) {
		jobs[i].n = i;
		ry_offload_run(o, work, done, &jobs[i]);
	}
	while (done_count < JOBS)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(ry_offload_pending(o), 0);
	for (int i = 0; i < JOBS; i++) {
		assert_true(jobs[i].done);
		assert_true(pthread_equal(jobs[i].done_on, loop_thread));
		assert_false(pthread_equal(jobs[i].worked_on, loop_thread));
	}
	ry_offload_free(o);
	event_base_free(base);
	free(jobs);
}

static void free_finishes_queued_work(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char *err = NULL;
	struct ry_offload *o = ry_offload_new(base, 1, &err);
	struct job *jobs = ry_calloc(20, sizeof(*jobs));
	done_count = 0;
	for (int i = 0; i < 20; i++)
		ry_offload_run(o, work, done, &jobs[i]);
	ry_offload_free(o);	/* without running the loop */
	assert_int_equal(done_count, 20);
	for (int i = 0; i < 20; i++)
		assert_true(jobs[i].done);
	event_base_free(base);
	free(jobs);
}

static void bad_thread_count_refused(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char *err = NULL;
	assert_null(ry_offload_new(base, 0, &err));
	assert_non_null(err);
	free(err);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(work_on_threads_done_on_loop),
		cmocka_unit_test(free_finishes_queued_work),
		cmocka_unit_test(bad_thread_count_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
