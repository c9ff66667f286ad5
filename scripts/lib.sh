# dlab's shell library, sourced by the scripts behind make (hub.sh, homes.sh, fetch-data.sh) from
# the repository root: one `say`, and one reader of the settings, so that every command acts on
# the same class.
# shellcheck shell=bash

say() { printf 'dlab: %s\n' "$*" >&2; }

# The settings file (DLAB_ENV_FILE, default .env), read as compose reads it (NAME=value, optional
# quotes, # comments; a setting already in the environment wins), never run as shell code:
# `DLAB_CLASS_CODE=deep learning` is a value, not a command.
env_file=${DLAB_ENV_FILE:-.env}
load_env() {
  local n=0 line key value
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      say "$env_file line $n is not NAME=value: $line"
      say "fix that line (.env.example shows every setting), then run the command again"
      exit 1
    fi
    key=${BASH_REMATCH[2]} value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}                  # an inline comment
      value=${value%"${value##*[![:space:]]}"}       # trailing blanks
    fi
    if [[ $key == DLAB_* ]] && ! grep -q "^$key=" .env.example; then
      say "warning: $env_file line $n: $key is not a dlab setting (a typo? .env.example lists them all)"
    fi
    [ -n "${!key+set}" ] || export "$key=$value"
  done <"$env_file"
}
if [ -f "$env_file" ]; then load_env; fi
