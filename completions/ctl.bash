# bash completion for ctl (conntrack-compatible)
_ctl() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        -L|--dump|-C|--counter|-F|--flush|-G|--get|-D|--delete|-I|--create|-A|--add|-U|--update|-E|--event)
            COMPREPLY=($(compgen -W "conntrack expect dying unconfirmed" -- "$cur")); return ;;
        -f|--family)
            COMPREPLY=($(compgen -W "ipv4 ipv6" -- "$cur")); return ;;
        -o|--output)
            COMPREPLY=($(compgen -W "extended id labels ktimestamp timestamp userspace xml save" -- "$cur")); return ;;
        -p|--protonum)
            COMPREPLY=($(compgen -W "tcp udp udplite sctp dccp gre icmp icmpv6" -- "$cur")); return ;;
        -e|--event-mask)
            COMPREPLY=($(compgen -W "NEW UPDATES DESTROY ALL" -- "$cur")); return ;;
        -u|--status)
            COMPREPLY=($(compgen -W "ASSURED SEEN_REPLY FIXED_TIMEOUT EXPECTED UNSET" -- "$cur")); return ;;
        -R|--load-file)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "-L -G -D -I -A -U -E -F -C -S -R -h -V -s -d -r -q -p -f -t -u -m -c -w -z -e -o -n -g -j -l -b \
        --dump --get --delete --create --add --update --event --flush --counter --stats --load-file --help --version \
        --src --dst --orig-src --orig-dst --reply-src --reply-dst --protonum --family --timeout --status --mark \
        --secmark --zone --orig-zone --reply-zone --zero --event-mask --output --src-nat --dst-nat --any-nat \
        --label --label-add --label-del --buffer-size --mask-src --mask-dst" -- "$cur"))
}
complete -F _ctl ctl
