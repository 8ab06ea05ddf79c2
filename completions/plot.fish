# fish completion for plot(1). Install as
#   ~/.config/fish/completions/plot.fish
# Kept in step with the CLI's command table by tests/cli/cli-docs.bats.

set -l commands run chat submit tail status result wait cancel queue list stats limits models ps config daemon help

function __plot_models
    # a value with a '/' is a GGUF file, for run and chat
    string match -q -- '*/*' (commandline -ct); and __fish_complete_suffix .gguf; and return
    plot --no-autostart models 2>/dev/null | cut -f1
end

# Queued and running task ids from the daemon (never starting one), with
# their model as the description.
function __plot_tasks
    plot --no-autostart queue 2>/dev/null | cut -f1,2
end

complete -c plot -f

# global options
complete -c plot -l socket -r -F -d 'the daemon socket'
complete -c plot -l config -r -F -d 'config file for an autostarted plotd'
complete -c plot -l json -d 'print data as JSON'
complete -c plot -l color -x -a 'auto always never' -d 'use colour'
complete -c plot -s q -l quiet -d 'print no informational messages'
complete -c plot -s v -l verbose -d 'print more'
complete -c plot -l version -d 'print the version'
complete -c plot -s h -l help -d 'print help'
complete -c plot -l no-autostart -d 'never start plotd'

# commands
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a run -d 'submit a prompt and stream its output'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a chat -d 'talk with a model'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a submit -d 'submit a prompt and print its id'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a tail -d 'print a task output and follow it'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a status -d 'show a task'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a result -d 'print the output of a task'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a wait -d 'wait until tasks have ended'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a cancel -d 'cancel tasks'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a queue -d 'list queued and running tasks'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a list -d 'list every task, finished ones too, newest first'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a stats -d 'show pool statistics'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a limits -d 'show or set limits'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a models -d 'list models'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a ps -d 'list the loaded models'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a config -d 'print the effective config'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a daemon -d 'start, stop or query plotd'
complete -c plot -n "not __fish_seen_subcommand_from $commands" -a help -d 'show help'

# run and submit
for c in run submit
    complete -c plot -n "__fish_seen_subcommand_from $c" -s m -l model -x -a '(__plot_models)' -d 'model'
    complete -c plot -n "__fish_seen_subcommand_from $c" -s p -l priority -x -a 'low normal high critical' -d 'priority'
    complete -c plot -n "__fish_seen_subcommand_from $c" -s n -l max-tokens -x -d 'stop after N tokens'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l temperature -x -d 'sampling temperature'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l top-k -x -d 'top-k'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l top-p -x -d 'top-p'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l min-p -x -d 'min-p'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l repetition-penalty -x -d 'penalise recent tokens (1 = off)'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l frequency-penalty -x -d 'subtract F times a recent token count'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l presence-penalty -x -d 'subtract F from every recent token'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l penalty-last-n -x -d 'recent tokens the penalties see'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l seed -x -d 'sampler seed'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l stop -x -d 'stop string (repeatable)'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l deadline -x -d 'deadline in seconds'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l cost -x -d 'resource units'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l raw -d 'send the prompt as plain text, not as a chat turn'
    complete -c plot -n "__fish_seen_subcommand_from $c" -l key -x -d 'idempotency key'
end
complete -c plot -n '__fish_seen_subcommand_from run' -l detach -d 'print the id and return'

complete -c plot -n '__fish_seen_subcommand_from tail' -l no-follow -d 'print what there is and stop'
complete -c plot -n '__fish_seen_subcommand_from result' -l wait -d 'wait until the task has ended'
complete -c plot -n '__fish_seen_subcommand_from cancel' -l all -d 'cancel every task'
complete -c plot -n '__fish_seen_subcommand_from cancel' -l wait -d 'return once the tasks have ended'
complete -c plot -n '__fish_seen_subcommand_from wait' -l all -d 'wait for every queued and running task'
complete -c plot -n '__fish_seen_subcommand_from wait' -l timeout -x -d 'give up after SECS seconds'
for c in chat cancel wait queue list stats limits
    complete -c plot -n "__fish_seen_subcommand_from $c" -s m -l model -x -a '(__plot_models)' -d 'model'
end
for c in queue list
    complete -c plot -n "__fish_seen_subcommand_from $c" -l state -x -a 'queued running done failed cancelled expired timeout' -d 'only tasks in this state'
end
complete -c plot -n '__fish_seen_subcommand_from list' -l owner -x -a '(__fish_complete_users)' -d 'only tasks of USER'
complete -c plot -n '__fish_seen_subcommand_from list' -l since -x -d 'only tasks of the last SECS seconds'
complete -c plot -n '__fish_seen_subcommand_from list' -l limit -x -d 'show the N newest'
for c in queue stats
    complete -c plot -n "__fish_seen_subcommand_from $c" -l watch -x -d 'repeat every SECS seconds'
end
complete -c plot -n '__fish_seen_subcommand_from stats' -l prometheus -d 'text exposition format'
complete -c plot -n '__fish_seen_subcommand_from stats' -l wide -d 'every counter and engine figure'
# a verb once: get or set, then (after set) KEY= with no space, as fish
# does for a completion that ends in =
complete -c plot -n '__fish_seen_subcommand_from limits; and not __fish_seen_subcommand_from get set' -a 'get set' -d 'verb'
complete -c plot -n '__fish_seen_subcommand_from limits; and __fish_seen_subcommand_from set' -a 'max_units= max_queue_depth= timeout_secs= retention_secs= retention_tasks= retention_bytes= max_units_per_user= max_units_owner= priority_aging_secs=' -d 'setting'
complete -c plot -n '__fish_seen_subcommand_from limits; and __fish_seen_subcommand_from set' -a 'max_running=' -d 'tasks that may run at once'
complete -c plot -n '__fish_seen_subcommand_from limits; and __fish_seen_subcommand_from set' -a 'threads=' -d 'compute threads of the executor'
complete -c plot -n '__fish_seen_subcommand_from daemon; and not __fish_seen_subcommand_from start stop restart reload status' -a 'start stop restart reload status'
for c in tail status result cancel wait
    complete -c plot -n "__fish_seen_subcommand_from $c" -a '(__plot_tasks)'
end
complete -c plot -n '__fish_seen_subcommand_from models' -a 'list load unload'
complete -c plot -n '__fish_seen_subcommand_from models' -l name -x -d 'load PATH: the model name'
complete -c plot -n '__fish_seen_subcommand_from daemon' -l timeout -x -d 'seconds to wait'
complete -c plot -n '__fish_seen_subcommand_from daemon' -l now -d 'stop: cancel tasks instead of draining'
complete -c plot -n '__fish_seen_subcommand_from help' -a "$commands"
