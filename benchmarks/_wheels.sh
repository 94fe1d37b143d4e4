# Sourced by gpu_check.sh and gpu_sweep.sh: install the carried wheels once per site folder.
#   install_wheels PYTHON WHEEL_DIR SITE_DIR   -> 0 when SITE_DIR holds them (installed now or before)
install_wheels() {
    local py="$1" wheels="$2" site="$3" listing
    compgen -G "$wheels/*.whl" > /dev/null || return 1
    listing="$(cd "$wheels" && ls -l -- *.whl)"
    # The same wheels installed there already (by the other script of the same check): nothing to do.
    [ -f "$site/.nf-wheels" ] && [ "$(cat "$site/.nf-wheels")" = "$listing" ] && return 0
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$wheels"/*.whl || return 2
    printf '%s' "$listing" > "$site/.nf-wheels"
}
