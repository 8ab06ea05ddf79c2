/*
 * test-client.c — the client library: exit-code table, socket path order,
 * request/reply matching by id over a socketpair (events of other requests
 * skipped, err replies mapped to codes), and connect + hello against a tiny
 * in-process server (ok, version mismatch, nobody listening).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/client.h"

static void test_exit_codes(void **state)
{
	assert_int_equal(client_exit_for_code(PROTO_OK), 0);
	assert_int_equal(client_exit_for_code(-PROTO_E_QUEUE_FULL), 75);
	assert_int_equal(client_exit_for_code(-PROTO_E_CAPACITY), 75);
	assert_int_equal(client_exit_for_code(-PROTO_E_PERMISSION), 77);
	assert_int_equal(client_exit_for_code(-PROTO_E_CONFIG), 78);
	assert_int_equal(client_exit_for_code(-PROTO_E_TIMEOUT), 124);
	assert_int_equal(client_exit_for_code(-PROTO_E_CANCELLED), 130);
	assert_int_equal(client_exit_for_code(-PROTO_E_UNREACHABLE), 69);
	assert_int_equal(client_exit_for_code(-PROTO_E_NOT_FOUND), 1);
	assert_int_equal(client_exit_for_code(-PROTO_E_INVALID), 1);
	assert_int_equal(client_exit_for_state(POOL_DONE), 0);
	assert_int_equal(client_exit_for_state(POOL_FAILED), 1);
	assert_int_equal(client_exit_for_state(POOL_CANCELLED), 130);
	assert_int_equal(client_exit_for_state(POOL_EXPIRED), 124);
	assert_int_equal(client_exit_for_state(POOL_TIMEOUT), 124);
	assert_int_equal(client_exit_for_state(POOL_RUNNING), 1);
}

static void test_socket_path(void **state)
{
	char p[256], err[256], want[256];
	setenv("PLOT_SOCKET", "/env/s.sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	assert_int_equal(client_socket_path("/opt/s.sock", p, sizeof p, err, sizeof err), 0);
	assert_string_equal(p, "/opt/s.sock");
	assert_int_equal(client_socket_path(NULL, p, sizeof p, err, sizeof err), 0);
	assert_string_equal(p, "/env/s.sock");
	setenv("PLOT_SOCKET", "", 1);
	assert_int_equal(client_socket_path(NULL, p, sizeof p, err, sizeof err), 0);
	assert_string_equal(p, "/run/user/7/plot/plotd.sock");
	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(client_socket_path(NULL, p, sizeof p, err, sizeof err), 0);
	snprintf(want, sizeof want, "/tmp/plot-%u/plotd.sock", (unsigned)getuid());
	assert_string_equal(p, want);
	char longp[200];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = 0;
	assert_int_equal(client_socket_path(longp, p, sizeof p, err, sizeof err), -PROTO_E_TOO_LARGE);
	unsetenv("PLOT_SOCKET");
}

static void server_send(int fd, struct proto_msg *m)
{
	char err[256];
	assert_int_equal(proto_send(fd, m, NULL, err, sizeof err), 0);
}

static void test_call_matching(void **state)
{
	int sv[2];
	struct client *c;
	struct proto_msg req, rep, ev;
	char err[256];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(client_from_fd(sv[0], NULL, &c, err, sizeof err), 0);

	/* Queue the server's side first: an event for request 99, then the
	 * reply to request 1 (the client's first id). */
	proto_msg_init(&ev, PROTO_T_CHUNK, 99);
	ev.u.chunk = (struct proto_chunk){ 5, "x", 1 };
	server_send(sv[1], &ev);
	proto_msg_init(&req, PROTO_T_SUBMIT, 1);
	proto_msg_ok(&rep, &req);
	rep.u.submitted = (struct proto_submitted){ 12, "echo" };
	server_send(sv[1], &rep);

	proto_msg_init(&req, PROTO_T_SUBMIT, 0);
	req.u.submit.prompt = "hi";
	assert_int_equal(client_call(c, &req, &rep, 1000, err, sizeof err), 0);
	assert_int_equal(req.id, 1);
	assert_int_equal(rep.u.submitted.task, 12);
	proto_msg_clear(&rep);

	/* the request really went out */
	struct proto_reader r;
	proto_reader_init(&r, NULL);
	assert_int_equal(proto_recv(sv[1], &r, &ev, 1000, err, sizeof err), 0);
	assert_int_equal(ev.type, PROTO_T_SUBMIT);
	assert_string_equal(ev.u.submit.prompt, "hi");
	proto_msg_clear(&ev);

	/* an err reply becomes its code and message */
	proto_msg_init(&req, PROTO_T_SUBMIT, 2);
	proto_msg_err(&rep, &req, PROTO_E_QUEUE_FULL, "queue of echo is full (100 tasks)");
	server_send(sv[1], &rep);
	proto_msg_clear(&rep);
	proto_msg_init(&req, PROTO_T_SUBMIT, 0);
	assert_int_equal(client_call(c, &req, &rep, 1000, err, sizeof err), -PROTO_E_QUEUE_FULL);
	assert_string_equal(err, "queue of echo is full (100 tasks)");
	assert_int_equal(client_exit_for_code(-PROTO_E_QUEUE_FULL), 75);
	proto_msg_clear(&rep);

	/* stream events after the first reply are read with client_recv */
	proto_msg_init(&ev, PROTO_T_END, 3);
	ev.u.end = (struct proto_end){ .task = 12, .state = POOL_DONE };
	server_send(sv[1], &ev);
	assert_int_equal(client_recv(c, &ev, 1000, err, sizeof err), 0);
	assert_int_equal(ev.type, PROTO_T_END);
	assert_int_equal(ev.u.end.state, POOL_DONE);
	proto_msg_clear(&ev);

	/* nothing more: timeout; then the daemon goes away: EOF */
	assert_int_equal(client_recv(c, &ev, 10, err, sizeof err), -PROTO_E_TIMEOUT);
	close(sv[1]);
	assert_int_equal(client_recv(c, &ev, 1000, err, sizeof err), -PROTO_E_EOF);
	assert_string_equal(err, "the daemon closed the connection");
	proto_reader_free(&r);
	client_free(c);
}

