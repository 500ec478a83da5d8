# fish completion for ctl(8), the conntrack-compatible tool.
# Installed as share/fish/vendor_completions.d/ctl.fish.
#
# Label names come from /etc/xtables/connlabel.conf, or from the file
# CTL_CONNLABEL_CONF names.

# The protocol -p named so far, as ctl's own name ("" if none).
function __ctl_protocol
    set -l tokens (commandline -opc)
    set -l proto
    for i in (seq 2 (count $tokens))
        set -l word $tokens[$i]
        switch $word
            case -p --pro --prot --proto --proton --protonu --protonum
                set -l next (math $i + 1)
                test $next -le (count $tokens); and set proto $tokens[$next]
            case '--pro*=*'
                set proto (string replace -r '^[^=]*=' '' -- $word)
            case '-p?*'
                set proto (string sub -s 3 -- $word)
        end
    end
    set proto (string lower -- $proto)
    switch "$proto"
        case 6 0x6 06
            set proto tcp
        case 17 0x11 021
            set proto udp
        case 136 0x88 0210
            set proto udplite
        case 132 0x84 0204
            set proto sctp
        case 33 0x21 041
            set proto dccp
        case 47 0x2f 057
            set proto gre
        case 1 0x1 01
            set proto icmp
        case 58 0x3a 072
            set proto icmpv6
    end
    echo $proto
end

# Whether -p named one of the protocols given.
function __ctl_protocol_is
    contains -- (__ctl_protocol) $argv
end

# Whether a command has been given.
function __ctl_has_command
    for word in (commandline -opc)[2..-1]
        switch $word
            case -L -G -D -I -A -U -E -F -C -S -h -V -R --dump --get --delete --create --add \
                --update --event --flush --counter --stats --help --version --load-file
                return 0
        end
    end
    return 1
end

# Whether the word before the cursor is one of $argv.
function __ctl_previous_is
    set -l tokens (commandline -opc)
    test (count $tokens) -ge 2; and contains -- $tokens[-1] $argv
end

# Whether the word before the cursor is a command that may take a table.
function __ctl_wants_table
    set -l tokens (commandline -opc)
    test (count $tokens) -ge 2; or return 1
    contains -- $tokens[-1] -L -G -D -I -E -F -C -S --dump --get --delete --create --event \
        --flush --counter --stats
end

# Whether -R may be given or completed here: it must be the first argument.
function __ctl_first_argument
    set -l tokens (commandline -opc)
    test (count $tokens) -eq 1
    or begin
        test (count $tokens) -eq 2; and contains -- $tokens[2] -R --load-file
    end
end

# The items of a comma-separated list: each of $argv after what the
# token under the cursor holds up to its last comma.
function __ctl_list
    set -l token (string replace -r -- '^-[^=]*=' '' (commandline -ct))
    set -l token (string replace -r -- '^-[a-zA-Z]' '' $token)
    set -l head (string match -r -- '^.*,' $token)
    for item in $argv
        printf '%s%s\n' "$head" $item
    end
end

# The label names of connlabel.conf ("BIT NAME" lines, '#' comments).
function __ctl_labels
    set -l file /etc/xtables/connlabel.conf
    set -q CTL_CONNLABEL_CONF; and set file $CTL_CONNLABEL_CONF
    # --labelmap FILE on the line first.
    set -l tokens (commandline -opc)
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case --labelmap
                set -l next (math $i + 1)
                test $next -le (count $tokens); and set file $tokens[$next]
            case '--labelmap=*'
                set file (string replace -r '^[^=]*=' '' -- $tokens[$i])
        end
    end
    test -r $file; or return
    string match -rv -- '^\s*#' <$file | string replace -rf -- '^\s*\S+\s+([^\s#]+)(\s.*)?$' '$1'
end

# The states --state takes for the protocol given.
function __ctl_states
    switch (__ctl_protocol)
        case sctp
            printf '%s\n' NONE CLOSED COOKIE_WAIT COOKIE_ECHOED ESTABLISHED SHUTDOWN_SENT \
                SHUTDOWN_RECD SHUTDOWN_ACK_SENT HEARTBEAT_SENT HEARTBEAT_ACKED
        case dccp
            printf '%s\n' NONE REQUEST RESPOND PARTOPEN OPEN CLOSEREQ CLOSING TIMEWAIT IGNORE INVALID
        case '*'
            printf '%s\n' NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT \
                CLOSE SYN_SENT2 LISTEN
    end
end

