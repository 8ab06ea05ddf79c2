/*
 * cmd-chat-tty.c — the terminal of `plot chat` while an answer streams.
 *
 * DESIGN
 *   Between prompts readline is not reading, and the terminal is back in
 *   its cooked mode, where the line discipline echoes every key at once:
 *   text typed ahead would appear inside the answer. Echo is turned off for
 *   the answer (ECHO, ECHONL; ICANON and ISIG stay, so Ctrl-C still
 *   signals), and the bytes wait in the input queue until readline reads
 *   and shows them at the next prompt, as a shell does while a command
 *   runs. TCSANOW: nothing typed ahead is flushed.
 *
 * INVARIANTS
 *   - chat_echo_restore puts back exactly what chat_echo_off found, and
 *     does nothing when chat_echo_off did not change anything.
 */
#include <termios.h>
#include <unistd.h>

#include "cmd-chat.h"

static struct termios saved;
static int changed;

void chat_echo_off(void)
{
	struct termios t;
	if (changed || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) < 0)
		return;
	t = saved;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	changed = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

void chat_echo_restore(void)
{
	if (!changed)
		return;
	tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	changed = 0;
}
