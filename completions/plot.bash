# bash completion for plot(1). Install as
#   /usr/share/bash-completion/completions/plot
# Kept in step with the CLI's command table by tests/cli/cli-docs.bats.

_plot_global_opts="--socket --config --json --color --quiet -q --verbose -v --version --help -h --no-autostart"

_plot_cmd_opts() {
    local task="--model -m --priority -p --max-tokens -n --temperature --top-k --top-p --min-p --repetition-penalty --frequency-penalty --presence-penalty --penalty-last-n --seed --stop --deadline --cost --raw --key"
    case "$1" in
        run)     echo "$task --detach" ;;
        submit)  echo "$task" ;;
        chat)    echo "--model -m" ;;
        tail)    echo "--no-follow" ;;
        result)  echo "--wait" ;;
        wait)    echo "--all --model -m --timeout" ;;
        cancel)  echo "--all --model -m --wait" ;;
        queue)   echo "--model -m --state --watch" ;;
        list)    echo "--model -m --state --owner --since --limit" ;;
        stats)   echo "--model -m --watch --prometheus --wide" ;;
        limits)  echo "--model -m" ;;
        daemon)  echo "--timeout --now" ;;
        models)  echo "--name" ;;
        *)       echo "" ;;
    esac
}

# Ids of the queued and running tasks this user may see, from the daemon
# (never starting one).
_plot_task_ids() {
    plot --no-autostart queue 2>/dev/null | cut -f1
}

_plot() {
    local cur prev cmd i
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    local commands="run chat submit tail status result wait cancel queue list stats limits models ps config daemon help"

    # The command is the first word that is not an option or an option's value.
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --socket|--config|--color) ((i++)) ;;
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done

    case "$prev" in
        --socket|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
        --priority|-p) COMPREPLY=($(compgen -W "low normal high critical" -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "queued running done failed cancelled expired timeout" -- "$cur")); return ;;
        --model|-m)
            if [[ "$cur" == */* ]]; then # a GGUF file, for run and chat
                local IFS=$'\n'
                COMPREPLY=($(compgen -f -- "$cur"))
                compopt -o filenames 2>/dev/null
            else
                COMPREPLY=($(compgen -W "$(plot --no-autostart models 2>/dev/null | cut -f1)" -- "$cur"))
            fi
            return ;;
        --max-tokens|-n|--temperature|--top-k|--top-p|--min-p|--repetition-penalty|--frequency-penalty|--presence-penalty|--penalty-last-n|--seed|--stop|--deadline|--cost|--watch|--timeout)
            return ;;
    esac

    if [[ -z "$cmd" ]]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "$_plot_global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_plot_cmd_opts "$cmd") $_plot_global_opts" -- "$cur"))
        return
    fi
    case "$cmd" in
        daemon) COMPREPLY=($(compgen -W "start stop restart reload status" -- "$cur")) ;;
        models) COMPREPLY=($(compgen -W "list load unload" -- "$cur")) ;;
        # max_running = tasks that may run at once; threads = compute threads
        limits) COMPREPLY=($(compgen -W "get set max_running= threads= max_units= max_queue_depth= timeout_secs= retention_secs= retention_tasks= retention_bytes= max_units_per_user= max_units_owner= priority_aging_secs=" -- "$cur")) ;;
        help)   COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        tail|status|result|cancel|wait) COMPREPLY=($(compgen -W "$(_plot_task_ids)" -- "$cur")) ;;
    esac
    # a key= completion is finished by its value: no space after the =
    local w
    for w in "${COMPREPLY[@]}"; do
        [[ "$w" == *= ]] && { compopt -o nospace; break; }
    done
}
complete -F _plot plot
