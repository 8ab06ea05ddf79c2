/*
 * listen.h — the daemon's Unix socket (listen.c): path rules, stale sockets,
 * accept with the peer's credentials. A leaf.
 */
#ifndef PLOTD_LISTEN_H
#define PLOTD_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

#define PEER_MAX_GROUPS 64
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[PEER_MAX_GROUPS]; /* supplementary (SO_PEERGROUPS) */
	unsigned ngroups;
};

struct lsn {
	int fd, lock_fd;
	char path[4096];
};
int lsn_open(struct lsn *ls, const char *path, int shared, char *err, size_t errlen);
void lsn_close(struct lsn *ls);
int lsn_accept(struct lsn *ls, struct peer *pr);

#endif
