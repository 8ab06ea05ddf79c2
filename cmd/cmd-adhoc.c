/*
 * cmd-adhoc.c — `plot run -m ./model.gguf` and `plot chat -m ./model.gguf`:
 * trying a GGUF file without writing a config, as llama-cli's -m does.
 *
 * DESIGN
 *   A --model value with a '/' (model names never have one) is a file. plot
 *   checks that it can read it and that it starts with the GGUF magic, then
 *   starts a private plotd for it alone: a fresh directory (mode 0700, under
 *   $XDG_RUNTIME_DIR, else /tmp) holds a generated plot.yaml with one llm
 *   model named after the file (its base name without ".gguf", characters
 *   outside A-Z a-z 0-9 . _ : - replaced by '-') and the daemon's socket;
 *   its tasks are kept in memory (and any store file in that directory), so
 *   the shared daemon's store is never opened.
 *   It is started through the autostart code (so the status line shows it
 *   starting and the model loading) and stopped when the command ends:
 *   SIGTERM, which finds nothing left to drain, then SIGKILL if it lingers
 *   past ADHOC_STOP_MS; the directory is removed. The daemon is also given
 *   PR_SET_PDEATHSIG (cmd-connect.c), so a plot killed outright takes it
 *   along.
 *
 *   Why a private daemon rather than a model added to the shared one: the
 *   file is opened by a process of the user who named it, so no one can
 *   make a daemon of another user read a file they cannot read; and the
 *   shared daemon's models, queue and limits stay what its config says.
 *   The cost is the load on every invocation, as with llama-cli.
 *
 * INVARIANTS
 *   - At most one private daemon per process; cmd_adhoc_end is idempotent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd-impl.h"

#define ADHOC_STOP_MS 10000
#define ADHOC_NAME_MAX 64

static char dir[PATH_MAX - 32];
static char sock[PATH_MAX], conf[PATH_MAX];
static char name[ADHOC_NAME_MAX + 1];
static pid_t pid;

int cmd_adhoc_wanted(const char *model)
{
	return model && strchr(model, '/') != NULL;
}

/* The model's name: the file's base name without .gguf, made valid. */
static void name_from(const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n = strlen(b = b ? b + 1 : path);
	if (n > 5 && !strcasecmp(b + n - 5, ".gguf"))
		n -= 5;
	if (n > ADHOC_NAME_MAX)
		n = ADHOC_NAME_MAX;
	for (size_t i = 0; i < n; i++)
		name[i] = strchr("._:-", b[i]) || (b[i] >= 'a' && b[i] <= 'z') ||
			  (b[i] >= 'A' && b[i] <= 'Z') || (b[i] >= '0' && b[i] <= '9') ? b[i] : '-';
	name[n] = '\0';
	if (!n)
		snprintf(name, sizeof(name), "model");
}

/* Readable by us and a GGUF file: 0, or an exit status (printed). */
static int check_file(struct plot_ctx *ctx, const char *path)
{
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cmd_err(ctx, "--model %s: %s", path, strerror(errno));
		return errno == EACCES ? CMD_EXIT_PERM : CMD_EXIT_USAGE;
	}
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, "GGUF", 4)) {
		cmd_err(ctx, "--model %s: not a GGUF file (it does not start with \"GGUF\")", path);
		return CMD_EXIT_USAGE;
	}
	return 0;
}

/* YAML double-quoted text of s. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static int write_config(const char *abs)
{
	int fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(f, "# written by plot for -m %s; removed when plot ends\n", abs);
	/* its own tasks only, in memory: the shared daemon's store stays its own */
	fprintf(f, "parking_lot:\n  queue: { backend: memory }\n  mailbox: { backend: memory }\n");
	char db[PATH_MAX];
	snprintf(db, sizeof(db), "%s/store.db", dir);
	fputs("store: { path: ", f);
	put_quoted(f, db);
	fputs(" }\n", f);
	fprintf(f, "default_model: \"%s\"\nmodels:\n  - name: \"%s\"\n    executor: llm\n"
		"    path: ", name, name);
	put_quoted(f, abs);
	fputc('\n', f);
	return fclose(f) == 0 ? 0 : -1;
}

/* The private directory, its config and socket paths. 0 or -1 (errno). */
static int make_dir(const char *abs)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	snprintf(dir, sizeof(dir), "%s/plot-adhoc-XXXXXX", rt && *rt == '/' ? rt : "/tmp");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "/tmp/plot-adhoc-XXXXXX");
		if (!mkdtemp(dir))
			return -1;
	}
	snprintf(sock, sizeof(sock), "%s/plotd.sock", dir);
	snprintf(conf, sizeof(conf), "%s/plot.yaml", dir);
	return write_config(abs);
}

const char *cmd_adhoc_name(const char *path)
{
	name_from(path);
	return name;
}

int cmd_adhoc_start(struct plot_ctx *ctx, const char *path, const char **out)
{
	char abs[PATH_MAX];
	int started, rc = check_file(ctx, path);
	if (rc)
		return rc;
	if (!realpath(path, abs)) {
		cmd_err(ctx, "--model %s: %s", path, strerror(errno));
		return CMD_EXIT_USAGE;
	}
	name_from(abs);
	if (make_dir(abs) < 0) {
		cmd_err(ctx, "--model %s: cannot make a private directory for plotd: %s", path,
			strerror(errno));
		cmd_adhoc_end(ctx);
		return CMD_EXIT_FAIL;
	}
	ctx->socket_opt = sock;
	ctx->config_opt = conf;
	ctx->adhoc = 1;
	rc = cmd_autostart(ctx, sock, 0, &started);
	if (rc == 0) {
		pid = (pid_t)client_server_hello(ctx->cl)->pid;
		if (ctx->verbose)
			cmd_info(ctx, "serving %s as model %s with a private plotd (pid %d)", abs,
				 name, (int)pid);
	}
	*out = name;
	return rc;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SIGTERM, then a bounded wait for it to exit (autostart forked it: it is
 * our child, and reaping it here leaves no zombie), then SIGKILL. */
static void stop_daemon(void)
{
	long long end = now_ms() + ADHOC_STOP_MS;
	long delay = 1;
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			break;
		}
		struct timespec ts = {0, delay * 1000000L};
		nanosleep(&ts, NULL);
		delay = delay * 2 > 50 ? 50 : delay * 2;
	}
	pid = 0;
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
	dir[0] = '\0';
}

void cmd_adhoc_end(struct plot_ctx *ctx)
{
	if (ctx->adhoc && ctx->cl) {
		client_free(ctx->cl); /* our connection first: nothing left to drain */
		ctx->cl = NULL;
	}
	if (pid > 0)
		stop_daemon();
	if (dir[0])
		remove_dir();
}