# Network namespaces: the names in /run/netns, or a path.
function __ctl_netns
    set -l token (string replace -r -- '^--[^=]*=' '' (commandline -ct))
    if string match -qr -- '^[/.]' $token
        __fish_complete_path $token
    else
        for f in /run/netns/*
            basename $f
        end
    end
end

complete -c ctl -f

# Commands
set -l nocmd 'not __ctl_has_command'
complete -c ctl -n $nocmd -s L -l dump -d 'List entries'
complete -c ctl -n $nocmd -s G -l get -d 'Show the entry with the given tuple'
complete -c ctl -n $nocmd -s D -l delete -d 'Delete the selected entries'
complete -c ctl -n $nocmd -s I -l create -d 'Create an entry'
complete -c ctl -n $nocmd -s A -l add -d 'Create an entry unless it exists'
complete -c ctl -n $nocmd -s U -l update -d 'Change the selected entries'
complete -c ctl -n $nocmd -s E -l event -d 'Print events as they happen'
complete -c ctl -n $nocmd -s F -l flush -d 'Delete every entry'
complete -c ctl -n $nocmd -s C -l counter -d 'Print the number of entries'
complete -c ctl -n $nocmd -s S -l stats -d 'Print per-CPU statistics'
complete -c ctl -n __ctl_first_argument -s R -l load-file -r -F -d 'Run the commands of a file'
complete -c ctl -n $nocmd -s h -l help -d 'Print usage'
complete -c ctl -n $nocmd -s V -l version -d 'Print the version'

# Tables
complete -c ctl -n __ctl_wants_table -a conntrack -d 'The connection tracking table'
complete -c ctl -n __ctl_wants_table -a expect -d 'The expectation table'
complete -c ctl -n __ctl_wants_table -a dying -d 'Entries being destroyed'
complete -c ctl -n __ctl_wants_table -a unconfirmed -d 'Entries not yet confirmed'

# Output formats
complete -c ctl -s o -l output -x -d 'Output format' -a '(__ctl_list \
    extended\t"layer 3 family first" id\t"entry id" labels\t"connection labels" \
    ktimestamp\t"kernel start and stop time" timestamp\t"time of each event" \
    userspace\t"process that caused an event" save\t"lines for -R" xml\t"XML document" \
    json\t"one JSON object per line" metrics\t"Prometheus text format (-S, -C, --group-by)")'

# Selectors and parameters
complete -c ctl -s f -l family -x -a 'ipv4 ipv6' -d 'Layer 3 family'
complete -c ctl -s s -l src -x -d 'Original source address'
complete -c ctl -l orig-src -x -d 'Original source address'
complete -c ctl -s d -l dst -x -d 'Original destination address'
complete -c ctl -l orig-dst -x -d 'Original destination address'
complete -c ctl -l mask-src -x -d 'Netmask of the source address'
complete -c ctl -l mask-dst -x -d 'Netmask of the destination address'
complete -c ctl -s r -l reply-src -x -d 'Reply source address'
complete -c ctl -s q -l reply-dst -x -d 'Reply destination address'
complete -c ctl -s p -l protonum -x -a 'tcp udp udplite sctp dccp gre icmp icmpv6' -d 'Layer 4 protocol'
complete -c ctl -s t -l timeout -x -d 'Timeout in seconds'
complete -c ctl -s u -l status -x -d 'Status flags' -a '(__ctl_list \
    ASSURED SEEN_REPLY FIXED_TIMEOUT EXPECTED OFFLOAD HW_OFFLOAD UNSET)'
complete -c ctl -s m -l mark -x -d 'Connection mark (MARK[/MASK])'
complete -c ctl -s c -l secmark -x -d 'Security mark'
complete -c ctl -s w -l zone -x -d 'Zone'
complete -c ctl -l orig-zone -x -d 'Zone of the original direction'
complete -c ctl -l reply-zone -x -d 'Zone of the reply direction'
complete -c ctl -s n -l src-nat -d 'Source NAT [ADDR[:PORT]]'
complete -c ctl -s g -l dst-nat -d 'Destination NAT [ADDR[:PORT]]'
complete -c ctl -s j -l any-nat -d 'Either NAT [ADDR[:PORT]]'
complete -c ctl -s i -l id -x -d 'Entry id'
complete -c ctl -s l -l label -x -a '(__ctl_list (__ctl_labels))' -d 'Connection labels'
complete -c ctl -l label-add -x -a '(__ctl_list (__ctl_labels))' -d 'Labels to add'
complete -c ctl -l label-del -a '(__ctl_list (__ctl_labels))' -d 'Labels to remove'
# An optional argument in the next word.
complete -c ctl -n '__ctl_previous_is --label-del' -a '(__ctl_list (__ctl_labels))' -d 'Label to remove'
complete -c ctl -s z -l zero -d 'Zero counters while listing'

# Protocol options (after -p)
set -l ports '__ctl_protocol_is tcp udp udplite sctp dccp'
complete -c ctl -n $ports -l sport -x -d 'Original source port'
complete -c ctl -n $ports -l orig-port-src -x -d 'Original source port'
complete -c ctl -n $ports -l dport -x -d 'Original destination port'
complete -c ctl -n $ports -l orig-port-dst -x -d 'Original destination port'
complete -c ctl -n $ports -l reply-port-src -x -d 'Reply source port'
complete -c ctl -n $ports -l reply-port-dst -x -d 'Reply destination port'
complete -c ctl -n '__ctl_protocol_is tcp sctp dccp' -l state -x -a '(__ctl_states)' -d 'Protocol state'
complete -c ctl -n '__ctl_protocol_is sctp' -l orig-vtag -x -d 'Original verification tag'
complete -c ctl -n '__ctl_protocol_is sctp' -l reply-vtag -x -d 'Reply verification tag'
complete -c ctl -n '__ctl_protocol_is dccp' -l role -x -a 'client server' -d 'DCCP role'
complete -c ctl -n '__ctl_protocol_is icmp' -l icmp-type -x -d 'ICMP type'
complete -c ctl -n '__ctl_protocol_is icmp' -l icmp-code -x -d 'ICMP code'
complete -c ctl -n '__ctl_protocol_is icmp' -l icmp-id -x -d 'ICMP id'
complete -c ctl -n '__ctl_protocol_is icmpv6' -l icmpv6-type -x -d 'ICMPv6 type'
complete -c ctl -n '__ctl_protocol_is icmpv6' -l icmpv6-code -x -d 'ICMPv6 code'
complete -c ctl -n '__ctl_protocol_is icmpv6' -l icmpv6-id -x -d 'ICMPv6 id'
complete -c ctl -n '__ctl_protocol_is gre' -l srckey -x -d 'Original source key'
complete -c ctl -n '__ctl_protocol_is gre' -l orig-key-src -x -d 'Original source key'
complete -c ctl -n '__ctl_protocol_is gre' -l dstkey -x -d 'Original destination key'
complete -c ctl -n '__ctl_protocol_is gre' -l orig-key-dst -x -d 'Original destination key'
complete -c ctl -n '__ctl_protocol_is gre' -l reply-key-src -x -d 'Reply source key'
complete -c ctl -n '__ctl_protocol_is gre' -l reply-key-dst -x -d 'Reply destination key'

# Expectation parameters
complete -c ctl -l tuple-src -x -d 'Expected source address'
complete -c ctl -l tuple-dst -x -d 'Expected destination address'
complete -c ctl -n $ports -l tuple-port-src -x -d 'Expected source port'
complete -c ctl -n $ports -l tuple-port-dst -x -d 'Expected destination port'
complete -c ctl -n $ports -l mask-port-src -x -d 'Expected source port mask'
complete -c ctl -n $ports -l mask-port-dst -x -d 'Expected destination port mask'
complete -c ctl -n '__ctl_protocol_is gre' -l tuple-key-src -x -d 'Expected source key'
complete -c ctl -n '__ctl_protocol_is gre' -l tuple-key-dst -x -d 'Expected destination key'
complete -c ctl -n '__ctl_protocol_is gre' -l mask-key-src -x -d 'Expected source key mask'
complete -c ctl -n '__ctl_protocol_is gre' -l mask-key-dst -x -d 'Expected destination key mask'

# Event options
complete -c ctl -s e -l event-mask -x -d 'Event mask' -a '(__ctl_list NEW UPDATES DESTROY ALL)'
complete -c ctl -s b -l buffer-size -x -d 'Event socket buffer size'

# Other
complete -c ctl -l netns -x -a '(__ctl_netns)' -d 'Run in a network namespace (NAME or PATH)'
complete -c ctl -l interval -x -d 'Answer again every SECONDS (-S, -C, --group-by)'
complete -c ctl -l labelmap -r -F -d 'Label names from this file'

# Grouped counts and every namespace (ctl's own)
complete -c ctl -l group-by -x -d 'Count entries per group of values' -a '(__ctl_list family proto src dst sport dport reply-src reply-dst reply-sport reply-dport state status mark zone label helper netns)'
complete -c ctl -l top -x -d 'Only the N largest groups'
complete -c ctl -l all-netns -d 'Every network namespace under /run/netns'
