import { type Command, Help, type Option } from "commander";
import { ConfigError, quote } from "../errors.js";

/** An option as the shell completions and the `--json` check see it. */
export interface OptionNode {
  /** Its spellings: `-n` and `--no-wait`, or just `--json`. */
  readonly flags: readonly string[];
  /** Whether the next word is its value (`--holder <id>`). */
  readonly takesValue: boolean;
  readonly description: string;
}

/** A command of the program tree: where it is, what follows it. */
export interface CommandNode {
  /** The words that name it, the program's own first: ["globalclock", "lease", "claim"]. */
  readonly path: readonly string[];
  readonly description: string;
  readonly subcommands: readonly { name: string; description: string }[];
  /** Its own options, `--help` included, and those of its ancestors that apply here (`--store`). */
  readonly options: readonly OptionNode[];
  /** The values its first argument may take (`completion <shell>`), if it names them. */
  readonly choices: readonly string[];
}

const help = new Help();

function optionNode(option: Option): OptionNode {
  return {
    flags: [option.short, option.long].filter((f): f is string => f !== undefined),
    takesValue: option.required || option.optional,
    description: option.description,
  };
}

/** The options an ancestor passes down: all but its own --help and --version. */
function inherited(cmd: Command): Option[] {
  const own = new Set(["--help", "--version"]);
  return help.visibleOptions(cmd).filter((o) => !own.has(o.long ?? ""));
}

/**
 * Every command of `program`, depth first, as commander will parse them: the completions
 * are generated from this, so they name exactly the commands and options there are.
 */
export function commandTree(program: Command): CommandNode[] {
  const nodes: CommandNode[] = [];
  const visit = (cmd: Command, path: string[], passed: Option[]) => {
    const subs = help.visibleCommands(cmd);
    nodes.push({
      path,
      description: cmd.description(),
      subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
      options: [...help.visibleOptions(cmd), ...passed].map(optionNode),
      choices: cmd.registeredArguments[0]?.argChoices ?? [],
    });
    for (const sub of subs) visit(sub, [...path, sub.name()], [...passed, ...inherited(cmd)]);
  };
  visit(program, [program.name()], []);
  return nodes;
}

/**
 * The command `argv` runs, and whether `--json` is among its options (not a value of
 * another option, nor a word after `--`, which `lock` passes to its command).
 */
export function commandOf(
  program: Command,
  argv: readonly string[],
): { command: Command; json: boolean } {
  let command = program;
  let valued = new Set<string>();
  const learn = (cmd: Command) => {
    for (const o of [...help.visibleOptions(cmd), ...inherited(program)])
      if (o.required || o.optional) for (const f of [o.short, o.long]) if (f) valued.add(f);
  };
  learn(program);
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === "--") break;
    if (word.startsWith("-")) {
      if (word === "--json") json = true;
      else if (valued.has(word)) i++;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub) {
      // A --json before its command is the parent's, which takes none.
      json = false;
      command = sub;
      valued = new Set();
      learn(sub);
    }
  }
  const accepts = help.visibleOptions(command).some((o) => o.long === "--json");
  return { command, json: json && accepts };
}

/** `help [command...]`: the help of a command or of a subcommand (`help lease claim`). */
export function registerHelp(program: Command): void {
  program
    .command("help")
    .description("show the help of a command or subcommand, e.g. `help lease claim`")
    .argument("[command...]", "the command's words")
    .action((words: string[]) => {
      let target = program;
      for (const word of words) {
        const sub = target.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (!sub) {
          const names = target.commands.map((c) => c.name()).filter((n) => n !== "help");
          const where = target === program ? "" : ` of ${target.name()}`;
          throw new ConfigError(
            "command",
            `no command ${quote(word)}${where}: the commands are ${names.join(", ")}`,
          );
        }
        target = sub;
      }
      target.outputHelp();
    });
}

/**
 * Marks every mandatory option (`requiredOption`) "(required)" in its description, which
 * commander's help leaves unmarked.
 */
export function markRequired(program: Command): void {
  const visit = (cmd: Command) => {
    for (const option of cmd.options)
      if (option.mandatory && !/\(required\)$/.test(option.description))
        option.description = `${option.description} (required)`.trim();
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
}
