# refused.sh - helpers the CLI tests source: they use $ECF8, $TMP, `checks`
# and fail() of the test that sources them.

# temporaries DIR...: the temporaries ecf8 left in the directories.
temporaries() { for d in "$@"; do [ -d "$d" ] && ls -A "$d" | grep '^\.ecf8-' | sed "s|^|$d/|"; done; }

# refused WHAT RC NAMED NEEDLE -- ARGS...: ecf8 ARGS fails with status RC,
# one stderr line "ecf8: NAMED: ...NEEDLE..." (RC 2: "ecf8: ...NEEDLE...").
refused() {
    local what=$1 rc=$2 named=$3 needle=$4
    shift 5
    checks=$((checks + 1))
    timeout 30 "$ECF8" "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
    local got=$? msg
    msg=$(head -n 1 "$TMP/stderr")
    if [ "$got" != "$rc" ]; then
        fail "$what: exit status $got, want $rc (stderr: $msg)"
    elif [ "$rc" = 1 ] && [ "$(wc -l <"$TMP/stderr")" != 1 ]; then
        fail "$what: stderr is not one line: $(tr '\n' '|' <"$TMP/stderr")"
    elif [ "$rc" = 1 ] && [ "${msg#"ecf8: $named: "}" = "$msg" ]; then
        fail "$what: '$msg' does not start with 'ecf8: $named: '"
    elif [ "${msg#*"$needle"}" = "$msg" ]; then
        fail "$what: '$msg' lacks '$needle'"
    fi
}

# interrupted SIG READY -- ARGS...: runs ecf8 ARGS, sends SIG once the
# Python expression READY is true (polled every millisecond; temps(DIR)
# lists DIR's temporaries, inside(DIR, SUB) what the SUB directories of
# staged ones, DIR/.ecf8-XXXXXX/SUB, hold) and a moment more has passed, and
# checks the exit status: 128 + SIG, or 1.  Fails when ecf8 ended first.
interrupted() {
    local sig=$1 ready=$2
    shift 3
    checks=$((checks + 1))
    local rc num
    rc=$(python3 - "$sig" "$ready" "$ECF8" "$@" <<'PY'
import os, signal, subprocess, sys, time
sig, ready, cmd = getattr(signal, "SIG" + sys.argv[1]), sys.argv[2], sys.argv[3:]
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 60
def temps(d):
    try:
        return [n for n in os.listdir(d) if n.startswith(".ecf8-")]
    except OSError:
        return []
def inside(d, sub):
    found = []
    for t in temps(d):
        try:
            found += os.listdir(os.path.join(d, t, sub))
        except OSError:
            pass
    return found
while p.poll() is None and time.time() < deadline and not eval(ready):
    time.sleep(0.001)
if p.poll() is not None:
    print("finished-first %d" % p.returncode)
    sys.exit(0)
time.sleep(0.05)  # well into the work
p.send_signal(sig)
print(p.wait())
PY
)
    num=$(kill -l "$sig")
    case $rc in
        "-$num" | 1) ;;
        *) fail "$sig during ecf8 $*: exit status '$rc', want -$num (128+$num) or 1" ;;
    esac
}
