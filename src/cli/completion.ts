import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { print } from './output.js';
import { serviceCommands } from './service.js';

/**
 * `lab completion bash|zsh`: a completion script generated from the commands
 * as registered, so it cannot drift from them. Services and their operations
 * are read from the lab folder when completing (services/<name>/service.ts,
 * a folder of shell stages, or a playbook's tags),
 * without starting node.
 */

interface Node {
  path: string;
  words: string[];
}

function walk(cmd: Command, prefix: string[], out: Node[]): void {
  // A lab folder's services are found when completing, not baked in.
  const subs = cmd.commands.filter((c) => !serviceCommands.has(c));
  const options = cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)));
  out.push({ path: prefix.join(' '), words: [...subs.map((c) => c.name()), ...options] });
  for (const c of subs) walk(c, [...prefix, c.name()], out);
}

function bashScript(program: Command): string {
  const nodes: Node[] = [];
  walk(program, [], nodes);
  const cases = nodes
    .filter((n) => n.path && !n.path.includes('<'))
    .map((n) => `    "${n.path}") words="${n.words.join(' ')}" ;;`)
    .join('\n');
  const top = nodes.find((n) => n.path === '')!.words;
  return `# bash completion for lab; install: lab completion bash > /etc/bash_completion.d/lab (or source it from ~/.bashrc)
_lab_services() {
  local d
  for d in "$1"/services/*/; do { [ -f "$d/service.ts" ] || [ -d "$d/stages" ] || [ -f "$d/playbook.yml" ]; } && basename "$d"; done
}
_lab_operations() {
  local d="$1/services/$2" op
  if [ -f "$d/service.ts" ]; then
    sed -n 's/^ *\\(async \\)\\{0,1\\}\\([a-z][a-z0-9-]*\\)(\\(ctx\\)\\{0,1\\}) *{ *$/\\2/p' "$d/service.ts" 2>/dev/null
  elif [ -d "$d/stages" ]; then
    echo deploy
    for op in start stop status test; do [ -f "$d/$op.sh" ] && echo "$op"; done
  elif [ -f "$d/playbook.yml" ]; then
    echo deploy
    # Its tags, as written on one line (tags: test, tags: [test, never]); Ansible's own tags are none.
    grep -rhoE '^[[:space:]-]*tags:[[:space:]]*([[][^]]*[]]|[a-z][a-z0-9_-]*)' "$d" --include='*.yml' --include='*.yaml' 2>/dev/null |
      sed 's/.*tags:[[:space:]]*//; s/[][]//g' | tr ',' '\\n' | tr -d ' ' | grep -vxE 'always|never|all|tagged|untagged|deploy|' | sort -u
  fi
}
_lab() {
  local cur=\${COMP_WORDS[COMP_CWORD]} labdir=. sofar="" i w services
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [ "$w" = "--lab" ]; then labdir=\${COMP_WORDS[i + 1]}; i=$((i + 1)); continue; fi
    case "$w" in -*) continue ;; esac
    sofar="\${sofar:+$sofar }$w"
  done
  services=$(_lab_services "$labdir")
  local words=""
  case "$sofar" in
    "") words="${top.join(' ')} $services" ;;
${cases}
    *)
      local first=\${sofar%% *}
      if printf '%s\\n' $services | grep -qx "$first"; then
        if [ "$sofar" = "$first" ]; then words="$(_lab_operations "$labdir" "$first")"; else words="--env --role --hosts --version --via --parallel --connect-timeout --timeout --json"; fi
      fi ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _lab lab
`;
}

function zshScript(program: Command): string {
  // zsh runs bash completion functions through bashcompinit.
  return `#compdef lab
# zsh completion for lab; install: lab completion zsh > "\${fpath[1]}/_lab", or source it from ~/.zshrc
# (no variable of it may be called path: zsh ties that one to PATH)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
autoload -U +X bashcompinit && bashcompinit
${bashScript(program)}`;
}

export function register(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a completion script for bash or zsh (commands, options, the lab folder\'s services and their operations)')
    .action((shell: string) => {
      if (shell === 'bash') return print(bashScript(program));
      if (shell === 'zsh') return print(zshScript(program));
      throw new UsageError(`completion: no shell "${shell}"; shells: bash, zsh`);
    });
}