/* A one-connection server answering hello with the given version. */
struct srv {
	int lfd;
	uint32_t version;
	char agent[64];
};

static void *serve_one(void *arg)
{
	struct srv *s = arg;
	char err[256];
	int fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct proto_reader r;
	struct proto_msg m, rep;
	proto_reader_init(&r, NULL);
	if (proto_recv(fd, &r, &m, 5000, err, sizeof err) == 0) {
		snprintf(s->agent, sizeof s->agent, "%s", m.u.hello.agent ? m.u.hello.agent : "");
		proto_msg_ok(&rep, &m);
		rep.u.hello = (struct proto_hello){ s->version, "fake plotd", 321 };
		proto_send(fd, &rep, NULL, err, sizeof err);
		proto_msg_clear(&m);
	}
	proto_reader_free(&r);
	close(fd);
	return NULL;
}

static void connect_with(uint32_t version, int want_rc)
{
	char dir[] = "/tmp/test-client-XXXXXX", path[128], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	struct srv s = { socket(AF_UNIX, SOCK_STREAM, 0), version, "" };
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s.lfd, 1), 0);
	pthread_t th;
	pthread_create(&th, NULL, serve_one, &s);
	struct client *c = NULL;
	struct client_opts o = { .agent = "test-agent", .timeout_ms = 2000 };
	int rc = client_connect(path, &o, &c, err, sizeof err);
	pthread_join(th, NULL);
	assert_int_equal(rc, want_rc);
	assert_string_equal(s.agent, "test-agent");
	if (rc == 0) {
		assert_int_equal(client_server_hello(c)->pid, 321);
		assert_string_equal(client_server_hello(c)->agent, "fake plotd");
		client_free(c);
	} else {
		char want[128];
		snprintf(want, sizeof want,
			 "protocol version mismatch: client speaks %d, plotd speaks %u",
			 PROTO_VERSION, (unsigned)version);
		assert_string_equal(err, want);
	}
	close(s.lfd);
	unlink(path);
	rmdir(dir);
}

static void test_connect(void **state)
{
	connect_with(PROTO_VERSION, 0);
	connect_with(PROTO_VERSION + 1, -PROTO_E_VERSION);
}

static void test_unreachable(void **state)
{
	char err[256];
	struct client *c = NULL;
	int rc = client_connect("/nonexistent-dir/plotd.sock", NULL, &c, err, sizeof err);
	assert_int_equal(rc, -PROTO_E_UNREACHABLE);
	assert_null(c);
	assert_string_equal(err, "no daemon at /nonexistent-dir/plotd.sock (/nonexistent-dir: No such file or directory)");
	assert_int_equal(client_exit_for_code(rc), 69);
}

/* The socket directory rules of client_verify_dir. */
static void test_verify_dir(void **state)
{
	char dir[] = "/tmp/test-client-XXXXXX", sock[64], err[256];
	uid_t trusted;
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/plotd.sock", dir);
	assert_int_equal(client_verify_dir(sock, 0, &trusted, err, sizeof err), 0);
	assert_int_equal(trusted, (uid_t)-1);
	assert_int_equal(chmod(dir, 0777), 0); /* others could plant a socket */
	assert_int_equal(client_verify_dir(sock, 1, &trusted, err, sizeof err),
			 -PROTO_E_PERMISSION);
	assert_non_null(strstr(err, "writable by others"));
	assert_int_equal(chmod(dir, 0711), 0);
	if (geteuid() != 0)
		fail_msg("the rest needs root, to give the directory to another uid");
	assert_int_equal(chown(dir, 65534, 65534), 0);
	/* a default path never trusts another user's directory */
	assert_int_equal(client_verify_dir(sock, 0, &trusted, err, sizeof err),
			 -PROTO_E_PERMISSION);
	assert_non_null(strstr(err, "owned by uid 65534"));
	/* a named one does, and then that user's daemon */
	assert_int_equal(client_verify_dir(sock, 1, &trusted, err, sizeof err), 0);
	assert_int_equal(trusted, 65534);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_socket_path),
		cmocka_unit_test(test_call_matching),
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_verify_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
