/*
 * cmd-chat-file.c — `/save FILE` and `/load FILE` in `plot chat`: a
 * conversation kept in a file and taken up again later.
 *
 * DESIGN
 *   The format is one JSON object (plot(1) documents it):
 *     {"format": "plot-chat-1", "model": "M", "system": "S" | null,
 *      "messages": [{"role": "user", "content": "..."},
 *                   {"role": "assistant", "content": "..."}, ...]}
 *   written with the CLI's JSON writer (non-UTF-8 bytes become U+FFFD) and
 *   read with libyaml, which plot links already; JSON is YAML, so a file
 *   written by hand in YAML block style loads too. "model" says what the
 *   conversation was held with; /load keeps the current model (/model
 *   changes it), as the messages are plain text any model can take up.
 *
 *   Neither command follows a symbolic link (O_NOFOLLOW): a link planted
 *   where a user saves would otherwise redirect the write. /save creates
 *   the file 0600 (a conversation is private) and truncates an existing
 *   one; /load reads at most CHAT_FILE_MAX bytes.
 *
 * INVARIANTS
 *   - /load replaces the conversation only when the whole file is valid:
 *     roles alternate user, assistant, ... and end with an assistant turn,
 *     so c->msgs keeps cmd-chat.h's invariant.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "cmd-chat.h"

#define CHAT_FILE_MAX (64u << 20)
#define CHAT_FORMAT "plot-chat-1"

static int open_error(struct chat *c, const char *cmd, const char *path, int e)
{
	if (e == ELOOP)
		return chat_fail(c, CMD_EXIT_FAIL, "%s %s: a symbolic link; not followed", cmd, path);
	return chat_fail(c, CMD_EXIT_FAIL, "%s %s: %s", cmd, path, strerror(e));
}

/* ---- /save -------------------------------------------------------------- */

static void write_doc(const struct chat *c, FILE *f)
{
	struct cmd_json j;
	cmd_json_init(&j, f);
	cmd_json_obj(&j);
	cmd_json_key(&j, "format");
	cmd_json_str(&j, CHAT_FORMAT);
	cmd_json_key(&j, "model");
	c->shown ? cmd_json_str(&j, c->shown) : cmd_json_null(&j);
	cmd_json_key(&j, "system");
	c->system ? cmd_json_str(&j, c->system) : cmd_json_null(&j);
	cmd_json_key(&j, "messages");
	cmd_json_arr(&j);
	for (size_t i = 0; i < c->n; i++) {
		cmd_json_obj(&j);
		cmd_json_key(&j, "role");
		cmd_json_str(&j, c->msgs[i].role);
		cmd_json_key(&j, "content");
		cmd_json_str(&j, c->msgs[i].content);
		cmd_json_obj_end(&j);
	}
	cmd_json_arr_end(&j);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

int chat_save(struct chat *c, const char *path)
{
	if (!*path)
		return chat_fail(c, CMD_EXIT_USAGE, "/save: a file name is needed");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return open_error(c, "/save", path, errno);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return open_error(c, "/save", path, errno);
	}
	write_doc(c, f);
	int bad = ferror(f);
	if (fclose(f) != 0 || bad)
		return chat_fail(c, CMD_EXIT_FAIL, "/save %s: %s", path, strerror(errno ? errno : EIO));
	if (c->tty) {
		printf("saved %zu messages to %s\n", c->n, path);
		fflush(stdout);
	}
	return 0;
}

/* ---- /load -------------------------------------------------------------- */

