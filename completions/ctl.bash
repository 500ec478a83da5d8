# bash completion for ctl(8), the conntrack-compatible tool.
# Installed as share/bash-completion/completions/ctl (loaded on demand by
# bash-completion), or source it from ~/.bashrc.
#
# Label names come from /etc/xtables/connlabel.conf, or from the file
# CTL_CONNLABEL_CONF names.

_ctl_commands="-L -G -D -I -A -U -E -F -C -S -h -V"
_ctl_long_commands="--dump --get --delete --create --add --update --event --flush --counter --stats --help --version"
_ctl_options="-s -d -r -q -p -t -u -e -m -c -i -f -o -n -g -j -w -z -l -b"
_ctl_long_options="--src --orig-src --dst --orig-dst --reply-src --reply-dst --protonum --timeout --status \
--event-mask --mark --secmark --id --family --output --src-nat --dst-nat --any-nat --zone --orig-zone \
--reply-zone --zero --label --label-add --label-del --buffer-size --mask-src --mask-dst --tuple-src \
--tuple-dst --netns \
--interval --labelmap --group-by --top --all-netns"
_ctl_group_keys="family proto src dst sport dport reply-src reply-dst reply-sport reply-dport state status mark zone label helper netns"
_ctl_tables="conntrack expect dying unconfirmed"
_ctl_formats="extended id labels ktimestamp timestamp userspace save xml json metrics"
_ctl_statuses="ASSURED SEEN_REPLY FIXED_TIMEOUT EXPECTED OFFLOAD HW_OFFLOAD UNSET"
_ctl_events="NEW UPDATES DESTROY ALL"
_ctl_protocols="tcp udp udplite sctp dccp gre icmp icmpv6"
_ctl_tcp_states="NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2 LISTEN"
_ctl_sctp_states="NONE CLOSED COOKIE_WAIT COOKIE_ECHOED ESTABLISHED SHUTDOWN_SENT SHUTDOWN_RECD \
SHUTDOWN_ACK_SENT HEARTBEAT_SENT HEARTBEAT_ACKED"
_ctl_dccp_states="NONE REQUEST RESPOND PARTOPEN OPEN CLOSEREQ CLOSING TIMEWAIT IGNORE INVALID"

# The options -p PROTO brings, by protocol name.
_ctl_protocol_options() {
    local ports="--sport --orig-port-src --dport --orig-port-dst --reply-port-src --reply-port-dst \
--mask-port-src --mask-port-dst --tuple-port-src --tuple-port-dst"
    case $1 in
        tcp) echo "$ports --state" ;;
        udp|udplite) echo "$ports" ;;
        sctp) echo "$ports --state --orig-vtag --reply-vtag" ;;
        dccp) echo "$ports --state --role" ;;
        icmp) echo "--icmp-type --icmp-code --icmp-id" ;;
        icmpv6) echo "--icmpv6-type --icmpv6-code --icmpv6-id" ;;
        gre) echo "--srckey --orig-key-src --dstkey --orig-key-dst --reply-key-src --reply-key-dst \
--mask-key-src --mask-key-dst --tuple-key-src --tuple-key-dst" ;;
    esac
}

# A protocol argument (name in any case, or number) as ctl's own name.
_ctl_protocol_name() {
    local p=${1,,}
    case $p in
        6|0x6|06) p=tcp ;; 17|0x11|021) p=udp ;; 136|0x88|0210) p=udplite ;;
        132|0x84|0204) p=sctp ;; 33|0x21|041) p=dccp ;; 47|0x2f|057) p=gre ;;
        1|0x1|01) p=icmp ;; 58|0x3a|072) p=icmpv6 ;;
    esac
    printf "%s\n" "$p"
}

