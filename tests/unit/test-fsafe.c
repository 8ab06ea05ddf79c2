/*
 * test-fsafe.c — lib/sys/fsafe.c: files are never opened through a planted
 * symlink or hard link, nor in a directory others may plant files in, and
 * a refused O_TRUNC leaves the target untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/fsafe.h"

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "/tmp/test-fsafe-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

static void path(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_text(const char *p, const char *text)
{
	char buf[64] = "";
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	assert_string_equal(buf, text);
}

static void test_create_and_reopen(void **state)
{
	char p[512], err[256];
	path(p, "ok.pid");
	int fd = fsafe_open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644, err, sizeof err);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "1\n", 2), 2);
	close(fd);
	fd = fsafe_open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644, err, sizeof err);
	assert_true(fd >= 0);
	close(fd);
	expect_text(p, "");
}

static void test_symlink_refused(void **state)
{
	char p[512], victim[512], err[256];
	path(victim, "victim");
	path(p, "link");
	write_file(victim, "precious");
	assert_int_equal(symlink(victim, p), 0);
	assert_int_equal(fsafe_open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644, err, sizeof err), -1);
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	expect_text(victim, "precious");
}

static void test_hardlink_refused(void **state)
{
	char p[512], victim[512], err[256];
	path(victim, "victim2");
	path(p, "hard");
	write_file(victim, "precious");
	assert_int_equal(link(victim, p), 0);
	assert_int_equal(fsafe_open(p, O_WRONLY | O_APPEND | O_TRUNC, 0644, err, sizeof err), -1);
	assert_non_null(strstr(err, "hard links"));
	expect_text(victim, "precious");
}

static void test_open_dir_refused(void **state)
{
	char sub[512], p[600], err[256];
	path(sub, "open");
	assert_int_equal(mkdir(sub, 0777), 0);
	assert_int_equal(chmod(sub, 0777), 0); /* writable by all, not sticky */
	snprintf(p, sizeof p, "%s/x.log", sub);
	assert_int_equal(fsafe_open(p, O_WRONLY | O_CREAT, 0600, err, sizeof err), -1);
	assert_non_null(strstr(err, "plant files"));
	assert_int_equal(chmod(sub, 01777), 0); /* sticky, like /tmp: fine */
	int fd = fsafe_open(p, O_WRONLY | O_CREAT, 0600, err, sizeof err);
	assert_true(fd >= 0);
	close(fd);
}

static void test_foreign_owner_refused(void **state)
{
	char p[512], err[256];
	if (geteuid() != 0)
		fail_msg("this test needs root, to give a file to another uid");
	path(p, "theirs");
	write_file(p, "theirs");
	assert_int_equal(chown(p, 65534, 65534), 0);
	assert_int_equal(fsafe_open(p, O_WRONLY | O_APPEND, 0600, err, sizeof err), -1);
	assert_non_null(strstr(err, "owned by uid 65534"));
}

static void test_mkdir(void **state)
{
	char d[512], target[512], err[256];
	path(d, "made");
	assert_int_equal(fsafe_mkdir(d, 0700, err, sizeof err), 0);
	assert_int_equal(fsafe_mkdir(d, 0700, err, sizeof err), 0); /* exists: checked */
	path(target, "elsewhere");
	assert_int_equal(mkdir(target, 0700), 0);
	path(d, "dirlink");
	assert_int_equal(symlink(target, d), 0);
	assert_int_equal(fsafe_mkdir(d, 0700, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a directory"));
	path(d, "wide");
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chmod(d, 0777), 0);
	assert_int_equal(fsafe_mkdir(d, 0700, err, sizeof err), -1);
	assert_non_null(strstr(err, "writable by others"));
}

static void test_check_dir(void **state)
{
	char err[256];
	uid_t me = geteuid(), other = me + 1, owner;
	assert_int_equal(fsafe_check_dir(dir, &me, 1, &owner, err, sizeof err), 0);
	assert_int_equal(owner, me);
	assert_int_equal(fsafe_check_dir(dir, &other, 1, &owner, err, sizeof err), -1);
	assert_int_equal(errno, EPERM);
	char d[64];
	assert_int_equal(fsafe_dirname("/x.sock", d, sizeof d), 0);
	assert_string_equal(d, "/");
	assert_int_equal(fsafe_dirname("x.sock", d, sizeof d), 0);
	assert_string_equal(d, ".");
	assert_int_equal(fsafe_dirname("/a/b/x.sock", d, sizeof d), 0);
	assert_string_equal(d, "/a/b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_reopen),
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_hardlink_refused),
		cmocka_unit_test(test_open_dir_refused),
		cmocka_unit_test(test_foreign_owner_refused),
		cmocka_unit_test(test_mkdir),
		cmocka_unit_test(test_check_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