/* The whole file, NUL-terminated, in *buf. 0 or chat_fail's status. */
static int read_file(struct chat *c, const char *path, char **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return open_error(c, "/load", path, errno);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > CHAT_FILE_MAX) {
		close(fd);
		return chat_fail(c, CMD_EXIT_FAIL, "/load %s: not a regular file of at most %u MiB",
				 path, CHAT_FILE_MAX >> 20);
	}
	size_t n = (size_t)st.st_size, got = 0;
	*buf = malloc(n + 1);
	while (*buf && got < n) {
		ssize_t r = read(fd, *buf + got, n - got);
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			free(*buf);
			return chat_fail(c, CMD_EXIT_FAIL, "/load %s: %s", path, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	if (!*buf)
		return chat_fail(c, CMD_EXIT_FAIL, "out of memory");
	(*buf)[n] = '\0';
	*len = n;
	return 0;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static int is_null(const yaml_node_t *n)
{
	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "null") || !strcmp(v, "~");
}

/* What a file holds, checked; owned by the caller (load_free). */
struct loaded {
	struct chat tmp;   /* only msgs, n, cap used */
	char *system;
	const char *why;   /* the error, when one */
	char where[64];    /* the field it is about */
};

static void load_free(struct loaded *l)
{
	chat_clear(&l->tmp);
	free(l->tmp.msgs);
	free(l->system);
}

static int load_message(struct loaded *l, yaml_document_t *d, yaml_node_t *m, size_t i)
{
	static const char *const roles[] = {"user", "assistant"};
	snprintf(l->where, sizeof(l->where), "messages[%zu]", i);
	if (!m || m->type != YAML_MAPPING_NODE)
		return l->why = "expected {role, content}", -1;
	yaml_node_t *r = map_get(d, m, "role"), *t = map_get(d, m, "content");
	if (!r || r->type != YAML_SCALAR_NODE || strcmp((const char *)r->data.scalar.value, roles[i % 2]))
		return l->why = i % 2 ? "role: expected assistant (turns alternate)"
				      : "role: expected user (turns alternate, user first)", -1;
	if (!t || t->type != YAML_SCALAR_NODE)
		return l->why = "content: expected a string", -1;
	if (chat_push(&l->tmp, roles[i % 2], (const char *)t->data.scalar.value, t->data.scalar.length) < 0)
		return l->why = "out of memory", -1;
	return 0;
}

static int load_doc(struct loaded *l, yaml_document_t *d)
{
	yaml_node_t *root = yaml_document_get_root_node(d), *f, *s, *ms;
	snprintf(l->where, sizeof(l->where), "the document");
	if (!root || root->type != YAML_MAPPING_NODE)
		return l->why = "expected an object", -1;
	f = map_get(d, root, "format");
	snprintf(l->where, sizeof(l->where), "format");
	if (!f || f->type != YAML_SCALAR_NODE || strcmp((const char *)f->data.scalar.value, CHAT_FORMAT))
		return l->why = "expected \"" CHAT_FORMAT "\"", -1;
	s = map_get(d, root, "system");
	snprintf(l->where, sizeof(l->where), "system");
	if (!is_null(s) && s->type != YAML_SCALAR_NODE)
		return l->why = "expected a string or null", -1;
	if (!is_null(s) && !(l->system = strdup((const char *)s->data.scalar.value)))
		return l->why = "out of memory", -1;
	ms = map_get(d, root, "messages");
	snprintf(l->where, sizeof(l->where), "messages");
	if (!ms || ms->type != YAML_SEQUENCE_NODE)
		return l->why = "expected a list", -1;
	size_t n = (size_t)(ms->data.sequence.items.top - ms->data.sequence.items.start);
	if (n > CHAT_MAX_TURNS || n % 2)
		return l->why = n % 2 ? "expected user/assistant pairs, ending with an answer"
				      : "too many messages", -1;
	for (size_t i = 0; i < n; i++)
		if (load_message(l, d, yaml_document_get_node(d, ms->data.sequence.items.start[i]), i) < 0)
			return -1;
	return 0;
}

/* Parse buf into l. 0, or -1 with l->why (l->where says where). */
static int parse(struct loaded *l, const char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_document_t d;
	int rc = -1;
	if (!yaml_parser_initialize(&p))
		return l->why = "out of memory", -1;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &d)) {
		snprintf(l->where, sizeof(l->where), "line %lu", (unsigned long)p.problem_mark.line + 1);
		l->why = p.problem ? p.problem : "not JSON or YAML";
	} else {
		rc = load_doc(l, &d);
		yaml_document_delete(&d);
	}
	yaml_parser_delete(&p);
	return rc;
}

int chat_load(struct chat *c, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	struct loaded l;
	if (!*path)
		return chat_fail(c, CMD_EXIT_USAGE, "/load: a file name is needed");
	unsigned fails = c->fails;
	int rc = read_file(c, path, &buf, &len);
	if (rc || c->fails != fails)
		return rc;
	memset(&l, 0, sizeof(l));
	if (parse(&l, buf, len) < 0) {
		rc = chat_fail(c, CMD_EXIT_USAGE, "/load %s: %s: %s", path, l.where, l.why);
	} else {
		chat_clear(c);
		free(c->msgs);
		free(c->system);
		c->msgs = l.tmp.msgs, c->n = l.tmp.n, c->cap = l.tmp.cap;
		c->system = l.system;
		memset(&l, 0, sizeof(l));
		if (c->tty)
			printf("loaded %zu messages from %s\n", c->n, path), fflush(stdout);
	}
	load_free(&l);
	free(buf);
	return rc;
}
