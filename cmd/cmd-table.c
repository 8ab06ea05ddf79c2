/*
 * cmd-table.c — the one list of plot's commands.
 *
 * Order here is the order of `plot help`. Adding a command means adding its
 * cmd-<verb>.c and one line below; the bats test cli-docs.bats then fails
 * until man/plot.1 and the three completion files know it too.
 */
#include <string.h>

#include "cmd-impl.h"

extern const struct plot_cmd cmd_run_entry, cmd_chat_entry, cmd_submit_entry, cmd_tail_entry,
	cmd_status_entry, cmd_result_entry, cmd_wait_entry, cmd_cancel_entry, cmd_queue_entry,
	cmd_list_entry,
	cmd_stats_entry, cmd_limits_entry, cmd_models_entry, cmd_ps_entry, cmd_config_entry,
	cmd_daemon_entry, cmd_help_entry, cmd_complete_table_entry;

const struct plot_cmd *const plot_cmd_table[] = {
	&cmd_run_entry,
	&cmd_chat_entry,
	&cmd_submit_entry,
	&cmd_tail_entry,
	&cmd_status_entry,
	&cmd_result_entry,
	&cmd_wait_entry,
	&cmd_cancel_entry,
	&cmd_queue_entry,
	&cmd_list_entry,
	&cmd_stats_entry,
	&cmd_limits_entry,
	&cmd_models_entry,
	&cmd_ps_entry,
	&cmd_config_entry,
	&cmd_daemon_entry,
	&cmd_help_entry,
	&cmd_complete_table_entry,
	NULL,
};

const struct plot_cmd *cmd_find(const char *name)
{
	for (const struct plot_cmd *const *c = plot_cmd_table; *c; c++)
		if (!strcmp((*c)->name, name))
			return *c;
	return NULL;
}
