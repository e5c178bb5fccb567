# Shared by bench/gpu_check.sh and bench/gpu_scale.sh (sourced, not run): settings, the timed `step`, and on
# CUDA the carried wheels (.whl/) and EGL loader (.gl/) installed; the caller sets OUT (and may set DEVICE, PY, RUNS,
# BUDGET) first. Every step's name, exit status and seconds go to $STEPS; its output to $LOG.
set -u -o pipefail
: "${OUT:?set OUT to the results folder}"
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
RUNS=${RUNS:-runs}
BUDGET=${BUDGET:-330}  # seconds for all steps: a later step gets what the earlier ones left, up to its own limit
LOG=$OUT/gpu_log.txt
STEPS=$(mktemp)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
[ -d .gpucache ] && export LIKENESS_CACHE=${LIKENESS_CACHE:-$PWD/.gpucache}

step() {  # step NAME SECONDS COMMAND...: run it under a timeout, log its output, record and return its exit status
    local name=$1 limit=$2 began=$SECONDS rc
    shift 2
    ((limit > BUDGET - SECONDS)) && limit=$((BUDGET - SECONDS))
    if ((limit < 10)); then
        echo "=== $name: skipped, the ${BUDGET}s budget is spent" | tee -a "$LOG"
        printf '%s\tskipped\t0\n' "$name" >>"$STEPS"
        return 124
    fi
    echo "=== $name (limit ${limit}s): $*" | tee -a "$LOG"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    echo "=== $name: rc=$rc in $((SECONDS - began)) s" | tee -a "$LOG"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - began))" >>"$STEPS"
    return "$rc"
}

older() {  # older DIST VERSION: true when the image lacks DIST or has an older one
    python3 - "$1" "$2" <<'PYEOF'
import importlib.metadata as m, sys
from packaging.version import Version
try:
    sys.exit(0 if Version(m.version(sys.argv[1])) < Version(sys.argv[2]) else 1)
except m.PackageNotFoundError:
    sys.exit(0)
PYEOF
}

install_wheels() {  # what the image lacks (constraints.txt versions) into /tmp/site; typing_extensions and
    # einops only where the image's are older than our packages need, so nothing of the image is downgraded
    local wheels=() w
    for w in .whl/*.whl; do
        case $w in
            .whl/typing_extensions-*) older typing_extensions 4.16.0 || { echo "image's typing_extensions kept"; continue; } ;;
            .whl/einops-*) older einops 0.8.1 || { echo "image's einops kept"; continue; } ;;
        esac
        wheels+=("$w")
    done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}"
}

install_egl() {  # glvnd's EGL loader only where the image has none: unpacking over its own would replace it
    ldconfig -p | grep -q 'libEGL.so.1 ' && { echo "libEGL.so.1 already present"; return 0; }
    for f in .gl/*.deb; do dpkg -x "$f" / || return 1; done
    ldconfig
}
export -f older install_wheels install_egl

if [ "$DEVICE" = cuda ]; then
    if [ -d .whl ]; then step install_wheels 120 bash -c install_wheels && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}; fi
    [ -d .gl ] && step install_egl 60 bash -c install_egl
    vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    [ -f $vendor ] && export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-$vendor}
fi

steps_json() {  # steps_json FILE: the steps as JSON when Python could not write the summary, then clean up
    [ -s "$1" ] || awk -F'\t' 'BEGIN{printf "{\"steps\": ["} {printf "%s{\"name\": \"%s\", \"rc\": \"%s\", \"seconds\": %s}", NR>1?", ":"", $1, $2, $3} END{print "]}"}' "$STEPS" >"$1"
    rm -f "$STEPS"
}
