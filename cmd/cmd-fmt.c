/*
 * cmd-fmt.c — small formatters for people: a task's owner and label as
 * `plot queue` and `plot status` show them, sizes, and a model's device as
 * `plot ps`, `plot models` and `plot stats` show it.
 *
 * A label is the head of a prompt, so it may hold newlines, tabs or other
 * control bytes; they become spaces so that a table row stays one line and
 * a tab-separated row keeps its columns. It is cut at a UTF-8 character
 * boundary and "..." marks the cut.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "cmd-impl.h"

const char *cmd_fmt_owner(char *buf, size_t len, uint32_t uid)
{
	struct passwd *pw = getpwuid((uid_t)uid);
	if (pw && pw->pw_name)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", uid);
	return buf;
}

const char *cmd_fmt_label(char *buf, size_t len, const char *label, size_t max)
{
	size_t n = 0, room = len > 4 ? len - 4 : 0;
	if (max > room)
		max = room;
	if (!label)
		label = "";
	for (; label[n] && n < max; n++) {
		unsigned char c = (unsigned char)label[n];
		buf[n] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	if (label[n]) {
		while (n > 0 && ((unsigned char)label[n] & 0xc0) == 0x80)
			n--; /* the cut falls inside a UTF-8 sequence: cut before it */
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	if (len)
		buf[n < len ? n : len - 1] = '\0';
	return buf;
}

/* "12.3 MiB", "512 B": binary units, one decimal past bytes. */
const char *cmd_fmt_bytes(char *buf, size_t len, uint64_t b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

/* "cuda:0 (NVIDIA H200, 120.5 GiB free of 139.8 GiB)" for a device with
 * memory of its own (name set); otherwise the device as it is ("cpu"), or
 * "-" for none. */
const char *cmd_fmt_device(char *buf, size_t len, const char *device, const char *name,
			   uint64_t total, uint64_t free_b)
{
	char f[32], t[32];
	if (!device)
		return "-";
	if (!name)
		return device;
	if (total)
		snprintf(buf, len, "%s (%s, %s free of %s)", device, name,
			 cmd_fmt_bytes(f, sizeof(f), free_b), cmd_fmt_bytes(t, sizeof(t), total));
	else
		snprintf(buf, len, "%s (%s)", device, name);
	return buf;
}

/* The keys "device_name", "device_total_bytes", "device_free_bytes": null
 * for a model without a device of its own (the CPU, synthetic). */
void cmd_json_device(struct cmd_json *j, const char *name, uint64_t total, uint64_t free_b)
{
	cmd_json_key(j, "device_name");
	cmd_json_str(j, name);
	cmd_json_key(j, "device_total_bytes");
	if (name && total)
		cmd_json_u64(j, total);
	else
		cmd_json_null(j);
	cmd_json_key(j, "device_free_bytes");
	if (name && total)
		cmd_json_u64(j, free_b);
	else
		cmd_json_null(j);
}