# The label names of connlabel.conf ("BIT NAME" lines, '#' comments).
_ctl_labels() {
    # --labelmap FILE on the line first (_ctl's labelmap).
    local file=${labelmap:-${CTL_CONNLABEL_CONF:-/etc/xtables/connlabel.conf}} bit name rest
    [[ -r $file ]] || return
    while read -r bit name rest; do
        [[ -z $name || $bit == \#* || $name == *#* ]] && continue
        printf '%s\n' "$name"
    done < "$file"
}

# The names of /run/netns.
_ctl_netns_names() {
    local f
    for f in /run/netns/*; do
        [[ -e $f ]] && printf '%s\n' "${f##*/}"
    done
}

# The long option a word stands for ("--prot" is --protonum), or the word.
_ctl_long_name() {
    local word=$1 all=" $_ctl_long_commands --load-file $_ctl_long_options $2 " o found=""
    [[ $word == --?* ]] || { printf "%s\n" "$word"; return; }
    [[ $all == *" $word "* ]] && { printf "%s\n" "$word"; return; }
    for o in $all; do
        if [[ $o == "$word"* ]]; then
            [[ -n $found ]] && { printf "%s\n" "$word"; return; }
            found=$o
        fi
    done
    printf "%s\n" "${found:-$word}"
}

# File names for $cur: bash-completion's _filedir when it is there.
_ctl_files() {
    if declare -F _filedir >/dev/null; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

# COMPREPLY from a comma-separated list: completes the item after the
# last comma of $2 from the words $1.
_ctl_complete_list() {
    local cur=$2 head=""
    [[ $cur == *,* ]] && head=${cur%,*},
    COMPREPLY=($(compgen -P "$head" -W "$1" -- "${cur##*,}"))
}

_ctl() {
    local cur prev i word proto="" command="" labelmap=""
    local -a words=("${COMP_WORDS[@]}")
    local cword=$COMP_CWORD
    cur=${words[cword]}
    prev=${words[cword-1]}
    # "--output=x": bash splits at '='.
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = && $cword -ge 2 ]]; then
        prev=${words[cword-2]}
    fi

    # The protocol and the command given so far.
    for ((i = 1; i < cword; i++)); do
        word=${words[i]}
        case $word in
            -p?*) proto=${word#-p} ;;
            --labelmap)
                labelmap=${words[i+1]}
                [[ $labelmap == = ]] && labelmap=${words[i+2]} ;;
            -*)
                case $(_ctl_long_name "$word") in
                    -p|--protonum)
                        proto=${words[i+1]}
                        [[ $proto == = ]] && proto=${words[i+2]} ;;
                    -L|--dump|-G|--get|-D|--delete|-I|--create|-A|--add|-U|--update|-E|--event|\
                    -F|--flush|-C|--counter|-S|--stats|-h|--help|-V|--version|-R|--load-file)
                        command=$word ;;
                esac ;;
        esac
    done
    proto=$(_ctl_protocol_name "$proto")
    local proto_options
    proto_options=$(_ctl_protocol_options "$proto")

    case $(_ctl_long_name "$prev" "$proto_options") in
        -L|--dump|-G|--get|-D|--delete|-I|--create|-E|--event|-F|--flush|-C|--counter|-S|--stats)
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$_ctl_tables" -- "$cur"))
                return
            fi ;;
        -R|--load-file)
            _ctl_files
            return ;;
        -f|--family)
            COMPREPLY=($(compgen -W "ipv4 ipv6" -- "$cur"))
            return ;;
        -o|--output)
            _ctl_complete_list "$_ctl_formats" "$cur"
            return ;;
        -p|--protonum)
            COMPREPLY=($(compgen -W "$_ctl_protocols" -- "$cur"))
            return ;;
        -u|--status)
            _ctl_complete_list "$_ctl_statuses" "$cur"
            return ;;
        -e|--event-mask)
            _ctl_complete_list "$_ctl_events" "$cur"
            return ;;
        -l|--label|--label-add)
            _ctl_complete_list "$(_ctl_labels)" "$cur"
            return ;;
        --label-del)
            if [[ $cur != -* ]]; then
                _ctl_complete_list "$(_ctl_labels)" "$cur"
                return
            fi ;;
        --state)
            case $proto in
                sctp) COMPREPLY=($(compgen -W "$_ctl_sctp_states" -- "$cur")) ;;
                dccp) COMPREPLY=($(compgen -W "$_ctl_dccp_states" -- "$cur")) ;;
                *) COMPREPLY=($(compgen -W "$_ctl_tcp_states" -- "$cur")) ;;
            esac
            return ;;
        --role)
            COMPREPLY=($(compgen -W "client server" -- "$cur"))
            return ;;
        --group-by)
            _ctl_complete_list "$_ctl_group_keys" "$cur"
            return ;;
        --top)
            # A number of groups.
            return ;;
        --labelmap)
            _ctl_files
            return ;;
        --interval)
            # A number of seconds: nothing to offer.
            return ;;
        --netns)
            if [[ $cur == */* || $cur == .* ]]; then
                _ctl_files
            else
                COMPREPLY=($(compgen -W "$(_ctl_netns_names)" -- "$cur"))
            fi
            return ;;
        -n|--src-nat|-g|--dst-nat|-j|--any-nat)
            # An optional address: nothing to offer but the options.
            [[ $cur != -* ]] && return ;;
        -s|--src|--orig-src|-d|--dst|--orig-dst|-r|--reply-src|-q|--reply-dst|--mask-src|--mask-dst|\
        --tuple-src|--tuple-dst|-t|--timeout|-m|--mark|-c|--secmark|-i|--id|-w|--zone|--orig-zone|\
        --reply-zone|-b|--buffer-size|--sport|--orig-port-src|--dport|--orig-port-dst|--reply-port-src|\
        --reply-port-dst|--mask-port-src|--mask-port-dst|--tuple-port-src|--tuple-port-dst|--orig-vtag|\
        --reply-vtag|--icmp-type|--icmp-code|--icmp-id|--icmpv6-type|--icmpv6-code|--icmpv6-id|--srckey|\
        --orig-key-src|--dstkey|--orig-key-dst|--reply-key-src|--reply-key-dst|--mask-key-src|\
        --mask-key-dst|--tuple-key-src|--tuple-key-dst)
            # A value of the user's: addresses, numbers.
            return ;;
    esac

    local candidates
    if [[ -z $command ]]; then
        # Options may come before the command.
        candidates="$_ctl_commands $_ctl_long_commands"
        # -R is only taken as the first argument.
        ((cword == 1)) && candidates+=" -R --load-file"
        [[ $cur == -* ]] && candidates+=" $_ctl_options $_ctl_long_options $proto_options"
    else
        candidates="$_ctl_options $_ctl_long_options $proto_options"
    fi
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
}
complete -F _ctl ctl
